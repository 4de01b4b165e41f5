#include "qemu_io_session.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <thread>

#include "syncprobe/command.h"

namespace syncprobe {
namespace {

using namespace std::chrono_literals;

constexpr std::string_view kPrompt = "qemu-io> ";

size_t count_prompts(const std::string& s) {
  size_t n = 0;
  for (size_t at = s.find(kPrompt); at != std::string::npos; at = s.find(kPrompt, at + 1)) ++n;
  return n;
}

std::string without_prompts(std::string s) {
  for (size_t at = s.find(kPrompt); at != std::string::npos; at = s.find(kPrompt, at))
    s.erase(at, kPrompt.size());
  return s;
}

}  // namespace

std::unique_ptr<QemuIoSession> QemuIoSession::start(const std::vector<std::string>& argv,
                                                    AppSession& session, std::string& error) {
  const std::string program = find_program(argv.front());
  if (program.empty()) {
    error = argv.front() + " is not installed (scripts/setup)";
    return nullptr;
  }
  int in[2], out[2];
  if (pipe2(in, O_CLOEXEC) != 0) {
    error = std::string("pipe: ") + std::strerror(errno);
    return nullptr;
  }
  if (pipe2(out, O_CLOEXEC) != 0) {
    error = std::string("pipe: ") + std::strerror(errno);
    ::close(in[0]);
    ::close(in[1]);
    return nullptr;
  }
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  const pid_t pid = fork();
  if (pid == 0) {
    setpgid(0, 0);
    dup2(in[0], 0);
    dup2(out[1], 1);
    dup2(out[1], 2);
    execv(program.c_str(), args.data());
    _exit(127);
  }
  ::close(in[0]);
  ::close(out[1]);
  if (pid < 0) {
    error = std::string("fork: ") + std::strerror(errno);
    ::close(in[1]);
    ::close(out[0]);
    return nullptr;
  }
  std::unique_ptr<QemuIoSession> s(new QemuIoSession(pid, in[1], out[0], session));
  if (!s->wait_prompts(1, std::chrono::steady_clock::now() + session.timeout())) {
    error = "qemu-io printed no prompt: " + s->unread_;
    return nullptr;  // the destructor kills it
  }
  s->prompts_seen_ = 1;
  s->unread_.clear();
  if (auto* injector = session.process_injector()) injector->attach(pid);
  return s;
}

QemuIoSession::~QemuIoSession() { stop(true); }

bool QemuIoSession::wait_prompts(size_t prompts, std::chrono::steady_clock::time_point deadline) {
  char buf[4096];
  while (prompts_seen_ + count_prompts(unread_) < prompts) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left <= 0ms) return false;
    pollfd p{out_, POLLIN, 0};
    const int r = poll(&p, 1, int(std::min<int64_t>(left.count(), 200)));
    if (r < 0 && errno != EINTR) return false;
    if (r <= 0) continue;
    const ssize_t n = ::read(out_, buf, sizeof buf);
    if (n <= 0) return false;  // qemu-io is gone
    unread_.append(buf, size_t(n));
  }
  return true;
}

SysResult QemuIoSession::run(const std::vector<std::string>& commands, nlohmann::json& evidence,
                             std::string* output) {
  evidence["command"] = {"qemu-io (kept running)", "pid " + std::to_string(pid_)};
  evidence["commands"] = commands;
  if (pid_ <= 0) {
    evidence["error"] = "qemu-io is not running";
    return SysResult::harness_failure("app driver");
  }
  // One command at a time: qemu-io prints no prompt for a line it read ahead.
  bool done = true;
  const auto deadline = std::chrono::steady_clock::now() + session_.timeout();
  for (const auto& c : commands) {
    const std::string line = c + "\n";
    if (::write(in_, line.data(), line.size()) != ssize_t(line.size())) {
      evidence["error"] = std::string("writing to qemu-io: ") + std::strerror(errno);
      return SysResult::harness_failure("app driver");
    }
    ++commands_sent_;
    done = wait_prompts(commands_sent_ + 1, deadline);
    if (!done) break;
  }
  prompts_seen_ += count_prompts(unread_);
  const std::string out = without_prompts(unread_);
  unread_.clear();
  if (output) *output = out;
  evidence["output"] = out.size() > 4000 ? out.substr(0, 4000) : out;
  if (!done) {
    int status = 0;
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = 0;
      evidence["exit_status"] = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
      evidence["error"] = "qemu-io exited";
      return SysResult::failure(0);
    }
    evidence["timed_out"] = true;
    return SysResult::hang();
  }
  // qemu-io prints "<command> failed: <strerror>" and goes on.
  const bool failed = out.find(" failed: ") != std::string::npos;
  evidence["exit_status"] = failed ? 1 : 0;
  return failed ? SysResult::failure(0) : SysResult::success(0);
}

std::string QemuIoSession::stop(bool kill) {
  if (pid_ <= 0) return "";
  if (auto* injector = session_.process_injector()) injector->detach(pid_);
  std::string note;
  if (!kill && ::write(in_, "quit\n", 5) == 5) {
    for (int i = 0; i < 40; ++i) {
      if (waitpid(pid_, nullptr, WNOHANG) == pid_) {
        pid_ = 0;
        break;
      }
      std::this_thread::sleep_for(50ms);
    }
  }
  if (pid_ > 0) {
    ::kill(-pid_, SIGKILL);
    bool gone = false;
    for (int i = 0; i < 40 && !gone; ++i) {
      gone = waitpid(pid_, nullptr, WNOHANG) == pid_;
      if (!gone) std::this_thread::sleep_for(50ms);
    }
    if (!gone) {
      adopt_stuck_child(pid_);  // stuck in the kernel: reaped once the device lets go
      note = "qemu-io " + std::to_string(pid_) + " stuck in the kernel";
    } else if (!kill) {
      note = "qemu-io did not quit; killed";
    }
    pid_ = 0;
  }
  ::close(in_);
  ::close(out_);
  in_ = out_ = -1;
  return note;
}

}  // namespace syncprobe
