#pragma once
// What each `syncprobe` subcommand does, as functions the CLI (main.cpp) calls.
// Each returns the process exit status: 0 done (whatever the verdicts),
// 2 bad input (the message names file, line and fix), 1 internal failure.
#include <iosfwd>
#include <optional>
#include <string>
#include <vector>

#include "syncprobe/report.h"

namespace syncprobe {

struct RunOptions {
  std::vector<std::string> targets;   // names or patterns ("reference:*"); empty: defaults
  std::vector<std::string> cases;     // ids or globs; empty: all
  std::string cases_dir;              // default: default_cases_dir() (paths.h)
  std::string out_dir;                // default: results/<run-id> under the current directory
  std::string shard;                  // "K/N": run only that slice of the plan (engine/plan.h)
  int jobs = 1;
  int vm_jobs = 2;                    // VM guests booted at once (one per core suits TCG)
  int step_timeout_ms = 10000;
  bool step_timeout_given = false;  // --step-timeout was on the command line
  bool progress = true;               // progress line on a terminal
  bool verbose = false;
  bool resume = false;                // finish the run in out_dir (same run id), running what is missing
  bool overwrite = false;             // replace the run in out_dir
  std::vector<std::string> command_line;  // argv, recorded in run.json
};
int run_command(const RunOptions& opts, std::ostream& out, std::ostream& err);

// `syncprobe merge RUN... -o OUT`: the shards of one sharded run (or runs of
// one catalogue on different targets) combined into OUT, classified as one run.
// Refuses runs of different catalogues or syncprobe versions, missing or
// repeated shards, and a target measured on two different platforms.
int merge_command(const std::vector<std::string>& runs, const std::string& out_dir,
                  const std::vector<std::string>& command_line, std::ostream& out, std::ostream& err);

// A new run id, "YYYYMMDD-HHMMSS-xxxx" (UTC, 16 random bits), and the UTC time in `format`.
std::string new_run_id();

// Classifies RESULTS_DIR (writes RESULTS_DIR/summary.json) and prints the
// profiles and rule verdicts.
int classify_command(const std::string& results_dir, bool json, std::ostream& out,
                     std::ostream& err);

int report_command(const ReportOptions& opts, std::ostream& out, std::ostream& err);

// `syncprobe list cases|steps|targets|policies`.
int list_command(const std::string& what, const std::string& cases_dir, std::ostream& out,
                 std::ostream& err);

// `syncprobe vm list|status|fetch|add|build` (guest kernels and their initramfs).
struct VmOptions {
  std::string action;                // list, status, fetch, add, build
  std::vector<std::string> kernels;  // fetch, build: series or names ("all")
  bool refresh = false;              // list: download the package lists again
  std::string name, kernel, modules, config;  // add
  std::vector<std::string> debs;              // add
  bool force = false;                         // add
};
int vm_command(const VmOptions& o, std::ostream& out, std::ostream& err);

// `syncprobe mount`: the reference file system through FUSE (refmount/).
struct MountCliOptions {
  std::string policy;
  std::string mountpoint;
  std::optional<uint64_t> size, memory_limit, error_limit, max_file_size, preallocate;
  bool background = false;
  std::string passthrough_dir;  // mount a bare passthrough of this directory instead
  std::string control_dir;      // where the control socket goes (default: a fresh private directory)
};
int mount_command(const MountCliOptions& opts, std::ostream& out, std::ostream& err);

// `syncprobe fault MOUNTPOINT [ACTION]`: a fault or an event for a mount.
struct FaultCliOptions {
  std::string mountpoint;
  std::string action = "fail";  // fail | heal | grow | power-cut | drop-caches | writeback | remount | status
  std::string io = "write", mode = "error", errno_name = "EIO", where, range;
  std::optional<uint32_t> count;
  std::optional<uint64_t> bytes;
  bool json = false;
};
int fault_command(const FaultCliOptions& opts, std::ostream& out, std::ostream& err);

struct BenchOptions {
  std::vector<std::string> targets;
  std::string out_dir;
  int iterations = 50;
  bool smoke = false;                 // minimal iterations (CI)
  // --fio: the fio jobs on the mounted reference beside a bare FUSE
  // passthrough and tmpfs (libexec/syncprobe/syncprobe-bench-fio).
  bool fio = false;
  std::vector<std::string> policies;  // default proposed, linux-4.17
  std::vector<std::string> mounts;    // NAME=DIR: other mounts measured the same way
  int runtime = 5;                    // seconds per timed fio job
};
int bench_command(const BenchOptions& opts, std::ostream& out, std::ostream& err);

}  // namespace syncprobe
