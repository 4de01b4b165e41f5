#pragma once
// The run loop: every case of a plan on every target, results handed to a
// sink as they come. Modelled targets run on `jobs` threads; targets on real
// kernels one at a time (they share the machine); targets with one batch key
// (a VM kernel's filesystems) in one batch, so one boot serves them all; and
// batches of isolated targets (one guest each) `isolated_jobs` at a time.
#include <functional>
#include <string>
#include <vector>

#include "syncprobe/target.h"

namespace syncprobe {

struct Plan {
  std::vector<const Case*> cases;
  std::vector<Target*> targets;
  int jobs = 1;  // threads for modelled targets
  // Cases a target already has a result for (a resumed run): not run again.
  std::function<bool(const Target&, const Case&)> done;
  // True once the run must stop (its results cannot be written): checked
  // before each case, like interrupted().
  std::function<bool()> stop;
  int isolated_jobs = 2;  // batches of isolated targets (VM guests) run at once
};

// Receives each result once. Calls are serialised by the executor.
using ResultSink = std::function<void(const CaseResult&)>;

// Runs the plan until done or interrupted() (then what ran is kept). Returns
// false when syncprobe's own machinery failed for some case (recorded in that
// result as `error` with the reason); verdicts never make it fail.
bool execute(const Plan& plan, const RunContext& ctx, const ResultSink& sink);

// A result for a case that could not run: `error` with the reason.
CaseResult error_result(const Target& t, const Case& c, const std::string& why);
// A result for a case on a target that is unavailable here: `skipped`.
CaseResult unavailable_result(const Target& t, const Case& c, const std::string& why);


}  // namespace syncprobe
