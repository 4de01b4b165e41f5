#pragma once
// The model behind FileSystem: inodes with their mappings, open file
// descriptions, the namespace and its journal, writeback and the policy's
// decisions. file_system.cpp is the API over it.
// REQUIRES external synchronization.
#include <cerrno>
#include <cstdint>
#include <ctime>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "frame_pool.h"
#include "page_map.h"
#include "syncprobe/ref/file_system.h"

namespace syncprobe::ref {

// Legacy mapping flags (Linux before errseq, and still set for legacy callers).
inline constexpr uint32_t AS_EIO = 1u << 0;
inline constexpr uint32_t AS_ENOSPC = 1u << 1;

inline constexpr uint64_t kRootIno = 1;
inline constexpr uint64_t kRawIno = 0;
inline constexpr int kNoSlot = -1;  // more than 64 descriptors: treated as touching every page

// File times, from the coarse clock as the kernel's own (current_time()).
inline timespec now() {
  timespec t{};
  clock_gettime(CLOCK_REALTIME_COARSE, &t);
  return t;
}

struct File;

// A set of page indexes as disjoint [first, end) intervals.
class PageRanges {
 public:
  void add(uint64_t first, uint64_t end) {
    if (first >= end) return;
    auto it = ranges_.upper_bound(first);
    if (it != ranges_.begin() && std::prev(it)->second >= first) {
      --it;
      first = it->first;
    }
    while (it != ranges_.end() && it->first <= end) {
      end = std::max(end, it->second);
      it = ranges_.erase(it);
    }
    ranges_[first] = end;
  }
  bool contains(uint64_t i) const {
    auto it = ranges_.upper_bound(i);
    return it != ranges_.begin() && std::prev(it)->second > i;
  }
  void remove(uint64_t i) {
    auto it = ranges_.upper_bound(i);
    if (it == ranges_.begin() || std::prev(it)->second <= i) return;
    --it;
    const uint64_t first = it->first, end = it->second;
    ranges_.erase(it);
    if (first < i) ranges_[first] = i;
    if (i + 1 < end) ranges_[i + 1] = end;
  }
  bool empty() const { return ranges_.empty(); }
  void clear() { ranges_.clear(); }
  const std::map<uint64_t, uint64_t>& intervals() const { return ranges_; }

 private:
  std::map<uint64_t, uint64_t> ranges_;
};

struct Inode {
  explicit Inode(FramePool& frames) : mapping(frames) {}
  uint64_t ino = 0;
  bool is_dir = false;
  bool raw = false;
  uint64_t size = 0;
  bool meta_dirty = false;  // timestamps, size or name not yet committed: fsync commits
  bool size_dirty = false;  // size or name not yet committed: fdatasync commits too
  PageMap mapping;
  errseq_t wb_err = 0;
  uint32_t as_flags = 0;
  int vnode_error = 0;
  std::vector<File*> files;  // open file descriptions
  uint64_t used_slots = 0;
  // Pages cut off by a truncation whose device blocks still hold the old
  // data: they read as zeros, and the blocks are discarded once a journal
  // commit makes the new size durable (until then a power cut brings back
  // the old size and the old data, as on a journaling filesystem).
  PageRanges truncated;
  // In core only (not journaled).
  uint32_t mode = 0644;
  uint32_t nlink = 1;  // names it has: 0 once unlinked or replaced by a rename
  timespec atime{}, mtime{}, ctime{};

  uint64_t blocks_per_file = kBlocksPerFile;  // FileSystem::Options: each file's region
  uint64_t block_of(uint64_t index) const {
    return raw ? index : kDataRegionBlock + ino * blocks_per_file + index;
  }
  uint64_t max_pages() const { return raw ? kRawDeviceBytes / kPageSize : blocks_per_file; }
};

struct File {
  Inode* inode = nullptr;
  OpenFlags flags;
  errseq_t wb_cursor = 0;  // f_wb_err
  errseq_t sb_cursor = 0;  // f_sb_err: the superblock's errseq, for syncfs
  int slot = kNoSlot;
  bool gone_bad = false;   // R3: data it touched was discarded
  // Set at open (flags never change after it): writable, buffered, neither
  // O_SYNC nor O_DSYNC, on a regular file. pwrite's fast path needs nothing
  // else of the description.
  bool plain_writes = false;
  uint64_t mask = ~0ull;   // this description's bit in a page's touched set (all: no slot)
  uint64_t bit() const { return mask; }
};

// What one pass of writeback over some pages met.
struct Writeback {
  int first_err = 0;
  int first_err_touched = 0;  // among pages the reporting descriptor touched
  bool hung = false;
  std::vector<std::pair<Inode*, uint64_t>> written;  // pages written successfully
};

struct FileSystem::State {
  std::unique_ptr<Policy> policy;
  Options options;
  FramePool frames;  // the cached pages' and the device blocks' data; outlives both
  SimDevice device{frames};
  std::map<uint64_t, std::unique_ptr<Inode>> inodes;  // in-core inodes
  std::map<std::string, uint64_t> names;              // the namespace: path -> ino
  std::map<uint64_t, uint64_t> loaded_sizes;          // sizes of inodes not in core, as committed
  uint64_t next_ino = 2;
  bool journal_dirty = false;                          // some name or inode not committed
  std::optional<uint64_t> error_memory_limit;
  std::optional<uint64_t> cache_limit;  // memory pressure: bytes all cached pages may use
  uint32_t use_clock = 0;
  uint64_t evicted_pages = 0;
  uint64_t error_clock = 0;
  uint64_t discarded_error_pages = 0;
  uint64_t writeback_errors = 0;
  errseq_t s_wb_err = 0;                        // the superblock's errseq (syncfs, Linux 5.8)
  FsReaction fs_state = FsReaction::continues;  // what the filesystem has become

