#include "syncprobe/ref/page_cache.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <map>
#include <sstream>
#include <unordered_map>
#include <vector>

#include "fiu_points.h"
#include "syncprobe/errno_names.h"

namespace syncprobe::ref {
namespace {

// Page flags, named as in the kernel.
constexpr uint32_t PG_uptodate = 1u << 0;
constexpr uint32_t PG_dirty = 1u << 1;
constexpr uint32_t PG_error = 1u << 2;

// Legacy mapping flags (Linux before errseq, and still set for legacy callers).
constexpr uint32_t AS_EIO = 1u << 0;
constexpr uint32_t AS_ENOSPC = 1u << 1;

constexpr uint64_t kRootIno = 1;
constexpr uint64_t kRawIno = 0;
constexpr int kNoSlot = -1;  // more than 64 descriptors: treated as touching every page

struct Page {
  std::unique_ptr<std::byte[]> data;  // kPageSize bytes
  uint64_t touched = 0;               // slots of the descriptors that read or wrote it
  uint64_t error_age = 0;             // when it entered PG_error (R7 discards the oldest)
  uint32_t flags = 0;
  uint32_t last_use = 0;              // for eviction under a cache limit, oldest first
  bool has(uint32_t f) const { return flags & f; }
};

// The pages of one mapping: 64-page chunks in index order, so a cached page
// costs its Page (32 bytes) and a share of its chunk rather than a hash
// node, and walks come out in index order without sorting.
class PageMap {
 public:
  Page* find(uint64_t index) {
    auto it = chunks_.find(index / 64);
    if (it == chunks_.end() || !(it->second->present & bit(index))) return nullptr;
    return &it->second->pages[index % 64];
  }
  Page& get(uint64_t index) {  // creates an empty page if absent
    auto& c = chunks_[index / 64];
    if (!c) c = std::make_unique<Chunk>();
    if (!(c->present & bit(index))) {
      c->present |= bit(index);
      ++size_;
    }
    return c->pages[index % 64];
  }
  void erase(uint64_t index) {
    auto it = chunks_.find(index / 64);
    if (it == chunks_.end() || !(it->second->present & bit(index))) return;
    it->second->pages[index % 64] = Page{};
    it->second->present &= ~bit(index);
    --size_;
    if (!it->second->present) chunks_.erase(it);
  }
  // f(index, Page&) for every page, in index order. f must not add or erase.
  template <typename F>
  void for_each(F f) {
    for (auto& [ci, c] : chunks_)
      for (uint64_t m = c->present; m; m &= m - 1) {
        const int i = __builtin_ctzll(m);
        f(ci * 64 + uint64_t(i), c->pages[i]);
      }
  }
  template <typename P>
  void erase_if(P pred) {
    std::vector<uint64_t> doomed;
    for_each([&](uint64_t index, Page& page) {
      if (pred(page)) doomed.push_back(index);
    });
    for (uint64_t index : doomed) erase(index);
  }
  void clear() {
    chunks_.clear();
    size_ = 0;
  }
  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }

 private:
  static uint64_t bit(uint64_t index) { return 1ull << (index % 64); }
  struct Chunk {
    uint64_t present = 0;
    Page pages[64];
  };
  std::map<uint64_t, std::unique_ptr<Chunk>> chunks_;
  size_t size_ = 0;
};

struct File;

struct Inode {
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
  errseq_t sb_cursor = 0;  // f_sb_err: the superblock's errseq, for syncfs
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

}  // namespace

class RefProcess;

struct PageCache::State {
  std::unique_ptr<Policy> policy;
  SimDevice device;
  std::map<uint64_t, std::unique_ptr<Inode>> inodes;  // in-core inodes
  std::map<std::string, uint64_t> names;              // the namespace: path -> ino
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
  errseq_t s_wb_err = 0;                  // the superblock's errseq (syncfs, Linux 5.8)
  FsReaction fs_state = FsReaction::continues;  // what the filesystem has become

  // ---- the filesystem's state -------------------------------------------------

  // The filesystem reacts to a failure; a worse state is never undone but by
  // a mount (remount, power cut).
  void enter(FsReaction r) {
    if (int(r) > int(fs_state)) fs_state = r;
  }
  bool can_write() const { return fs_state == FsReaction::continues; }
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

  // ---- namespace and metadata ----------------------------------------------

  Inode& inode(uint64_t ino) {
    auto& slot = inodes[ino];
    if (!slot) {
      slot = std::make_unique<Inode>();
      slot->ino = ino;
      slot->is_dir = ino == kRootIno;
      slot->raw = ino == kRawIno;
      slot->size = slot->raw ? kRawDeviceBytes : committed_size(ino);
    }
    return *slot;
  }

  std::string serialize_namespace() const {
    std::ostringstream body;
    body << "next " << next_ino << "\n";
    for (const auto& [path, ino] : names) {
      auto it = inodes.find(ino);
      const uint64_t size = it != inodes.end() ? it->second->size : committed_size(ino);
      body << "f " << ino << " " << size << " " << path << "\n";
    }
    const std::string b = body.str();
    return "SPNS1 " + std::to_string(b.size()) + "\n" + b;
  }

  // Sizes of inodes not in core come from the last commit (kept on load).
  std::map<uint64_t, uint64_t> loaded_sizes;
  uint64_t committed_size(uint64_t ino) const {
    auto it = loaded_sizes.find(ino);
    return it == loaded_sizes.end() ? 0 : it->second;
  }

