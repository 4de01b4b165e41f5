#include "syncprobe/posix_process.h"

#include "syncprobe/command.h"
#include "syncprobe/interrupt.h"
#include "syncprobe/paths.h"

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <poll.h>
#include <stdexcept>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>
#include <vector>

#include "posix_wire.h"

namespace syncprobe {

using namespace posix_wire;

std::string signal_name(int sig) {
  const char* abbrev = sigabbrev_np(sig);
  return abbrev ? std::string("SIG") + abbrev : "signal " + std::to_string(sig);
}

struct PosixProcess::Request {
  Header h{};
  std::string path, path2;
  std::span<const std::byte> data;
};

namespace {

// The exec'd worker's argv: `exec_under` applied to syncprobe-worker's own.
std::vector<std::string> worker_argv(const std::string& root, pid_t parent, const WorkerCommand& exec_under) {
  const std::string program = helper_program("syncprobe-worker");
  if (program.empty())
    throw std::runtime_error("harness: syncprobe-worker not found (libexec/syncprobe beside the binary, or "
                             "SYNCPROBE_WORKER)");
  return exec_under({program, root, std::to_string(parent)});
}

}  // namespace

PosixProcess::PosixProcess(const std::string& root, std::chrono::milliseconds timeout,
                           const WorkerCommand& exec_under)
    : timeout_(timeout) {
  // Everything the exec'd child needs is made before the fork.
  std::vector<std::string> argv;
  std::vector<char*> cargv;
  const pid_t parent = getpid();
  if (exec_under) {
    argv = worker_argv(root, parent, exec_under);
    for (auto& a : argv) cargv.push_back(a.data());
    cargv.push_back(nullptr);
  }
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
    throw std::runtime_error(std::string("socketpair: ") + std::strerror(errno));
  pid_ = fork();
  if (pid_ < 0) {
    const int err = errno;
    ::close(sv[0]);
    ::close(sv[1]);
    throw std::runtime_error(std::string("fork: ") + std::strerror(err));
  }
  if (pid_ == 0) {
    ::close(sv[0]);
    if (!exec_under) worker_main(sv[1], root, parent, false);
    // The same guarantees before the exec as in worker_main (PDEATHSIG
    // survives the exec; the worker sets it again), then the socket on a
    // known descriptor that the exec keeps open.
    signal(SIGINT, SIG_IGN);
    signal(SIGTERM, SIG_IGN);
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(112);
    if (sv[1] == kExecSocketFd ? fcntl(sv[1], F_SETFD, 0) < 0 : dup2(sv[1], kExecSocketFd) < 0) _exit(113);
    execvp(cargv[0], cargv.data());
    _exit(127);
  }
  ::close(sv[1]);
  sock_ = sv[0];
  if (exec_under) await_worker();
}

void PosixProcess::await_worker() {
  // The exec'd worker announces itself with one empty Reply once it serves
  // (its preload is set up by then: libfiu's control fifo exists).
  pollfd p{sock_, POLLIN, 0};
  int r;
  do r = poll(&p, 1, int(timeout_.count()));
  while (r < 0 && errno == EINTR);
  Reply ready{};
  if (r > 0 && read_all(sock_, &ready, sizeof ready)) return;
  const std::string why = r == 0 ? "harness: the exec'd worker did not start within " +
                                       std::to_string(timeout_.count()) + " ms"
                                 : death() + " before it served (exec'd worker)";
  // The destructor does not run for a constructor that throws.
  const pid_t pid = pid_;
  if (!kill_worker(timeout_) && pid > 0) adopt_stuck_child(pid);
  throw std::runtime_error(why);
}

PosixProcess::~PosixProcess() {
  // A worker stuck in the kernel (a call that hung) must not hold up the
  // runner: it is left to reap_stuck_programs(), once the device lets go.
  const pid_t pid = pid_;
  if (!kill_worker(std::chrono::milliseconds(200)) && pid > 0) adopt_stuck_child(pid);
}

bool PosixProcess::kill_worker(std::chrono::milliseconds grace) {
  if (sock_ >= 0) ::close(sock_);
  sock_ = -1;
  if (pid_ <= 0) return true;
  ::kill(pid_, SIGKILL);
  const auto deadline = std::chrono::steady_clock::now() + grace;
  for (;;) {
    int status = 0;
    pid_t r = waitpid(pid_, &status, WNOHANG);
    if (r == pid_ || (r < 0 && errno == ECHILD)) {
      pid_ = -1;
      return true;
    }
    if (std::chrono::steady_clock::now() > deadline) return false;  // in the kernel still
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

SysResult PosixProcess::call(const Request& req, std::span<std::byte> out,
                            std::vector<std::byte>* raw) {
  if (hung_ || sock_ < 0) return SysResult::hang();
  Header h = req.h;
  h.path_len = uint32_t(req.path.size());
  h.path2_len = uint32_t(req.path2.size());
  h.data_len = req.data.size();
  if (!write_all(sock_, &h, sizeof h) || !write_all(sock_, req.path.data(), req.path.size()) ||
      !write_all(sock_, req.path2.data(), req.path2.size()) ||
      !write_all(sock_, req.data.data(), req.data.size()))
    throw std::runtime_error(death());
  pollfd p{sock_, POLLIN, 0};
  const auto deadline = std::chrono::steady_clock::now() + timeout_;
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      hung_ = true;
      return SysResult::hang();
    }
    // In slices, so that a signal that came before the wait began is seen too.
    int r = poll(&p, 1, int(std::min<int64_t>(left.count(), 100)));
    if (r > 0) break;
    if (r < 0 && errno != EINTR) throw std::runtime_error("poll on worker socket failed");
    // SIGINT/SIGTERM: the run is stopping, so the call is not waited for.
    // Its reply may still come, so the worker takes no more requests (as
    // after a hang); the runner does not keep the case's result.
    if (interrupted()) {
      hung_ = true;
      return SysResult::harness_failure(kInterrupted);
    }
  }
  Reply rep{};
  if (!read_all(sock_, &rep, sizeof rep)) throw std::runtime_error(death());
  std::vector<std::byte> tmp(rep.data_len);
  if (!read_all(sock_, tmp.data(), tmp.size())) throw std::runtime_error(death());
  if (!out.empty() && !tmp.empty()) std::memcpy(out.data(), tmp.data(), std::min(out.size(), tmp.size()));
  if (raw) *raw = std::move(tmp);
  return rep.ret < 0 ? SysResult::failure(rep.err) : SysResult::success(rep.ret);
}

std::string PosixProcess::death() {
  std::string how = "its socket closed";
  int status = 0;
  for (int i = 0; i < 100 && pid_ > 0; ++i) {  // it is dying: wait up to a second to say how
    const pid_t r = waitpid(pid_, &status, WNOHANG);
    if (r == pid_) {
      how = WIFSIGNALED(status) ? "killed by " + signal_name(WTERMSIG(status))
                                : "exited " + std::to_string(WEXITSTATUS(status));
      break;
    }
    if (r < 0) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  const std::string msg = "harness: worker process " + std::to_string(pid_) + " died (" + how + ")";
  if (how != "its socket closed") pid_ = -1;
  if (sock_ >= 0) ::close(sock_);
  sock_ = -1;
  return msg;
}

SysResult PosixProcess::open(const std::string& path, const OpenFlags& flags) {
  Request r;
  r.h.op = Op::open;
  r.path = path;
  r.h.flags = (flags.create ? kCreate : 0) | (flags.truncate ? kTrunc : 0) |
              (flags.direct ? kDirect : 0) | (flags.sync ? kSync : 0) |
              (flags.dsync ? kDsync : 0) | (flags.read_only ? kRdonly : 0) |
              (flags.directory ? kDirectory : 0);
  return call(r);
}

SysResult PosixProcess::close(int fd) {
  Request r;
  r.h.op = Op::close;
  r.h.fd = fd;
  return call(r);
}

SysResult PosixProcess::pwrite(int fd, std::span<const std::byte> data, uint64_t offset) {
  Request r;
  r.h.op = Op::pwrite;
  r.h.fd = fd;
  r.h.offset = offset;
  r.data = data;
  return call(r);
}

SysResult PosixProcess::pread(int fd, std::span<std::byte> out, uint64_t offset) {
  Request r;
  r.h.op = Op::pread;
  r.h.fd = fd;
  r.h.offset = offset;
  r.h.length = out.size();
  return call(r, out);
}

SysResult PosixProcess::fsync(int fd) {
  Request r;
  r.h.op = Op::fsync;
  r.h.fd = fd;
  return call(r);
}

SysResult PosixProcess::fdatasync(int fd) {
  Request r;
  r.h.op = Op::fdatasync;
  r.h.fd = fd;
  return call(r);
}

SysResult PosixProcess::sync_file_range(int fd, uint64_t offset, uint64_t length,
                                        const SyncFileRangeFlags& flags) {
  Request r;
  r.h.op = Op::sync_file_range;
  r.h.fd = fd;
  r.h.offset = offset;
  r.h.length = length;
  r.h.flags = (flags.wait_before ? SYNC_FILE_RANGE_WAIT_BEFORE : 0) |
              (flags.write ? SYNC_FILE_RANGE_WRITE : 0) |
              (flags.wait_after ? SYNC_FILE_RANGE_WAIT_AFTER : 0);
  return call(r);
}

SysResult PosixProcess::msync_write(int fd, std::span<const std::byte> data, uint64_t offset) {
  Request r;
  r.h.op = Op::msync_write;
  r.h.fd = fd;
  r.h.offset = offset;
  r.data = data;
  return call(r);
}

MappedRead PosixProcess::mmap_read(int fd, std::span<std::byte> out, uint64_t offset) {
  Request r;
  r.h.op = Op::mmap_read;
  r.h.fd = fd;
  r.h.offset = offset;
  r.h.length = out.size();
  std::vector<std::byte> reply;
  MappedRead m;
  m.result = call(r, {}, &reply);
  if (!m.result.ok() || reply.empty()) return m;
  const long page = sysconf(_SC_PAGESIZE);
  const size_t pages = (offset % uint64_t(page) + out.size() + size_t(page) - 1) / size_t(page);
  if (reply.size() < 1 + pages) {
    m.result = SysResult::harness_failure("mmap_read reply");
    return m;
  }
  if (reply[0] == std::byte{1}) m.signal = "SIGBUS";
  for (size_t i = 0; i < pages; ++i) m.resident.push_back(reply[1 + i] == std::byte{1});
  const size_t copied = std::min(out.size(), reply.size() - 1 - pages);
  std::memcpy(out.data(), reply.data() + 1 + pages, copied);
  m.copied = copied;
  if (!m.signal.empty()) m.result = SysResult{-1, 0, false};
  return m;
}

SysResult PosixProcess::syncfs(int fd) {
  Request r;
  r.h.op = Op::syncfs;
  r.h.fd = fd;
  return call(r);
}

SysResult PosixProcess::sync() {
  Request r;
  r.h.op = Op::sync;
  return call(r);
}

SysResult PosixProcess::stat(const std::string& path) {
  Request r;
  r.h.op = Op::stat;
  r.path = path;
  return call(r);
}

SysResult PosixProcess::rename(const std::string& from, const std::string& to) {
  Request r;
  r.h.op = Op::rename;
  r.path = from;
  r.path2 = to;
  return call(r);
}

SysResult PosixProcess::unlink(const std::string& path) {
  Request r;
  r.h.op = Op::unlink;
  r.path = path;
  return call(r);
}

}  // namespace syncprobe
