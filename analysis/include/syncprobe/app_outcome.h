#pragma once
// Outcomes of application scenarios (docs/apps.md): what a real program did
// with a fault, read from the evidence of its `app` steps alone.
#include <nlohmann/json.hpp>

#include "syncprobe/observation.h"

namespace syncprobe {

// For one case result: nullopt-like empty object when it has no app steps;
// otherwise {program, variant, fault_layer, detected: [how...], reads: [...],
// outcomes: [...], steps: [indexes]}. The outcomes are those of
// taxonomy::app_outcomes() (acked-present, failed-absent, OV, FF, KNF, VC,
// KC, refuses-start), where their meanings are written once.
// A read refused while the fault is still in place is detection ("refusal to
// continue"), recorded in `reads` as refused-while-faulty, not an outcome.
// Detection also names "panic" (a server that logged PANIC and stopped).
nlohmann::json app_outcome(const CaseResult& r);

// The applications section of summary.json: one row per (target, case) with app steps.
nlohmann::json classify_apps(const std::map<std::string, std::map<std::string, CaseResult>>& results);

}  // namespace syncprobe
