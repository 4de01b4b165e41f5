#pragma once
// The reference file system mounted through FUSE (libfuse3), so that real
// programs run on a policy's semantics: every read, write and fsync of a
// process reaches ref::FileSystem (direct I/O: the kernel's page cache stays
// out of the way), and every FUSE open is one open file description of the
// model, with its own error cursor.
//
// A control socket in a private directory (mode 0700) takes faults and the
// machine's events from another process; the mount's root carries its path
// in the extended attribute kControlXattr. Protocol: one JSON object per
// line each way (docs/refmount.md).
#include <cstdint>
#include <iosfwd>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

namespace syncprobe::refmount {

inline constexpr char kControlXattr[] = "user.syncprobe.control";

struct MountOptions {
  std::string policy;                     // a reference policy name
  std::string mountpoint;                 // an existing empty directory, not a mount point
  std::optional<uint64_t> size;           // device capacity (ENOSPC past it); none: unbounded
  std::optional<uint64_t> memory_limit;   // the cache's memory (clean pages evicted, dirty written back)
  std::optional<uint64_t> error_limit;    // memory held by pages in error (R7)
  std::optional<uint64_t> preallocate;    // memory the model touches at mount (no page faults later)
  uint64_t max_file_bytes = 1ull << 32;   // EFBIG past it
  bool background = false;                // return once mounted; serve from a child process
  // Where the control socket goes: an existing directory of this user, mode
  // 0700, kept at exit. Empty: a fresh one under $XDG_RUNTIME_DIR or /tmp.
  std::string control_dir;
  bool passthrough = false;               // a bare FUSE passthrough of `passthrough_dir` instead (benchmarks)
  std::string passthrough_dir;
};

// Checks the mount point, mounts, and serves until unmounted or sent SIGINT,
// SIGTERM or SIGHUP; then unmounts and removes the control directory.
// Returns 0 on a clean exit, 2 for bad input (`error` says why and how to
// fix it), 1 when mounting or serving failed. With `background`, returns in
// the parent once the mount is up.
int run_mount(const MountOptions& options, std::ostream& log, std::string& error);

// Why `mountpoint` cannot be mounted on, or "": it must be an existing
// directory, empty, and not itself a mount point.
std::string check_mountpoint(const std::string& mountpoint);

// Sends one request to the mount at `mountpoint` and returns its reply, or
// nullopt with `error` (no such mount, not ours, no answer). The socket is
// found through the root's attribute, which a filesystem that is down (a
// forced unmount) may refuse: control_socket() then reaches it by its path.
std::optional<nlohmann::json> control(const std::string& mountpoint, const nlohmann::json& request,
                                      std::string& error);
std::optional<nlohmann::json> control_socket(const std::string& socket, const nlohmann::json& request,
                                             std::string& error);

}  // namespace syncprobe::refmount
