#include "syncprobe/registry.h"

#include "syncprobe/host_target.h"
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

}  // namespace syncprobe
