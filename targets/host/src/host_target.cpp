// host:<fs>[:<options>]: this machine's kernel on a scratch filesystem.
//
// Per case: a copy of a freshly made filesystem image, served by the FUSE
// faulty block device (injectors/blockdev), under a loop device, mounted in
// the run's private directory. With SYNCPROBE_HOST_INJECTOR=dm (kernels that
// have device-mapper) the dm stack of the VM guests is built over a loop
// device of a sparse image instead. Either way the case runs on the one
// MountedStorage (platform/), and everything acquired is recorded in the
// run's marker first, so a killed run is cleaned up by the next.
#include "syncprobe/host_target.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <fstream>
#include <sstream>
#include <thread>

#include "syncprobe/blockdev_injector.h"
#include "syncprobe/blockdev_storage.h"
#include "syncprobe/catalog.h"
#include "syncprobe/command.h"
#include "syncprobe/dm_capabilities.h"
#include "syncprobe/dm_injector.h"
#include "syncprobe/errno_names.h"
#include "syncprobe/interpreter.h"
#include "syncprobe/linux_fs.h"
#include "syncprobe/mounted_storage.h"
#include "syncprobe/scratch.h"
#include "syncprobe/app_driver.h"
#include "syncprobe/libfiu_injector.h"

namespace syncprobe {
namespace {

using namespace std::chrono_literals;

constexpr uint64_t kDmDiskBytes = 4ull << 30;   // the dm layout: plain fs, thin meta and data

// A filesystem of data/filesystems.toml.
using HostFs = FilesystemSpec;

std::string target_name(const HostFs& h) { return "host:" + h.name; }

std::string read_text(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

bool kernel_has_fs(const std::string& fs) {
  auto has = [&] {
    std::istringstream in(read_text("/proc/filesystems"));
    std::string line;
    while (std::getline(in, line))
      if (line.size() >= fs.size() && line.substr(line.size() - fs.size()) == fs &&
          (line.size() == fs.size() || std::isspace((unsigned char)(line[line.size() - fs.size() - 1]))))
        return true;
    return false;
  };
  if (has()) return true;
  CommandResult r = run_program({"modprobe", fs}, 20s);
  (void)r;  // the check below says whether it worked
  return has();
}

// Which injector the host targets use: the FUSE block device (default), or
// device-mapper where the kernel has it and SYNCPROBE_HOST_INJECTOR=dm.
bool use_dm() {
  const char* e = std::getenv("SYNCPROBE_HOST_INJECTOR");
  return e && std::string(e) == "dm";
}

// The kernel registers device-mapper's control device in /proc/misc; a
// /dev/mapper/control node alone may be a leftover (mknod, a package script).
bool host_has_dm() {
  std::ifstream misc("/proc/misc");
  bool registered = false;
  for (std::string line; std::getline(misc, line);)
    registered = registered || line.find(" device-mapper") != std::string::npos;
  return registered && access("/dev/mapper/control", R_OK | W_OK) == 0 && !find_program("dmsetup").empty();
}


void must(const std::vector<std::string>& argv, std::chrono::milliseconds t) {
  CommandResult r = run_program(argv, t);
  if (!r.ok()) throw std::runtime_error("harness: " + r.describe(argv));
}

class HostTarget final : public Target {
 public:
  explicit HostTarget(HostFs h) : h_(std::move(h)) {}

  std::string name() const override { return target_name(h_); }
  bool measured() const override { return true; }

  Availability availability() const override {
    if (geteuid() != 0) return {false, "needs root (loop devices, mounts): run as root"};
    if (access("/dev/fuse", R_OK | W_OK) != 0)
      return {false, "/dev/fuse is missing: install fuse3 and load the fuse module"};
    if (blockdev_program().empty())
      return {false, "syncprobe-blockdev not built (scripts/build) or not in libexec/syncprobe"};
    if (access("/dev/loop-control", R_OK | W_OK) != 0)
      return {false, "/dev/loop-control is missing: load the loop module (modprobe loop)"};
    if (use_dm() && !host_has_dm())
      return {false, "SYNCPROBE_HOST_INJECTOR=dm but this kernel has no device-mapper "
                     "(/dev/mapper/control) or dmsetup is missing"};
    const std::string mkfs = h_.mkfs_argv("x").front();
    if (find_program(mkfs).empty())
      return {false, mkfs + " missing: install the " + h_.fs + " tools (scripts/setup)"};
    if (!kernel_has_fs(h_.fs)) return {false, "kernel " + kernel_release() + " has no " + h_.fs};
    return {};
  }

  std::set<std::string> capabilities() const override {
    if (use_dm()) return dm_capabilities();
    std::set<std::string> caps = blockdev_storage_capabilities(h_);
    caps.merge(installed_app_capabilities());
    // libfiu in front of the programs (range = "libfiu" faults).
    if (!find_program("fiu-run").empty() && !find_program("fiu-ctrl").empty()) caps.insert("fault:libfiu");
    return caps;
  }

  std::string lack_reason(const std::string& capability) const override {
    if (use_dm())
      return capability == "fault:errno" ? "dm-error and dm-flakey fail I/O with EIO only" : "";
    return blockdev_lack_reason(h_, capability);
  }

  nlohmann::json environment() const override {
    return {{"kind", "host"},     {"kernel", kernel_release()}, {"fs", h_.fs},
            {"mount_options", h_.options},
            {"injector", use_dm() ? "dm-flakey, dm-error, dm-thin" : "fuse-blockdev"},
            {"measured", true}};
  }

  CaseResult run(const Case& c, const RunContext& ctx) override {
    CaseResult r = new_result(*this, c);
    const auto t0 = std::chrono::steady_clock::now();
    KernelLog klog;
    std::string slug = name();
    for (char& ch : slug)
      if (ch == ':' || ch == '=' || ch == ',') ch = '-';
    const std::string tdir = ctx.scratch_dir + "/" + slug, dir = tdir + "/" + c.id;
    NullLedger none;
    Ledger& ledger = ctx.ledger ? *ctx.ledger : none;
    try {
      if (ctx.scratch_dir.empty()) throw std::runtime_error("harness: the run has no scratch directory");
      make_private_dir(tdir, true);  // the target's, shared by its cases
      make_private_dir(dir, false);
      const bool fiu = c.capabilities().count("fault:libfiu") > 0;
      auto storage = use_dm() ? dm_storage(c, ctx, dir, ledger) : blockdev_storage(ctx, dir, ledger, fiu);
      r.environment = storage->environment();
      interpret(c, *storage, r);
      if (!storage->teardown() && r.status != CaseStatus::error) {
        r.status = CaseStatus::error;
        r.reason = (r.reason.empty() ? "" : r.reason + "; ") + "cleanup failed: " + storage->teardown_note();
      }
    } catch (const std::exception& e) {
      r.status = CaseStatus::error;
      r.reason = e.what();
    }
    r.environment["kernel_log"] = klog.drain();
    const std::string log = read_text(dir + "/blockdev.log");
    r.environment["injector_log"] = log.size() > 8000 ? log.substr(log.size() - 8000) : log;
    if (!remove_tree_if_unmounted(dir)) {
      r.status = CaseStatus::error;
      r.reason += (r.reason.empty() ? "" : "; ") + std::string("a mount under ") + dir +
                  " would not go away; the next run removes it";
    }
    r.duration_ns = uint64_t(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                 std::chrono::steady_clock::now() - t0)
                                 .count());
    return r;
  }

 private:
  // The FUSE block device over a copy of the template, under a loop device.
  // `fiu`: the case fails calls with libfiu (its programs' and its workers'), whose fifos live in
  // the case's directory.
  std::unique_ptr<MountedStorage> blockdev_storage(const RunContext& ctx, const std::string& dir,
                                                   Ledger& ledger, bool fiu) {
    BlockdevStorageOptions o;
    o.fs = h_;
    o.template_image = ensure_template(ctx);
    o.dir = dir;
    o.environment = environment();
    o.step_timeout = ctx.step_timeout;
    o.app = app_runner(ledger);  // sqlite, qemu-img, postgres: the host has the programs
    std::unique_ptr<Injector> libfiu;
    if (fiu) {
      make_private_dir(dir + "/fiu", false);
      libfiu = std::make_unique<LibfiuInjector>(dir + "/fiu", ctx.step_timeout);
    }
    return make_blockdev_storage(o, ledger, std::move(libfiu));
  }

  // The VM guests' dm stack over a loop device of a sparse image of the run's
  // own; its dm names carry the run id (recorded in the marker too).
  std::unique_ptr<MountedStorage> dm_storage(const Case& c, const RunContext& ctx, const std::string& dir,
                                             Ledger& ledger) {
    create_sparse(dir + "/disk.img", kDmDiskBytes);
    StorageParts parts;
    parts.loop = std::make_unique<LoopDevice>(dir + "/disk.img");
    static std::atomic<int> serial{0};
    const DmLayout layout{parts.loop->path(), dir + "/mnt",
                          "syncprobe-" + ctx.run_id + "-" + std::to_string(++serial) + "-", "host"};
    auto injector = std::make_unique<DmInjector>(layout, c.capabilities().count("thin-pool") > 0,
                                                 ctx.step_timeout, ledger);
    const std::string device = injector->device();
    must(h_.mkfs_argv(device), 600s);
    parts.device_bytes = injector->device_bytes();
    parts.device_injector = std::move(injector);
    return mount(std::move(parts), device, ctx, dir, ledger);
  }

  std::unique_ptr<MountedStorage> mount(StorageParts parts, const std::string& device, const RunContext& ctx,
                                        const std::string& dir, Ledger& ledger) {
    make_private_dir(dir + "/mnt", true);  // the dm layout may have made it
    parts.fs = std::make_unique<Filesystem>(h_, device, dir + "/mnt", ctx.step_timeout, ledger);
    // Setup is not a step: a slow first mount (log recovery) gets more time.
    SysResult m = parts.fs->mount(ctx.step_timeout + 60s);
    if (!m.ok()) throw std::runtime_error("harness: mount failed: " + parts.fs->mount_error());
    nlohmann::json env = environment();
    env["image_bytes"] = kDmDiskBytes;
    return std::make_unique<MountedStorage>(std::move(parts), env, ctx.step_timeout);
  }

  // The filesystem made once per run, copied for each case.
  std::string ensure_template(const RunContext& ctx) {
    if (!template_.empty() && template_run_ == ctx.run_id) return template_;
    const std::string path = ctx.scratch_dir + "/template-" + target_slug() + ".img";
    make_fs_image(h_, path, kBlockdevImageBytes);
    template_ = path;
    template_run_ = ctx.run_id;
    return template_;
  }

  // One template per entry: mkfs may differ between variants of one type.
  std::string target_slug() const {
    std::string s = h_.name;
    for (char& ch : s)
      if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '-';
    return s;
  }

  HostFs h_;
  std::string template_, template_run_;
};

}  // namespace

std::unique_ptr<Target> make_host_target(const std::string& spec, std::string& error) {
  for (const auto& h : filesystems())
    if ("host:" + spec == target_name(h)) return std::make_unique<HostTarget>(h);
  error = "unknown host target 'host:" + spec + "': choose one of";
  for (const auto& h : filesystems()) error += " " + target_name(h);
  return nullptr;
}

std::vector<std::string> host_target_names() {
  std::vector<std::string> names;
  for (const auto& h : filesystems()) names.push_back(target_name(h));
  return names;
}

TargetKind host_target_kind() {
  // Stale storage of killed runs is released from the runs' markers by the
  // runner (platform/scratch.h): nothing of its own to clean here.
  return {"host", "host:<fs>[:<options>]", make_host_target, host_target_names, nullptr};
}

}  // namespace syncprobe
