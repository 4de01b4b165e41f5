#pragma once
// Synthetic runs for the classifier's tests: a case is a list of steps, each
// with the outcome a target produced for it.
#include <cerrno>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "syncprobe/classify.h"

namespace syncprobe::testing_support {

struct Scripted {
  StepKind kind = StepKind::fsync;
  std::string probe;
  int64_t ret = 0;
  int err = 0;
  bool hung = false;
  std::string tag;          // what a read returned ("" for none)
  std::optional<Check> check = std::nullopt;
  std::map<std::string, std::string> args = {};
  uint64_t injected = 0;    // operations the injector failed during the step
  const char* harness = nullptr;  // syncprobe's machinery failed here (origin)
};

inline Scripted ok(StepKind k, std::string probe = "") {
  Scripted s;
  s.kind = k;
  s.probe = std::move(probe);
  return s;
}
inline Scripted fails(StepKind k, std::string probe, int err = EIO) {
  Scripted s = ok(k, std::move(probe));
  s.ret = -1;
  s.err = err;
  s.injected = 1;
  return s;
}
inline Scripted hangs(StepKind k, std::string probe) {
  Scripted s = ok(k, std::move(probe));
  s.ret = -1;
  s.hung = true;
  return s;
}
inline Scripted harness_fails(StepKind k, std::string probe, const char* origin) {
  Scripted s = ok(k, std::move(probe));
  s.ret = -1;
  s.harness = origin;
  return s;
}
inline Scripted reads(StepKind k, std::string probe, std::string tag) {
  Scripted s = ok(k, std::move(probe));
  s.ret = 4096;
  s.tag = std::move(tag);
  return s;
}
inline Scripted with_args(StepKind k, std::map<std::string, std::string> args) {
  Scripted s = ok(k);
  s.args = std::move(args);
  return s;
}
// A data-write fault (or another errno or range), and the writes around it:
// write("old") before the fault, write("A") after it.
inline Scripted fault(const std::string& err = "EIO", const std::string& range = "data") {
  return with_args(StepKind::fault, {{"range", range}, {"io", "write"}, {"mode", "error"}, {"errno", err}});
}
inline Scripted write(const std::string& tag) { return with_args(StepKind::pwrite, {{"tag", tag}, {"fd", "a"}}); }
inline Scripted checked(Scripted s, Check c) {
  s.check = std::move(c);
  return s;
}

class RunBuilder {
 public:
  // Adds case `id` with `steps` observed on `target`.
  RunBuilder& add(const std::string& target, const std::string& id, const std::vector<Scripted>& steps,
                  bool measured = true, const std::string& policy = "",
                  CaseStatus status = CaseStatus::completed) {
    Case& c = run_.cases[id];
    c.id = id;
    c.steps.clear();
    CaseResult r;
    r.case_id = id;
    r.target = target;
    r.status = status;
    r.environment = {{"measured", measured}};
    if (!policy.empty()) r.environment["policy"] = policy;
    for (size_t i = 0; i < steps.size(); ++i) {
      Step s;
      s.kind = steps[i].kind;
      s.probe = steps[i].probe;
      s.check = steps[i].check;
      s.args = steps[i].args;
      c.steps.push_back(s);
      if (status == CaseStatus::skipped) continue;
      StepObservation o;
      o.index = i;
      o.line = int(i) + 10;
      o.op = std::string(step_spec(s.kind).name);
      o.result = steps[i].harness ? SysResult::harness_failure(steps[i].harness)
                 : steps[i].hung ? SysResult::hang()
                 : steps[i].ret < 0 ? SysResult::failure(steps[i].err)
                                    : SysResult::success(steps[i].ret);
      o.injected = steps[i].injected;
      if (!steps[i].tag.empty()) o.data = TagReading{steps[i].tag, {{steps[i].tag, 4096}}};
      r.steps.push_back(o);
      if (steps[i].hung) {
        r.status = CaseStatus::hung;
        r.reason = "step " + std::to_string(i) + " hung";
        break;
      }
    }
    if (status == CaseStatus::skipped) r.reason = "target lacks capability: memory-limit";
    run_.results[target][id] = r;
    return *this;
  }
  nlohmann::json classify() const { return syncprobe::classify(run_); }
  RunResults& run() { return run_; }

 private:
  RunResults run_;
};

// A reference policy's case: not measured, named.
inline RunBuilder& add_policy(RunBuilder& b, const std::string& policy, const std::string& id,
                              const std::vector<Scripted>& steps, CaseStatus status = CaseStatus::completed) {
  return b.add("reference:" + policy, id, steps, false, policy, status);
}

}  // namespace syncprobe::testing_support
