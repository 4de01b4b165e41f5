#include "syncprobe/command.h"

#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <poll.h>
#include <sys/wait.h>
#include <unistd.h>

#include <mutex>
#include <thread>

namespace syncprobe {
namespace {

std::mutex g_stuck_mu;
std::vector<pid_t> g_stuck;  // killed, not yet reaped

// Waits up to `grace` for `pid`; true once reaped.
bool reap_within(pid_t pid, std::chrono::milliseconds grace, int* status) {
  const auto deadline = std::chrono::steady_clock::now() + grace;
  for (;;) {
    const pid_t r = waitpid(pid, status, WNOHANG);
    if (r == pid || (r < 0 && errno != EINTR)) return true;
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

}  // namespace

std::string find_program(const std::string& name) {
  if (name.find('/') != std::string::npos) return access(name.c_str(), X_OK) == 0 ? name : "";
  std::string path = std::getenv("PATH") ? std::getenv("PATH") : "";
  path += ":/usr/local/sbin:/usr/sbin:/sbin:/usr/bin:/bin";
  size_t start = 0;
  while (start <= path.size()) {
    size_t end = path.find(':', start);
    if (end == std::string::npos) end = path.size();
    const std::string dir = path.substr(start, end - start);
    if (!dir.empty()) {
      const std::string full = dir + "/" + name;
      if (access(full.c_str(), X_OK) == 0) return full;
    }
    start = end + 1;
  }
  return "";
}

std::string CommandResult::describe(const std::vector<std::string>& argv) const {
  std::string cmd;
  for (const auto& a : argv) cmd += (cmd.empty() ? "" : " ") + a;
  std::string s = "'" + cmd + "' ";
  if (timed_out) s += stuck ? "timed out (stuck in the kernel)" : "timed out";
  else if (exit_code < 0) s += "was killed";
  else s += "exited " + std::to_string(exit_code);
  std::string out = output;
  while (!out.empty() && (out.back() == '\n' || out.back() == ' ')) out.pop_back();
  if (!out.empty()) s += ": " + out;
  return s;
}

CommandResult run_program(const std::vector<std::string>& argv, std::chrono::milliseconds timeout) {
  CommandOptions o;
  o.timeout = timeout;
  return run_program(argv, o);
}

CommandResult run_program(const std::vector<std::string>& argv, const CommandOptions& o) {
  CommandResult res;
  const std::string exe = find_program(argv.at(0));
  if (exe.empty()) {
    res.exit_code = 127;
    res.output = argv[0] + ": not installed";
    return res;
  }
  // Files are opened here, not in the child, so that failures have a message.
  int in = ::open(o.stdin_file.empty() ? "/dev/null" : o.stdin_file.c_str(), O_RDONLY | O_CLOEXEC);
  if (in < 0) {
    res.output = (o.stdin_file.empty() ? "/dev/null" : o.stdin_file) + ": " + std::strerror(errno);
    return res;
  }
  int out = -1;
  if (!o.stdout_file.empty()) {
    out = ::open(o.stdout_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (out < 0) {
      res.output = o.stdout_file + ": " + std::strerror(errno);
      ::close(in);
      return res;
    }
  }
  int pipefd[2];
  if (pipe2(pipefd, O_CLOEXEC) < 0) {
    res.output = std::string("pipe: ") + std::strerror(errno);
    ::close(in);
    if (out >= 0) ::close(out);
    return res;
  }
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = fork();
  if (pid == 0) {
    dup2(in, 0);
    dup2(out >= 0 ? out : pipefd[1], 1);
    dup2(pipefd[1], 2);
    // Own process group: a Ctrl-C meant for the runner must not kill a mkfs
    // or mount halfway; the runner stops after the case and cleans up.
    setpgid(0, 0);
    signal(SIGINT, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
    signal(SIGPIPE, SIG_DFL);
    if (!o.cwd.empty() && chdir(o.cwd.c_str()) != 0) _exit(126);
    execv(exe.c_str(), args.data());
    _exit(127);
  }
  ::close(in);
  if (out >= 0) ::close(out);
  close(pipefd[1]);
  if (pid < 0) {
    close(pipefd[0]);
    res.output = std::string("fork: ") + std::strerror(errno);
    return res;
  }
  const auto deadline = std::chrono::steady_clock::now() + o.timeout;
  char buf[4096];
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      res.timed_out = true;
      kill(-pid, SIGKILL);
      kill(pid, SIGKILL);
      break;
    }
    pollfd p{pipefd[0], POLLIN, 0};
    int r = poll(&p, 1, int(std::min<long long>(left.count(), 1000)));
    if (r < 0 && errno == EINTR) continue;
    if (r > 0) {
      ssize_t n = read(pipefd[0], buf, sizeof buf);
      if (n > 0) {
        if (res.output.size() < (1u << 20)) res.output.append(buf, size_t(n));
        continue;
      }
      if (n == 0) break;  // EOF: the program (and its children) closed the pipe
    }
  }
  close(pipefd[0]);
  int status = 0;
  if (res.timed_out) {
    if (!reap_within(pid, std::chrono::seconds(1), &status)) {
      res.stuck = true;
      std::lock_guard lock(g_stuck_mu);
      g_stuck.push_back(pid);
    }
    return res;
  }
  // EOF on the pipe: the program is exiting. Its children may hold the pipe
  // no longer, but it may still be in the kernel: bound that wait too.
  if (!reap_within(pid, o.timeout, &status)) {
    kill(-pid, SIGKILL);
    kill(pid, SIGKILL);
    res.timed_out = true;
    if (!reap_within(pid, std::chrono::seconds(1), &status)) {
      res.stuck = true;
      std::lock_guard lock(g_stuck_mu);
      g_stuck.push_back(pid);
    }
    return res;
  }
  if (WIFEXITED(status)) res.exit_code = WEXITSTATUS(status);
  return res;
}

void adopt_stuck_child(pid_t pid) {
  std::lock_guard lock(g_stuck_mu);
  g_stuck.push_back(pid);
}

size_t reap_stuck_programs(std::chrono::milliseconds grace) {
  std::lock_guard lock(g_stuck_mu);
  const auto deadline = std::chrono::steady_clock::now() + grace;
  std::vector<pid_t> left;
  for (pid_t pid : g_stuck) {
    const auto now = std::chrono::steady_clock::now();
    const auto rest = now < deadline ? std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now)
                                     : std::chrono::milliseconds(0);
    int status = 0;
    if (!reap_within(pid, rest, &status)) left.push_back(pid);
  }
  g_stuck = left;
  return left.size();
}

}  // namespace syncprobe
