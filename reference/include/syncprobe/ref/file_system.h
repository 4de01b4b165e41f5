#pragma once
// The reference page cache as a file system: a namespace of directories and
// files over a simulated block device, a page cache whose reaction to failed
// writeback is a Policy, and open file descriptions with their own error
// cursors. Everything a case or a mounted program does goes through here:
// the runner's Storage adapter (targets/reference) and the FUSE filesystem
// (refmount/) are thin layers over this class.
//
// Model, in the kernel's words:
//   - inodes with a mapping of 4 KiB pages carrying PG_uptodate, PG_dirty and
//     PG_error, a wb_err (errseq_t), legacy AS_EIO/AS_ENOSPC flags, and (for
//     openbsd) a sticky vnode error;
//   - open file descriptions with an errseq cursor, the set of pages they
//     read or wrote (R2's scope), and a "gone bad" mark (R3);
//   - a namespace (paths, sizes) committed to metadata blocks like a journal:
//     fsync commits it when the inode changed, fdatasync only when the size
//     did, a directory fsync whenever anything changed;
//   - writeback through SimDevice, eviction by drop_caches and a cache limit,
//     a limit on pages held in error (R7), remount and power cut.
//
// Paths are relative to the root, components separated by '/' ("f",
// "dir/g"); "" and "." name the root. Times and modes live in core only: a
// remount or power cut brings back names and sizes, not times.
//
// Device layout: metadata in blocks [0, 1024); inode N's data from block
// kDataRegionBlock + N * (max_file_bytes / 4096) (64 MiB per file by
// default); the raw device view maps bytes to blocks 1:1.
//
// REQUIRES external synchronization: one caller at a time.
#include <cstdint>
#include <ctime>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "syncprobe/fault.h"
#include "syncprobe/ref/policy.h"
#include "syncprobe/ref/sim_device.h"
#include "syncprobe/sysresult.h"

namespace syncprobe::ref {

inline constexpr uint64_t kPageSize = kBlockSize;
inline constexpr uint64_t kMetadataBlocks = 1024;
inline constexpr uint64_t kDataRegionBlock = 1ull << 20;
inline constexpr uint64_t kBlocksPerFile = 1ull << 14;   // 64 MiB per file
inline constexpr uint64_t kRawDeviceBytes = 1ull << 30;  // what the raw device view exposes

// open(2) flags the model distinguishes.
struct OpenFlags {
  bool create = true;
  bool exclusive = false;   // O_EXCL with create: EEXIST when the name exists
  bool truncate = false;
  bool direct = false;      // O_DIRECT
  bool sync = false;        // O_SYNC
  bool dsync = false;       // O_DSYNC
  bool read_only = false;   // O_RDONLY (default O_RDWR)
  bool directory = false;   // O_DIRECTORY: a directory, for fsync or readdir
};

// sync_file_range(2) flags.
struct SyncRangeFlags {
  bool wait_before = true;
  bool write = true;
  bool wait_after = true;
};

// An open file description: an opaque handle, valid until closed, or until
// a power cut or read_back closes every description. A stale or unknown
// handle gets EBADF.
struct Handle {
  uint64_t id = 0;
  bool operator==(const Handle&) const = default;
};

struct Attr {
  uint64_t ino = 0;
  bool dir = false;
  uint64_t size = 0;
  uint32_t mode = 0;  // permission bits
  uint32_t nlink = 0;
  timespec atime{}, mtime{}, ctime{};
};

struct DirEntry {
  std::string name;
  uint64_t ino = 0;
  bool dir = false;
};

struct CacheStats {
  uint64_t cached_pages = 0;
  uint64_t dirty_pages = 0;
  uint64_t error_pages = 0;            // PG_error set (dirty or not)
  uint64_t error_bytes_held = 0;       // bytes of PG_dirty|PG_error pages (what R7 bounds)
  uint64_t discarded_error_pages = 0;  // dropped by the R7 limit, cumulative
  uint64_t writeback_errors = 0;       // failed page writes, cumulative
  uint64_t evicted_pages = 0;          // evicted under the cache limit, cumulative
  uint64_t device_writes = 0;
  uint64_t device_flushes = 0;
  uint64_t open_files = 0;             // open file descriptions
  uint64_t frame_bytes_reserved = 0;   // memory mapped for cached pages' data, used or free
};

// Where a fault lands, before it is resolved to device bytes: a file's data
// blocks; everything but them (metadata); space no file holds yet (free:
// where an append goes); the journal only; or the whole device.
struct FaultPlace {
  enum class Where { device, data, metadata, free, journal };
  Where where = Where::device;
  std::string path;  // Where::data and ::metadata: whose data (metadata: all but it)
  // Where::data: bytes [offset, offset+length) of the file; length 0: all of it.
  uint64_t offset = 0, length = 0;
};

// What a read through a shared mapping saw.
struct MappedRead {
  SysResult result;            // ret: bytes copied; failure(errno) when mmap(2) itself failed
  bool sigbus = false;         // touching the mapping raised SIGBUS (result then has no errno)
  std::vector<bool> resident;  // mincore(2) of each page of the range, before the read
  uint64_t copied = 0;         // bytes read before the signal (all of them without one)
};

// How a shutdown ioctl takes the filesystem down: after syncing it
// (GOING_FLAGS_DEFAULT), after flushing the log only (LOGFLUSH), or at once.
enum class ShutdownFlush { sync, log, none };
struct ShutdownReport {
  std::optional<SysResult> sync;     // ShutdownFlush::sync: what the sync met
  std::optional<int> log_commit;     // ShutdownFlush::log: the commit's errno, or 0
};

// What the content of a file on stable storage is, read after a remount.
struct ReadBack {
  SysResult result;  // ret: bytes read; ENOENT when the file is gone
  std::vector<std::byte> data;
};

class FileSystem {
 public:
  struct Options {
    // The largest file (EFBIG past it): the size of each file's region of
    // the device. The default is what results record fault ranges for.
    uint64_t max_file_bytes = kBlocksPerFile * kPageSize;
  };
  // Formats a fresh simulated device and mounts it.
  explicit FileSystem(std::unique_ptr<Policy> policy) : FileSystem(std::move(policy), Options{}) {}
  FileSystem(std::unique_ptr<Policy> policy, const Options& options);
  ~FileSystem();
  FileSystem(const FileSystem&) = delete;
  FileSystem& operator=(const FileSystem&) = delete;

