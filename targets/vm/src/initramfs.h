#pragma once
// The guest's initramfs: busybox, the static guest runner, the FUSE block
// device daemon, mkfs and dmsetup with their libraries, and the kernel's own
// modules that the catalogue's requirements name (closed over modules.dep).
#include <string>

#include "kernel_catalogue.h"

namespace syncprobe::vm {

// The initramfs for `k`, built into the cache or found there when no input
// changed (the key covers the release, /init and every file copied in).
// "" and `error` (what is missing and how to get it) on failure.
std::string build_initramfs(const Installed& k, std::string& error);

}  // namespace syncprobe::vm
