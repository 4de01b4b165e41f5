// `syncprobe bench`: what the semantics cost on each target. Synthetic cases
// built here run through the targets' own machinery (Target::run), so a
// host target's figures include its real kernel, filesystem and injector;
// the error-memory curve is read from the reference cache directly.
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <ostream>
#include <set>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "syncprobe/clock.h"
#include "syncprobe/commands.h"
#include "syncprobe/paths.h"
#include "run_dirs.h"
#include "syncprobe/registry.h"
#include "syncprobe/linux_fs.h"
#include "syncprobe/ref/file_system.h"
#include "syncprobe/results_io.h"
#include "syncprobe/target.h"

namespace syncprobe {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

Step step(StepKind kind, std::map<std::string, std::string> args, std::string probe = "") {
  Step s;
  s.kind = kind;
  s.proc = step_spec(kind).in_process ? "a" : "";
  s.args = std::move(args);
  s.probe = std::move(probe);
  s.line = 0;
  return s;
}

Case bench_case(const std::string& id, const std::string& title) {
  Case c;
  c.id = id;
  c.title = title;
  c.description = "built by syncprobe bench";
  c.file = "(syncprobe bench)";
  return c;
}

std::map<std::string, std::string> write_args(uint64_t off, const std::string& tag) {
  return {{"fd", "a"}, {"off", std::to_string(off)}, {"len", "4096"}, {"tag", tag}};
}

// Healthy: pwrite + fsync, then pwrite + fdatasync, `n` times each.
Case healthy_case(int n) {
  Case c = bench_case("bench-healthy", "fsync and fdatasync latency, healthy device");
  c.steps.push_back(step(StepKind::open, {{"fd", "a"}, {"file", "f"}, {"flags", "create"}}));
  for (int i = 0; i < n; ++i) {
    c.steps.push_back(step(StepKind::pwrite, write_args(uint64_t(i) * 4096, "H")));
    c.steps.push_back(step(StepKind::fsync, {{"fd", "a"}}, "fsync_healthy"));
  }
  for (int i = 0; i < n; ++i) {
    c.steps.push_back(step(StepKind::pwrite, write_args(uint64_t(i) * 4096, "D")));
    c.steps.push_back(step(StepKind::fdatasync, {{"fd", "a"}}, "fdatasync_healthy"));
  }
  c.steps.push_back(step(StepKind::close, {{"fd", "a"}}));
  return c;
}

// Failing: the file's data fails; every pwrite + fsync meets the error.
Case failing_case(int n) {
  Case c = bench_case("bench-failing", "time until a failed writeback is reported");
  c.steps.push_back(step(StepKind::open, {{"fd", "a"}, {"file", "f"}, {"flags", "create"}}));
  c.steps.push_back(step(StepKind::pwrite, {{"fd", "a"}, {"off", "0"}, {"len", std::to_string(4096 * n)}, {"tag", "old"}}));
  c.steps.push_back(step(StepKind::fsync, {{"fd", "a"}}));
  c.steps.push_back(step(StepKind::fault, {{"range", "data"}, {"file", "f"}, {"io", "write"}, {"mode", "error"}, {"errno", "EIO"}}));
  for (int i = 0; i < n; ++i) {
    c.steps.push_back(step(StepKind::pwrite, write_args(uint64_t(i) * 4096, "A")));
    c.steps.push_back(step(StepKind::fsync, {{"fd", "a"}}, "fsync_failing"));
  }
  c.steps.push_back(step(StepKind::heal, {}));
  c.steps.push_back(step(StepKind::close, {{"fd", "a"}}));
  return c;
}

// Retry after heal: fail, heal, time the fsync that follows.
Case retry_case(int n) {
  Case c = bench_case("bench-retry", "cost of the fsync retried after the device is healed");
  c.steps.push_back(step(StepKind::open, {{"fd", "a"}, {"file", "f"}, {"flags", "create"}}));
  c.steps.push_back(step(StepKind::pwrite, {{"fd", "a"}, {"off", "0"}, {"len", std::to_string(4096 * n)}, {"tag", "old"}}));
  c.steps.push_back(step(StepKind::fsync, {{"fd", "a"}}));
  for (int i = 0; i < n; ++i) {
    c.steps.push_back(step(StepKind::fault, {{"range", "data"}, {"file", "f"}, {"io", "write"}, {"mode", "error"}, {"errno", "EIO"}}));
    c.steps.push_back(step(StepKind::pwrite, write_args(uint64_t(i) * 4096, "A")));
    c.steps.push_back(step(StepKind::fsync, {{"fd", "a"}}));
    c.steps.push_back(step(StepKind::heal, {}));
    c.steps.push_back(step(StepKind::fsync, {{"fd", "a"}}, "retry_after_heal"));
  }
  c.steps.push_back(step(StepKind::close, {{"fd", "a"}}));
  return c;
}

json distribution(std::vector<double> v) {
  if (v.empty()) return json();
  std::sort(v.begin(), v.end());
  auto at = [&](double q) { return v[std::min(v.size() - 1, size_t(std::ceil(q * double(v.size()))) - (q > 0 ? 1 : 0))]; };
  return {{"n", v.size()}, {"min", v.front()}, {"median", at(0.5)}, {"p99", at(0.99)}, {"max", v.back()}};
}

std::string ns_text(double ns) {
  if (ns < 1e3) return fmt::format("{:.0f}ns", ns);
  if (ns < 1e6) return fmt::format("{:.1f}µs", ns / 1e3);
  if (ns < 1e9) return fmt::format("{:.1f}ms", ns / 1e6);
  return fmt::format("{:.2f}s", ns / 1e9);
}

// Error pages held under `proposed` as failures accumulate, with a cap. Each
// fsync is expected to fail (the file's data fails); the curve is the point.
json error_memory_curve(int pages, uint64_t cap) {
  ref::FileSystem fs(ref::make_policy("proposed"));
  ref::Handle h;
  FaultRule rule, installed;
  rule.err = EIO;
  if (!fs.open("f", ref::OpenFlags{}, h).ok() || !fs.memory_limit(cap).ok() ||
      !fs.fault({ref::FaultPlace::Where::data, "f"}, rule, installed).ok())
    return {{"error", "the reference refused the error-memory setup"}};
  json points = json::array();
  std::vector<std::byte> buf(4096, std::byte{1});
  for (int i = 1; i <= pages; ++i) {
    const SysResult w = fs.pwrite(h, buf, uint64_t(i - 1) * 4096);
    const SysResult f = fs.fsync(h, false);
    if (!w.ok() || f.ok() || f.hung) return {{"error", "unexpected result in the error-memory curve"}};
    const auto st = fs.stats();
    points.push_back({{"failed_pages", i}, {"error_bytes_held", st.error_bytes_held},
                      {"discarded", st.discarded_error_pages}});
  }
  return {{"policy", "proposed"}, {"cap_bytes", cap}, {"points", points}};
}

json suite_figures(const std::string& run_dir) {
  json out = json::object();
  std::ifstream in(run_dir + "/run.json");
  if (!in) return out;
  json run = json::parse(in, nullptr, false);
  if (run.is_discarded()) return out;
  out["run"] = run.value("id", "");
  out["started_at"] = run.value("started_at", "");
  out["finished_at"] = run.value("finished_at", "");
  // Wall time of the whole run (every target), from its ISO 8601 stamps.
  auto parse = [](const std::string& t) -> double {
    std::tm tm{};
    if (!strptime(t.c_str(), "%Y-%m-%dT%H:%M:%SZ", &tm)) return 0;
    return double(timegm(&tm));
  };
  const double wall = parse(out["finished_at"]) - parse(out["started_at"]);
  if (wall >= 0 && !out["finished_at"].get<std::string>().empty()) out["wall_s"] = wall;
  for (const auto& [t, info] : run["targets"].items()) {
    double total = 0, boot = 0, boot_only = 0;
    int n = 0;
    for (const auto& [c, cj] : run["cases"].items()) {
      std::ifstream rf(run_dir + "/" + result_path(t, c));
      json r = json::parse(rf, nullptr, false);
      if (r.is_discarded() || r.value("status", "") == "skipped") continue;
      total += r.value("duration_ns", 0.0);
      boot = std::max(boot, r["environment"].value("boot_wall_s", 0.0));
      boot_only = std::max(boot_only, r["environment"].value("boot_s", 0.0));
      ++n;
    }
    json t_out = {{"cases", n}, {"seconds_per_case", n ? total / n / 1e9 : 0.0}, {"seconds_total", total / 1e9}};
    if (boot > 0) t_out["vm_boot_and_run_wall_s"] = boot;
    if (boot_only > 0) t_out["vm_boot_s"] = boot_only;
    out["targets"][t] = t_out;
  }
  // The VM matrix: every kernel × filesystem of the run, and its wall time
  // against the goal of docs/vm.md (all series × four filesystems < 15 min).
  std::map<std::string, double> boot_by_kernel;
  std::set<std::string> vm_fs;
  double vm_total = 0;
  int vm_cases = 0;
  for (const auto& [t, info] : run["targets"].items()) {
    if (t.rfind("vm:", 0) != 0 || !out["targets"].contains(t)) continue;
    const auto& tf = out["targets"][t];
    const std::string kernel = t.substr(3, t.find(':', 3) - 3);
    vm_fs.insert(t.substr(t.find(':', 3) + 1));
    if (tf.contains("vm_boot_s")) boot_by_kernel[kernel] = tf["vm_boot_s"].get<double>();
    vm_total += tf["seconds_total"].get<double>();
    vm_cases += tf["cases"].get<int>();
  }
  if (!boot_by_kernel.empty()) {
    json boots = json::object();
    for (const auto& [k, b] : boot_by_kernel) boots[k] = b;
    out["vm_matrix"] = {{"kernels", boot_by_kernel.size()},
                        {"filesystems", vm_fs.size()},
                        {"boot_s", boots},
                        {"seconds_per_case", vm_cases ? vm_total / vm_cases : 0.0},
                        {"goal_s", 900}};
    if (out.contains("wall_s")) out["vm_matrix"]["wall_s"] = out["wall_s"];
  }
  return out;
}

}  // namespace

