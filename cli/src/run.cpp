// `syncprobe run`: plan (cases × targets), execute, write results atomically,
// classify, print the summary.
#include <fnmatch.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <iostream>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <thread>

#include <fmt/format.h>

#include "run_dirs.h"
#include "syncprobe/clock.h"
#include "syncprobe/case_parser.h"
#include "syncprobe/classify.h"
#include "syncprobe/commands.h"
#include "syncprobe/executor.h"
#include "syncprobe/paths.h"
#include "syncprobe/plan.h"
#include "syncprobe/registry.h"
#include "syncprobe/interrupt.h"
#include "syncprobe/linux_fs.h"
#include "syncprobe/report.h"
#include "syncprobe/results_io.h"
#include "syncprobe/target.h"

namespace fs = std::filesystem;

namespace syncprobe {

std::string new_run_id() {
  std::random_device rd;
  return utc_now("%Y%m%d-%H%M%S") + fmt::format("-{:04x}", rd() & 0xffff);
}

namespace {

nlohmann::json host_facts() {
  utsname u{};
  uname(&u);
  return {{"kernel", u.release}, {"machine", u.machine}, {"hostname", u.nodename}};
}

// The cases selected by ids or globs; every pattern must match something.
bool select_cases(const std::vector<Case>& all, const std::vector<std::string>& patterns,
                  std::vector<const Case*>& out, std::ostream& err) {
  if (patterns.empty()) {
    for (const auto& c : all) out.push_back(&c);
    return true;
  }
  bool ok = true;
  std::set<std::string> chosen;
  for (const auto& p : patterns) {
    bool matched = false;
    for (const auto& c : all)
      if (fnmatch(p.c_str(), c.id.c_str(), 0) == 0) {
        matched = true;
        chosen.insert(c.id);
      }
    if (!matched) {
      err << "syncprobe run: no case matches '" << p
          << "' (see 'syncprobe list cases' for the ids)\n";
      ok = false;
    }
  }
  for (const auto& c : all)
    if (chosen.count(c.id)) out.push_back(&c);
  return ok;
}

// Target names in run order: the requested ones, then the reference
// baselines the classifier compares against, without duplicates.
bool select_targets(const std::vector<std::string>& requested, std::vector<std::string>& out,
                    std::ostream& err) {
  std::vector<std::string> patterns = requested;
  if (patterns.empty()) patterns = {"reference:*", "host:*"};
  patterns.push_back("reference:*");  // baselines for closest_policy
  bool ok = true;
  std::set<std::string> seen;
  for (const auto& p : patterns) {
    auto names = registry().expand(p);
    if (names.empty()) {
      // "host:*" on a build or machine without host targets is not an error.
      if (!requested.empty() && std::find(requested.begin(), requested.end(), p) != requested.end()) {
        err << "syncprobe run: no target matches '" << p << "' (see 'syncprobe list targets')\n";
        ok = false;
      }
      continue;
    }
    for (auto& n : names)
      if (seen.insert(n).second) out.push_back(n);
  }
  return ok;
}

class Progress {
 public:
  Progress(size_t total, bool enabled) : total_(total), enabled_(enabled && isatty(STDERR_FILENO)) {}
  void step(const std::string& target, const std::string& case_id, CaseStatus status) {
    std::lock_guard lock(mu_);
    ++done_;
    counts_[status]++;
    if (!enabled_) return;
    std::cerr << fmt::format("\r\033[K[{}/{}] {} {} ({})", done_, total_, target, case_id,
                             to_string(status))
              << std::flush;
  }
  void finish() {
    if (enabled_) std::cerr << "\r\033[K" << std::flush;
  }
  size_t count(CaseStatus s) {
    std::lock_guard lock(mu_);
    return counts_[s];
  }

