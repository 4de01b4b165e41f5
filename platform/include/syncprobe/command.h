#pragma once
// Running the system's tools (mkfs, mount, losetup, qemu) with a deadline.
// No shell: arguments are passed as they are, so no path can run a command.
#include <sys/types.h>

#include <chrono>
#include <string>
#include <vector>

namespace syncprobe {

struct [[nodiscard]] CommandResult {
  int exit_code = -1;      // -1 when killed by a signal or the deadline
  bool timed_out = false;
  bool stuck = false;      // timed out and did not die when killed (in the kernel): reaped later
  std::string output;      // stdout and stderr, interleaved (stderr only with stdout_file)
  bool ok() const { return exit_code == 0; }
  std::string describe(const std::vector<std::string>& argv) const;  // for messages
};

struct CommandOptions {
  std::chrono::milliseconds timeout = std::chrono::seconds(120);
  std::string cwd;          // working directory; "" keeps the runner's
  std::string stdin_file;   // stdin from this file; "" for /dev/null
  std::string stdout_file;  // stdout into this new file (not through a symlink); "" to capture it
};

// Runs argv[0] (looked up in PATH, /usr/sbin and /sbin) in its own process
// group. Past the timeout the group is killed (SIGKILL); a program that does
// not die within a second (stuck in the kernel on a hung device) is left to
// be reaped by reap_stuck_programs() and reported as `stuck`, so the call
// itself never waits longer than its timeout plus that second.
CommandResult run_program(const std::vector<std::string>& argv, const CommandOptions& options);
CommandResult run_program(const std::vector<std::string>& argv,
                          std::chrono::milliseconds timeout = std::chrono::seconds(120));

// Reaps programs left stuck by run_program (and children handed over with
// adopt_stuck_child), waiting at most `grace`; the number still running afterwards.
size_t reap_stuck_programs(std::chrono::milliseconds grace);
// Hands a killed child that is stuck in the kernel to reap_stuck_programs().
void adopt_stuck_child(pid_t pid);

// The full path of a program, or "" when it is not installed.
std::string find_program(const std::string& name);

}  // namespace syncprobe