  // Writes the namespace to the metadata blocks and flushes: a journal commit.
  IoResult commit_metadata() {
    const std::string text = serialize_namespace();
    const uint64_t blocks = (text.size() + kBlockSize - 1) / kBlockSize;
    if (blocks > kMetadataBlocks) return {ENOSPC, false};
    std::vector<std::byte> buf(kBlockSize);
    for (uint64_t b = 0; b < blocks; ++b) {
      std::fill(buf.begin(), buf.end(), std::byte{0});
      const size_t n = std::min<size_t>(kBlockSize, text.size() - b * kBlockSize);
      std::memcpy(buf.data(), text.data() + b * kBlockSize, n);
      if (IoResult r = device.write(b, buf); !r.ok()) return metadata_failed(r);
    }
    if (IoResult r = device.flush(); !r.ok()) return metadata_failed(r);
    journal_dirty = false;
    for (auto& [ino, in] : inodes) {
      in->meta_dirty = in->size_dirty = false;
      loaded_sizes[ino] = in->size;
    }
    return {};
  }

  // A journal commit failed: the filesystem reacts as the policy says, and the
  // error reaches the superblock's errseq (buffer heads of the block device).
  IoResult metadata_failed(IoResult r) {
    if (r.hung) return r;
    r.err = policy->delivered_errno(r.err);
    errseq_set(s_wb_err, r.err);
    enter(policy->on_metadata_error());
    return r;
  }

  // Reads the namespace back from the metadata blocks (mount).
  IoResult mount() {
    fs_state = FsReaction::continues;
    inodes.clear();
    names.clear();
    loaded_sizes.clear();
    journal_dirty = false;
    std::vector<std::byte> buf(kBlockSize);
    if (IoResult r = device.read(0, buf); !r.ok()) return r;
    std::string text(reinterpret_cast<const char*>(buf.data()), kBlockSize);
    size_t len = 0;
    if (std::sscanf(text.c_str(), "SPNS1 %zu", &len) != 1) return {EUCLEAN, false};
    const size_t header = text.find('\n') + 1;
    const size_t total = header + len;
    for (uint64_t b = 1; b * kBlockSize < total; ++b) {
      if (IoResult r = device.read(b, buf); !r.ok()) return r;
      text.append(reinterpret_cast<const char*>(buf.data()), kBlockSize);
    }
    std::istringstream in(text.substr(header, len));
    std::string kind;
    while (in >> kind) {
      if (kind == "next") {
        in >> next_ino;
      } else if (kind == "f") {
        uint64_t ino = 0, size = 0;
        std::string path;
        in >> ino >> size;
        in.get();
        std::getline(in, path);
        names[path] = ino;
        loaded_sizes[ino] = size;
      }
    }
    return {};
  }

  Inode* lookup(const std::string& path) {
    auto it = names.find(path);
    if (it == names.end()) return nullptr;
    return &inode(it->second);
  }

  // ---- errors and page fate ---------------------------------------------------

  // Remembers a writeback error where the policy keeps it (mapping_set_error).
  void record_error(Inode& in, int err) {
    ++writeback_errors;
    switch (policy->error_memory()) {
      case ErrorMemory::as_flags:
        in.as_flags |= err == ENOSPC ? AS_ENOSPC : AS_EIO;
        break;
      case ErrorMemory::errseq:
        errseq_set(in.wb_err, err);
        errseq_set(s_wb_err, err);  // mapping_set_error records it in the superblock too
        in.as_flags |= err == ENOSPC ? AS_ENOSPC : AS_EIO;  // for legacy callers
        break;
      case ErrorMemory::vnode_sticky:
        if (policy->remembers_error_for(!in.is_dir && !in.raw))
          in.vnode_error = policy->sticky_errno(err);
        break;
      case ErrorMemory::none:
        break;
    }
  }

  // Drops a page that held data never written: every descriptor that touched
  // it goes bad when the policy bounds error pages (R3).
  void discard_page(Inode& in, uint64_t index) {
    Page* page = in.mapping.find(index);
    if (!page) return;
    if (policy->bounds_error_pages())
      for (File* f : in.files)
        if (page->touched & f->bit()) f->gone_bad = true;
    in.mapping.erase(index);
  }

  // R7: past the limit, the oldest pages held in error are discarded.
  void enforce_error_limit() {
    if (!policy->bounds_error_pages() || !error_memory_limit) return;
    for (;;) {
      uint64_t held = 0;
      Inode* oldest_inode = nullptr;
      uint64_t oldest_index = 0, oldest_age = UINT64_MAX;
      for (auto& [ino, in] : inodes)
        in->mapping.for_each([&](uint64_t index, Page& page) {
          if (page.has(PG_error) && page.has(PG_dirty)) {
            held += kPageSize;
            if (page.error_age < oldest_age) {
              oldest_age = page.error_age;
              oldest_inode = in.get();
              oldest_index = index;
            }
          }
        });
      if (held <= *error_memory_limit || !oldest_inode) return;
      discard_page(*oldest_inode, oldest_index);
      ++discarded_error_pages;
    }
  }

