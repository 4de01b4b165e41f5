// The classifier. It reads observations by the probe labels the cases put on
// their steps, and the checks the cases declare; nothing here looks at a
// target's name or policy. Profiles are per fault class (taxonomy.h); the
// headline profile is the class of a transient data-write error. See
// docs/classifier.md for the decision tables.
#include "syncprobe/classify.h"

#include "axes.h"
#include "judge.h"
#include "syncprobe/app_outcome.h"
#include "syncprobe/taxonomy.h"

namespace syncprobe {
namespace {

using analysis::AxisResult;
using analysis::TargetView;
using nlohmann::json;

json environment_of(const RunResults& run, const std::string& name,
                    const std::map<std::string, CaseResult>& results, bool& measured) {
  json env = json::object();
  measured = true;
  if (!results.empty()) {
    env = results.begin()->second.environment;
    measured = env.value("measured", true);
  }
  if (run.run.is_object() && run.run.contains("targets") && run.run["targets"].contains(name)) {
    const auto& rt = run.run["targets"][name];
    measured = rt.value("measured", measured);
    if (env.empty()) env = rt.value("environment", json::object());
  }
  // The environment of a completed case is the most specific (the guest's uname).
  for (const auto& [id, r] : results)
    if (r.status == CaseStatus::completed) return r.environment;
  return env;
}

json axis_json(const AxisResult& a) {
  json j = {{"value", a.value}, {"evidence", a.evidence}};
  if (!a.reason.empty()) j["reason"] = a.reason;
  return j;
}

// Every axis for one fault class.
json class_profile(const TargetView& v, const std::string& cls) {
  using Fn = AxisResult (*)(const TargetView&, const std::string&);
  static const std::pair<const char*, Fn> kDeciders[] = {
      {"reporting", analysis::classify_reporting}, {"page_fate", analysis::classify_page_fate},
      {"recovery", analysis::classify_recovery},   {"fs_reaction", analysis::classify_fs_reaction},
      {"cross_fd", analysis::classify_cross_fd},
  };
  json axes = json::object();
  for (const auto& [axis, decide] : kDeciders) axes[axis] = axis_json(decide(v, cls));
  json cases = json::array();
  for (const CaseResult* r : v.cases_of(cls)) cases.push_back(r->case_id);
  std::string title;
  for (const auto& fc : taxonomy::fault_classes())
    if (fc.id == cls) title = fc.title;
  return {{"title", title}, {"cases", cases}, {"axes", axes}};
}

json classify_target(const RunResults& run, const std::string& name,
                     const std::map<std::string, CaseResult>& results) {
  TargetView v(run, results);
  json t;
  bool measured = true;
  t["environment"] = environment_of(run, name, results, measured);
  t["measured"] = measured;

  analysis::RuleVerdicts rv = analysis::judge_rules(run, results, v);
  json counts = {{"completed", 0}, {"skipped", 0}, {"hung", 0}, {"error", 0}};
  json cases = json::object();
  for (const auto& [id, r] : results) {
    const std::string status(to_string(r.status));
    counts[status] = counts[status].get<int>() + 1;
    const analysis::CheckCounts& n = rv.per_case[id];
    auto c = run.cases.find(id);
    cases[id] = {{"status", status},
                 {"reason", r.reason},
                 {"fault_class", v.class_of(id)},
                 {"checks_passed", n.passed},
                 {"checks_failed", n.failed},
                 {"checks_unknown", n.unknown},
                 {"result", result_path(name, id)}};
    // libfiu failed calls in front of the kernel: never a device fault.
    if (c != run.cases.end() && analysis::libfiu_case(c->second)) cases[id]["fault_layer"] = "libfiu";
  }

  // Profiles per fault class; the headline class also fills `profile` and
  // the axis entries of `evidence` (what a one-row table shows).
  json profiles = json::object();
  for (const auto& cls : v.classes()) profiles[cls] = class_profile(v, cls);
  const std::string headline(taxonomy::kHeadlineClass);
  const json head = profiles.contains(headline) ? profiles[headline] : class_profile(v, headline);
  json profile = json::object(), profile_reasons = json::object();
  json evidence = rv.evidence;
  for (const auto& axis : taxonomy::axes()) {
    const std::string id(axis.id);
    const json& a = head.at("axes").at(id);
    profile[id] = a["value"];
    if (a.contains("reason")) profile_reasons[id] = a["reason"];
    else if (!profiles.contains(headline)) profile_reasons[id] = "no case of fault class " + headline + " ran here";
    evidence[id] = a["evidence"];
  }
  t["counts"] = counts;
  t["profile_class"] = headline;
  t["profile"] = profile;
  t["profile_reasons"] = profile_reasons;
  t["profiles"] = profiles;
  t["rules"] = rv.rules;
  t["rule_reasons"] = rv.reasons;
  t["fstests"] = analysis::judge_fstests(run, results, v);
  t["evidence"] = evidence;
  t["cases"] = cases;
  t["libfiu_contrast"] = analysis::libfiu_contrast(run, results);
  return t;
}

}  // namespace

json classify(const RunResults& run) {
  json summary = {{"schema", "syncprobe.summary/2"}};
  const json meta = run.run.is_object() ? run.run : json::object();  // run.json may be absent
  summary["run"] = {{"id", meta.value("id", "")},
                    {"started_at", meta.value("started_at", "")},
                    {"finished_at", meta.value("finished_at", "")}};
  json axes = json::array(), rules = json::object(), classes = json::object();
  for (const auto& a : taxonomy::axes()) axes.push_back(a.id);
  for (const auto& r : taxonomy::rules()) rules[std::string(r.id)] = r.name;
  for (const auto& c : taxonomy::fault_classes()) classes[std::string(c.id)] = c.title;
  summary["axes"] = axes;
  summary["rules"] = rules;
  summary["fault_classes"] = classes;
  summary["headline_class"] = taxonomy::kHeadlineClass;

  json targets = json::object();
  for (const auto& [name, results] : run.results) targets[name] = classify_target(run, name, results);
  analysis::find_closest_policies(run, targets);
  summary["targets"] = targets;
  summary["applications"] = classify_apps(run.results);
  return summary;
}

}  // namespace syncprobe
