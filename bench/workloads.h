#pragma once
// What the microbenchmarks time. A Workload sets itself up in its
// constructor (untimed), may prepare() before each operation (untimed: for
// example re-dirtying the pages an fsync cleans) and times timed_op(). The
// same objects run under Google Benchmark and, one operation at a time,
// under callgrind (--profile), so both measure exactly the same code.
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "syncprobe/ref/errseq.h"
#include "syncprobe/ref/file_system.h"

namespace syncprobe::bench {

inline constexpr size_t kSpan = 64ull << 20;  // writes and reads cycle over 64 MiB
inline constexpr size_t kPage = 4096;

class Workload {
 public:
  virtual ~Workload() = default;
  // Empty when set up; else why the workload cannot run here.
  const std::string& error() const { return error_; }
  virtual bool prepares() const { return false; }
  virtual void prepare() {}
  virtual void timed_op() = 0;

 protected:
  std::string error_;
};

// 4 KiB-aligned memory, as the cache's frames are: memcpy's best case.
class Aligned {
 public:
  explicit Aligned(size_t bytes, int fill) : bytes_(bytes) {
    void* p = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) std::abort();
    p_ = static_cast<std::byte*>(p);
    std::memset(p_, fill, bytes);  // faulted in before timing
  }
  ~Aligned() { ::munmap(p_, bytes_); }
  Aligned(const Aligned&) = delete;
  Aligned& operator=(const Aligned&) = delete;
  std::byte* data() const { return p_; }
  std::span<std::byte> span(size_t off, size_t len) const { return {p_ + off, len}; }

 private:
  size_t bytes_;
  std::byte* p_;
};

// One reference file system with one file open: what the runner's adapter
// and the FUSE mount call, without either on top.
class RefFile {
 public:
  explicit RefFile(const std::string& policy) : fs_(ref::make_policy(policy)) {
    check(fs_.open("f", ref::OpenFlags{}, h_));
  }
  ref::FileSystem& fs() { return fs_; }
  ref::Handle h() const { return h_; }
  // Writes pages [0, pages) with `buf` (the setups; results are checked by the unit tests).
  void write_pages(uint64_t pages, std::span<const std::byte> buf) {
    for (uint64_t i = 0; i < pages; ++i) check(fs_.pwrite(h_, buf, i * kPage));
  }
  static void check(const SysResult& r) {
    if (!r.ok()) std::abort();  // a setup step failed: the figure would be meaningless
  }

 private:
  ref::FileSystem fs_;
  ref::Handle h_;
};

// pwrite of `len` bytes into cached, dirty pages, cycling over 64 MiB.
class RefPwrite final : public Workload {
 public:
  RefPwrite(const std::string& policy, size_t len) : f_(policy), len_(len), buf_(len, 0x5a) {
    for (size_t off = 0; off < kSpan; off += len_) RefFile::check(f_.fs().pwrite(f_.h(), buf_.span(0, len_), off));
  }
  void timed_op() override {
    RefFile::check(f_.fs().pwrite(f_.h(), buf_.span(0, len_), off_));
    off_ = (off_ + len_) % kSpan;
  }

 private:
  RefFile f_;
  size_t len_, off_ = 0;
  Aligned buf_;
};

// 4 KiB pread that hits the cache, cycling over 64 MiB.
class RefPread final : public Workload {
 public:
  explicit RefPread(const std::string& policy) : f_(policy), buf_(kPage, 1) {
    f_.write_pages(kSpan / kPage, buf_.span(0, kPage));
  }
  void timed_op() override {
    RefFile::check(f_.fs().pread(f_.h(), buf_.span(0, kPage), off_));
    off_ = (off_ + kPage) % kSpan;
  }

 private:
  RefFile f_;
  size_t off_ = 0;
  Aligned buf_;
};

// fsync of `dirty` dirty pages in a file of `cached` cached pages: each
// operation re-dirties pages [0, dirty) first (untimed), then fsyncs. The
// reference writes them to the simulated device and flushes.
class RefFsync final : public Workload {
 public:
  RefFsync(const std::string& policy, uint64_t dirty, uint64_t cached)
      : f_(policy), dirty_(dirty), buf_(kPage, 2) {
    f_.write_pages(cached, buf_.span(0, kPage));
    RefFile::check(f_.fs().fsync(f_.h(), false));
  }
  bool prepares() const override { return true; }
  void prepare() override { f_.write_pages(dirty_, buf_.span(0, kPage)); }
  void timed_op() override { RefFile::check(f_.fs().fsync(f_.h(), false)); }

 private:
  RefFile f_;
  uint64_t dirty_;
  Aligned buf_;
};

// fsync while every device write fails: proposed keeps the pages dirty and
// retries all of them each time (R1); linux-4.17 marked them clean after the
// first failure and has nothing left to write.
class RefFailingFsync final : public Workload {
 public:
  RefFailingFsync(const std::string& policy, uint64_t pages) : f_(policy), buf_(kPage, 3) {
    f_.write_pages(pages, buf_.span(0, kPage));
    FaultRule rule, installed;  // the whole device fails writes
    rule.err = EIO;
    RefFile::check(f_.fs().fault(ref::FaultPlace{}, rule, installed));
  }
  void timed_op() override {
    SysResult r = f_.fs().fsync(f_.h(), false);
    if (r.ok() || r.hung) std::abort();  // must report the failure (once, or every time)
  }