  // Memory pressure: past the cache limit, clean pages go first (oldest use
  // first), then dirty ones are written back, oldest first, and go once
  // clean. A page the policy keeps dirty after a failed write stays.
  void balance_cache() {
    if (!cache_limit) return;
    struct Candidate {
      uint32_t last_use;
      bool dirty;
      Inode* inode;
      uint64_t index;
    };
    std::vector<Candidate> all;
    for (auto& [ino, in] : inodes)
      in->mapping.for_each([&](uint64_t index, Page& page) {
        all.push_back({page.last_use, page.has(PG_dirty), in.get(), index});
      });
    uint64_t held = all.size() * kPageSize;
    if (held <= *cache_limit) return;
    std::sort(all.begin(), all.end(), [](const Candidate& a, const Candidate& b) {
      return a.dirty != b.dirty ? !a.dirty : a.last_use < b.last_use;
    });
    for (const Candidate& c : all) {
      if (held <= *cache_limit) return;
      Page* page = c.inode->mapping.find(c.index);
      if (!page) {  // discarded meanwhile (a failed write under a discarding policy)
        held -= kPageSize;
        continue;
      }
      if (page->has(PG_dirty)) {
        IoResult r = writepage(*c.inode, c.index);  // background writeback: nobody is told
        if (r.hung) return;
        page = c.inode->mapping.find(c.index);
        if (!page) {
          held -= kPageSize;
          continue;
        }
        if (page->has(PG_dirty)) continue;  // kept dirty: it cannot go
      }
      c.inode->mapping.erase(c.index);
      ++evicted_pages;
      held -= kPageSize;
    }
  }

  // Writes one dirty page. On failure the policy decides what becomes of it.
  IoResult writepage(Inode& in, uint64_t index) {
    Page& page = *in.mapping.find(index);
    IoResult r;
    if (int err = fiu_point_errno("reference/writeback/submit")) {
      device.count_hit("libfiu");
      r = {err, false};
    } else {
      r = device.write(in.block_of(index), {page.data.get(), kPageSize});
    }
    if (r.hung) return r;
    if (r.ok()) {
      page.flags &= ~(PG_dirty | PG_error);
      return r;
    }
    const FailedPage fate = policy->on_writeback_error(r.err);
    enter(policy->on_data_error(r.err));
    r.err = policy->delivered_errno(r.err);
    if (!page.has(PG_error) || policy->records_repeated_failures()) record_error(in, r.err);
    switch (fate) {
      case FailedPage::clean_kept:
        page.flags = (page.flags & ~PG_dirty) | PG_error;
        break;
      case FailedPage::discard:
        in.mapping.erase(index);  // not "gone bad": the policy has no such notion
        break;
      case FailedPage::redirty:
        if (!page.has(PG_error)) page.error_age = ++error_clock;
        page.flags |= PG_dirty | PG_error;
        enforce_error_limit();
        break;
    }
    return r;
  }

  // Writes the dirty pages of `in` within [first, last] in index order.
  // `reporter`: the descriptor whose fsync this is (its failures are noted
  // apart in first_err_touched), or nullptr.
  void writeback_inode(Inode& in, const File* reporter, Writeback& wb, uint64_t first = 0,
                       uint64_t last = UINT64_MAX) {
    std::vector<uint64_t> dirty;
    in.mapping.for_each([&](uint64_t index, Page& page) {
      if (page.has(PG_dirty) && index >= first && index <= last) dirty.push_back(index);
    });
    for (uint64_t index : dirty) {
      Page* page = in.mapping.find(index);
      if (!page) continue;  // discarded by the R7 limit meanwhile
      const bool touched = reporter && (page->touched & reporter->bit());
      IoResult r = writepage(in, index);
      if (r.hung) {
        wb.hung = true;
        return;
      }
      if (!r.ok()) {
        if (!wb.first_err) wb.first_err = r.err;
        if (touched && !wb.first_err_touched) wb.first_err_touched = r.err;
      } else {
        wb.written.emplace_back(&in, index);
      }
    }
  }

  // Background writeback, sync(2) and syncfs(2): every dirty page, the
  // journal, a flush. Returns the first error met.
  SysResult write_everything() {
    if (!can_write()) return SysResult::success();  // nothing leaves a filesystem that is down
    Writeback wb;
    for (auto& [ino, in] : inodes) {
      writeback_inode(*in, nullptr, wb);
      if (wb.hung) return SysResult::hang();
    }
    int err = wb.first_err;
    if (journal_dirty) {
      IoResult m = commit_metadata();
      if (m.hung) return SysResult::hang();
      if (!err) err = m.err;
    } else {
      IoResult f = device.flush();
      if (f.hung) return SysResult::hang();
      if (!err) err = f.err;
    }
    return err ? SysResult::failure(err) : SysResult::success();
  }

  // What the policy has remembered for this descriptor (and, for the
  // check-and-clear kinds, forgets it).
  int check_error_memory(File& f) {
    Inode& in = *f.inode;
    switch (policy->error_memory()) {
      case ErrorMemory::as_flags: {
        const uint32_t flags = std::exchange(in.as_flags, 0);  // filemap_check_errors
        return flags & AS_ENOSPC ? ENOSPC : flags & AS_EIO ? EIO : 0;
      }
      case ErrorMemory::errseq: {
        in.as_flags = 0;  // file_check_and_advance_wb_err clears the legacy flags too
        return errseq_check_and_advance(in.wb_err, f.wb_cursor);
      }
      case ErrorMemory::vnode_sticky:
        return in.vnode_error;
      case ErrorMemory::none:
        return 0;
    }
    return 0;
  }

