#include "syncprobe/refmount_target.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <map>
#include <stdexcept>

#include "refmount_storage.h"
#include "syncprobe/app_driver.h"
#include "syncprobe/interpreter.h"
#include "syncprobe/linux_fs.h"
#include "syncprobe/ref/policy.h"
#include "syncprobe/scratch.h"

namespace syncprobe {
namespace {

// What the in-process reference can do that the kernel does not carry to a
// FUSE filesystem, and why.
const std::map<std::string, std::string>& fuse_lacks() {
  static const std::map<std::string, std::string> lacks = {
      {"sync_file_range", "FUSE has no request for sync_file_range(2): it never reaches the mount"},
      {"syncfs", "FUSE has no request for syncfs(2) (libfuse 3.14): it never reaches the mount"},
      {"mmap", "a FUSE file opened for direct I/O cannot be mapped shared"},
      {"mmap-read", "a FUSE file opened for direct I/O cannot be mapped shared"},
      {"raw-device", "the mount exposes files, not the simulated device under them"},
      {"fault:hang", "a hung request would stop the mount's only FUSE loop"},
      {"app:postgres", "the mount has no file owners: initdb cannot give its data directory to the "
                       "postgres user (chown fails with EPERM)"},
  };
  return lacks;
}

class RefmountTarget final : public Target {
 public:
  explicit RefmountTarget(std::string policy) : policy_(std::move(policy)) {}

  std::string name() const override { return "refmount:" + policy_; }
  bool measured() const override { return false; }
  bool uses_machine() const override { return true; }
  Availability availability() const override {
    if (::access("/dev/fuse", R_OK | W_OK) != 0)
      return {false, "/dev/fuse is not usable here (load the fuse module, or run where FUSE is allowed)"};
    if (::access("/usr/bin/fusermount3", X_OK) != 0 && ::geteuid() != 0)
      return {false, "fusermount3 is missing (apt-get install fuse3)"};
    return {};
  }
  std::set<std::string> capabilities() const override {
    std::set<std::string> caps = ref::model_capabilities(policy_);
    caps.merge(installed_app_capabilities());  // real programs run on the mount
    for (const auto& [cap, why] : fuse_lacks()) caps.erase(cap);
    return caps;
  }
  std::string lack_reason(const std::string& capability) const override {
    auto it = fuse_lacks().find(capability);
    return it != fuse_lacks().end() ? it->second : ref::model_lack_reason(policy_, capability);
  }
  nlohmann::json environment() const override {
    return {{"kind", "refmount"},
            {"policy", policy_},
            {"injector", "reference-device"},
            {"measured", false},
            {"note", "modelled, reached through the kernel's VFS and FUSE"}};
  }

  CaseResult run(const Case& c, const RunContext& ctx) override {
    CaseResult r = new_result(*this, c);
    const auto t0 = std::chrono::steady_clock::now();
    NullLedger none;
    Ledger& ledger = ctx.ledger ? *ctx.ledger : none;
    const std::string tdir = ctx.scratch_dir + "/refmount-" + policy_, dir = tdir + "/" + c.id;
    try {
      if (ctx.scratch_dir.empty()) throw std::runtime_error("harness: the run has no scratch directory");
      for (const std::string& d : {tdir, dir}) make_private_dir(d, true);
      RefmountStorage storage(policy_, dir, ctx.scratch_dir, ctx.step_timeout, ledger);
      r.environment = storage.environment();
      interpret(c, storage, r);
      r.environment = storage.environment();
      if (!storage.teardown() && r.status != CaseStatus::error) {
        r.status = CaseStatus::error;
        r.reason = (r.reason.empty() ? "" : r.reason + "; ") + "the mount had to be forced away (" + dir + "/mount.log)";
      }
    } catch (const std::exception& e) {
      r.status = CaseStatus::error;
      r.reason = e.what();
    }
    if (!remove_tree_if_unmounted(dir)) {
      r.status = CaseStatus::error;
      r.reason += (r.reason.empty() ? "" : "; ") + std::string("a mount under ") + dir +
                  " would not go away; the next run removes it";
    }
    r.duration_ns = uint64_t(
        std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - t0).count());
    return r;
  }

 private:
  std::string policy_;
};

}  // namespace

std::unique_ptr<Target> make_refmount_target(const std::string& policy, std::string& error) {
  for (const auto& p : ref::policy_names())
    if (p == policy) return std::make_unique<RefmountTarget>(policy);
  error = "unknown reference policy '" + policy + "': choose one of";
  for (const auto& p : ref::policy_names()) error += " " + p;
  return nullptr;
}

TargetKind refmount_target_kind() {
  return {"refmount", "refmount:<policy>", make_refmount_target,
          [] {
            std::vector<std::string> names;
            for (const auto& p : ref::policy_names()) names.push_back("refmount:" + p);
            return names;
          },
          nullptr};
}

}  // namespace syncprobe