 private:
  RefFile f_;
  Aligned buf_;
};

// drop_caches over `pages` clean cached pages, read back in (untimed) before each.
class RefDropCaches final : public Workload {
 public:
  RefDropCaches(const std::string& policy, uint64_t pages) : f_(policy), pages_(pages), buf_(kPage, 4) {
    f_.write_pages(pages, buf_.span(0, kPage));
    RefFile::check(f_.fs().fsync(f_.h(), false));
  }
  bool prepares() const override { return true; }
  void prepare() override {
    for (uint64_t i = 0; i < pages_; ++i) RefFile::check(f_.fs().pread(f_.h(), buf_.span(0, kPage), i * kPage));
  }
  void timed_op() override { RefFile::check(f_.fs().drop_caches()); }

 private:
  RefFile f_;
  uint64_t pages_;
  Aligned buf_;
};

// memcpy of `len` bytes, cycling over 64 MiB: into the span from a small
// buffer (what pwrite must do), out of it into one (pread), or from one span
// to another (writeback: a cached page to the device).
class Memcpy final : public Workload {
 public:
  enum Direction { kInto, kOutOf, kBetween };
  Memcpy(size_t len, Direction d)
      : len_(len), dir_(d), span_(kSpan, 1), buf_(d == kBetween ? kSpan : len, 0x5a) {}
  void timed_op() override {
    switch (dir_) {
      case kInto: std::memcpy(span_.data() + off_, buf_.data(), len_); break;
      case kOutOf: std::memcpy(buf_.data(), span_.data() + off_, len_); break;
      case kBetween: std::memcpy(span_.data() + off_, buf_.data() + off_, len_); break;
    }
    asm volatile("" ::: "memory");
    off_ = (off_ + len_) % kSpan;
  }

 private:
  size_t len_;
  Direction dir_;
  Aligned span_, buf_;
  size_t off_ = 0;
};

// The kernel's page cache on a tmpfs file (/dev/shm).
class Tmpfs : public Workload {
 public:
  Tmpfs() {
    char path[] = "/dev/shm/syncprobe-bench-XXXXXX";
    fd_ = ::mkstemp(path);
    if (fd_ < 0) {
      error_ = std::string("no tmpfs at /dev/shm: ") + std::strerror(errno);
      return;
    }
    ::unlink(path);
  }
  ~Tmpfs() override {
    if (fd_ >= 0) ::close(fd_);
  }

 protected:
  void fill(uint64_t bytes, size_t chunk, const std::byte* buf) {
    for (uint64_t off = 0; off < bytes; off += chunk)
      if (::pwrite(fd_, buf, chunk, off_t(off)) != ssize_t(chunk)) error_ = "tmpfs setup write failed";
  }
  int fd_ = -1;
};

class TmpfsPwrite final : public Tmpfs {
 public:
  explicit TmpfsPwrite(size_t len) : len_(len), buf_(len, 0x5a) {
    if (error_.empty()) fill(kSpan, len_, buf_.data());
  }
  void timed_op() override {
    if (::pwrite(fd_, buf_.data(), len_, off_t(off_)) != ssize_t(len_)) std::abort();
    off_ = (off_ + len_) % kSpan;
  }

 private:
  size_t len_, off_ = 0;
  Aligned buf_;
};

class TmpfsPread final : public Tmpfs {
 public:
  TmpfsPread() : buf_(kPage, 1) {
    if (error_.empty()) fill(kSpan, kPage, buf_.data());
  }
  void timed_op() override {
    if (::pread(fd_, buf_.data(), kPage, off_t(off_)) != ssize_t(kPage)) std::abort();
    off_ = (off_ + kPage) % kSpan;
  }

 private:
  size_t off_ = 0;
  Aligned buf_;
};

// fsync of a tmpfs file with `pages` pages written. tmpfs's fsync is
// noop_fsync (mm/shmem.c): it neither writes nor cleans anything, so the
// pages are written once, not before every fsync; rewriting 40 MB around a
// ~1 µs call is what kept the old benchmark from ever finishing.
class TmpfsFsync final : public Tmpfs {
 public:
  explicit TmpfsFsync(uint64_t pages) : buf_(kPage, 2) {
    if (error_.empty()) fill(pages * kPage, kPage, buf_.data());
  }
  void timed_op() override {
    if (::fsync(fd_) != 0) std::abort();
  }

 private:
  Aligned buf_;
};

class Errseq final : public Workload {
 public:
  void timed_op() override {
    if ((++i_ & 7) == 0) ref::errseq_set(wb_, EIO);
    int err = ref::errseq_check_and_advance(wb_, cursor_);
    asm volatile("" : "+r"(err));
  }

 private:
  ref::errseq_t wb_ = 0, cursor_ = 0;
  uint64_t i_ = 0;
};

}  // namespace syncprobe::bench
