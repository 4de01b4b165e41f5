#include "debian_kernels.h"

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <ostream>
#include <regex>
#include <set>
#include <sstream>

#include "syncprobe/command.h"
#include "syncprobe/paths.h"

namespace syncprobe::vm {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

std::string apt_dir() { return cache_dir() + "/vm/apt"; }

// apt options that point every path apt would use into apt_dir().
std::vector<std::string> apt_options() {
  const std::string d = apt_dir();
  return {"-o", "Dir::Etc::sourcelist=" + d + "/sources.list",
          "-o", "Dir::Etc::sourceparts=-",
          "-o", "Dir::Etc::preferences=" + d + "/preferences",
          "-o", "Dir::Etc::preferencesparts=-",
          "-o", "Dir::State::Lists=" + d + "/lists",
          "-o", "Dir::State::status=" + d + "/status",
          "-o", "Dir::Cache=" + d + "/cache",
          // Some images disable the binary caches; without them every
          // apt-cache call parses all lists again (seconds each).
          "-o", "Dir::Cache::pkgcache=" + d + "/cache/pkgcache.bin",
          "-o", "Dir::Cache::srcpkgcache=" + d + "/cache/srcpkgcache.bin",
          "-o", "APT::Get::List-Cleanup=0",
          "-o", "Acquire::Languages=none"};
}

std::vector<std::string> apt(const std::string& tool, std::vector<std::string> args) {
  std::vector<std::string> argv = {tool};
  for (const auto& o : apt_options()) argv.push_back(o);
  argv.insert(argv.end(), args.begin(), args.end());
  return argv;
}

void write_sources() {
  const Catalogue& c = catalogue();
  const std::string d = apt_dir();
  fs::create_directories(d + "/lists/partial");
  fs::create_directories(d + "/cache/archives/partial");
  if (!fs::exists(d + "/status")) std::ofstream(d + "/status");
  std::ostringstream s;
  for (const auto& suite : c.suites())
    s << "deb [arch=" << c.arch << " signed-by=" << c.keyring << "] " << c.mirror << " " << suite
      << " main\n";
  std::ofstream(d + "/sources.list", std::ios::trunc) << s.str();
}

// One "name | version | url suite/main arch Packages" line per package found.
std::vector<Package> madison(const std::vector<std::string>& names) {
  std::vector<Package> out;
  if (names.empty()) return out;
  std::vector<std::string> args = {"madison"};
  args.insert(args.end(), names.begin(), names.end());
  CommandResult r = run_program(apt("apt-cache", args), 120s);
  std::istringstream in(r.output);
  for (std::string line; std::getline(in, line);) {
    std::vector<std::string> f;
    std::istringstream ls(line);
    for (std::string part; std::getline(ls, part, '|');) {
      while (!part.empty() && part.front() == ' ') part.erase(part.begin());
      while (!part.empty() && part.back() == ' ') part.pop_back();
      f.push_back(part);
    }
    if (f.size() < 3) continue;
    std::istringstream src(f[2]);
    std::string url, suite;
    src >> url >> suite;
    out.push_back({f[0], f[1], suite.substr(0, suite.find('/'))});
  }
  return out;
}

bool run_ok(const std::vector<std::string>& argv, std::chrono::milliseconds t, std::ostream& err,
            const std::string& what, const std::string& cwd = "") {
  CommandOptions o;
  o.timeout = t;
  o.cwd = cwd;
  CommandResult r = run_program(argv, o);
  if (r.ok()) return true;
  err << "syncprobe vm " << what << ": " << r.describe(argv) << "\n";
  return false;
}

// depmod wants <root>/lib/modules/<release>; Debian's newer packages use
// usr/lib/modules. Links the one to the other when needed.
void link_lib_modules(const std::string& root, const std::string& release) {
  const std::string lib = root + "/lib/modules/" + release;
  if (fs::exists(lib) || !fs::exists(root + "/usr/lib/modules/" + release)) return;
  fs::create_directories(root + "/lib/modules");
  fs::create_symlink("../../usr/lib/modules/" + release, lib);
}

// Unpacked, located, indexed: the common end of fetch and add. Moves `tmp`
// to the kernel's directory and saves the manifest.
int finish(Installed k, const std::string& tmp, std::ostream& out, std::ostream& err,
           const std::string& what) {
  const std::string root = tmp + "/root";
  link_lib_modules(root, k.release);
  const std::string name = k.name;
  k.dir = tmp;
  locate_files(root, k.release, k);
  if (k.vmlinuz.empty() || k.modules.empty()) {
    err << "syncprobe vm " << what << ": no " << (k.vmlinuz.empty() ? "vmlinuz" : "modules directory")
        << " for " << k.release << " in " << root << " (looked where data/kernels.toml [files] says)\n";
    return 1;
  }
  if (!run_ok({"depmod", "-b", root, k.release}, 300s, err, what)) return 1;
  const std::string dir = kernels_dir() + "/" + name;
  fs::remove_all(dir);
  fs::rename(tmp, dir);
  auto moved = [&](const std::string& p) { return p.empty() ? p : dir + p.substr(tmp.size()); };
  k.dir = dir;
  k.vmlinuz = moved(k.vmlinuz);
  k.modules = moved(k.modules);
  k.config = moved(k.config);
  save(k);
  out << "vm " << name << ": kernel " << k.release << " in " << dir << "\n";
  return 0;
}

}  // namespace

