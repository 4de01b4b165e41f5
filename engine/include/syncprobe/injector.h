#pragma once
// How a fault reaches storage. An injector sits at one level: under the
// filesystem (a device: the FUSE block device, device-mapper) or in front of
// a process (libfiu). It names its layer, declares what it can do, and
// counts what it injected, so that every observation can say which layer
// produced its error. Injectors stack: a storage may hold one per level.
#include <cerrno>
#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "syncprobe/fault.h"
#include "syncprobe/sysresult.h"

namespace syncprobe {

class Process;

class Injector {
 public:
  enum class Level { device, process };
  virtual ~Injector() = default;

  virtual Level level() const = 0;
  // The layer its faults come from, as recorded: "fuse-blockdev", "dm-flakey", "libfiu".
  virtual std::string layer() const = 0;
  // Case capabilities it provides ("fault:write", "fault:flush", "thin-pool"...).
  // An injector that cannot fail a flush alone lacks "fault:flush".
  virtual std::set<std::string> capabilities() const = 0;
  // The errno the device really returns when `requested` is asked for (dm-flakey
  // always returns EIO). What the kernel passes up from there is measured, not assumed.
  virtual int delivered_errno(int requested) const = 0;

  // Installs `rule` (device byte ranges already resolved by the storage).
  // `detail` receives what it did (dm table, daemon reply).
  virtual SysResult fault(const FaultRule& rule, nlohmann::json& detail) = 0;
  // Removes every fault and lets every held request go.
  virtual SysResult heal() = 0;
  virtual SysResult thin_limit(uint64_t, FaultMode, nlohmann::json&) { return SysResult::failure(ENOTSUP); }
  virtual SysResult grow(uint64_t, nlohmann::json&) { return SysResult::failure(ENOTSUP); }
  // The power goes: the device's volatile cache is lost, every request held
  // or to come fails, until power_restore(). Never hangs.
  virtual SysResult power_cut() = 0;
  virtual SysResult power_restore() = 0;
  // Teardown after a hang: from now on nothing is held (held and new
  // requests fail), so that whatever is stuck on the device returns.
  virtual void release_everything() = 0;

  // Operations failed, dropped or held so far (cumulative).
  virtual uint64_t injected() = 0;
  // Why the injector can no longer be trusted (its daemon died), or nullopt.
  // A case whose injector stopped is an error, not a measurement.
  virtual std::optional<std::string> failure() = 0;
  // Called after each process call (dm emulates counted faults with it).
  virtual void after_call(const SysResult&) {}
  // Facts for the results: device, daemon log...
  virtual nlohmann::json environment() const { return nlohmann::json::object(); }
  // Process-level injectors wrap a process; device-level ones return it.
  virtual Process& wrap(Process& p) { return p; }
  // Process-level injectors: the command line a program starts with (libfiu:
  // under fiu-run), and programs that keep running (servers), which later
  // faults and heal() reach too. Device-level ones change nothing.
  virtual std::vector<std::string> command(const std::vector<std::string>& argv) const { return argv; }
  virtual void attach(int /*pid*/) {}
  // Process-level: fails the processes' call `point` ("posix/io/sync/fdatasync")
  // with `err` in `percent` % of calls, from now until heal(); `once`: only
  // the first such call of each process fails (a one-shot fault).
  virtual SysResult fail_call(const std::string& /*point*/, int /*err*/, int /*percent*/, bool /*once*/,
                              nlohmann::json& /*detail*/) {
    return SysResult::failure(ENOTSUP);
  }
  virtual void detach(int /*pid*/) {}
};

}  // namespace syncprobe
