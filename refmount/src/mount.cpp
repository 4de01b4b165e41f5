// Mounting: the checks on the mount point, the private control directory and
// its socket, libfuse's session and signal handlers, and a clean unmount.
#define FUSE_USE_VERSION 31
#include <dirent.h>
#include <fcntl.h>
#include <fuse.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <ostream>
#include <thread>
#include <vector>

#include "mounted_fs.h"
#include "socket_path.h"
#include "syncprobe/refmount.h"

namespace syncprobe::refmount {
namespace {

// True when `path` (canonical) is a mount point in this mount namespace.
bool is_mount_point(const std::string& path) {
  std::ifstream in("/proc/self/mountinfo");
  std::string line;
  while (std::getline(in, line)) {
    // id parent major:minor root mountpoint ...; spaces in the path are \040.
    size_t pos = 0;
    for (int field = 0; field < 4 && pos != std::string::npos; ++field) pos = line.find(' ', pos + 1);
    if (pos == std::string::npos) continue;
    const size_t end = line.find(' ', pos + 1);
    std::string point = line.substr(pos + 1, end - pos - 1);
    for (size_t i; (i = point.find("\\040")) != std::string::npos;) point.replace(i, 4, " ");
    if (point == path) return true;
  }
  return false;
}

// The control server: one request per connection, from this user (or root).
class ControlServer {
 public:
  ControlServer(MountedFs& fs, int listen_fd) : fs_(fs), listen_fd_(listen_fd) {
    if (::pipe2(stop_, O_CLOEXEC) != 0) stop_[0] = stop_[1] = -1;
    thread_ = std::thread([this] { serve(); });
  }
  ~ControlServer() {
    if (stop_[1] >= 0 && ::write(stop_[1], "x", 1) != 1) thread_.detach();
    if (thread_.joinable()) thread_.join();
    for (int fd : stop_)
      if (fd >= 0) ::close(fd);
  }

