#pragma once
// The one place that knows every target backend this build has.
#include <iosfwd>
#include <optional>

#include "syncprobe/case_parser.h"
#include "syncprobe/target.h"

namespace syncprobe {

// reference:, host: and vm:, registered once on first use.
const TargetRegistry& registry();

// data/capabilities.toml, or nullopt after saying on `err` why it cannot be read.
std::optional<CapabilityTable> capability_table(std::ostream& err);

}  // namespace syncprobe
