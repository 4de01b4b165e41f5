#pragma once
// The kernel catalogue (data/kernels.toml) and the kernels in the cache.
//
// A catalogue series is resolved against private package lists at fetch time
// (apt_lists.h); a fetched or added kernel lives in <cache>/vm/kernels/<name>/
// with a kernel.json manifest that says where its vmlinuz, modules and config
// are. Nothing here boots anything.
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace syncprobe::vm {

struct Layout {
  std::vector<std::string> kernel;  // package templates, first found wins
  std::vector<std::string> with;    // companion package templates, all required
};

struct Requirement {
  std::string option;                // CONFIG_VIRTIO_BLK
  std::vector<std::string> modules;  // module names that provide it (any one)
  std::string need;                  // which targets fail without it
  std::string fs;                    // set when only that filesystem needs it
};

struct SeriesEntry {
  std::string name;                 // "6.12"
  std::vector<std::string> suites;  // "trixie", "bookworm-backports"
  std::string layout;
  std::string note;
};

struct Catalogue {
  std::string file;  // where it was read from, for messages
  std::string mirror, keyring, arch;
  std::string release;  // regex template with {series}
  std::map<std::string, Layout> layouts;
  std::map<std::string, std::vector<std::string>> files;  // vmlinuz, modules, config
  std::vector<Requirement> requires_;
  std::vector<SeriesEntry> series;  // oldest first

  const SeriesEntry* find(const std::string& name) const;
  // Every suite any series names, in first-seen order.
  std::vector<std::string> suites() const;
  // The release regex for `series` ("6\.1[.-][0-9]...-amd64").
  std::string release_regex(const std::string& series) const;
  // Every module the guest may need, for the initramfs.
  std::vector<std::string> guest_modules() const;
};

// Reads the catalogue; throws std::runtime_error naming file:line and the fix.
Catalogue load_catalogue(const std::string& path);
// data_dir()/kernels.toml, loaded once per process.
const Catalogue& catalogue();

// "{release}" (and "{series}") replaced.
std::string expand(const std::string& tmpl, const std::string& release);

// A kernel in the cache: fetched from Debian or added by the user.
struct Installed {
  std::string name;     // what follows "vm:" ("6.12", or the name given to vm add)
  std::string dir;      // <cache>/vm/kernels/<name>
  std::string release;  // uname -r of the guest
  std::string source;   // "debian" or "added"
  std::vector<std::string> packages;  // "name=version (suite)" or the files added
  std::string vmlinuz, modules, config;  // absolute paths; config may be ""
  bool present() const;
};

std::string kernels_dir();  // <cache>/vm/kernels
std::optional<Installed> installed(const std::string& name);
std::vector<Installed> installed_all();
// Writes dir/kernel.json atomically.
void save(const Installed& k);

// Finds vmlinuz, modules and config for `release` under `root` by the
// catalogue's [files] rules; "" for what is not there.
void locate_files(const std::string& root, const std::string& release, Installed& k);
// The kernel releases under `root` (directories under {usr/,}lib/modules/).
std::vector<std::string> releases_under(const std::string& root);

// The catalogue's requirements the kernel lacks: from its config when it has
// one, else from modules.builtin and modules.dep.
std::vector<Requirement> missing_requirements(const Installed& k);
// "CONFIG_FUSE_FS (faults through the FUSE block device)"
std::string describe(const Requirement& r);

}  // namespace syncprobe::vm