 private:
  void serve() {
    for (;;) {
      pollfd p[2] = {{listen_fd_, POLLIN, 0}, {stop_[0], POLLIN, 0}};
      if (::poll(p, 2, -1) < 0) {
        if (errno == EINTR) continue;
        return;
      }
      if (p[1].revents) return;
      const int c = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (c < 0) continue;
      ucred cred{};
      socklen_t len = sizeof cred;
      const bool allowed = ::getsockopt(c, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0 &&
                           (cred.uid == ::getuid() || cred.uid == 0);
      std::string line;
      char buf[4096];
      while (allowed && line.find('\n') == std::string::npos) {
        pollfd q{c, POLLIN, 0};
        if (::poll(&q, 1, 5000) <= 0) break;  // a client that says nothing is dropped
        const ssize_t r = ::read(c, buf, sizeof buf);
        if (r <= 0) break;
        line.append(buf, size_t(r));
      }
      nlohmann::json reply;
      if (!allowed) reply = {{"ok", false}, {"error", "not the mount's owner"}};
      else reply = fs_.handle(nlohmann::json::parse(line.substr(0, line.find('\n')), nullptr, false));
      const std::string out = reply.dump() + "\n";
      for (size_t off = 0; off < out.size();) {
        const ssize_t w = ::write(c, out.data() + off, out.size() - off);
        if (w <= 0) break;
        off += size_t(w);
      }
      ::close(c);
    }
  }

  MountedFs& fs_;
  int listen_fd_;
  int stop_[2] = {-1, -1};
  std::thread thread_;
};

}  // namespace

std::string check_mountpoint(const std::string& mountpoint) {
  struct stat st{};
  if (::stat(mountpoint.c_str(), &st) != 0)
    return mountpoint + ": " + std::strerror(errno) + " (create an empty directory to mount on)";
  if (!S_ISDIR(st.st_mode)) return mountpoint + ": not a directory";
  char real[PATH_MAX];
  if (!::realpath(mountpoint.c_str(), real)) return mountpoint + ": " + std::strerror(errno);
  if (is_mount_point(real))
    return mountpoint + ": already a mount point (unmount it first, or choose an empty directory)";
  DIR* d = ::opendir(real);
  if (!d) return mountpoint + ": " + std::strerror(errno);
  bool empty = true;
  while (dirent* e = ::readdir(d))
    if (std::strcmp(e->d_name, ".") != 0 && std::strcmp(e->d_name, "..") != 0) empty = false;
  ::closedir(d);
  if (!empty) return mountpoint + ": not empty (the mount would hide its files; choose an empty directory)";
  return "";
}

int run_mount(const MountOptions& o, std::ostream& log, std::string& error) {
  if (std::string why = check_mountpoint(o.mountpoint); !why.empty()) {
    error = why;
    return 2;
  }
  std::unique_ptr<ref::Policy> policy;
  int passthrough_fd = -1;
  if (o.passthrough) {
    passthrough_fd = ::open(o.passthrough_dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (passthrough_fd < 0) {
      error = o.passthrough_dir + ": " + std::strerror(errno);
      return 2;
    }
  } else if (!(policy = ref::make_policy(o.policy))) {
    error = "unknown policy '" + o.policy + "' (syncprobe list policies)";
    return 2;
  }
  // The control socket lives in a directory only this user can enter.
  std::string dir, sock;
  int listen_fd = -1;
  bool own_dir = false;
  if (!o.passthrough && !o.control_dir.empty()) {
    struct stat cd{};
    if (::lstat(o.control_dir.c_str(), &cd) != 0 || !S_ISDIR(cd.st_mode) || cd.st_uid != ::getuid() ||
        (cd.st_mode & 077)) {
      error = o.control_dir + ": the control directory must be an existing directory of yours, mode 0700";
      return 2;
    }
    sock = o.control_dir + "/control";
  } else if (!o.passthrough) {
    const char* base = std::getenv("XDG_RUNTIME_DIR");
    std::string tmpl = std::string(base && *base ? base : "/tmp") + "/syncprobe-mount-XXXXXX";
    if (!::mkdtemp(tmpl.data())) {
      error = "mkdtemp " + tmpl + ": " + std::strerror(errno);
      return 1;
    }
    dir = tmpl;
    own_dir = true;
    sock = dir + "/control";
  }
  if (!o.passthrough) {
    sockaddr_un addr{};
    int dir_fd = -1;
    if (!refmount_detail::socket_address(sock, addr, dir_fd)) {
      error = sock + ": " + std::strerror(errno);
      if (own_dir) ::rmdir(dir.c_str());
      return 1;
    }
    listen_fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    const bool bound = listen_fd >= 0 && ::bind(listen_fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
    if (dir_fd >= 0) ::close(dir_fd);
    if (!bound || ::listen(listen_fd, 8) != 0) {
      error = "control socket " + sock + ": " + std::strerror(errno);
      if (listen_fd >= 0) ::close(listen_fd);
      if (own_dir) ::rmdir(dir.c_str());
      return 1;
    }
  }
  auto cleanup_control = [&] {
    if (listen_fd >= 0) ::close(listen_fd);
    if (!sock.empty()) ::unlink(sock.c_str());
    if (own_dir) ::rmdir(dir.c_str());
  };

  std::unique_ptr<MountedFs> mounted;
  void* user_data = reinterpret_cast<void*>(intptr_t(passthrough_fd));
  if (!o.passthrough) {
    ref::FileSystem::Options fo;
    fo.max_file_bytes = o.max_file_bytes;
    mounted = std::make_unique<MountedFs>(std::move(policy), fo, sock, &log);
    if (o.size && !mounted->fs().thin_limit(*o.size, FaultMode::error).ok()) error = "size";
    if (o.memory_limit && !mounted->fs().cache_limit(*o.memory_limit).ok()) error = "memory limit";
    if (o.error_limit && !mounted->fs().memory_limit(*o.error_limit).ok()) error = "error limit";
    if (o.preallocate && !mounted->fs().preallocate(*o.preallocate).ok())
      error = "preallocation (--preallocate asks for more memory than this machine has)";
    if (!error.empty()) {
      error = "the model refused the " + error;
      cleanup_control();
      return 1;
    }
    user_data = mounted.get();
  }
  const std::string fsname = o.passthrough ? "fsname=syncprobe-passthrough" : "fsname=syncprobe-ref:" + o.policy;
  const std::string opts = fsname + ",subtype=syncprobe,default_permissions";
  std::vector<std::string> argv_s = {"syncprobe", "-o", opts};
  std::vector<char*> argv;
  for (auto& a : argv_s) argv.push_back(a.data());
  fuse_args args = FUSE_ARGS_INIT(int(argv.size()), argv.data());
  const fuse_operations& ops = o.passthrough ? passthrough_operations() : MountedFs::operations();
  fuse* f = fuse_new(&args, &ops, sizeof ops, user_data);
  fuse_opt_free_args(&args);
  if (!f) {
    error = "fuse_new failed (is libfuse3 usable here?)";
    cleanup_control();
    return 1;
  }
  if (fuse_mount(f, o.mountpoint.c_str()) != 0) {
    error = o.mountpoint + ": fuse_mount failed (is /dev/fuse usable, fusermount3 installed?)";
    fuse_destroy(f);
    cleanup_control();
    return 1;
  }
  // In the background, the parent exits once mounted; threads start after the fork.
  if (o.background && fuse_daemonize(0) != 0) {
    error = "fuse_daemonize failed";
    fuse_unmount(f);
    fuse_destroy(f);
    cleanup_control();
    return 1;
  }
  fuse_session* se = fuse_get_session(f);
  int status = 0;
  if (fuse_set_signal_handlers(se) != 0) {
    error = "cannot install the signal handlers";
    status = 1;
  } else {
    log << "syncprobe mount: " << (o.passthrough ? "passthrough of " + o.passthrough_dir : o.policy)
        << " on " << o.mountpoint << (sock.empty() ? "" : ", control " + sock) << std::endl;
    std::unique_ptr<ControlServer> server;
    if (mounted) server = std::make_unique<ControlServer>(*mounted, listen_fd);
    // One request at a time: the model wants one caller, and a single loop
    // is the cheapest way to give it that.
    // 0: unmounted from outside; a signal number: SIGINT, SIGTERM or SIGHUP.
    if (const int r = fuse_loop(f); r < 0) {
      error = std::string("the FUSE loop failed: ") + std::strerror(-r);
      status = 1;
    }
    server.reset();
    fuse_remove_signal_handlers(se);
  }
  fuse_unmount(f);
  fuse_destroy(f);
  cleanup_control();
  if (passthrough_fd >= 0) ::close(passthrough_fd);
  log << "syncprobe mount: unmounted " << o.mountpoint << std::endl;
  return status;
}

}  // namespace syncprobe::refmount
