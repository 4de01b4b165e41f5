// The reference behind the runner's Storage/Process seam: each Process is a
// descriptor table over the shared model (cache_model.h).
#include "syncprobe/ref/page_cache.h"

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "cache_model.h"
#include "syncprobe/errno_names.h"

namespace syncprobe::ref {

// One process's descriptor table over the shared cache.
class RefProcess final : public Process {
 public:
  explicit RefProcess(PageCache::State& s) : s_(s) {}

  void forget_all() {
    fds_.clear();
    open_ = 0;
  }
  bool has_open() const { return open_ != 0; }

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
    if (size_t(fd) >= fds_.size()) fds_.resize(size_t(fd) + 1);
    fds_[size_t(fd)] = f;
    ++open_;
    return SysResult::success(fd);
  }

  SysResult close(int fd) override {
    File* f = file(fd);
    if (!f) return SysResult::failure(EBADF);
    fds_[size_t(fd)] = nullptr;
    --open_;
    s_.release_file(f);
    return SysResult::success();
  }

  SysResult pwrite(int fd, std::span<const std::byte> data, uint64_t offset) override {
    File* f = file(fd);
    if (!f || f->flags.read_only) return SysResult::failure(EBADF);
    Inode& in = *f->inode;
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
        PageMap::Page page;
        if (n == kPageSize) {
          page = in.mapping.get(index);  // overwritten whole: nothing to read first
        } else {
          IoResult r;
          page = s_.fill_page(in, index, r);
          if (!page) return from_io(r);
        }
        copy_bytes(page.data() + in_page, data.data() + (pos - offset), n);
        in.mapping.set_flags(page, PG_uptodate | PG_dirty);
        page.touched() |= f->bit();
        page.last_use() = ++s_.use_clock;
        pos += n;
      }
    }
    touch_inode(in, end);
    if (s_.cache_limit) s_.balance_cache();
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
      IoResult r;
      PageMap::Page page = s_.fill_page(in, index, r);
      if (!page) {
        if (pos == offset) return from_io(r);
        return SysResult::success(int64_t(pos - offset));  // a short read, as read(2)
      }
      copy_bytes(out.data() + (pos - offset), page.data() + in_page, n);
      page.touched() |= f->bit();
      page.last_use() = ++s_.use_clock;
      pos += n;
    }
    if (s_.cache_limit) s_.balance_cache();
    return SysResult::success(int64_t(end - offset));
  }

  SysResult fsync(int fd) override { return sync_fd(fd, false); }
  SysResult fdatasync(int fd) override { return sync_fd(fd, true); }

  SysResult sync_file_range(int fd, uint64_t offset, uint64_t length,
                            const SyncFileRangeFlags& flags) override {
    File* f = file(fd);
    if (!f) return SysResult::failure(EBADF);
    Inode& in = *f->inode;
    if (!flags.write) return SysResult::success();
    const uint64_t first = offset / kPageSize;
    const uint64_t last = length == 0 ? UINT64_MAX : (offset + length - 1) / kPageSize;
    Writeback wb;
    s_.writeback_inode(in, nullptr, wb, first, last);
    if (wb.hung) return SysResult::hang();
    if (!flags.wait_after) return SysResult::success();
    // filemap_fdatawait_range: the legacy flags, checked and cleared; the
    // errseq cursors are left alone. Policies without flags report what this
    // writeback met.
    int err = 0;
    switch (s_.policy->error_memory()) {
      case ErrorMemory::as_flags:
      case ErrorMemory::errseq: {
        const uint32_t fl = std::exchange(in.as_flags, 0);
        err = fl & AS_ENOSPC ? ENOSPC : fl & AS_EIO ? EIO : 0;
        break;
      }
      case ErrorMemory::vnode_sticky:
        err = wb.first_err ? wb.first_err : in.vnode_error;
        break;
      case ErrorMemory::none:
        err = wb.first_err;
        break;
    }
    return err ? SysResult::failure(err) : SysResult::success();
  }

  SysResult msync_write(int fd, std::span<const std::byte> data, uint64_t offset) override {
    File* f = file(fd);
    if (!f || f->flags.read_only) return SysResult::failure(EBADF);
    Inode& in = *f->inode;
    if (offset + data.size() > in.size) return SysResult::failure(ENXIO);  // SIGBUS beyond EOF
    for (uint64_t pos = offset; pos < offset + data.size();) {
      const uint64_t index = pos / kPageSize, in_page = pos % kPageSize;
      const uint64_t n = std::min<uint64_t>(kPageSize - in_page, offset + data.size() - pos);
      IoResult r;
      PageMap::Page page = s_.fill_page(in, index, r);
      if (!page) return from_io(r);  // the fault: SIGBUS
      copy_bytes(page.data() + in_page, data.data() + (pos - offset), n);
      in.mapping.set_flags(page, PG_dirty);
      page.touched() |= f->bit();
      pos += n;
    }
    touch_inode(in, offset + data.size());
    // msync(MS_SYNC) is vfs_fsync_range over the mapped range.
    return s_.fsync_file(*f, false, offset / kPageSize, (offset + data.size() - 1) / kPageSize);
  }

  SysResult syncfs(int fd) override {
    if (!file(fd)) return SysResult::failure(EBADF);
    SysResult r = s_.write_everything();
    if (r.hung) return r;
    return s_.policy->syncfs_reports() ? r : SysResult::success();
  }

  SysResult sync() override {
    SysResult r = s_.write_everything();
    return r.hung ? r : SysResult::success();  // sync(2) returns nothing
  }

  SysResult stat(const std::string& path) override {
    if (path == ".") return SysResult::success(0);
    Inode* in = s_.lookup(path);
    return in ? SysResult::success(int64_t(in->size)) : SysResult::failure(ENOENT);
  }

  SysResult rename(const std::string& from, const std::string& to) override {
    auto it = s_.names.find(from);
    if (it == s_.names.end()) return SysResult::failure(ENOENT);
    const uint64_t ino = it->second;
    s_.names.erase(it);
    s_.names[to] = ino;
    s_.journal_dirty = true;
    return SysResult::success();
  }

  SysResult unlink(const std::string& path) override {
    if (!s_.names.erase(path)) return SysResult::failure(ENOENT);
    s_.journal_dirty = true;
    return SysResult::success();
  }

 private:
  File* file(int fd) {
    return fd >= 0 && size_t(fd) < fds_.size() ? fds_[size_t(fd)] : nullptr;
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
  std::vector<File*> fds_;  // by descriptor number; numbers are not reused
  size_t open_ = 0;
  int next_fd_ = 3;
};

PageCache::State::~State() = default;

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
  {
    st.cached_pages += in->mapping.size();
    st.dirty_pages += in->mapping.dirty_pages();
    st.error_pages += in->mapping.error_pages();
    st.error_bytes_held += in->mapping.dirty_error_pages() * kPageSize;
  }
  st.discarded_error_pages = s_->discarded_error_pages;
  st.frame_bytes_reserved = s_->frames.bytes_reserved();
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
