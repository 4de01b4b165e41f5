// Writeback and what the policy makes of its failures; descriptors and the
// pages they touch.
#include <algorithm>
#include <cerrno>
#include <cstring>
#include <utility>

#include "fs_state.h"
#include "fiu_points.h"

namespace syncprobe::ref {

using State = FileSystem::State;

// Remembers a writeback error where the policy keeps it (mapping_set_error).
void State::record_error(Inode& in, int err) {
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
      if (policy->remembers_error_for(!in.is_dir && !in.raw)) in.vnode_error = policy->sticky_errno(err);
      break;
    case ErrorMemory::none:
      break;
  }
}

// Drops a page that held data never written: every descriptor that touched
// it goes bad when the policy bounds error pages (R3).
void State::discard_page(Inode& in, uint64_t index) {
  PageMap::Page page = in.mapping.find(index);
  if (!page) return;
  if (policy->bounds_error_pages())
    for (File* f : in.files)
      if (page.touched() & f->bit()) f->gone_bad = true;
  in.mapping.erase(index);
}

// R7: past the limit, the oldest pages held in error are discarded. Only
// policies that bound error pages get here, and under them a page in
// PG_error is always PG_dirty and has an error age.
void State::enforce_error_limit() {
  if (!policy->bounds_error_pages() || !error_memory_limit) return;
  for (;;) {
    uint64_t held = 0;
    Inode* oldest_inode = nullptr;
    uint64_t oldest_index = 0, oldest_age = UINT64_MAX;
    for (auto& [ino, in] : inodes) {
      held += in->mapping.dirty_error_pages() * kPageSize;
      if (auto o = in->mapping.oldest_dirty_error(); o && o->first < oldest_age) {
        oldest_age = o->first;
        oldest_index = o->second;
        oldest_inode = in.get();
      }
    }
    if (held <= *error_memory_limit || !oldest_inode) return;
    discard_page(*oldest_inode, oldest_index);
    ++discarded_error_pages;
  }
}

// Memory pressure: past the cache limit, clean pages go first (oldest use
// first), then dirty ones are written back, oldest first, and go once
// clean. A page the policy keeps dirty after a failed write stays.
void State::balance_cache() {
  if (!cache_limit) return;
  uint64_t cached = 0;
  for (auto& [ino, in] : inodes) cached += in->mapping.size();
  uint64_t held = cached * kPageSize;
  if (held <= *cache_limit) return;
  struct Candidate {
    uint32_t last_use;
    bool dirty;
    Inode* inode;
    uint64_t index;
  };
  std::vector<Candidate> all;
  all.reserve(cached);
  for (auto& [ino, in] : inodes)
    in->mapping.for_each([&](PageMap::Page page) {
      all.push_back({page.last_use(), page.has(PG_dirty), in.get(), page.index()});
    });
  std::sort(all.begin(), all.end(), [](const Candidate& a, const Candidate& b) {
    return a.dirty != b.dirty ? !a.dirty : a.last_use < b.last_use;
  });
  for (const Candidate& c : all) {
    if (held <= *cache_limit) return;
    PageMap::Page page = c.inode->mapping.find(c.index);
    if (!page) {  // discarded meanwhile (a failed write under a discarding policy)
      held -= kPageSize;
      continue;
    }
    if (page.has(PG_dirty)) {
      IoResult r = writepage(*c.inode, c.index);  // background writeback: nobody is told
      if (r.hung) return;
      page = c.inode->mapping.find(c.index);
      if (!page) {
        held -= kPageSize;
        continue;
      }
      if (page.has(PG_dirty)) continue;  // kept dirty: it cannot go
    }
    c.inode->mapping.erase(c.index);
    ++evicted_pages;
    held -= kPageSize;
  }
}

