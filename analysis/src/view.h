#pragma once
// Private to analysis/: one target's observations, located (which case,
// which step) and read the way the classifier needs them. See
// docs/classifier.md for what each reading means.
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "syncprobe/results_io.h"

namespace syncprobe::analysis {

using nlohmann::json;

// One observed step, located: which case, which step.
struct Located {
  const Case* c = nullptr;
  const CaseResult* result = nullptr;
  const StepObservation* obs = nullptr;
  const Step* step = nullptr;
};

bool hung(const StepObservation& o);
// syncprobe's own machinery failed at this step: no answer of the platform's.
bool harness_error(const StepObservation& o);
std::string harness_origin(const StepObservation& o);
// The call returned an error (a hang or a harness error is not one).
bool failed(const StepObservation& o);
// The step ran and returned: not hung, no harness error.
bool returned(const StepObservation& o);
std::string tag_of(const StepObservation& o);  // "" when the step read nothing
// "0", "-1 EIO", "hung", "harness error: ...", plus " tag A" for reads.
std::string outcome(const StepObservation& o);
// An evidence entry: case, step, line, op, observed, probe and what it meant.
json locate_json(const Located& l, const std::string& meaning);

// Errnos that describe the filesystem's state (read-only, shut down, found
// corrupt) rather than a writeback error being reported.
bool is_fs_state_errno(int err);

// The tags a case wrote before its fault (the old data: the last pwrite or
// msync before it) and the data that may fail to persist (the first after it).
struct CaseTags {
  std::string old_tag, new_tag;
};
CaseTags case_tags(const Case& c);

// How one call, a probe, came out, for the axes that read calls.
struct CallReading {
  enum Kind { ok, reported, hung, fs_state, harness } kind = ok;
  Located at;
  std::string why;  // for hung, fs_state and harness: what happened
};

// The observations of one target, indexed by probe and by fault class.
class TargetView {
 public:
  TargetView(const RunResults& run, const std::map<std::string, CaseResult>& results);

  // Every observation of `probe` in cases of fault class `cls`, in case id order.
  std::vector<Located> probes(const std::string& probe, const std::string& cls) const;
  // The probe within one case (for checks that refer to a sibling step).
  std::optional<Located> probe_in(const std::string& case_id, const std::string& probe) const;
  const std::vector<Located>& all() const { return all_; }
  // Fault classes of the cases that ran here (completed or hung), in taxonomy order.
  std::vector<std::string> classes() const;
  std::string class_of(const std::string& case_id) const;
  // Cases of a class that ran here (completed or hung).
  std::vector<const CaseResult*> cases_of(const std::string& cls) const;

  // A call's reading. An error counts as a report unless the step hung, the
  // errno is a filesystem state (EROFS...), or an earlier step of the same
  // case already showed such a state (EIO after a shutdown is no report).
  CallReading read_call(const Located& l) const;
  // The first step of a case whose errno is a filesystem state; nullopt none.
  std::optional<Located> fs_state_step(const std::string& case_id) const;
  // Whether the injector failed any operation in the case (the fault fired).
  bool fault_fired(const std::string& case_id) const;

 private:
  std::vector<Located> all_;
  std::map<std::string, std::vector<Located>> by_probe_;
  std::map<std::string, std::string> class_;            // case id -> fault class
  std::map<std::string, const CaseResult*> ran_;         // completed or hung
};

}  // namespace syncprobe::analysis
