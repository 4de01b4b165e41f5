#include <ostream>

#include "syncprobe/commands.h"
#include "syncprobe/vm_target.h"

namespace syncprobe {
std::unique_ptr<Target> make_vm_target(const std::string& spec, std::string& error) {
  error = "vm target '" + spec + "' is not built yet";
  return nullptr;
}
std::vector<std::string> vm_target_names() { return {}; }
void vm_cleanup_stale(const std::string&, std::ostream&) {}
int vm_command(const std::vector<std::string>&, std::ostream&, std::ostream& err) {
  err << "syncprobe vm: not built yet\n";
  return 1;
}
}  // namespace syncprobe
