#include "syncprobe/registry.h"

#include <ostream>

#include "syncprobe/host_target.h"
#include "syncprobe/paths.h"
#include "syncprobe/reference_target.h"
#include "syncprobe/vm_target.h"

namespace syncprobe {

const TargetRegistry& registry() {
  static const TargetRegistry r = [] {
    TargetRegistry reg;
    reg.add(reference_target_kind());
    reg.add(host_target_kind());
    reg.add(vm_target_kind());
    return reg;
  }();
  return r;
}

std::optional<CapabilityTable> capability_table(std::ostream& err) {
  const std::string path = data_dir() + "/capabilities.toml";
  try {
    return load_capabilities(path);
  } catch (const std::exception& e) {
    err << "syncprobe: cannot use the capability list: " << e.what()
        << " (set SYNCPROBE_DATA to the data/ directory of the installation)\n";
    return std::nullopt;
  }
}

}  // namespace syncprobe