  // fsync, fdatasync, O_SYNC writes and msync: write the file's pages in
  // scope, flush the device, commit the inode if needed, report.
  SysResult fsync_file(File& f, bool datasync, uint64_t first = 0, uint64_t last = UINT64_MAX) {
    Inode& in = *f.inode;
    if (fs_state == FsReaction::shutdown) return SysResult::failure(EIO);
    if (fs_state == FsReaction::force_unmount) return SysResult::failure(ENXIO);  // ffs_fsync
    if (fs_state == FsReaction::read_only) {
      // ext4_sync_file on a read-only superblock writes nothing and reports
      // only what the descriptor has not been told.
      int err = check_error_memory(f);
      if (f.gone_bad) err = EIO;
      return err ? SysResult::failure(err) : SysResult::success();
    }
    if (in.is_dir) {
      IoResult m = journal_dirty ? commit_metadata() : device.flush();
      if (m.hung) return SysResult::hang();
      return m.ok() ? SysResult::success() : SysResult::failure(m.err);
    }
    Writeback wb;
    writeback_inode(in, &f, wb, first, last);
    if (wb.hung) return SysResult::hang();
    const int own_err = policy->fsync_reports_touched_only() ? wb.first_err_touched : wb.first_err;
    int err = 0;
    const bool needs_commit = !in.raw && (datasync ? in.size_dirty : in.meta_dirty);
    IoResult sync = (!own_err && needs_commit) ? commit_metadata() : device.flush();
    if (sync.hung) return SysResult::hang();
    if (!sync.ok() && policy->on_writeback_error(sync.err) == FailedPage::redirty) {
      // The device may not hold what it acknowledged: keep those pages dirty.
      for (auto [inode, index] : wb.written)
        if (Page* page = inode->mapping.find(index)) page->flags |= PG_dirty;
    }
    // The writeback's own error first, then what was remembered (ext4_sync_file:
    // "if (ret == 0) ret = err"; OpenBSD VOP_FSYNC: EIO only if r == 0).
    const int remembered = check_error_memory(f);
    err = own_err ? own_err : remembered;
    if (!err) err = sync.err;
    if (f.gone_bad) err = EIO;
    return err ? SysResult::failure(err) : SysResult::success();
  }

  // ---- descriptors --------------------------------------------------------------

  File* open_file(Inode& in, const OpenFlags& flags) {
    auto f = std::make_unique<File>();
    f->inode = &in;
    f->flags = flags;
    f->wb_cursor = policy->sample_at_open(in.wb_err);
    f->sb_cursor = errseq_sample(s_wb_err);  // file_sample_sb_err
    for (int s = 0; s < 64; ++s)
      if (!(in.used_slots & (1ull << s))) {
        f->slot = s;
        in.used_slots |= 1ull << s;
        break;
      }
    in.files.push_back(f.get());
    files.push_back(std::move(f));
    return files.back().get();
  }

  void release_file(File* f) {
    Inode& in = *f->inode;
    if (f->slot != kNoSlot) {
      const uint64_t bit = 1ull << f->slot;
      in.mapping.for_each([bit](uint64_t, Page& page) { page.touched &= ~bit; });
      in.used_slots &= ~bit;
    }
    std::erase(in.files, f);
    if (in.files.empty() && policy->error_memory() == ErrorMemory::vnode_sticky)
      in.vnode_error = 0;  // the vnode is released
    std::erase_if(files, [f](const auto& p) { return p.get() == f; });
  }

  // Reads page `index` into the cache if it is not there. Pages beyond the
  // device's data read as zeros.
  IoResult fill_page(Inode& in, uint64_t index, Page*& out) {
    if (Page* cached = in.mapping.find(index); cached && cached->has(PG_uptodate)) {
      out = cached;
      return {};
    }
    auto data = std::make_unique_for_overwrite<std::byte[]>(kPageSize);
    IoResult r = device.read(in.block_of(index), {data.get(), kPageSize});
    if (!r.ok()) {
      if (!r.hung) r.err = policy->delivered_errno(r.err);
      return r;
    }
    Page& page = in.mapping.get(index);
    page.data = std::move(data);
    page.flags |= PG_uptodate;
    page.last_use = ++use_clock;
    out = &page;
    return {};
  }

  void drop_all_descriptors();
};

// One process's descriptor table over the shared cache.
class RefProcess final : public Process {
 public:
  explicit RefProcess(PageCache::State& s) : s_(s) {}

  void forget_all() { fds_.clear(); }
  bool has_open() const { return !fds_.empty(); }

  SysResult open(const std::string& path, const OpenFlags& flags) override {
    Inode* in = nullptr;
    if (path == kRawDevicePath) {
      in = &s_.inode(kRawIno);
    } else if (path == "." || path.empty()) {
      if (!flags.directory && !flags.read_only) return SysResult::failure(EISDIR);
      in = &s_.inode(kRootIno);
    } else if (path.find('/') != std::string::npos) {
      return SysResult::failure(ENOENT);  // the model has one directory
    } else {
      if (int e = s_.refuses(!flags.read_only)) return SysResult::failure(e);
      in = s_.lookup(path);
      if (!in) {
        if (!flags.create) return SysResult::failure(ENOENT);
        in = &s_.inode(s_.next_ino++);
        s_.names[path] = in->ino;
        in->meta_dirty = in->size_dirty = true;
        s_.journal_dirty = true;
      }
      if (flags.directory) return SysResult::failure(ENOTDIR);
      if (flags.truncate && !flags.read_only) {
        in->mapping.clear();
        in->size = 0;
        in->meta_dirty = in->size_dirty = true;
        s_.journal_dirty = true;
      }
    }
    File* f = s_.open_file(*in, flags);
    const int fd = next_fd_++;
    fds_[fd] = f;
    return SysResult::success(fd);
  }

  SysResult close(int fd) override {
    File* f = file(fd);
    if (!f) return SysResult::failure(EBADF);
    fds_.erase(fd);
    s_.release_file(f);
    return SysResult::success();
  }

