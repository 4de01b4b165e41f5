#include "syncprobe/dm_storage.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <map>
#include <set>
#include <sstream>
#include <stdexcept>

#include "syncprobe/command.h"
#include "syncprobe/errno_names.h"
#include "syncprobe/linux_fs.h"
#include "syncprobe/posix_process.h"

namespace syncprobe {
namespace {

using namespace std::chrono_literals;

constexpr uint64_t kSector = 512;
constexpr uint64_t kPlainBytes = 512ull << 20;     // plain stack: vda [0, 512M)
constexpr uint64_t kThinMetaOffset = 1ull << 30;   // thin metadata: vda [1G, 1G+16M)
constexpr uint64_t kThinMetaBytes = 16ull << 20;
constexpr uint64_t kThinDataOffset = 2ull << 30;   // thin data: vda [2G, 4G)
constexpr uint64_t kThinDataInitial = 768ull << 20;
constexpr uint64_t kThinDataMax = 2ull << 30;
constexpr uint64_t kThinVirtual = 1ull << 30;      // the thin volume's size
constexpr uint64_t kThinBlockSectors = 128;        // 64 KiB pool blocks

void must(const std::vector<std::string>& argv, std::chrono::milliseconds t = 120s) {
  CommandResult r = run_program(argv, t);
  if (!r.ok()) throw std::runtime_error(r.describe(argv));
}

std::vector<std::string> mkfs_command(const std::string& fs, const std::string& dev) {
  if (fs == "ext4")
    return {"mkfs.ext4", "-q", "-F", "-b", "4096", "-E",
            "lazy_itable_init=0,lazy_journal_init=0,nodiscard", dev};
  if (fs == "xfs") return {"mkfs.xfs", "-q", "-f", "-K", dev};
  if (fs == "btrfs") return {"mkfs.btrfs", "-q", "-f", "-K", dev};
  return {"mkfs." + fs, dev};
}

// One segment of sp-top's table, in sectors of the base device.
struct Segment {
  uint64_t start = 0, length = 0;
  std::string target;  // "linear", "error", "flakey-error", "flakey-drop"
};

// A fault with a count: dm has no per-I/O counter, so the fault is healed
// after the first call that reports an error (recorded in the step detail).
class CountingProcess;

class DmStorage final : public Storage {
 public:
  DmStorage(const DmFs& gfs, const DmLayout& layout, bool thin, int step_timeout_ms)
      : gfs_(gfs), L_(layout), thin_(thin), timeout_(step_timeout_ms) {
    remove_devices();  // what an earlier case of this stack left, if it could not clean up
    if (thin_) {
      base_ = dev("thin");
      base_sectors_ = kThinVirtual / kSector;
      data_bytes_ = kThinDataInitial;
      create(name("meta"), linear(L_.disk, kThinMetaOffset / kSector, kThinMetaBytes / kSector));
      must({"dd", "if=/dev/zero", "of=" + dev("meta"), "bs=4096", "count=1"});
      create(name("data"), linear(L_.disk, kThinDataOffset / kSector, data_bytes_ / kSector));
      create(name("pool"), pool_table(true));
      must({"dmsetup", "message", dev("pool"), "0", "create_thin 0"});
      create(name("thin"), "0 " + std::to_string(base_sectors_) + " thin " + dev("pool") + " 0");
    } else {
      base_ = L_.disk;
      base_sectors_ = kPlainBytes / kSector;
    }
    create(name("top"), linear(base_, 0, base_sectors_));
    must(mkfs_command(gfs_.fs, dev("top")), 600s);
    must({"mkdir", "-p", L_.mount});
    SysResult m = mount();
    if (!m.ok()) throw std::runtime_error("mount failed: " + mount_error_);
  }

  ~DmStorage() override {
    kill_workers();
    CommandResult r = run_program({"dmsetup", "resume", name("top")}, 30s);
    r = run_program({"umount", L_.mount}, 60s);
    if (!r.ok()) r = run_program({"umount", "-l", L_.mount}, 30s);
    remove_devices();
  }

