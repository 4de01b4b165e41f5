#pragma once
// Private to analysis/: rule verdicts, fstests verdicts, the closest
// reference policy and the libfiu contrast rows.
#include <map>
#include <string>

#include "view.h"

namespace syncprobe::analysis {

struct CheckCounts {
  int passed = 0, failed = 0, unknown = 0;
};

struct RuleVerdicts {
  json rules = json::object();     // R1 -> "pass" | "fail" | "unknown" | "not measurable here" | "n/a"
  json reasons = json::object();   // R -> why, for every verdict but pass and fail
  json evidence = json::object();  // R -> [checks, each with case, step, expect, pass]
  std::map<std::string, CheckCounts> per_case;
};

// Judges every check the cases declare (and R7's memory count) on one target.
RuleVerdicts judge_rules(const RunResults& run, const std::map<std::string, CaseResult>& results,
                         const TargetView& v);

// What fstests would conclude from this target's observations, per test:
// {"generic/441": {case, verdict, reason, passes_when, not_checked, evidence}}.
json judge_fstests(const RunResults& run, const std::map<std::string, CaseResult>& results,
                   const TargetView& v);

// For every target in `targets` (summary.json's), the reference policies
// whose results differ least: closest_policy (null on a tie),
// closest_policies, distances, differences, artefacts.
void find_closest_policies(const RunResults& run, json& targets);

// A case with a libfiu fault (in front of the processes; no device fails).
bool libfiu_case(const Case& c);
// The libfiu contrast rows of one target (kernel cases that ran, not app cases):
// [{case, status, fault_layer: "libfiu", steps: [{step, op, observed, probe, fault_layer}]}].
json libfiu_contrast(const RunResults& run, const std::map<std::string, CaseResult>& results);

}  // namespace syncprobe::analysis