  SysResult pwrite(int fd, std::span<const std::byte> data, uint64_t offset) override {
    File* f = file(fd);
    if (!f || f->flags.read_only) return SysResult::failure(EBADF);
    Inode& in = *f->inode;
    if (int e = in.raw ? 0 : s_.refuses(true)) return SysResult::failure(e);
    if (in.is_dir) return SysResult::failure(EISDIR);
    if (data.empty()) return SysResult::success(0);
    const uint64_t end = offset + data.size();
    if ((end + kPageSize - 1) / kPageSize > in.max_pages()) return SysResult::failure(EFBIG);
    if (f->flags.direct) {
      if (SysResult r = direct_write(in, data, offset); !r.ok()) return r;
    } else {
      for (uint64_t pos = offset; pos < end;) {
        const uint64_t index = pos / kPageSize, in_page = pos % kPageSize;
        const uint64_t n = std::min<uint64_t>(kPageSize - in_page, end - pos);
        Page* page = nullptr;
        if (n == kPageSize) {
          Page& p = in.mapping.get(index);
          if (!p.data) p.data = std::make_unique_for_overwrite<std::byte[]>(kPageSize);
          p.flags |= PG_uptodate;
          page = &p;
        } else if (IoResult r = s_.fill_page(in, index, page); !r.ok()) {
          return r.hung ? SysResult::hang() : SysResult::failure(r.err);
        }
        std::memcpy(page->data.get() + in_page, data.data() + (pos - offset), n);
        page->flags |= PG_dirty;
        page->touched |= f->bit();
        page->last_use = ++s_.use_clock;
        pos += n;
      }
    }
    touch_inode(in, end);
    s_.balance_cache();
    if (f->flags.sync || f->flags.dsync) {
      SysResult r = s_.fsync_file(*f, !f->flags.sync, offset / kPageSize, (end - 1) / kPageSize);
      if (!r.ok()) return r;
    }
    return SysResult::success(int64_t(data.size()));
  }

  SysResult pread(int fd, std::span<std::byte> out, uint64_t offset) override {
    File* f = file(fd);
    if (!f) return SysResult::failure(EBADF);
    Inode& in = *f->inode;
    if (int e = in.raw ? 0 : s_.refuses(false)) return SysResult::failure(e);
    if (in.is_dir) return SysResult::failure(EISDIR);
    if (offset >= in.size || out.empty()) return SysResult::success(0);
    const uint64_t end = std::min<uint64_t>(in.size, offset + out.size());
    if (f->flags.direct) {
      if ((offset | (end - offset)) % kBlockSize) return SysResult::failure(EINVAL);
      for (uint64_t pos = offset; pos < end; pos += kBlockSize) {
        IoResult r = s_.device.read(in.block_of(pos / kBlockSize),
                                    out.subspan(pos - offset, kBlockSize));
        if (!r.ok()) return r.hung ? SysResult::hang() : SysResult::failure(r.err);
      }
      return SysResult::success(int64_t(end - offset));
    }
    for (uint64_t pos = offset; pos < end;) {
      const uint64_t index = pos / kPageSize, in_page = pos % kPageSize;
      const uint64_t n = std::min<uint64_t>(kPageSize - in_page, end - pos);
      Page* page = nullptr;
      if (IoResult r = s_.fill_page(in, index, page); !r.ok()) {
        if (pos == offset) return r.hung ? SysResult::hang() : SysResult::failure(r.err);
        return SysResult::success(int64_t(pos - offset));  // a short read, as read(2)
      }
      std::memcpy(out.data() + (pos - offset), page->data.get() + in_page, n);
      page->touched |= f->bit();
      page->last_use = ++s_.use_clock;
      pos += n;
    }
    s_.balance_cache();
    return SysResult::success(int64_t(end - offset));
  }

  SysResult fsync(int fd) override { return sync_fd(fd, false); }
  SysResult fdatasync(int fd) override { return sync_fd(fd, true); }

  SysResult sync_file_range(int fd, uint64_t offset, uint64_t length,
                            const SyncFileRangeFlags& flags) override {
    File* f = file(fd);
    if (!f) return SysResult::failure(EBADF);
    if (int e = s_.refuses(false)) return SysResult::failure(e);
    Inode& in = *f->inode;
    const uint64_t first = offset / kPageSize;
    const uint64_t last = length == 0 ? UINT64_MAX : (offset + length - 1) / kPageSize;
    // The model's writeback completes at once, so WAIT_BEFORE waits for
    // nothing; each wait then checks for errors as the platform's wait does.
    if (flags.wait_before)
      if (int err = wait_errors(*f, 0)) return SysResult::failure(err);
    Writeback wb;
    if (flags.write && s_.can_write()) {
      s_.writeback_inode(in, nullptr, wb, first, last);
      if (wb.hung) return SysResult::hang();
    }
    if (!flags.wait_after) return SysResult::success();  // WRITE alone reports nothing
    const int err = wait_errors(*f, wb.first_err);
    return err ? SysResult::failure(err) : SysResult::success();
  }

  SysResult msync_write(int fd, std::span<const std::byte> data, uint64_t offset) override {
    File* f = file(fd);
    if (!f || f->flags.read_only) return SysResult::failure(EBADF);
    Inode& in = *f->inode;
    if (int e = in.raw ? 0 : s_.refuses(true)) return SysResult::failure(e);
    if (offset + data.size() > in.size) return SysResult::failure(ENXIO);  // SIGBUS beyond EOF
    for (uint64_t pos = offset; pos < offset + data.size();) {
      const uint64_t index = pos / kPageSize, in_page = pos % kPageSize;
      const uint64_t n = std::min<uint64_t>(kPageSize - in_page, offset + data.size() - pos);
      Page* page = nullptr;
      if (IoResult r = s_.fill_page(in, index, page); !r.ok())
        return r.hung ? SysResult::hang() : SysResult::failure(r.err);  // the fault: SIGBUS
      std::memcpy(page->data.get() + in_page, data.data() + (pos - offset), n);
      page->flags |= PG_dirty;
      page->touched |= f->bit();
      pos += n;
    }
    touch_inode(in, offset + data.size());
    // msync(MS_SYNC) is vfs_fsync_range over the mapped range.
    return s_.fsync_file(*f, false, offset / kPageSize, (offset + data.size() - 1) / kPageSize);
  }

