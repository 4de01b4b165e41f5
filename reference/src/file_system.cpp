// FileSystem: open file descriptions, I/O and sync calls. The machine around
// the cache (eviction, remount, power cut, shutdown, faults) is in
// fs_machine.cpp, the namespace operations in fs_namespace.cpp, writeback in
// fs_writeback.cpp.
#include "syncprobe/ref/file_system.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <stdexcept>

#include "fs_state.h"

namespace syncprobe::ref {

FileSystem::FileSystem(std::unique_ptr<Policy> policy, const Options& options)
    : s_(std::make_unique<State>()) {
  s_->policy = std::move(policy);
  s_->options = options;
  s_->options.max_file_bytes = std::max<uint64_t>(kPageSize, options.max_file_bytes / kPageSize * kPageSize);
  // mkfs: an empty namespace on stable storage. A fresh device has no faults.
  if (IoResult r = s_->commit_metadata(); !r.ok()) throw std::logic_error("reference mkfs failed");
}

FileSystem::~FileSystem() = default;

const Policy& FileSystem::policy() const { return *s_->policy; }
SimDevice& FileSystem::device() { return s_->device; }

CacheStats FileSystem::stats() const {
  CacheStats st;
  for (const auto& [ino, in] : s_->inodes) {
    st.cached_pages += in->mapping.size();
    st.dirty_pages += in->mapping.dirty_pages();
    st.error_pages += in->mapping.error_pages();
    st.error_bytes_held += in->mapping.dirty_error_pages() * kPageSize;
  }
  st.discarded_error_pages = s_->discarded_error_pages;
  st.writeback_errors = s_->writeback_errors;
  st.evicted_pages = s_->evicted_pages;
  st.device_writes = s_->device.writes();
  st.device_flushes = s_->device.flushes();
  st.open_files = s_->open_files;
  st.frame_bytes_reserved = s_->frames.bytes_reserved();
  return st;
}

// ---- open file descriptions -------------------------------------------------------

SysResult FileSystem::open(const std::string& path, const OpenFlags& flags, Handle& out, uint32_t mode) {
  State& s = *s_;
  if (const std::string p = State::normalize(path); !p.empty()) {
    // Path lookup comes first: a missing parent is ENOENT on any filesystem.
    if (int e = s.check_parent(p)) return SysResult::failure(e);
    if (int e = s.refuses(!flags.read_only)) return SysResult::failure(e);
  }
  int err = 0;
  Inode* in = s.resolve(path, err);
  if (in && in->is_dir) {
    if (!flags.directory && !flags.read_only) return SysResult::failure(EISDIR);
  } else {
    if (!in) {
      if (err != ENOENT || !flags.create) return SysResult::failure(err);
      const std::string p = State::normalize(path);
      if (int perr = s.check_parent(p)) return SysResult::failure(perr);
      in = &s.inode(s.next_ino++);
      s.names[p] = in->ino;
      in->mode = mode & 07777;
      in->meta_dirty = in->size_dirty = true;
      s.journal_dirty = true;
    } else if (flags.create && flags.exclusive) {
      return SysResult::failure(EEXIST);
    }
    if (flags.directory) return SysResult::failure(ENOTDIR);
    if (flags.truncate && !flags.read_only)
      if (IoResult r = s.truncate_inode(*in, 0); !r.ok()) return from_io(r);
  }
  out = s.open_file(*in, flags);
  return SysResult::success();
}

SysResult FileSystem::open_device(const OpenFlags& flags, Handle& out) {
  out = s_->open_file(s_->inode(kRawIno), flags);
  return SysResult::success();
}

SysResult FileSystem::close(Handle h) {
  if (!s_->file(h)) return SysResult::failure(EBADF);
  s_->release_file(h);
  return SysResult::success();
}

// O_DIRECT: straight to the device, bypassing (and invalidating) the cache.
// Errors go to the caller only; nothing is recorded in the mapping.
static SysResult direct_write(FileSystem::State& s, Inode& in, std::span<const std::byte> data,
                              uint64_t offset) {
  if ((offset | data.size()) % kBlockSize) return SysResult::failure(EINVAL);
  for (uint64_t pos = 0; pos < data.size(); pos += kBlockSize) {
    const uint64_t index = (offset + pos) / kBlockSize;
    in.mapping.erase(index);
    IoResult r = s.device.write(in.block_of(index), data.subspan(pos, kBlockSize));
    if (!r.ok()) return from_io(r);
    in.truncated.remove(index);
  }
  return SysResult::success();
}

// n bytes into a cached page at in_page (a partial write keeps the rest of
// the page), which is then up to date, dirty, and touched and used by f.
// Inlined, so that the page handle stays in registers across the copy.
[[gnu::always_inline]] static inline void copy_into_page(FileSystem::State& s, Inode& in, const File& f,
                                                         PageMap::Page page, uint64_t in_page,
                                                         const std::byte* from, uint64_t n) {
  copy_bytes(in.mapping.writable(page, n != kPageSize) + in_page, from, n);
  in.mapping.mark_written(page);
  page.touched() |= f.bit();
  page.last_use() = ++s.use_clock;
}

// n bytes out of a cached page from in_page, which is then touched and used by f.
[[gnu::always_inline]] static inline void copy_out_of_page(FileSystem::State& s, const File& f, PageMap::Page page,
                                                           uint64_t in_page, std::byte* to, uint64_t n) {
  copy_bytes(to, page.data() + in_page, n);
  page.touched() |= f.bit();
  page.last_use() = ++s.use_clock;
}

// Any write: checks in the order of write(2), then page by page.
[[gnu::noinline]] static SysResult write_any(FileSystem::State& s, File* f, std::span<const std::byte> data,
                                             uint64_t offset) {
  if (!f || f->flags.read_only) return SysResult::failure(EBADF);
  Inode& in = *f->inode;
  if (int e = in.raw ? 0 : s.refuses(true)) return SysResult::failure(e);
  if (in.is_dir) return SysResult::failure(EISDIR);
  if (data.empty()) return SysResult::success(0);
  const uint64_t end = offset + data.size();
  if ((end + kPageSize - 1) / kPageSize > in.max_pages()) return SysResult::failure(EFBIG);
  if (f->flags.direct) {
    if (SysResult r = direct_write(s, in, data, offset); !r.ok()) return r;
  } else {
    for (uint64_t pos = offset; pos < end;) {
      const uint64_t index = pos / kPageSize, in_page = pos % kPageSize;
      const uint64_t n = std::min<uint64_t>(kPageSize - in_page, end - pos);
      PageMap::Page page;
      if (n == kPageSize) {
        page = in.mapping.get(index);  // overwritten whole: nothing to read first
      } else {
        IoResult r;
        page = s.fill_page(in, index, r);
        if (!page) return from_io(r);
      }
      copy_into_page(s, in, *f, page, in_page, data.data() + (pos - offset), n);
      pos += n;
    }
  }
  s.touch_inode(in, end);
  if (s.cache_limit) s.balance_cache();
  if (f->flags.sync || f->flags.dsync) {
    SysResult r = s.fsync_file(*f, !f->flags.sync, offset / kPageSize, (end - 1) / kPageSize);
    if (!r.ok()) return r;
  }
  return SysResult::success(int64_t(data.size()));
}

SysResult FileSystem::pwrite(Handle h, std::span<const std::byte> data, uint64_t offset) {
  State& s = *s_;
  File* f = s.file(h);
  // The common case, with nothing to decide but the page: one whole page
  // through a plain descriptor (File::plain_writes) of a filesystem with no
  // state or cache limit to honour (State::plain), within the file's
  // region. Every check of write_any passes for it, and it does what
  // write_any would, without a loop or the registers the general path
  // saves (docs/bench.md).
  if (f && f->plain_writes && data.size() == kPageSize && offset % kPageSize == 0 && s.plain() &&
      offset / kPageSize < f->inode->blocks_per_file) [[likely]] {
    Inode& in = *f->inode;
    copy_into_page(s, in, *f, in.mapping.get(offset / kPageSize), 0, data.data(), kPageSize);
    s.touch_inode(in, offset + kPageSize);
    return SysResult::success(int64_t(kPageSize));
  }
  return write_any(s, f, data, offset);
}

// Any read: checks in the order of read(2), then page by page.
[[gnu::noinline]] static SysResult read_any(FileSystem::State& s, File* f, std::span<std::byte> out,
                                            uint64_t offset) {
  if (!f) return SysResult::failure(EBADF);
  Inode& in = *f->inode;
  if (int e = in.raw ? 0 : s.refuses(false)) return SysResult::failure(e);
  if (in.is_dir) return SysResult::failure(EISDIR);
  if (offset >= in.size || out.empty()) return SysResult::success(0);
  const uint64_t end = std::min<uint64_t>(in.size, offset + out.size());
  if (f->flags.direct) {
    if ((offset | (end - offset)) % kBlockSize) return SysResult::failure(EINVAL);
    for (uint64_t pos = offset; pos < end; pos += kBlockSize) {
      IoResult r = s.device.read(in.block_of(pos / kBlockSize), out.subspan(pos - offset, kBlockSize));
      if (!r.ok()) return from_io(r);
      if (in.truncated.contains(pos / kBlockSize)) std::memset(out.data() + (pos - offset), 0, kBlockSize);
    }
    return SysResult::success(int64_t(end - offset));
  }
  for (uint64_t pos = offset; pos < end;) {
    const uint64_t index = pos / kPageSize, in_page = pos % kPageSize;
    const uint64_t n = std::min<uint64_t>(kPageSize - in_page, end - pos);
    IoResult r;
    PageMap::Page page = s.fill_page(in, index, r);
    if (!page) {
      if (pos == offset) return from_io(r);
      return SysResult::success(int64_t(pos - offset));  // a short read, as read(2)
    }
    copy_out_of_page(s, *f, page, in_page, out.data() + (pos - offset), n);
    pos += n;
  }
  if (s.cache_limit) s.balance_cache();
  return SysResult::success(int64_t(end - offset));
}

SysResult FileSystem::pread(Handle h, std::span<std::byte> out, uint64_t offset) {
  State& s = *s_;
  File* f = s.file(h);
  // The common case: one whole page, cached and up to date, inside the
  // file, through a buffered descriptor of a regular file, on a filesystem
  // with no state or cache limit to honour: what read_any would do, without
  // its loop.
  if (f && !f->flags.direct && out.size() == kPageSize && offset % kPageSize == 0 && s.plain()) [[likely]] {
    Inode& in = *f->inode;
    if (!in.raw && !in.is_dir && offset + kPageSize <= in.size)
      if (PageMap::Page page = in.mapping.find(offset / kPageSize); page && page.has(PG_uptodate)) {
        copy_out_of_page(s, *f, page, 0, out.data(), kPageSize);
        return SysResult::success(int64_t(kPageSize));
      }
  }
  return read_any(s, f, out, offset);
}

SysResult FileSystem::fsync(Handle h, bool datasync) {
  File* f = s_->file(h);
  if (!f) return SysResult::failure(EBADF);
  return s_->fsync_file(*f, datasync);
}

SysResult FileSystem::sync_file_range(Handle h, uint64_t offset, uint64_t length,
                                      const SyncRangeFlags& flags) {
  State& s = *s_;
  File* f = s.file(h);
  if (!f) return SysResult::failure(EBADF);
  if (int e = s.refuses(false)) return SysResult::failure(e);
  Inode& in = *f->inode;
  const uint64_t first = offset / kPageSize;
  const uint64_t last = length == 0 ? UINT64_MAX : (offset + length - 1) / kPageSize;
  // The model's writeback completes at once, so WAIT_BEFORE waits for
  // nothing; each wait then checks for errors as the platform's wait does.
  if (flags.wait_before)
    if (int err = s.wait_errors(*f, 0)) return SysResult::failure(err);
  Writeback wb;
  if (flags.write && s.can_write()) {
    s.writeback_inode(in, nullptr, wb, first, last);
    if (wb.hung) return SysResult::hang();
  }
  if (!flags.wait_after) return SysResult::success();  // WRITE alone reports nothing
  const int err = s.wait_errors(*f, wb.first_err);
  return err ? SysResult::failure(err) : SysResult::success();
}

SysResult FileSystem::msync_write(Handle h, std::span<const std::byte> data, uint64_t offset) {
  State& s = *s_;
  File* f = s.file(h);
  if (!f || f->flags.read_only) return SysResult::failure(EBADF);
  Inode& in = *f->inode;
  if (int e = in.raw ? 0 : s.refuses(true)) return SysResult::failure(e);
  if (offset + data.size() > in.size) return SysResult::failure(ENXIO);  // SIGBUS beyond EOF
  for (uint64_t pos = offset; pos < offset + data.size();) {
    const uint64_t index = pos / kPageSize, in_page = pos % kPageSize;
    const uint64_t n = std::min<uint64_t>(kPageSize - in_page, offset + data.size() - pos);
    IoResult r;
    PageMap::Page page = s.fill_page(in, index, r);
    if (!page) return from_io(r);  // the fault: SIGBUS
    copy_bytes(in.mapping.writable(page, n != kPageSize) + in_page, data.data() + (pos - offset), n);
    in.mapping.set_flags(page, PG_dirty);
    page.touched() |= f->bit();
    pos += n;
  }
  s.touch_inode(in, offset + data.size());
  // msync(MS_SYNC) is vfs_fsync_range over the mapped range.
  return s.fsync_file(*f, false, offset / kPageSize, (offset + data.size() - 1) / kPageSize);
}

SysResult FileSystem::ftruncate(Handle h, uint64_t size) {
  File* f = s_->file(h);
  if (!f) return SysResult::failure(EBADF);
  if (f->flags.read_only) return SysResult::failure(EINVAL);  // ftruncate(2) on O_RDONLY
  if (int e = s_->refuses(true)) return SysResult::failure(e);
  if (f->inode->is_dir || f->inode->raw) return SysResult::failure(EINVAL);
  if ((size + kPageSize - 1) / kPageSize > f->inode->max_pages()) return SysResult::failure(EFBIG);
  return from_io(s_->truncate_inode(*f->inode, size));
}

SysResult FileSystem::syncfs(Handle h) {
  State& s = *s_;
  File* f = s.file(h);
  if (!f) return SysResult::failure(EBADF);
  if (s.fs_state == FsReaction::shutdown || s.fs_state == FsReaction::force_unmount)
    return SysResult::failure(EIO);
  SysResult r = s.write_everything();
  if (r.hung) return r;
  if (s.policy->syncfs_checks_sb_errseq()) {
    // SYSCALL syncfs since 5.8: what sync_filesystem met is not the answer;
    // the superblock's errseq against this descriptor's f_sb_err is.
    const int err = errseq_check_and_advance(s.s_wb_err, f->sb_cursor);
    return err ? SysResult::failure(err) : SysResult::success();
  }
  return s.policy->syncfs_reports() ? r : SysResult::success();
}

MappedRead FileSystem::mmap_read(Handle h, std::span<std::byte> out, uint64_t offset) {
  State& s = *s_;
  MappedRead m;
  File* f = s.file(h);
  if (!f) return {SysResult::failure(EBADF), false, {}, 0};
  Inode& in = *f->inode;
  if (in.is_dir) return {SysResult::failure(ENODEV), false, {}, 0};
  if (!in.raw && s.refuses(false) && s.policy->mmap_refused_when_down())
    return {SysResult::failure(EIO), false, {}, 0};  // ext4_file_mmap
  const uint64_t end = offset + out.size();
  for (uint64_t i = offset / kPageSize; i * kPageSize < end; ++i) {  // mincore
    PageMap::Page p = in.mapping.find(i);
    m.resident.push_back(p && p.has(PG_uptodate));
  }
  // A page the cache holds is served from it; any other must be read in,
  // which fails (SIGBUS) past EOF, on a device error, or on a filesystem
  // that is down.
  for (uint64_t pos = offset; pos < end;) {
    const uint64_t index = pos / kPageSize, in_page = pos % kPageSize;
    const uint64_t n = std::min<uint64_t>(kPageSize - in_page, end - pos);
    PageMap::Page page = in.mapping.find(index);
    if (!page || !page.has(PG_uptodate)) {
      if (index * kPageSize >= in.size || (!in.raw && s.refuses(false))) {
        m.sigbus = true;
        break;
      }
      IoResult r;
      page = s.fill_page(in, index, r);
      if (!page) {
        if (r.hung) return {SysResult::hang(), false, m.resident, 0};
        m.sigbus = true;
        break;
      }
    }
    copy_out_of_page(s, *f, page, in_page, out.data() + (pos - offset), n);
    pos += n;
    m.copied = pos - offset;
    m.result = SysResult::success(int64_t(m.copied));
  }
  if (m.sigbus) m.result = SysResult{-1, 0, false};
  return m;
}

SysResult FileSystem::sync() {
  SysResult r = s_->write_everything();
  return r.hung ? r : SysResult::success();  // sync(2) returns nothing
}

}  // namespace syncprobe::ref
