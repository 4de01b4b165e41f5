#include "syncprobe/blockdev_injector.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "syncprobe/command.h"
#include "syncprobe/errno_names.h"
#include "syncprobe/linux_fs.h"
#include "syncprobe/paths.h"
#include "syncprobe/posix_process.h"

namespace syncprobe {
namespace {

using namespace std::chrono_literals;

std::string describe_status(int status) {
  if (WIFSIGNALED(status)) return "killed by " + signal_name(WTERMSIG(status));
  return "exited " + std::to_string(WEXITSTATUS(status));
}

// Moves `fd` above the range dup2 targets so that the child's dup2 calls
// cannot overwrite it.
int high(int fd) {
  const int h = fcntl(fd, F_DUPFD_CLOEXEC, 10);
  ::close(fd);
  return h;
}

}  // namespace

std::string blockdev_program() { return helper_program("syncprobe-blockdev"); }

BlockdevInjector::BlockdevInjector(const BlockdevOptions& o, Ledger& ledger) : opts_(o), ledger_(ledger) {
  const std::string exe = blockdev_program();
  if (exe.empty())
    throw std::runtime_error("syncprobe-blockdev not found (build it, or set SYNCPROBE_BLOCKDEV)");
  if (::mkdir((opts_.dir + "/fuse").c_str(), 0700) != 0 && errno != EEXIST)
    throw std::runtime_error("cannot create " + opts_.dir + "/fuse: " + std::strerror(errno));
  fuse_record_ = {Resource::Kind::mount, opts_.dir + "/fuse", 0, 0};
  ledger_.acquire(fuse_record_);
  int sv[2], out[2], go[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0 || pipe2(out, O_CLOEXEC) < 0 ||
      pipe2(go, O_CLOEXEC) < 0)
    throw std::runtime_error(std::string("syncprobe-blockdev: pipes: ") + std::strerror(errno));
  int log = ::open(log_path().c_str(), O_WRONLY | O_CREAT | O_APPEND | O_NOFOLLOW | O_CLOEXEC, 0600);
  int devnull = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (log < 0 || devnull < 0) throw std::runtime_error("cannot create " + log_path() + ": " + std::strerror(errno));
  log = high(log);
  devnull = high(devnull);
  const int child_out = high(out[1]), child_ctl = high(sv[1]), child_go = high(go[0]);
  const std::vector<std::string> argv = {
      exe, "--image", opts_.image, "--size", std::to_string(opts_.size), "--mountpoint",
      opts_.dir + "/fuse", "--control-fd", "3", "--step-timeout-ms",
      std::to_string(opts_.step_timeout.count() * 3)};
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_ = fork();
  if (pid_ == 0) {
    // Its own process group: a Ctrl-C to the runner must not kill the device
    // under a mount; the runner stops it after the case.
    setpgid(0, 0);
    signal(SIGPIPE, SIG_DFL);
    char c;
    if (::read(child_go, &c, 1) != 1) _exit(0);  // the runner died before recording us
    dup2(devnull, 0);
    dup2(child_out, 1);
    dup2(log, 2);
    dup2(child_ctl, 3);  // dup2 clears close-on-exec on the copies
    execv(exe.c_str(), args.data());
    _exit(127);
  }
  ::close(child_out);
  ::close(child_ctl);
  ::close(child_go);
  ::close(log);
  ::close(devnull);
  sock_ = sv[0];
  if (pid_ < 0) {
    ::close(go[1]);
    ::close(out[0]);
    throw std::runtime_error(std::string("fork: ") + std::strerror(errno));
  }
  record_ = {Resource::Kind::process, "syncprobe-blockdev", pid_, process_start_time(pid_)};
  try {
    ledger_.acquire(record_);
  } catch (...) {
    ::close(go[1]);
    ::close(out[0]);
    stop();
    throw;
  }
  const bool went = ::write(go[1], "g", 1) == 1;
  ::close(go[1]);
  std::string got;
  const auto deadline = std::chrono::steady_clock::now() + 20s;
  while (went && got.find("ready") == std::string::npos) {
    pollfd p{out[0], POLLIN, 0};
    if (std::chrono::steady_clock::now() > deadline) break;
    const int r = poll(&p, 1, 200);
    if (r < 0 && errno != EINTR) break;
    if (r > 0) {
      char buf[256];
      const ssize_t n = ::read(out[0], buf, sizeof buf);
      if (n <= 0) break;
      got.append(buf, size_t(n));
    }
  }
  ::close(out[0]);
  if (got.find("ready") == std::string::npos) {
    stop();
    throw std::runtime_error("syncprobe-blockdev did not start: " + log_tail(2000));
  }
  // A throwing constructor runs no destructor: a daemon that dies here must
  // still be stopped and its (now dead) FUSE mount taken down.
  try {
    nlohmann::json d;
    SysResult c = reply_result(command({{"cmd", "cache"}, {"volatile", true}}), d);
    (void)c;  // reply_result throws when the daemon refuses
  } catch (...) {
    stop();
    throw;
  }
}

BlockdevInjector::~BlockdevInjector() { stop(); }

void BlockdevInjector::stop() {
  if (sock_ >= 0) ::close(sock_);  // the daemon releases whatever it holds
  sock_ = -1;
  if (pid_ > 0) {
    kill(pid_, SIGTERM);
    int status = 0;
    bool reaped = false;
    for (int i = 0; i < 500 && !reaped; ++i) {  // up to 10 s: unmounting can be slow under load
      if (waitpid(pid_, &status, WNOHANG) == pid_) reaped = true;
      else std::this_thread::sleep_for(20ms);
    }
    if (!reaped) {
      kill(pid_, SIGKILL);
      waitpid(pid_, &status, 0);
    }
    pid_ = -1;
  }
  // A daemon that was killed leaves a dead FUSE mount, on which even stat
  // fails (ENOTCONN): look in the mount table, not at the directory.
  for (const auto& m : mounts_under(opts_.dir + "/fuse")) {
    CommandResult r = run_program({"umount", "-l", m}, 10s);
    (void)r;  // gone already: nothing to do
  }
  if (record_.pid) ledger_.release(record_);
  record_ = {};
  if (mounts_under(opts_.dir + "/fuse").empty() && !fuse_record_.what.empty()) {
    ledger_.release(fuse_record_);
    fuse_record_ = {};
  }
}

std::string BlockdevInjector::log_tail(size_t max) const {
  std::ifstream in(log_path());
  std::stringstream ss;
  ss << in.rdbuf();
  const std::string log = ss.str();
  return log.size() > max ? log.substr(log.size() - max) : log;
}

std::optional<std::string> BlockdevInjector::failure() {
  if (died_.empty() && pid_ > 0) {
    int status = 0;
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      died_ = "daemon pid " + std::to_string(pid_) + " " + describe_status(status);
      pid_ = -1;
    }
  }
  if (died_.empty()) return std::nullopt;
  return died_;
}

