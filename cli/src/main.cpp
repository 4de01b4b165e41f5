// syncprobe: the command line. Each subcommand is a function in commands.h;
// this file only parses arguments (CLI11) and maps usage errors to exit 2.
#include <CLI/CLI.hpp>

#include <csignal>
#include <iostream>
#include <string>
#include <vector>

#include "syncprobe/commands.h"
#include "syncprobe/completion.h"
#include "syncprobe/paths.h"

int main(int argc, char** argv) {
  // A worker or daemon that dies is an error of its case, never a SIGPIPE
  // that kills the runner with mounts left behind.
  signal(SIGPIPE, SIG_IGN);
  using namespace syncprobe;
  CLI::App app{"syncprobe: what fsync() promises after a write fails, measured per kernel and "
               "filesystem, and compared with reference policies"};
  app.name("syncprobe");
  app.set_version_flag("--version", std::string("syncprobe ") + SYNCPROBE_VERSION);
  app.require_subcommand(1);
  app.footer("Exit status: 0 done (whatever the verdicts), 2 bad input, 1 internal failure.\n"
             "Docs: README.md and docs/ in the source tree or /usr/share/doc/syncprobe (design, cases, results, "
             "classifier, report, host, vm, bench, matrix).");

  // list
  std::string list_what;
  std::string list_cases_dir;
  auto* list = app.add_subcommand(
      "list", "List cases, step kinds, targets (with availability), policies, capabilities or the taxonomy");
  list->add_option("what", list_what, "cases | steps | targets | policies | capabilities | taxonomy")
      ->required()
      ->check(CLI::IsMember({"cases", "steps", "targets", "policies", "capabilities", "taxonomy"}));
  list->add_option("--cases", list_cases_dir, "case directory (default: $SYNCPROBE_CASES, else share/syncprobe/cases beside the binary)");

  // run
  RunOptions ro;
  bool no_progress = false;
  auto* run = app.add_subcommand("run", "Run cases on targets; write results and print the profile table");
  run->add_option("--target,-t", ro.targets,
                  "target or pattern: reference:<policy>, reference:*, refmount:<policy>, refmount:*, "
                  "host:<fs>[:<opts>], host:*, vm:<kernel>:<fs>, vm:* (repeatable; default: reference:* and host:*)");
  run->add_option("--case,-c", ro.cases, "case id or glob (repeatable; default: all)");
  run->add_option("--cases", ro.cases_dir, "case directory (default: $SYNCPROBE_CASES, else share/syncprobe/cases beside the binary)");
  run->add_option("--out,-o", ro.out_dir, "results directory (default: results/<run-id>)");
  run->add_option("--shard", ro.shard,
                  "K/N: run only the K-th of N deterministic slices of the plan (a VM kernel's cases "
                  "stay in one slice); combine the N result directories with `syncprobe merge`");
  run->add_option("--jobs,-j", ro.jobs, "threads for the reference targets")->check(CLI::Range(1, 256));
  run->add_option("--vm-jobs", ro.vm_jobs, "VM guests running at once, one kernel each (default 2)")
      ->check(CLI::Range(1, 64));
  auto* step_timeout = run->add_option("--step-timeout", ro.step_timeout_ms,
                  "milliseconds before a step on a real kernel counts as hung (default 10000; "
                  "20000 inside VM guests unless given)")
      ->check(CLI::Range(100, 3600000));
  run->add_flag("--no-progress", no_progress, "no progress line (it is off anyway when not a terminal)");
  run->add_flag("--verbose,-v", ro.verbose, "say more about setup and teardown");
  auto* resume = run->add_flag("--resume", ro.resume,
                               "finish the run in --out: run only the cases it has no result for, same run id");
  run->add_flag("--overwrite", ro.overwrite, "replace the run in --out (a non-empty --out is refused otherwise)")
      ->excludes(resume);

  // classify
  std::string classify_dir;
  bool classify_json = false;
  auto* classify = app.add_subcommand("classify", "Derive profiles and rule verdicts from a results directory");
  classify->add_option("results_dir", classify_dir, "a directory written by `syncprobe run`")->required();
  classify->add_flag("--json", classify_json, "print summary.json instead of the tables");

  // report
  ReportOptions rep;
  std::string compare_with;
  auto* report = app.add_subcommand("report", "Write the HTML report (and JUnit XML, KTAP, Markdown) of a run");
  report->add_option("results_dir", rep.results_dir, "a directory written by `syncprobe run`")->required();
  report->add_option("-o,--out", rep.out_dir, "output directory (default: reports/<run-id>)");
  report->add_option("--compare", compare_with, "a second run: report what changed from RESULTS_DIR to it");

  // merge
  std::vector<std::string> merge_dirs;
  std::string merge_out;
  auto* merge = app.add_subcommand("merge", "Combine the result directories of a sharded run (or runs of one "
                                            "catalogue on other targets) into one run, and classify it");
  merge->add_option("runs", merge_dirs, "result directories written by `syncprobe run --shard K/N`")->required();
  merge->add_option("-o,--out", merge_out, "the merged results directory (new or empty)")->required();

  // vm
  VmOptions vo;
  auto* vm = app.add_subcommand("vm", "Guest kernels for vm: targets: list, status, fetch, add, build");
  vm->require_subcommand(1);
  auto* vm_list_cmd = vm->add_subcommand("list", "The kernel catalogue: fetched, available in Debian today, or why not");
  vm_list_cmd->add_flag("--refresh", vo.refresh, "download the private package lists again");
  vm->add_subcommand("status", "What is fetched, the cache and the accelerator, without looking anything up");
  auto* vm_fetch_cmd = vm->add_subcommand("fetch", "Download the newest package of series into the cache");
  vm_fetch_cmd->add_option("series", vo.kernels, "series of data/kernels.toml, or all (default)");
  auto* vm_add_cmd = vm->add_subcommand("add", "Add your own kernel: vm add NAME --kernel bzImage --modules DIR | --deb FILE...");
  vm_add_cmd->add_option("name", vo.name, "the kernel's name in targets: vm:NAME:<fs>")->required();
  vm_add_cmd->add_option("--kernel", vo.kernel, "bzImage or vmlinuz (arch/x86/boot/bzImage)");
  vm_add_cmd->add_option("--modules", vo.modules, "INSTALL_MOD_PATH of `make modules_install` (holds lib/modules/<release>)");
  vm_add_cmd->add_option("--config", vo.config, "the kernel's .config, checked for what the guest needs");
  vm_add_cmd->add_option("--deb", vo.debs, "kernel packages (linux-image, or linux-binary + linux-modules + linux-base)");
  vm_add_cmd->add_flag("--force", vo.force, "add even when options the guest needs are missing");
  auto* vm_build_cmd = vm->add_subcommand("build", "Build the initramfs of fetched kernels now (a run does it when needed)");
  vm_build_cmd->add_option("kernels", vo.kernels, "kernel names, or all (default)");

  // bench
  BenchOptions bo;
  auto* bench = app.add_subcommand("bench", "Platform benchmarks: fsync latency healthy and failing, retry cost, error memory");
  bench->add_option("--target,-t", bo.targets, "target or pattern (repeatable)");
  bench->add_option("--out,-o", bo.out_dir, "directory for bench.json (a run directory puts it in that run's report)");
  bench->add_option("--iterations,-n", bo.iterations, "samples per figure")->check(CLI::Range(1, 1000000));
  bench->add_flag("--smoke", bo.smoke, "minimal iterations (CI)");
  bench->add_flag("--fio", bo.fio,
                  "instead: fio's jobs (4 KiB random writes with an fsync every 16, 1 MiB sequential writes, "
                  "4 KiB random reads) on the mounted reference, a bare FUSE passthrough and tmpfs, judged "
                  "(refmount >= 0.7x the passthrough's IOPS, < 2x its CPU per operation); needs fio");
  bench->add_option("--policy", bo.policies, "with --fio: reference policy to mount (repeatable; default proposed, linux-4.17)");
  bench->add_option("--mount", bo.mounts, "with --fio: NAME=DIR, another mount measured the same way (a LazyFS mount, say)");
  bench->add_option("--runtime", bo.runtime, "with --fio: seconds per timed job")->check(CLI::Range(1, 3600));

  // mount
  MountCliOptions mo;
  auto* mount = app.add_subcommand(
      "mount", "Mount the reference page cache as a filesystem (FUSE): run any program on a policy's semantics");
  mount->add_option("mountpoint", mo.mountpoint, "an existing empty directory")->required();
  mount->add_option("--policy,-p", mo.policy, "reference policy (syncprobe list policies); required unless --passthrough");
  mount->add_option("--size", mo.size, "device capacity in bytes (k, M, G suffixes); writes past it fail with ENOSPC")
      ->transform(CLI::AsSizeValue(false));
  mount->add_option("--memory-limit", mo.memory_limit,
                    "bytes the cache may hold; past it clean pages are evicted and dirty ones written back")
      ->transform(CLI::AsSizeValue(false));
  mount->add_option("--error-limit", mo.error_limit, "bytes pages in error may hold (R7, under proposed)")
      ->transform(CLI::AsSizeValue(false));
  mount->add_option("--preallocate", mo.preallocate,
                    "bytes of memory for the model to touch at mount, so that writes take memory already "
                    "faulted in (benchmarks; docs/bench.md)")
      ->transform(CLI::AsSizeValue(false));
  mount->add_option("--max-file-size", mo.max_file_size, "largest file (default 4G); EFBIG past it")
      ->transform(CLI::AsSizeValue(false));
  mount->add_flag("--background", mo.background, "return once mounted (default: serve in the foreground)");
  mount->add_option("--control-dir", mo.control_dir,
                    "an existing directory of yours, mode 0700, for the control socket (default: a fresh one)");
  mount->add_option("--passthrough", mo.passthrough_dir,
                    "mount a bare FUSE passthrough of this directory instead (a benchmark baseline)");
  mount->footer("Unmount with Ctrl-C, kill -TERM, or fusermount3 -u MOUNTPOINT. Faults: syncprobe fault. "
                "docs/refmount.md.");

  // fault
  FaultCliOptions fo;
  auto* fault = app.add_subcommand("fault", "Send a fault or an event to a mounted reference (syncprobe mount)");
  fault->add_option("mountpoint", fo.mountpoint, "where the reference is mounted")->required();
  fault->add_option("action", fo.action, "fail (default) | heal | grow | power-cut | drop-caches | writeback | remount | status")
      ->check(CLI::IsMember({"fail", "heal", "grow", "power-cut", "drop-caches", "writeback", "remount", "status"}));
  fault->add_option("--io", fo.io, "fail: write (default) | read | flush")->check(CLI::IsMember({"write", "read", "flush"}));
  fault->add_option("--range", fo.range, "fail: FILE or FILE:OFFSET+LENGTH, relative to the mount (default: the whole device)");
  fault->add_option("--where", fo.where, "fail: data (default with --range) | metadata | journal | free | device")
      ->check(CLI::IsMember({"data", "metadata", "journal", "free", "device"}));
  fault->add_option("--errno", fo.errno_name, "fail: the errno the device returns (default EIO)");
  fault->add_option("--mode", fo.mode, "fail: error (default) | drop (acknowledged, not stored)")
      ->check(CLI::IsMember({"error", "drop"}));
  fault->add_option("--count", fo.count, "fail: hits before the fault expires (default: until healed)");
  fault->add_option("--bytes", fo.bytes, "grow: bytes to add to a --size mount")->transform(CLI::AsSizeValue(false));
  fault->add_flag("--json", fo.json, "print the mount's JSON answer");

  // completion: the shell completion script, generated from the option tables above.
  std::string completion_shell;
  auto* completion = app.add_subcommand("completion", "Print the shell completion script (bash)");
  completion->add_option("shell", completion_shell, "bash")->required()->check(CLI::IsMember({"bash"}));

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int rc = app.exit(e);
    return rc == 0 ? 0 : 2;  // --help and --version exit 0; usage errors 2
  }

  try {
    if (*list) return list_command(list_what, list_cases_dir.empty() ? default_cases_dir() : list_cases_dir,
                                   std::cout, std::cerr);
    if (*run) {
      ro.progress = !no_progress;
      ro.step_timeout_given = step_timeout->count() > 0;
      ro.command_line.assign(argv, argv + argc);
      return run_command(ro, std::cout, std::cerr);
    }
    if (*classify) return classify_command(classify_dir, classify_json, std::cout, std::cerr);
    if (*report) {
      if (!compare_with.empty()) rep.compare_with = compare_with;
      return report_command(rep, std::cout, std::cerr);
    }
    if (*merge)
      return merge_command(merge_dirs, merge_out, std::vector<std::string>(argv, argv + argc), std::cout, std::cerr);
    if (*vm) {
      for (auto* sub : vm->get_subcommands()) vo.action = sub->get_name();
      return vm_command(vo, std::cout, std::cerr);
    }
    if (*completion) {
      bash_completion(app, std::cout);
      return 0;
    }
    if (*bench) return bench_command(bo, std::cout, std::cerr);
    if (*mount) return mount_command(mo, std::cerr, std::cerr);
    if (*fault) return fault_command(fo, std::cout, std::cerr);
  } catch (const std::exception& e) {
    std::cerr << "syncprobe: internal failure: " << e.what() << "\n";
    return 1;
  }
  return 2;
}
