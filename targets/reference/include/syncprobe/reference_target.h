#pragma once
// reference:<policy> — the reference page cache, in process. Modelled, not measured.
#include <memory>
#include <string>

#include "syncprobe/target.h"

namespace syncprobe {

std::unique_ptr<Target> make_reference_target(const std::string& policy, std::string& error);

// The reference:<policy> kind, for the TargetRegistry.
TargetKind reference_target_kind();

}  // namespace syncprobe
