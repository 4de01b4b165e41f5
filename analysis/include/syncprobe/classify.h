#pragma once
// The classifier: reduces each target's observations to a profile on the
// taxonomy axes (docs/design.md), rule verdicts R1..R7, the closest
// reference policy and the differences from it. Every value is derived from
// observations (which case, which step), never from a target's name.
#include <iosfwd>

#include <nlohmann/json.hpp>

#include "syncprobe/results_io.h"

namespace syncprobe {

// The summary.json document for a run (schema syncprobe.summary/1).
nlohmann::json classify(const RunResults& run);

// The profile table and the rules matrix, for a terminal.
void print_summary(const nlohmann::json& summary, std::ostream& out);

}  // namespace syncprobe
