#include "syncprobe/bounded_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace syncprobe {

BoundedRead read_bounded_file(const std::string& path, uint64_t max_bytes) {
  BoundedRead r;
  const int fd = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) {
    r.problem = BoundedRead::Problem::open;
    r.why = std::string("cannot open: ") + std::strerror(errno);
    return r;
  }
  struct stat st{};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    const char* kind = S_ISFIFO(st.st_mode) ? "a FIFO" : S_ISCHR(st.st_mode) ? "a character device"
                       : S_ISBLK(st.st_mode) ? "a block device" : S_ISDIR(st.st_mode) ? "a directory"
                       : S_ISSOCK(st.st_mode) ? "a socket" : "not a file";
    ::close(fd);
    r.problem = BoundedRead::Problem::not_regular;
    r.why = std::string("not a regular file (") + kind + ")";
    return r;
  }
  if (uint64_t(st.st_size) > max_bytes) {
    ::close(fd);
    r.problem = BoundedRead::Problem::too_large;
    r.why = "larger than " + std::to_string(max_bytes) + " bytes (" + std::to_string(st.st_size) + " bytes)";
    return r;
  }
  r.text.resize(size_t(st.st_size));
  size_t done = 0;
  while (done < r.text.size()) {
    const ssize_t n = ::read(fd, r.text.data() + done, r.text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      r.problem = BoundedRead::Problem::read;
      r.why = std::string("read failed: ") + std::strerror(errno);
      ::close(fd);
      return r;
    }
    if (n == 0) break;  // shrank while read: what is there
    done += size_t(n);
  }
  ::close(fd);
  r.text.resize(done);
  r.ok = true;
  return r;
}

}  // namespace syncprobe
