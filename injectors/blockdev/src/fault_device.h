#pragma once
// The faulty device behind syncprobe-blockdev: the image, the fault schedule,
// the thin pool and the volatile write cache. daemon.cpp serves it over FUSE
// and takes the runner's requests; this is only the device.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdarg>
#include <cstddef>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <map>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "syncprobe/errno_names.h"
#include "syncprobe/fault.h"

namespace syncprobe::blockdev {



constexpr uint64_t kBlock = 4096;

struct Options {
  std::string image, mountpoint, control;
  int control_fd = -1;  // an inherited connected socket (the runner's socketpair)
  uint64_t size = 0;
  int step_timeout_ms = 30000;
};

inline void log(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
inline void log(const char* fmt, ...) {
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  std::tm tm{};
  gmtime_r(&ts.tv_sec, &tm);
  char stamp[32];
  std::strftime(stamp, sizeof stamp, "%H:%M:%S", &tm);
  std::fprintf(stderr, "%s.%03ld blockdev: ", stamp, ts.tv_nsec / 1000000);
  va_list ap;
  va_start(ap, fmt);
  std::vfprintf(stderr, fmt, ap);
  va_end(ap);
  std::fputc('\n', stderr);
}

// The device: the image, the fault schedule, the thin pool, the cache.
// Every member is guarded by mu.
class Device {
 public:
  explicit Device(const Options& o) : opts_(o) {
    fd_ = ::open(o.image.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
    if (fd_ < 0) throw std::runtime_error("cannot open " + o.image + ": " + std::strerror(errno));
    struct stat st {};
    fstat(fd_, &st);
    if (uint64_t(st.st_size) < o.size && ftruncate(fd_, off_t(o.size)) < 0)
      throw std::runtime_error("cannot size " + o.image);
    size_ = std::max<uint64_t>(o.size, uint64_t(st.st_size));
    allocated_.assign((size_ + kBlock - 1) / kBlock, false);
    // Blocks that hold data already (the filesystem mkfs wrote) count as
    // allocated for the thin pool.
    for (off_t pos = 0;;) {
      off_t data = lseek(fd_, pos, SEEK_DATA);
      if (data < 0) break;
      off_t hole = lseek(fd_, data, SEEK_HOLE);
      if (hole < 0) hole = off_t(size_);
      for (uint64_t b = uint64_t(data) / kBlock; b * kBlock < uint64_t(hole) && b < allocated_.size(); ++b)
        if (!allocated_[b]) {
          allocated_[b] = true;
          ++allocated_count_;
        }
      pos = hole;
    }
  }

  uint64_t size() const { return size_; }

  int write(const char* buf, uint64_t len, uint64_t off) {
    std::unique_lock lk(mu_);
    ++writes_;
    if (powered_off_) return -EIO;
    if (int r = apply_faults(lk, FaultOp::write, off, len); r != 0) return r > 0 ? int(len) : r;
    // Thin pool: new blocks need room.
    const uint64_t first = off / kBlock, last = (off + len - 1) / kBlock;
    for (;;) {
      uint64_t fresh = 0;
      for (uint64_t b = first; b <= last && b < allocated_.size(); ++b) fresh += !allocated_[b];
      if (!capacity_ || allocated_count_ + fresh <= *capacity_) break;
      ++hits_;
      if (!queue_when_full_ || released_) {
        log("thin pool full: write [%lu, +%lu) fails with ENOSPC", off, len);
        return -ENOSPC;
      }
      log("thin pool full: write [%lu, +%lu) queued until grow", off, len);
      if (!wait_released(lk) || powered_off_) return -EIO;
    }
    for (uint64_t b = first; b <= last && b < allocated_.size(); ++b)
      if (!allocated_[b]) {
        allocated_[b] = true;
        ++allocated_count_;
      }
    if (!volatile_) {
      ssize_t n = ::pwrite(fd_, buf, len, off_t(off));
      return n < 0 ? -errno : int(n);
    }
    // Volatile cache: whole blocks, read-modify-write from the image.
    for (uint64_t pos = off; pos < off + len;) {
      const uint64_t b = pos / kBlock, in = pos % kBlock;
      const uint64_t n = std::min(kBlock - in, off + len - pos);
      auto& blk = cache_[b];
      if (blk.empty()) {
        blk.assign(kBlock, 0);
        if (::pread(fd_, blk.data(), kBlock, off_t(b * kBlock)) < 0) return -errno;
      }
      std::memcpy(blk.data() + in, buf + (pos - off), n);
      pos += n;
    }
    return int(len);
  }

  int read(char* buf, uint64_t len, uint64_t off) {
    std::unique_lock lk(mu_);
    ++reads_;
    if (powered_off_) return -EIO;
    if (off >= size_) return 0;
    len = std::min(len, size_ - off);
    if (int r = apply_faults(lk, FaultOp::read, off, len); r != 0) {
      if (r < 0) return r;
      std::memset(buf, 0, len);  // "drop" on a read: nothing comes back
      return int(len);
    }
    ssize_t n = ::pread(fd_, buf, len, off_t(off));
    if (n < 0) return -errno;
    if (uint64_t(n) < len) std::memset(buf + n, 0, len - uint64_t(n));
    for (uint64_t b = off / kBlock; b * kBlock < off + len; ++b) {
      auto it = cache_.find(b);
      if (it == cache_.end()) continue;
      const uint64_t s = std::max(off, b * kBlock), e = std::min(off + len, (b + 1) * kBlock);
      std::memcpy(buf + (s - off), it->second.data() + (s - b * kBlock), e - s);
    }
    return int(len);
  }

  // The device's cache flush: what the loop device's REQ_PREFLUSH becomes.
  int flush() {
    std::unique_lock lk(mu_);
    ++flushes_;
    if (powered_off_) return -EIO;
    if (int r = apply_faults(lk, FaultOp::flush, 0, 0); r != 0) return r > 0 ? 0 : r;
    for (auto& [b, blk] : cache_)
      if (::pwrite(fd_, blk.data(), kBlock, off_t(b * kBlock)) < 0) return -errno;
    cache_.clear();
    if (::fdatasync(fd_) < 0) return -errno;
    return 0;
  }

  nlohmann::json control(const nlohmann::json& req) {
    std::unique_lock lk(mu_);
    const std::string cmd = req.value("cmd", "");
    if (cmd == "fault") {
      FaultRule r;
      for (const auto& rg : req.value("ranges", nlohmann::json::array()))
        r.ranges.push_back(ByteRange{rg.at(0).get<uint64_t>(), rg.at(1).get<uint64_t>()});
      r.invert = req.value("invert", false);
      auto op = syncprobe::fault_op_from_string(req.value("op", "write"));
      auto mode = syncprobe::fault_mode_from_string(req.value("mode", "error"));
      auto err = syncprobe::errno_from_name(req.value("errno", "EIO"));
      if (!op || !mode || !err) return {{"ok", false}, {"error", "bad op, mode or errno"}};
      r.op = *op;
      r.mode = *mode;
      r.err = *err;
      if (req.contains("count")) r.count = req["count"].get<uint32_t>();
      rules_.push_back(r);
      log("fault: %s %s %s ranges=%zu%s count=%s", req.value("op", "write").c_str(),
          req.value("mode", "error").c_str(), req.value("errno", "EIO").c_str(), r.ranges.size(),
          r.invert ? " (inverted)" : "", r.count ? std::to_string(*r.count).c_str() : "until heal");
      return {{"ok", true}, {"rules", rules_.size()}};
    }
    if (cmd == "heal") {
      rules_.clear();
      ++release_;
      cv_.notify_all();
      log("heal");
      return {{"ok", true}};
    }
    if (cmd == "thin") {
      capacity_ = allocated_count_ + req.value("headroom", uint64_t{0}) / kBlock;
      queue_when_full_ = req.value("when_full", "error") == "queue";
      log("thin pool: %lu blocks allocated, capacity %lu, when full: %s", allocated_count_,
          *capacity_, queue_when_full_ ? "queue" : "ENOSPC");
      return {{"ok", true}, {"allocated_blocks", allocated_count_}, {"capacity_blocks", *capacity_}};
    }
    if (cmd == "grow") {
      if (!capacity_) return {{"ok", false}, {"error", "not a thin pool: send thin first"}};
      *capacity_ += req.value("by", uint64_t{0}) / kBlock;
      ++release_;
      cv_.notify_all();
      log("thin pool grown to %lu blocks", *capacity_);
      return {{"ok", true}, {"capacity_blocks", *capacity_}};
    }
    if (cmd == "cache") {
      volatile_ = req.value("volatile", true);
      log("volatile write cache %s", volatile_ ? "on" : "off");
      return {{"ok", true}};
    }
    if (cmd == "power_cut") {
      // Everything held or to come fails until power_on; nothing hangs.
      const size_t lost = cache_.size();
      cache_.clear();
      powered_off_ = true;
      ++release_;
      cv_.notify_all();
      log("power cut: %zu unflushed blocks lost; every request fails until power_on", lost);
      return {{"ok", true}, {"lost_blocks", lost}};
    }
    if (cmd == "power_on") {
      powered_off_ = false;
      rules_.clear();
      log("power on");
      return {{"ok", true}};
    }
    if (cmd == "release") {
      release_locked("the runner");
      return {{"ok", true}};
    }
    if (cmd == "stats")
      return {{"ok", true},   {"hits", hits_},       {"reads", reads_},
              {"writes", writes_}, {"flushes", flushes_}, {"allocated_blocks", allocated_count_},
              {"cached_blocks", cache_.size()}};
    if (cmd == "quit") {
      quit_ = true;
      return {{"ok", true}};
    }
    return {{"ok", false}, {"error", "unknown command '" + cmd + "'"}};
  }

  bool quit_requested() {
    std::lock_guard lk(mu_);
    return quit_;
  }

  // From now on nothing is held: held requests and later hangs fail with
  // EIO, a full thin pool fails with ENOSPC. For a teardown, and when the
  // control connection is gone (nobody could heal any more).
  void release_everything(const char* who) {
    std::lock_guard lk(mu_);
    release_locked(who);
  }

 private:
  void release_locked(const char* who) {
    released_ = true;
    ++release_;
    cv_.notify_all();
    log("released by %s: nothing is held from now on", who);
  }

  // 0: no fault; 1: acknowledged without effect (drop); -errno: fail.
  int apply_faults(std::unique_lock<std::mutex>& lk, FaultOp op, uint64_t off, uint64_t len) {
    for (auto it = rules_.begin(); it != rules_.end(); ++it) {
      if (!it->matches(op, off, len)) continue;
      const FaultRule r = *it;
      if (it->count && --*it->count == 0) rules_.erase(it);
      ++hits_;
      const char* what = op == FaultOp::write ? "write" : op == FaultOp::read ? "read" : "flush";
      switch (r.mode) {
        case FaultMode::error:
          log("%s [%lu, +%lu) fails with %s", what, off, len, syncprobe::errno_name(r.err).c_str());
          return -r.err;
        case FaultMode::drop:
          log("%s [%lu, +%lu) dropped", what, off, len);
          return 1;
        case FaultMode::hang:
          if (released_) {
            log("%s [%lu, +%lu) would hang; fails with EIO (released)", what, off, len);
            return -EIO;
          }
          log("%s [%lu, +%lu) hangs until heal", what, off, len);
          if (!wait_released(lk) || released_ || powered_off_) {
            log("%s [%lu, +%lu) fails with EIO (no longer held)", what, off, len);
            return -EIO;
          }
          log("%s [%lu, +%lu) released", what, off, len);
          return 0;
      }
    }
    return 0;
  }

  // Waits for heal or grow; false after the timeout (the request then fails).
  bool wait_released(std::unique_lock<std::mutex>& lk) {
    const uint64_t gen = release_;
    const bool released = cv_.wait_for(lk, std::chrono::milliseconds(opts_.step_timeout_ms),
                                       [&] { return release_ != gen || quit_; });
    if (!released) log("a hung request timed out after %d ms: failing it with EIO", opts_.step_timeout_ms);
    return released;
  }

  Options opts_;
  int fd_ = -1;
  uint64_t size_ = 0;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<FaultRule> rules_;
  uint64_t release_ = 0;
  std::vector<bool> allocated_;
  uint64_t allocated_count_ = 0;
  std::optional<uint64_t> capacity_;
  bool queue_when_full_ = false;
  bool volatile_ = false;
  std::map<uint64_t, std::vector<char>> cache_;
  uint64_t hits_ = 0, reads_ = 0, writes_ = 0, flushes_ = 0;
  bool quit_ = false;
  bool powered_off_ = false;
  bool released_ = false;
};

}  // namespace syncprobe::blockdev