// `bench --fio`: the fio comparison is a helper of its own (it mounts, runs
// fio, unmounts on every way out); run it in the foreground with this
// binary and the installed jobs, and pass its exit status on.
int fio_command(const BenchOptions& opts, std::ostream& out, std::ostream& err) {
  const std::string helper = helper_program("syncprobe-bench-fio");
  if (helper.empty()) {
    err << "syncprobe bench --fio: libexec/syncprobe/syncprobe-bench-fio is missing beside this syncprobe "
           "(reinstall, or set SYNCPROBE_FIO)\n";
    return 2;
  }
  const std::string out_dir = opts.out_dir.empty() ? "results/bench-fio-" + utc_now("%Y%m%d-%H%M%S") : opts.out_dir;
  std::vector<std::string> argv = {helper, "--runtime", std::to_string(opts.runtime), "--out", out_dir + "/fio.json"};
  for (const auto& p : opts.policies) argv.insert(argv.end(), {"--policy", p});
  for (const auto& m : opts.mounts) argv.insert(argv.end(), {"--mount", m});
  out.flush();
  const pid_t pid = fork();
  if (pid < 0) {
    err << "syncprobe bench --fio: fork: " << std::strerror(errno) << "\n";
    return 1;
  }
  if (pid == 0) {
    ::setenv("SYNCPROBE_EXE", (self_dir() + "/syncprobe").c_str(), 1);
    ::setenv("SYNCPROBE_FIO_JOBS", (share_dir() + "/fio").c_str(), 1);
    std::vector<char*> args;
    for (auto& a : argv) args.push_back(a.data());
    args.push_back(nullptr);
    ::execv(args[0], args.data());
    std::fprintf(stderr, "syncprobe bench --fio: cannot run %s: %s\n", args[0], std::strerror(errno));
    _exit(2);
  }
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {}
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  err << "syncprobe bench --fio: the helper died (signal " << WTERMSIG(status) << ")\n";
  return 1;
}

