#pragma once
// The one mounted-filesystem implementation behind every real target (host
// and guest, whichever injector is under it; mkfs argv from its spec): mount, remount,
// read_back, background writeback and FIEMAP. Every operation that can block
// on a hung device is bounded by the step timeout and then reported as
// hung; what it left stuck in the kernel is released by the storage's
// teardown (release the device, then unmount again).
#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "syncprobe/fault.h"
#include "syncprobe/filesystems.h"
#include "syncprobe/ledger.h"
#include "syncprobe/storage.h"
#include "syncprobe/sysresult.h"

namespace syncprobe {

class Filesystem {
 public:
  // Records the mount point in `ledger` before mounting; does not mount yet.
  Filesystem(FilesystemSpec spec, std::string device, std::string mountpoint,
             std::chrono::milliseconds step_timeout, Ledger& ledger);
  ~Filesystem();  // unmounts; lazily when it must
  Filesystem(const Filesystem&) = delete;
  Filesystem& operator=(const Filesystem&) = delete;

  // mount(8); a harness failure ("mount(8)") with mount_error() set when it
  // fails, hung past `timeout`.
  SysResult mount(std::chrono::milliseconds timeout);
  SysResult mount() { return mount(timeout_); }
  // umount(8); a harness failure ("umount(8)") while still mounted after it,
  // hung past the step timeout (the umount
  // is then still in the kernel: call again once the device is released).
  SysResult unmount();
  // Last resort of a teardown: a lazy unmount; true when nothing is mounted there.
  bool detach();
  SysResult remount();
  // Remounts, then reads [offset, offset+length) of `path` from the device
  // in a worker of its own. REQUIRES: no process of the case holds a descriptor.
  ReadBack read_back(const std::string& path, uint64_t offset, uint64_t length);
  // Background writeback: syncfs through a descriptor of a worker of its own,
  // so that no case descriptor sees the error (sync_filesystem keeps errseq).
  SysResult writeback();
  // The device byte ranges of `path`'s data, from FIEMAP read to the last
  // extent. False and `why` when it cannot be mapped.
  bool data_ranges(const std::string& path, std::vector<ByteRange>& out, std::string& why) const;

  bool mounted() const;
  const std::string& mountpoint() const { return mountpoint_; }
  const std::string& device() const { return device_; }
  const FilesystemSpec& spec() const { return spec_; }
  const std::string& mount_error() const { return mount_error_; }

 private:
  FilesystemSpec spec_;
  std::string device_, mountpoint_, mount_error_;
  std::chrono::milliseconds timeout_;
  Ledger& ledger_;
  Resource record_;
};

}  // namespace syncprobe
