// vm:<kernel>:<fs>: Debian's packaged kernels booted under QEMU.
//
// `syncprobe vm fetch` downloads a kernel package into the cache
// (<repo>/.cache/vm or $SYNCPROBE_CACHE/vm) and unpacks it. Before a boot the
// initramfs is built from this machine's packages: busybox, the static
// guest runner, mkfs and dmsetup with their libraries, and exactly the
// modules needed (closure over the kernel's own modules.dep); it is rebuilt
// only when an input changes. One boot runs every case on every filesystem
// of that kernel; cases and results travel on two small virtio disks, the
// console is kept in the results, and a watchdog ends a guest that stops
// making progress.
#include "syncprobe/vm_target.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <ostream>
#include <regex>
#include <set>
#include <sstream>
#include <thread>

#include "syncprobe/dm_capabilities.h"
#include "syncprobe/command.h"
#include "syncprobe/interrupt.h"
#include "syncprobe/linux_fs.h"
#include "syncprobe/paths.h"

namespace syncprobe {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

const std::vector<std::string> kSeries = {"6.1", "6.12"};

struct VmFs {
  std::string fs, options;
};
const std::vector<VmFs> kFilesystems = {{"ext4", ""}, {"ext4", "data=journal"}, {"xfs", ""},
                                        {"btrfs", ""}};

std::string fs_suffix(const VmFs& f) { return f.fs + (f.options.empty() ? "" : ":" + f.options); }

std::string read_text(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string trim(std::string s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.pop_back();
  return s;
}

std::string cache_root() {
  return cache_dir() + "/vm";
}

std::string guest_binary() {
  return helper_program("syncprobe-guest");
}

// "6.1.0-56" < "6.1.0-9"? No: compares digit runs as numbers.
bool version_less(const std::string& a, const std::string& b) {
  size_t i = 0, j = 0;
  while (i < a.size() && j < b.size()) {
    if (std::isdigit(static_cast<unsigned char>(a[i])) && std::isdigit(static_cast<unsigned char>(b[j]))) {
      size_t ie = i, je = j;
      while (ie < a.size() && std::isdigit(static_cast<unsigned char>(a[ie]))) ++ie;
      while (je < b.size() && std::isdigit(static_cast<unsigned char>(b[je]))) ++je;
      const unsigned long long x = std::stoull(a.substr(i, ie - i)), y = std::stoull(b.substr(j, je - j));
      if (x != y) return x < y;
      i = ie;
      j = je;
    } else {
      if (a[i] != b[j]) return a[i] < b[j];
      ++i;
      ++j;
    }
  }
  return a.size() - i < b.size() - j;
}

// ---- kernels ------------------------------------------------------------------------

struct Kernel {
  std::string series;    // "6.1"
  std::string dir;       // cache/vm/kernels/<series>
  std::string release;   // "6.1.0-56-amd64", "" when not fetched
  std::string package;
  std::string vmlinuz() const { return dir + "/root/boot/vmlinuz-" + release; }
  std::string modules() const { return dir + "/root/lib/modules/" + release; }
  bool present() const { return !release.empty() && fs::exists(vmlinuz()); }
};

Kernel kernel(const std::string& series) {
  Kernel k;
  k.series = series;
  k.dir = cache_root() + "/kernels/" + series;
  k.release = trim(read_text(k.dir + "/release"));
  k.package = trim(read_text(k.dir + "/package"));
  return k;
}

// apt options for a private package list of the backports suite (6.12 lives
// there on bookworm); the system's apt state is not touched.
std::vector<std::string> backports_apt_options() {
  const std::string dir = cache_root() + "/apt";
  fs::create_directories(dir + "/lists/partial");
  fs::create_directories(dir + "/cache/archives/partial");
  std::string codename;
  std::istringstream os(read_text("/etc/os-release"));
  for (std::string line; std::getline(os, line);)
    if (line.rfind("VERSION_CODENAME=", 0) == 0) codename = line.substr(17);
  std::ofstream(dir + "/sources.list")
      << "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] "
         "http://deb.debian.org/debian "
      << (codename.empty() ? "bookworm" : codename) << "-backports main\n";
  return {"-o", "Dir::Etc::sourcelist=" + dir + "/sources.list", "-o", "Dir::Etc::sourceparts=-",
          "-o", "Dir::State::Lists=" + dir + "/lists", "-o", "Dir::Cache=" + dir + "/cache",
          "-o", "APT::Get::List-Cleanup=0"};
}

// The newest linux-image-<series>...-amd64-unsigned package name, or "".
std::string newest_package(const std::string& series, const std::vector<std::string>& apt_opts) {
  std::vector<std::string> argv = {"apt-cache"};
  argv.insert(argv.end(), apt_opts.begin(), apt_opts.end());
  argv.insert(argv.end(), {"search", "--names-only", "^linux-image-.*-amd64-unsigned$"});
  CommandResult r = run_program(argv, 120s);
  const std::regex want("^linux-image-" + std::regex_replace(series, std::regex("\\."), "\\.") +
                        "[.-][0-9][0-9A-Za-z.+~-]*-amd64-unsigned$");
  std::string best;
  std::istringstream in(r.output);
  for (std::string line; std::getline(in, line);) {
    const std::string name = line.substr(0, line.find(' '));
    if (name.find("-rt-") != std::string::npos || name.find("-cloud-") != std::string::npos)
      continue;  // the generic flavour only
    if (std::regex_match(name, want) && (best.empty() || version_less(best, name))) best = name;
  }
  return best;
}

int fetch_kernel(const std::string& series, std::ostream& out, std::ostream& err) {
  std::vector<std::string> opts;
  std::string pkg = newest_package(series, opts);
  if (pkg.empty() && geteuid() == 0) {
    // Package lists may be missing or stale on a fresh machine.
    CommandResult u = run_program({"apt-get", "update", "-qq"}, 600s);
    if (!u.ok()) err << "syncprobe vm fetch: " << u.describe({"apt-get", "update"}) << "\n";
    pkg = newest_package(series, opts);
  }
  if (pkg.empty()) {
    opts = backports_apt_options();
    std::vector<std::string> update = {"apt-get"};
    update.insert(update.end(), opts.begin(), opts.end());
    update.push_back("update");
    CommandResult u = run_program(update, 600s);
    if (!u.ok()) err << "syncprobe vm fetch: " << u.describe(update) << "\n";
    pkg = newest_package(series, opts);
  }
  if (pkg.empty()) {
    err << "syncprobe vm fetch: no linux-image-" << series
        << ".*-amd64-unsigned package in the apt sources (run `apt-get update`; 6.12 comes "
           "from bookworm-backports)\n";
    return 1;
  }
  Kernel k = kernel(series);
  if (k.present() && k.package == pkg) {
    out << "vm " << series << ": " << pkg << " already present\n";
    return 0;
  }
  out << "vm " << series << ": fetching " << pkg << "\n";
  const std::string dl = k.dir + "/download";
  fs::remove_all(k.dir);
  fs::create_directories(dl);
  std::string cmd = "cd '" + dl + "' && apt-get";
  for (const auto& o : opts) cmd += " '" + o + "'";
  cmd += " download " + pkg;
  CommandResult d = run_program({"sh", "-c", cmd}, 900s);
  if (!d.ok()) {
    err << "syncprobe vm fetch: " << d.describe({"apt-get", "download", pkg}) << "\n";
    return 1;
  }
  std::string deb;
  for (const auto& e : fs::directory_iterator(dl))
    if (e.path().extension() == ".deb") deb = e.path().string();
  std::vector<std::string> x = {"dpkg-deb", "-x", deb, k.dir + "/root"};
  if (CommandResult r = run_program(x, 600s); !r.ok()) {
    err << "syncprobe vm fetch: " << r.describe(x) << "\n";
    return 1;
  }
  fs::remove_all(dl);
  std::string release;
  for (const auto& e : fs::directory_iterator(k.dir + "/root/lib/modules"))
    release = e.path().filename().string();
  std::vector<std::string> dep = {"depmod", "-b", k.dir + "/root", release};
  if (CommandResult r = run_program(dep, 300s); !r.ok()) {
    err << "syncprobe vm fetch: " << r.describe(dep) << "\n";
    return 1;
  }
  std::ofstream(k.dir + "/release") << release << "\n";
  std::ofstream(k.dir + "/package") << pkg << "\n";
  out << "vm " << series << ": kernel " << release << " in " << k.dir << "\n";
  return 0;
}

// ---- the initramfs ------------------------------------------------------------------

// Module names compare with '-' and '_' as one.
std::string module_key(std::string name) {
  for (const char* ext : {".ko.xz", ".ko.zst", ".ko.gz", ".ko"})
    if (name.size() > std::strlen(ext) && name.substr(name.size() - std::strlen(ext)) == ext) {
      name.resize(name.size() - std::strlen(ext));
      break;
    }
  name = name.substr(name.find_last_of('/') + 1);
  std::replace(name.begin(), name.end(), '-', '_');
  return name;
}

const std::vector<std::string> kModules = {
    "crc32c_generic", "crc32c_intel", "libcrc32c", "virtio_pci", "virtio_blk", "dm_mod",
    "dm_flakey",      "dm_thin_pool", "ext4",      "xfs",        "btrfs"};

const char kInit[] = R"INIT(#!/bin/sh
/bin/busybox mkdir -p /proc /sys /dev /tmp /mnt/sp /sbin /usr/bin /usr/sbin
/bin/busybox --install -s
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
echo /sbin/modprobe > /proc/sys/kernel/modprobe
for m in $(cat /etc/modules.load); do
  modprobe "$m" 2>/dev/null || echo "syncprobe-init: module $m not loaded (built in?)"
done
mkdir -p /dev/mapper
export DM_DISABLE_UDEV=1 PATH=/usr/sbin:/usr/bin:/sbin:/bin
echo "syncprobe-init: kernel $(uname -r); running the cases"
/bin/syncprobe-guest /dev/vdb /dev/vdc
echo "syncprobe-init: guest runner exited $?"
sync
poweroff -f
)INIT";

void copy_file_to(const std::string& src, const std::string& dst) {
  fs::create_directories(fs::path(dst).parent_path());
  fs::copy_file(fs::canonical(src), dst, fs::copy_options::overwrite_existing);
  fs::permissions(dst, fs::status(fs::canonical(src)).permissions());
}

// A binary and the shared libraries ldd says it needs, at their own paths.
void copy_with_libs(const std::string& program, const std::string& dst, const std::string& stage) {
  copy_file_to(program, stage + dst);
  CommandResult r = run_program({"ldd", program}, 30s);
  std::istringstream in(r.output);
  for (std::string line; std::getline(in, line);) {
    std::string path;
    if (auto arrow = line.find("=> "); arrow != std::string::npos)
      path = line.substr(arrow + 3, line.find(' ', arrow + 3) - arrow - 3);
    else if (auto slash = line.find('/'); slash != std::string::npos)
      path = line.substr(slash, line.find(' ', slash) - slash);
    if (!path.empty() && path[0] == '/' && fs::exists(path)) copy_file_to(path, stage + path);
  }
}

std::string hash_hex(const std::string& s) {
  return [](size_t h) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%016zx", h);
    return std::string(buf);
  }(std::hash<std::string>{}(s));
}

