#pragma once
// A loop device over a file, set up with the kernel's autoclear flag: the
// device detaches itself when its last user closes it. The runner holds it
// open while the case runs (so that unmounting for a remount does not lose
// it); after that, or when the runner is killed, the kernel detaches it as
// soon as nothing else (a mount) holds it. No loop device can leak.
#include <string>

namespace syncprobe {

class LoopDevice {
 public:
  // Attaches a free loop device to `file`, with direct I/O when the file
  // allows it. Throws with a message naming the file on failure.
  explicit LoopDevice(const std::string& file);
  ~LoopDevice();  // closes the runner's hold: the kernel detaches it once unused
  LoopDevice(const LoopDevice&) = delete;
  LoopDevice& operator=(const LoopDevice&) = delete;

  const std::string& path() const { return path_; }  // /dev/loopN
  bool direct_io() const { return direct_io_; }
  // Lets go of the device now (the destructor's job, for an orderly teardown).
  void close();

 private:
  std::string path_;
  int fd_ = -1;
  bool direct_io_ = false;
};

}  // namespace syncprobe
