// syncprobe-blockdev: a faulty block device for kernels without device-mapper.
//
// Serves one sparse image file as the single regular file `dev` of a FUSE
// mount. The runner attaches <mountpoint>/dev to a loop device (direct I/O)
// and puts a filesystem on it, so everything the filesystem writes, reads and
// flushes passes through here, where faults are injected as the runner asks
// over a control socket (one JSON object per line; see docs/blockdev.md):
// errors, silent drops and hangs per byte range and operation, a thin-pool
// capacity, and a volatile write cache that a power cut empties.
#define FUSE_USE_VERSION 31
#include <fuse3/fuse.h>

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <chrono>
#include <condition_variable>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "syncprobe/errno_names.h"
#include "syncprobe/fault.h"

namespace {

using syncprobe::ByteRange;
using syncprobe::FaultMode;
using syncprobe::FaultOp;
using syncprobe::FaultRule;

constexpr uint64_t kBlock = 4096;

struct Options {
  std::string image, mountpoint, control;
  uint64_t size = 0;
  int step_timeout_ms = 30000;
};

void log(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
void log(const char* fmt, ...) {
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
    fd_ = ::open(o.image.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
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
    if (int r = apply_faults(lk, FaultOp::write, off, len); r != 0) return r > 0 ? int(len) : r;
    // Thin pool: new blocks need room.
    const uint64_t first = off / kBlock, last = (off + len - 1) / kBlock;
    for (;;) {
      uint64_t fresh = 0;
      for (uint64_t b = first; b <= last && b < allocated_.size(); ++b) fresh += !allocated_[b];
      if (!capacity_ || allocated_count_ + fresh <= *capacity_) break;
      ++hits_;
      if (!queue_when_full_) {
        log("thin pool full: write [%lu, +%lu) fails with ENOSPC", off, len);
        return -ENOSPC;
      }
      log("thin pool full: write [%lu, +%lu) queued until grow", off, len);
      if (!wait_released(lk)) return -EIO;
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
      const size_t lost = cache_.size();
      cache_.clear();
      log("power cut: %zu unflushed blocks lost", lost);
      return {{"ok", true}, {"lost_blocks", lost}};
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

 private:
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
          log("%s [%lu, +%lu) hangs until heal", what, off, len);
          if (!wait_released(lk)) return -EIO;
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
};

Device* g_dev = nullptr;
constexpr char kName[] = "/dev";

int op_getattr(const char* path, struct stat* st, fuse_file_info*) {
  std::memset(st, 0, sizeof *st);
  if (std::strcmp(path, "/") == 0) {
    st->st_mode = S_IFDIR | 0755;
    st->st_nlink = 2;
    return 0;
  }
  if (std::strcmp(path, kName) != 0) return -ENOENT;
  st->st_mode = S_IFREG | 0600;
  st->st_nlink = 1;
  st->st_size = off_t(g_dev->size());
  st->st_blksize = kBlock;
  return 0;
}

int op_readdir(const char* path, void* buf, fuse_fill_dir_t fill, off_t, fuse_file_info*,
               fuse_readdir_flags) {
  if (std::strcmp(path, "/") != 0) return -ENOENT;
  fill(buf, ".", nullptr, 0, fuse_fill_dir_flags(0));
  fill(buf, "..", nullptr, 0, fuse_fill_dir_flags(0));
  fill(buf, kName + 1, nullptr, 0, fuse_fill_dir_flags(0));
  return 0;
}

int op_open(const char* path, fuse_file_info* fi) {
  if (std::strcmp(path, kName) != 0) return -ENOENT;
  fi->direct_io = 1;  // no page cache for the device file: the loop device sees every I/O here
  return 0;
}

int op_read(const char*, char* buf, size_t size, off_t off, fuse_file_info*) {
  return g_dev->read(buf, size, uint64_t(off));
}

int op_write(const char*, const char* buf, size_t size, off_t off, fuse_file_info*) {
  return g_dev->write(buf, size, uint64_t(off));
}

int op_fsync(const char*, int, fuse_file_info*) { return g_dev->flush(); }
int op_truncate(const char*, off_t, fuse_file_info*) { return 0; }

// A unix socket address; "@name" is Linux's abstract namespace (no file, no
// 108-byte path limit to run into under deep scratch directories).
socklen_t unix_address(const std::string& path, sockaddr_un& addr) {
  addr = {};
  addr.sun_family = AF_UNIX;
  const size_t n = std::min(path.size(), sizeof addr.sun_path - 1);
  std::memcpy(addr.sun_path, path.data(), n);
  if (!path.empty() && path[0] == '@') addr.sun_path[0] = '\0';
  return socklen_t(offsetof(sockaddr_un, sun_path) + n);
}

void control_loop(const std::string& path, fuse* f) {
  int srv = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un addr;
  const socklen_t len = unix_address(path, addr);
  if (path[0] != '@') ::unlink(path.c_str());
  if (path.size() >= sizeof addr.sun_path || bind(srv, reinterpret_cast<sockaddr*>(&addr), len) < 0 ||
      listen(srv, 4) < 0) {
    log("cannot listen on %s: %s", path.c_str(),
        path.size() >= sizeof addr.sun_path ? "path too long (use @name)" : std::strerror(errno));
    std::exit(1);
  }
  std::printf("ready\n");
  std::fflush(stdout);
  for (;;) {
    int c = accept4(srv, nullptr, nullptr, SOCK_CLOEXEC);
    if (c < 0) continue;
    std::thread([c, f] {
      std::string line;
      char ch;
      while (::read(c, &ch, 1) == 1) {
        if (ch != '\n') {
          line += ch;
          continue;
        }
        nlohmann::json reply;
        try {
          reply = g_dev->control(nlohmann::json::parse(line));
        } catch (const std::exception& e) {
          reply = {{"ok", false}, {"error", std::string("bad request: ") + e.what()}};
        }
        const std::string out = reply.dump() + "\n";
        if (::write(c, out.data(), out.size()) < 0) break;
        line.clear();
        if (g_dev->quit_requested()) fuse_exit(f);
      }
      ::close(c);
    }).detach();
  }
}

int usage() {
  std::fprintf(stderr,
               "usage: syncprobe-blockdev --image PATH --size BYTES --mountpoint DIR --control SOCKET\n"
               "                          [--step-timeout-ms N]\n"
               "Serves PATH as DIR/dev through FUSE with faults set over SOCKET (docs/blockdev.md).\n");
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&]() -> std::string { return i + 1 < argc ? argv[++i] : ""; };
    if (a == "--image") o.image = next();
    else if (a == "--size") o.size = std::strtoull(next().c_str(), nullptr, 10);
    else if (a == "--mountpoint") o.mountpoint = next();
    else if (a == "--control") o.control = next();
    else if (a == "--step-timeout-ms") o.step_timeout_ms = std::atoi(next().c_str());
    else if (a == "--help" || a == "-h") return usage(), 0;
    else return usage();
  }
  if (o.image.empty() || o.mountpoint.empty() || o.control.empty() || o.size == 0) return usage();
  try {
    static Device dev(o);
    g_dev = &dev;
  } catch (const std::exception& e) {
    log("%s", e.what());
    return 1;
  }
  fuse_operations ops{};
  ops.getattr = op_getattr;
  ops.readdir = op_readdir;
  ops.open = op_open;
  ops.read = op_read;
  ops.write = op_write;
  ops.fsync = op_fsync;
  ops.truncate = op_truncate;
  const char* fargv[] = {"syncprobe-blockdev", "-o", "fsname=syncprobe-blockdev"};
  fuse_args args = FUSE_ARGS_INIT(3, const_cast<char**>(fargv));
  fuse* f = fuse_new(&args, &ops, sizeof ops, nullptr);
  if (!f) {
    log("fuse_new failed");
    return 1;
  }
  if (fuse_mount(f, o.mountpoint.c_str()) != 0) {
    log("cannot mount FUSE on %s", o.mountpoint.c_str());
    return 1;
  }
  fuse_set_signal_handlers(fuse_get_session(f));
  std::thread(control_loop, o.control, f).detach();
  log("serving %s (%lu bytes) at %s/dev", o.image.c_str(), o.size, o.mountpoint.c_str());
  const int rc = fuse_loop_mt(f, 0);
  fuse_remove_signal_handlers(fuse_get_session(f));
  fuse_unmount(f);
  fuse_destroy(f);
  log("stopped");
  // libfuse reports the signal that ended the loop; stopping is not a failure.
  return rc == 0 || rc == SIGTERM || rc == SIGINT || rc == SIGHUP ? 0 : 1;
}
