#pragma once
// The FUSE faulty block device as an injector: starts syncprobe-blockdev over
// an image, talks to it over a socketpair (no name another user could reach
// or squat), and reports its death. The device file it serves is put under a
// loop device by the caller (host targets, and guests that have FUSE).
#include <chrono>
#include <string>
#include <sys/types.h>

#include "syncprobe/injector.h"
#include "syncprobe/ledger.h"

namespace syncprobe {

struct BlockdevOptions {
  std::string dir;     // a directory of the case: fuse/ (the mount), blockdev.log
  std::string image;   // the image file served
  uint64_t size = 0;   // bytes
  std::chrono::milliseconds step_timeout{10000};
};

// The daemon program: SYNCPROBE_BLOCKDEV, else libexec/syncprobe/syncprobe-blockdev; "" if absent.
std::string blockdev_program();

class BlockdevInjector final : public Injector {
 public:
  // Starts the daemon (recorded in `ledger` before it runs) and waits until
  // it serves. Throws with the daemon's log when it does not start.
  BlockdevInjector(const BlockdevOptions& options, Ledger& ledger);
  ~BlockdevInjector() override;  // stops the daemon; its FUSE mount goes with it
  BlockdevInjector(const BlockdevInjector&) = delete;
  BlockdevInjector& operator=(const BlockdevInjector&) = delete;

  std::string device_file() const { return opts_.dir + "/fuse/dev"; }
  std::string log_path() const { return opts_.dir + "/blockdev.log"; }
  // The last `max` bytes of the daemon's log.
  std::string log_tail(size_t max = 8000) const;

  Level level() const override { return Level::device; }
  std::string layer() const override { return "fuse-blockdev"; }
  std::set<std::string> capabilities() const override;
  int delivered_errno(int requested) const override { return requested; }
  SysResult fault(const FaultRule& rule, nlohmann::json& detail) override;
  SysResult heal() override;
  SysResult thin_limit(uint64_t headroom, FaultMode when_full, nlohmann::json& detail) override;
  SysResult grow(uint64_t bytes, nlohmann::json& detail) override;
  SysResult power_cut() override;
  SysResult power_restore() override;
  void release_everything() override;
  uint64_t injected() override;
  std::optional<std::string> failure() override;
  nlohmann::json environment() const override;

  // Sends one request and returns the reply. Throws (a harness error) when
  // the daemon is gone or does not answer.
  nlohmann::json command(const nlohmann::json& request);

 private:
  SysResult reply_result(const nlohmann::json& reply, nlohmann::json& detail);
  void stop();

  BlockdevOptions opts_;
  Ledger& ledger_;
  Resource record_, fuse_record_;
  pid_t pid_ = -1;
  int sock_ = -1;
  std::string died_;       // how the daemon ended, once it has
  uint64_t last_hits_ = 0;
};

}  // namespace syncprobe
