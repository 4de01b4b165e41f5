// The reference page cache behind engine's Storage seam.
#include "syncprobe/reference_storage.h"

#include <mutex>

#include "syncprobe/ref/page_cache.h"

#ifdef SYNCPROBE_HAVE_FIU
#include <fiu.h>
#endif

namespace syncprobe {

std::vector<std::string> reference_policies() { return ref::policy_names(); }

std::string reference_policy_summary(const std::string& policy) {
  auto p = ref::make_policy(policy);
  return p ? std::string(p->summary()) : std::string();
}

std::unique_ptr<Storage> make_reference_storage(const std::string& policy, std::string& error) {
#ifdef SYNCPROBE_HAVE_FIU
  static std::once_flag fiu_once;
  std::call_once(fiu_once, [] { fiu_init(0); });
#endif
  auto p = ref::make_policy(policy);
  if (!p) {
    error = "unknown reference policy '" + policy + "'";
    return nullptr;
  }
  return std::make_unique<ref::PageCache>(std::move(p));
}

std::set<std::string> reference_capabilities(const std::string& policy) {
  std::set<std::string> caps = {
      "fault",          "fault:write",     "fault:read",   "fault:flush",    "fault:drop",
      "fault:hang",     "fault:data",      "fault:metadata", "fault:device", "fault:free",
      "fault:journal",  "thin-pool",       "memory-limit", "cache-limit",    "drop-caches",
      "writeback",      "remount",         "power-cut",    "read-back",      "second-process",
      "sync_file_range", "syncfs",         "mmap",         "mmap-read",      "direct-io",
      "metadata",       "raw-device",      "shutdown"};
  if (auto p = ref::make_policy(policy))
    for (const auto& lack : p->lacks()) caps.erase(lack.capability);
  return caps;
}

std::string reference_lack_reason(const std::string& policy, const std::string& capability) {
  if (auto p = ref::make_policy(policy))
    for (const auto& lack : p->lacks())
      if (lack.capability == capability) return lack.reason;
  return "";
}

}  // namespace syncprobe