// Builds (or finds) the initramfs for `k`; "" and `error` on failure.
std::string initramfs(const Kernel& k, std::string& error) {
  const std::string guest = guest_binary();
  if (guest.empty() || !fs::exists(guest)) {
    error = "the static guest runner is not built (configure with SYNCPROBE_BUILD_GUEST=ON)";
    return "";
  }
  std::vector<std::string> tools = {"busybox", "mkfs.ext4", "mkfs.xfs", "mkfs.btrfs", "dmsetup"};
  std::string key = k.release + "|" + kInit;
  for (const auto& t : tools) {
    const std::string p = find_program(t);
    if (p.empty()) {
      error = t + " is missing: run scripts/setup --vm";
      return "";
    }
    key += "|" + p + ":" + std::to_string(fs::file_size(fs::canonical(p))) + ":" +
           std::to_string(fs::last_write_time(fs::canonical(p)).time_since_epoch().count());
  }
  key += "|" + std::to_string(fs::file_size(guest)) + ":" +
         std::to_string(fs::last_write_time(guest).time_since_epoch().count());
  const std::string out = cache_root() + "/initramfs-" + k.release + "-" + hash_hex(key) + ".cpio.gz";
  if (fs::exists(out)) return out;

  const std::string stage = cache_root() + "/stage-" + k.release;
  fs::remove_all(stage);
  for (const char* d : {"bin", "sbin", "usr/bin", "usr/sbin", "etc", "proc", "sys", "dev", "tmp", "mnt"})
    fs::create_directories(stage + "/" + d);
  copy_file_to(find_program("busybox"), stage + "/bin/busybox");
  fs::create_symlink("busybox", stage + "/bin/sh");
  copy_file_to(guest, stage + "/bin/syncprobe-guest");
  for (const auto& t : {"mkfs.ext4", "mkfs.xfs", "mkfs.btrfs", "dmsetup"})
    copy_with_libs(find_program(t), std::string("/usr/sbin/") + t, stage);
  {
    std::ofstream init(stage + "/init");
    init << kInit;
  }
  fs::permissions(stage + "/init", fs::perms::owner_all | fs::perms::group_read |
                                       fs::perms::group_exec | fs::perms::others_read |
                                       fs::perms::others_exec);

  // Modules: the closure of what we need over the kernel's modules.dep.
  std::map<std::string, std::string> path_of;               // key -> relative path
  std::map<std::string, std::vector<std::string>> deps_of;  // key -> dependency keys
  std::istringstream dep(read_text(k.modules() + "/modules.dep"));
  for (std::string line; std::getline(dep, line);) {
    const auto colon = line.find(':');
    if (colon == std::string::npos) continue;
    const std::string rel = line.substr(0, colon);
    path_of[module_key(rel)] = rel;
    std::istringstream ds(line.substr(colon + 1));
    for (std::string d; ds >> d;) deps_of[module_key(rel)].push_back(module_key(d));
  }
  std::set<std::string> need;
  std::function<void(const std::string&)> add = [&](const std::string& m) {
    if (!path_of.count(m) || !need.insert(m).second) return;
    for (const auto& d : deps_of[m]) add(d);
  };
  for (const auto& m : kModules) add(m);
  const std::string mdir = stage + "/lib/modules/" + k.release;
  fs::create_directories(mdir);
  for (const auto& m : need) {
    const std::string rel = path_of[m];
    std::string dst = mdir + "/" + rel;
    fs::create_directories(fs::path(dst).parent_path());
    const std::string src = k.modules() + "/" + rel;
    if (rel.size() > 3 && rel.substr(rel.size() - 3) == ".xz") {
      dst.resize(dst.size() - 3);
      CommandResult r = run_program({"sh", "-c", "xz -dc '" + src + "' > '" + dst + "'"}, 60s);
      if (!r.ok()) { error = r.describe({"xz", "-dc", src}); return ""; }
    } else if (rel.size() > 4 && rel.substr(rel.size() - 4) == ".zst") {
      dst.resize(dst.size() - 4);
      CommandResult r = run_program({"sh", "-c", "zstd -qdc '" + src + "' > '" + dst + "'"}, 60s);
      if (!r.ok()) { error = r.describe({"zstd", "-dc", src}); return ""; }
    } else {
      fs::copy_file(src, dst, fs::copy_options::overwrite_existing);
    }
  }
  for (const char* f : {"modules.builtin", "modules.builtin.modinfo", "modules.order"})
    if (fs::exists(k.modules() + "/" + f))
      fs::copy_file(k.modules() + "/" + f, mdir + "/" + f, fs::copy_options::overwrite_existing);
  if (CommandResult r = run_program({"depmod", "-b", stage, k.release}, 120s); !r.ok()) {
    error = r.describe({"depmod", "-b", stage, k.release});
    return "";
  }
  {
    std::ofstream load(stage + "/etc/modules.load");
    for (const auto& m : kModules) load << m << "\n";
  }
  const std::string tmp = out + ".tmp";
  CommandResult c = run_program(
      {"sh", "-c", "cd '" + stage + "' && find . | cpio -o -H newc --quiet | gzip -1 > '" + tmp + "'"},
      300s);
  if (!c.ok()) {
    error = c.describe({"cpio"});
    return "";
  }
  fs::rename(tmp, out);
  fs::remove_all(stage);
  return out;
}