  // This stack's dm devices, top first; only names with the layout's prefix.
  void remove_devices() {
    for (const char* n : {"filler", "top", "thin", "pool", "data", "meta"}) {
      CommandResult r = run_program({"dmsetup", "remove", "--force", name(n)}, 60s);
      (void)r;  // absent: nothing to remove
    }
  }

  std::string layer() const override { return layer_; }

  nlohmann::json environment() const override {
    return {{"kind", L_.kind},
            {"kernel", kernel_release()},
            {"fs", gfs_.fs},
            {"mount_options", gfs_.options},
            {"injector", thin_ ? "dm-thin, dm-flakey, dm-error" : "dm-flakey, dm-error"},
            {"measured", true},
            {"device", std::string("virtio-blk, device-mapper stack ") +
                           (thin_ ? "over a thin volume on " : "over ") + L_.disk}};
  }

  Process& process(const std::string& name) override;

  SysResult fault(const FaultRequest& req, nlohmann::json& detail) override {
    std::vector<ByteRange> ranges;
    bool invert = false;
    if (req.where != FaultRequest::Where::device) {
      std::string why;
      std::vector<ByteRange> ext;
      const bool found = fiemap_extents(L_.mount + "/" + req.file, ext, why);
      detail["extents_from"] = "FIEMAP";
      if (!found && req.where == FaultRequest::Where::data) {
        detail["error"] = why;
        return SysResult::failure(ENOENT);
      }
      if (gfs_.fs == "btrfs" && req.where == FaultRequest::Where::data) {
        detail["widened"] = "btrfs: copy-on-write data has no fixed device range; whole device";
      } else {
        ranges = ext;
        invert = req.where == FaultRequest::Where::metadata;
      }
    }
    std::string target;
    switch (req.rule.mode) {
      case FaultMode::error:
        target = req.rule.op == FaultOp::write ? "flakey-error" : "error";
        break;
      case FaultMode::drop:
        target = "flakey-drop";
        break;
      case FaultMode::hang:
        break;
    }
    if (req.rule.op == FaultOp::flush) return SysResult::failure(ENOTSUP);
    const int err = req.rule.err ? req.rule.err : EIO;
    detail["io"] = std::string(to_string(req.rule.op));
    detail["mode"] = std::string(to_string(req.rule.mode));
    if (req.rule.mode == FaultMode::error) {
      detail["errno_requested"] = errno_name(err);
      detail["errno"] = "EIO";  // what dm-flakey and dm-error return
    }
    auto jr = nlohmann::json::array();
    for (const auto& r : ranges) jr.push_back({r.offset, r.length});
    detail["ranges"] = jr;
    detail["invert"] = invert;
    if (req.rule.mode == FaultMode::hang) {
      // Suspend without flushing: every I/O queues until heal resumes it.
      layer_ = "dm-suspend";
      detail["dm"] = "dmsetup suspend --nolockfs --noflush " + name("top");
      suspended_ = true;
      must({"dmsetup", "suspend", "--nolockfs", "--noflush", name("top")});
      return SysResult::success();
    }
    layer_ = target == "error" ? "dm-error" : "dm-flakey";
    std::vector<Segment> segs = segments(ranges, invert, target);
    const std::string table = render(segs);
    detail["dm_table"] = table;
    if (req.rule.count) {
      detail["count"] = *req.rule.count;
      detail["count_emulation"] =
          "dm has no per-I/O count: healed after the first call that reported an error";
      pending_count_ = true;
    }
    load(name("top"), table);
    faulted_ = true;
    return SysResult::success();
  }

  SysResult heal() override {
    pending_count_ = false;
    if (suspended_ || faulted_) {
      load(name("top"), linear(base_, 0, base_sectors_));
      suspended_ = faulted_ = false;
    }
    return SysResult::success();
  }