nlohmann::json BlockdevInjector::command(const nlohmann::json& req) {
  auto gone = [&](const std::string& what) {
    const auto why = failure();
    return std::runtime_error("harness: the fuse-blockdev daemon " + (why ? *why : what) +
                              " (request " + req.dump() + ")");
  };
  if (sock_ < 0) throw gone("is not running");
  const std::string line = req.dump() + "\n";
  if (::send(sock_, line.data(), line.size(), MSG_NOSIGNAL) != ssize_t(line.size()))
    throw gone("went away");
  std::string reply;
  const auto deadline = std::chrono::steady_clock::now() + 30s;
  for (;;) {
    pollfd p{sock_, POLLIN, 0};
    if (std::chrono::steady_clock::now() > deadline) throw gone("did not answer");
    const int r = poll(&p, 1, 200);
    if (r < 0 && errno != EINTR) throw gone("poll failed");
    if (r <= 0) continue;
    char buf[512];
    const ssize_t n = ::recv(sock_, buf, sizeof buf, 0);
    if (n <= 0) {
      // Give a dying daemon a moment to be reaped, so the message says how it ended.
      for (int i = 0; i < 50 && !failure(); ++i) std::this_thread::sleep_for(20ms);
      throw gone("closed its control channel");
    }
    reply.append(buf, size_t(n));
    if (const auto nl = reply.find('\n'); nl != std::string::npos) {
      reply.resize(nl);
      break;
    }
  }
  return nlohmann::json::parse(reply);
}

SysResult BlockdevInjector::reply_result(const nlohmann::json& reply, nlohmann::json& detail) {
  if (!reply.value("ok", false))
    throw std::runtime_error("harness: the fuse-blockdev daemon refused: " +
                             reply.value("error", std::string("no reason given")));
  for (auto& [k, v] : reply.items())
    if (k != "ok") detail[k] = v;
  return SysResult::success();
}

std::set<std::string> BlockdevInjector::capabilities() const {
  return {"fault",      "fault:write",    "fault:read",   "fault:flush", "fault:drop",
          "fault:hang", "fault:data",     "fault:metadata", "fault:device", "thin-pool",
          "power-cut",  "fault:errno"};
}

SysResult BlockdevInjector::fault(const FaultRule& rule, nlohmann::json& detail) {
  nlohmann::json cmd = {{"cmd", "fault"},
                        {"op", std::string(to_string(rule.op))},
                        {"mode", std::string(to_string(rule.mode))},
                        {"errno", errno_name(rule.err ? rule.err : EIO)},
                        {"invert", rule.invert},
                        {"ranges", nlohmann::json::array()}};
  for (const auto& r : rule.ranges) cmd["ranges"].push_back({r.offset, r.length});
  if (rule.count) cmd["count"] = *rule.count;
  return reply_result(command(cmd), detail);
}

SysResult BlockdevInjector::heal() {
  nlohmann::json d;
  return reply_result(command({{"cmd", "heal"}}), d);
}

SysResult BlockdevInjector::thin_limit(uint64_t headroom, FaultMode when_full, nlohmann::json& detail) {
  return reply_result(command({{"cmd", "thin"},
                               {"headroom", headroom},
                               {"when_full", when_full == FaultMode::hang ? "queue" : "error"}}),
                      detail);
}

SysResult BlockdevInjector::grow(uint64_t bytes, nlohmann::json& detail) {
  return reply_result(command({{"cmd", "grow"}, {"by", bytes}}), detail);
}

SysResult BlockdevInjector::power_cut() {
  nlohmann::json d;
  return reply_result(command({{"cmd", "power_cut"}}), d);
}

SysResult BlockdevInjector::power_restore() {
  nlohmann::json d;
  return reply_result(command({{"cmd", "power_on"}}), d);
}

void BlockdevInjector::release_everything() {
  try {
    command({{"cmd", "release"}});
  } catch (const std::exception&) {
    // A dead daemon holds nothing: its FUSE connection fails every request.
  }
}

uint64_t BlockdevInjector::injected() {
  if (failure()) return last_hits_;
  try {
    last_hits_ = command({{"cmd", "stats"}}).value("hits", last_hits_);
  } catch (const std::exception&) {
    // failure() says why; the count stays at what was last known.
  }
  return last_hits_;
}

nlohmann::json BlockdevInjector::environment() const {
  return {{"injector", "fuse-blockdev"},
          {"device", "loop over a FUSE file (syncprobe-blockdev), volatile write cache"},
          {"image_bytes", opts_.size}};
}

}  // namespace syncprobe