  MappedRead mmap_read(int fd, std::span<std::byte> out, uint64_t offset) override {
    MappedRead m;
    File* f = file(fd);
    if (!f) return {SysResult::failure(EBADF), "", {}};
    Inode& in = *f->inode;
    if (in.is_dir) return {SysResult::failure(ENODEV), "", {}};
    if (!in.raw && s_.refuses(false) && s_.policy->mmap_refused_when_down())
      return {SysResult::failure(EIO), "", {}};  // ext4_file_mmap
    const uint64_t end = offset + out.size();
    for (uint64_t i = offset / kPageSize; i * kPageSize < end; ++i) {  // mincore
      const Page* p = in.mapping.find(i);
      m.resident.push_back(p && p->has(PG_uptodate));
    }
    // A page the cache holds is served from it; any other must be read in,
    // which fails (SIGBUS) past EOF, on a device error, or on a filesystem
    // that is down.
    for (uint64_t pos = offset; pos < end;) {
      const uint64_t index = pos / kPageSize, in_page = pos % kPageSize;
      const uint64_t n = std::min<uint64_t>(kPageSize - in_page, end - pos);
      Page* page = in.mapping.find(index);
      if (!page || !page->has(PG_uptodate)) {
        if (index * kPageSize >= in.size || (!in.raw && s_.refuses(false))) {
          m.signal = "SIGBUS";
          break;
        }
        if (IoResult r = s_.fill_page(in, index, page); !r.ok()) {
          if (r.hung) return {SysResult::hang(), "", m.resident};
          m.signal = "SIGBUS";
          break;
        }
      }
      std::memcpy(out.data() + (pos - offset), page->data.get() + in_page, n);
      page->touched |= f->bit();
      page->last_use = ++s_.use_clock;
      pos += n;
      m.copied = pos - offset;
      m.result = SysResult::success(int64_t(m.copied));
    }
    if (!m.signal.empty()) m.result = SysResult{-1, 0, false};
    return m;
  }

  SysResult syncfs(int fd) override {
    File* f = file(fd);
    if (!f) return SysResult::failure(EBADF);
    if (s_.fs_state == FsReaction::shutdown || s_.fs_state == FsReaction::force_unmount)
      return SysResult::failure(EIO);
    SysResult r = s_.write_everything();
    if (r.hung) return r;
    if (s_.policy->syncfs_checks_sb_errseq()) {
      // SYSCALL syncfs since 5.8: what sync_filesystem met is not the answer;
      // the superblock's errseq against this descriptor's f_sb_err is.
      const int err = errseq_check_and_advance(s_.s_wb_err, f->sb_cursor);
      return err ? SysResult::failure(err) : SysResult::success();
    }
    return s_.policy->syncfs_reports() ? r : SysResult::success();
  }

  SysResult sync() override {
    SysResult r = s_.write_everything();
    return r.hung ? r : SysResult::success();  // sync(2) returns nothing
  }

  SysResult stat(const std::string& path) override {
    if (s_.fs_state == FsReaction::force_unmount) return SysResult::failure(EIO);
    if (path == ".") return SysResult::success(0);
    Inode* in = s_.lookup(path);
    return in ? SysResult::success(int64_t(in->size)) : SysResult::failure(ENOENT);
  }

  SysResult rename(const std::string& from, const std::string& to) override {
    if (int e = s_.refuses(true)) return SysResult::failure(e);
    auto it = s_.names.find(from);
    if (it == s_.names.end()) return SysResult::failure(ENOENT);
    const uint64_t ino = it->second;
    s_.names.erase(it);
    s_.names[to] = ino;
    s_.journal_dirty = true;
    return SysResult::success();
  }

  SysResult unlink(const std::string& path) override {
    if (int e = s_.refuses(true)) return SysResult::failure(e);
    if (!s_.names.erase(path)) return SysResult::failure(ENOENT);
    s_.journal_dirty = true;
    return SysResult::success();
  }

 private:
  // What a sync_file_range wait reports: since 4.14 file_fdatawait_range,
  // which checks and advances the descriptor's errseq cursor; before,
  // filemap_fdatawait_range, which checks and clears the legacy flags.
  // Policies without either report what this writeback met.
  int wait_errors(File& f, int met) {
    Inode& in = *f.inode;
    if (s_.policy->sync_file_range_checks_errseq()) return s_.check_error_memory(f);
    switch (s_.policy->error_memory()) {
      case ErrorMemory::as_flags:
      case ErrorMemory::errseq: {
        const uint32_t fl = std::exchange(in.as_flags, 0);
        return fl & AS_ENOSPC ? ENOSPC : fl & AS_EIO ? EIO : 0;
      }
      case ErrorMemory::vnode_sticky:
        return met ? met : in.vnode_error;
      case ErrorMemory::none:
        return met;
    }
    return 0;
  }

  File* file(int fd) {
    auto it = fds_.find(fd);
    return it == fds_.end() ? nullptr : it->second;
  }