  SysResult thin_limit(uint64_t headroom, FaultMode when_full, nlohmann::json& detail) override {
    if (!thin_) return SysResult::failure(ENOTSUP);
    layer_ = "dm-thin";
    if (when_full == FaultMode::hang) load(name("pool"), pool_table(false));
    const auto [used, total] = pool_usage();
    const uint64_t free_blocks = total - used;
    const uint64_t keep = headroom / (kThinBlockSectors * kSector);
    detail["pool_used_blocks"] = used;
    detail["pool_total_blocks"] = total;
    if (free_blocks <= keep) return SysResult::success();
    const uint64_t fill = free_blocks - keep;
    must({"dmsetup", "message", dev("pool"), "0", "create_thin 1"});
    create(name("filler"), "0 " + std::to_string(fill * kThinBlockSectors) +
                            " thin " + dev("pool") + " 1");
    // Allocate every block of the filler: the pool is then full. One 4 KiB
    // write per pool block allocates it (the pool skips block zeroing): a
    // sixteenth of the data, which matters in a guest under emulation.
    int fd = ::open(dev("filler").c_str(), O_WRONLY | O_DIRECT | O_CLOEXEC);
    if (fd < 0) return SysResult::failure(errno);
    void* buf = nullptr;
    const size_t chunk = 4096;
    if (posix_memalign(&buf, 4096, chunk) != 0) return SysResult::failure(ENOMEM);
    std::memset(buf, 0xaa, chunk);
    const uint64_t block = kThinBlockSectors * kSector;
    const uint64_t bytes = fill * block;
    for (uint64_t off = 0; off < bytes; off += block)
      if (::pwrite(fd, buf, chunk, off_t(off)) < 0) break;
    ::fsync(fd);
    ::close(fd);
    std::free(buf);
    const auto [used2, total2] = pool_usage();
    detail["pool_used_blocks_after"] = used2;
    detail["filler_blocks"] = fill;
    detail["when_full"] = when_full == FaultMode::hang ? "queue" : "error_if_no_space";
    return SysResult::success();
  }

  SysResult grow(uint64_t bytes, nlohmann::json& detail) override {
    if (!thin_) return SysResult::failure(ENOTSUP);
    layer_ = "dm-thin";
    data_bytes_ = std::min(kThinDataMax, data_bytes_ + bytes);
    load(name("data"), linear(L_.disk, kThinDataOffset / kSector, data_bytes_ / kSector));
    load(name("pool"), pool_table(true));
    detail["pool_data_bytes"] = data_bytes_;
    return SysResult::success();
  }

  SysResult memory_limit(uint64_t) override { return SysResult::failure(ENOTSUP); }
  SysResult cache_limit(uint64_t) override { return SysResult::failure(ENOTSUP); }
  SysResult drop_caches() override { return drop_caches_all(); }

