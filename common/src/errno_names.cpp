// errno names from the C library (strerrorname_np), so every errno the
// kernel can return has its name, with a reverse map built once from it.
#include "syncprobe/errno_names.h"

#include <cerrno>
#include <charconv>
#include <cstring>
#include <map>

#include "syncprobe/sysresult.h"

namespace syncprobe {
namespace {

// Linux's errno values are below 4096 (MAX_ERRNO); the C library names them.
constexpr int kMaxErrno = 4095;

const std::map<std::string, int, std::less<>>& names_to_values() {
  static const std::map<std::string, int, std::less<>> m = [] {
    std::map<std::string, int, std::less<>> out;
    for (int e = 1; e <= kMaxErrno; ++e)
      if (const char* n = strerrorname_np(e)) out.emplace(n, e);
    // Aliases the C library names by their twin (EAGAIN, EOPNOTSUPP, EDEADLK).
    out.emplace("EWOULDBLOCK", EWOULDBLOCK);
    out.emplace("ENOTSUP", ENOTSUP);
    out.emplace("EDEADLOCK", EDEADLOCK);
    return out;
  }();
  return m;
}

}  // namespace

std::string errno_name(int err) {
  if (err == 0) return "";
  if (err > 0 && err <= kMaxErrno)
    if (const char* n = strerrorname_np(err)) return n;
  return std::to_string(err);
}

std::optional<int> errno_from_name(std::string_view name) {
  const auto& m = names_to_values();
  if (auto it = m.find(name); it != m.end()) return it->second;
  int value = 0;
  const auto [end, ec] = std::from_chars(name.data(), name.data() + name.size(), value);
  if (ec == std::errc() && end == name.data() + name.size() && value != 0) return value;
  return std::nullopt;
}

std::string describe(const SysResult& r) {
  if (r.hung) return "hung";
  if (r.harness) return std::string("harness failure: ") + r.harness;
  if (r.ret < 0) return std::to_string(r.ret) + " " + errno_name(r.err);
  return std::to_string(r.ret);
}

}  // namespace syncprobe