int bench_command(const BenchOptions& opts, std::ostream& out, std::ostream& err) {
  if (opts.fio) return fio_command(opts, out, err);
  const int n = opts.smoke ? 3 : std::max(1, opts.iterations);
  std::vector<std::string> names;
  std::vector<std::string> patterns = opts.targets;
  if (patterns.empty()) patterns = {"reference:proposed", "reference:linux-4.17", "host:ext4"};
  std::vector<std::unique_ptr<Target>> targets;
  for (const auto& p : patterns)
    for (const auto& name : registry().expand(p)) {
      std::string error;
      auto t = registry().make(name, error);
      if (!t) {
        err << "syncprobe bench: " << error << "\n";
        return 2;
      }
      const Availability a = t->availability();
      if (!a.available) {
        if (!opts.targets.empty()) err << "syncprobe bench: " << name << " unavailable: " << a.reason << "\n";
        continue;
      }
      targets.push_back(std::move(t));
    }
  const std::string out_dir = opts.out_dir.empty()
                                  ? "results/bench-" + utc_now("%Y%m%d-%H%M%S")
                                  : opts.out_dir;
  fs::create_directories(out_dir);
  json bench = {{"schema", "syncprobe.bench/1"}, {"started_at", utc_now()},
                {"host", {{"kernel", kernel_release()}}}, {"iterations", n},
                {"targets", json::object()}};
  RunContext ctx;
  ctx.run_id = "bench-" + utc_now("%Y%m%d-%H%M%S");
  ctx.run_dir = out_dir;
  std::unique_ptr<RunDirectory> scratch;
  bool measured = false;
  for (const auto& t : targets) measured = measured || t->uses_machine();
  if (measured) {
    std::string why;
    scratch = open_run_directory(ctx.run_id, why, err);
    if (!scratch) {
      err << "syncprobe bench: " << why << "\n";
      return 2;
    }
    ctx.scratch_dir = scratch->path();
    ctx.ledger = scratch.get();
  }
  out << fmt::format("{:<24} {:<22} {:>5} {:>9} {:>9} {:>9} {:>9}\n", "target", "figure", "n", "min",
                     "median", "p99", "max");
  for (auto& t : targets) {
    std::map<std::string, std::vector<double>> samples;
    for (const Case& c : {healthy_case(n), failing_case(n), retry_case(n)}) {
      CaseResult r = t->run(c, ctx);
      if (r.status != CaseStatus::completed) {
        err << "syncprobe bench: " << t->name() << " " << c.id << ": " << to_string(r.status) << " " << r.reason << "\n";
        continue;
      }
      for (const auto& o : r.steps) {
        const std::string& probe = c.steps[o.index].probe;
        if (probe.empty()) continue;
        // A "failing" figure counts only calls that did report the error.
        if (probe == "fsync_failing" && o.result.ok()) continue;
        samples[probe + "_ns"].push_back(double(o.duration_ns));
      }
    }
    json figs = json::object();
    for (const char* key : {"fsync_healthy_ns", "fdatasync_healthy_ns", "fsync_failing_ns", "retry_after_heal_ns"}) {
      json d = distribution(samples[key]);
      figs[key] = d;
      if (d.is_null()) continue;
      out << fmt::format("{:<24} {:<22} {:>5} {:>9} {:>9} {:>9} {:>9}\n", t->name(), key, d["n"].get<size_t>(),
                         ns_text(d["min"]), ns_text(d["median"]), ns_text(d["p99"]), ns_text(d["max"]));
    }
    figs["measured"] = t->measured();
    bench["targets"][t->name()] = figs;
  }
  targets.clear();
  if (scratch && !scratch->remove())
    err << "syncprobe bench: " << scratch->path() << " still holds a mount; the next run will release it\n";

  const uint64_t cap = 64 * 1024;
  bench["error_memory"] = error_memory_curve(opts.smoke ? 24 : 64, cap);
  const auto& pts = bench["error_memory"]["points"];
  out << fmt::format("error memory under proposed, cap {} KiB: {} failed pages -> {} KiB held, {} discarded\n",
                     cap / 1024, pts.back()["failed_pages"].get<int>(),
                     pts.back()["error_bytes_held"].get<uint64_t>() / 1024, pts.back()["discarded"].get<uint64_t>());
  if (fs::exists(out_dir + "/run.json")) {
    bench["suite"] = suite_figures(out_dir);
    if (bench["suite"].contains("wall_s"))
      out << fmt::format("suite: whole run {:.0f} s wall\n", bench["suite"]["wall_s"].get<double>());
    if (bench["suite"].contains("vm_matrix") && bench["suite"].contains("wall_s")) {
      const json& m = bench["suite"]["vm_matrix"];
      double boot_max = 0;
      for (const auto& [k, b] : m["boot_s"].items()) boot_max = std::max(boot_max, b.get<double>());
      const double wall = m["wall_s"].get<double>();
      out << fmt::format("suite: vm matrix {} kernels x {} filesystems: {:.0f} s wall, boot up to {:.1f} s, "
                         "{:.2f} s per case; goal {} s: {}\n",
                         m["kernels"].get<size_t>(), m["filesystems"].get<size_t>(), wall, boot_max,
                         m["seconds_per_case"].get<double>(), m["goal_s"].get<int>(),
                         wall < m["goal_s"].get<double>() ? "met" : "missed");
    }
    for (const auto& [t, s] : bench["suite"]["targets"].items())
      out << fmt::format("suite: {:<24} {:.3f} s per case ({} cases){}\n", t, s["seconds_per_case"].get<double>(),
                         s["cases"].get<int>(),
                         s.contains("vm_boot_s") ? fmt::format("; boot {:.1f} s", s["vm_boot_s"].get<double>()) : "");
  }
  bench["finished_at"] = utc_now();
  write_file_atomic(out_dir + "/bench.json", bench.dump(2));
  out << "bench: " << out_dir << "/bench.json\n";
  return 0;
}

}  // namespace syncprobe
