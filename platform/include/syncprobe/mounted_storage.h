#pragma once
// A case's storage on a real kernel: one Filesystem over the device of a
// device-level injector (the FUSE block device under a loop device, or a
// device-mapper stack), the case's processes as forked workers, and
// optionally process-level injectors in front of them. Every target on a
// real kernel (host, and the guest runner inside a VM) uses this one class;
// only how the device is built differs.
#include <chrono>
#include <map>
#include <memory>
#include <vector>

#include "syncprobe/filesystem.h"
#include "syncprobe/injector.h"
#include "syncprobe/loop_device.h"
#include "syncprobe/posix_process.h"
#include "syncprobe/storage.h"

namespace syncprobe {

struct StorageParts {
  std::unique_ptr<Injector> device_injector;           // under the filesystem
  std::unique_ptr<LoopDevice> loop;                    // when the device is a loop device
  std::unique_ptr<Filesystem> fs;                      // made and mounted by the builder
  std::vector<std::unique_ptr<Injector>> process_injectors;  // in front of each process
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
  uint64_t injected_hits() override;
  std::optional<std::string> broken() override;

  Filesystem& filesystem() { return *parts_.fs; }
  Injector& device_injector() { return *parts_.device_injector; }

 protected:
  // Programs run on the filesystem besides the case's workers (app servers):
  // stopped first by teardown(), killed at once (`kill`) by a power cut.
  // Returns what had to be forced, "" when they went cleanly. A derived class
  // must also stop them in its own destructor (this one cannot reach it).
  virtual std::string stop_programs(bool /*kill*/) { return ""; }

 private:
  struct Worker;
  // Kills every worker; one stuck in the kernel is released by healing the
  // device, then by failing everything. False when one had to be forced.
  bool kill_workers();

  StorageParts parts_;
  nlohmann::json environment_;
  std::chrono::milliseconds timeout_;
  std::map<std::string, std::unique_ptr<Worker>> workers_;
  std::string note_;
  bool torn_down_ = false;
};

}  // namespace syncprobe