bool version_less(const std::string& a, const std::string& b) {
  CommandResult r = run_program({"dpkg", "--compare-versions", a, "lt", b}, 10s);
  return r.ok();
}

bool have_lists() {
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(apt_dir() + "/lists", ec))
    if (e.path().filename().string().find("_Packages") != std::string::npos) return true;
  return false;
}

bool update_lists(bool force, std::string& error) {
  write_sources();
  const std::string stamp = apt_dir() + "/updated";
  std::error_code ec;
  const auto age = fs::file_time_type::clock::now() - fs::last_write_time(stamp, ec);
  if (!force && !ec && have_lists() && age < 24h) return true;
  const auto argv = apt("apt-get", {"-qq", "update"});
  CommandResult r = run_program(argv, 900s);
  if (!r.ok()) {
    error = r.describe(argv);
    return false;
  }
  std::ofstream(stamp, std::ios::trunc) << "\n";
  return true;
}

Resolution resolve(const SeriesEntry& s) {
  const Catalogue& c = catalogue();
  const Layout& layout = c.layouts.at(s.layout);
  Resolution res;
  std::string suites;
  for (const auto& x : s.suites) suites += (suites.empty() ? "" : ", ") + x;
  CommandResult names = run_program(apt("apt-cache", {"pkgnames", "linux-"}), 120s);
  const std::string release_re = c.release_regex(s.name);
  for (const auto& tmpl : layout.kernel) {
    std::string pattern = std::regex_replace(tmpl, std::regex("[.+]"), "\\$&");
    pattern = std::regex_replace(pattern, std::regex("\\{release\\}"), "(" + release_re + ")");
    const std::regex want(pattern);
    std::vector<std::string> candidates;
    std::istringstream in(names.output);
    for (std::string n; std::getline(in, n);)
      if (std::regex_match(n, want)) candidates.push_back(n);
    std::optional<Package> best;
    for (const auto& p : madison(candidates))
      if (std::find(s.suites.begin(), s.suites.end(), p.suite) != s.suites.end() &&
          (!best || version_less(best->version, p.version)))
        best = p;
    if (!best) continue;
    std::smatch m;
    std::regex_match(best->name, m, want);
    res.release = m[1];
    res.packages.push_back(*best);
    break;
  }
  if (res.packages.empty()) {
    res.why_not = "no " + layout.kernel.front() + " package for " + s.name + " in " + suites;
    if (!s.note.empty()) res.why_not += " (" + s.note + ")";
    return res;
  }
  for (const auto& tmpl : layout.with) {
    const std::string want = expand(tmpl, res.release);
    std::optional<Package> found;
    for (const auto& p : madison({want}))
      if (p.suite == res.packages.front().suite) found = p;
    if (!found) {
      res.why_not = want + " is not in " + res.packages.front().suite;
      if (!s.note.empty()) res.why_not += " (" + s.note + ")";
      return res;
    }
    res.packages.push_back(*found);
  }
  res.ok = true;
  return res;
}

