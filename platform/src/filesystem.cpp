#include "syncprobe/filesystem.h"

#include <fcntl.h>
#include <linux/fiemap.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "syncprobe/command.h"
#include "syncprobe/linux_fs.h"
#include "syncprobe/posix_process.h"

namespace syncprobe {

using namespace std::chrono_literals;

Filesystem::Filesystem(FilesystemSpec spec, std::string device, std::string mountpoint,
                       std::chrono::milliseconds step_timeout, Ledger& ledger)
    : spec_(std::move(spec)),
      device_(std::move(device)),
      mountpoint_(std::move(mountpoint)),
      timeout_(step_timeout),
      ledger_(ledger) {
  record_.kind = Resource::Kind::mount;
  record_.what = mountpoint_;
  ledger_.acquire(record_);
}

Filesystem::~Filesystem() {
  if (mounted()) {
    SysResult r = unmount();
    if (!r.ok()) detach();
  }
  if (!mounted()) ledger_.release(record_);
}

bool Filesystem::mounted() const {
  for (const auto& m : mounts_under(mountpoint_))
    if (m == mountpoint_) return true;
  return false;
}

SysResult Filesystem::mount(std::chrono::milliseconds timeout) {
  std::vector<std::string> argv = {"mount", "-t", spec_.fs};
  if (!spec_.options.empty()) {
    argv.push_back("-o");
    argv.push_back(spec_.options);
  }
  argv.push_back(device_);
  argv.push_back(mountpoint_);
  CommandResult r = run_program(argv, timeout);
  if (r.timed_out) {
    mount_error_ = r.describe(argv);
    return SysResult::hang();
  }
  if (!r.ok()) {
    // mount(8) refused: syncprobe's machinery failed, whatever the kernel's
    // reason (its log says it); never an errno a case could take for a call's.
    mount_error_ = r.describe(argv);
    return SysResult::harness_failure("mount(8)");
  }
  return SysResult::success();
}

SysResult Filesystem::unmount() {
  if (!mounted()) return SysResult::success();
  const std::vector<std::string> argv = {"umount", mountpoint_};
  CommandResult r = run_program(argv, timeout_);
  if (r.timed_out) return SysResult::hang();
  if (!r.ok()) return mounted() ? SysResult::harness_failure("umount(8)") : SysResult::success();
  return SysResult::success();
}

bool Filesystem::detach() {
  if (!mounted()) return true;
  CommandResult r = run_program({"umount", "-l", mountpoint_}, 30s);
  (void)r;  // whether it worked is read from the mount table below
  return !mounted();
}

SysResult Filesystem::remount() {
  SysResult u = unmount();
  if (!u.ok()) return u;
  return mount();
}

ReadBack Filesystem::read_back(const std::string& path, uint64_t offset, uint64_t length) {
  ReadBack rb;
  rb.result = remount();
  if (!rb.result.ok()) return rb;
  PosixProcess reader(mountpoint_, timeout_);
  OpenFlags flags;
  flags.create = false;
  flags.read_only = true;
  SysResult fd = reader.open(path, flags);
  if (!fd.ok()) {
    rb.result = fd;
    return rb;
  }
  rb.data.resize(length);
  rb.result = reader.pread(int(fd.ret), rb.data, offset);
  rb.data.resize(rb.result.ok() ? size_t(rb.result.ret) : 0);
  if (!rb.result.hung) {
    SysResult c = reader.close(int(fd.ret));
    if (!c.ok() && rb.result.ok()) rb.result = c;
  }
  return rb;
}

SysResult Filesystem::writeback() {
  PosixProcess worker(mountpoint_, timeout_);
  OpenFlags flags;
  flags.directory = true;
  flags.create = false;
  flags.read_only = true;
  SysResult fd = worker.open(".", flags);
  if (!fd.ok()) return fd;
  SysResult r = worker.syncfs(int(fd.ret));
  if (r.hung) return r;
  // Background writeback tells nobody: the error is left for the case's
  // descriptors (and recorded in the step's detail by the caller if wanted).
  SysResult c = worker.close(int(fd.ret));
  return c.hung ? c : SysResult::success();
}

bool Filesystem::data_ranges(const std::string& path, std::vector<ByteRange>& out,
                             std::string& why) const {
  return fiemap_extents(mountpoint_ + "/" + path, out, why);
}

bool fiemap_extents(const std::string& full, std::vector<ByteRange>& out, std::string& why) {
  int fd = ::open(full.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) {
    why = full + ": " + std::strerror(errno);
    return false;
  }
  // Read the map in batches, from the end of the last extent seen, until
  // the kernel flags the last one or has nothing more.
  constexpr uint32_t kBatch = 256;
  std::vector<char> buf(sizeof(fiemap) + kBatch * sizeof(fiemap_extent));
  uint64_t start = 0;
  for (;;) {
    std::memset(buf.data(), 0, buf.size());
    auto* fm = reinterpret_cast<fiemap*>(buf.data());
    fm->fm_start = start;
    fm->fm_length = FIEMAP_MAX_OFFSET - start;
    fm->fm_extent_count = kBatch;
    if (ioctl(fd, FS_IOC_FIEMAP, fm) < 0) {
      why = "FIEMAP on " + full + ": " + std::strerror(errno);
      ::close(fd);
      return false;
    }
    if (fm->fm_mapped_extents == 0) break;
    bool last = false;
    for (uint32_t i = 0; i < fm->fm_mapped_extents; ++i) {
      const fiemap_extent& e = fm->fm_extents[i];
      if (!(e.fe_flags & (FIEMAP_EXTENT_UNKNOWN | FIEMAP_EXTENT_DELALLOC)))
        out.push_back({e.fe_physical, e.fe_length});
      start = e.fe_logical + e.fe_length;
      last = last || (e.fe_flags & FIEMAP_EXTENT_LAST);
    }
    if (last || fm->fm_mapped_extents < kBatch) break;
  }
  ::close(fd);
  return true;
}

}  // namespace syncprobe
