#include "view.h"

#include <algorithm>
#include <cerrno>

#include "syncprobe/errno_names.h"
#include "syncprobe/taxonomy.h"

namespace syncprobe::analysis {

bool hung(const StepObservation& o) { return o.result.hung; }
bool harness_error(const StepObservation& o) { return !o.error.empty() || o.result.harness; }
std::string harness_origin(const StepObservation& o) {
  return o.error.empty() && o.result.harness ? std::string(o.result.harness) : o.error;
}
bool returned(const StepObservation& o) { return !o.result.hung && !harness_error(o); }
bool failed(const StepObservation& o) { return returned(o) && o.result.ret < 0; }

std::string tag_of(const StepObservation& o) { return o.data ? o.data->tag : ""; }

std::string outcome(const StepObservation& o) {
  if (harness_error(o)) return "harness error: " + harness_origin(o);
  std::string s = describe(o.result);
  if (o.data) s += " tag " + o.data->tag;
  return s;
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

bool is_fs_state_errno(int err) { return err == EROFS || err == EUCLEAN || err == ESHUTDOWN; }

CaseTags case_tags(const Case& c) {
  CaseTags t;
  bool after_fault = false;
  for (const auto& s : c.steps) {
    if (s.kind == StepKind::fault || s.kind == StepKind::thin_limit) after_fault = true;
    if (s.kind != StepKind::pwrite && s.kind != StepKind::msync) continue;
    if (!after_fault) t.old_tag = s.arg("tag");
    else if (t.new_tag.empty()) t.new_tag = s.arg("tag");
  }
  return t;
}

TargetView::TargetView(const RunResults& run, const std::map<std::string, CaseResult>& results) {
  for (const auto& [case_id, r] : results) {
    auto it = run.cases.find(case_id);
    if (it == run.cases.end()) continue;
    const Case& c = it->second;
    class_[case_id] = std::string(taxonomy::fault_class_of(c));
    if (r.status == CaseStatus::completed || r.status == CaseStatus::hung) ran_[case_id] = &r;
    for (const auto& o : r.steps) {
      if (o.index >= c.steps.size()) continue;
      const Step& s = c.steps[o.index];
      Located l{&c, &r, &o, &s};
      all_.push_back(l);
      if (!s.probe.empty()) by_probe_[s.probe].push_back(l);
    }
  }
}

std::vector<Located> TargetView::probes(const std::string& probe, const std::string& cls) const {
  std::vector<Located> out;
  auto it = by_probe_.find(probe);
  if (it == by_probe_.end()) return out;
  for (const auto& l : it->second)
    if (class_of(l.c->id) == cls) out.push_back(l);
  return out;
}

std::optional<Located> TargetView::probe_in(const std::string& case_id, const std::string& probe) const {
  auto it = by_probe_.find(probe);
  if (it == by_probe_.end()) return std::nullopt;
  for (const auto& l : it->second)
    if (l.c->id == case_id) return l;
  return std::nullopt;
}

std::string TargetView::class_of(const std::string& case_id) const {
  auto it = class_.find(case_id);
  return it == class_.end() ? "" : it->second;
}

std::vector<std::string> TargetView::classes() const {
  std::vector<std::string> out;
  for (const auto& fc : taxonomy::fault_classes())
    for (const auto& [id, r] : ran_)
      if (class_of(id) == fc.id) {
        out.emplace_back(fc.id);
        break;
      }
  return out;
}

std::vector<const CaseResult*> TargetView::cases_of(const std::string& cls) const {
  std::vector<const CaseResult*> out;
  for (const auto& [id, r] : ran_)
    if (class_of(id) == cls) out.push_back(r);
  return out;
}

std::optional<Located> TargetView::fs_state_step(const std::string& case_id) const {
  for (const auto& l : all_)
    if (l.c->id == case_id && failed(*l.obs) && is_fs_state_errno(l.obs->result.err)) return l;
  return std::nullopt;
}

bool TargetView::fault_fired(const std::string& case_id) const {
  return std::any_of(all_.begin(), all_.end(),
                     [&](const Located& l) { return l.c->id == case_id && l.obs->injected > 0; });
}

CallReading TargetView::read_call(const Located& l) const {
  CallReading r;
  r.at = l;
  const StepObservation& o = *l.obs;
  if (harness_error(o)) {
    r.kind = CallReading::harness;
    r.why = "syncprobe could not carry out the step (" + harness_origin(o) + ")";
  } else if (o.result.hung) {
    r.kind = CallReading::hung;
    r.why = "the call hung; a hang is not an error report";
  } else if (o.result.ret >= 0) {
    r.kind = CallReading::ok;
  } else if (is_fs_state_errno(o.result.err)) {
    r.kind = CallReading::fs_state;
    r.why = errno_name(o.result.err) + " is the filesystem's state (fs reaction), not a report";
  } else if (auto s = fs_state_step(l.c->id); s && s->obs->index < o.index) {
    r.kind = CallReading::fs_state;
    r.why = errno_name(o.result.err) + " came after the filesystem returned " + errno_name(s->obs->result.err) +
            " (step " + std::to_string(s->obs->index) + "): an error of a dead filesystem, not a report";
  } else {
    r.kind = CallReading::reported;
  }
  return r;
}

}  // namespace syncprobe::analysis