// ---- the target ---------------------------------------------------------------------

bool pid_alive(pid_t pid) { return pid > 0 && (kill(pid, 0) == 0 || errno == EPERM); }

class VmTarget final : public Target {
 public:
  VmTarget(std::string series, VmFs f) : series_(std::move(series)), f_(std::move(f)) {}

  std::string name() const override { return "vm:" + series_ + ":" + fs_suffix(f_); }
  bool measured() const override { return true; }
  std::string batch_key() const override { return "vm:" + series_; }
  const VmFs& filesystem() const { return f_; }

  Availability availability() const override {
    if (find_program("qemu-system-x86_64").empty())
      return {false, "qemu-system-x86_64 missing: run scripts/setup --vm"};
    if (!kernel(series_).present())
      return {false, "kernel " + series_ + " not fetched: run `syncprobe vm fetch " + series_ + "`"};
    const std::string g = guest_binary();
    if (g.empty() || !fs::exists(g)) return {false, "guest runner not built (SYNCPROBE_BUILD_GUEST=ON)"};
    for (const char* t : {"busybox", "cpio", "depmod", "dmsetup"})
      if (find_program(t).empty()) return {false, std::string(t) + " missing: run scripts/setup --vm"};
    return {};
  }

  std::set<std::string> capabilities() const override { return dm_capabilities(); }

