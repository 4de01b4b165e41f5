#pragma once
// libfiu at the application boundary (docs/apps.md): programs, and the
// case processes' syscall workers (exec'd for it), run under `fiu-run -x`
// (libfiu's POSIX wrappers preloaded), and a fault enables a failure point
// (posix/io/sync/fdatasync...) in every process started from then on and,
// through `fiu-ctrl`, in every attached process still running. No device
// sees a failure: the kernel's page cache never learns of it.
#include <sys/types.h>

#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "syncprobe/injector.h"

namespace syncprobe {

class LibfiuInjector final : public Injector {
 public:
  // `control_dir`: a private directory for fiu-run's control fifos.
  LibfiuInjector(std::string control_dir, std::chrono::milliseconds timeout);

  Level level() const override { return Level::process; }
  std::string layer() const override { return "libfiu"; }
  std::set<std::string> capabilities() const override { return {"fault:libfiu"}; }
  int delivered_errno(int requested) const override { return requested; }

  // Enables `point` failing with `err` in `percent` % of calls (`once`:
  // libfiu's onetime, the first failure of each process only). `detail`
  // receives the point, errno and the running processes it reached.
  SysResult fail_call(const std::string& point, int err, int percent, bool once, nlohmann::json& detail) override;
  // Through the Injector seam: the points of `rule.op` (flush: fsync and
  // fdatasync; write: pwrite and write). Byte ranges mean nothing here.
  SysResult fault(const FaultRule& rule, nlohmann::json& detail) override;
  SysResult heal() override;  // disables every point, in running programs too
  SysResult power_cut() override { return SysResult::failure(ENOTSUP); }
  SysResult power_restore() override { return SysResult::failure(ENOTSUP); }
  void release_everything() override {}
  // libfiu itself counts nothing. A case process's call of a point's kind
  // (fsync, fdatasync, pwrite) that returns the point's errno while the
  // point is enabled (and, one-shot, not yet spent in that process) is
  // counted, so that its step names the layer libfiu; programs' calls are
  // not seen (their output shows them).
  uint64_t injected() override { return injected_; }
  Process& wrap(Process& p) override;
  std::optional<std::string> failure() override { return std::nullopt; }
  nlohmann::json environment() const override;

  // `argv` under fiu-run -x with the points enabled now.
  std::vector<std::string> command(const std::vector<std::string>& argv) const override;
  // A program that keeps running: fault() and heal() reach it and its
  // descendants with fiu-ctrl. detach() when it has stopped.
  void attach(int root) override { roots_.push_back(root); }
  void detach(int root) override;

 private:
  struct Point {
    int err = 0;
    int percent = 100;
    bool once = false;
    uint64_t generation = 0;  // which fail_call enabled it (a one-shot is spent per generation)
  };
  class Counted;
  static std::string enable_command(const std::string& point, const Point& p);
  // fiu-ctrl `cmd` to every running attached program; the pids reached.
  std::vector<pid_t> control(const std::string& cmd, nlohmann::json& detail);

  std::string base_;  // fifo base name: <control_dir>/fiu
  std::chrono::milliseconds timeout_;
  std::map<std::string, Point> points_;
  std::vector<int> roots_;
  uint64_t generation_ = 0;
  uint64_t injected_ = 0;
  std::vector<std::unique_ptr<Process>> wrappers_;
};

}  // namespace syncprobe
