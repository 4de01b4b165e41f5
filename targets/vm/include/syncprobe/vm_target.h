#pragma once
// vm:<kernel>:<fs> — Debian's packaged kernels booted under QEMU; steps run
// in the guest with device-mapper faults.
#include <iosfwd>
#include <memory>
#include <string>
#include <vector>

#include "syncprobe/target.h"

namespace syncprobe {

// spec is what follows "vm:", e.g. "6.1:xfs". nullptr and `error` set when unknown.
std::unique_ptr<Target> make_vm_target(const std::string& spec, std::string& error);
std::vector<std::string> vm_target_names();
void vm_cleanup_stale(const std::string& scratch_root, std::ostream& log);

// The kernel series this build knows ("6.1", "6.12").
std::vector<std::string> vm_kernel_series();
// Downloads and unpacks the newest package of `series` into the cache.
int vm_fetch(const std::string& series, std::ostream& out, std::ostream& err);
// Builds (or finds cached) the initramfs for a fetched `series`.
int vm_build(const std::string& series, std::ostream& out, std::ostream& err);
// What is fetched, where the cache is, which accelerator QEMU will use.
void vm_status(const std::vector<std::string>& series, std::ostream& out);

// The vm:<kernel>:<fs> kind, for the TargetRegistry.
TargetKind vm_target_kind();

}  // namespace syncprobe
