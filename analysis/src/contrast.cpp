// The libfiu contrast rows (docs/apps.md, "libfiu on syncprobe's own
// worker"): kernel cases whose failure libfiu injects in front of the case
// processes. The kernel's page cache never saw a failure, so these cases
// have no fault class (taxonomy::fault_class_of) and no rule checks: no
// profile and no rule verdict reads them. They are listed apart, step by
// step, with the layer that failed each call.
#include "judge.h"

namespace syncprobe::analysis {

bool libfiu_case(const Case& c) {
  for (const auto& s : c.steps)
    if (s.kind == StepKind::fault && s.arg("range") == "libfiu") return true;
  return false;
}

json libfiu_contrast(const RunResults& run, const std::map<std::string, CaseResult>& results) {
  json rows = json::array();
  for (const auto& [id, r] : results) {
    auto it = run.cases.find(id);
    // A target that cannot run them (reference, refmount, vm) skipped them: no row.
    if (it == run.cases.end() || !libfiu_case(it->second) || r.status == CaseStatus::skipped) continue;
    const Case& c = it->second;
    // App cases have their own table (summary "applications").
    bool app = false;
    for (const auto& s : c.steps) app = app || s.kind == StepKind::app;
    if (app) continue;
    json row = {{"case", id}, {"status", std::string(to_string(r.status))}, {"fault_layer", "libfiu"}};
    if (!r.reason.empty()) row["reason"] = r.reason;
    json steps = json::array();
    for (const auto& o : r.steps) {
      if (o.index >= c.steps.size()) continue;
      const Step& s = c.steps[o.index];
      if (s.probe.empty() && s.kind != StepKind::fault) continue;
      json st = {{"step", o.index}, {"line", o.line}, {"op", o.op}, {"observed", outcome(o)}};
      if (!s.probe.empty()) st["probe"] = s.probe;
      if (s.kind == StepKind::fault) st["point"] = s.arg("point");
      if (!o.fault_layer.empty()) st["fault_layer"] = o.fault_layer;
      steps.push_back(st);
    }
    row["steps"] = steps;
    rows.push_back(row);
  }
  return rows;
}

}  // namespace syncprobe::analysis
