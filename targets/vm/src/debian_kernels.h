#pragma once
// Debian's kernels: private package lists for the catalogue's suites, which
// package of a series is newest, fetching it, and `vm add` of a kernel the
// user built. The system's apt configuration is never read or changed: every
// apt call gets its own sources.list, lists, cache and dpkg status file
// under <cache>/vm/apt.
#include <iosfwd>
#include <string>
#include <vector>

#include "kernel_catalogue.h"

namespace syncprobe::vm {

struct Package {
  std::string name, version, suite;
};

// What a series resolves to today.
struct Resolution {
  bool ok = false;
  std::string release;            // "6.12.117+deb13-amd64"
  std::vector<Package> packages;  // the kernel package first
  std::string why_not;            // when !ok: what is missing, and where it was looked for
};

// Downloads the private package lists when they are missing, older than a
// day, or `force`; false and `error` when apt-get update failed.
bool update_lists(bool force, std::string& error);
// True when the private lists have been downloaded at least once.
bool have_lists();

// Resolves `s` against the private lists (which must exist).
Resolution resolve(const SeriesEntry& s);

// Fetches the newest package of `series` into the cache (nothing when the
// same packages are there already). 0, or 1 with the reason on `err`.
int fetch(const std::string& series, std::ostream& out, std::ostream& err);

// `vm add NAME`: a kernel from a vmlinuz/bzImage and a modules tree
// (`make modules_install INSTALL_MOD_PATH=DIR`), or from .deb files.
// `config` may be "" (then searched in the tree, or modules checked instead).
// 0, 1 on failure, 2 on bad input; missing config options are named on `err`
// and fail the add unless `force`.
struct AddRequest {
  std::string name;
  std::string kernel, modules_dir, config;
  std::vector<std::string> debs;
  bool force = false;
};
int add(const AddRequest& req, std::ostream& out, std::ostream& err);

// dpkg --compare-versions a lt b.
bool version_less(const std::string& a, const std::string& b);

}  // namespace syncprobe::vm
