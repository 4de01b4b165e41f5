#include "refmount_storage.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstring>
#include <fstream>
#include <stdexcept>
#include <thread>

#include "syncprobe/app_driver.h"
#include "syncprobe/errno_names.h"
#include "syncprobe/forwarding_process.h"
#include "syncprobe/linux_fs.h"
#include "syncprobe/refmount.h"
#include "syncprobe/scratch.h"

namespace syncprobe {
namespace {

using namespace std::chrono_literals;

std::string self_exe() {
  char buf[PATH_MAX];
  const ssize_t n = ::readlink("/proc/self/exe", buf, sizeof buf - 1);
  if (n <= 0) throw std::runtime_error(std::string("readlink /proc/self/exe: ") + std::strerror(errno));
  return std::string(buf, size_t(n));
}

bool is_mounted(const std::string& point) {
  for (const auto& m : mounts_under(point))
    if (m == point) return true;
  return false;
}

}  // namespace

// A case process: real system calls on the mount by a forked worker. sync(2)
// does not reach a FUSE filesystem (there is no FUSE request for it), so the
// model's sync follows the kernel's. close(2) returns before the kernel sends
// FUSE's release, so a close waits until the model has let the description go:
// the next step (drop_caches evicting the inode) must see it closed.
class RefmountStorage::Proc final : public ForwardingProcess {
 public:
  Proc(std::unique_ptr<PosixProcess> p, RefmountStorage& s)
      : ForwardingProcess(*p), posix_(std::move(p)), s_(s) {}
  SysResult sync() override {
    if (SysResult r = target().sync(); r.hung) return r;
    return RefmountStorage::result_of(s_.ask({{"op", "sync"}}));
  }
  SysResult open(const std::string& path, const OpenFlags& f) override {
    SysResult r = target().open(path, f);
    if (r.ok()) ++s_.open_descriptions_;
    return r;
  }
  SysResult close(int fd) override {
    SysResult r = target().close(fd);
    if (!r.ok()) return r;
    if (s_.open_descriptions_) --s_.open_descriptions_;
    if (!s_.ask({{"op", "settle"}, {"open", s_.open_descriptions_}}).value("ok", false))
      return SysResult::harness_failure("the mount kept a closed description open (FUSE release never came)");
    return r;
  }
  PosixProcess& posix() { return *posix_; }

