#include "syncprobe/clock.h"
#include "syncprobe/linux_fs.h"

#include <fcntl.h>
#include <linux/fiemap.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <cerrno>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <chrono>
#include <cstring>
#include <ctime>

namespace syncprobe {

SysResult drop_caches_all() {
  int fd = ::open("/proc/sys/vm/drop_caches", O_WRONLY | O_CLOEXEC);
  if (fd < 0) return SysResult::failure(errno);
  ssize_t n = ::write(fd, "3", 1);
  const int err = errno;
  ::close(fd);
  return n == 1 ? SysResult::success() : SysResult::failure(err);
}

namespace {

// mountinfo writes space, tab, newline and backslash as \ooo.
std::string unescape_mount_path(const std::string& s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 3 < s.size() && std::isdigit(static_cast<unsigned char>(s[i + 1])) &&
        std::isdigit(static_cast<unsigned char>(s[i + 2])) && std::isdigit(static_cast<unsigned char>(s[i + 3]))) {
      out += static_cast<char>(std::stoi(s.substr(i + 1, 3), nullptr, 8));
      i += 3;
    } else {
      out += s[i];
    }
  }
  return out;
}

}  // namespace

std::vector<std::string> mounts_under(const std::string& dir) {
  std::vector<std::string> out;
  std::ifstream in("/proc/self/mountinfo");
  for (std::string line; std::getline(in, line);) {
    std::istringstream fields(line);
    std::string id, parent, devno, root, point;
    fields >> id >> parent >> devno >> root >> point;
    point = unescape_mount_path(point);
    if (point == dir || point.rfind(dir + "/", 0) == 0) out.push_back(point);
  }
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.size() > b.size(); });
  return out;
}

bool remove_tree_if_unmounted(const std::string& dir) {
  if (!mounts_under(dir).empty()) return false;
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
  return !ec;
}

uint64_t process_start_time(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string stat;
  std::getline(in, stat);
  const auto close = stat.rfind(')');  // the command name may hold spaces and parentheses
  if (close == std::string::npos) return 0;
  std::istringstream rest(stat.substr(close + 2));
  std::string field;
  for (int i = 3; i <= 22 && rest >> field; ++i) {
    if (i == 3 && (field == "Z" || field == "X")) return 0;  // dead, not yet reaped
    if (i == 22) return std::strtoull(field.c_str(), nullptr, 10);
  }
  return 0;
}

bool process_is(pid_t pid, uint64_t start) {
  return pid > 0 && start != 0 && process_start_time(pid) == start;
}

std::string kernel_release() {
  utsname u{};
  uname(&u);
  return u.release;
}

KernelLog::KernelLog() {
  fd_ = ::open("/dev/kmsg", O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd_ >= 0) lseek(fd_, 0, SEEK_END);
}

KernelLog::~KernelLog() {
  if (fd_ >= 0) ::close(fd_);
}

std::vector<std::string> KernelLog::drain(size_t max) {
  std::vector<std::string> lines;
  if (fd_ < 0) return lines;
  char buf[8192];
  for (;;) {
    ssize_t n = ::read(fd_, buf, sizeof buf);
    if (n < 0 && errno == EPIPE) continue;  // records overwritten meanwhile
    if (n <= 0) break;
    std::string rec(buf, size_t(n));
    const auto semi = rec.find(';');
    std::string msg = semi == std::string::npos ? rec : rec.substr(semi + 1);
    if (auto nl = msg.find('\n'); nl != std::string::npos) msg.resize(nl);
    if (lines.size() < max) lines.push_back(msg);
  }
  return lines;
}

}  // namespace syncprobe
