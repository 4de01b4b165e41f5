#include "syncprobe/ref/sim_device.h"

#include <cerrno>
#include <cstring>

#include "fiu_points.h"

namespace syncprobe::ref {

const FaultRule* SimDevice::take_fault(FaultOp op, uint64_t block) {
  for (auto it = faults_.begin(); it != faults_.end(); ++it) {
    if (!it->matches(op, block * kBlockSize, kBlockSize)) continue;
    taken_ = *it;
    if (it->count && --*it->count == 0) faults_.erase(it);
    return &taken_;
  }
  return nullptr;
}

void SimDevice::count_hit(const char* layer) {
  ++hits_;
  last_layer_ = layer;
}

IoResult SimDevice::write(uint64_t block, std::span<const std::byte> data) {
  if (int err = fiu_point_errno("reference/device/write")) {
    count_hit("libfiu");
    return {err, false};
  }
  if (const FaultRule* f = take_fault(FaultOp::write, block)) {
    count_hit("reference-device");
    switch (f->mode) {
      case FaultMode::error: return {f->err ? f->err : EIO, false};
      case FaultMode::hang: return {0, true};
      case FaultMode::drop: return {};  // acknowledged, not stored
    }
  }
  if (capacity_ && !allocated_.count(block) && allocated_.size() >= *capacity_) {
    count_hit("reference-device");
    return when_full_ == FaultMode::hang ? IoResult{0, true} : IoResult{ENOSPC, false};
  }
  allocated_.insert(block);
  ++writes_;
  Buffer& b = volatile_[block];
  if (!b) b = std::make_unique_for_overwrite<std::byte[]>(kBlockSize);
  std::memcpy(b.get(), data.data(), kBlockSize);
  return {};
}

IoResult SimDevice::read(uint64_t block, std::span<std::byte> out) {
  if (int err = fiu_point_errno("reference/device/read")) {
    count_hit("libfiu");
    return {err, false};
  }
  if (const FaultRule* f = take_fault(FaultOp::read, block)) {
    count_hit("reference-device");
    if (f->mode == FaultMode::hang) return {0, true};
    if (f->mode == FaultMode::error) return {f->err ? f->err : EIO, false};
  }
  const Buffer* src = nullptr;
  if (auto it = volatile_.find(block); it != volatile_.end()) src = &it->second;
  else if (auto st = stable_.find(block); st != stable_.end()) src = &st->second;
  if (src) std::memcpy(out.data(), src->get(), kBlockSize);
  else std::memset(out.data(), 0, kBlockSize);
  return {};
}

IoResult SimDevice::flush() {
  if (int err = fiu_point_errno("reference/device/flush")) {
    count_hit("libfiu");
    return {err, false};
  }
  if (const FaultRule* f = take_fault(FaultOp::flush, 0)) {
    count_hit("reference-device");
    if (f->mode == FaultMode::hang) return {0, true};
    if (f->mode == FaultMode::error) return {f->err ? f->err : EIO, false};
    return {};  // drop: the device claims a flush it did not do
  }
  ++flushes_;
  for (auto& [block, buf] : volatile_) stable_[block] = std::move(buf);
  volatile_.clear();
  return {};
}

void SimDevice::add_fault(const FaultRule& rule) { faults_.push_back(rule); }
void SimDevice::heal() { faults_.clear(); }

void SimDevice::set_thin(uint64_t headroom_bytes, FaultMode when_full) {
  capacity_ = allocated_.size() + headroom_bytes / kBlockSize;
  when_full_ = when_full;
}

void SimDevice::grow(uint64_t bytes) {
  if (capacity_) *capacity_ += bytes / kBlockSize;
}

void SimDevice::power_cut() { volatile_.clear(); }

}  // namespace syncprobe::ref
