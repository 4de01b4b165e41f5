#include "syncprobe/blockdev_storage.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <vector>

#include "syncprobe/blockdev_injector.h"
#include "syncprobe/command.h"
#include "syncprobe/loop_device.h"
#include "syncprobe/scratch.h"

namespace syncprobe {
namespace {

using namespace std::chrono_literals;

// A new file (never through a symbolic link, never an existing one).
int create_new(const std::string& path) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0) throw std::runtime_error("cannot create " + path + ": " + std::strerror(errno));
  return fd;
}


}  // namespace

void create_sparse(const std::string& path, uint64_t bytes) {
  const int fd = create_new(path);
  const int r = ftruncate(fd, off_t(bytes));
  const int err = errno;
  ::close(fd);
  if (r != 0) throw std::runtime_error("cannot size " + path + ": " + std::strerror(err));
}

void copy_sparse(const std::string& src, const std::string& dst) {
  const int in = ::open(src.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  if (in < 0) throw std::runtime_error("cannot open " + src + ": " + std::strerror(errno));
  const int out = create_new(dst);
  struct stat st{};
  fstat(in, &st);
  std::string error;
  std::vector<char> buf(1 << 20);
  for (off_t pos = 0; error.empty();) {
    const off_t data = lseek(in, pos, SEEK_DATA);
    if (data < 0) break;  // ENXIO: only a hole is left
    off_t hole = lseek(in, data, SEEK_HOLE);
    if (hole < 0) hole = st.st_size;
    for (off_t at = data; at < hole && error.empty();) {
      const ssize_t n = ::pread(in, buf.data(), size_t(std::min<off_t>(off_t(buf.size()), hole - at)), at);
      if (n <= 0 || ::pwrite(out, buf.data(), size_t(n), at) != n)
        error = std::string("copying ") + src + ": " + std::strerror(n < 0 ? errno : EIO);
      else at += n;
    }
    pos = hole;
  }
  if (error.empty() && ftruncate(out, st.st_size) != 0) error = std::string("sizing ") + dst + ": " + std::strerror(errno);
  ::close(in);
  if (::close(out) != 0 && error.empty()) error = std::string("writing ") + dst + ": " + std::strerror(errno);
  if (!error.empty()) throw std::runtime_error(error);
}

void make_fs_image(const FilesystemSpec& fs, const std::string& path, uint64_t bytes) {
  create_sparse(path, bytes);
  const auto argv = fs.mkfs_argv(path);
  CommandResult r = run_program(argv, 300s);
  if (!r.ok()) throw std::runtime_error("harness: " + r.describe(argv));
}

std::unique_ptr<MountedStorage> make_blockdev_storage(const BlockdevStorageOptions& o, Ledger& ledger,
                                                      std::unique_ptr<Injector> process_injector) {
  const std::string image = o.dir + "/disk.img";
  copy_sparse(o.template_image, image);
  StorageParts parts;
  auto injector = std::make_unique<BlockdevInjector>(
      BlockdevOptions{o.dir, image, kBlockdevImageBytes, o.step_timeout}, ledger);
  parts.loop = std::make_unique<LoopDevice>(injector->device_file());
  parts.device_injector = std::move(injector);
  parts.device_bytes = kBlockdevImageBytes;
  parts.app = o.app;
  if (process_injector) parts.process_injectors.push_back(std::move(process_injector));
  make_private_dir(o.dir + "/mnt", false);
  parts.fs = std::make_unique<Filesystem>(o.fs, parts.loop->path(), o.dir + "/mnt", o.step_timeout, ledger);
  // Setup is not a step: a slow first mount (log recovery) gets more time.
  SysResult m = parts.fs->mount(o.step_timeout + 60s);
  if (!m.ok()) throw std::runtime_error("harness: mount failed: " + parts.fs->mount_error());
  nlohmann::json env = o.environment;
  env["image_bytes"] = kBlockdevImageBytes;
  if (!parts.process_injectors.empty()) env["process_injector"] = parts.process_injectors.front()->layer();
  return std::make_unique<MountedStorage>(std::move(parts), env, o.step_timeout);
}

std::set<std::string> blockdev_storage_capabilities(const FilesystemSpec& fs) {
  std::set<std::string> caps = {
      "fault",       "fault:write",    "fault:read",      "fault:flush", "fault:drop",
      "fault:hang",  "fault:data",     "fault:metadata",  "fault:device", "thin-pool",
      "fault:errno", "drop-caches", "writeback",      "remount",         "power-cut",   "read-back",
      "second-process", "sync_file_range", "mmap",       "mmap-read",   "direct-io",
      "metadata",    "syncfs"};
  if (!fs.shutdown.empty()) caps.insert("shutdown");
  if (fs.fs == "ext4" || fs.fs == "xfs") caps.insert({"fault:free", "fault:journal"});
  return caps;
}

std::string blockdev_lack_reason(const FilesystemSpec& fs, const std::string& capability) {
  if (capability == "shutdown" && fs.shutdown.empty())
    return fs.fs + " has no shutdown ioctl here (btrfs on 6.18 answers XFS_IOC_GOINGDOWN with "
                   "ENOTTY: docs/probes/shutdown.sh)";
  if (capability == "fault:free" && fs.fs == "btrfs")
    return "btrfs has no FS_IOC_GETFSMAP (ENOTTY): its free space cannot be located";
  if (capability == "fault:journal" && fs.fs == "btrfs")
    return "btrfs has no journal: its log tree is copy-on-write metadata";
  return "";
}

}  // namespace syncprobe
