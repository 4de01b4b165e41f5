#include "syncprobe/mounted_storage.h"

#include <atomic>
#include <cerrno>
#include <memory>
#include <thread>

#include "syncprobe/btrfs_chunks.h"
#include "syncprobe/command.h"
#include "syncprobe/errno_names.h"
#include "syncprobe/forwarding_process.h"
#include "syncprobe/fs_regions.h"
#include "syncprobe/linux_fs.h"

namespace syncprobe {

using namespace std::chrono_literals;

// A case process: the forked worker, seen by every injector after each call,
// behind the process-level injectors.
struct MountedStorage::Worker {
  class Notify final : public ForwardingProcess {
   public:
    Notify(Process& p, StorageParts& parts) : ForwardingProcess(p), parts_(parts) {}

   protected:
    SysResult seen(SysResult r) override {
      parts_.device_injector->after_call(r);
      for (auto& i : parts_.process_injectors) i->after_call(r);
      return r;
    }

   private:
    StorageParts& parts_;
  };

  Worker(const std::string& root, std::chrono::milliseconds timeout, StorageParts& parts)
      : posix(root, timeout, exec_under(parts)), notify(posix, parts), parts_(parts) {
    front = &notify;
    for (auto& i : parts.process_injectors) front = &i->wrap(*front);
    // fault() and heal() reach the running worker (libfiu: through fiu-ctrl).
    for (auto& i : parts.process_injectors) i->attach(posix.pid());
  }
  // Kills the worker (see PosixProcess::kill_worker), detached from the
  // process-level injectors first.
  bool kill(std::chrono::milliseconds grace) {
    if (posix.alive())
      for (auto& i : parts_.process_injectors) i->detach(posix.pid());
    return posix.kill_worker(grace);
  }
  PosixProcess posix;
  Notify notify;
  Process* front = nullptr;

