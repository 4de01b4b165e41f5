// The classifier. It reads observations by the probe labels the cases put on
// their steps, and the checks the cases declare; nothing here looks at a
// target's name or policy. See docs/classifier.md for the decision tables.
#include "syncprobe/classify.h"

#include <algorithm>
#include <iostream>
#include <optional>

#include <fmt/format.h>

#include "syncprobe/errno_names.h"

namespace syncprobe {
namespace {

using nlohmann::json;

constexpr const char* kAxes[] = {"reporting", "page_fate", "recovery", "fs_reaction", "cross_fd"};
constexpr const char* kRules[] = {"R1", "R2", "R3", "R4", "R5", "R6", "R7"};
constexpr const char* kRuleNames[] = {"retain",      "fd-consistency", "gone-bad", "per-fd",
                                      "report-all",  "recover",        "bounded"};

// One observed step, located: which case, which step.
struct Located {
  const Case* c = nullptr;
  const CaseResult* result = nullptr;
  const StepObservation* obs = nullptr;
  const Step* step = nullptr;
};

bool failed(const StepObservation& o) { return o.result.ret < 0 || o.result.hung; }

std::string tag_of(const StepObservation& o) { return o.data ? o.data->tag : ""; }

// "0", "-1 EIO", "hung", plus " tag A" for reads: what a reader compares.
std::string outcome(const StepObservation& o) {
  std::string s = describe(o.result);
  if (o.data) s += " tag " + o.data->tag;
  return s;
}

// The outcome compared between a target and a policy: as outcome(), except
// that the descriptor number an open returns belongs to the implementation.
std::string comparable_outcome(const StepObservation& o) {
  if (o.op == "open" && !failed(o)) return "opened";
  return outcome(o);
}

json locate_json(const Located& l, const std::string& meaning) {
  json j = {{"case", l.c->id},
            {"step", l.obs->index},
            {"line", l.obs->line},
            {"op", l.obs->op},
            {"observed", outcome(*l.obs)}};
  if (!l.step->probe.empty()) j["probe"] = l.step->probe;
  if (!meaning.empty()) j["meaning"] = meaning;
  return j;
}

// Observations of one target, indexed by probe.
class TargetView {
 public:
  TargetView(const RunResults& run, const std::map<std::string, CaseResult>& results) {
    for (const auto& [case_id, r] : results) {
      auto it = run.cases.find(case_id);
      if (it == run.cases.end()) continue;
      const Case& c = it->second;
      for (const auto& o : r.steps) {
        if (o.index >= c.steps.size()) continue;
        const Step& s = c.steps[o.index];
        Located l{&c, &r, &o, &s};
        all_.push_back(l);
        if (!s.probe.empty()) by_probe_[s.probe].push_back(l);
      }
    }
  }

  // The first observation of `probe` in a case (in case id order).
  std::optional<Located> probe(const std::string& name) const {
    auto it = by_probe_.find(name);
    if (it == by_probe_.end() || it->second.empty()) return std::nullopt;
    return it->second.front();
  }
  std::vector<Located> probes(const std::string& name) const {
    auto it = by_probe_.find(name);
    return it == by_probe_.end() ? std::vector<Located>{} : it->second;
  }
  // The probe within one case (for checks that refer to a sibling step).
  std::optional<Located> probe_in(const std::string& case_id, const std::string& name) const {
    for (const auto& l : probes(name))
      if (l.c->id == case_id) return l;
    return std::nullopt;
  }
  const std::vector<Located>& all() const { return all_; }

