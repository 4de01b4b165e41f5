// The reference file system behind engine's Storage seam: each Process is a
// descriptor table of handles into one ref::FileSystem; faults, limits and
// the machine's events map to its calls one for one.
#include "syncprobe/reference_storage.h"

#include <mutex>

#include "syncprobe/errno_names.h"
#include "syncprobe/ref/file_system.h"

#ifdef SYNCPROBE_HAVE_FIU
#include <fiu.h>
#endif

namespace syncprobe {
namespace {

// The raw simulated device, as a case names it.
constexpr char kRawDevicePath[] = "@device";

ref::OpenFlags to_ref(const OpenFlags& f) {
  ref::OpenFlags r;
  r.create = f.create;
  r.truncate = f.truncate;
  r.direct = f.direct;
  r.sync = f.sync;
  r.dsync = f.dsync;
  r.read_only = f.read_only;
  r.directory = f.directory;
  return r;
}

// One process's descriptors: numbers from 3 up, never reused within a case.
class RefProcess final : public Process {
 public:
  explicit RefProcess(ref::FileSystem& fs) : fs_(fs) {}

  void forget_all() { fds_.clear(); }

  SysResult open(const std::string& path, const OpenFlags& flags) override {
    ref::Handle h;
    SysResult r = path == kRawDevicePath ? fs_.open_device(to_ref(flags), h)
                                         : fs_.open(path, to_ref(flags), h);
    if (!r.ok()) return r;
    const int fd = next_fd_++;
    if (size_t(fd) >= fds_.size()) fds_.resize(size_t(fd) + 1);
    fds_[size_t(fd)] = h;
    return SysResult::success(fd);
  }
  SysResult close(int fd) override {
    SysResult r = fs_.close(handle(fd));
    if (r.ok()) fds_[size_t(fd)] = ref::Handle{};
    return r;
  }
  SysResult pwrite(int fd, std::span<const std::byte> data, uint64_t offset) override {
    return fs_.pwrite(handle(fd), data, offset);
  }
  SysResult pread(int fd, std::span<std::byte> out, uint64_t offset) override {
    return fs_.pread(handle(fd), out, offset);
  }
  SysResult fsync(int fd) override { return fs_.fsync(handle(fd), false); }
  SysResult fdatasync(int fd) override { return fs_.fsync(handle(fd), true); }
  SysResult sync_file_range(int fd, uint64_t offset, uint64_t length,
                            const SyncFileRangeFlags& f) override {
    return fs_.sync_file_range(handle(fd), offset, length, {f.wait_before, f.write, f.wait_after});
  }
  SysResult msync_write(int fd, std::span<const std::byte> data, uint64_t offset) override {
    return fs_.msync_write(handle(fd), data, offset);
  }
  MappedRead mmap_read(int fd, std::span<std::byte> out, uint64_t offset) override {
    ref::MappedRead m = fs_.mmap_read(handle(fd), out, offset);
    return {m.result, m.sigbus ? "SIGBUS" : "", std::move(m.resident), m.copied};
  }
  SysResult syncfs(int fd) override { return fs_.syncfs(handle(fd)); }
  SysResult sync() override { return fs_.sync(); }
  SysResult stat(const std::string& path) override {
    ref::Attr a;
    SysResult r = fs_.getattr(path, a);
    return r.ok() ? SysResult::success(int64_t(a.size)) : r;
  }
  SysResult rename(const std::string& from, const std::string& to) override {
    return fs_.rename(from, to);
  }
  SysResult unlink(const std::string& path) override { return fs_.unlink(path); }

 private:
  ref::Handle handle(int fd) const {
    return fd >= 0 && size_t(fd) < fds_.size() ? fds_[size_t(fd)] : ref::Handle{};
  }

  ref::FileSystem& fs_;
  std::vector<ref::Handle> fds_;  // by descriptor number; {} when closed
  int next_fd_ = 3;
};

class ReferenceStorage final : public Storage {
 public:
  explicit ReferenceStorage(std::unique_ptr<ref::Policy> policy) : fs_(std::move(policy)) {}

  std::string layer() const override { return fs_.layer(); }

  nlohmann::json environment() const override {
    const ref::CacheStats st = fs_.stats();
    return {{"kind", "reference"},
            {"policy", std::string(fs_.policy().name())},
            {"injector", "reference-device"},
            {"measured", false},
            {"note", "modelled, not measured"},
            {"page_size", ref::kPageSize},
            {"counters",
             {{"writeback_errors", st.writeback_errors},
              {"discarded_error_pages", st.discarded_error_pages},
              {"evicted_under_pressure", st.evicted_pages},
              {"error_bytes_held", st.error_bytes_held},
              {"device_writes", st.device_writes},
              {"device_flushes", st.device_flushes}}}};
  }

  Process& process(const std::string& name) override {
    auto& p = processes_[name];
    if (!p) p = std::make_unique<RefProcess>(fs_);
    return *p;
  }

