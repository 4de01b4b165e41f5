#pragma once
// The pages of one mapping (an inode's page cache), laid out for speed and
// size: 64-page chunks in a vector indexed by chunk number, each holding its
// pages' flags as bitmaps (PG_uptodate, PG_dirty, PG_error) and their data
// frames, descriptor masks and last use as arrays. A cached page costs about
// 21 bytes beside its 4 KiB frame. A summary bitmap of the chunks holding
// dirty pages lets writeback visit only those: fsync's cost follows the
// file's dirty pages, not its size. Counters of dirty and error pages make
// statistics O(1).
//
// A page's frame may also be held by the device block it was written back
// to (copy on write: see lend and writable). Whoever changes a page's bytes
// gets them from writable(), never from Page::data().
//
// Flags change only through set_flags, so the bitmaps, the summary and the
// counters agree. REQUIRES external synchronization.
#include <bit>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <unordered_map>
#include <utility>
#include <vector>

#include "frame_pool.h"

namespace syncprobe::ref {

// Page flags, named as in the kernel.
inline constexpr uint32_t PG_uptodate = 1u << 0;
inline constexpr uint32_t PG_dirty = 1u << 1;
inline constexpr uint32_t PG_error = 1u << 2;

class PageMap {
  struct Chunk {
    uint64_t present = 0, uptodate = 0, dirty = 0, error = 0;
    uint64_t lent = 0;      // the frame was given to the device too (it may hold it still)
    std::byte* frame[64];
    uint64_t touched[64];   // slots of the descriptors that read or wrote the page
    uint32_t last_use[64];  // for eviction under a cache limit, oldest first
  };

 public:
  // One cached page, or none (false); valid until the page is erased. Two
  // words, so that it travels in registers: the destination of a copy must
  // not wait on a reload from the stack while the previous copy's stores
  // drain (measured: 1.6x slower pwrite, docs/bench.md).
  class Page {
   public:
    Page() = default;
    explicit operator bool() const { return c_ != nullptr; }
    // The page's bytes, to read (to change them: PageMap::writable).
    std::byte* data() const { return c_->frame[index_ % 64]; }
    bool has(uint32_t flag) const { return (word(flag) >> (index_ % 64)) & 1; }
    uint32_t flags() const {
      return (has(PG_uptodate) ? PG_uptodate : 0) | (has(PG_dirty) ? PG_dirty : 0) |
             (has(PG_error) ? PG_error : 0);
    }
    uint64_t& touched() const { return c_->touched[index_ % 64]; }
    uint32_t& last_use() const { return c_->last_use[index_ % 64]; }
    uint64_t index() const { return index_; }

   private:
    friend class PageMap;
    Page(Chunk* c, uint64_t index) : c_(c), index_(index) {}
    uint64_t word(uint32_t flag) const {
      return flag == PG_uptodate ? c_->uptodate : flag == PG_dirty ? c_->dirty : c_->error;
    }
    Chunk* c_ = nullptr;
    uint64_t index_ = 0;
  };

  explicit PageMap(FramePool& frames) : frames_(&frames) {}
  PageMap(const PageMap&) = delete;
  PageMap& operator=(const PageMap&) = delete;
  ~PageMap() { clear(); }

  // The page at `index`, or none.
  Page find(uint64_t index) const {
    const uint64_t ci = index / 64;
    if (ci >= chunks_.size() || !chunks_[ci] || !(chunks_[ci]->present & bit(index))) return {};
    return Page(chunks_[ci].get(), index);
  }

  // The page at `index`, created with no flags and a fresh (uninitialized)
  // frame if absent.
  Page get(uint64_t index) {
    const uint64_t ci = index / 64;
    if (ci < chunks_.size())
      if (Chunk* c = chunks_[ci].get(); c && (c->present & bit(index))) return Page(c, index);
    return create(index);
  }
  // The page's bytes, to change. A frame the device holds too is first
  // replaced by a frame of the page's own, holding a copy of the old bytes
  // when `keep` (pass false when every byte will be overwritten).
  std::byte* writable(const Page& p, bool keep) {
    if (!(p.c_->lent & bit(p.index_))) [[likely]]
      return p.data();
    return unshare(p.c_, p.index_, keep);  // not the Page by reference: it stays in registers
  }
  // The device now holds p's frame too (SimDevice::write_frame).
  void lend(const Page& p) { p.c_->lent |= bit(p.index_); }

  // set_flags(p, PG_uptodate | PG_dirty), inline when nothing changes (a rewrite).
  void mark_written(const Page& p) {
    const uint64_t b = bit(p.index_);
    if (p.c_->uptodate & p.c_->dirty & b) return;
    set_flags(p, PG_uptodate | PG_dirty);
  }

 private:
  [[gnu::noinline]] std::byte* unshare(Chunk* chunk, uint64_t index, bool keep) {
    Chunk& c = *chunk;
    const unsigned i = unsigned(index % 64);
    c.lent &= ~bit(index);
    std::byte*& frame = c.frame[i];
    if (frames_->shared(frame)) {
      std::byte* own = frames_->allocate();
      if (keep) copy_bytes(own, frame, FramePool::kFrameSize);
      frames_->release(std::exchange(frame, own));
    }
    return frame;
  }

  [[gnu::noinline]] Page create(uint64_t index) {
    const uint64_t ci = index / 64;
    if (ci >= chunks_.size()) chunks_.resize(ci + 1);
    auto& c = chunks_[ci];
    if (!c) c = std::make_unique<Chunk>();
    if (!(c->present & bit(index))) {
      const unsigned i = unsigned(index % 64);
      c->frame[i] = frames_->allocate();
      c->touched[i] = 0;
      c->last_use[i] = 0;
      c->present |= bit(index);
      ++size_;
    }
    return Page(c.get(), index);
  }

