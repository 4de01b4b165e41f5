#pragma once
// The one place that knows every target backend this build has.
#include "syncprobe/target.h"

namespace syncprobe {

// reference:, host: and vm:, registered once on first use.
const TargetRegistry& registry();

}  // namespace syncprobe
