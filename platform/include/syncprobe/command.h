#pragma once
// Running the system's tools (mkfs, mount, losetup, qemu) with a deadline.
#include <chrono>
#include <string>
#include <vector>

namespace syncprobe {

struct [[nodiscard]] CommandResult {
  int exit_code = -1;      // -1 when killed by a signal or the deadline
  bool timed_out = false;
  std::string output;      // stdout and stderr, interleaved
  bool ok() const { return exit_code == 0; }
  std::string describe(const std::vector<std::string>& argv) const;  // for messages
};

// Runs argv[0] (looked up in PATH, /usr/sbin and /sbin) with stdin from
// /dev/null. Past `timeout` the program is killed (SIGKILL) and reaped.
CommandResult run_program(const std::vector<std::string>& argv,
                          std::chrono::milliseconds timeout = std::chrono::seconds(120));

// The full path of a program, or "" when it is not installed.
std::string find_program(const std::string& name);

}  // namespace syncprobe