 private:
  // No process-level injector: the worker is forked as always. Otherwise it
  // is exec'd under their command lines (libfiu: fiu-run -x), as programs are.
  static WorkerCommand exec_under(StorageParts& parts) {
    if (parts.process_injectors.empty()) return {};
    return [&parts](const std::vector<std::string>& argv) {
      std::vector<std::string> out = argv;
      for (auto& i : parts.process_injectors) out = i->command(out);
      return out;
    };
  }
  StorageParts& parts_;
};

MountedStorage::MountedStorage(StorageParts parts, nlohmann::json environment,
                               std::chrono::milliseconds step_timeout)
    : parts_(std::move(parts)), environment_(std::move(environment)), timeout_(step_timeout) {
  if (parts_.app)
    apps_ = parts_.app(parts_.fs->mountpoint(), timeout_,
                       parts_.process_injectors.empty() ? nullptr : parts_.process_injectors.front().get());
}

MountedStorage::~MountedStorage() {
  try {
    teardown();
  } catch (const std::exception&) {
    // Destructors must not throw; what is left is listed in the run's marker.
  }
}

bool MountedStorage::kill_workers() {
  bool clean = true;
  for (auto& [name, w] : workers_) {
    if (w->kill(500ms)) continue;
    // Stuck in the kernel on a held request: let the device go, then fail everything.
    clean = false;
    SysResult h = parts_.device_injector->heal();
    if (!h.ok() || !w->kill(timeout_)) {
      parts_.device_injector->release_everything();
      if (!w->kill(timeout_ * 3))
        note_ += (note_.empty() ? "" : "; ") + std::string("worker of process '") + name +
                 "' stayed in the kernel";
    }
  }
  workers_.clear();
  return clean;
}

bool MountedStorage::teardown() {
  if (torn_down_) return note_.empty();
  torn_down_ = true;
  // Programs first: a server holds files open on the filesystem.
  const std::string programs = apps_ ? apps_->stop(false) : "";
  if (!programs.empty()) note_ += (note_.empty() ? "" : "; ") + programs;
  kill_workers();
  if (parts_.fs && parts_.fs->mounted()) {
    SysResult u = parts_.fs->unmount();
    if (!u.ok()) {
      // Hung or busy on a device that holds requests: release it and try again.
      parts_.device_injector->release_everything();
      reap_stuck_programs(timeout_);
      u = parts_.fs->unmount();
      if (!u.ok() && !parts_.fs->detach())
        note_ += (note_.empty() ? "" : "; ") + std::string("the mount at ") + parts_.fs->mountpoint() +
                 " would not go";
    }
  }
  parts_.fs.reset();
  if (parts_.loop) parts_.loop.reset();
  for (auto& i : parts_.process_injectors) i.reset();
  parts_.process_injectors.clear();
  parts_.device_injector.reset();
  reap_stuck_programs(timeout_);
  return note_.empty();
}

std::string MountedStorage::layer() const { return parts_.device_injector->layer(); }

nlohmann::json MountedStorage::environment() const {
  nlohmann::json env = environment_;
  if (parts_.device_injector) {
    const nlohmann::json facts = parts_.device_injector->environment();
    for (auto& [k, v] : facts.items()) env[k] = v;
  }
  if (parts_.loop) env["loop_direct_io"] = parts_.loop->direct_io();
  return env;
}

Process& MountedStorage::process(const std::string& name) {
  auto it = workers_.find(name);
  // Made before it is entered: a worker that cannot start (an exec'd one
  // that never served) throws, and must leave no empty entry behind for
  // kill_workers() to follow.
  if (it == workers_.end())
    it = workers_.emplace(name, std::make_unique<Worker>(parts_.fs->mountpoint(), timeout_, parts_)).first;
  return *it->second->front;
}

bool MountedStorage::region_ranges(const FaultRequest& req, std::vector<ByteRange>& out,
                                   nlohmann::json& detail) {
  const bool free = req.where == FaultRequest::Where::free;
  const std::string fs = parts_.fs->spec().fs;
  std::string why;
  const std::string journal_from = fs == "xfs" ? "xfs_db" : "debugfs";
  detail["ranges_from"] = free ? "FS_IOC_GETFSMAP, FIEMAP, " + journal_from + " (the journal is not free)"
                               : journal_from;
  std::vector<ByteRange> journal;
  bool ok = fs_regions::journal_ranges(fs, parts_.fs->device(), free ? journal : out, why);
  if (ok && free) ok = fs_regions::free_ranges(parts_.fs->mountpoint(), parts_.device_bytes, journal, out, why);
  if (!ok) detail["error"] = why;
  return ok;
}

SysResult MountedStorage::fault(const FaultRequest& req, nlohmann::json& detail) {
  if (req.where == FaultRequest::Where::libfiu) {
    for (auto& i : parts_.process_injectors)
      if (i->layer() == "libfiu")
        return i->fail_call(req.point, req.rule.err, req.percent, req.rule.count == 1u, detail);
    detail["error"] = "this storage runs no process under libfiu";
    return SysResult::failure(ENOTSUP);
  }
  FaultRule rule = req.rule;
  rule.ranges.clear();
  rule.invert = false;
  if (rule.err == 0) rule.err = EIO;
  if (req.where == FaultRequest::Where::free || req.where == FaultRequest::Where::journal) {
    if (!region_ranges(req, rule.ranges, detail))
      return SysResult::harness_failure(req.where == FaultRequest::Where::free ? "free-space lookup"
                                                                                : "journal lookup");
  } else if (req.where != FaultRequest::Where::device) {
    std::vector<ByteRange> extents;
    std::string why;
    const bool found = parts_.fs->data_ranges(req.file, extents, why);
    detail["extents_from"] = "FIEMAP";
    if (!found && req.where == FaultRequest::Where::data) {
      detail["error"] = why;
      return SysResult::failure(ENOENT);
    }
    if (parts_.fs->spec().copy_on_write) {
      // FIEMAP gives btrfs logical addresses, and copy-on-write puts new
      // data anywhere in the data block groups: fail all of them (or all of
      // metadata), found through the chunk tree; the whole device only when
      // that cannot be read.
      BtrfsFaultRanges cow;
      std::string cow_why;
      if (btrfs_fault_ranges(parts_.fs->mountpoint(), req.where == FaultRequest::Where::data, cow, cow_why)) {
        rule.ranges = cow.ranges;
        detail.erase("extents_from");  // FIEMAP's logical addresses were not used
        detail["ranges_from"] = cow.from;
        if (!cow.note.empty()) detail["note"] = cow.note;
      } else {
        detail["widened"] = parts_.fs->spec().fs + ": " + cow_why + "; whole device";
      }
    } else {
      rule.ranges = extents;
      rule.invert = req.where == FaultRequest::Where::metadata;
    }
  }
  auto ranges = nlohmann::json::array();
  for (const auto& r : rule.ranges) ranges.push_back({r.offset, r.length});
  detail["ranges"] = ranges;
  detail["invert"] = rule.invert;
  detail["io"] = std::string(to_string(rule.op));
  detail["mode"] = std::string(to_string(rule.mode));
  if (rule.mode == FaultMode::error) {
    // Requested and delivered mean the same on every injector: what the case
    // asked for, and what the device itself returns for it.
    detail["errno_requested"] = errno_name(rule.err);
    detail["errno"] = errno_name(parts_.device_injector->delivered_errno(rule.err));
  }
  if (rule.count) detail["count"] = *rule.count;
  return parts_.device_injector->fault(rule, detail);
}

SysResult MountedStorage::heal() {
  SysResult r = parts_.device_injector->heal();
  for (auto& i : parts_.process_injectors) {
    SysResult p = i->heal();
    if (r.ok()) r = p;
  }
  return r;
}

SysResult MountedStorage::shutdown(ShutdownFlush flush, nlohmann::json& detail) {
  const std::string ioctl_name = parts_.fs->spec().shutdown;
  if (ioctl_name.empty()) return SysResult::failure(ENOTSUP);
  detail["ioctl"] = ioctl_name;
  // Blocks while the filesystem syncs (flush = sync): bounded by the step timeout.
  const std::string root = parts_.fs->mountpoint();
  auto state = std::make_shared<std::pair<std::atomic<bool>, SysResult>>();
  std::thread t([state, root, flush] {
    state->second = fs_regions::shutdown_ioctl(root, flush);
    state->first = true;
  });
  const auto deadline = std::chrono::steady_clock::now() + timeout_;
  while (!state->first && std::chrono::steady_clock::now() < deadline) std::this_thread::sleep_for(5ms);
  if (state->first) {
    t.join();
    return state->second;
  }
  t.detach();  // stuck in the kernel; it returns when the device is released
  return SysResult::hang();
}

SysResult MountedStorage::app(const AppCall& call, nlohmann::json& evidence) {
  if (!apps_) return Storage::app(call, evidence);
  return apps_->run(call, evidence);
}

SysResult MountedStorage::thin_limit(uint64_t headroom, FaultMode when_full, nlohmann::json& detail) {
  return parts_.device_injector->thin_limit(headroom, when_full, detail);
}

SysResult MountedStorage::grow(uint64_t bytes, nlohmann::json& detail) {
  return parts_.device_injector->grow(bytes, detail);
}

SysResult MountedStorage::drop_caches() { return drop_caches_all(); }

SysResult MountedStorage::writeback() { return parts_.fs->writeback(); }

SysResult MountedStorage::remount() { return parts_.fs->remount(); }

SysResult MountedStorage::power_cut() {
  // The machine loses power: the device takes nothing more and loses its
  // volatile cache, every process dies; then the filesystem is unmounted
  // against the dead device (the kernel's dirty pages die with it) and
  // mounted again on the restored device: recovery.
  SysResult cut = parts_.device_injector->power_cut();
  if (!cut.ok()) return cut;
  const std::string programs = apps_ ? apps_->stop(true) : "";  // they die with the power
  if (!programs.empty()) note_ += (note_.empty() ? "" : "; ") + programs;
  kill_workers();
  SysResult u = parts_.fs->unmount();
  if (u.hung) return u;
  if (!u.ok() && !parts_.fs->detach()) return SysResult::harness_failure("umount(8)");
  SysResult back = parts_.device_injector->power_restore();
  if (!back.ok()) return back;
  return parts_.fs->mount();
}

ReadBack MountedStorage::read_back(const std::string& path, uint64_t offset, uint64_t length) {
  kill_workers();
  return parts_.fs->read_back(path, offset, length);
}

uint64_t MountedStorage::injected_hits() {
  uint64_t n = parts_.device_injector->injected();
  for (auto& i : parts_.process_injectors) n += i->injected();
  return n;
}

std::map<std::string, uint64_t> MountedStorage::injected_by_layer() {
  std::map<std::string, uint64_t> by;
  by[parts_.device_injector->layer()] += parts_.device_injector->injected();
  for (auto& i : parts_.process_injectors) by[i->layer()] += i->injected();
  return by;
}

std::optional<std::string> MountedStorage::broken() {
  if (!parts_.device_injector) return std::nullopt;
  if (auto why = parts_.device_injector->failure())
    return "harness: the injector " + parts_.device_injector->layer() + " stopped: " + *why;
  for (auto& i : parts_.process_injectors)
    if (auto why = i->failure()) return "harness: the injector " + i->layer() + " stopped: " + *why;
  return std::nullopt;
}

}  // namespace syncprobe
