#pragma once
// What a VM target can do, known to both the host (to skip cases before a
// boot) and the guest runner (to skip them inside). Not here: flush-only
// faults (dm cannot fail a flush alone), memory limits (a kernel has none),
// raw-device cases.
#include <set>
#include <string>

namespace syncprobe {

inline std::set<std::string> dm_capabilities() {
  return {"fault",       "fault:write",    "fault:read",      "fault:drop",   "fault:hang",
          "fault:data",  "fault:metadata", "fault:device",    "thin-pool",    "drop-caches",
          "writeback",   "remount",        "power-cut",       "read-back",    "second-process",
          "sync_file_range", "mmap",       "direct-io",       "metadata",     "syncfs"};
}

}  // namespace syncprobe
