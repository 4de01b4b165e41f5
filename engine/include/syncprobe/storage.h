#pragma once
// The seam between the step interpreter and where steps really happen.
//
// A Storage is one fresh filesystem (or the reference cache's model of one)
// for the duration of one case, with the injector that can fail its device.
// A Process is one process's view of it: its own descriptor table and the
// syscalls a case may make. The reference implements both in memory; the host
// and VM targets implement them with real syscalls on a scratch filesystem.
//
// Paths are relative to the filesystem's root ("f", "dir/g"); implementations
// resolve them. Descriptors are the implementation's own integers.
#include <cerrno>
#include <cstdint>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "syncprobe/fault.h"
#include "syncprobe/sysresult.h"

namespace syncprobe {

// open(2) flags a case may ask for, as the interpreter passes them on.
struct OpenFlags {
  bool create = true;
  bool truncate = false;
  bool direct = false;      // O_DIRECT
  bool sync = false;        // O_SYNC
  bool dsync = false;       // O_DSYNC
  bool read_only = false;   // O_RDONLY (default O_RDWR)
  bool directory = false;   // O_DIRECTORY | O_RDONLY: for fsync of a directory
};

// sync_file_range(2) flags.
struct SyncFileRangeFlags {
  bool wait_before = true;
  bool write = true;
  bool wait_after = true;
};

// What a read through a shared mapping saw.
struct MappedRead {
  SysResult result;            // ret: bytes copied; failure(errno) when mmap(2) itself failed
  std::string signal;          // "SIGBUS" when touching the mapping raised it; "" otherwise
  std::vector<bool> resident;  // mincore(2) of each page of the range, before the read
  uint64_t copied = 0;         // bytes read before the signal (all of them without one)
};

class Process {
 public:
  virtual ~Process() = default;
  // Each returns what the syscall returned (ret, errno). A call that does not
  // return within the storage's step timeout returns SysResult::hang().
  virtual SysResult open(const std::string& path, const OpenFlags& flags) = 0;  // ret: fd
  virtual SysResult close(int fd) = 0;
  virtual SysResult pwrite(int fd, std::span<const std::byte> data, uint64_t offset) = 0;
  virtual SysResult pread(int fd, std::span<std::byte> out, uint64_t offset) = 0;
  virtual SysResult fsync(int fd) = 0;
  virtual SysResult fdatasync(int fd) = 0;
  virtual SysResult sync_file_range(int fd, uint64_t offset, uint64_t length,
                                    const SyncFileRangeFlags& flags) = 0;
  // mmap(MAP_SHARED) [offset, offset+data.size()), store `data`, msync(MS_SYNC),
  // munmap. The result is msync's; a failing mmap is reported as its own errno
  // with detail "mmap".
  virtual SysResult msync_write(int fd, std::span<const std::byte> data, uint64_t offset) = 0;
  // mmap(MAP_SHARED) [offset, offset+out.size()), record mincore(2), copy the
  // bytes out, munmap. A SIGBUS while copying is an outcome, not a failure of
  // the call: `signal` names it and `result` carries no errno.
  virtual MappedRead mmap_read(int /*fd*/, std::span<std::byte> /*out*/, uint64_t /*offset*/) {
    return {SysResult::failure(ENOTSUP), "", {}};
  }
  virtual SysResult syncfs(int fd) = 0;
  virtual SysResult sync() = 0;
  virtual SysResult stat(const std::string& path) = 0;  // ret: st_size
  virtual SysResult rename(const std::string& from, const std::string& to) = 0;
  virtual SysResult unlink(const std::string& path) = 0;
};

// Where a fault should land, before the storage resolves it to device bytes.
struct FaultRequest {
  // data: a file's data blocks; metadata: everything but them; free: space
  // the filesystem has not allocated yet (what an append will get); journal:
  // the journal or log only; device: everything; libfiu: no device at all,
  // the programs' calls fail in front of the kernel (a process-level injector).
  enum class Where { device, data, metadata, free, journal, libfiu };
  Where where = Where::device;
  std::string file;   // for Where::data
  std::string point;  // for Where::libfiu: "posix/io/sync/fdatasync"...
  int percent = 100;  // for Where::libfiu: chance that a call fails
  FaultRule rule;     // op, mode, errno and count; ranges are filled by the storage
};

// What the storage holds for a file, read after the storage has been
// remounted (or, for the reference, straight from the simulated device).
struct ReadBack {
  SysResult result;            // ret: bytes read; ENOENT when the file is gone
  std::vector<std::byte> data;
};

// One action of a real program (an `app` step, docs/apps.md).
struct AppCall {
  std::string program;  // "sqlite", "qemu", "postgres", "redis", "lmdb"
  std::string action;   // "init", "put", "get", "scan", "check", "checkpoint", "restart"
  std::string file;     // the program's file, relative to the filesystem root
  std::string variant;  // program settings ("wal", "qcow2,cache=none")
  std::string key, value;
};

// How a shutdown ioctl (XFS_IOC_GOINGDOWN, EXT4_IOC_SHUTDOWN) takes the
// filesystem down: after syncing it (GOING_FLAGS_DEFAULT), after flushing the
// log only (LOGFLUSH), or at once (NOLOGFLUSH).
enum class ShutdownFlush { sync, log, none };

class Storage {
 public:
  virtual ~Storage() = default;

