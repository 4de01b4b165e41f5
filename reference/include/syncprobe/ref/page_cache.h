#pragma once
// The reference page cache: a userspace model of a kernel page cache over a
// simulated block device, whose reaction to failed writeback is a Policy.
//
// It implements the runner's Storage/Process seam (storage.h), so the same
// cases run on it as on real kernels. Model, in the kernel's words:
//   - inodes with a mapping of 4 KiB pages carrying PG_uptodate, PG_dirty and
//     PG_error, a wb_err (errseq_t), legacy AS_EIO/AS_ENOSPC flags, and (for
//     openbsd) a sticky vnode error;
//   - open file descriptions with an errseq cursor, the set of pages they
//     read or wrote (R2's scope), and a "gone bad" mark (R3);
//   - a namespace (names, sizes) committed to metadata blocks like a journal:
//     fsync commits it when the inode changed, fdatasync only when the size
//     did, a directory fsync whenever anything changed;
//   - writeback through SimDevice, eviction by drop_caches, a memory limit on
//     pages held in error (R7), remount and power cut;
//   - the filesystem's state: it carries on, turns read-only, shuts down or
//     is being force-unmounted, as the policy reacts to failures (or a
//     shutdown step asks); a mount restores it.
//
// Device layout: metadata in blocks [0, 1024); inode N's data in
// kDataRegionBlock + N * kBlocksPerFile onwards; the raw device ("@device")
// maps byte for byte.
//
// REQUIRES external synchronization: one case at a time on one thread.
#include <cstdint>
#include <memory>

#include "syncprobe/ref/policy.h"
#include "syncprobe/ref/sim_device.h"
#include "syncprobe/storage.h"

namespace syncprobe::ref {

inline constexpr uint64_t kPageSize = kBlockSize;
inline constexpr uint64_t kMetadataBlocks = 1024;
inline constexpr uint64_t kDataRegionBlock = 1ull << 20;
inline constexpr uint64_t kBlocksPerFile = 1ull << 14;          // 64 MiB per file
inline constexpr uint64_t kRawDeviceBytes = 1ull << 30;         // what "@device" exposes
inline constexpr char kRawDevicePath[] = "@device";

struct CacheStats {
  uint64_t cached_pages = 0;
  uint64_t dirty_pages = 0;
  uint64_t error_pages = 0;            // PG_error set (dirty or not)
  uint64_t error_bytes_held = 0;       // bytes of PG_dirty|PG_error pages (what R7 bounds)
  uint64_t discarded_error_pages = 0;  // dropped by the R7 limit, cumulative
  uint64_t writeback_errors = 0;       // failed page writes, cumulative
};

class PageCache : public Storage {
 public:
  // Formats a fresh simulated device and mounts it.
  explicit PageCache(std::unique_ptr<Policy> policy);
  ~PageCache() override;
  PageCache(const PageCache&) = delete;
  PageCache& operator=(const PageCache&) = delete;

  const Policy& policy() const;
  SimDevice& device();
  CacheStats stats() const;

  // Storage
  std::string layer() const override;
  nlohmann::json environment() const override;
  Process& process(const std::string& name) override;
  SysResult fault(const FaultRequest& request, nlohmann::json& detail) override;
  SysResult heal() override;
  SysResult thin_limit(uint64_t headroom, FaultMode when_full, nlohmann::json& detail) override;
  SysResult grow(uint64_t bytes, nlohmann::json& detail) override;
  SysResult memory_limit(uint64_t bytes) override;
  SysResult cache_limit(uint64_t bytes) override;
  SysResult drop_caches() override;
  SysResult writeback() override;
  SysResult remount() override;
  SysResult power_cut() override;
  ReadBack read_back(const std::string& path, uint64_t offset, uint64_t length) override;
  SysResult shutdown(ShutdownFlush flush, nlohmann::json& detail) override;
  uint64_t injected_hits() override;

  struct State;  // the model; defined in page_cache.cpp

 private:
  std::unique_ptr<State> s_;
};

}  // namespace syncprobe::ref
