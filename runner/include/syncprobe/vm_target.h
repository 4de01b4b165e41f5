#pragma once
// vm:<kernel>:<fs> — Debian's packaged kernels booted under QEMU; steps run
// in the guest with device-mapper faults.
#include <memory>
#include <string>
#include <vector>

#include "syncprobe/target.h"

namespace syncprobe {

// spec is what follows "vm:", e.g. "6.1:xfs". nullptr and `error` set when unknown.
std::unique_ptr<Target> make_vm_target(const std::string& spec, std::string& error);
std::vector<std::string> vm_target_names();
void vm_cleanup_stale(const std::string& scratch_root, std::ostream& log);

}  // namespace syncprobe
