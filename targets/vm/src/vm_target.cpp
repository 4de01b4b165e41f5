// vm:<kernel>:<fs>: a kernel of the catalogue (data/kernels.toml), or one the
// user added, booted under QEMU. The pieces: kernel_catalogue (what kernels
// exist and where they are cached), debian_kernels (private package lists,
// fetch, add), initramfs, qemu (one boot) and guest_protocol (what travels
// to and from the guest). This file is the Target and the CLI's entry points.
// One boot runs every case on every filesystem of one kernel.
#include "syncprobe/clock.h"
#include "syncprobe/vm_target.h"

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <ostream>
#include <sstream>

#include "debian_kernels.h"
#include "guest_protocol.h"
#include "initramfs.h"
#include "kernel_catalogue.h"
#include "qemu.h"
#include "syncprobe/blockdev_storage.h"
#include "syncprobe/catalog.h"
#include "syncprobe/command.h"
#include "syncprobe/interrupt.h"
#include "syncprobe/ledger.h"
#include "syncprobe/linux_fs.h"
#include "syncprobe/paths.h"

namespace syncprobe {
namespace {

namespace fs = std::filesystem;

using VmFs = FilesystemSpec;  // an entry of data/filesystems.toml

std::string fs_suffix(const VmFs& f) { return f.name; }

std::string read_text(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Kernel names vm: targets can use: the catalogue's series, then added kernels.
std::vector<std::string> kernel_names() {
  std::vector<std::string> names;
  for (const auto& s : vm::catalogue().series) names.push_back(s.name);
  for (const auto& k : vm::installed_all())
    if (k.source == "added") names.push_back(k.name);
  return names;
}

CaseResult unreported(const Target& t, const Case& c, const std::string& started, const std::string& reason) {
  CaseResult r = new_result(t, c);
  r.started_at = started;
  r.status = CaseStatus::error;
  r.reason = reason;
  return r;
}

class VmTarget final : public Target {
 public:
  VmTarget(std::string kernel, VmFs f) : kernel_(std::move(kernel)), f_(std::move(f)) {}

  std::string name() const override { return "vm:" + kernel_ + ":" + fs_suffix(f_); }
  bool measured() const override { return true; }
  std::string batch_key() const override { return "vm:" + kernel_; }
  bool isolated_batches() const override { return true; }
  const VmFs& filesystem() const { return f_; }

  Availability availability() const override {
    if (find_program("qemu-system-x86_64").empty())
      return {false, "qemu-system-x86_64 missing: run scripts/setup --vm"};
    const auto k = vm::installed(kernel_);
    if (!k || !k->present())
      return {false, "kernel " + kernel_ + " not fetched: run `syncprobe vm fetch " + kernel_ +
                         "` (`syncprobe vm list` says what Debian offers)"};
    if (helper_program("syncprobe-guest").empty())
      return {false, "guest runner not built (SYNCPROBE_BUILD_GUEST=ON)"};
    for (const char* t : {"busybox", "cpio", "depmod", "dmsetup"})
      if (find_program(t).empty()) return {false, std::string(t) + " missing: run scripts/setup --vm"};
    for (const auto& r : vm::missing_requirements(*k))
      if (r.fs.empty() || r.fs == f_.fs)
        return {false, "kernel " + k->release + " lacks " + vm::describe(r)};
    return {};
  }

  std::set<std::string> capabilities() const override { return vm::vm_capabilities(f_); }
  std::string lack_reason(const std::string& capability) const override {
    return blockdev_lack_reason(f_, capability);
  }

  nlohmann::json environment() const override {
    const auto k = vm::installed(kernel_);
    nlohmann::json packages = nlohmann::json::array();
    if (k)
      for (const auto& p : k->packages) packages.push_back(p);
    return {{"kind", "vm"},
            {"kernel", k ? k->release : kernel_},
            {"kernel_name", kernel_},
            {"kernel_source", k ? k->source : ""},
            {"kernel_packages", packages},
            {"fs", f_.fs},
            {"mount_options", f_.options},
            {"injector", "fuse-blockdev (dm-thin for thin-pool cases)"},
            {"accelerator", vm::preferred_accelerator()},
            {"measured", true}};
  }

  CaseResult run(const Case& c, const RunContext& ctx) override {
    auto out = run_batch({this}, {&c}, ctx);
    return out[name()].at(0);
  }

  std::map<std::string, std::vector<CaseResult>> run_batch(const std::vector<Target*>& targets,
                                                           const std::vector<const Case*>& cases,
                                                           const RunContext& ctx) override;

 private:
  std::string kernel_;
  VmFs f_;
};

std::map<std::string, std::vector<CaseResult>> VmTarget::run_batch(const std::vector<Target*>& targets,
                                                                   const std::vector<const Case*>& cases,
                                                                   const RunContext& ctx) {
  std::map<std::string, std::vector<CaseResult>> results;
  const auto started = utc_now();
  auto fail_all = [&](const std::string& reason) {
    for (Target* t : targets)
      for (const Case* c : cases) results[t->name()].push_back(unreported(*t, *c, started, reason));
    return results;
  };
  const auto k = vm::installed(kernel_);
  if (!k) return fail_all("kernel " + kernel_ + " not fetched");
  std::string error;
  const std::string initrd = vm::build_initramfs(*k, error);
  if (initrd.empty()) return fail_all("initramfs: " + error);

  vm::GuestInput in;
  // A guest under TCG runs steps several times slower than the host: its
  // default is 20 s, but a timeout the user gave is honoured as it is.
  in.step_timeout_ms = int(ctx.step_timeout_given ? ctx.step_timeout.count()
                                                  : std::max<int64_t>(ctx.step_timeout.count(), 20000));
  for (const Case* c : cases) in.cases.push_back(*c);
  for (Target* t : targets) {
    const auto& f = static_cast<VmTarget*>(t)->filesystem();
    in.targets.push_back({t->name(), f});
  }
  NullLedger no_ledger;
  vm::BootSpec spec;
  spec.ledger = ctx.ledger ? ctx.ledger : &no_ledger;
  spec.vmlinuz = k->vmlinuz;
  spec.initrd = initrd;
  spec.dir = ctx.scratch_dir + "/vm-" + kernel_;
  spec.input = vm::encode_input(in);
  spec.label = kernel_;
  spec.verbose = ctx.verbose;
  spec.quiet_limit = std::chrono::seconds(
      std::max<int64_t>(300, 6 * std::chrono::duration_cast<std::chrono::seconds>(ctx.step_timeout).count()));
  const vm::BootResult boot = vm::boot_guest(spec);
  const vm::GuestOutput got = vm::decode_output(boot.lines);

  std::map<std::string, std::map<std::string, CaseResult>> by_target;
  for (CaseResult r : got.results) {
    r.environment["kernel_name"] = kernel_;
    r.environment["kernel_source"] = k->source;
    r.environment["kernel_packages"] = k->packages;
    r.environment["accelerator"] = boot.accelerator;
    r.environment["boot_wall_s"] = boot.wall_s;  // the whole boot: every case of every target
    r.environment["boot_s"] = boot.boot_s;
    by_target[r.target][r.case_id] = std::move(r);
  }
  std::string ended = boot.ended;
  if (ended.empty() && !got.fatal.empty()) ended = "guest runner: " + got.fatal;
  if (ended.empty()) ended = got.done ? "the guest finished without it" : "guest stopped";
  const std::string console_text = read_text(boot.console_path);
  for (Target* t : targets) {
    const std::string tdir = ctx.run_dir + "/" + t->name();
    fs::create_directories(tdir);
    std::ofstream(tdir + "/console.log") << console_text;
    for (const Case* c : cases) {
      auto it = by_target[t->name()].find(c->id);
      if (it != by_target[t->name()].end())
        results[t->name()].push_back(it->second);
      else {
        CaseResult r = unreported(*t, *c, started, "the guest did not report this case (" + ended + "; see console.log)");
        r.cut_short = boot.ended == kInterrupted;  // stopped by SIGINT/SIGTERM: measured again on --resume
        results[t->name()].push_back(std::move(r));
      }
    }
  }
  if (!remove_tree_if_unmounted(spec.dir) && ctx.verbose)
    std::fprintf(stderr, "vm %s: %s still mounted; left for the next run\n", kernel_.c_str(), spec.dir.c_str());
  return results;
}

}  // namespace

std::unique_ptr<Target> make_vm_target(const std::string& spec, std::string& error) {
  const auto names = kernel_names();
  for (const auto& n : names)
    for (const auto& f : filesystems())
      if (spec == n + ":" + fs_suffix(f)) return std::make_unique<VmTarget>(n, f);
  error = "unknown vm target 'vm:" + spec + "': kernels";
  for (const auto& n : names) error += " " + n;
  error += " (data/kernels.toml, `syncprobe vm add`) with filesystems";
  for (const auto& f : filesystems()) error += " " + fs_suffix(f);
  error += " (e.g. vm:6.1:ext4)";
  return nullptr;
}

std::vector<std::string> vm_target_names() {
  std::vector<std::string> names;
  for (const auto& n : kernel_names())
    for (const auto& f : filesystems()) names.push_back("vm:" + n + ":" + fs_suffix(f));
  return names;
}

std::vector<std::string> vm_kernel_names() { return kernel_names(); }

int vm_fetch(const std::vector<std::string>& kernels, std::ostream& out, std::ostream& err) {
  std::vector<std::string> want = kernels;
  const bool all = want.empty() || (want.size() == 1 && want[0] == "all");
  if (all) {
    want.clear();
    for (const auto& s : vm::catalogue().series) want.push_back(s.name);
  }
  int rc = 0;
  for (const auto& s : want) {
    const int r = vm::fetch(s, out, err);
    // `all` fetches what exists; a series Debian does not publish is said, not failed.
    if (!(all && r == 1)) rc = std::max(rc, r);
  }
  return rc;
}

int vm_add(const VmAddOptions& o, std::ostream& out, std::ostream& err) {
  vm::AddRequest req{o.name, o.kernel, o.modules, o.config, o.debs, o.force};
  return vm::add(req, out, err);
}

int vm_build(const std::vector<std::string>& kernels, std::ostream& out, std::ostream& err) {
  std::vector<std::string> want = kernels;
  if (want.empty() || (want.size() == 1 && want[0] == "all")) {
    want.clear();
    for (const auto& k : vm::installed_all()) want.push_back(k.name);
  }
  for (const auto& s : want) {
    const auto k = vm::installed(s);
    if (!k || !k->present()) {
      err << "syncprobe vm build: kernel " << s << " not fetched: run `syncprobe vm fetch " << s << "`\n";
      return 2;
    }
    std::string error;
    const std::string p = vm::build_initramfs(*k, error);
    if (p.empty()) {
      err << "syncprobe vm build: " << error << "\n";
      return 1;
    }
    out << "vm " << s << ": " << p << " (" << fs::file_size(p) / 1024 << " KiB)\n";
  }
  return 0;
}

int vm_list(bool refresh, bool offline, std::ostream& out, std::ostream& err) {
  const vm::Catalogue& c = vm::catalogue();
  std::string error;
  const bool lists = !offline && vm::update_lists(refresh, error);
  if (!offline && !lists) err << "syncprobe vm list: private package lists: " << error << "\n";
  out << "catalogue: " << c.file << "\ncache: " << vm::kernels_dir() << "\naccelerator: "
      << vm::preferred_accelerator() << "\n\n";
  out << "kernel  fetched                      available in Debian today\n";
  for (const auto& s : c.series) {
    const auto k = vm::installed(s.name);
    std::string fetched = k && k->present() ? k->release : "-";
    std::string avail = offline ? "not looked up (syncprobe vm list)" : "package lists unavailable";
    if (lists) {
      const vm::Resolution r = vm::resolve(s);
      avail = r.ok ? r.packages.front().name + " " + r.packages.front().version + " (" +
                         r.packages.front().suite + ")"
                   : "none: " + r.why_not;
    }
    out << std::left;
    out.width(8);
    out << s.name;
    out.width(29);
    out << fetched << avail << "\n";
  }
  for (const auto& k : vm::installed_all())
    if (k.source == "added") {
      out.width(8);
      out << k.name;
      out.width(29);
      out << (k.present() ? k.release : "- (files missing)") << "added with `vm add`";
      if (!k.packages.empty()) out << " from " << k.packages.front();
      out << "\n";
    }
  return lists || offline ? 0 : 1;
}

TargetKind vm_target_kind() {
  // QEMU processes of killed runs are listed in the runs' markers and ended
  // by the runner (platform/scratch.h), never found by their command line.
  return {"vm", "vm:<kernel>:<fs>", make_vm_target, vm_target_names, nullptr};
}

}  // namespace syncprobe
