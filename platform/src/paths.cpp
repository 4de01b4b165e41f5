#include "syncprobe/paths.h"

#include <unistd.h>

#include <cctype>
#include <cstdlib>
#include <filesystem>

namespace syncprobe {
namespace {

namespace fs = std::filesystem;

std::string env(const char* name) {
  const char* v = std::getenv(name);
  return v && *v ? v : "";
}

}  // namespace

std::string self_dir() {
  std::error_code ec;
  const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  return ec ? "" : exe.parent_path().string();
}

std::string share_dir() {
  if (auto s = env("SYNCPROBE_SHARE"); !s.empty()) return s;
  return (fs::path(self_dir()).parent_path() / "share" / "syncprobe").string();
}

std::string default_cases_dir() {
  if (auto s = env("SYNCPROBE_CASES"); !s.empty()) return s;
  std::error_code ec;  // the build tree links share/syncprobe/cases to the sources: name the real place
  const fs::path p = fs::weakly_canonical(share_dir() + "/cases", ec);
  return ec ? share_dir() + "/cases" : p.string();
}

std::string data_dir() {
  if (auto s = env("SYNCPROBE_DATA"); !s.empty()) return s;
  std::error_code ec;
  const fs::path p = fs::weakly_canonical(share_dir() + "/data", ec);
  return ec ? share_dir() + "/data" : p.string();
}

std::string helper_program(const std::string& name) {
  std::string var = "SYNCPROBE_";
  for (char c : name.substr(name.rfind('-') + 1))
    var += static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  if (auto s = env(var.c_str()); !s.empty()) return s;
  const fs::path p = fs::path(self_dir()).parent_path() / "libexec" / "syncprobe" / name;
  return access(p.c_str(), X_OK) == 0 ? p.string() : "";
}

std::string cache_dir() {
  if (auto s = env("SYNCPROBE_CACHE"); !s.empty()) return s;
  if (auto x = env("XDG_CACHE_HOME"); !x.empty()) return x + "/syncprobe";
  if (auto h = env("HOME"); !h.empty()) return h + "/.cache/syncprobe";
  return "/var/cache/syncprobe";
}

}  // namespace syncprobe
