#include "syncprobe/command.h"

#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <poll.h>
#include <sys/wait.h>
#include <unistd.h>

namespace syncprobe {

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
  if (timed_out) s += "timed out";
  else if (exit_code < 0) s += "was killed";
  else s += "exited " + std::to_string(exit_code);
  std::string out = output;
  while (!out.empty() && (out.back() == '\n' || out.back() == ' ')) out.pop_back();
  if (!out.empty()) s += ": " + out;
  return s;
}

CommandResult run_program(const std::vector<std::string>& argv, std::chrono::milliseconds timeout) {
  CommandResult res;
  const std::string exe = find_program(argv.at(0));
  if (exe.empty()) {
    res.exit_code = 127;
    res.output = argv[0] + ": not installed";
    return res;
  }
  int pipefd[2];
  if (pipe2(pipefd, O_CLOEXEC) < 0) {
    res.output = std::string("pipe: ") + std::strerror(errno);
    return res;
  }
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = fork();
  if (pid == 0) {
    int devnull = open("/dev/null", O_RDONLY);
    dup2(devnull, 0);
    dup2(pipefd[1], 1);
    dup2(pipefd[1], 2);
    // Own process group: a Ctrl-C meant for the runner must not kill a mkfs
    // or mount halfway; the runner stops after the case and cleans up.
    setpgid(0, 0);
    signal(SIGINT, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
    execv(exe.c_str(), args.data());
    _exit(127);
  }
  close(pipefd[1]);
  const auto deadline = std::chrono::steady_clock::now() + timeout;
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
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (!res.timed_out && WIFEXITED(status)) res.exit_code = WEXITSTATUS(status);
  return res;
}

}  // namespace syncprobe
