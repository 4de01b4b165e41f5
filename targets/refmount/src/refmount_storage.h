#pragma once
// One case's storage for refmount:<policy>: a `syncprobe mount` daemon of
// the same binary on a directory of the run's scratch, the case's processes
// as forked workers doing real system calls on it, and everything else (the
// fault, the machine's events, read-back) sent over the mount's control socket.
#include <sys/types.h>

#include <chrono>
#include <map>
#include <memory>
#include <string>

#include "syncprobe/app_driver.h"
#include "syncprobe/ledger.h"
#include "syncprobe/posix_process.h"
#include "syncprobe/storage.h"

namespace syncprobe {

class RefmountStorage final : public Storage {
 public:
  // Mounts `policy` on `dir`/mnt (dir: a fresh directory of the run's
  // scratch, whose root is `scratch`). Throws when the mount does not come up.
  RefmountStorage(const std::string& policy, const std::string& dir, const std::string& scratch,
                  std::chrono::milliseconds step_timeout, Ledger& ledger);
  ~RefmountStorage() override;
  RefmountStorage(const RefmountStorage&) = delete;
  RefmountStorage& operator=(const RefmountStorage&) = delete;

  // Kills the workers, stops the daemon (SIGTERM, then a lazy unmount), and
  // releases what the ledger holds. False when something had to be forced.
  bool teardown();

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
  // The program runs with its file on the mount, as on a host target.
  SysResult app(const AppCall& call, nlohmann::json& evidence) override;
  uint64_t injected_hits() override;
  std::optional<std::string> broken() override;

 private:
  class Proc;
  // The mount's answer to `request`; throws when the mount does not answer
  // (its machinery broke: the case is an error, not a measurement).
  nlohmann::json ask(const nlohmann::json& request) const;
  static SysResult result_of(const nlohmann::json& reply);
  void kill_workers();

  std::string policy_, dir_, mountpoint_, log_, control_dir_, socket_;
  std::chrono::milliseconds timeout_;
  Ledger& ledger_;
  Resource daemon_record_, mount_record_;
  pid_t daemon_ = -1;
  std::map<std::string, std::unique_ptr<Proc>> procs_;
  std::unique_ptr<AppSession> apps_;  // the case's programs, from the first app step on
  uint64_t open_descriptions_ = 0;  // opened and not closed by the case's processes
  bool torn_down_ = false;
};

}  // namespace syncprobe