  // ---- the filesystem's state ----
  // The filesystem reacts to a failure; a worse state is never undone but by
  // a mount (remount, power cut).
  void enter(FsReaction r) {
    if (int(r) > int(fs_state)) fs_state = r;
  }
  bool can_write() const { return fs_state == FsReaction::continues; }
  // Nothing for a cached read or write to decide beyond the page: the
  // filesystem is itself and no cache limit is set (the fast paths).
  bool plain() const { return fs_state == FsReaction::continues && !cache_limit; }
  // The errno a call gets from a filesystem that is no longer itself, or 0:
  // shut down, everything fails with EIO; a forced unmount under way leaves
  // dead vnodes (EIO); read-only refuses changes (EROFS).
  int refuses(bool changes) const {
    switch (fs_state) {
      case FsReaction::continues: return 0;
      case FsReaction::read_only: return changes ? EROFS : 0;
      case FsReaction::shutdown: return EIO;
      case FsReaction::force_unmount: return EIO;
    }
    return 0;
  }

  // Open file descriptions by handle: slot index in the low 32 bits, the
  // slot's generation in the high ones, so a stale handle is never mistaken
  // for a newer description in the same slot.
  struct HandleSlot {
    std::unique_ptr<File> file;
    uint32_t generation = 0;
  };
  std::vector<HandleSlot> handles;
  std::vector<uint32_t> free_handles;
  uint64_t open_files = 0;

  File* file(Handle h) {
    const uint64_t slot = h.id & 0xffffffffu;
    if (slot >= handles.size()) return nullptr;
    HandleSlot& s = handles[slot];
    return s.file && s.generation == uint32_t(h.id >> 32) ? s.file.get() : nullptr;
  }

  // ---- namespace and metadata (fs_namespace.cpp) ----
  Inode& inode(uint64_t ino);  // the in-core inode, read in if needed
  // The inode at `path` ("" and "." are the root), or nullptr with `err`
  // (ENOENT, ENOTDIR for a file used as a directory, EINVAL for a malformed path).
  Inode* resolve(const std::string& path, int& err);
  // Checks that the parent directory of `path` exists; 0 or the errno.
  int check_parent(const std::string& path);
  static std::string normalize(const std::string& path);  // "" for the root
  uint64_t committed_size(uint64_t ino) const;
  std::string serialize_namespace() const;
  IoResult commit_metadata();  // a journal commit: the namespace, then a flush
  // A journal commit failed: the filesystem reacts as the policy says, and the
  // error reaches the superblock's errseq (buffer heads of the block device).
  IoResult metadata_failed(IoResult r);
  IoResult mount();            // reads the namespace back; every in-core inode goes

  // ---- errors, page fate and writeback (fs_writeback.cpp) ----
  void record_error(Inode& in, int err);
  void discard_page(Inode& in, uint64_t index);
  void enforce_error_limit();
  void balance_cache();
  IoResult writepage(Inode& in, uint64_t index);
  void writeback_inode(Inode& in, const File* reporter, Writeback& wb, uint64_t first = 0,
                       uint64_t last = UINT64_MAX);
  SysResult write_everything();
  int check_error_memory(File& f);
  SysResult fsync_file(File& f, bool datasync, uint64_t first = 0, uint64_t last = UINT64_MAX);
  // What a sync_file_range wait reports (see fs_writeback.cpp).
  int wait_errors(File& f, int met);

  // ---- descriptors and pages (fs_writeback.cpp) ----
  Handle open_file(Inode& in, const OpenFlags& flags);
  void release_file(Handle h);
  void release_all_files();
  // Page `index`, read in if not cached; none (and `r` says why) on failure.
  PageMap::Page fill_page(Inode& in, uint64_t index, IoResult& r) {
    PageMap::Page cached = in.mapping.find(index);
    if (cached && cached.has(PG_uptodate)) return cached;
    return read_page(in, index, cached, r);
  }
  PageMap::Page read_page(Inode& in, uint64_t index, PageMap::Page cached, IoResult& r);
  // Truncates to `size`: pages past it go, dirty or not, and read as zeros
  // from then on. 0 or the errno of reading the partial last page.
  IoResult truncate_inode(Inode& in, uint64_t size);
  // Discards the device blocks of truncated pages (after a journal commit).
  void discard_truncated();
  // A file with no name and no open description is evicted, as the kernel
  // evicts such an inode: its pages go unwritten now, its blocks once the
  // unlink is committed (a power cut before that brings name and data back).
  void forget_if_orphan(Inode& in);
  // A write reached `end`: mtime, size.
  void touch_inode(Inode& in, uint64_t end) {
    if (in.raw) return;
    in.meta_dirty = true;  // mtime
    in.mtime = in.ctime = now();
    if (end > in.size) {
      in.size = end;
      in.size_dirty = true;
    }
    journal_dirty = true;
  }
};

inline SysResult from_io(const IoResult& r) {
  return r.hung ? SysResult::hang() : r.err ? SysResult::failure(r.err) : SysResult::success();
}


}  // namespace syncprobe::ref
