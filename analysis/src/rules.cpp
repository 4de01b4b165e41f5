// Rule verdicts: each check a case declares is judged on the step it labels;
// a rule fails if one of its checks failed, passes if every check that could
// be judged held, and otherwise says why not (docs/classifier.md).
#include <set>

#include <fmt/format.h>

#include "judge.h"
#include "syncprobe/errno_names.h"
#include "syncprobe/taxonomy.h"

namespace syncprobe::analysis {
namespace {

struct Judged {
  enum { pass, fail, unknown } verdict = unknown;
  json evidence;
};

// Resolves "@probe" to the tag that step read; plain tags stand for themselves.
std::optional<std::string> resolve_tag(const TargetView& v, const std::string& case_id, const std::string& want) {
  if (want.empty() || want[0] != '@') return want;
  auto l = v.probe_in(case_id, want.substr(1));
  if (!l || !returned(*l->obs) || !l->obs->data) return std::nullopt;
  return l->obs->data->tag;
}

Judged judge(const TargetView& v, const Located& l) {
  const Check& chk = *l.step->check;
  const StepObservation& o = *l.obs;
  Judged out;
  json& ev = out.evidence = locate_json(l, "");
  ev["rule"] = chk.rule;
  auto unknown = [&](const std::string& why) {
    ev["unknown"] = why;
    out.verdict = Judged::unknown;
    return out;
  };
  auto verdict = [&](bool pass) {
    out.verdict = pass ? Judged::pass : Judged::fail;
    ev["pass"] = pass;
    return out;
  };
  if (harness_error(o)) return unknown("syncprobe could not carry out the step (" + harness_origin(o) + ")");
  if (chk.expect == "honest") {
    ev["expect"] = "an error, or success with " + chk.expect_tag + " on stable storage (" + chk.proof + ")";
    if (o.result.hung) return verdict(false);  // a hang is neither a report nor a true success
    if (failed(o)) return verdict(true);
    auto want = resolve_tag(v, l.c->id, chk.expect_tag);
    if (!want) return unknown("the step " + chk.expect_tag + " names read nothing");
    auto proof = v.probe_in(l.c->id, chk.proof);
    if (!proof) return unknown("the call succeeded, but the proof read-back " + chk.proof + " never ran");
    ev["proof"] = locate_json(*proof, "what stable storage held afterwards");
    if (!returned(*proof->obs) || failed(*proof->obs) || !proof->obs->data)
      return unknown("the call succeeded, but the proof read-back failed (" + outcome(*proof->obs) +
                     "): what stable storage holds is not known");
    return verdict(proof->obs->data->tag == *want);
  }
  if (!chk.expect_tag.empty()) {
    auto want = resolve_tag(v, l.c->id, chk.expect_tag);
    if (!want) return unknown("the step " + chk.expect_tag + " names read nothing");
    ev["expect"] = "tag " + *want;
    return verdict(returned(o) && !failed(o) && o.data && o.data->tag == *want);
  }
  if (chk.expect == "ok") {
    ev["expect"] = "success";
    return verdict(returned(o) && !failed(o));
  }
  if (chk.expect == "error") {
    ev["expect"] = "an error";
    return verdict(failed(o));  // a hang is not a report
  }
  if (auto e = errno_from_name(chk.expect)) {
    ev["expect"] = "-1 " + chk.expect;
    return verdict(failed(o) && o.result.err == *e);
  }
  return unknown("the check's expectation '" + chk.expect + "' is not understood");
}

// R7 has no fixed expectation: the cache may hold at most the configured cap
// of failed data, so the check counts the bytes of the failed tag still read.
std::optional<Judged> judge_r7(const TargetView& v) {
  std::optional<Located> l;
  for (const auto& x : v.all())
    if (x.step->probe == "r7.read_after_pressure") l = x;
  if (!l) return std::nullopt;
  uint64_t cap = 0;
  for (const auto& s : l->c->steps)
    if (s.kind == StepKind::memory_limit) cap = s.size_arg("bytes");
  Judged out;
  out.evidence = locate_json(*l, "");
  out.evidence["rule"] = "R7";
  if (cap == 0 || !returned(*l->obs) || failed(*l->obs) || !l->obs->data) {
    out.evidence["unknown"] = cap == 0 ? "the case sets no memory_limit" : "the read failed: " + outcome(*l->obs);
    return out;
  }
  const std::string failed_tag = case_tags(*l->c).new_tag;
  uint64_t held = 0;
  for (const auto& [t, n] : l->obs->data->parts)
    if (t == failed_tag) held += n;
  out.verdict = held <= cap ? Judged::pass : Judged::fail;
  out.evidence["meaning"] = fmt::format("{} bytes of the failed data still cached; cap {}", held, cap);
  out.evidence["expect"] = fmt::format("at most {} bytes of tag {}", cap, failed_tag);
  out.evidence["pass"] = out.verdict == Judged::pass;
  return out;
}

// The cases of the run that check `rule` (R7: the one that measures memory).
std::set<std::string> cases_checking(const RunResults& run, const std::string& rule) {
  std::set<std::string> out;
  for (const auto& [id, c] : run.cases)
    for (const auto& s : c.steps)
      if ((s.check && s.check->rule == rule) || (rule == "R7" && s.probe == "r7.read_after_pressure"))
        out.insert(id);
  return out;
}

}  // namespace

RuleVerdicts judge_rules(const RunResults& run, const std::map<std::string, CaseResult>& results,
                         const TargetView& v) {
  RuleVerdicts rv;
  struct Tally {
    int pass = 0, fail = 0, unknown = 0, not_reached = 0;
    std::string why;
  };
  std::map<std::string, Tally> tally;
  auto count = [&](const std::string& rule, const std::string& case_id, const Judged& j) {
    rv.evidence[rule].push_back(j.evidence);
    Tally& t = tally[rule];
    CheckCounts& c = rv.per_case[case_id];
    if (j.verdict == Judged::pass) ++t.pass, ++c.passed;
    if (j.verdict == Judged::fail) ++t.fail, ++c.failed;
    if (j.verdict == Judged::unknown) {
      ++t.unknown, ++c.unknown;
      t.why += (t.why.empty() ? "" : "; ") + case_id + " step " + std::to_string(j.evidence.value("step", 0)) +
               ": " + j.evidence.value("unknown", "");
    }
  };
  for (const auto& r : taxonomy::rules()) rv.evidence[std::string(r.id)] = json::array();
  for (const auto& l : v.all())
    if (l.step->check) count(l.step->check->rule, l.c->id, judge(v, l));
  if (auto r7 = judge_r7(v)) count("R7", r7->evidence.value("case", ""), *r7);
  // Checks a hung or failed case never reached.
  for (const auto& [id, r] : results) {
    if (r.status != CaseStatus::hung && r.status != CaseStatus::error) continue;
    const Case& c = run.cases.at(id);
    std::set<size_t> seen;
    for (const auto& o : r.steps) seen.insert(o.index);
    for (size_t i = 0; i < c.steps.size(); ++i)
      if (c.steps[i].check && !seen.count(i)) ++tally[c.steps[i].check->rule].not_reached;
  }
  for (const auto& rule : taxonomy::rules()) {
    const std::string id(rule.id);
    const Tally& t = tally[id];
    std::string verdict, reason;
    if (t.fail) {
      verdict = taxonomy::kFail;
    } else if (t.pass && !t.unknown) {
      verdict = taxonomy::kPass;
      if (t.not_reached) rv.reasons[id] = fmt::format("{} check(s) in hung cases never ran", t.not_reached);
    } else if (t.unknown) {
      verdict = taxonomy::kUnknown;
      reason = t.why;
    } else if (t.not_reached) {
      verdict = taxonomy::kUnknown;
      reason = "the cases that check it hung or failed before their checks";
    } else {
      const auto cases = cases_checking(run, id);
      std::string skipped;
      bool all_skipped = !cases.empty();
      for (const auto& c : cases) {
        auto it = results.find(c);
        if (it == results.end()) continue;
        if (it->second.status != CaseStatus::skipped) all_skipped = false;
        else skipped += (skipped.empty() ? "" : "; ") + c + ": " + it->second.reason;
      }
      if (cases.empty()) {
        verdict = taxonomy::kNotApplicable;
        reason = "no case in the run checks it";
      } else if (all_skipped && !skipped.empty()) {
        verdict = taxonomy::kNotMeasurable;
        reason = skipped;
      } else {
        verdict = taxonomy::kNotApplicable;
        reason = "no case that checks it ran here";
      }
    }
    rv.rules[id] = verdict;
    if (!reason.empty()) rv.reasons[id] = reason;
  }
  return rv;
}

}  // namespace syncprobe::analysis