// Writes one dirty page. On failure the policy decides what becomes of it.
IoResult State::writepage(Inode& in, uint64_t index) {
  PageMap::Page page = in.mapping.find(index);
  IoResult r;
  if (int err = fiu_point_errno("reference/writeback/submit")) {
    device.count_hit("libfiu", FaultOp::write, in.block_of(index), FaultMode::error, err);
    r = {err, false};
  } else {
    r = device.write_frame(in.block_of(index), page.data());  // no copy: see PageMap::writable
  }
  if (r.hung) return r;
  if (r.ok()) {
    in.mapping.lend(page);
    in.mapping.set_flags(page, 0, PG_dirty | PG_error);
    in.truncated.remove(index);  // the device holds this page's data now
    return r;
  }
  const FailedPage fate = policy->on_writeback_error(r.err);
  enter(policy->on_data_error(r.err));
  r.err = policy->delivered_errno(r.err);
  if (!page.has(PG_error) || policy->records_repeated_failures()) record_error(in, r.err);
  switch (fate) {
    case FailedPage::clean_kept:
      in.mapping.set_flags(page, PG_error, PG_dirty);
      break;
    case FailedPage::discard:
      in.mapping.erase(index);  // not "gone bad": the policy has no such notion
      break;
    case FailedPage::redirty: {
      const bool first_failure = !page.has(PG_error);
      in.mapping.set_flags(page, PG_dirty | PG_error);
      if (first_failure) in.mapping.set_error_age(page, ++error_clock);
      enforce_error_limit();
      break;
    }
  }
  return r;
}

