#pragma once
// Small Linux facilities shared by the host target and the guest runner.
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "syncprobe/fault.h"
#include "syncprobe/sysresult.h"

namespace syncprobe {

// The device byte ranges holding `path`'s data (FIEMAP, without syncing:
// asking the filesystem to flush would change what the case measures).
// Extents not yet allocated (delayed allocation) are left out. False and
// `why` set when the file cannot be mapped.
bool fiemap_extents(const std::string& path, std::vector<ByteRange>& out, std::string& why);

// echo 3 > /proc/sys/vm/drop_caches: clean pages and unused inodes (an
// evicted inode forgets its writeback errors, which cases look at).
SysResult drop_caches_all();

// Mount points at or below `dir` (from /proc/self/mountinfo), deepest first.
std::vector<std::string> mounts_under(const std::string& dir);

// Removes `dir` and everything in it, unless something is still mounted
// below it (removing then would delete files of that filesystem): false then.
bool remove_tree_if_unmounted(const std::string& dir);

// uname -r
std::string kernel_release();

// UTC now as 2026-11-24T14:01:02Z.
std::string now_iso8601();

// Kernel messages (/dev/kmsg) logged from construction on.
class KernelLog {
 public:
  KernelLog();
  ~KernelLog();
  KernelLog(const KernelLog&) = delete;
  KernelLog& operator=(const KernelLog&) = delete;
  // New messages since the last drain (at most `max`).
  std::vector<std::string> drain(size_t max = 200);

 private:
  int fd_ = -1;
};

}  // namespace syncprobe