int fetch(const std::string& series, std::ostream& out, std::ostream& err) {
  const SeriesEntry* s = catalogue().find(series);
  if (!s) {
    err << "syncprobe vm fetch: '" << series << "' is not in " << catalogue().file
        << " (see `syncprobe vm list`)\n";
    return 2;
  }
  std::string error;
  if (!update_lists(false, error)) {
    err << "syncprobe vm fetch: updating the private package lists: " << error << "\n";
    return 1;
  }
  Resolution r = resolve(*s);
  if (!r.ok) {
    err << "syncprobe vm fetch " << series << ": " << r.why_not << "\n";
    return 1;
  }
  std::vector<std::string> wanted;
  for (const auto& p : r.packages) wanted.push_back(p.name + "=" + p.version + " (" + p.suite + ")");
  if (auto k = installed(series); k && k->present() && k->packages == wanted) {
    out << "vm " << series << ": " << k->release << " already present\n";
    return 0;
  }
  out << "vm " << series << ": fetching";
  for (const auto& w : wanted) out << " " << w;
  out << "\n";
  const std::string tmp = kernels_dir() + "/." + series + ".new";
  fs::remove_all(tmp);
  fs::create_directories(tmp + "/download");
  // No shell: apt-get downloads into its working directory.
  std::vector<std::string> argv = apt("apt-get", {"-qq", "download"});
  for (const auto& p : r.packages) argv.push_back(p.name + "=" + p.version);
  if (!run_ok(argv, 1800s, err, "fetch", tmp + "/download")) return 1;
  for (const auto& e : fs::directory_iterator(tmp + "/download"))
    if (e.path().extension() == ".deb" &&
        !run_ok({"dpkg-deb", "-x", e.path().string(), tmp + "/root"}, 600s, err, "fetch"))
      return 1;
  fs::remove_all(tmp + "/download");
  Installed k;
  k.name = series;
  k.release = r.release;
  k.source = "debian";
  k.packages = wanted;
  return finish(k, tmp, out, err, "fetch");
}

