#pragma once
// Outcomes of application scenarios (docs/apps.md): what a real program did
// with a fault, read from the evidence of its `app` steps alone.
#include <nlohmann/json.hpp>

#include "syncprobe/observation.h"

namespace syncprobe {

// For one case result: nullopt-like empty object when it has no app steps;
// otherwise {program, variant, fault_layer, detected: [how...], reads: [...],
// outcomes: [...], steps: [indexes]}. Outcome names:
//   acked-present  a read shows the last acknowledged value
//   failed-absent  a read shows the acknowledged value from before a reported failure
//   OV  old value: an older acknowledged value after a newer put was acknowledged
//   FF  false failure: a put reported failure, yet its value is read back
//   KNF key not found after a put was acknowledged
//   VC  value corrupted: neither a value put nor absent
//   KC  key corrupted: a scan lists a key that was never put
//   refuses-start  the program fails to read or its check fails after the heal
// A read refused while the fault is still in place is detection ("refusal to
// continue"), recorded in `reads` as refused-while-faulty, not an outcome.
// Detection also names "panic" (a server that logged PANIC and stopped).
nlohmann::json app_outcome(const CaseResult& r);

// The applications section of summary.json: one row per (target, case) with app steps.
nlohmann::json classify_apps(const std::map<std::string, std::map<std::string, CaseResult>>& results);

}  // namespace syncprobe
