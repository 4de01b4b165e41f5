#pragma once
// A Process that forwards every call to another one, so that a decorator
// (a process-level injector, a counter) overrides only the calls it cares
// about, as LevelDB's EnvWrapper does.
#include "syncprobe/storage.h"

namespace syncprobe {

class ForwardingProcess : public Process {
 public:
  explicit ForwardingProcess(Process& target) : target_(target) {}

  SysResult open(const std::string& path, const OpenFlags& f) override { return seen(target_.open(path, f)); }
  SysResult close(int fd) override { return seen(target_.close(fd)); }
  SysResult pwrite(int fd, std::span<const std::byte> d, uint64_t o) override {
    return seen(target_.pwrite(fd, d, o));
  }
  SysResult pread(int fd, std::span<std::byte> d, uint64_t o) override { return seen(target_.pread(fd, d, o)); }
  SysResult fsync(int fd) override { return seen(target_.fsync(fd)); }
  SysResult fdatasync(int fd) override { return seen(target_.fdatasync(fd)); }
  SysResult sync_file_range(int fd, uint64_t o, uint64_t l, const SyncFileRangeFlags& f) override {
    return seen(target_.sync_file_range(fd, o, l, f));
  }
  SysResult msync_write(int fd, std::span<const std::byte> d, uint64_t o) override {
    return seen(target_.msync_write(fd, d, o));
  }
  MappedRead mmap_read(int fd, std::span<std::byte> d, uint64_t o) override {
    MappedRead m = target_.mmap_read(fd, d, o);
    m.result = seen(m.result);
    return m;
  }
  SysResult syncfs(int fd) override { return seen(target_.syncfs(fd)); }
  SysResult sync() override { return seen(target_.sync()); }
  SysResult stat(const std::string& path) override { return seen(target_.stat(path)); }
  SysResult rename(const std::string& a, const std::string& b) override { return seen(target_.rename(a, b)); }
  SysResult unlink(const std::string& path) override { return seen(target_.unlink(path)); }

 protected:
  // Every forwarded result passes through here; the default returns it unchanged.
  virtual SysResult seen(SysResult r) { return r; }
  Process& target() { return target_; }

 private:
  Process& target_;
};

}  // namespace syncprobe
