#pragma once
// The model behind PageCache: inodes with their mappings, open file
// descriptions, the namespace and its journal, writeback and the policy's
// decisions. page_cache.cpp puts the runner's Storage/Process seam on top.
// REQUIRES external synchronization.
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "frame_pool.h"
#include "page_map.h"
#include "syncprobe/ref/page_cache.h"

namespace syncprobe::ref {

// Legacy mapping flags (Linux before errseq, and still set for legacy callers).
inline constexpr uint32_t AS_EIO = 1u << 0;
inline constexpr uint32_t AS_ENOSPC = 1u << 1;

inline constexpr uint64_t kRootIno = 1;
inline constexpr uint64_t kRawIno = 0;
inline constexpr int kNoSlot = -1;  // more than 64 descriptors: treated as touching every page

struct File;

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

  uint64_t block_of(uint64_t index) const {
    return raw ? index : kDataRegionBlock + ino * kBlocksPerFile + index;
  }
  uint64_t max_pages() const { return raw ? kRawDeviceBytes / kPageSize : kBlocksPerFile; }
};

struct File {
  Inode* inode = nullptr;
  OpenFlags flags;
  errseq_t wb_cursor = 0;  // f_wb_err
  int slot = kNoSlot;
  bool gone_bad = false;   // R3: data it touched was discarded
  uint64_t bit() const { return slot == kNoSlot ? ~0ull : (1ull << slot); }
};

// What one pass of writeback over some pages met.
struct Writeback {
  int first_err = 0;
  int first_err_touched = 0;  // among pages the reporting descriptor touched
  bool hung = false;
  std::vector<std::pair<Inode*, uint64_t>> written;  // pages written successfully
};

class RefProcess;

struct PageCache::State {
  std::unique_ptr<Policy> policy;
  SimDevice device;
  FramePool frames;  // the cached pages' data; outlives the inodes
  std::map<uint64_t, std::unique_ptr<Inode>> inodes;  // in-core inodes
  std::map<std::string, uint64_t> names;              // the namespace: path -> ino
  std::map<uint64_t, uint64_t> loaded_sizes;          // sizes of inodes not in core, as committed
  uint64_t next_ino = 2;
  bool journal_dirty = false;                          // some name or inode not committed
  std::vector<std::unique_ptr<File>> files;
  std::map<std::string, std::unique_ptr<RefProcess>> processes;
  std::optional<uint64_t> error_memory_limit;
  std::optional<uint64_t> cache_limit;  // memory pressure: bytes all cached pages may use
  uint32_t use_clock = 0;
  uint64_t evicted_pages = 0;
  uint64_t error_clock = 0;
  uint64_t discarded_error_pages = 0;
  uint64_t writeback_errors = 0;

  ~State();

  // ---- namespace and metadata (cache_namespace.cpp) ----
  Inode& inode(uint64_t ino);  // the in-core inode, read in if needed
  Inode* lookup(const std::string& path);
  uint64_t committed_size(uint64_t ino) const;
  std::string serialize_namespace() const;
  IoResult commit_metadata();  // a journal commit: the namespace, then a flush
  IoResult mount();            // reads the namespace back; every in-core inode goes

  // ---- errors, page fate and writeback (cache_writeback.cpp) ----
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

  // ---- descriptors and pages (cache_writeback.cpp) ----
  File* open_file(Inode& in, const OpenFlags& flags);
  void release_file(File* f);
  // Page `index`, read in if not cached; none (and `r` says why) on failure.
  PageMap::Page fill_page(Inode& in, uint64_t index, IoResult& r) {
    PageMap::Page cached = in.mapping.find(index);
    if (cached && cached.has(PG_uptodate)) return cached;
    return read_page(in, index, cached, r);
  }
  PageMap::Page read_page(Inode& in, uint64_t index, PageMap::Page cached, IoResult& r);
  void drop_all_descriptors();  // page_cache.cpp
};

inline SysResult from_io(const IoResult& r) {
  return r.hung ? SysResult::hang() : r.err ? SysResult::failure(r.err) : SysResult::success();
}

}  // namespace syncprobe::ref