  SysResult sync_fd(int fd, bool datasync) {
    File* f = file(fd);
    if (!f) return SysResult::failure(EBADF);
    return s_.fsync_file(*f, datasync);
  }

  // O_DIRECT: straight to the device, bypassing (and invalidating) the cache.
  // Errors go to the caller only; nothing is recorded in the mapping.
  SysResult direct_write(Inode& in, std::span<const std::byte> data, uint64_t offset) {
    if ((offset | data.size()) % kBlockSize) return SysResult::failure(EINVAL);
    for (uint64_t pos = 0; pos < data.size(); pos += kBlockSize) {
      const uint64_t index = (offset + pos) / kBlockSize;
      in.mapping.erase(index);
      IoResult r = s_.device.write(in.block_of(index), data.subspan(pos, kBlockSize));
      if (!r.ok()) return r.hung ? SysResult::hang() : SysResult::failure(r.err);
    }
    return SysResult::success();
  }

  void touch_inode(Inode& in, uint64_t end) {
    if (in.raw) return;
    in.meta_dirty = true;  // mtime
    if (end > in.size) {
      in.size = end;
      in.size_dirty = true;
    }
    s_.journal_dirty = true;
  }

  PageCache::State& s_;
  std::map<int, File*> fds_;
  int next_fd_ = 3;
};

void PageCache::State::drop_all_descriptors() {
  for (auto& [name, p] : processes) p->forget_all();
  while (!files.empty()) release_file(files.back().get());
}

// ---- PageCache -------------------------------------------------------------------

PageCache::PageCache(std::unique_ptr<Policy> policy) : s_(std::make_unique<State>()) {
  s_->policy = std::move(policy);
  // mkfs: an empty namespace on stable storage.
  IoResult r = s_->commit_metadata();
  (void)r;  // a fresh device has no faults: this cannot fail
}

PageCache::~PageCache() = default;

const Policy& PageCache::policy() const { return *s_->policy; }
SimDevice& PageCache::device() { return s_->device; }

CacheStats PageCache::stats() const {
  CacheStats st;
  for (const auto& [ino, in] : s_->inodes)
    in->mapping.for_each([&](uint64_t, Page& page) {
      ++st.cached_pages;
      if (page.has(PG_dirty)) ++st.dirty_pages;
      if (page.has(PG_error)) ++st.error_pages;
      if (page.has(PG_error) && page.has(PG_dirty)) st.error_bytes_held += kPageSize;
    });
  st.discarded_error_pages = s_->discarded_error_pages;
  st.writeback_errors = s_->writeback_errors;
  return st;
}

std::string PageCache::layer() const { return s_->device.last_layer(); }

nlohmann::json PageCache::environment() const {
  const CacheStats st = stats();
  return {{"kind", "reference"},
          {"policy", std::string(s_->policy->name())},
          {"injector", "reference-device"},
          {"measured", false},
          {"note", "modelled, not measured"},
          {"page_size", kPageSize},
          {"counters",
           {{"writeback_errors", st.writeback_errors},
            {"discarded_error_pages", st.discarded_error_pages},
            {"evicted_under_pressure", s_->evicted_pages},
            {"error_bytes_held", st.error_bytes_held},
            {"device_writes", s_->device.writes()},
            {"device_flushes", s_->device.flushes()}}}};
}

Process& PageCache::process(const std::string& name) {
  auto& p = s_->processes[name];
  if (!p) p = std::make_unique<RefProcess>(*s_);
  return *p;
}

SysResult PageCache::fault(const FaultRequest& request, nlohmann::json& detail) {
  FaultRule rule = request.rule;
  if (rule.mode == FaultMode::error && rule.err == 0) rule.err = EIO;
  auto region = [&](const std::string& path) -> std::optional<ByteRange> {
    Inode* in = s_->lookup(path);
    if (!in) return std::nullopt;
    return ByteRange{in->block_of(0) * kBlockSize, in->max_pages() * kPageSize};
  };
  switch (request.where) {
    case FaultRequest::Where::device:
      break;
    case FaultRequest::Where::data: {
      auto r = region(request.file);
      if (!r) return SysResult::failure(ENOENT);
      rule.ranges = {*r};
      break;
    }
    case FaultRequest::Where::metadata:
      // Everything but the file's data: the journal, inodes, directories and
      // other files.
      if (auto r = region(request.file)) rule.ranges = {*r};
      rule.invert = true;
      break;
    case FaultRequest::Where::journal:
      rule.ranges = {ByteRange{0, kMetadataBlocks * kBlockSize}};
      break;
    case FaultRequest::Where::free:
      // Space no file holds yet: every file's region past its committed size,
      // and the regions of files not created yet. The metadata blocks and
      // the raw device's bytes stay healthy.
      rule.ranges = {ByteRange{0, kDataRegionBlock * kBlockSize}};
      for (const auto& [path, ino] : s_->names) {
        const uint64_t pages = (s_->committed_size(ino) + kPageSize - 1) / kPageSize;
        if (pages) rule.ranges.push_back({s_->inode(ino).block_of(0) * kBlockSize, pages * kPageSize});
      }
      rule.invert = true;
      break;
  }
  s_->device.add_fault(rule);
  auto ranges = nlohmann::json::array();
  for (const auto& r : rule.ranges) ranges.push_back({r.offset, r.length});
  detail["ranges"] = ranges;
  detail["invert"] = rule.invert;
  detail["io"] = std::string(to_string(rule.op));
  detail["mode"] = std::string(to_string(rule.mode));
  if (rule.mode == FaultMode::error) detail["errno"] = errno_name(rule.err);
  if (rule.count) detail["count"] = *rule.count;
  return SysResult::success();
}

SysResult PageCache::shutdown(ShutdownFlush flush, nlohmann::json& detail) {
  // GOING_FLAGS_DEFAULT freezes (syncs) the filesystem first; LOGFLUSH
  // commits the journal, not the data; NOLOGFLUSH writes nothing. What could
  // not be written then stays in the cache until the unmount drops it.
  switch (flush) {
    case ShutdownFlush::sync: {
      SysResult r = s_->write_everything();
      if (r.hung) return r;
      detail["sync"] = describe(r);
      break;
    }
    case ShutdownFlush::log: {
      // The log holds names, not the size of an append whose data is still
      // dirty: ext4 (i_disksize, delayed allocation) and xfs (di_size at I/O
      // completion) move the on-disk size with the data. probes/shutdown.sh.
      std::vector<std::pair<Inode*, uint64_t>> appended;
      for (auto& [ino, in] : s_->inodes) {
        bool dirty = false;
        in->mapping.for_each([&](uint64_t, Page& page) { dirty |= page.has(PG_dirty); });
        if (dirty && !in->raw) {
          appended.emplace_back(in.get(), in->size);
          in->size = std::min(in->size, s_->committed_size(ino));
        }
      }
      IoResult m = s_->journal_dirty && s_->can_write() ? s_->commit_metadata() : IoResult{};
      for (auto [in, size] : appended) in->size = size;
      if (m.hung) return SysResult::hang();
      detail["log_commit"] = m.err ? errno_name(m.err) : "0";
      break;
    }
    case ShutdownFlush::none:
      break;
  }
  s_->enter(FsReaction::shutdown);
  return SysResult::success();
}

SysResult PageCache::heal() {
  s_->device.heal();
  return SysResult::success();
}

SysResult PageCache::thin_limit(uint64_t headroom, FaultMode when_full, nlohmann::json& detail) {
  s_->device.set_thin(headroom, when_full);
  detail["allocated_blocks"] = s_->device.allocated_blocks();
  detail["capacity_blocks"] = *s_->device.capacity_blocks();
  detail["when_full"] = when_full == FaultMode::hang ? "queue" : "error";
  return SysResult::success();
}

SysResult PageCache::grow(uint64_t bytes, nlohmann::json& detail) {
  if (!s_->device.capacity_blocks()) return SysResult::failure(EINVAL);
  s_->device.grow(bytes);
  detail["capacity_blocks"] = *s_->device.capacity_blocks();
  return SysResult::success();
}

SysResult PageCache::memory_limit(uint64_t bytes) {
  s_->error_memory_limit = bytes;
  s_->enforce_error_limit();
  return SysResult::success();
}

SysResult PageCache::cache_limit(uint64_t bytes) {
  s_->cache_limit = bytes;
  s_->balance_cache();
  return SysResult::success();
}

SysResult PageCache::drop_caches() {
  for (auto& [ino, in] : s_->inodes) {
    in->mapping.erase_if([](const Page& page) { return !page.has(PG_dirty); });
    // An inode nobody holds open, with nothing dirty, is evicted: what it
    // remembered about errors goes with it.
    if (in->files.empty() && in->mapping.empty()) {
      in->wb_err = 0;
      in->as_flags = 0;
      in->vnode_error = 0;
    }
  }
  return SysResult::success();
}

SysResult PageCache::writeback() {
  SysResult r = s_->write_everything();
  return r.hung ? r : SysResult::success();  // nobody is told
}

SysResult PageCache::remount() {
  for (const auto& [name, p] : s_->processes)
    if (p->has_open()) return SysResult::failure(EBUSY);
  SysResult r = s_->write_everything();
  if (r.hung) return r;
  // Whatever could not be written is lost with the unmount.
  if (IoResult m = s_->mount(); !m.ok()) return m.hung ? SysResult::hang() : SysResult::failure(m.err);
  return SysResult::success();
}

SysResult PageCache::power_cut() {
  s_->drop_all_descriptors();
  s_->device.power_cut();
  if (IoResult m = s_->mount(); !m.ok()) return m.hung ? SysResult::hang() : SysResult::failure(m.err);
  return SysResult::success();
}

ReadBack PageCache::read_back(const std::string& path, uint64_t offset, uint64_t length) {
  ReadBack rb;
  s_->drop_all_descriptors();
  rb.result = remount();
  if (!rb.result.ok()) return rb;
  Inode* in = path == kRawDevicePath ? &s_->inode(kRawIno) : s_->lookup(path);
  if (!in) {
    rb.result = SysResult::failure(ENOENT);
    return rb;
  }
  const uint64_t end = std::min<uint64_t>(in->size, offset + length);
  if (offset >= end) {
    rb.result = SysResult::success(0);
    return rb;
  }
  rb.data.resize(end - offset);
  std::vector<std::byte> block(kBlockSize);
  for (uint64_t pos = offset; pos < end;) {
    const uint64_t index = pos / kBlockSize, in_block = pos % kBlockSize;
    const uint64_t n = std::min<uint64_t>(kBlockSize - in_block, end - pos);
    IoResult r = s_->device.read(in->block_of(index), block);
    if (!r.ok()) {
      rb.result = r.hung ? SysResult::hang() : SysResult::failure(r.err);
      rb.data.clear();
      return rb;
    }
    std::memcpy(rb.data.data() + (pos - offset), block.data() + in_block, n);
    pos += n;
  }
  rb.result = SysResult::success(int64_t(end - offset));
  return rb;
}

uint64_t PageCache::injected_hits() { return s_->device.hits(); }

}  // namespace syncprobe::ref
