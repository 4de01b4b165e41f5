#pragma once
// A small rig for driving the reference file system as cases do: named
// processes with descriptor tables over one FileSystem, and tagged data.
#include <gtest/gtest.h>

#include <cerrno>
#include <map>
#include <memory>
#include <string>

#include "syncprobe/ref/file_system.h"
#include "syncprobe/tag.h"

namespace syncprobe::ref::testing {

// One process's descriptor numbers over the shared file system.
class Proc {
 public:
  explicit Proc(FileSystem& fs) : fs_(fs) {}
  // "@device" is the raw simulated device, as cases name it.
  SysResult open(const std::string& path, const OpenFlags& flags = {}) {
    Handle h;
    SysResult r = path == "@device" ? fs_.open_device(flags, h) : fs_.open(path, flags, h);
    if (!r.ok()) return r;
    fds_[next_] = h;
    return SysResult::success(next_++);
  }
  SysResult close(int fd) {
    SysResult r = fs_.close(handle(fd));
    if (r.ok()) fds_.erase(fd);
    return r;
  }
  SysResult pwrite(int fd, std::span<const std::byte> d, uint64_t off) { return fs_.pwrite(handle(fd), d, off); }
  SysResult pread(int fd, std::span<std::byte> d, uint64_t off) { return fs_.pread(handle(fd), d, off); }
  SysResult fsync(int fd) { return fs_.fsync(handle(fd), false); }
  SysResult fdatasync(int fd) { return fs_.fsync(handle(fd), true); }
  SysResult syncfs(int fd) { return fs_.syncfs(handle(fd)); }
  SysResult sync_file_range(int fd, uint64_t off, uint64_t len, SyncRangeFlags f) {
    return fs_.sync_file_range(handle(fd), off, len, f);
  }
  SysResult msync_write(int fd, std::span<const std::byte> d, uint64_t off) {
    return fs_.msync_write(handle(fd), d, off);
  }
  MappedRead mmap_read(int fd, std::span<std::byte> out, uint64_t off) {
    return fs_.mmap_read(handle(fd), out, off);
  }
  SysResult sync() { return fs_.sync(); }
  SysResult stat(const std::string& path) {
    Attr a;
    SysResult r = fs_.getattr(path, a);
    return r.ok() ? SysResult::success(int64_t(a.size)) : r;
  }
  Handle handle(int fd) const {
    auto it = fds_.find(fd);
    return it == fds_.end() ? Handle{} : it->second;
  }

 private:
  FileSystem& fs_;
  std::map<int, Handle> fds_;
  int next_ = 3;
};

struct Rig {
  explicit Rig(const std::string& policy) : fs(make_policy(policy)) {}

  Proc& proc(const std::string& name = "a") {
    auto& p = procs[name];
    if (!p) p = std::make_unique<Proc>(fs);
    return *p;
  }
  int open(const std::string& file = "f", const std::string& p = "a", OpenFlags flags = {}) {
    SysResult r = proc(p).open(file, flags);
    EXPECT_TRUE(r.ok()) << "open " << file;
    return int(r.ret);
  }
  SysResult write(int fd, const std::string& tag, uint64_t off, uint64_t len,
                  const std::string& p = "a") {
    auto data = make_tagged(tag, off, len);
    return proc(p).pwrite(fd, data, off);
  }
  // The tag a read returns ("A", "old", "zero", "mixed"...), or "-1 <errno>".
  std::string read(int fd, uint64_t off, uint64_t len, const std::string& p = "a") {
    std::vector<std::byte> buf(len);
    SysResult r = proc(p).pread(fd, buf, off);
    if (!r.ok()) return "-1 " + std::to_string(r.err);
    return classify_tagged(std::span(buf).first(size_t(r.ret)), off).tag;
  }
  // What stable storage holds, after closing everything and remounting.
  std::string disk(const std::string& file, uint64_t off, uint64_t len) {
    ReadBack rb = fs.read_back(file, off, len);
    procs.clear();
    if (!rb.result.ok()) return "-1 " + std::to_string(rb.result.err);
    return classify_tagged(rb.data, off).tag;
  }
  // 0 or the errno of fsync.
  int fsync(int fd, const std::string& p = "a") {
    SysResult r = proc(p).fsync(fd);
    EXPECT_FALSE(r.hung);
    return r.ok() ? 0 : r.err;
  }
  void fail(FaultPlace::Where where, const std::string& file, int err,
            std::optional<uint32_t> count = std::nullopt) {
    FaultRule rule, got;
    rule.err = err;
    rule.count = count;
    ASSERT_TRUE(fs.fault({where, file}, rule, got).ok());
  }
  void fail_data(const std::string& file, int err, std::optional<uint32_t> count = std::nullopt) {
    fail(FaultPlace::Where::data, file, err, count);
  }
  void heal() { ASSERT_TRUE(fs.heal().ok()); }
  bool remount() { return fs.remount().ok(); }
  void power_cut() {
    ASSERT_TRUE(fs.power_cut().ok());
    procs.clear();  // every description went with the power
  }

  FileSystem fs;
  std::map<std::string, std::unique_ptr<Proc>> procs;
};

}  // namespace syncprobe::ref::testing
