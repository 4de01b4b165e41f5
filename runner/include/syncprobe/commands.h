#pragma once
// What each `syncprobe` subcommand does, as functions the CLI (main.cpp) calls.
// Each returns the process exit status: 0 done (whatever the verdicts),
// 2 bad input (the message names file, line and fix), 1 internal failure.
#include <iosfwd>
#include <optional>
#include <string>
#include <vector>

namespace syncprobe {

struct RunOptions {
  std::vector<std::string> targets;   // names or patterns ("reference:*"); empty: defaults
  std::vector<std::string> cases;     // ids or globs; empty: all
  std::string cases_dir;              // default: <repo>/cases (see default_cases_dir)
  std::string out_dir;                // default: results/<run-id>
  int jobs = 1;
  int step_timeout_ms = 10000;
  bool progress = true;               // progress line on a terminal
  bool verbose = false;
  std::vector<std::string> command_line;  // argv, recorded in run.json
};
int run_command(const RunOptions& opts, std::ostream& out, std::ostream& err);

// Classifies RESULTS_DIR (writes RESULTS_DIR/summary.json) and prints the
// profiles and rule verdicts.
int classify_command(const std::string& results_dir, bool json, std::ostream& out,
                     std::ostream& err);

struct ReportOptions {
  std::string results_dir;                 // RUN_A with --compare
  std::string out_dir;                     // default: reports/<run-id>
  std::optional<std::string> compare_with; // RUN_B
};
int report_command(const ReportOptions& opts, std::ostream& out, std::ostream& err);

// `syncprobe list cases|steps|targets|policies`.
int list_command(const std::string& what, const std::string& cases_dir, std::ostream& out,
                 std::ostream& err);

// `syncprobe vm fetch|build|status` (VM kernels and the guest initramfs).
int vm_command(const std::vector<std::string>& args, std::ostream& out, std::ostream& err);

struct BenchOptions {
  std::vector<std::string> targets;
  std::string out_dir;
  int iterations = 50;
  bool smoke = false;                 // minimal iterations (CI)
};
int bench_command(const BenchOptions& opts, std::ostream& out, std::ostream& err);

// <repo>/cases when run from a build tree or the repo, else $SYNCPROBE_CASES.
std::string default_cases_dir();

}  // namespace syncprobe