 private:
  std::mutex mu_;
  size_t total_;
  size_t done_ = 0;
  bool enabled_;
  std::map<CaseStatus, size_t> counts_;
};

}  // namespace

int run_command(const RunOptions& opts, std::ostream& out, std::ostream& err) {
  // Plan: nothing runs until every case parses and every target is known.
  std::optional<Shard> shard;
  if (!opts.shard.empty()) {
    std::string why;
    shard = parse_shard(opts.shard, why);
    if (!shard) {
      err << "syncprobe run: " << why << "\n";
      return 2;
    }
  }
  const std::string cases_dir = opts.cases_dir.empty() ? default_cases_dir() : opts.cases_dir;
  const auto capabilities = capability_table(err);
  if (!capabilities) return 2;
  ParseOutcome parsed = load_cases(cases_dir, &*capabilities);
  if (!parsed.ok()) {
    for (const auto& e : parsed.errors) err << e.format() << "\n";
    err << "syncprobe run: " << parsed.errors.size() << " problem(s) in " << cases_dir
        << "; nothing was run\n";
    return 2;
  }
  std::vector<const Case*> cases;
  if (!select_cases(parsed.cases, opts.cases, cases, err)) return 2;
  if (cases.empty()) {
    err << "syncprobe run: no cases in " << cases_dir << "\n";
    return 2;
  }
  std::vector<std::string> names;
  if (!select_targets(opts.targets, names, err)) return 2;
  std::vector<std::unique_ptr<Target>> targets;
  for (const auto& n : names) {
    std::string why;
    auto t = registry().make(n, why);
    if (!t) {
      err << "syncprobe run: " << why << "\n";
      return 2;
    }
    targets.push_back(std::move(t));
  }

  // The (target, case) pairs this process runs: all of them, or its shard's
  // slice (engine/plan.h: a VM kernel's cases stay in one shard).
  std::set<std::pair<std::string, std::string>> mine;
  {
    std::vector<PlanTarget> plan;
    std::vector<std::string> ids;
    for (const auto& t : targets) plan.push_back({t->name(), t->batch_key()});
    for (const Case* c : cases) ids.push_back(c->id);
    mine = shard_pairs(plan, ids, shard.value_or(Shard{}));
  }
  auto cases_for = [&](const Target& t) {
    std::vector<const Case*> v;
    for (const Case* c : cases)
      if (mine.count({t.name(), c->id})) v.push_back(c);
    return v;
  };


  // The results directory: never mixed with another run's results.
  OutDir out_lock;
  const OutDir::Mode mode = opts.resume      ? OutDir::Mode::resume
                            : opts.overwrite ? OutDir::Mode::overwrite
                                             : OutDir::Mode::fresh;
  if (mode == OutDir::Mode::resume && opts.out_dir.empty()) {
    err << "syncprobe run: --resume needs the --out of the run to finish\n";
    return 2;
  }
  std::string run_id = new_run_id();
  const std::string out_dir = opts.out_dir.empty() ? "results/" + run_id : opts.out_dir;
  // The scratch root, only when something will run on a real kernel: a run
  // of modelled targets creates nothing on the machine.
  bool measured = false;
  for (const auto& t : targets) measured = measured || (t->uses_machine() && t->availability().available);
  std::unique_ptr<RunDirectory> scratch;
  if (measured) {
    std::string why;
    scratch = open_run_directory(run_id, why, err);
    if (!scratch) {
      err << "syncprobe run: " << why << "; nothing was run\n";
      return 2;
    }
  } else {
    cleanup_if_safe(err);  // what killed runs left goes anyway; an unsafe root is not looked at
  }
  if (const std::string why = out_lock.open(out_dir, mode); !why.empty()) {
    err << "syncprobe run: " << why << "; nothing was run\n";
    return 2;
  }
  if (mode == OutDir::Mode::resume) run_id = out_lock.previous()["id"].get<std::string>();
  RunContext ctx;
  ctx.run_id = run_id;
  ctx.run_dir = out_dir;
  if (scratch) {
    ctx.scratch_dir = scratch->path();
    ctx.ledger = scratch.get();
  }
  ctx.step_timeout = std::chrono::milliseconds(opts.step_timeout_ms);
  ctx.step_timeout_given = opts.step_timeout_given;
  ctx.verbose = opts.verbose;

  install_interrupt_handlers();

  nlohmann::json run = {{"schema", "syncprobe.run/1"},
                        {"id", run_id},
                        {"command", opts.command_line},
                        {"started_at", utc_now("%Y-%m-%dT%H:%M:%SZ")},
                        {"syncprobe_version", SYNCPROBE_VERSION},
                        {"host", host_facts()},
                        {"cases_dir", cases_dir},
                        {"targets", nlohmann::json::object()},
                        {"cases", nlohmann::json::object()}};
  if (mode == OutDir::Mode::resume) {
    // The plan of the resumed run, extended by what this command asks for.
    const auto& prev = out_lock.previous();
    for (const char* k : {"command", "started_at", "targets", "cases"})
      if (prev.contains(k)) run[k] = prev[k];
    run["resumed"] = prev.value("resumed", nlohmann::json::array());
    run["resumed"].push_back({{"command", opts.command_line}, {"at", utc_now("%Y-%m-%dT%H:%M:%SZ")}});
  }
  for (const Case* c : cases) run["cases"][c->id] = *c;
  if (shard) run["shard"] = {{"index", shard->index}, {"count", shard->count}, {"case_runs", mine.size()}};
  for (const auto& t : targets) {
    const Availability a = t->availability();
    run["targets"][t->name()] = {{"measured", t->measured()},
                                 {"environment", t->environment()},
                                 {"available", a.available},
                                 {"reason", a.reason},
                                 {"baseline", std::find(opts.targets.begin(), opts.targets.end(),
                                                        t->name()) == opts.targets.end() &&
                                                  !opts.targets.empty()}};
  }
  // Writing results can fail (a full disk): the run then stops, says why,
  // and exits 1; every file already written is whole.
  std::string write_error;
  std::atomic<bool> stop{false};
  auto write = [&](const std::string& path, const std::string& text) {
    try {
      write_file_atomic(path, text);
      return true;
    } catch (const std::exception& e) {
      if (write_error.empty()) write_error = e.what();  // calls are serialised by execute()
      stop = true;
      return false;
    }
  };
  if (!write(out_dir + "/run.json", run.dump(2))) {
    err << "syncprobe run: cannot write the results in " << out_dir << ": " << write_error
        << "; nothing was run\n";
    return 1;
  }
  out << "syncprobe: run " << run_id << ": " << cases.size() << " cases on " << targets.size()
      << " targets";
  if (shard)
    out << ", shard " << shard->index << "/" << shard->count << ": " << mine.size() << " of "
        << cases.size() * targets.size() << " case runs";
  out << " -> " << out_dir << "\n";

  Progress progress(mine.size(), opts.progress);
  bool internal_failure = false;
  auto sink = [&](const CaseResult& r) {
    // Resuming: what the run already has stays as it was (a VM batch reruns its boot).
    if (stop || (mode == OutDir::Mode::resume && out_lock.has_result(r.target, r.case_id))) return;
    // A case SIGINT/SIGTERM cut short (a wait given up, a guest stopped
    // before reporting it) measured nothing: not kept, so --resume runs it.
    if (r.cut_short) return;
    CaseResult result = r;
    result.run_id = run_id;
    if (write(out_dir + "/" + result_path(r.target, r.case_id), nlohmann::json(result).dump(2)))
      progress.step(r.target, r.case_id, r.status);
  };
  // One execute() per set of targets that share their slice of the cases:
  // unsharded, one call for everything; a VM kernel's targets always share.
  std::map<std::vector<const Case*>, std::vector<Target*>> by_slice;
  std::vector<std::vector<const Case*>> slice_order;
  for (auto& t : targets) {
    std::vector<const Case*> slice = cases_for(*t);
    if (slice.empty()) continue;
    auto [it, added] = by_slice.try_emplace(slice);
    if (added) slice_order.push_back(slice);
    it->second.push_back(t.get());
  }
  for (const auto& slice : slice_order) {
    if (interrupted() || stop) break;
    Plan plan;
    plan.cases = slice;
    plan.jobs = opts.jobs;
    plan.isolated_jobs = opts.vm_jobs;
    plan.targets = by_slice[slice];
    plan.stop = [&] { return bool(stop); };
    if (mode == OutDir::Mode::resume)
      plan.done = [&](const Target& t, const Case& c) { return out_lock.has_result(t.name(), c.id); };
    if (!execute(plan, ctx, sink)) internal_failure = true;
  }
  progress.finish();
  // The targets' destructors release what they hold; then the run's scratch
  // directory goes, unless a mount below it would not (its marker stays, and
  // the next run's cleanup takes it).
  targets.clear();
  if (scratch && !scratch->remove())
    err << "syncprobe run: " << scratch->path() << " still holds a mount or a process; the next run "
        << "will release it\n";

  run["finished_at"] = utc_now("%Y-%m-%dT%H:%M:%SZ");
  if (interrupted()) run["interrupted_by_signal"] = interrupt_signal();
  if (stop) run["stopped"] = "cannot write the results: " + write_error;
  write(out_dir + "/run.json", run.dump(2));
  if (stop) {
    err << "syncprobe run: cannot write the results in " << out_dir << ": " << write_error
        << "; the run stopped (what was written is complete)\n";
    return 1;
  }

  if (shard) {
    // One shard's results classify only together with the others'.
    out << fmt::format("syncprobe: shard {}/{} done; combine the shards with `syncprobe merge`\n",
                       shard->index, shard->count);
  } else {
    try {
      const nlohmann::json summary = classify(load_run(out_dir));
      if (write(out_dir + "/summary.json", summary.dump(2))) {
        print_summary(summary, out);
        if (const std::string why = write_test_formats(out_dir); !why.empty()) {
          err << "syncprobe run: cannot write junit.xml and report.ktap: " << why << "\n";
          internal_failure = true;
        }
      }
    } catch (const std::exception& e) {
      err << "syncprobe run: classification failed: " << e.what() << "\n";
      internal_failure = true;
    }
  }
  out << fmt::format("syncprobe: {} completed, {} skipped, {} hung, {} error; results in {}\n",
                     progress.count(CaseStatus::completed), progress.count(CaseStatus::skipped),
                     progress.count(CaseStatus::hung), progress.count(CaseStatus::error), out_dir);
  if (stop) {
    err << "syncprobe run: cannot write " << out_dir << "/summary.json: " << write_error << "\n";
    return 1;
  }
  if (interrupted()) {
    err << "syncprobe run: interrupted; partial results kept in " << out_dir << "\n";
    return 128 + interrupt_signal();
  }
  return internal_failure ? 1 : 0;
}

}  // namespace syncprobe