  nlohmann::json environment() const override {
    const Kernel k = kernel(series_);
    return {{"kind", "vm"},
            {"kernel", k.release.empty() ? series_ : k.release},
            {"kernel_package", k.package},
            {"fs", f_.fs},
            {"mount_options", f_.options},
            {"injector", "dm-flakey, dm-error, dm-thin"},
            {"accelerator", access("/dev/kvm", R_OK | W_OK) == 0 ? "kvm" : "tcg"},
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
  std::string series_;
  VmFs f_;
};

std::map<std::string, std::vector<CaseResult>> VmTarget::run_batch(
    const std::vector<Target*>& targets, const std::vector<const Case*>& cases,
    const RunContext& ctx) {
  std::map<std::string, std::vector<CaseResult>> results;
  const auto started = now_iso8601();
  // Results for every (target, case), filled from the guest's output; what
  // is missing at the end says why.
  std::map<std::string, std::map<std::string, CaseResult>> got;
  auto fail_all = [&](const std::string& reason) {
    for (Target* t : targets)
      for (const Case* c : cases) {
        CaseResult r;
        r.case_id = c->id;
        r.case_file = c->file;
        r.case_hash = c->hash;
        r.target = t->name();
        r.environment = t->environment();
        r.status = CaseStatus::error;
        r.reason = reason;
        r.started_at = started;
        results[t->name()].push_back(r);
      }
    return results;
  };

  const Kernel k = kernel(series_);
  std::string error;
  const std::string initrd = initramfs(k, error);
  if (initrd.empty()) return fail_all("initramfs: " + error);

  const std::string dir = ctx.scratch_dir + "/vm-" + series_;
  fs::create_directories(dir);
  if (!fs::exists(ctx.scratch_dir + "/owner.pid"))
    std::ofstream(ctx.scratch_dir + "/owner.pid") << getpid() << "\n";
  const std::string scratch = dir + "/scratch.img", input = dir + "/input.img",
                    output = dir + "/output.img", console = dir + "/console.log";
  {
    std::ofstream(scratch, std::ios::trunc);
    fs::resize_file(scratch, 4ull << 30);
    nlohmann::json in = {{"step_timeout_ms", std::max<int64_t>(ctx.step_timeout.count(), 20000)},
                         {"cases", nlohmann::json::array()},
                         {"targets", nlohmann::json::array()}};
    for (const Case* c : cases) in["cases"].push_back(*c);
    for (Target* t : targets) {
      auto* vt = static_cast<VmTarget*>(t);
      in["targets"].push_back(
          {{"name", vt->name()}, {"fs", vt->filesystem().fs}, {"options", vt->filesystem().options}});
    }
    std::string text = in.dump();
    text.push_back('\0');
    text.resize((text.size() + 4095) / 4096 * 4096, '\0');
    std::ofstream(input, std::ios::binary | std::ios::trunc) << text;
    std::ofstream(output, std::ios::trunc);
    fs::resize_file(output, 64ull << 20);
  }
  // KVM when /dev/kvm works; a /dev/kvm that QEMU cannot use (nested
  // virtualisation without the MSRs QEMU wants) falls back to TCG.
  bool kvm = access("/dev/kvm", R_OK | W_OK) == 0;
  if (const char* a = std::getenv("SYNCPROBE_ACCEL")) kvm = std::string(a) == "kvm";
  std::string ended;
  const auto t0 = std::chrono::steady_clock::now();
  double boot_s = 0;  // until the guest runner's first line: kernel, initramfs, modules
  // Complete lines of the output disk, up to the first NUL (the rest of the
  // disk is zeros); read in chunks so polling stays cheap.
  auto read_lines = [&] {
    std::vector<std::string> lines;
    std::ifstream in(output, std::ios::binary);
    std::string text;
    char buf[65536];
    while (in.read(buf, sizeof buf) || in.gcount() > 0) {
      const size_t n = size_t(in.gcount());
      const char* nul = static_cast<const char*>(std::memchr(buf, 0, n));
      text.append(buf, nul ? size_t(nul - buf) : n);
      if (nul) break;
    }
    size_t start = 0;
    for (size_t nl; (nl = text.find('\n', start)) != std::string::npos; start = nl + 1)
      lines.push_back(text.substr(start, nl - start));
    return lines;
  };
  auto boot = [&] {
    std::vector<std::string> argv = {
        find_program("qemu-system-x86_64"), "-nodefaults", "-no-reboot", "-display", "none",
        "-m", "1024", "-smp", "2", "-accel", kvm ? "kvm" : "tcg",
        "-serial", "file:" + console, "-kernel", k.vmlinuz(), "-initrd", initrd,
        "-append", "console=ttyS0 panic=-1 rdinit=/init loglevel=4",
        "-drive", "file=" + scratch + ",if=virtio,format=raw,cache=unsafe",
        "-drive", "file=" + input + ",if=virtio,format=raw,readonly=on",
        "-drive", "file=" + output + ",if=virtio,format=raw,cache=writethrough",
        "-nic", "none"};
    if (kvm) argv.insert(argv.end(), {"-cpu", "host"});
    pid_t pid = fork();
    if (pid == 0) {
      setpgid(0, 0);  // Ctrl-C reaches the runner, which ends QEMU itself
      int devnull = ::open("/dev/null", O_RDWR);
      dup2(devnull, 0);
      dup2(devnull, 1);
      int log = ::open((dir + "/qemu.log").c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      dup2(log, 2);
      std::vector<char*> args;
      for (auto& a : argv) args.push_back(a.data());
      args.push_back(nullptr);
      execv(args[0], args.data());
      _exit(127);
    }
    // Watchdog: no new result for this long ends the guest.
    const auto quiet_limit = std::chrono::seconds(std::max<int64_t>(
        300, 6 * std::chrono::duration_cast<std::chrono::seconds>(ctx.step_timeout).count()));
    size_t lines_seen = 0;
    auto last_progress = std::chrono::steady_clock::now();
    for (;;) {
      int status = 0;
      if (waitpid(pid, &status, WNOHANG) == pid) {
        pid = -1;
        break;
      }
      if (interrupted()) {
        ended = "interrupted";
        break;
      }
      auto lines = read_lines();
      if (lines.size() > lines_seen) {
        if (lines_seen == 0) boot_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        lines_seen = lines.size();
        last_progress = std::chrono::steady_clock::now();
        if (ctx.verbose) std::fprintf(stderr, "vm %s: %zu result lines\n", series_.c_str(), lines_seen);
      }
      if (std::chrono::steady_clock::now() - last_progress > quiet_limit) {
        ended = "watchdog: no result for " + std::to_string(quiet_limit.count()) + " s";
        break;
      }
      std::this_thread::sleep_for(500ms);
    }
    if (pid > 0) {
      kill(-pid, SIGKILL);
      kill(pid, SIGKILL);
      waitpid(pid, nullptr, 0);
    }
  };
  boot();
  if (kvm && read_lines().empty() && ended.empty()) {
    kvm = false;
    boot();
  }
  const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

  std::string kernel_seen;
  for (const auto& line : read_lines()) {
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(line);
    } catch (const std::exception&) {
      continue;
    }
    if (j.value("type", "") == "hello") kernel_seen = j.value("kernel", "");
    if (j.value("type", "") == "result") {
      CaseResult r = j.at("result").get<CaseResult>();
      r.environment["kernel_package"] = k.package;
      r.environment["accelerator"] = kvm ? "kvm" : "tcg";
      r.environment["boot_wall_s"] = wall;  // the whole boot: every case of every target
      r.environment["boot_s"] = boot_s;
      got[r.target][r.case_id] = std::move(r);
    }
  }
  const std::string console_text = read_text(console);
  std::string qemu_log = trim(read_text(dir + "/qemu.log"));
  if (!qemu_log.empty() && ended.empty()) ended = "qemu: " + qemu_log.substr(0, 500);
  for (Target* t : targets) {
    // The guest's console, beside the target's results.
    const std::string tdir = ctx.run_dir + "/" + t->name();
    fs::create_directories(tdir);
    std::ofstream(tdir + "/console.log") << console_text;
    for (const Case* c : cases) {
      auto it = got[t->name()].find(c->id);
      if (it != got[t->name()].end()) {
        results[t->name()].push_back(it->second);
        continue;
      }
      CaseResult r;
      r.case_id = c->id;
      r.case_file = c->file;
      r.case_hash = c->hash;
      r.target = t->name();
      r.environment = t->environment();
      r.started_at = started;
      r.status = CaseStatus::error;
      r.reason = "the guest did not report this case (" +
                 (ended.empty() ? std::string("guest stopped") : ended) +
                 "; see console.log)";
      results[t->name()].push_back(r);
    }
  }
  remove_tree_if_unmounted(dir);
  return results;
}

}  // namespace

std::unique_ptr<Target> make_vm_target(const std::string& spec, std::string& error) {
  for (const auto& s : kSeries)
    for (const auto& f : kFilesystems)
      if (spec == s + ":" + fs_suffix(f)) return std::make_unique<VmTarget>(s, f);
  error = "unknown vm target 'vm:" + spec + "': kernels " ;
  for (const auto& s : kSeries) error += s + " ";
  error += "with filesystems";
  for (const auto& f : kFilesystems) error += " " + fs_suffix(f);
  error += " (e.g. vm:6.1:ext4)";
  return nullptr;
}

std::vector<std::string> vm_target_names() {
  std::vector<std::string> names;
  for (const auto& s : kSeries)
    for (const auto& f : kFilesystems) names.push_back("vm:" + s + ":" + fs_suffix(f));
  return names;
}

void vm_cleanup_stale(const std::string& scratch_root, std::ostream& log) {
  std::error_code ec;
  for (const auto& p : fs::directory_iterator("/proc", ec)) {
    const std::string spid = p.path().filename().string();
    if (spid.find_first_not_of("0123456789") != std::string::npos) continue;
    std::string cmdline = read_text(p.path().string() + "/cmdline");
    std::replace(cmdline.begin(), cmdline.end(), '\0', ' ');
    if (cmdline.find("qemu-system") == std::string::npos) continue;
    const auto at = cmdline.find(scratch_root + "/");
    if (at == std::string::npos) continue;
    // The run directory is the path component after the root.
    const std::string rest = cmdline.substr(at + scratch_root.size() + 1);
    const std::string run = rest.substr(0, rest.find('/'));
    const std::string owner = trim(read_text(scratch_root + "/" + run + "/owner.pid"));
    const pid_t opid = owner.empty() ? 0 : pid_t(std::atol(owner.c_str()));
    if (opid == getpid() || pid_alive(opid)) continue;
    kill(pid_t(std::atol(spid.c_str())), SIGKILL);
    log << "syncprobe: killed a stale QEMU (pid " << spid << ") of run " << run << "\n";
  }
}

std::vector<std::string> vm_kernel_series() { return kSeries; }

int vm_fetch(const std::string& series, std::ostream& out, std::ostream& err) {
  return fetch_kernel(series, out, err);
}

int vm_build(const std::string& series, std::ostream& out, std::ostream& err) {
  Kernel k = kernel(series);
  if (!k.present()) {
    err << "syncprobe vm build: kernel " << series << " not fetched: run `syncprobe vm fetch " << series << "`\n";
    return 2;
  }
  std::string error;
  const std::string p = initramfs(k, error);
  if (p.empty()) {
    err << "syncprobe vm build: " << error << "\n";
    return 1;
  }
  out << "vm " << series << ": " << p << " (" << fs::file_size(p) / 1024 << " KiB)\n";
  return 0;
}

void vm_status(const std::vector<std::string>& series, std::ostream& out) {
  out << "cache: " << cache_root() << "\n";
  for (const auto& s : series) {
    Kernel k = kernel(s);
    out << "vm " << s << ": "
        << (k.present() ? k.release + " (" + k.package + ")" : "not fetched (syncprobe vm fetch " + s + ")")
        << "\n";
  }
  out << "accelerator: " << (access("/dev/kvm", R_OK | W_OK) == 0 ? "kvm" : "tcg (no /dev/kvm)") << "\n";
}

}  // namespace syncprobe

namespace syncprobe {

TargetKind vm_target_kind() {
  return {"vm", "vm:<kernel>:<fs>", make_vm_target, vm_target_names, vm_cleanup_stale};
}

}  // namespace syncprobe
