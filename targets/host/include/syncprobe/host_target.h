#pragma once
// host:<fs>[:<mount options>] — real syscalls on a scratch filesystem of this
// machine's kernel, on a loop device over the FUSE faulty block device.
#include <memory>
#include <string>
#include <vector>

#include "syncprobe/target.h"

namespace syncprobe {

// spec is what follows "host:", e.g. "ext4", "ext4:data=journal", "xfs".
// nullptr and `error` set for an unknown filesystem.
std::unique_ptr<Target> make_host_target(const std::string& spec, std::string& error);
// The host targets this build knows ("host:ext4", "host:ext4:data=journal", ...).
std::vector<std::string> host_target_names();
// Removes what a killed earlier run left under `scratch_root` (mounts, loop
// devices, FUSE daemons), touching only resources that carry a run id.
void host_cleanup_stale(const std::string& scratch_root, std::ostream& log);

// The host:<fs>[:<options>] kind, for the TargetRegistry.
TargetKind host_target_kind();

}  // namespace syncprobe
