#pragma once
// 4 KiB frames carved out of 2 MiB anonymous mappings: the data of cached
// pages and of device blocks. No per-frame allocator header, 4 KiB alignment
// (the fastest memcpy), and neighbouring pages of a file written in order
// land next to each other. Freed frames are reused (a free list
// threaded through the frames themselves); the mappings are
// returned when the pool is destroyed.
//
// A frame may have two holders: a cached page and the device block it was
// written back to share one frame (copy on write, see PageMap::writable), so
// that writeback moves no data. Each frame has a count of its holders, kept
// in the first frame of its arena, and goes back to the pool when the last
// one releases it.
//
// REQUIRES external synchronization.
#include <sys/mman.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <new>
#include <vector>

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#endif

namespace syncprobe::ref {

// Copies page data with the C library's memcpy, never inlined: for a size
// known to be 4096, GCC inlines `rep movsq`, which measured 1.5x slower here
// than glibc's vector loop (docs/bench.md). Called through a volatile
// pointer so that no constant size reaches the compiler.
inline void* (*volatile copy_bytes)(void*, const void*, size_t) = &std::memcpy;

// Under AddressSanitizer a use of a released frame is reported.
inline void poison_frame_bytes([[maybe_unused]] std::byte* p, [[maybe_unused]] size_t n) {
#if defined(__SANITIZE_ADDRESS__)
  ASAN_POISON_MEMORY_REGION(p, n);
#endif
}
inline void unpoison_frame_bytes([[maybe_unused]] std::byte* p, [[maybe_unused]] size_t n) {
#if defined(__SANITIZE_ADDRESS__)
  ASAN_UNPOISON_MEMORY_REGION(p, n);
#endif
}

class FramePool {
 public:
  static constexpr size_t kFrameSize = 4096;
  static constexpr size_t kArenaFrames = 512;
  static constexpr size_t kArenaBytes = kFrameSize * kArenaFrames;
  static_assert(kArenaFrames <= kFrameSize, "an arena's holder counts fit in its first frame");

  FramePool() = default;
  FramePool(const FramePool&) = delete;
  FramePool& operator=(const FramePool&) = delete;
  ~FramePool() {
    for (std::byte* a : arenas_) {
      unpoison_frame_bytes(a, kArenaBytes);  // the address range may be mapped again
      ::munmap(a, kArenaBytes);
    }
  }

  // An uninitialized frame with one holder. Throws std::bad_alloc when the
  // system has no memory.
  std::byte* allocate() {
    ++in_use_;
    std::byte* f = free_;
    if (f) {
      free_ = next_of(f);
      unpoison_frame_bytes(f, kFrameSize);
    } else {
      if (bump_ == bump_end_) grow();
      f = bump_;
      bump_ += kFrameSize;
    }
    holders(f) = 1;
    return f;
  }
  // One more holder of `frame`. REQUIRES: frame is held, by fewer than 255.
  void share(std::byte* frame) { ++holders(frame); }
  // True when `frame` has another holder beside the caller.
  bool shared(std::byte* frame) const { return holders(frame) > 1; }
  // The caller stops holding `frame`; the last holder gives it back.
  void release(std::byte* frame) {
    if (--holders(frame) != 0) return;
    next_of(frame) = free_;
    free_ = frame;
    --in_use_;
    poison_frame_bytes(frame + sizeof(std::byte*), kFrameSize - sizeof(std::byte*));
  }

  // Maps and touches frames for `bytes` of data now, so that later
  // allocations take memory already faulted in (a first touch of anonymous
  // memory costs a page fault and the kernel's zeroing; docs/bench.md).
  // Throws std::bad_alloc when the system has no memory.
  void preallocate(uint64_t bytes) {
    std::vector<std::byte*> got;
    got.reserve(size_t(bytes / kFrameSize + 1));
    while (uint64_t(got.size()) * kFrameSize < bytes) got.push_back(allocate());
    for (auto it = got.rbegin(); it != got.rend(); ++it) release(*it);  // reused in address order
  }

  uint64_t frames_in_use() const { return in_use_; }
  uint64_t bytes_reserved() const { return uint64_t(arenas_.size()) * kArenaBytes; }

 private:
  void grow() {
    // Aligned to its size (map twice as much, give back both ends) and
    // marked for a transparent huge page, so that filling an arena costs
    // one page fault instead of 512. Where faults are expensive (a VM whose
    // hypervisor sees each one) that was most of the mounted reference's
    // CPU on large sequential writes.
    void* p = ::mmap(nullptr, 2 * kArenaBytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) throw std::bad_alloc();
    auto* raw = static_cast<std::byte*>(p);
    const uintptr_t at = (reinterpret_cast<uintptr_t>(raw) + kArenaBytes - 1) & ~uintptr_t(kArenaBytes - 1);
    auto* a = reinterpret_cast<std::byte*>(at);
    if (a > raw) ::munmap(raw, size_t(a - raw));
    if (a + kArenaBytes < raw + 2 * kArenaBytes) ::munmap(a + kArenaBytes, size_t(raw + 2 * kArenaBytes - (a + kArenaBytes)));
    ::madvise(a, kArenaBytes, MADV_HUGEPAGE);  // a hint: without THP, 4 KiB pages as before
    arenas_.push_back(a);
    // Carved in address order, untouched until used: a file written in
    // order is laid out in order, and unused frames cost no memory. The
    // first frame holds the holder counts of the others.
    bump_ = a + kFrameSize;
    bump_end_ = a + kArenaBytes;
  }
  // The count of `frame`'s holders, in the first frame of its arena.
  static uint8_t& holders(std::byte* frame) {
    const auto at = reinterpret_cast<uintptr_t>(frame);
    auto* counts = reinterpret_cast<uint8_t*>(at & ~uintptr_t(kArenaBytes - 1));
    return counts[(at & (kArenaBytes - 1)) / kFrameSize];
  }
  // A free frame holds the next free frame's address in its first bytes.
  static std::byte*& next_of(std::byte* frame) { return *reinterpret_cast<std::byte**>(frame); }

  std::vector<std::byte*> arenas_;
  std::byte* free_ = nullptr;
  std::byte* bump_ = nullptr;
  std::byte* bump_end_ = nullptr;
  uint64_t in_use_ = 0;
};

}  // namespace syncprobe::ref
