#include <ostream>

#include "syncprobe/host_target.h"

namespace syncprobe {
std::unique_ptr<Target> make_host_target(const std::string& spec, std::string& error) {
  error = "host target '" + spec + "' is not built yet";
  return nullptr;
}
std::vector<std::string> host_target_names() { return {}; }
void host_cleanup_stale(const std::string&, std::ostream&) {}
}  // namespace syncprobe