  SysResult fault(const FaultRequest& request, nlohmann::json& detail) override {
    ref::FaultPlace place;
    switch (request.where) {
      case FaultRequest::Where::device: place.where = ref::FaultPlace::Where::device; break;
      case FaultRequest::Where::data: place.where = ref::FaultPlace::Where::data; break;
      case FaultRequest::Where::metadata: place.where = ref::FaultPlace::Where::metadata; break;
      case FaultRequest::Where::free: place.where = ref::FaultPlace::Where::free; break;
      case FaultRequest::Where::journal: place.where = ref::FaultPlace::Where::journal; break;
      case FaultRequest::Where::libfiu: return SysResult::failure(ENOTSUP);  // no programs here
    }
    place.path = request.file;
    FaultRule rule;
    SysResult r = fs_.fault(place, request.rule, rule);
    if (!r.ok()) return r;
    auto ranges = nlohmann::json::array();
    for (const auto& x : rule.ranges) ranges.push_back({x.offset, x.length});
    detail["ranges"] = ranges;
    detail["invert"] = rule.invert;
    detail["io"] = std::string(to_string(rule.op));
    detail["mode"] = std::string(to_string(rule.mode));
    // As on every injector: what the case asked for, and what the device
    // returns for it (the model's device delivers any errno).
    if (rule.mode == FaultMode::error) {
      detail["errno_requested"] = request.rule.err ? errno_name(request.rule.err) : "EIO";
      detail["errno"] = errno_name(rule.err);
    }
    if (rule.count) detail["count"] = *rule.count;
    return r;
  }
  SysResult heal() override { return fs_.heal(); }
  SysResult thin_limit(uint64_t headroom, FaultMode when_full, nlohmann::json& detail) override {
    SysResult r = fs_.thin_limit(headroom, when_full);
    detail["allocated_blocks"] = fs_.device().allocated_blocks();
    detail["capacity_blocks"] = *fs_.device().capacity_blocks();
    detail["when_full"] = when_full == FaultMode::hang ? "queue" : "error";
    return r;
  }
  SysResult grow(uint64_t bytes, nlohmann::json& detail) override {
    SysResult r = fs_.grow(bytes);
    if (r.ok()) detail["capacity_blocks"] = *fs_.device().capacity_blocks();
    return r;
  }
  SysResult memory_limit(uint64_t bytes) override { return fs_.memory_limit(bytes); }
  SysResult cache_limit(uint64_t bytes) override { return fs_.cache_limit(bytes); }
  SysResult drop_caches() override { return fs_.drop_caches(); }
  SysResult writeback() override { return fs_.writeback(); }
  SysResult remount() override { return fs_.remount(); }
  SysResult power_cut() override {
    forget_all();
    return fs_.power_cut();
  }
  ReadBack read_back(const std::string& path, uint64_t offset, uint64_t length) override {
    forget_all();  // read_back closes every description
    ref::ReadBack rb = fs_.read_back(path, offset, length, path == kRawDevicePath);
    return ReadBack{rb.result, std::move(rb.data)};
  }
  SysResult shutdown(ShutdownFlush flush, nlohmann::json& detail) override {
    ref::ShutdownReport report;
    const ref::ShutdownFlush f = flush == ShutdownFlush::sync  ? ref::ShutdownFlush::sync
                                 : flush == ShutdownFlush::log ? ref::ShutdownFlush::log
                                                               : ref::ShutdownFlush::none;
    SysResult r = fs_.shutdown(f, report);
    if (report.sync) detail["sync"] = describe(*report.sync);
    if (report.log_commit) detail["log_commit"] = *report.log_commit ? errno_name(*report.log_commit) : "0";
    return r;
  }
  uint64_t injected_hits() override { return fs_.injected_hits(); }

 private:
  void forget_all() {
    for (auto& [name, p] : processes_) p->forget_all();
  }

  ref::FileSystem fs_;
  std::map<std::string, std::unique_ptr<RefProcess>> processes_;
};

}  // namespace

std::vector<std::string> reference_policies() { return ref::policy_names(); }

std::string reference_policy_summary(const std::string& policy) {
  auto p = ref::make_policy(policy);
  return p ? std::string(p->summary()) : std::string();
}

std::unique_ptr<Storage> make_reference_storage(const std::string& policy, std::string& error) {
#ifdef SYNCPROBE_HAVE_FIU
  static std::once_flag fiu_once;
  std::call_once(fiu_once, [] { fiu_init(0); });
#endif
  auto p = ref::make_policy(policy);
  if (!p) {
    error = "unknown reference policy '" + policy + "'";
    return nullptr;
  }
  return std::make_unique<ReferenceStorage>(std::move(p));
}

std::set<std::string> reference_capabilities(const std::string& policy) {
  return ref::model_capabilities(policy);
}

std::string reference_lack_reason(const std::string& policy, const std::string& capability) {
  return ref::model_lack_reason(policy, capability);
}

}  // namespace syncprobe
