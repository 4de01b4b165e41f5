#include <set>

#include "syncprobe/reference_storage.h"

namespace syncprobe {
std::vector<std::string> reference_policies() { return {}; }
std::string reference_policy_summary(const std::string&) { return ""; }
std::unique_ptr<Storage> make_reference_storage(const std::string& policy, std::string& error) {
  error = "reference policy '" + policy + "' is not built yet";
  return nullptr;
}
std::set<std::string> reference_capabilities() { return {}; }
}  // namespace syncprobe
