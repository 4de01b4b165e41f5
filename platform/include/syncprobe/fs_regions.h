#pragma once
// Where on the device a filesystem keeps what a fault may target, and the
// shutdown ioctl: the filesystem-specific calls of MountedStorage, the same
// on the host and inside a guest.
#include <string>
#include <vector>

#include "syncprobe/fault.h"
#include "syncprobe/storage.h"

namespace syncprobe::fs_regions {

// The device byte ranges of [0, device_bytes) that hold nothing yet: not
// metadata FS_IOC_GETFSMAP attributes to an owner, not `also_used` (the
// journal: ext4 reports it, like file data, as owner "unknown"), and not in
// the FIEMAP extents of any file or directory under `root`. That is free
// space plus space reserved but not written -- ext4 reserves blocks past a
// small file's end (mballoc preallocation; 5.10 reports those 2 MiB as
// "unknown" too) -- so it is what the next append gets. False and `why`
// when the filesystem cannot say.
bool free_ranges(const std::string& root, uint64_t device_bytes, const std::vector<ByteRange>& also_used,
                 std::vector<ByteRange>& out, std::string& why);

// The device byte ranges of the journal (ext4: the extents of inode 8, from
// debugfs) or the internal log (xfs: sb logstart/logblocks, from xfs_db) of
// the filesystem `fs` on `device`, read while it is mounted. False and `why`
// for other filesystems or when the tool fails.
bool journal_ranges(const std::string& fs, const std::string& device, std::vector<ByteRange>& out,
                    std::string& why);

// XFS_IOC_GOINGDOWN (which is EXT4_IOC_SHUTDOWN: same number) on the
// filesystem mounted at `root`. Returns the ioctl's result, errno by name.
// Blocks while the filesystem syncs (flush = sync): call it with a timeout.
SysResult shutdown_ioctl(const std::string& root, ShutdownFlush flush);

}  // namespace syncprobe::fs_regions
