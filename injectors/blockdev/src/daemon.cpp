// syncprobe-blockdev: a faulty block device for kernels without device-mapper.
//
// Serves one sparse image file as the single regular file `dev` of a FUSE
// mount. The runner attaches <mountpoint>/dev to a loop device (direct I/O)
// and puts a filesystem on it, so everything the filesystem writes, reads and
// flushes passes through here, where faults are injected as the runner asks
// over a control socket (one JSON object per line; see docs/blockdev.md):
// errors, silent drops and hangs per byte range and operation, a thin-pool
// capacity, and a volatile write cache that a power cut empties.
#define FUSE_USE_VERSION 31
#include <fuse3/fuse.h>

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <chrono>
#include <condition_variable>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "syncprobe/errno_names.h"
#include "syncprobe/fault.h"

#include "fault_device.h"

namespace {

using namespace syncprobe::blockdev;

Device* g_dev = nullptr;
constexpr char kName[] = "/dev";

int op_getattr(const char* path, struct stat* st, fuse_file_info*) {
  std::memset(st, 0, sizeof *st);
  if (std::strcmp(path, "/") == 0) {
    st->st_mode = S_IFDIR | 0755;
    st->st_nlink = 2;
    return 0;
  }
  if (std::strcmp(path, kName) != 0) return -ENOENT;
  st->st_mode = S_IFREG | 0600;
  st->st_nlink = 1;
  st->st_size = off_t(g_dev->size());
  st->st_blksize = kBlock;
  return 0;
}

int op_readdir(const char* path, void* buf, fuse_fill_dir_t fill, off_t, fuse_file_info*,
               fuse_readdir_flags) {
  if (std::strcmp(path, "/") != 0) return -ENOENT;
  fill(buf, ".", nullptr, 0, fuse_fill_dir_flags(0));
  fill(buf, "..", nullptr, 0, fuse_fill_dir_flags(0));
  fill(buf, kName + 1, nullptr, 0, fuse_fill_dir_flags(0));
  return 0;
}

int op_open(const char* path, fuse_file_info* fi) {
  if (std::strcmp(path, kName) != 0) return -ENOENT;
  fi->direct_io = 1;  // no page cache for the device file: the loop device sees every I/O here
  return 0;
}

int op_read(const char*, char* buf, size_t size, off_t off, fuse_file_info*) {
  return g_dev->read(buf, size, uint64_t(off));
}

int op_write(const char*, const char* buf, size_t size, off_t off, fuse_file_info*) {
  return g_dev->write(buf, size, uint64_t(off));
}

int op_fsync(const char*, int, fuse_file_info*) { return g_dev->flush(); }
int op_truncate(const char*, off_t, fuse_file_info*) { return 0; }

// A unix socket address; "@name" is Linux's abstract namespace (no file, no
// 108-byte path limit to run into under deep scratch directories).
socklen_t unix_address(const std::string& path, sockaddr_un& addr) {
  addr = {};
  addr.sun_family = AF_UNIX;
  const size_t n = std::min(path.size(), sizeof addr.sun_path - 1);
  std::memcpy(addr.sun_path, path.data(), n);
  if (!path.empty() && path[0] == '@') addr.sun_path[0] = '\0';
  return socklen_t(offsetof(sockaddr_un, sun_path) + n);
}

// Control threads leave SIGTERM, SIGINT and SIGHUP to libfuse's threads: a
// signal taken by a thread blocked in accept() would set libfuse's exit flag
// without waking any of the threads that act on it.
void block_exit_signals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
}

// One control connection: a JSON request per line, a JSON reply per line.
void serve_connection(int c, fuse* f) {
  block_exit_signals();
  std::string line;
  char ch;
  while (::read(c, &ch, 1) == 1) {
    if (ch != '\n') {
      if (line.size() < (1u << 20)) line += ch;
      continue;
    }
    nlohmann::json reply;
    try {
      reply = g_dev->control(nlohmann::json::parse(line));
    } catch (const std::exception& e) {
      reply = {{"ok", false}, {"error", std::string("bad request: ") + e.what()}};
    }
    const std::string out = reply.dump() + "\n";
    if (::send(c, out.data(), out.size(), MSG_NOSIGNAL) < 0) break;
    line.clear();
    if (g_dev->quit_requested()) fuse_exit(f);
  }
  ::close(c);
}

// The runner's end of a socketpair: nothing to connect to, nothing to squat.
// When it closes (the runner stopped or died) nobody can heal any more, so
// nothing may be held from then on.
void control_fd_loop(int fd, fuse* f) {
  serve_connection(fd, f);
  g_dev->release_everything("the end of the control connection");
}

