#include "syncprobe/dm_injector.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <sstream>
#include <stdexcept>

#include "syncprobe/command.h"
#include "syncprobe/filesystem.h"
#include "syncprobe/mounted_storage.h"

namespace syncprobe {

using namespace std::chrono_literals;

namespace {

constexpr uint64_t kSector = 512;
constexpr uint64_t kPlainBytes = 512ull << 20;     // plain stack: disk [0, 512M)
constexpr uint64_t kThinMetaOffset = 1ull << 30;   // thin metadata: disk [1G, 1G+16M)
constexpr uint64_t kThinMetaBytes = 16ull << 20;
constexpr uint64_t kThinDataOffset = 2ull << 30;   // thin data: disk [2G, 4G)
constexpr uint64_t kThinDataInitial = 768ull << 20;
constexpr uint64_t kThinDataMax = 2ull << 30;
constexpr uint64_t kThinVirtual = 1ull << 30;      // the thin volume's size
constexpr uint64_t kThinBlockSectors = 128;        // 64 KiB pool blocks

void must(const std::vector<std::string>& argv, std::chrono::milliseconds t = 120s) {
  CommandResult r = run_program(argv, t);
  if (!r.ok()) throw std::runtime_error("harness: " + r.describe(argv));
}

std::string linear(const std::string& dev, uint64_t start, uint64_t sectors) {
  return "0 " + std::to_string(sectors) + " linear " + dev + " " + std::to_string(start);
}

}  // namespace

// One segment of top's table, in sectors of the base device.
struct DmInjector::Segment {
  uint64_t start = 0, length = 0;
  std::string target;  // "linear", "error", "flakey-error", "flakey-drop"
};

DmInjector::DmInjector(const DmLayout& layout, bool thin, std::chrono::milliseconds step_timeout,
                       Ledger& ledger)
    : L_(layout), thin_(thin), timeout_(step_timeout), ledger_(ledger) {
  remove_devices();  // what an earlier case of this stack left, if it could not clean up
  try {
    if (thin_) {
      base_ = dev("thin");
      base_sectors_ = kThinVirtual / kSector;
      data_bytes_ = kThinDataInitial;
      create("meta", linear(L_.disk, kThinMetaOffset / kSector, kThinMetaBytes / kSector));
      must({"dd", "if=/dev/zero", "of=" + dev("meta"), "bs=4096", "count=1"});
      create("data", linear(L_.disk, kThinDataOffset / kSector, data_bytes_ / kSector));
      create("pool", pool_table(true));
      must({"dmsetup", "message", dev("pool"), "0", "create_thin 0"});
      create("thin", "0 " + std::to_string(base_sectors_) + " thin " + dev("pool") + " 0");
    } else {
      base_ = L_.disk;
      base_sectors_ = kPlainBytes / kSector;
    }
    create("top", linear(base_, 0, base_sectors_));
  } catch (...) {
    remove_devices();
    throw;
  }
}

DmInjector::~DmInjector() {
  CommandResult r = run_program({"dmsetup", "resume", name("top")}, 30s);
  (void)r;  // not suspended, or gone: nothing to resume
  remove_devices();
}

std::string DmInjector::device() const { return dev("top"); }

// This stack's dm devices, top first; only names with the layout's prefix.
void DmInjector::remove_devices() {
  for (const char* n : {"filler", "top", "thin", "pool", "data", "meta"}) {
    CommandResult r = run_program({"dmsetup", "remove", "--force", name(n)}, 60s);
    if (r.ok() || r.output.find("No such device") != std::string::npos ||
        r.output.find("not found") != std::string::npos)
      ledger_.release({Resource::Kind::dm, name(n), 0, 0});
  }
}

void DmInjector::create(const std::string& n, const std::string& table) {
  ledger_.acquire({Resource::Kind::dm, name(n), 0, 0});
  must({"dmsetup", "create", name(n), "--table", table});
}

// Switches a live device's table as fstests does.
void DmInjector::load(const std::string& n, const std::string& table) {
  CommandResult r = run_program({"dmsetup", "suspend", "--nolockfs", name(n)}, 120s);
  (void)r;  // a device already suspended (hang) stays so until resume
  must({"dmsetup", "load", name(n), "--table", table});
  must({"dmsetup", "resume", name(n)});
}

std::string DmInjector::pool_table(bool error_if_no_space) const {
  return "0 " + std::to_string(data_bytes_ / kSector) + " thin-pool " + dev("meta") + " " + dev("data") +
         " " + std::to_string(kThinBlockSectors) + " 0 " +
         (error_if_no_space ? "2 skip_block_zeroing error_if_no_space" : "1 skip_block_zeroing");
}

std::pair<uint64_t, uint64_t> DmInjector::pool_usage() {
  CommandResult r = run_program({"dmsetup", "status", name("pool")}, 30s);
  // "0 <len> thin-pool <trans> <meta used>/<meta total> <data used>/<data total> ..."
  std::istringstream in(r.output);
  std::string s0, len, kind, trans, meta, data;
  in >> s0 >> len >> kind >> trans >> meta >> data;
  uint64_t used = 0, total = 0;
  std::sscanf(data.c_str(), "%lu/%lu", &used, &total);
  return {used, total};
}

std::set<std::string> DmInjector::capabilities() const {
  return {"fault",      "fault:write",  "fault:read",     "fault:drop", "fault:hang",
          "fault:data", "fault:metadata", "fault:device", "thin-pool",  "power-cut"};
}

std::vector<DmInjector::Segment> DmInjector::segments(const std::vector<ByteRange>& ranges, bool invert,
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

std::string DmInjector::render(const std::vector<Segment>& segs) const {
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

SysResult DmInjector::fault(const FaultRule& rule, nlohmann::json& detail) {
  if (rule.op == FaultOp::flush)
    throw std::runtime_error("harness: dm cannot fail flushes alone (the case needs fault:flush)");
  if (rule.mode == FaultMode::hang) {
    // Suspend without flushing: every I/O queues until heal resumes it.
    layer_ = "dm-suspend";
    detail["dm"] = "dmsetup suspend --nolockfs --noflush " + name("top");
    suspended_ = true;
    must({"dmsetup", "suspend", "--nolockfs", "--noflush", name("top")});
    return SysResult::success();
  }
  const std::string target = rule.mode == FaultMode::drop ? "flakey-drop"
                             : rule.op == FaultOp::write  ? "flakey-error"
                                                          : "error";
  layer_ = target == "error" ? "dm-error" : "dm-flakey";
  const std::string table = render(segments(rule.ranges, rule.invert, target));
  detail["dm_table"] = table;
  if (rule.count) {
    detail["count_emulation"] = "dm has no per-I/O count: healed after the first call that reported an error";
    pending_count_ = true;
  }
  load("top", table);
  faulted_ = true;
  return SysResult::success();
}

SysResult DmInjector::heal() {
  pending_count_ = false;
  if (powered_off_) return SysResult::success();  // power_restore brings the table back
  if (suspended_ || faulted_) {
    load("top", linear(base_, 0, base_sectors_));
    suspended_ = faulted_ = false;
  }
  return SysResult::success();
}

SysResult DmInjector::thin_limit(uint64_t headroom, FaultMode when_full, nlohmann::json& detail) {
  if (!thin_) throw std::runtime_error("harness: this dm stack has no thin pool");
  layer_ = "dm-thin";
  if (when_full == FaultMode::hang) load("pool", pool_table(false));
  const auto [used, total] = pool_usage();
  const uint64_t free_blocks = total - used;
  const uint64_t keep = headroom / (kThinBlockSectors * kSector);
  detail["pool_used_blocks"] = used;
  detail["pool_total_blocks"] = total;
  if (free_blocks <= keep) return SysResult::success();
  const uint64_t fill = free_blocks - keep;
  must({"dmsetup", "message", dev("pool"), "0", "create_thin 1"});
  create("filler", "0 " + std::to_string(fill * kThinBlockSectors) + " thin " + dev("pool") + " 1");
  // Allocate every block of the filler: the pool is then full.
  int fd = ::open(dev("filler").c_str(), O_WRONLY | O_DIRECT | O_CLOEXEC);
  if (fd < 0) throw std::runtime_error("harness: cannot open " + dev("filler") + ": " + std::strerror(errno));
  void* buf = nullptr;
  const size_t chunk = kThinBlockSectors * kSector * 16;
  if (posix_memalign(&buf, 4096, chunk) != 0) {
    ::close(fd);
    throw std::runtime_error("harness: out of memory filling the thin pool");
  }
  std::memset(buf, 0xaa, chunk);
  const uint64_t bytes = fill * kThinBlockSectors * kSector;
  for (uint64_t off = 0; off < bytes; off += chunk) {
    const size_t n = size_t(std::min<uint64_t>(chunk, bytes - off));
    if (::pwrite(fd, buf, n, off_t(off)) < 0) break;  // full before the end: the goal anyway
  }
  const int synced = ::fsync(fd);
  const int sync_err = errno;
  ::close(fd);
  std::free(buf);
  const auto [used2, total2] = pool_usage();
  detail["pool_used_blocks_after"] = used2;
  detail["filler_blocks"] = fill;
  detail["filler_fsync"] = synced == 0 ? "ok" : std::strerror(sync_err);
  detail["when_full"] = when_full == FaultMode::hang ? "queue" : "error_if_no_space";
  (void)total2;
  return SysResult::success();
}

SysResult DmInjector::grow(uint64_t bytes, nlohmann::json& detail) {
  if (!thin_) throw std::runtime_error("harness: this dm stack has no thin pool");
  layer_ = "dm-thin";
  data_bytes_ = std::min(kThinDataMax, data_bytes_ + bytes);
  load("data", linear(L_.disk, kThinDataOffset / kSector, data_bytes_ / kSector));
  load("pool", pool_table(true));
  detail["pool_data_bytes"] = data_bytes_;
  return SysResult::success();
}

SysResult DmInjector::power_cut() {
  // fstests' way: from now on every write is dropped (a suspended table is
  // resumed into it, so nothing stays held).
  load("top", render({{0, base_sectors_, "flakey-drop"}}));
  powered_off_ = true;
  suspended_ = false;
  return SysResult::success();
}

SysResult DmInjector::power_restore() {
  load("top", linear(base_, 0, base_sectors_));
  powered_off_ = faulted_ = suspended_ = false;
  return SysResult::success();
}

void DmInjector::release_everything() {
  try {
    if (suspended_) {
      CommandResult r = run_program({"dmsetup", "resume", name("top")}, 30s);
      (void)r;  // resumed or gone: either way nothing is held there now
      suspended_ = false;
    }
    if (thin_) load("pool", pool_table(true));  // a queueing pool fails instead
  } catch (const std::exception&) {
    // Best effort: the teardown goes on with a lazy unmount if this did not help.
  }
}

// dm counts nothing: the kernel's own messages about failed I/O on a dm
// device stand in (rate-limited by the kernel, so a lower bound).
uint64_t DmInjector::injected() {
  for (const auto& line : klog_.drain(100000))
    if (line.find("dm-") != std::string::npos &&
        ((line.find("I/O error") != std::string::npos &&
          line.find("ext4_end_bio") == std::string::npos) ||  // ext4 repeats the block layer's line
         line.find("space allocation error") != std::string::npos))
      ++hits_;
  return hits_;
}

// After a call that reported an error, a fault with a count expires.
void DmInjector::after_call(const SysResult& r) {
  if (pending_count_ && !r.ok() && !r.hung) {
    SysResult h = heal();
    (void)h;  // heal throws on failure; its result is always success
  }
}

nlohmann::json DmInjector::environment() const {
  return {{"injector", thin_ ? "dm-thin, dm-flakey, dm-error" : "dm-flakey, dm-error"},
          {"device", std::string("device-mapper stack ") + (thin_ ? "over a thin volume on " : "over ") + L_.disk}};
}

std::unique_ptr<MountedStorage> make_dm_storage(const FilesystemSpec& fs, const DmLayout& layout, bool thin,
                                         std::chrono::milliseconds step_timeout, Ledger& ledger) {
  auto injector = std::make_unique<DmInjector>(layout, thin, step_timeout, ledger);
  must(fs.mkfs_argv(injector->device()), 600s);
  must({"mkdir", "-p", layout.mount});
  auto filesystem = std::make_unique<Filesystem>(fs, injector->device(), layout.mount,
                                                 step_timeout, ledger);
  SysResult m = filesystem->mount(step_timeout + 120s);
  if (!m.ok()) throw std::runtime_error("harness: mount failed: " + filesystem->mount_error());
  StorageParts parts;
  parts.device_bytes = injector->device_bytes();
  parts.device_injector = std::move(injector);
  parts.fs = std::move(filesystem);
  nlohmann::json env = {{"kind", layout.kind}, {"kernel", kernel_release()}, {"fs", fs.fs},
                        {"mount_options", fs.options}, {"measured", true}};
  return std::make_unique<MountedStorage>(std::move(parts), env, step_timeout);
}

}  // namespace syncprobe
