#pragma once
// A case's storage over the FUSE faulty block device: a copy of a filesystem
// image made once per target, served by syncprobe-blockdev, under a loop
// device, mounted in the case's directory. The host targets and the runner
// inside a VM guest build it the same way, so their results are comparable
// and a data fault fails exactly the named writes (docs/blockdev.md).
#include <chrono>
#include <memory>
#include <set>
#include <string>

#include "syncprobe/filesystems.h"
#include "syncprobe/ledger.h"
#include "syncprobe/mounted_storage.h"

namespace syncprobe {

// 512 MiB: xfs needs at least 300 MiB.
inline constexpr uint64_t kBlockdevImageBytes = 512ull << 20;

// A new sparse file of `bytes` (never through a symbolic link). Throws.
void create_sparse(const std::string& path, uint64_t bytes);
// Copies `src` to the new file `dst`, keeping holes. Throws.
void copy_sparse(const std::string& src, const std::string& dst);
// A new image `path` of `bytes` formatted with `fs`'s mkfs. Throws with the command that failed.
void make_fs_image(const FilesystemSpec& fs, const std::string& path, uint64_t bytes);

struct BlockdevStorageOptions {
  FilesystemSpec fs;
  std::string template_image;  // from make_fs_image; copied for the case
  std::string dir;             // the case's directory (exists): disk.img, fuse/, mnt/, blockdev.log
  nlohmann::json environment;  // facts of the target, completed with the storage's own
  std::chrono::milliseconds step_timeout{10000};
  AppRunner app;               // empty: no app steps
};

// Copies the template, starts the daemon, attaches the loop device and
// mounts; everything is recorded in `ledger` before it is acquired. Throws
// with what failed (what was acquired is released by then).
// `process_injector` (libfiu), when given, sits in front of the programs.
std::unique_ptr<MountedStorage> make_blockdev_storage(const BlockdevStorageOptions& options, Ledger& ledger,
                                                      std::unique_ptr<Injector> process_injector = nullptr);

// What a case can ask of such a storage on filesystem `fs` (data/capabilities.toml).
std::set<std::string> blockdev_storage_capabilities(const FilesystemSpec& fs);
// Why `fs` lacks `capability` there, or "" when it is not a filesystem matter.
std::string blockdev_lack_reason(const FilesystemSpec& fs, const std::string& capability);

}  // namespace syncprobe
