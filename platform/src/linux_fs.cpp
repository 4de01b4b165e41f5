#include "syncprobe/linux_fs.h"

#include <fcntl.h>
#include <linux/fiemap.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <chrono>
#include <cstring>
#include <ctime>

namespace syncprobe {

bool fiemap_extents(const std::string& path, std::vector<ByteRange>& out, std::string& why) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    why = path + ": " + std::strerror(errno);
    return false;
  }
  constexpr int kMax = 256;
  std::vector<char> buf(sizeof(fiemap) + kMax * sizeof(fiemap_extent));
  auto* fm = reinterpret_cast<fiemap*>(buf.data());
  fm->fm_start = 0;
  fm->fm_length = FIEMAP_MAX_OFFSET;
  fm->fm_extent_count = kMax;
  const int r = ioctl(fd, FS_IOC_FIEMAP, fm);
  const int err = errno;
  ::close(fd);
  if (r < 0) {
    why = "FIEMAP on " + path + ": " + std::strerror(err);
    return false;
  }
  for (uint32_t i = 0; i < fm->fm_mapped_extents; ++i) {
    const fiemap_extent& e = fm->fm_extents[i];
    if (e.fe_flags & (FIEMAP_EXTENT_UNKNOWN | FIEMAP_EXTENT_DELALLOC)) continue;
    out.push_back({e.fe_physical, e.fe_length});
  }
  return true;
}

SysResult drop_caches_all() {
  int fd = ::open("/proc/sys/vm/drop_caches", O_WRONLY | O_CLOEXEC);
  if (fd < 0) return SysResult::failure(errno);
  ssize_t n = ::write(fd, "3", 1);
  const int err = errno;
  ::close(fd);
  return n == 1 ? SysResult::success() : SysResult::failure(err);
}

std::vector<std::string> mounts_under(const std::string& dir) {
  std::vector<std::string> out;
  std::ifstream in("/proc/self/mountinfo");
  for (std::string line; std::getline(in, line);) {
    std::istringstream fields(line);
    std::string id, parent, devno, root, point;
    fields >> id >> parent >> devno >> root >> point;
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

std::string kernel_release() {
  utsname u{};
  uname(&u);
  return u.release;
}

std::string now_iso8601() {
  const auto t = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
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