// A named socket, for running the daemon by hand: only the daemon's own
// user may connect (SO_PEERCRED); anyone else is refused.
void control_loop(const std::string& path, fuse* f) {
  block_exit_signals();
  int srv = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un addr;
  const socklen_t len = unix_address(path, addr);
  if (path[0] != '@') ::unlink(path.c_str());
  if (path.size() >= sizeof addr.sun_path || bind(srv, reinterpret_cast<sockaddr*>(&addr), len) < 0 ||
      listen(srv, 4) < 0) {
    log("cannot listen on %s: %s", path.c_str(),
        path.size() >= sizeof addr.sun_path ? "path too long (use @name)" : std::strerror(errno));
    std::exit(1);
  }
  std::printf("ready\n");
  std::fflush(stdout);
  for (;;) {
    int c = accept4(srv, nullptr, nullptr, SOCK_CLOEXEC);
    if (c < 0) continue;
    ucred cred{};
    socklen_t clen = sizeof cred;
    if (getsockopt(c, SOL_SOCKET, SO_PEERCRED, &cred, &clen) != 0 || cred.uid != geteuid()) {
      log("refused a control connection from uid %u (pid %d)", unsigned(cred.uid), int(cred.pid));
      ::close(c);
      continue;
    }
    std::thread(serve_connection, c, f).detach();
  }
}

int usage() {
  std::fprintf(stderr,
               "usage: syncprobe-blockdev --image PATH --size BYTES --mountpoint DIR\n"
               "                          (--control SOCKET | --control-fd FD) [--step-timeout-ms N]\n"
               "Serves PATH as DIR/dev through FUSE with faults set over SOCKET (a path, or\n"
               "@name in the abstract namespace; only this user may connect) or over the\n"
               "inherited connected socket FD (docs/blockdev.md).\n");
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&]() -> std::string { return i + 1 < argc ? argv[++i] : ""; };
    if (a == "--image") o.image = next();
    else if (a == "--size") o.size = std::strtoull(next().c_str(), nullptr, 10);
    else if (a == "--mountpoint") o.mountpoint = next();
    else if (a == "--control") o.control = next();
    else if (a == "--control-fd") o.control_fd = std::atoi(next().c_str());
    else if (a == "--step-timeout-ms") o.step_timeout_ms = std::atoi(next().c_str());
    else if (a == "--help" || a == "-h") return usage(), 0;
    else return usage();
  }
  if (o.image.empty() || o.mountpoint.empty() || o.size == 0 || (o.control.empty() == (o.control_fd < 0)))
    return usage();
  try {
    static Device dev(o);
    g_dev = &dev;
  } catch (const std::exception& e) {
    log("%s", e.what());
    return 1;
  }
  fuse_operations ops{};
  ops.getattr = op_getattr;
  ops.readdir = op_readdir;
  ops.open = op_open;
  ops.read = op_read;
  ops.write = op_write;
  ops.fsync = op_fsync;
  ops.truncate = op_truncate;
  const char* fargv[] = {"syncprobe-blockdev", "-o", "fsname=syncprobe-blockdev"};
  fuse_args args = FUSE_ARGS_INIT(3, const_cast<char**>(fargv));
  fuse* f = fuse_new(&args, &ops, sizeof ops, nullptr);
  if (!f) {
    log("fuse_new failed");
    return 1;
  }
  if (fuse_mount(f, o.mountpoint.c_str()) != 0) {
    log("cannot mount FUSE on %s", o.mountpoint.c_str());
    return 1;
  }
  fuse_set_signal_handlers(fuse_get_session(f));
  sigset_t exit_signals, before;
  sigemptyset(&exit_signals);
  for (int sig : {SIGTERM, SIGINT, SIGHUP}) sigaddset(&exit_signals, sig);
  pthread_sigmask(SIG_BLOCK, &exit_signals, &before);  // the control thread starts with them blocked
  if (o.control_fd >= 0) {
    fcntl(o.control_fd, F_SETFD, FD_CLOEXEC);
    std::printf("ready\n");
    std::fflush(stdout);
    std::thread(control_fd_loop, o.control_fd, f).detach();
  } else {
    std::thread(control_loop, o.control, f).detach();
  }
  pthread_sigmask(SIG_SETMASK, &before, nullptr);
  log("serving %s (%lu bytes) at %s/dev", o.image.c_str(), o.size, o.mountpoint.c_str());
  const int rc = fuse_loop_mt(f, 0);
  fuse_remove_signal_handlers(fuse_get_session(f));
  fuse_unmount(f);
  fuse_destroy(f);
  log("stopped");
  // libfuse reports the signal that ended the loop; stopping is not a failure.
  return rc == 0 || rc == SIGTERM || rc == SIGINT || rc == SIGHUP ? 0 : 1;
}
