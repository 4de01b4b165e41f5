#include "syncprobe/ref/sim_device.h"

#include <cerrno>
#include <algorithm>
#include <cstring>
#include <utility>

#include "fiu_points.h"
#include "frame_pool.h"

namespace syncprobe::ref {

SimDevice::SimDevice() : own_frames_(std::make_unique<FramePool>()), frames_(own_frames_.get()) {}
SimDevice::SimDevice(FramePool& frames) : frames_(&frames) {}
SimDevice::~SimDevice() = default;

SimDevice::Segment* SimDevice::segment(uint64_t block, bool create) {
  const uint64_t no = block / kSegmentBlocks;
  if (last_ && last_no_ == no) return last_;
  auto it = segments_.find(no);
  if (it == segments_.end()) {
    if (!create) return nullptr;
    it = segments_.emplace(no, std::make_unique<Segment>()).first;
  }
  last_ = it->second.get();
  last_no_ = no;
  return last_;
}

std::optional<SimDevice::Taken> SimDevice::take_fault(FaultOp op, uint64_t block) {
  for (auto it = faults_.begin(); it != faults_.end(); ++it) {
    if (!it->matches(op, block * kBlockSize, kBlockSize)) continue;
    const Taken hit{it->mode, it->err};
    if (it->count && --*it->count == 0) faults_.erase(it);
    return hit;
  }
  return std::nullopt;
}

void SimDevice::count_hit(const char* layer, FaultOp op, uint64_t block, FaultMode mode, int err) {
  ++hits_;
  last_layer_ = layer;
  if (observer_) observer_(Hit{layer, op, block, mode, err});
}

std::optional<IoResult> SimDevice::admit_write(uint64_t block, std::byte**& slot) {
  if (int err = fiu_point_errno("reference/device/write")) {
    count_hit("libfiu", FaultOp::write, block, FaultMode::error, err);
    return IoResult{err, false};
  }
  if (auto f = take_fault(FaultOp::write, block)) {
    count_hit("reference-device", FaultOp::write, block, f->mode, f->err ? f->err : EIO);
    switch (f->mode) {
      case FaultMode::error: return IoResult{f->err ? f->err : EIO, false};
      case FaultMode::hang: return IoResult{0, true};
      case FaultMode::drop: return IoResult{};  // acknowledged, not stored
    }
  }
  Segment& seg = *segment(block, true);
  const uint64_t i = block % kSegmentBlocks;
  uint64_t& word = seg.allocated[i / 64];
  const uint64_t bit = 1ull << (i % 64);
  if (capacity_ && !(word & bit) && allocated_ >= *capacity_) {
    count_hit("reference-device", FaultOp::write, block, when_full_, ENOSPC);
    return when_full_ == FaultMode::hang ? IoResult{0, true} : IoResult{ENOSPC, false};
  }
  if (!(word & bit)) {
    word |= bit;
    ++allocated_;
  }
  ++writes_;
  slot = &seg.unflushed[i];
  if (!*slot) unflushed_.push_back(block);
  return std::nullopt;
}

IoResult SimDevice::write(uint64_t block, std::span<const std::byte> data) {
  std::byte** slot = nullptr;
  if (auto r = admit_write(block, slot)) return *r;
  std::byte*& b = *slot;
  if (b && frames_->shared(b)) frames_->release(std::exchange(b, nullptr));  // a cached page's too
  if (!b) b = frames_->allocate();
  copy_bytes(b, data.data(), kBlockSize);
  return {};
}

IoResult SimDevice::write_frame(uint64_t block, std::byte* frame) {
  std::byte** slot = nullptr;
  if (auto r = admit_write(block, slot)) return *r;
  std::byte*& b = *slot;
  if (b == frame) return {};
  if (b) frames_->release(b);
  frames_->share(frame);
  b = frame;
  return {};
}

IoResult SimDevice::read(uint64_t block, std::span<std::byte> out) {
  if (int err = fiu_point_errno("reference/device/read")) {
    count_hit("libfiu", FaultOp::read, block, FaultMode::error, err);
    return {err, false};
  }
  if (auto f = take_fault(FaultOp::read, block)) {
    count_hit("reference-device", FaultOp::read, block, f->mode, f->err ? f->err : EIO);
    if (f->mode == FaultMode::hang) return {0, true};
    if (f->mode == FaultMode::error) return {f->err ? f->err : EIO, false};
  }
  const std::byte* src = nullptr;
  if (Segment* seg = segment(block, false)) {
    const uint64_t i = block % kSegmentBlocks;
    src = seg->unflushed[i] ? seg->unflushed[i] : seg->stable[i];
  }
  if (src) copy_bytes(out.data(), src, kBlockSize);
  else std::memset(out.data(), 0, kBlockSize);
  return {};
}

IoResult SimDevice::flush() {
  if (int err = fiu_point_errno("reference/device/flush")) {
    count_hit("libfiu", FaultOp::flush, 0, FaultMode::error, err);
    return {err, false};
  }
  if (auto f = take_fault(FaultOp::flush, 0)) {
    count_hit("reference-device", FaultOp::flush, 0, f->mode, f->err ? f->err : EIO);
    if (f->mode == FaultMode::hang) return {0, true};
    if (f->mode == FaultMode::error) return {f->err ? f->err : EIO, false};
    return {};  // drop: the device claims a flush it did not do
  }
  ++flushes_;
  for (uint64_t block : unflushed_) {
    Segment& seg = *segment(block, false);
    const uint64_t i = block % kSegmentBlocks;
    if (!seg.unflushed[i]) continue;  // discarded since
    if (seg.stable[i]) frames_->release(seg.stable[i]);
    seg.stable[i] = std::exchange(seg.unflushed[i], nullptr);
  }
  unflushed_.clear();
  return {};
}

void SimDevice::add_fault(const FaultRule& rule) { faults_.push_back(rule); }
void SimDevice::heal() { faults_.clear(); }

void SimDevice::set_thin(uint64_t headroom_bytes, FaultMode when_full) {
  capacity_ = allocated_ + headroom_bytes / kBlockSize;
  when_full_ = when_full;
}

void SimDevice::grow(uint64_t bytes) {
  if (capacity_) *capacity_ += bytes / kBlockSize;
}

void SimDevice::discard(uint64_t block, uint64_t count) {
  if (count == 0) return;
  for (uint64_t no = block / kSegmentBlocks; no <= (block + count - 1) / kSegmentBlocks; ++no) {
    Segment* seg = segment(no * kSegmentBlocks, false);
    if (!seg) continue;
    const uint64_t lo = std::max(block, no * kSegmentBlocks);
    const uint64_t hi = std::min(block + count, (no + 1) * kSegmentBlocks);
    for (uint64_t b = lo; b < hi; ++b) {
      const uint64_t i = b % kSegmentBlocks;
      // An entry of unflushed_ may now name a block without unflushed data:
      // flush and power_cut skip those.
      if (seg->stable[i]) frames_->release(std::exchange(seg->stable[i], nullptr));
      if (seg->unflushed[i]) frames_->release(std::exchange(seg->unflushed[i], nullptr));
    }
  }
}

void SimDevice::power_cut() {
  for (uint64_t block : unflushed_) {
    Segment& seg = *segment(block, false);
    if (std::byte* f = std::exchange(seg.unflushed[block % kSegmentBlocks], nullptr)) frames_->release(f);
  }
  unflushed_.clear();
}

}  // namespace syncprobe::ref