// Writes the dirty pages of `in` within [first, last] in index order.
// `reporter`: the descriptor whose fsync this is (its failures are noted
// apart in first_err_touched), or nullptr.
void State::writeback_inode(Inode& in, const File* reporter, Writeback& wb, uint64_t first,
                            uint64_t last) {
  const std::vector<uint64_t> dirty = in.mapping.dirty_indices(first, last);
  wb.written.reserve(wb.written.size() + dirty.size());
  for (uint64_t index : dirty) {
    PageMap::Page page = in.mapping.find(index);
    if (!page) continue;  // discarded by the R7 limit meanwhile
    const bool touched = reporter && (page.touched() & reporter->bit());
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
SysResult State::write_everything() {
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
int State::check_error_memory(File& f) {
  Inode& in = *f.inode;
  switch (policy->error_memory()) {
    case ErrorMemory::as_flags: {
      const uint32_t flags = std::exchange(in.as_flags, 0);  // filemap_check_errors
      return flags & AS_ENOSPC ? ENOSPC : flags & AS_EIO ? EIO : 0;
    }
    case ErrorMemory::errseq:
      in.as_flags = 0;  // file_check_and_advance_wb_err clears the legacy flags too
      return errseq_check_and_advance(in.wb_err, f.wb_cursor);
    case ErrorMemory::vnode_sticky:
      return in.vnode_error;
    case ErrorMemory::none:
      return 0;
  }
  return 0;
}

// fsync, fdatasync, O_SYNC writes and msync: write the file's pages in
// scope, flush the device, commit the inode if needed, report.
SysResult State::fsync_file(File& f, bool datasync, uint64_t first, uint64_t last) {
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
  const bool needs_commit = !in.raw && (datasync ? in.size_dirty : in.meta_dirty);
  IoResult sync = (!own_err && needs_commit) ? commit_metadata() : device.flush();
  if (sync.hung) return SysResult::hang();
  if (!sync.ok() && policy->on_writeback_error(sync.err) == FailedPage::redirty) {
    // The device may not hold what it acknowledged: keep those pages dirty.
    for (auto [inode, index] : wb.written)
      if (PageMap::Page page = inode->mapping.find(index)) inode->mapping.set_flags(page, PG_dirty);
  }
  // The writeback's own error first, then what was remembered (ext4_sync_file:
  // "if (ret == 0) ret = err"; OpenBSD VOP_FSYNC: EIO only if r == 0).
  const int remembered = check_error_memory(f);
  int err = own_err ? own_err : remembered;
  if (!err) err = sync.err;
  if (f.gone_bad) err = EIO;
  return err ? SysResult::failure(err) : SysResult::success();
}

// What a sync_file_range wait reports: since 4.14 file_fdatawait_range,
// which checks and advances the descriptor's errseq cursor; before,
// filemap_fdatawait_range, which checks and clears the legacy flags.
// Policies without either report what this writeback met.
int State::wait_errors(File& f, int met) {
  Inode& in = *f.inode;
  if (policy->sync_file_range_checks_errseq()) return check_error_memory(f);
  switch (policy->error_memory()) {
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

Handle State::open_file(Inode& in, const OpenFlags& flags) {
  auto f = std::make_unique<File>();
  f->inode = &in;
  f->flags = flags;
  f->plain_writes = !flags.read_only && !flags.direct && !flags.sync && !flags.dsync && !in.raw && !in.is_dir;
  f->wb_cursor = policy->sample_at_open(in.wb_err);
  f->sb_cursor = errseq_sample(s_wb_err);  // file_sample_sb_err
  for (int s = 0; s < 64; ++s)
    if (!(in.used_slots & (1ull << s))) {
      f->slot = s;
      f->mask = 1ull << s;
      in.used_slots |= 1ull << s;
      break;
    }
  in.files.push_back(f.get());
  uint32_t slot;
  if (!free_handles.empty()) {
    slot = free_handles.back();
    free_handles.pop_back();
  } else {
    slot = uint32_t(handles.size());
    handles.emplace_back();
  }
  HandleSlot& hs = handles[slot];
  hs.file = std::move(f);
  ++hs.generation;
  ++open_files;
  return Handle{uint64_t(hs.generation) << 32 | slot};
}

void State::release_file(Handle h) {
  File* f = file(h);
  Inode& in = *f->inode;
  if (f->slot != kNoSlot) {
    in.mapping.untouch(f->bit());
    in.used_slots &= ~f->bit();
  }
  std::erase(in.files, f);
  if (in.files.empty() && policy->error_memory() == ErrorMemory::vnode_sticky)
    in.vnode_error = 0;  // the vnode is released
  const uint32_t slot = uint32_t(h.id & 0xffffffffu);
  handles[slot].file.reset();
  free_handles.push_back(slot);
  --open_files;
  forget_if_orphan(in);
}

void State::forget_if_orphan(Inode& in) {
  if (in.nlink || in.is_dir || in.raw || !in.files.empty()) return;
  in.mapping.clear();
  in.truncated.add(0, in.max_pages());
}

void State::release_all_files() {
  for (uint32_t slot = uint32_t(handles.size()); slot-- > 0;)
    if (handles[slot].file) release_file(Handle{uint64_t(handles[slot].generation) << 32 | slot});
}

IoResult State::truncate_inode(Inode& in, uint64_t size) {
  const uint64_t keep = (size + kPageSize - 1) / kPageSize;
  if (size % kPageSize && size < in.size) {  // the partial last page keeps its head only
    IoResult r;
    PageMap::Page last = fill_page(in, size / kPageSize, r);
    if (!last) return r;
    std::memset(in.mapping.writable(last, true) + size % kPageSize, 0, kPageSize - size % kPageSize);
    in.mapping.set_flags(last, PG_dirty);
  }
  if (keep == 0) {
    in.mapping.clear();
  } else {
    std::vector<uint64_t> doomed;
    in.mapping.for_each([&](PageMap::Page page) {
      if (page.index() >= keep) doomed.push_back(page.index());
    });
    for (uint64_t index : doomed) in.mapping.erase(index);
  }
  in.truncated.add(keep, in.max_pages());
  in.size = size;
  in.meta_dirty = in.size_dirty = true;
  in.mtime = in.ctime = now();
  journal_dirty = true;
  return {};
}

void State::discard_truncated() {
  for (auto& [ino, in] : inodes) {
    for (const auto& [first, end] : in->truncated.intervals())
      device.discard(in->block_of(first), end - first);
    in->truncated.clear();
  }
}

// fill_page's slow path: the page is not cached (`cached` is none) or not up to date.
PageMap::Page State::read_page(Inode& in, uint64_t index, PageMap::Page cached, IoResult& r) {
  PageMap::Page page = in.mapping.get(index);
  // The model reads every page of a file's region from the device, holes
  // included (faults apply alike); a page cut off by a truncation reads as
  // zeros whatever the block still holds.
  std::byte* bytes = in.mapping.writable(page, bool(cached));
  r = device.read(in.block_of(index), {bytes, kPageSize});
  if (r.ok() && in.truncated.contains(index)) std::memset(bytes, 0, kPageSize);
  if (!r.ok()) {
    if (!r.hung) r.err = policy->delivered_errno(r.err);
    if (!cached) in.mapping.erase(index);
    return {};
  }
  in.mapping.set_flags(page, PG_uptodate);
  page.last_use() = ++use_clock;
  return page;
}

}  // namespace syncprobe::ref