  // The layer faults come from: "reference-device", "fuse-blockdev",
  // "dm-error", "dm-flakey", "dm-thin", "libfiu".
  virtual std::string layer() const = 0;
  // Facts recorded in every result: kernel, fs, mount options, injector, policy.
  virtual nlohmann::json environment() const = 0;

  // The named process, created on first use with an empty descriptor table.
  virtual Process& process(const std::string& name) = 0;

  // Installs a fault. `detail` receives what it resolved to (device ranges,
  // extents found by FIEMAP, the dm table loaded...).
  virtual SysResult fault(const FaultRequest& request, nlohmann::json& detail) = 0;
  virtual SysResult heal() = 0;                       // remove every fault
  // Thin-pool mode: from now on only `headroom` more bytes of unallocated
  // device space may be allocated; past that, writes to unallocated blocks
  // fail with ENOSPC (`when_full` error) or queue (hang) until grow().
  virtual SysResult thin_limit(uint64_t headroom, FaultMode when_full, nlohmann::json& detail) = 0;
  virtual SysResult grow(uint64_t bytes, nlohmann::json& detail) = 0;
  virtual SysResult memory_limit(uint64_t bytes) = 0; // cap on memory held by error pages
  // Memory pressure: the cache may hold at most `bytes`; past it clean pages
  // are evicted (oldest use first) and dirty ones written back so that they
  // can be. ENOTSUP where the kernel cannot be told (real targets).
  virtual SysResult cache_limit(uint64_t bytes) = 0;
  virtual SysResult drop_caches() = 0;                // evict clean pages (echo 1 > drop_caches)
  virtual SysResult writeback() = 0;                  // one pass of background writeback
  // Unmount cleanly and mount again. Fails with EBUSY while descriptors are open.
  virtual SysResult remount() = 0;
  // Power is lost: everything not on stable storage is gone, every process
  // and descriptor with it; the filesystem is then mounted again (recovery).
  virtual SysResult power_cut() = 0;
  virtual ReadBack read_back(const std::string& path, uint64_t offset, uint64_t length) = 0;
  // Shuts the filesystem down with dirty data in the cache: every later call
  // on it fails until it is remounted. ENOTSUP where there is no such call.
  virtual SysResult shutdown(ShutdownFlush /*flush*/, nlohmann::json& /*detail*/) {
    return SysResult::failure(ENOTSUP);
  }

  // Runs one program action on this filesystem (targets declaring
  // app:<program>). ok: the program acknowledged; failure with errno 0: it
  // reported a failure; hang: it did not finish; harness: it could not be run.
  // `evidence` receives its command, exit status, output and the value read.
  virtual SysResult app(const AppCall& /*call*/, nlohmann::json& evidence) {
    evidence["error"] = "this target runs no programs";
    return SysResult::failure(ENOTSUP);
  }

  // Operations the injector has failed, dropped or hung so far (cumulative).
  virtual uint64_t injected_hits() = 0;
  // The same, per layer, for a storage with stacked injectors (a device
  // injector under the filesystem, libfiu in front of the programs): the
  // interpreter records in each step the layer(s) whose count moved.
  virtual std::map<std::string, uint64_t> injected_by_layer() { return {{layer(), injected_hits()}}; }

  // Why this storage's machinery can no longer be trusted (its injector
  // stopped, a worker died), or nullopt. Checked after every step: a case
  // whose machinery broke is an error, never a measurement.
  virtual std::optional<std::string> broken() { return std::nullopt; }
};

}  // namespace syncprobe
