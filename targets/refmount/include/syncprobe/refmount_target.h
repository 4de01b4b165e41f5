#pragma once
// refmount:<policy> — the reference mounted through FUSE, every case run with
// real system calls through the kernel's VFS. Its results should match
// reference:<policy> step for step; what FUSE cannot carry (sync_file_range,
// syncfs, shared mappings of direct-I/O files, a hang) is a missing
// capability, and the case is skipped with the reason.
#include <memory>
#include <string>

#include "syncprobe/target.h"

namespace syncprobe {

std::unique_ptr<Target> make_refmount_target(const std::string& policy, std::string& error);
TargetKind refmount_target_kind();

}  // namespace syncprobe
