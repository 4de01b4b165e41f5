#pragma once
// Inside a VM guest: a case's storage is a filesystem on a device-mapper
// stack over the guest's scratch disk (/dev/vda), and faults are dm table
// switches as fstests makes them:
//   sp-top   the device the filesystem lives on; its table is switched
//            between `linear` (healthy) and, over the faulted ranges,
//            `flakey ... error_writes` / `drop_writes` (dm-flakey) or
//            `error` (dm-error, for read faults); suspended for a hang;
//   sp-pool  a thin pool (cases that need one): exhausted by a filler volume,
//            grown by extending its data device and reloading (dm-thin).
// Everything runs in the guest, which belongs to the run: no host device is
// touched.
#include <memory>
#include <string>

#include "syncprobe/storage.h"

namespace syncprobe::guest {

struct GuestFs {
  std::string fs;        // ext4, xfs, btrfs
  std::string options;   // mount options, "" for defaults
};

// Creates the stack, makes the filesystem and mounts it. Throws with a
// message naming the command that failed.
std::unique_ptr<Storage> make_dm_storage(const GuestFs& fs, bool thin, int step_timeout_ms);

}  // namespace syncprobe::guest