 private:
  std::vector<Located> all_;
  std::map<std::string, std::vector<Located>> by_probe_;
};

// ---- rules -----------------------------------------------------------------

struct CheckOutcome {
  enum { pass, fail, na } verdict = na;
  json evidence;
};

// Resolves "@probe" to the tag that step read; plain tags stand for themselves.
std::optional<std::string> resolve_tag(const TargetView& v, const std::string& case_id,
                                       const std::string& want) {
  if (want.empty() || want[0] != '@') return want;
  auto l = v.probe_in(case_id, want.substr(1));
  if (!l || !l->obs->data) return std::nullopt;
  return l->obs->data->tag;
}

CheckOutcome evaluate(const TargetView& v, const Located& l) {
  const Check& chk = *l.step->check;
  const StepObservation& o = *l.obs;
  CheckOutcome out;
  json ev = locate_json(l, "");
  std::string expect = chk.expect;
  if (!chk.expect_tag.empty() && chk.expect != "honest") {
    auto want = resolve_tag(v, l.c->id, chk.expect_tag);
    if (!want) return out;
    ev["expect"] = "tag " + *want;
    if (failed(o) || !o.data) {
      out.verdict = CheckOutcome::fail;
    } else {
      out.verdict = o.data->tag == *want ? CheckOutcome::pass : CheckOutcome::fail;
    }
  } else if (expect == "ok") {
    ev["expect"] = "success";
    out.verdict = failed(o) ? CheckOutcome::fail : CheckOutcome::pass;
  } else if (expect == "error") {
    ev["expect"] = "an error";
    out.verdict = (o.result.ret < 0 && !o.result.hung) ? CheckOutcome::pass : CheckOutcome::fail;
  } else if (expect == "honest") {
    auto want = resolve_tag(v, l.c->id, chk.expect_tag);
    auto proof = v.probe_in(l.c->id, chk.proof);
    ev["expect"] = "an error, or success with " + chk.expect_tag + " on stable storage (" +
                   chk.proof + ")";
    if (failed(o)) {
      out.verdict = o.result.hung ? CheckOutcome::fail : CheckOutcome::pass;
    } else {
      if (!want || !proof || !proof->obs->data) return out;  // proof never ran
      ev["proof"] = locate_json(*proof, "what stable storage held afterwards");
      out.verdict = proof->obs->data->tag == *want ? CheckOutcome::pass : CheckOutcome::fail;
    }
  } else if (auto e = errno_from_name(expect)) {
    ev["expect"] = "-1 " + expect;
    out.verdict = (o.result.ret < 0 && o.result.err == *e) ? CheckOutcome::pass
                                                            : CheckOutcome::fail;
  } else {
    return out;
  }
  ev["rule"] = chk.rule;
  ev["pass"] = out.verdict == CheckOutcome::pass;
  out.evidence = std::move(ev);
  return out;
}

// R7 has no fixed expectation: the cache may hold at most the configured cap
// of failed data, so the check counts the bytes of the failed tag still read.
std::optional<CheckOutcome> evaluate_r7(const TargetView& v) {
  auto l = v.probe("r7.read_after_pressure");
  if (!l || !l->obs->data) return std::nullopt;
  uint64_t cap = 0;
  for (const auto& s : l->c->steps)
    if (s.kind == StepKind::memory_limit) cap = s.size_arg("bytes");
  if (cap == 0) return std::nullopt;
  // The failed data is what the case wrote after the fault: the tag of the
  // largest write that follows the fault step.
  std::string failed_tag;
  bool after_fault = false;
  for (const auto& s : l->c->steps) {
    if (s.kind == StepKind::fault) after_fault = true;
    if (after_fault && s.kind == StepKind::pwrite) failed_tag = s.arg("tag");
  }
  uint64_t held = 0;
  for (const auto& [t, n] : l->obs->data->parts)
    if (t == failed_tag) held += n;
  CheckOutcome out;
  out.verdict = held <= cap ? CheckOutcome::pass : CheckOutcome::fail;
  out.evidence = locate_json(*l, fmt::format("{} bytes of the failed data still cached; cap {}",
                                             held, cap));
  out.evidence["rule"] = "R7";
  out.evidence["expect"] = fmt::format("at most {} bytes of tag {}", cap, failed_tag);
  out.evidence["pass"] = out.verdict == CheckOutcome::pass;
  return out;
}

// ---- axes ------------------------------------------------------------------

struct AxisResult {
  std::string value = "unknown";
  json evidence = json::array();
};

// An observation that took part in a decision, with what it meant.
void cite(AxisResult& a, const std::optional<Located>& l, const std::string& meaning) {
  if (l) a.evidence.push_back(locate_json(*l, meaning));
}

AxisResult classify_reporting(const TargetView& v) {
  AxisResult a;
  auto first = v.probe("report.first");
  auto other = v.probe("report.other_fd");
  auto again = v.probe("report.again");
  auto healed = v.probe("report.after_heal");
  auto unseen = v.probe("report.unseen_new_fd");
  if (!first || !again) return a;
  const bool F = failed(*first->obs);
  const bool G = failed(*again->obs);
  cite(a, first, F ? "the writer's fsync after the failure reported it"
                   : "the writer's fsync after the failure returned success");
  cite(a, again, G ? "the writer's next fsync, device still failing, failed again"
                   : "the writer's next fsync, device still failing, succeeded");
  if (!F) {
    a.value = G ? "deferred" : "silent";
    return a;
  }
  if (G) {
    if (healed) {
      const bool H = failed(*healed->obs);
      cite(a, healed, H ? "after repair the writer's fsync still failed"
                        : "after repair the writer's fsync succeeded");
      a.value = H ? "sticky-until-close" : "until-persisted";
    } else {
      a.value = "until-persisted";
    }
    return a;
  }
  if (!other) return a;
  const bool O = failed(*other->obs);
  cite(a, other, O ? "a second descriptor open at the failure was told"
                   : "a second descriptor open at the failure was not told");
  if (!O) {
    a.value = "first-caller";
    return a;
  }
  if (unseen) {
    const bool U = failed(*unseen->obs);
    cite(a, unseen, U ? "a descriptor opened after an unseen error was told"
                      : "a descriptor opened after an unseen error was not told");
    a.value = U ? "once-per-fd+unseen" : "once-per-fd";
  } else {
    a.value = "once-per-fd";
  }
  return a;
}

AxisResult classify_page_fate(const TargetView& v) {
  AxisResult a;
  auto cached = v.probe("fate.read_cached");
  auto dropped = v.probe("fate.read_after_drop");
  auto disk = v.probe("single.disk");
  if (!cached || !dropped) return a;
  const std::string new_tag = "A";
  const std::string c = tag_of(*cached->obs), d = tag_of(*dropped->obs);
  cite(a, cached, "read right after the failed fsync returned " + (c.empty() ? outcome(*cached->obs) : c));
  if (c != new_tag) {
    a.value = "reverted";
    return a;
  }
  cite(a, dropped, "read after drop_caches returned " + (d.empty() ? outcome(*dropped->obs) : d));
  if (d != new_tag) {
    a.value = "clean-kept";
    return a;
  }
  // Still cached after drop_caches: retained. Dirty only if it was written later.
  if (disk && tag_of(*disk->obs) == new_tag) {
    cite(a, disk, "stable storage held the new data after repair");
    a.value = "dirty-retained";
  } else {
    cite(a, disk, "stable storage never received the new data");
    a.value = "clean-kept";
  }
  return a;
}

AxisResult classify_recovery(const TargetView& v) {
  AxisResult a;
  // (retry fsync after repair, read_back afterwards): every pair the catalogue has.
  const std::pair<const char*, const char*> pairs[] = {
      {"recovery.retry", "recovery.disk"},
      {"recovery.enxio_retry", "recovery.enxio_disk"},
      {"fate.fsync_after_heal", "single.disk"},
      {"thin.retry", "thin.disk"},
      {"report.after_heal", "r441.disk"},
  };
  int worst = -1;  // 0 recovers, 1 lost-reported, 2 lost-silent
  for (const auto& [retry_probe, disk_probe] : pairs) {
    for (const auto& retry : v.probes(retry_probe)) {
      auto disk = v.probe_in(retry.c->id, disk_probe);
      if (!disk || !disk->obs->data) continue;
      const bool persisted = disk->obs->data->tag == "A";
      const bool retry_failed = failed(*retry.obs);
      int kind = persisted ? 0 : (retry_failed ? 1 : 2);
      cite(a, retry, retry_failed ? "the retry after repair failed" : "the retry after repair succeeded");
      cite(a, disk, persisted ? "the data reached stable storage" : "the data never reached stable storage");
      worst = std::max(worst, kind);
    }
  }
  if (worst >= 0) a.value = worst == 0 ? "recovers" : worst == 1 ? "lost-reported" : "lost-silent";
  return a;
}

AxisResult classify_fs_reaction(const TargetView& v) {
  AxisResult a;
  int worst = -1;  // 0 continues, 1 read-only, 2 shutdown, 3 hangs
  for (const auto& l : v.probes("fs.healthy_write")) {
    const StepObservation& o = *l.obs;
    int kind = 0;
    std::string meaning = "a new file could be written after repair";
    if (o.result.hung) {
      kind = 3;
      meaning = "writing a new file after repair hung";
    } else if (o.result.ret < 0 && o.result.err == EROFS) {
      kind = 1;
      meaning = "writing a new file after repair was refused: read-only";
    } else if (o.result.ret < 0) {
      kind = 2;
      meaning = "writing a new file after repair failed: the filesystem shut down";
    }
    cite(a, l, meaning);
    worst = std::max(worst, kind);
  }
  // A case on this axis that hung before its probe ran shows a hang too.
  for (const auto& l : v.all()) {
    const bool on_axis = std::count(l.c->axes.begin(), l.c->axes.end(), "fs_reaction") > 0;
    if (on_axis && l.obs->result.hung) {
      cite(a, l, "the filesystem hung (step did not return)");
      worst = 3;
    }
  }
  static const char* names[] = {"continues", "read-only", "shutdown", "hangs"};
  if (worst >= 0) a.value = names[worst];
  return a;
}

AxisResult classify_cross_fd(const TargetView& v) {
  AxisResult a;
  auto read = v.probe("cross.b_read");
  auto sync = v.probe("cross.b_fsync");
  if (!read || !sync) return a;
  auto disk = v.probe_in(sync->c->id, "cross.disk");
  const std::string seen = tag_of(*read->obs);
  cite(a, read, "the second process read " + (seen.empty() ? outcome(*read->obs) : seen));
  if (failed(*sync->obs)) {
    cite(a, sync, "the second process's fsync failed");
    a.value = "safe";
    return a;
  }
  cite(a, sync, "the second process's fsync succeeded");
  if (!disk || !disk->obs->data) return a;
  const std::string held = tag_of(*disk->obs);
  cite(a, disk, "stable storage held " + held + " where the second process read " + seen);
  a.value = held == seen ? "safe" : "corrupts";
  return a;
}

// ---- closest policy --------------------------------------------------------

struct Distance {
  size_t count = 0;
  json differences = json::array();
};

Distance distance(const RunResults& run, const std::map<std::string, CaseResult>& target,
                  const std::map<std::string, CaseResult>& policy, const std::string& policy_name) {
  Distance d;
  for (const auto& [case_id, tr] : target) {
    auto it = policy.find(case_id);
    if (it == policy.end()) continue;
    const CaseResult& pr = it->second;
    if (tr.status == CaseStatus::skipped || pr.status == CaseStatus::skipped) continue;
    if (tr.status == CaseStatus::error || pr.status == CaseStatus::error) continue;
    const size_t n = std::max(tr.steps.size(), pr.steps.size());
    for (size_t i = 0; i < n; ++i) {
      const std::string a = i < tr.steps.size() ? comparable_outcome(tr.steps[i]) : "not run";
      const std::string b = i < pr.steps.size() ? comparable_outcome(pr.steps[i]) : "not run";
      if (a == b) continue;
      ++d.count;
      const StepObservation& any = i < tr.steps.size() ? tr.steps[i] : pr.steps[i];
      d.differences.push_back({{"policy", policy_name},
                               {"case", case_id},
                               {"step", i},
                               {"line", any.line},
                               {"op", any.op},
                               {"observed", a},
                               {"policy_observed", b}});
    }
  }
  (void)run;
  return d;
}

json classify_target(const RunResults& run, const std::string& name,
                     const std::map<std::string, CaseResult>& results) {
  TargetView v(run, results);
  json t;
  json env = json::object();
  bool measured = true;
  if (!results.empty()) {
    env = results.begin()->second.environment;
    measured = env.value("measured", true);
  }
  if (run.run.is_object() && run.run.contains("targets") && run.run["targets"].contains(name)) {
    const auto& rt = run.run["targets"][name];
    measured = rt.value("measured", measured);
    // The environment of a completed case is the most specific (the guest's uname).
    if (env.empty()) env = rt.value("environment", json::object());
  }
  for (const auto& [id, r] : results)
    if (r.status == CaseStatus::completed) {
      env = r.environment;
      break;
    }
  t["measured"] = measured;
  t["environment"] = env;

  json counts = {{"completed", 0}, {"skipped", 0}, {"hung", 0}, {"error", 0}};
  json cases = json::object();
  json evidence = json::object();
  std::map<std::string, int> rule_state;  // -1 none, 0 pass, 1 fail
  for (const char* r : kRules) {
    rule_state[r] = -1;
    evidence[r] = json::array();
  }
  std::map<std::string, std::pair<int, int>> per_case;  // passed, failed
  for (const auto& l : v.all()) {
    if (!l.step->check) continue;
    CheckOutcome c = evaluate(v, l);
    if (c.verdict == CheckOutcome::na) continue;
    const std::string& rule = l.step->check->rule;
    evidence[rule].push_back(c.evidence);
    const int s = c.verdict == CheckOutcome::pass ? 0 : 1;
    rule_state[rule] = std::max(rule_state[rule], s);
    (s == 0 ? per_case[l.c->id].first : per_case[l.c->id].second)++;
  }
  if (auto r7 = evaluate_r7(v)) {
    evidence["R7"].push_back(r7->evidence);
    const int s = r7->verdict == CheckOutcome::pass ? 0 : 1;
    rule_state["R7"] = std::max(rule_state["R7"], s);
    auto l = v.probe("r7.read_after_pressure");
    (s == 0 ? per_case[l->c->id].first : per_case[l->c->id].second)++;
  }
  json rules = json::object();
  for (const char* r : kRules)
    rules[r] = rule_state[r] < 0 ? "n/a" : rule_state[r] == 0 ? "pass" : "fail";

  for (const auto& [id, r] : results) {
    counts[std::string(to_string(r.status))] = counts[std::string(to_string(r.status))].get<int>() + 1;
    cases[id] = {{"status", to_string(r.status)},
                 {"reason", r.reason},
                 {"checks_passed", per_case[id].first},
                 {"checks_failed", per_case[id].second},
                 {"result", result_path(name, id)}};
  }

  const AxisResult axes[] = {classify_reporting(v), classify_page_fate(v), classify_recovery(v),
                             classify_fs_reaction(v), classify_cross_fd(v)};
  json profile = json::object();
  for (size_t i = 0; i < std::size(kAxes); ++i) {
    profile[kAxes[i]] = axes[i].value;
    evidence[kAxes[i]] = axes[i].evidence;
  }
  t["counts"] = counts;
  t["profile"] = profile;
  t["rules"] = rules;
  t["evidence"] = evidence;
  t["cases"] = cases;
  return t;
}

std::string short_env(const json& t) {
  const json& e = t["environment"];
  if (!t.value("measured", true)) return "modelled, not measured";
  std::string s;
  if (e.contains("kernel")) s += "kernel " + e.value("kernel", "");
  if (e.contains("fs")) s += (s.empty() ? "" : ", ") + e.value("fs", "");
  if (!e.value("mount_options", "").empty()) s += " (" + e.value("mount_options", "") + ")";
  if (e.contains("injector")) s += ", " + e.value("injector", "");
  return s;
}

}  // namespace

json classify(const RunResults& run) {
  json summary = {{"schema", "syncprobe.summary/1"}};
  const json meta = run.run.is_object() ? run.run : json::object();  // run.json may be absent
  summary["run"] = {{"id", meta.value("id", "")},
                    {"started_at", meta.value("started_at", "")},
                    {"finished_at", meta.value("finished_at", "")}};
  summary["axes"] = kAxes;
  json rule_names = json::object();
  for (size_t i = 0; i < std::size(kRules); ++i) rule_names[kRules[i]] = kRuleNames[i];
  summary["rules"] = rule_names;

  json targets = json::object();
  for (const auto& [name, results] : run.results) targets[name] = classify_target(run, name, results);

  // The closest reference policy: fewest differing step outcomes on the cases
  // both completed. Reference results are told apart by their environment.
  std::vector<std::string> policies;
  for (const auto& [name, t] : targets.items())
    if (!t.value("measured", true) && t["environment"].contains("policy")) policies.push_back(name);
  for (auto& [name, t] : targets.items()) {
    if (policies.empty()) {
      t["closest_policy"] = nullptr;
      t["distances"] = json::object();
      t["differences"] = json::array();
      continue;
    }
    json distances = json::object();
    std::optional<std::pair<size_t, std::string>> best;
    Distance best_d;
    for (const auto& p : policies) {
      Distance d = distance(run, run.results.at(name), run.results.at(p),
                            targets[p]["environment"].value("policy", p));
      const std::string pname = targets[p]["environment"].value("policy", p);
      distances[pname] = d.count;
      if (!best || d.count < best->first) {
        best = std::make_pair(d.count, pname);
        best_d = std::move(d);
      }
    }
    t["closest_policy"] = best->second;
    t["distances"] = distances;
    t["differences"] = best_d.differences;
  }
  summary["targets"] = targets;
  return summary;
}

void print_summary(const json& summary, std::ostream& out) {
  const json& targets = summary["targets"];
  size_t w = 8;
  for (const auto& [name, t] : targets.items()) w = std::max(w, name.size());
  out << "\nProfiles (docs/design.md, the taxonomy)\n";
  out << fmt::format("{:<{}}  {:<18} {:<15} {:<13} {:<11} {:<9} {}\n", "target", w, "reporting",
                     "page fate", "recovery", "fs", "cross-fd", "closest policy");
  for (const auto& [name, t] : targets.items()) {
    const json& p = t["profile"];
    out << fmt::format("{:<{}}  {:<18} {:<15} {:<13} {:<11} {:<9} {}\n", name, w,
                       p.value("reporting", "?"), p.value("page_fate", "?"),
                       p.value("recovery", "?"), p.value("fs_reaction", "?"),
                       p.value("cross_fd", "?"),
                       t["closest_policy"].is_string() ? t["closest_policy"].get<std::string>() : "-");
  }
  out << "\nRules (pass / FAIL / n/a)\n";
  out << fmt::format("{:<{}} ", "target", w);
  for (const char* r : kRules) out << fmt::format(" {:<4}", r);
  out << "  platform\n";
  for (const auto& [name, t] : targets.items()) {
    out << fmt::format("{:<{}} ", name, w);
    for (const char* r : kRules) {
      const std::string v = t["rules"].value(r, "n/a");
      out << fmt::format(" {:<4}", v == "fail" ? "FAIL" : v);
    }
    out << "  " << short_env(t) << "\n";
  }
  out << "\n";
}

}  // namespace syncprobe
