// The closest reference policy: the share of compared step outcomes that
// differ, on the cases both the target and the policy ran. Shares (not
// counts) so that a policy that skipped cases is not closer for it; ties are
// reported, not broken; a difference the injector made (it delivered EIO
// where the case asked for another errno) and steps a hung case never ran
// are not counted.
#include <algorithm>

#include "judge.h"
#include "syncprobe/errno_names.h"

namespace syncprobe::analysis {
namespace {

// The outcome compared between a target and a policy: as outcome(), except
// that the descriptor number an open returns belongs to the implementation.
std::string comparable(const StepObservation& o) {
  if (o.op == "open" && returned(o) && !failed(o)) return "opened";
  return outcome(o);
}

// The errno a case's fault asks for ("" for EIO or none): an injector that
// cannot deliver it delivers EIO (a loop device turns every error into EIO).
std::string requested_errno(const Case& c) {
  for (const auto& s : c.steps)
    if (s.kind == StepKind::fault && s.arg("errno") != "EIO") return s.arg("errno");
  return "";
}

bool artefact(const StepObservation& a, const StepObservation& b, const std::string& requested) {
  if (requested.empty() || !failed(a) || !failed(b)) return false;
  const std::string x = errno_name(a.result.err), y = errno_name(b.result.err);
  return (x == requested && y == "EIO") || (x == "EIO" && y == requested);
}

// Where comparing a case stops: after the hung step of either side.
size_t compared_steps(const CaseResult& t, const CaseResult& p) {
  auto end = [](const CaseResult& r) {
    for (const auto& o : r.steps)
      if (o.result.hung) return o.index + 1;
    return r.status == CaseStatus::hung ? r.steps.size() : SIZE_MAX;
  };
  const size_t limit = std::min(end(t), end(p));
  const size_t n = std::max(t.steps.size(), p.steps.size());
  return std::min(limit, n);
}

struct Distance {
  size_t differing = 0, compared = 0;
  json differences = json::array();
  json artefacts = json::array();
};

Distance distance(const RunResults& run, const std::map<std::string, CaseResult>& target,
                  const std::map<std::string, CaseResult>& policy, const std::string& policy_name) {
  Distance d;
  auto ran = [](const CaseResult& r) { return r.status == CaseStatus::completed || r.status == CaseStatus::hung; };
  for (const auto& [case_id, tr] : target) {
    auto it = policy.find(case_id);
    if (it == policy.end() || !ran(tr) || !ran(it->second)) continue;
    const CaseResult& pr = it->second;
    const auto c = run.cases.find(case_id);
    const std::string requested = c == run.cases.end() ? "" : requested_errno(c->second);
    const size_t n = compared_steps(tr, pr);
    for (size_t i = 0; i < n; ++i) {
      const StepObservation* a = i < tr.steps.size() ? &tr.steps[i] : nullptr;
      const StepObservation* b = i < pr.steps.size() ? &pr.steps[i] : nullptr;
      const std::string sa = a ? comparable(*a) : "not run", sb = b ? comparable(*b) : "not run";
      const StepObservation& any = a ? *a : *b;
      json where = {{"policy", policy_name}, {"case", case_id}, {"step", i}, {"line", any.line},
                    {"op", any.op},          {"observed", sa},   {"policy_observed", sb}};
      if (a && b && artefact(*a, *b, requested)) {
        where["why"] = "the case asks for " + requested + "; one side's injector could only deliver EIO";
        d.artefacts.push_back(std::move(where));
        continue;
      }
      ++d.compared;
      if (sa == sb) continue;
      ++d.differing;
      d.differences.push_back(std::move(where));
    }
  }
  return d;
}

// a/b < c/d without floating point; a share of nothing compared is never closest.
bool closer(const Distance& x, const Distance& y) { return x.differing * y.compared < y.differing * x.compared; }
bool same(const Distance& x, const Distance& y) { return x.differing * y.compared == y.differing * x.compared; }

}  // namespace

void find_closest_policies(const RunResults& run, json& targets) {
  std::vector<std::pair<std::string, std::string>> policies;  // target name, policy name
  for (const auto& [name, t] : targets.items())
    if (!t.value("measured", true) && t["environment"].contains("policy"))
      policies.emplace_back(name, t["environment"].value("policy", name));
  for (auto& [name, t] : targets.items()) {
    json distances = json::object(), differences = json::array(), artefacts = json::array();
    std::vector<std::pair<std::string, Distance>> best;
    for (const auto& [ptarget, pname] : policies) {
      Distance d = distance(run, run.results.at(name), run.results.at(ptarget), pname);
      distances[pname] = {{"differing", d.differing}, {"compared", d.compared}};
      if (!d.artefacts.empty()) distances[pname]["artefacts"] = d.artefacts.size();
      if (d.compared == 0) continue;
      if (best.empty() || closer(d, best[0].second)) best.clear();
      if (best.empty() || same(d, best[0].second)) best.emplace_back(pname, std::move(d));
    }
    json names = json::array();
    for (auto& [pname, d] : best) {
      names.push_back(pname);
      for (auto& x : d.differences) differences.push_back(std::move(x));
      for (auto& x : d.artefacts) artefacts.push_back(std::move(x));
    }
    t["closest_policies"] = names;
    t["closest_policy"] = names.size() == 1 ? names[0] : json(nullptr);
    t["distances"] = distances;
    t["differences"] = differences;
    t["artefacts"] = artefacts;
  }
}

}  // namespace syncprobe::analysis