  const Policy& policy() const;
  SimDevice& device();
  CacheStats stats() const;

  // ---- namespace ----
  // ret: 0. ENOENT, ENOTDIR as stat(2).
  SysResult getattr(const std::string& path, Attr& out);
  SysResult mkdir(const std::string& path, uint32_t mode = 0755);
  SysResult rmdir(const std::string& path);
  SysResult unlink(const std::string& path);
  // rename(2) without flags: replaces a file `to`, or an empty directory.
  SysResult rename(const std::string& from, const std::string& to);
  // The entries of a directory, without "." and "..", in name order.
  SysResult readdir(const std::string& path, std::vector<DirEntry>& out);
  SysResult truncate(const std::string& path, uint64_t size);
  SysResult chmod(const std::string& path, uint32_t mode);
  // nullopt: leave that time alone.
  SysResult utimens(const std::string& path, std::optional<timespec> atime,
                    std::optional<timespec> mtime);

  // ---- open file descriptions ----
  // ret: 0 and `out` set, or the errno of open(2).
  SysResult open(const std::string& path, const OpenFlags& flags, Handle& out, uint32_t mode = 0644);
  // The whole simulated device as one file (the raw block device under the filesystem).
  SysResult open_device(const OpenFlags& flags, Handle& out);
  SysResult close(Handle h);
  SysResult pwrite(Handle h, std::span<const std::byte> data, uint64_t offset);
  SysResult pread(Handle h, std::span<std::byte> out, uint64_t offset);
  SysResult fsync(Handle h, bool datasync);
  SysResult sync_file_range(Handle h, uint64_t offset, uint64_t length, const SyncRangeFlags& flags);
  // Stores `data` through a shared mapping of [offset, offset+size) and msyncs
  // it (MS_SYNC). ENXIO beyond the end of the file (where mmap would SIGBUS).
  SysResult msync_write(Handle h, std::span<const std::byte> data, uint64_t offset);
  // Maps [offset, offset+out.size()) shared, records which pages are
  // resident, and copies the bytes out; a page that must be read in and
  // cannot (past EOF, a device error, a filesystem that is down) raises SIGBUS.
  MappedRead mmap_read(Handle h, std::span<std::byte> out, uint64_t offset);
  SysResult ftruncate(Handle h, uint64_t size);
  SysResult fgetattr(Handle h, Attr& out);
  SysResult syncfs(Handle h);
  // sync(2): writes everything, reports nothing (ret 0) unless it hangs.
  SysResult sync();

  // ---- the machine around the cache ----
  SysResult drop_caches();  // evict clean pages (echo 1 > drop_caches)
  SysResult writeback();    // one pass of background writeback; nobody is told
  // Unmount cleanly and mount again. EBUSY while descriptions are open.
  SysResult remount();
  // Power is lost: every description is closed, unflushed device writes are
  // lost, and the device is mounted again.
  SysResult power_cut();
  // Closes every description, remounts, and reads [offset, offset+length)
  // of `path` (or of the raw device when `raw`) from the device.
  ReadBack read_back(const std::string& path, uint64_t offset, uint64_t length, bool raw = false);
  // Shuts the filesystem down with dirty data in the cache: every later call
  // fails until it is remounted.
  SysResult shutdown(ShutdownFlush flush, ShutdownReport& report);
  // What the filesystem has become after failures (or a shutdown).
  FsReaction state() const;
  // Cap on memory held by pages in PG_dirty|PG_error (R7).
  SysResult memory_limit(uint64_t bytes);
  // The cache may hold at most `bytes`; past it clean pages are evicted
  // (oldest use first) and dirty ones written back so that they can be.
  SysResult cache_limit(uint64_t bytes);
  // Touches memory for `bytes` of cached pages and device blocks now, so
  // that writing them later costs no page faults. ENOMEM when the system
  // has not that much memory.
  SysResult preallocate(uint64_t bytes);

  // ---- faults on the simulated device ----
  // Installs `rule` with its ranges resolved from `place` (the rule's own
  // ranges are ignored); `resolved` receives the rule as installed. ENOENT
  // when a data fault names a file that does not exist.
  SysResult fault(const FaultPlace& place, const FaultRule& rule, FaultRule& resolved);
  SysResult heal();
  SysResult thin_limit(uint64_t headroom, FaultMode when_full);
  SysResult grow(uint64_t bytes);  // EINVAL when not in thin-pool mode
  // Operations the injector failed, dropped or hung, cumulative; and the
  // layer of the last: "reference-device" or "libfiu".
  uint64_t injected_hits() const;
  std::string layer() const;

  struct State;  // the model (reference/src/fs_state.h)

 private:
  std::unique_ptr<State> s_;
};

}  // namespace syncprobe::ref
