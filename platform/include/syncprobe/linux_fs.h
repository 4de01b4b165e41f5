#pragma once
// Small Linux facilities shared by the host target and the guest runner.
#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "syncprobe/fault.h"
#include "syncprobe/sysresult.h"

namespace syncprobe {

// echo 3 > /proc/sys/vm/drop_caches: clean pages and unused inodes (an
// evicted inode forgets its writeback errors, which cases look at).
SysResult drop_caches_all();

// Mount points at or below `dir` (from /proc/self/mountinfo), deepest first.
std::vector<std::string> mounts_under(const std::string& dir);

// Removes `dir` and everything in it, unless something is still mounted
// below it (removing then would delete files of that filesystem): false then.
// Symbolic links are removed, never followed.
bool remove_tree_if_unmounted(const std::string& dir);

// The start time of process `pid` (/proc/<pid>/stat field 22, clock ticks
// since boot), 0 when there is no such process (or only its zombie). With the pid it names one
// process for good: a reused pid has another start time.
uint64_t process_start_time(pid_t pid);
// True while `pid` runs and started at `start`.
bool process_is(pid_t pid, uint64_t start);

// uname -r
std::string kernel_release();

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

// The device byte ranges of the data of the file at `path` (absolute), from
// FIEMAP read to the last extent; delayed-allocation extents are left out.
// False and `why` when it cannot be mapped. (Defined in filesystem.cpp.)
bool fiemap_extents(const std::string& path, std::vector<ByteRange>& out, std::string& why);

}  // namespace syncprobe
