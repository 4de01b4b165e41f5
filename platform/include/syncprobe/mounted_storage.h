#pragma once
// A case's storage on a real kernel: one Filesystem over the device of a
// device-level injector (the FUSE block device under a loop device, or a
// device-mapper stack), the case's processes as forked workers, and
// optionally process-level injectors in front of them. Every target on a
// real kernel (host, and the guest runner inside a VM) uses this one class;
// only how the device is built differs.
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <vector>

#include "syncprobe/filesystem.h"
#include "syncprobe/injector.h"
#include "syncprobe/loop_device.h"
#include "syncprobe/posix_process.h"
#include "syncprobe/storage.h"

namespace syncprobe {

// The programs of a case's app steps, with their files under the storage's
// root. Stateful: a server keeps running between steps, and stop() ends it
// before the filesystem goes (teardown) or at once (a power cut).
class AppHost {
 public:
  virtual ~AppHost() = default;
  virtual SysResult run(const AppCall& call, nlohmann::json& evidence) = 0;
  // Stops whatever still runs (SIGKILL at once when `kill`); "" when it went cleanly.
  virtual std::string stop(bool kill) = 0;
};

// Makes a storage's AppHost: files under `root`, programs started through
// `process_injector` (libfiu), or directly when it is nullptr.
using AppRunner = std::function<std::unique_ptr<AppHost>(
    const std::string& root, std::chrono::milliseconds timeout, Injector* process_injector)>;

struct StorageParts {
  std::unique_ptr<Injector> device_injector;           // under the filesystem
  std::unique_ptr<LoopDevice> loop;                    // when the device is a loop device
  std::unique_ptr<Filesystem> fs;                      // made and mounted by the builder
  std::vector<std::unique_ptr<Injector>> process_injectors;  // in front of each process
  uint64_t device_bytes = 0;                           // the device's size (free-space faults)
  AppRunner app;                                       // empty: this storage runs no programs
};

class MountedStorage : public Storage {
 public:
  MountedStorage(StorageParts parts, nlohmann::json environment, std::chrono::milliseconds step_timeout);
  ~MountedStorage() override;  // teardown(), ignoring what it could not release
  MountedStorage(const MountedStorage&) = delete;
  MountedStorage& operator=(const MountedStorage&) = delete;

  // Kills the workers, unmounts, lets go of the loop device and stops the
  // injectors, releasing the device when something is stuck on it. True
  // when everything went away cleanly; false names what had to be forced in
  // teardown_note().
  bool teardown();
  const std::string& teardown_note() const { return note_; }

  std::string layer() const override;
  nlohmann::json environment() const override;
  Process& process(const std::string& name) override;
  // data and metadata faults come from FIEMAP, free space from
  // FS_IOC_GETFSMAP, the journal from debugfs/xfs_db (fs_regions.h).
  SysResult fault(const FaultRequest& request, nlohmann::json& detail) override;
  SysResult heal() override;
  SysResult thin_limit(uint64_t headroom, FaultMode when_full, nlohmann::json& detail) override;
  SysResult grow(uint64_t bytes, nlohmann::json& detail) override;
  SysResult memory_limit(uint64_t) override { return SysResult::failure(ENOTSUP); }
  SysResult cache_limit(uint64_t) override { return SysResult::failure(ENOTSUP); }
  SysResult drop_caches() override;
  SysResult writeback() override;
  SysResult remount() override;
  SysResult power_cut() override;
  ReadBack read_back(const std::string& path, uint64_t offset, uint64_t length) override;
  // The filesystem's shutdown ioctl (data/filesystems.toml), bounded by the step timeout.
  SysResult shutdown(ShutdownFlush flush, nlohmann::json& detail) override;
  SysResult app(const AppCall& call, nlohmann::json& evidence) override;
  uint64_t injected_hits() override;
  std::map<std::string, uint64_t> injected_by_layer() override;
  std::optional<std::string> broken() override;

  Filesystem& filesystem() { return *parts_.fs; }
  Injector& device_injector() { return *parts_.device_injector; }

 private:
  struct Worker;
  // Resolves a free-space or journal request to device ranges.
  bool region_ranges(const FaultRequest& request, std::vector<ByteRange>& out, nlohmann::json& detail);
  // Kills every worker; one stuck in the kernel is released by healing the
  // device, then by failing everything. False when one had to be forced.
  bool kill_workers();

  StorageParts parts_;
  std::unique_ptr<AppHost> apps_;  // from parts_.app; nullptr: no programs
  nlohmann::json environment_;
  std::chrono::milliseconds timeout_;
  std::map<std::string, std::unique_ptr<Worker>> workers_;
  std::string note_;
  bool torn_down_ = false;
};

}  // namespace syncprobe