int add(const AddRequest& req, std::ostream& out, std::ostream& err) {
  if (!std::regex_match(req.name, std::regex("[A-Za-z0-9][A-Za-z0-9._+-]*"))) {
    err << "syncprobe vm add: name '" << req.name
        << "' must be letters, digits, '.', '_', '+' or '-' (it becomes vm:" << req.name << ":<fs>)\n";
    return 2;
  }
  if (catalogue().find(req.name)) {
    err << "syncprobe vm add: '" << req.name << "' is a series of " << catalogue().file
        << "; choose another name, e.g. " << req.name << "-mine\n";
    return 2;
  }
  if (req.debs.empty() == (req.kernel.empty() && req.modules_dir.empty())) {
    err << "syncprobe vm add: give either --kernel FILE --modules DIR, or --deb FILE...\n";
    return 2;
  }
  for (const auto& f : req.debs)
    if (!fs::is_regular_file(f)) {
      err << "syncprobe vm add: " << f << ": no such file\n";
      return 2;
    }
  const std::string tmp = kernels_dir() + "/." + req.name + ".new";
  fs::remove_all(tmp);
  const std::string root = tmp + "/root";
  fs::create_directories(root);
  Installed k;
  k.name = req.name;
  k.source = "added";
  if (!req.debs.empty()) {
    for (const auto& f : req.debs) {
      if (!run_ok({"dpkg-deb", "-x", f, root}, 600s, err, "add")) return 1;
      k.packages.push_back(fs::absolute(f).string());
    }
    const auto releases = releases_under(root);
    for (const auto& rel : releases) {
      Installed probe;
      locate_files(root, rel, probe);
      if (!probe.vmlinuz.empty()) k.release = rel;
    }
    if (k.release.empty()) {
      err << "syncprobe vm add: the packages hold no kernel image (releases found:";
      for (const auto& rel : releases) err << " " << rel;
      err << "); add the linux-image or linux-binary package too\n";
      return 2;
    }
  } else {
    if (req.kernel.empty() || !fs::is_regular_file(req.kernel) || req.modules_dir.empty() ||
        !fs::is_directory(req.modules_dir)) {
      err << "syncprobe vm add: --kernel must be a file (arch/x86/boot/bzImage) and --modules a "
             "directory (the INSTALL_MOD_PATH of `make modules_install`)\n";
      return 2;
    }
    // DIR/lib/modules/<release>, or DIR is the <release> directory itself.
    std::string src = req.modules_dir;
    auto releases = releases_under(src);
    if (releases.size() == 1) {
      k.release = releases.front();
      src = fs::exists(src + "/lib/modules/" + k.release) ? src + "/lib/modules/" + k.release
                                                          : src + "/usr/lib/modules/" + k.release;
    } else if (fs::exists(src + "/modules.order") || fs::exists(src + "/kernel")) {
      k.release = fs::path(fs::absolute(src)).lexically_normal().filename().string();
      if (k.release.empty()) k.release = fs::absolute(src).parent_path().filename().string();
    } else {
      err << "syncprobe vm add: " << req.modules_dir << " holds "
          << (releases.empty() ? "no lib/modules/<release>" : "several releases")
          << "; give the INSTALL_MOD_PATH of one `make modules_install`\n";
      return 2;
    }
    fs::create_directories(root + "/lib/modules");
    if (!run_ok({"cp", "-a", src, root + "/lib/modules/" + k.release}, 600s, err, "add")) return 1;
    fs::create_directories(root + "/boot");
    fs::copy_file(req.kernel, root + "/boot/vmlinuz-" + k.release);
    k.packages = {fs::absolute(req.kernel).string(), fs::absolute(req.modules_dir).string()};
  }
  if (!req.config.empty()) {
    if (!fs::is_regular_file(req.config)) {
      err << "syncprobe vm add: --config " << req.config << ": no such file\n";
      return 2;
    }
    fs::create_directories(root + "/boot");
    fs::copy_file(req.config, root + "/boot/config-" + k.release, fs::copy_options::overwrite_existing);
  }
  // Check what the guest needs before committing the kernel to the cache.
  Installed probe = k;
  link_lib_modules(root, k.release);
  locate_files(root, k.release, probe);
  if (!probe.modules.empty() && !fs::exists(probe.modules + "/modules.dep") &&
      !run_ok({"depmod", "-b", root, k.release}, 300s, err, "add"))
    return 1;
  const auto missing = missing_requirements(probe);
  bool fatal = false;
  for (const auto& m : missing) {
    fatal |= m.fs.empty();  // without ext4 only the ext4 targets are lost
    err << "syncprobe vm add: " << req.name << " lacks " << describe(m) << "\n";
  }
  if (fatal && !req.force) {
    err << "syncprobe vm add: " << req.name << " would not boot syncprobe's guest"
        << (probe.config.empty() ? " (checked modules.builtin and modules.dep: no config given)" : "")
        << "; enable the options (data/kernel.config, docs/vm.md) or pass --force\n";
    fs::remove_all(tmp);
    return 1;
  }
  return finish(k, tmp, out, err, "add");
}

}  // namespace syncprobe::vm