 public:
  void set_flags(const Page& p, uint32_t set, uint32_t clear = 0) {
    Chunk& c = *p.c_;
    const uint64_t b = bit(p.index_);
    const bool was_dirty = c.dirty & b, was_error = c.error & b;
    const bool had_dirty_chunk = c.dirty != 0;
    auto apply = [&](uint64_t& w, uint32_t flag) {
      if (set & flag) w |= b;
      else if (clear & flag) w &= ~b;
    };
    apply(c.uptodate, PG_uptodate);
    apply(c.dirty, PG_dirty);
    apply(c.error, PG_error);
    account(was_dirty, was_error, c.dirty & b, c.error & b);
    if (was_error && !(c.error & b)) forget_error_age(p.index_);
    if (had_dirty_chunk != (c.dirty != 0)) mark_dirty_chunk(p.index_ / 64, c.dirty != 0);
  }

  // When the page entered PG_error (R7 discards the oldest first). Kept only
  // while PG_error is set.
  void set_error_age(const Page& p, uint64_t age) {
    forget_error_age(p.index_);
    ages_[p.index_] = age;
    by_age_[age] = p.index_;
  }
  // The page holding PG_error|PG_dirty that entered PG_error first, or none.
  std::optional<std::pair<uint64_t, uint64_t>> oldest_dirty_error() const {  // (age, index)
    for (const auto& [age, index] : by_age_)
      if (find(index).has(PG_dirty)) return std::pair{age, index};
    return std::nullopt;
  }

  void erase(uint64_t index) {
    Page p = find(index);
    if (!p) return;
    set_flags(p, 0, PG_uptodate | PG_dirty | PG_error);
    Chunk* c = p.c_;
    frames_->release(c->frame[index % 64]);
    c->present &= ~bit(index);
    c->lent &= ~bit(index);
    --size_;
    if (!c->present) chunks_[index / 64].reset();
  }
  void clear() {
    for (uint64_t ci = 0; ci < chunks_.size(); ++ci)
      if (chunks_[ci])
        for (uint64_t m = chunks_[ci]->present; m; m &= m - 1) erase(ci * 64 + uint64_t(std::countr_zero(m)));
    chunks_.clear();
    dirty_chunks_.clear();
  }

  // f(Page) for every page, in index order. f must not add or erase pages.
  template <typename F>
  void for_each(F f) const {
    for (uint64_t ci = 0; ci < chunks_.size(); ++ci)
      if (Chunk* c = chunks_[ci].get())
        for (uint64_t m = c->present; m; m &= m - 1) f(Page(c, ci * 64 + uint64_t(std::countr_zero(m))));
  }
  // The dirty pages within [first, last], in index order, visiting only
  // chunks that hold dirty pages.
  std::vector<uint64_t> dirty_indices(uint64_t first, uint64_t last) const {
    std::vector<uint64_t> out;
    out.reserve(dirty_);
    for (uint64_t w = 0; w < dirty_chunks_.size(); ++w)
      for (uint64_t m = dirty_chunks_[w]; m; m &= m - 1) {
        const uint64_t ci = w * 64 + uint64_t(std::countr_zero(m));
        if (ci * 64 > last) return out;
        for (uint64_t d = chunks_[ci]->dirty; d; d &= d - 1) {
          const uint64_t index = ci * 64 + uint64_t(std::countr_zero(d));
          if (index >= first && index <= last) out.push_back(index);
        }
      }
    return out;
  }
  // Clears descriptor `mask` from every page's touched set.
  void untouch(uint64_t mask) {
    for (auto& c : chunks_)
      if (c)
        for (uint64_t m = c->present; m; m &= m - 1) c->touched[std::countr_zero(m)] &= ~mask;
  }

  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  uint64_t dirty_pages() const { return dirty_; }
  uint64_t error_pages() const { return error_; }
  uint64_t dirty_error_pages() const { return dirty_error_; }

 private:
  static uint64_t bit(uint64_t index) { return 1ull << (index % 64); }
  void account(bool was_dirty, bool was_error, bool dirty, bool error) {
    dirty_ += uint64_t(dirty) - uint64_t(was_dirty);
    error_ += uint64_t(error) - uint64_t(was_error);
    dirty_error_ += uint64_t(dirty && error) - uint64_t(was_dirty && was_error);
  }
  void mark_dirty_chunk(uint64_t ci, bool on) {
    if (ci / 64 >= dirty_chunks_.size()) dirty_chunks_.resize(ci / 64 + 1);
    if (on) dirty_chunks_[ci / 64] |= 1ull << (ci % 64);
    else dirty_chunks_[ci / 64] &= ~(1ull << (ci % 64));
  }
  void forget_error_age(uint64_t index) {
    auto it = ages_.find(index);
    if (it == ages_.end()) return;
    by_age_.erase(it->second);
    ages_.erase(it);
  }

  FramePool* frames_;
  std::vector<std::unique_ptr<Chunk>> chunks_;
  std::vector<uint64_t> dirty_chunks_;  // bit per chunk: it holds a dirty page
  std::unordered_map<uint64_t, uint64_t> ages_;  // index -> error age, pages in PG_error only
  std::map<uint64_t, uint64_t> by_age_;          // error age -> index
  size_t size_ = 0;
  uint64_t dirty_ = 0, error_ = 0, dirty_error_ = 0;
};

}  // namespace syncprobe::ref
