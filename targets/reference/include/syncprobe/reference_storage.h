#pragma once
// The reference page cache as a Storage, for the reference:<policy> targets.
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "syncprobe/storage.h"

namespace syncprobe {

// The six policies: linux-4.12, linux-4.13, linux-4.17, openbsd, freebsd, proposed.
std::vector<std::string> reference_policies();
// One-line description of a policy (for `syncprobe list policies`); "" if unknown.
std::string reference_policy_summary(const std::string& policy);
// A fresh cache over a fresh simulated device. nullptr and `error` for an unknown policy.
std::unique_ptr<Storage> make_reference_storage(const std::string& policy, std::string& error);
// Capabilities the reference supports (fault kinds, thin-pool, memory-limit, ...).
std::set<std::string> reference_capabilities();

}  // namespace syncprobe
