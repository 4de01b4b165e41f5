#pragma once
// A unix socket's address for a path of any length: sun_path holds 107
// bytes, and a run's scratch directories can be deeper. A longer path is
// reached through its directory, opened O_PATH, as /proc/self/fd/N/NAME.
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <string>

namespace syncprobe::refmount_detail {

// Fills `addr` for `path`. `dir_fd` receives the directory's descriptor when
// one was needed (-1 otherwise): keep it open until bind/connect returned,
// then close it. False, with errno set, when the directory cannot be opened.
inline bool socket_address(const std::string& path, sockaddr_un& addr, int& dir_fd) {
  addr = sockaddr_un{};
  addr.sun_family = AF_UNIX;
  dir_fd = -1;
  std::string use = path;
  if (path.size() >= sizeof addr.sun_path) {
    const auto slash = path.rfind('/');
    const std::string dir = slash == std::string::npos ? "." : path.substr(0, slash);
    dir_fd = ::open(dir.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (dir_fd < 0) return false;
    use = "/proc/self/fd/" + std::to_string(dir_fd) + "/" + path.substr(slash + 1);
    if (use.size() >= sizeof addr.sun_path) {
      ::close(dir_fd);
      dir_fd = -1;
      errno = ENAMETOOLONG;
      return false;
    }
  }
  std::memcpy(addr.sun_path, use.c_str(), use.size() + 1);
  return true;
}

}  // namespace syncprobe::refmount_detail
