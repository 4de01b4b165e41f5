#include "initramfs.h"

#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <set>
#include <sstream>

#include "syncprobe/catalog.h"
#include "syncprobe/command.h"
#include "syncprobe/paths.h"

namespace syncprobe::vm {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

std::string read_text(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Module names compare with '-' and '_' as one, without directory or suffix.
std::string module_key(std::string name) {
  name = name.substr(name.find_last_of('/') + 1);
  name = name.substr(0, name.find(".ko"));
  std::replace(name.begin(), name.end(), '-', '_');
  return name;
}

// PID 1 of the guest. Modules a kernel has built in are simply not found.
const char kInit[] = R"INIT(#!/bin/sh
/bin/busybox mkdir -p /proc /sys /dev /tmp /mnt/sp /sbin /usr/bin /usr/sbin /run
/bin/busybox --install -s
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
echo /sbin/modprobe > /proc/sys/kernel/modprobe
for m in $(cat /etc/modules.load); do modprobe -q "$m" 2>/dev/null; done
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

std::string file_key(const std::string& p) {
  const auto c = fs::canonical(p);
  return p + ":" + std::to_string(fs::file_size(c)) + ":" +
         std::to_string(fs::last_write_time(c).time_since_epoch().count());
}

std::string hash_hex(const std::string& s) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%016zx", std::hash<std::string>{}(s));
  return buf;
}

// Copies `rel` from the kernel's modules to the stage, uncompressed (busybox
// modprobe loads plain .ko only).
bool copy_module(const std::string& src_dir, const std::string& dst_dir, const std::string& rel,
                 std::string& error) {
  std::string dst = dst_dir + "/" + rel;
  fs::create_directories(fs::path(dst).parent_path());
  const std::string src = src_dir + "/" + rel;
  std::string tool;
  if (rel.ends_with(".xz")) tool = "xz";
  else if (rel.ends_with(".zst")) tool = "zstd";
  else if (rel.ends_with(".gz")) tool = "gzip";
  if (tool.empty()) {
    fs::copy_file(src, dst, fs::copy_options::overwrite_existing);
    return true;
  }
  dst.resize(dst.rfind('.'));
  CommandOptions to_dst;  // no shell: paths are arguments, never code
  to_dst.timeout = 60s;
  to_dst.stdout_file = dst;
  CommandResult r = run_program({tool, "-qdc", src}, to_dst);
  if (!r.ok()) error = r.describe({tool, "-dc", src});
  return r.ok();
}

}  // namespace

std::string build_initramfs(const Installed& k, std::string& error) {
  const std::string guest = helper_program("syncprobe-guest");
  const std::string blockdev = helper_program("syncprobe-blockdev");
  if (guest.empty()) {
    error = "the static guest runner is not built (configure with SYNCPROBE_BUILD_GUEST=ON)";
    return "";
  }
  if (blockdev.empty()) {
    error = "syncprobe-blockdev is not built (install libfuse3-dev: scripts/setup)";
    return "";
  }
  std::vector<std::string> tools = {"busybox", "dmsetup"};
  std::vector<std::string> wanted = catalogue().guest_modules();
  for (const auto& f : filesystems()) {  // data/filesystems.toml: each one's tools and modules
    for (const auto& t : f.tools)
      if (std::find(tools.begin(), tools.end(), t) == tools.end()) tools.push_back(t);
    wanted.insert(wanted.end(), f.modules.begin(), f.modules.end());
  }
  std::string key = k.release + "|" + k.modules + "|" + kInit + "|" + file_key(guest) + "|" +
                    file_key(blockdev);
  for (const auto& t : tools) {
    const std::string p = find_program(t);
    if (p.empty()) {
      error = t + " is missing: run scripts/setup --vm";
      return "";
    }
    key += "|" + file_key(p);
  }
  for (const auto& m : wanted) key += "|" + m;
  const std::string out = cache_dir() + "/vm/initramfs-" + k.release + "-" + hash_hex(key) + ".cpio.gz";
  if (fs::exists(out)) return out;

  // A stage of our own: another run may build the same kernel's image now.
  const std::string stage = cache_dir() + "/vm/stage-" + k.release + "-" + std::to_string(getpid());
  fs::remove_all(stage);
  for (const char* d : {"bin", "sbin", "usr/bin", "usr/sbin", "etc", "proc", "sys", "dev", "tmp", "mnt"})
    fs::create_directories(stage + "/" + d);
  copy_file_to(find_program("busybox"), stage + "/bin/busybox");
  fs::create_symlink("busybox", stage + "/bin/sh");
  copy_file_to(guest, stage + "/bin/syncprobe-guest");
  copy_with_libs(blockdev, "/bin/syncprobe-blockdev", stage);
  for (size_t i = 1; i < tools.size(); ++i)  // all but busybox
    copy_with_libs(find_program(tools[i]), "/usr/sbin/" + tools[i], stage);
  std::ofstream(stage + "/init") << kInit;
  fs::permissions(stage + "/init", fs::perms::owner_all | fs::perms::group_read | fs::perms::group_exec |
                                       fs::perms::others_read | fs::perms::others_exec);

  // Modules: the closure of what the catalogue names over modules.dep.
  std::map<std::string, std::string> path_of;               // key -> relative path
  std::map<std::string, std::vector<std::string>> deps_of;  // key -> dependency keys
  std::istringstream dep(read_text(k.modules + "/modules.dep"));
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
  for (const auto& m : wanted) add(module_key(m));
  const std::string mdir = stage + "/lib/modules/" + k.release;
  fs::create_directories(mdir);
  for (const auto& m : need)
    if (!copy_module(k.modules, mdir, path_of[m], error)) return "";
  for (const char* f : {"modules.builtin", "modules.builtin.modinfo", "modules.order"})
    if (fs::exists(k.modules + "/" + f))
      fs::copy_file(k.modules + "/" + f, mdir + "/" + f, fs::copy_options::overwrite_existing);
  if (CommandResult r = run_program({"depmod", "-b", stage, k.release}, 120s); !r.ok()) {
    error = r.describe({"depmod", "-b", stage, k.release});
    return "";
  }
  {
    std::ofstream load(stage + "/etc/modules.load");
    for (const auto& m : wanted) load << m << "\n";
  }
  const std::string tmp = out + "." + std::to_string(getpid()) + ".tmp";
  // The archive: the stage's file list (as find . would give it) fed to
  // cpio in the stage, then gzip; no shell, so no path is ever code.
  const std::string list = tmp + ".list", cpio = tmp + ".cpio";
  {
    std::ofstream names(list, std::ios::trunc);
    names << ".\n";
    for (auto it = fs::recursive_directory_iterator(stage); it != fs::recursive_directory_iterator(); ++it)
      names << "./" << it->path().lexically_relative(stage).string() << "\n";  // links stay links
  }
  CommandOptions pack;
  pack.cwd = stage;
  pack.stdin_file = list;
  pack.stdout_file = cpio;
  pack.timeout = 300s;
  CommandResult c = run_program({"cpio", "-o", "-H", "newc", "--quiet"}, pack);
  if (c.ok()) {
    CommandOptions zip;
    zip.stdin_file = cpio;
    zip.stdout_file = tmp;
    zip.timeout = 300s;
    c = run_program({"gzip", "-1", "-c"}, zip);
  }
  fs::remove(list);
  fs::remove(cpio);
  fs::remove_all(stage);
  if (!c.ok()) {
    error = c.describe({"cpio"});
    return "";
  }
  fs::rename(tmp, out);
  return out;
}

}  // namespace syncprobe::vm
