// What fstests would conclude: a case restated from an fstests test states
// fstests' own pass condition in its probes (Case::fstests); this judges it
// on the same observations the rules are judged on, so a report can show
// "passes generic/441" beside "fails R2".
#include <algorithm>

#include "judge.h"
#include "syncprobe/errno_names.h"
#include "syncprobe/taxonomy.h"

namespace syncprobe::analysis {
namespace {

enum class Met { yes, no, unknown };

Met meets(const StepObservation& o, const std::string& expect) {
  if (harness_error(o)) return Met::unknown;
  if (expect == "ok") return returned(o) && !failed(o) ? Met::yes : Met::no;
  if (expect == "error") return failed(o) ? Met::yes : Met::no;
  auto e = errno_from_name(expect);
  return failed(o) && e && o.result.err == *e ? Met::yes : Met::no;
}

std::string wanted(const FstestsExpectation& e) {
  const std::string what = e.expect == "ok" ? "success" : e.expect == "error" ? "an error" : "-1 " + e.expect;
  return e.one_of ? "exactly one of them " + what + ", the others success" : what;
}

// One expectation, with its evidence appended to `evidence`.
Met judge_expectation(const TargetView& v, const Case& c, const FstestsExpectation& e, json& evidence) {
  std::vector<Located> calls;
  for (const auto& p : e.probes) {
    auto l = v.probe_in(c.id, p);
    if (!l) {
      evidence.push_back({{"case", c.id}, {"probe", p}, {"line", e.line}, {"observed", "not run"},
                          {"expect", wanted(e)}, {"unknown", "the step never ran"}});
      return Met::unknown;
    }
    calls.push_back(*l);
  }
  Met m = Met::yes;
  if (!e.one_of) {
    m = meets(*calls[0].obs, e.expect);
  } else {
    int meeting = 0;
    bool others_succeeded = true, unknown = false;
    for (const auto& l : calls) {
      const Met one = meets(*l.obs, e.expect);
      if (one == Met::unknown) unknown = true;
      else if (one == Met::yes) ++meeting;
      else if (!returned(*l.obs) || failed(*l.obs)) others_succeeded = false;
    }
    m = unknown ? Met::unknown : meeting == 1 && others_succeeded ? Met::yes : Met::no;
  }
  for (const auto& l : calls) {
    json j = locate_json(l, "");
    j["expect"] = wanted(e);
    if (m != Met::unknown) j["pass"] = m == Met::yes;
    evidence.push_back(std::move(j));
  }
  return m;
}

}  // namespace

json judge_fstests(const RunResults& run, const std::map<std::string, CaseResult>& results, const TargetView& v) {
  json out = json::object();
  for (const auto& [id, c] : run.cases) {
    if (!c.fstests) continue;
    auto it = results.find(id);
    if (it == results.end()) continue;
    const CaseResult& r = it->second;
    const FstestsCondition& f = *c.fstests;
    json j = {{"case", id}, {"passes_when", f.passes_when}, {"evidence", json::array()}};
    if (!f.not_checked.empty()) j["not_checked"] = f.not_checked;
    std::string verdict(taxonomy::kPass), reason;
    const std::string fs = r.environment.value("fs", std::string());
    const bool fstests_skips = std::find(f.not_run_on.begin(), f.not_run_on.end(), fs) != f.not_run_on.end();
    if (r.status == CaseStatus::skipped) {
      verdict = taxonomy::kNotRun;
      reason = r.reason;
    } else if (fstests_skips) {
      verdict = taxonomy::kNotRun;
      reason = "fstests " + f.test + " does not run on " + fs + " (_notrun)";
    } else if (r.status == CaseStatus::error) {
      verdict = taxonomy::kUnknown;
      reason = "the case ended with a harness error: " + r.reason;
    } else {
      bool unknown = false, failed_one = false;
      for (const auto& e : f.expect) {
        const Met m = judge_expectation(v, c, e, j["evidence"]);
        unknown = unknown || m == Met::unknown;
        failed_one = failed_one || m == Met::no;
      }
      if (r.status == CaseStatus::hung) {
        verdict = taxonomy::kFail;
        reason = "a step hung (" + r.reason + "): fstests would not finish";
      } else if (failed_one) {
        verdict = taxonomy::kFail;
      } else if (unknown) {
        verdict = taxonomy::kUnknown;
        reason = "a call fstests checks did not run or could not be carried out";
      }
    }
    j["verdict"] = verdict;
    if (!reason.empty()) j["reason"] = reason;
    out[f.test] = std::move(j);
  }
  return out;
}

}  // namespace syncprobe::analysis
