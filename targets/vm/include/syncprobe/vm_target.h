#pragma once
// vm:<kernel>:<fs> — a kernel of the catalogue (data/kernels.toml: Debian's
// series) or one added with `vm add`, booted under QEMU; steps run in the
// guest with faults from the FUSE block device (dm-thin for thin pools).
#include <iosfwd>
#include <memory>
#include <string>
#include <vector>

#include "syncprobe/target.h"

namespace syncprobe {

// spec is what follows "vm:", e.g. "6.1:xfs". nullptr and `error` set when unknown.
std::unique_ptr<Target> make_vm_target(const std::string& spec, std::string& error);
std::vector<std::string> vm_target_names();

// Kernel names vm: targets accept: the catalogue's series and added kernels.
std::vector<std::string> vm_kernel_names();
// `vm list`: every series of the catalogue, fetched or not, and what Debian
// offers for it today (or why nothing); then added kernels. `refresh`
// downloads the package lists even when they are recent; `offline` (vm
// status) looks nothing up: the cache, what is fetched, the accelerator.
int vm_list(bool refresh, bool offline, std::ostream& out, std::ostream& err);
// Fetches the newest package of each series ("all" or none: every series;
// series Debian does not publish are reported, not failed, then).
int vm_fetch(const std::vector<std::string>& kernels, std::ostream& out, std::ostream& err);
// `vm add`: a self-built kernel (bzImage + modules tree) or .deb files.
struct VmAddOptions {
  std::string name;
  std::string kernel, modules, config;
  std::vector<std::string> debs;
  bool force = false;  // add even when options the guest needs are missing
};
int vm_add(const VmAddOptions& o, std::ostream& out, std::ostream& err);
// Builds (or finds cached) the initramfs of fetched kernels ("all" or none: every one).
int vm_build(const std::vector<std::string>& kernels, std::ostream& out, std::ostream& err);

// The vm:<kernel>:<fs> kind, for the TargetRegistry.
TargetKind vm_target_kind();

}  // namespace syncprobe