 private:
  std::unique_ptr<PosixProcess> posix_;
  RefmountStorage& s_;
};

RefmountStorage::RefmountStorage(const std::string& policy, const std::string& dir, const std::string& scratch,
                                 std::chrono::milliseconds step_timeout, Ledger& ledger)
    : policy_(policy), dir_(dir), mountpoint_(dir + "/mnt"), log_(dir + "/mount.log"),
      timeout_(step_timeout), ledger_(ledger) {
  make_private_dir(mountpoint_, true);
  mount_record_ = {Resource::Kind::mount, mountpoint_, 0, 0};
  ledger_.acquire(mount_record_);
  // From here a failure gives back what was acquired before it says why.
  auto fail = [&](const std::string& why) {
    teardown();
    return std::runtime_error(why);
  };
  const std::string exe = self_exe();
  // The control socket is reached by its path: through the mount, a
  // filesystem that is down (FreeBSD's forced unmount) would refuse the way.
  // Its directory sits right under the scratch root, short-named; a path
  // longer than a socket address holds is reached through its directory
  // (refmount/src/socket_path.h).
  std::string control = scratch + "/ctl-XXXXXX";
  if (!::mkdtemp(control.data())) throw fail("cannot create " + control + ": " + std::strerror(errno));
  control_dir_ = control;
  socket_ = control_dir_ + "/control";
  // The file regions of the in-process reference (64 MiB), so that fault
  // ranges in the results are the same bytes.
  const std::vector<std::string> argv = {exe, "mount", "--policy", policy_, "--max-file-size", "64M",
                                         "--control-dir", control_dir_, mountpoint_};
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  int go[2];
  if (::pipe2(go, O_CLOEXEC) != 0) throw fail(std::string("pipe: ") + std::strerror(errno));
  const int log = ::open(log_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_NOFOLLOW | O_CLOEXEC, 0600);
  const int devnull = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (log < 0 || devnull < 0) {
    const std::string why = "cannot create " + log_ + ": " + std::strerror(errno);
    for (int fd : {go[0], go[1], log, devnull})
      if (fd >= 0) ::close(fd);
    throw fail(why);
  }
  daemon_ = ::fork();
  if (daemon_ == 0) {
    ::setpgid(0, 0);  // a Ctrl-C to the runner must not take the mount from under a case
    char c;
    if (::read(go[0], &c, 1) != 1) _exit(0);  // the runner died before recording us
    ::dup2(devnull, 0);
    ::dup2(log, 1);
    ::dup2(log, 2);
    ::execv(exe.c_str(), args.data());
    _exit(127);
  }
  ::close(go[0]);
  ::close(log);
  ::close(devnull);
  if (daemon_ < 0) {
    ::close(go[1]);
    throw fail(std::string("fork: ") + std::strerror(errno));
  }
  daemon_record_ = {Resource::Kind::process, "syncprobe mount", daemon_, process_start_time(daemon_)};
  try {
    ledger_.acquire(daemon_record_);
  } catch (...) {
    ::close(go[1]);
    ::kill(daemon_, SIGKILL);
    ::waitpid(daemon_, nullptr, 0);
    daemon_ = -1;
    teardown();
    throw;
  }
  const bool went = ::write(go[1], "g", 1) == 1;
  ::close(go[1]);
  const auto deadline = std::chrono::steady_clock::now() + 20s;
  while (went && !is_mounted(mountpoint_)) {
    int status;
    if (::waitpid(daemon_, &status, WNOHANG) == daemon_) {
      daemon_ = -1;
      break;
    }
    if (std::chrono::steady_clock::now() > deadline) break;
    std::this_thread::sleep_for(20ms);
  }
  if (!is_mounted(mountpoint_)) {
    std::ifstream in(log_);
    const std::string why((std::istreambuf_iterator<char>(in)), {});
    throw fail("syncprobe mount did not come up: " + why);
  }
}

RefmountStorage::~RefmountStorage() { teardown(); }

void RefmountStorage::kill_workers() {
  for (auto& [name, p] : procs_) p->posix().kill_worker();
  procs_.clear();
  open_descriptions_ = 0;
}

bool RefmountStorage::teardown() {
  if (torn_down_) return true;
  torn_down_ = true;
  bool clean = true;
  if (apps_) clean = apps_->stop(false).empty();  // servers go before the file system
  apps_.reset();
  kill_workers();
  if (daemon_ > 0) {
    ::kill(daemon_, SIGTERM);  // the daemon unmounts and removes its control directory
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    int status;
    while (::waitpid(daemon_, &status, WNOHANG) != daemon_) {
      if (std::chrono::steady_clock::now() > deadline) {
        clean = false;
        ::kill(daemon_, SIGKILL);
        ::waitpid(daemon_, &status, 0);
        break;
      }
      std::this_thread::sleep_for(10ms);
    }
    daemon_ = -1;
  }
  ledger_.release(daemon_record_);
  if (is_mounted(mountpoint_)) {  // a daemon that died leaves its mount behind
    clean = false;
    ::umount2(mountpoint_.c_str(), MNT_DETACH);
  }
  if (!is_mounted(mountpoint_)) {
    ledger_.release(mount_record_);
    ::rmdir(mountpoint_.c_str());
  }
  if (!control_dir_.empty()) {
    ::unlink(socket_.c_str());  // the daemon unlinks it on a clean exit, not after SIGKILL
    ::rmdir(control_dir_.c_str());
  }
  return clean;
}

nlohmann::json RefmountStorage::ask(const nlohmann::json& request) const {
  std::string error;
  auto reply = refmount::control_socket(socket_, request, error);
  if (!reply) throw std::runtime_error("the mount's control socket: " + error);
  return *reply;
}

SysResult RefmountStorage::result_of(const nlohmann::json& reply) {
  if (reply.value("ok", false)) return SysResult::success(reply.value("ret", int64_t(0)));
  const std::string why = reply.value("error", std::string());
  if (auto e = errno_from_name(why); e && *e > 0) return SysResult::failure(*e);
  if (why.find("hang") != std::string::npos) return SysResult::hang();
  return SysResult::harness_failure("syncprobe mount's control socket");
}

std::string RefmountStorage::layer() const { return ask({{"op", "status"}}).value("injector_layer", "reference-device"); }

nlohmann::json RefmountStorage::environment() const {
  nlohmann::json env{{"kind", "refmount"},
                     {"policy", policy_},
                     {"injector", "reference-device"},
                     {"measured", false},
                     {"note", "modelled, reached through the kernel's VFS and FUSE"},
                     {"page_size", 4096}};
  if (torn_down_) return env;
  const nlohmann::json s = ask({{"op", "status"}});
  env["counters"] = {{"writeback_errors", s["writeback_errors"]},
                     {"discarded_error_pages", s["discarded_error_pages"]},
                     {"evicted_under_pressure", s["evicted_pages"]},
                     {"error_bytes_held", s["error_bytes_held"]},
                     {"device_writes", s["device_writes"]},
                     {"device_flushes", s["device_flushes"]}};
  return env;
}

Process& RefmountStorage::process(const std::string& name) {
  auto& p = procs_[name];
  if (!p) p = std::make_unique<Proc>(std::make_unique<PosixProcess>(mountpoint_, timeout_), *this);
  return *p;
}

SysResult RefmountStorage::fault(const FaultRequest& request, nlohmann::json& detail) {
  static const char* const where[] = {"device", "data", "metadata", "free", "journal"};
  nlohmann::json q{{"op", "fault"},
                   {"where", where[int(request.where)]},
                   {"io", std::string(to_string(request.rule.op))},
                   {"mode", std::string(to_string(request.rule.mode))},
                   {"errno", request.rule.err ? errno_name(request.rule.err) : "EIO"}};
  if (!request.file.empty()) q["path"] = request.file;
  if (request.rule.count) q["count"] = *request.rule.count;
  const nlohmann::json reply = ask(q);
  if (!reply.value("ok", false)) {
    // "no file 'f' in the mount": the in-process reference's ENOENT.
    if (reply.value("error", std::string()).rfind("no file", 0) == 0) return SysResult::failure(ENOENT);
    return result_of(reply);
  }
  for (const auto& [k, v] : reply["fault"].items())
    if (k != "layer") detail[k] = v;
  if (request.rule.mode == FaultMode::error) detail["errno_requested"] = q["errno"];
  return SysResult::success();
}

SysResult RefmountStorage::heal() { return result_of(ask({{"op", "heal"}})); }

SysResult RefmountStorage::thin_limit(uint64_t headroom, FaultMode when_full, nlohmann::json& detail) {
  const std::string when = when_full == FaultMode::hang ? "queue" : "error";
  const nlohmann::json reply = ask({{"op", "thin"}, {"headroom", headroom}, {"when_full", when}});
  detail["allocated_blocks"] = reply.value("allocated_blocks", uint64_t(0));
  detail["capacity_blocks"] = reply.value("capacity_blocks", uint64_t(0));
  detail["when_full"] = when;
  return result_of(reply);
}

SysResult RefmountStorage::grow(uint64_t bytes, nlohmann::json& detail) {
  const nlohmann::json reply = ask({{"op", "grow"}, {"bytes", bytes}});
  if (reply.value("ok", false)) detail["capacity_blocks"] = reply.value("capacity_blocks", uint64_t(0));
  if (!reply.value("ok", false) && reply.value("error", std::string()).find("no --size") != std::string::npos)
    return SysResult::failure(EINVAL);  // as the in-process reference: not in thin-pool mode
  return result_of(reply);
}

SysResult RefmountStorage::memory_limit(uint64_t bytes) { return result_of(ask({{"op", "memory-limit"}, {"bytes", bytes}})); }
SysResult RefmountStorage::cache_limit(uint64_t bytes) { return result_of(ask({{"op", "cache-limit"}, {"bytes", bytes}})); }
SysResult RefmountStorage::drop_caches() { return result_of(ask({{"op", "drop-caches"}})); }
SysResult RefmountStorage::writeback() { return result_of(ask({{"op", "writeback"}})); }
SysResult RefmountStorage::remount() { return result_of(ask({{"op", "remount"}})); }

SysResult RefmountStorage::power_cut() {
  if (apps_) apps_->stop(true);  // programs die with the power
  kill_workers();  // every process and descriptor goes with the power
  return result_of(ask({{"op", "power-cut"}}));
}

ReadBack RefmountStorage::read_back(const std::string& path, uint64_t offset, uint64_t length) {
  kill_workers();  // read-back closes every description first
  const nlohmann::json reply = ask({{"op", "read-back"}, {"path", path}, {"offset", offset}, {"length", length}});
  ReadBack rb;
  rb.result = result_of(reply);
  if (!rb.result.ok()) return rb;
  const std::string hex = reply.value("hex", std::string());
  rb.data.resize(hex.size() / 2);
  auto nibble = [](char c) { return c <= '9' ? c - '0' : c - 'a' + 10; };
  for (size_t i = 0; i < rb.data.size(); ++i)
    rb.data[i] = std::byte(uint8_t(nibble(hex[2 * i]) << 4 | nibble(hex[2 * i + 1])));
  return rb;
}

SysResult RefmountStorage::shutdown(ShutdownFlush flush, nlohmann::json& detail) {
  const char* how = flush == ShutdownFlush::sync ? "sync" : flush == ShutdownFlush::log ? "log" : "none";
  const nlohmann::json reply = ask({{"op", "shutdown"}, {"flush", how}});
  for (const char* k : {"sync", "log_commit"})
    if (reply.contains(k)) detail[k] = reply[k];
  return result_of(reply);
}

SysResult RefmountStorage::app(const AppCall& call, nlohmann::json& evidence) {
  if (!apps_) apps_ = std::make_unique<AppSession>(mountpoint_, timeout_, ledger_, nullptr);
  return apps_->run(call, evidence);
}

uint64_t RefmountStorage::injected_hits() { return ask({{"op", "status"}}).value("injected_faults", uint64_t(0)); }

std::optional<std::string> RefmountStorage::broken() {
  if (daemon_ <= 0) return "the syncprobe mount daemon is gone";
  int status;
  if (::waitpid(daemon_, &status, WNOHANG) == daemon_) {
    daemon_ = -1;
    return "the syncprobe mount daemon exited (" + log_ + ")";
  }
  if (!is_mounted(mountpoint_)) return "the mount at " + mountpoint_ + " is gone";
  return std::nullopt;
}

}  // namespace syncprobe
