#pragma once
// A case's storage as a filesystem on a device-mapper stack over a device the
// run owns, with faults made by switching dm tables as fstests does:
//   <prefix>top   the device the filesystem lives on; its table is switched
//                 between `linear` (healthy) and, over the faulted ranges,
//                 `flakey ... error_writes` / `drop_writes` (dm-flakey) or
//                 `error` (dm-error, for read faults); suspended for a hang;
//   <prefix>pool  a thin pool (cases that need one), with <prefix>meta,
//                 <prefix>data and <prefix>thin: exhausted by a filler volume,
//                 grown by extending its data device and reloading (dm-thin).
// Used inside VM guests (over /dev/vda) and by host targets on kernels that
// have device-mapper (over a loop device of the run's own image). Only
// devices named with the layout's prefix are created or removed.
#include <memory>
#include <string>

#include "syncprobe/storage.h"

namespace syncprobe {

struct DmFs {
  std::string fs;        // ext4, xfs, btrfs
  std::string options;   // mount options, "" for defaults
};

struct DmLayout {
  std::string disk = "/dev/vda";  // at least 4 GiB: plain fs in [0,512M), thin meta at 1G, data from 2G
  std::string mount = "/mnt/sp";  // where the filesystem is mounted
  std::string prefix = "sp-";     // dm device names
  std::string kind = "vm";        // environment.kind of the results
};

// Creates the stack, makes the filesystem and mounts it. Throws with a
// message naming the command that failed.
std::unique_ptr<Storage> make_dm_storage(const DmFs& fs, const DmLayout& layout, bool thin,
                                         int step_timeout_ms);

}  // namespace syncprobe