  SysResult writeback() override {
    int fd = ::open(L_.mount.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return SysResult::failure(errno);
    int r = ::syncfs(fd);  // sync_filesystem keeps each file's errseq unseen
    (void)r;               // background writeback tells nobody
    ::close(fd);
    return SysResult::success();
  }

  SysResult remount() override {
    CommandResult r = run_program({"umount", L_.mount}, std::chrono::milliseconds(timeout_) + 60s);
    if (!r.ok()) return SysResult::failure(EBUSY);
    return mount();
  }

  SysResult power_cut() override {
    // fstests' way: from now on every write is dropped, then the filesystem
    // is unmounted and mounted again on the healthy table (recovery).
    load(name("top"), render({{0, base_sectors_, "flakey-drop"}}));
    kill_workers();
    CommandResult r = run_program({"umount", L_.mount}, 120s);
    if (!r.ok()) r = run_program({"umount", "-l", L_.mount}, 60s);
    load(name("top"), linear(base_, 0, base_sectors_));
    faulted_ = suspended_ = false;
    return mount();
  }

  ReadBack read_back(const std::string& path, uint64_t offset, uint64_t length) override {
    ReadBack rb;
    kill_workers();
    rb.result = remount();
    if (!rb.result.ok()) return rb;
    int fd = ::open((L_.mount + "/" + path).c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      rb.result = SysResult::failure(errno);
      return rb;
    }
    rb.data.resize(length);
    ssize_t n = ::pread(fd, rb.data.data(), length, off_t(offset));
    rb.result = SysResult::from_syscall(n, errno);
    ::close(fd);
    rb.data.resize(n > 0 ? size_t(n) : 0);
    return rb;
  }

  // dm counts nothing: the kernel's own messages about failed I/O on a dm
  // device stand in (rate-limited by the kernel, so a lower bound).
  uint64_t injected_hits() override {
    for (const auto& line : klog_.drain(100000))
      if (line.find("dm-") != std::string::npos &&
          ((line.find("I/O error") != std::string::npos &&
            line.find("ext4_end_bio") == std::string::npos) ||  // ext4 repeats the block layer's line
           line.find("space allocation error") != std::string::npos))
        ++hits_;
    return hits_;
  }

  // After a call that reported an error, a fault with a count expires.
  void after_call(const SysResult& r) {
    if (pending_count_ && !r.ok() && !r.hung) {
      SysResult h = heal();
      (void)h;
    }
  }

 private:
  static std::string linear(const std::string& dev, uint64_t start, uint64_t sectors) {
    return "0 " + std::to_string(sectors) + " linear " + dev + " " + std::to_string(start);
  }

  std::string pool_table(bool error_if_no_space) const {
    return "0 " + std::to_string(data_bytes_ / kSector) +
           " thin-pool " + dev("meta") + " " + dev("data") + " " +
           std::to_string(kThinBlockSectors) + " 0 " +
           (error_if_no_space ? "2 skip_block_zeroing error_if_no_space" : "1 skip_block_zeroing");
  }

  std::string name(const std::string& n) const { return L_.prefix + n; }
  std::string dev(const std::string& n) const { return "/dev/mapper/" + name(n); }

  static void create(const std::string& name, const std::string& table) {
    must({"dmsetup", "create", name, "--table", table});
  }

  // Switches a live device's table as fstests does.
  static void load(const std::string& name, const std::string& table) {
    CommandResult r = run_program({"dmsetup", "suspend", "--nolockfs", name}, 120s);
    (void)r;  // a device already suspended (hang) stays so until resume
    must({"dmsetup", "load", name, "--table", table});
    must({"dmsetup", "resume", name});
  }

  std::pair<uint64_t, uint64_t> pool_usage() {
    CommandResult r = run_program({"dmsetup", "status", name("pool")}, 30s);
    // "0 <len> thin-pool <trans> <meta used>/<meta total> <data used>/<data total> ..."
    std::istringstream in(r.output);
    std::string s0, len, kind, trans, meta, data;
    in >> s0 >> len >> kind >> trans >> meta >> data;
    uint64_t used = 0, total = 0;
    std::sscanf(data.c_str(), "%lu/%lu", &used, &total);
    return {used, total};
  }

  // sp-top's table: `target` over the ranges (or outside them), linear elsewhere.
  std::vector<Segment> segments(const std::vector<ByteRange>& ranges, bool invert,
                                const std::string& target) const {
    std::vector<std::pair<uint64_t, uint64_t>> bad;  // sector ranges
    for (const auto& r : ranges) {
      const uint64_t s = r.offset / kSector;
      const uint64_t e = std::min(base_sectors_, (r.offset + r.length + kSector - 1) / kSector);
      if (s < e) bad.emplace_back(s, e);
    }
    std::sort(bad.begin(), bad.end());
    std::vector<Segment> segs;
    if (ranges.empty()) {  // the whole device (also: metadata when the file has no data)
      segs.push_back({0, base_sectors_, target});
      return segs;
    }
    uint64_t pos = 0;
    for (auto [s, e] : bad) {
      if (s < pos) s = pos;
      if (s >= e) continue;
      if (s > pos) segs.push_back({pos, s - pos, invert ? target : "linear"});
      segs.push_back({s, e - s, invert ? "linear" : target});
      pos = e;
    }
    if (pos < base_sectors_) segs.push_back({pos, base_sectors_ - pos, invert ? target : "linear"});
    return segs;
  }

  std::string render(const std::vector<Segment>& segs) const {
    std::string t;
    for (const auto& s : segs) {
      t += std::to_string(s.start) + " " + std::to_string(s.length) + " ";
      if (s.target == "linear") t += "linear " + base_ + " " + std::to_string(s.start);
      else if (s.target == "error") t += "error";
      else if (s.target == "flakey-error")
        t += "flakey " + base_ + " " + std::to_string(s.start) + " 0 180 1 error_writes";
      else t += "flakey " + base_ + " " + std::to_string(s.start) + " 0 180 1 drop_writes";
      t += "\n";
    }
    return t;
  }

  SysResult mount() {
    std::vector<std::string> argv = {"mount", "-t", gfs_.fs};
    if (!gfs_.options.empty()) {
      argv.push_back("-o");
      argv.push_back(gfs_.options);
    }
    argv.push_back(dev("top"));
    argv.push_back(L_.mount);
    CommandResult r = run_program(argv, std::chrono::milliseconds(timeout_) + 120s);
    if (r.timed_out) return SysResult::hang();
    if (!r.ok()) {
      mount_error_ = r.describe(argv);
      return SysResult::failure(EIO);
    }
    return SysResult::success();
  }

  void kill_workers();

  DmFs gfs_;
  DmLayout L_;
  bool thin_;
  int timeout_;
  std::string base_;
  uint64_t base_sectors_ = 0;
  uint64_t data_bytes_ = 0;
  std::string layer_ = "dm-flakey";
  std::string mount_error_;
  bool faulted_ = false, suspended_ = false, pending_count_ = false;
  uint64_t hits_ = 0;
  KernelLog klog_;
  std::map<std::string, std::unique_ptr<CountingProcess>> procs_;
};

// Forwards to a real worker and lets a counted fault expire after an error.
class CountingProcess final : public Process {
 public:
  CountingProcess(DmStorage& s, const std::string& root, int timeout_ms)
      : s_(s), p_(root, std::chrono::milliseconds(timeout_ms)) {}
  PosixProcess& worker() { return p_; }

