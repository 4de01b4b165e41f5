#pragma once
// Inside a guest: a case's filesystem on a loop device (direct I/O) over the
// FUSE faulty block device (injectors/blockdev), the same injector as the
// host targets', so that host and guest results are comparable and a data
// fault fails exactly the named writes (dm-flakey would fail every flush of
// the device too). The image lives in the guest's RAM (tmpfs) and is a copy
// of a filesystem made once per target.
//
// Guest-only and deliberately small: when the host's blockdev storage becomes
// a shared injector library, this file goes.
#include <memory>
#include <string>

#include "syncprobe/filesystems.h"
#include "syncprobe/storage.h"

namespace syncprobe::guest {

// Makes the filesystem image `path` for `f` (once per target). Throws with
// the command that failed.
void make_template(const FilesystemSpec& f, const std::string& path);

// A fresh storage for one case from `template_image`, under `dir` (created).
// Throws with what failed.
std::unique_ptr<Storage> make_fuse_storage(const FilesystemSpec& f, const std::string& template_image,
                                           const std::string& dir, int step_timeout_ms);

}  // namespace syncprobe::guest
