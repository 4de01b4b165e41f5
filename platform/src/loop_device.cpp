#include "syncprobe/loop_device.h"

#include <fcntl.h>
#include <linux/loop.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

namespace syncprobe {
namespace {

// LOOP_CONFIGURE (Linux 5.8) sets the file and the flags in one step; older
// kernels need LOOP_SET_FD then LOOP_SET_STATUS64.
int configure(int loop, int backing, uint32_t flags) {
  loop_config cfg{};
  cfg.fd = uint32_t(backing);
  cfg.block_size = 0;
  cfg.info.lo_flags = flags;
  if (ioctl(loop, LOOP_CONFIGURE, &cfg) == 0) return 0;
  if (errno != EINVAL && errno != ENOTTY) return -1;
  if (flags & LO_FLAGS_DIRECT_IO) return -1;  // the caller retries without
  if (ioctl(loop, LOOP_SET_FD, backing) != 0) return -1;
  loop_info64 info{};
  info.lo_flags = flags;
  if (ioctl(loop, LOOP_SET_STATUS64, &info) != 0) {
    const int err = errno;
    ioctl(loop, LOOP_CLR_FD, 0);
    errno = err;
    return -1;
  }
  return 0;
}

}  // namespace

LoopDevice::LoopDevice(const std::string& file) {
  const int backing = ::open(file.c_str(), O_RDWR | O_CLOEXEC | O_NOFOLLOW);
  if (backing < 0) throw std::runtime_error("loop device: cannot open " + file + ": " + std::strerror(errno));
  const int control = ::open("/dev/loop-control", O_RDWR | O_CLOEXEC);
  if (control < 0) {
    const int err = errno;
    ::close(backing);
    throw std::runtime_error(std::string("loop device: /dev/loop-control: ") + std::strerror(err));
  }
  std::string error;
  for (int attempt = 0; attempt < 20 && fd_ < 0; ++attempt) {
    const int n = ioctl(control, LOOP_CTL_GET_FREE);
    if (n < 0) {
      error = std::string("LOOP_CTL_GET_FREE: ") + std::strerror(errno);
      break;
    }
    const std::string dev = "/dev/loop" + std::to_string(n);
    const int fd = ::open(dev.c_str(), O_RDWR | O_CLOEXEC);
    if (fd < 0) {
      error = dev + ": " + std::strerror(errno);
      continue;
    }
    int r = configure(fd, backing, LO_FLAGS_AUTOCLEAR | LO_FLAGS_DIRECT_IO);
    bool direct = r == 0;
    if (r != 0 && errno != EBUSY) {
      r = configure(fd, backing, LO_FLAGS_AUTOCLEAR);
      direct = false;
    }
    if (r != 0) {
      error = dev + ": " + std::strerror(errno);
      ::close(fd);
      continue;  // EBUSY: another process took it between GET_FREE and now
    }
    fd_ = fd;
    path_ = dev;
    direct_io_ = direct;
  }
  ::close(control);
  ::close(backing);  // the loop device holds its own reference
  if (fd_ < 0) throw std::runtime_error("loop device over " + file + ": " + error);
}

LoopDevice::~LoopDevice() { close(); }

void LoopDevice::close() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

}  // namespace syncprobe
