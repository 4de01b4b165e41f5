#pragma once
// Runs a case's steps against a Storage: binds descriptor names to the
// processes' descriptors, generates tagged data, classifies reads, times each
// step and attributes injected faults. Shared by every target that has a
// Storage (reference, host, and the guest runner inside VMs).
#include <chrono>

#include "syncprobe/case.h"
#include "syncprobe/observation.h"
#include "syncprobe/storage.h"

namespace syncprobe {

// Fills result.steps and result.status (completed, or hung when a step hung;
// the remaining steps are then not run). Does not fill the identity fields.
void interpret(const Case& c, Storage& storage, CaseResult& result);

}  // namespace syncprobe
