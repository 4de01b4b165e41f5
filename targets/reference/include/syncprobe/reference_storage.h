#pragma once
// The reference page cache as a Storage, for the reference:<policy> targets.
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "syncprobe/storage.h"

namespace syncprobe {

// Every policy (ref::policy_names()): linux-4.12 ... proposed.
std::vector<std::string> reference_policies();
// One-line description of a policy (for `syncprobe list policies`); "" if unknown.
std::string reference_policy_summary(const std::string& policy);
// A fresh cache over a fresh simulated device. nullptr and `error` for an unknown policy.
std::unique_ptr<Storage> make_reference_storage(const std::string& policy, std::string& error);
// Capabilities the reference supports under `policy` (fault kinds, thin-pool,
// memory-limit, ...): everything the model does, less what the platform lacks.
std::set<std::string> reference_capabilities(const std::string& policy);
// Why `policy`'s platform lacks `capability`, or "".
std::string reference_lack_reason(const std::string& policy, const std::string& capability);

}  // namespace syncprobe