  SysResult open(const std::string& path, const OpenFlags& f) override { return seen(p_.open(path, f)); }
  SysResult close(int fd) override { return seen(p_.close(fd)); }
  SysResult pwrite(int fd, std::span<const std::byte> d, uint64_t o) override { return seen(p_.pwrite(fd, d, o)); }
  SysResult pread(int fd, std::span<std::byte> d, uint64_t o) override { return seen(p_.pread(fd, d, o)); }
  SysResult fsync(int fd) override { return seen(p_.fsync(fd)); }
  SysResult fdatasync(int fd) override { return seen(p_.fdatasync(fd)); }
  SysResult sync_file_range(int fd, uint64_t o, uint64_t l, const SyncFileRangeFlags& f) override {
    return seen(p_.sync_file_range(fd, o, l, f));
  }
  SysResult msync_write(int fd, std::span<const std::byte> d, uint64_t o) override {
    return seen(p_.msync_write(fd, d, o));
  }
  SysResult syncfs(int fd) override { return seen(p_.syncfs(fd)); }
  SysResult sync() override { return seen(p_.sync()); }
  SysResult stat(const std::string& path) override { return seen(p_.stat(path)); }
  SysResult rename(const std::string& a, const std::string& b) override { return seen(p_.rename(a, b)); }
  SysResult unlink(const std::string& path) override { return seen(p_.unlink(path)); }

 private:
  SysResult seen(SysResult r) {
    s_.after_call(r);
    return r;
  }
  DmStorage& s_;
  PosixProcess p_;
};

Process& DmStorage::process(const std::string& name) {
  auto& p = procs_[name];
  if (!p) p = std::make_unique<CountingProcess>(*this, L_.mount, timeout_);
  return *p;
}

void DmStorage::kill_workers() {
  for (auto& [name, p] : procs_) {
    if (!p->worker().kill_worker(500ms)) {
      SysResult h = heal();  // a worker stuck on a suspended or failing device
      (void)h;
      p->worker().kill_worker(std::chrono::milliseconds(timeout_ * 3));
    }
  }
  procs_.clear();
}

}  // namespace

std::unique_ptr<Storage> make_dm_storage(const DmFs& fs, const DmLayout& layout, bool thin,
                                         int step_timeout_ms) {
  return std::make_unique<DmStorage>(fs, layout, thin, step_timeout_ms);
}

}  // namespace syncprobe
