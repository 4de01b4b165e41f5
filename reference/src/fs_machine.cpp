// FileSystem: the machine around the cache -- eviction, writeback passes,
// remount, power cut, shutdown, memory limits -- and the faults of its
// simulated device.
#include <algorithm>
#include <cerrno>
#include <cstring>
#include <new>
#include <stdexcept>

#include <unistd.h>

#include "fs_state.h"
#include "syncprobe/ref/file_system.h"

namespace syncprobe::ref {

// ---- the machine around the cache ---------------------------------------------------

SysResult FileSystem::drop_caches() {
  for (auto& [ino, in] : s_->inodes) {
    std::vector<uint64_t> clean;
    in->mapping.for_each([&](PageMap::Page page) {
      if (!page.has(PG_dirty)) clean.push_back(page.index());
    });
    for (uint64_t index : clean) in->mapping.erase(index);
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

SysResult FileSystem::writeback() {
  SysResult r = s_->write_everything();
  return r.hung ? r : SysResult::success();  // nobody is told
}

SysResult FileSystem::remount() {
  if (s_->open_files) return SysResult::failure(EBUSY);
  SysResult r = s_->write_everything();
  if (r.hung) return r;
  // Whatever could not be written is lost with the unmount.
  return from_io(s_->mount());
}

SysResult FileSystem::power_cut() {
  s_->release_all_files();
  s_->device.power_cut();
  return from_io(s_->mount());
}

ReadBack FileSystem::read_back(const std::string& path, uint64_t offset, uint64_t length, bool raw) {
  ReadBack rb;
  s_->release_all_files();
  rb.result = remount();
  if (!rb.result.ok()) return rb;
  int err = 0;
  Inode* in = raw ? &s_->inode(kRawIno) : s_->resolve(path, err);
  if (!in) {
    rb.result = SysResult::failure(err);
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
      rb.result = from_io(r);
      rb.data.clear();
      return rb;
    }
    std::memcpy(rb.data.data() + (pos - offset), block.data() + in_block, n);
    pos += n;
  }
  rb.result = SysResult::success(int64_t(end - offset));
  return rb;
}

SysResult FileSystem::shutdown(ShutdownFlush flush, ShutdownReport& report) {
  State& s = *s_;
  // GOING_FLAGS_DEFAULT freezes (syncs) the filesystem first; LOGFLUSH
  // commits the journal, not the data; NOLOGFLUSH writes nothing. What could
  // not be written then stays in the cache until the unmount drops it.
  switch (flush) {
    case ShutdownFlush::sync: {
      SysResult r = s.write_everything();
      if (r.hung) return r;
      report.sync = r;
      break;
    }
    case ShutdownFlush::log: {
      // The log holds names, not the size of an append whose data is still
      // dirty: ext4 (i_disksize, delayed allocation) and xfs (di_size at I/O
      // completion) move the on-disk size with the data. docs/probes/shutdown.sh.
      std::vector<std::pair<Inode*, uint64_t>> appended;
      for (auto& [ino, in] : s.inodes)
        if (in->mapping.dirty_pages() && !in->raw) {
          appended.emplace_back(in.get(), in->size);
          in->size = std::min(in->size, s.committed_size(ino));
        }
      IoResult m = s.journal_dirty && s.can_write() ? s.commit_metadata() : IoResult{};
      for (auto [in, size] : appended) in->size = size;
      if (m.hung) return SysResult::hang();
      report.log_commit = m.err;
      break;
    }
    case ShutdownFlush::none:
      break;
  }
  s.enter(FsReaction::shutdown);
  return SysResult::success();
}

FsReaction FileSystem::state() const { return s_->fs_state; }

SysResult FileSystem::memory_limit(uint64_t bytes) {
  s_->error_memory_limit = bytes;
  s_->enforce_error_limit();
  return SysResult::success();
}

SysResult FileSystem::cache_limit(uint64_t bytes) {
  s_->cache_limit = bytes;
  s_->balance_cache();
  return SysResult::success();
}

SysResult FileSystem::preallocate(uint64_t bytes) {
  const long pages = ::sysconf(_SC_PHYS_PAGES), page = ::sysconf(_SC_PAGESIZE);
  if (pages > 0 && page > 0 && bytes > uint64_t(pages) * uint64_t(page)) return SysResult::failure(ENOMEM);
  try {
    s_->frames.preallocate(bytes);
  } catch (const std::bad_alloc&) {
    return SysResult::failure(ENOMEM);
  }
  return SysResult::success();
}

// ---- faults ---------------------------------------------------------------------------

SysResult FileSystem::fault(const FaultPlace& place, const FaultRule& rule, FaultRule& resolved) {
  resolved = rule;
  resolved.ranges.clear();
  resolved.invert = false;
  if (resolved.mode == FaultMode::error && resolved.err == 0) resolved.err = EIO;
  auto region = [&](const std::string& path) -> std::optional<ByteRange> {
    int err = 0;
    Inode* in = s_->resolve(path, err);
    if (!in || in->is_dir) return std::nullopt;
    return ByteRange{in->block_of(0) * kBlockSize, in->max_pages() * kPageSize};
  };
  if (place.where == FaultPlace::Where::data && place.offset + place.length > s_->options.max_file_bytes)
    return SysResult::failure(EINVAL);
  switch (place.where) {
    case FaultPlace::Where::device:
      break;
    case FaultPlace::Where::data: {
      auto r = region(place.path);
      if (!r) return SysResult::failure(ENOENT);
      if (place.length) *r = ByteRange{r->offset + place.offset, place.length};
      resolved.ranges = {*r};
      break;
    }
    case FaultPlace::Where::metadata:
      // Everything but the file's data: the journal, inodes, directories and
      // other files.
      if (auto r = region(place.path)) resolved.ranges = {*r};
      resolved.invert = true;
      break;
    case FaultPlace::Where::journal:
      resolved.ranges = {ByteRange{0, kMetadataBlocks * kBlockSize}};
      break;
    case FaultPlace::Where::free:
      // Space no file holds yet: every file's region past its committed size,
      // and the regions of files not created yet. The metadata blocks and
      // the raw device's bytes stay healthy.
      resolved.ranges = {ByteRange{0, kDataRegionBlock * kBlockSize}};
      for (const auto& [path, ino] : s_->names) {
        const uint64_t pages = (s_->committed_size(ino) + kPageSize - 1) / kPageSize;
        if (pages) resolved.ranges.push_back({s_->inode(ino).block_of(0) * kBlockSize, pages * kPageSize});
      }
      resolved.invert = true;
      break;
  }
  s_->device.add_fault(resolved);
  return SysResult::success();
}

SysResult FileSystem::heal() {
  s_->device.heal();
  return SysResult::success();
}

SysResult FileSystem::thin_limit(uint64_t headroom, FaultMode when_full) {
  s_->device.set_thin(headroom, when_full);
  return SysResult::success();
}

SysResult FileSystem::grow(uint64_t bytes) {
  if (!s_->device.capacity_blocks()) return SysResult::failure(EINVAL);
  s_->device.grow(bytes);
  return SysResult::success();
}

uint64_t FileSystem::injected_hits() const { return s_->device.hits(); }
std::string FileSystem::layer() const { return s_->device.last_layer(); }

}  // namespace syncprobe::ref
