#pragma once
// The simulated block device under the reference page cache.
//
// Blocks of kBlockSize bytes, stored sparsely in memory (frames of a pool,
// indexed by 2 MiB segments); a never-written block reads as zeros. Like a disk with a volatile write cache, a write is
// held in the cache until flush() moves it to stable storage, and
// power_cut() loses what was not flushed. Faults follow a schedule of
// FaultRules (byte ranges, operation, errno / drop / hang, count or until
// healed); a thin-pool mode limits how many distinct blocks may be allocated.
//
// Pages do no I/O: the cache calls this interface, tests drive it directly.
// REQUIRES external synchronization (one case runs on one thread).
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include "syncprobe/fault.h"

namespace syncprobe::ref {

inline constexpr uint32_t kBlockSize = 4096;

// The outcome of one device operation.
struct [[nodiscard]] IoResult {
  int err = 0;          // errno when the operation failed
  bool hung = false;    // the operation would not complete (mode=hang, thin queue)
  bool ok() const { return err == 0 && !hung; }
};

class FramePool;

class SimDevice {
 public:
  // A device whose blocks are frames of its own pool.
  SimDevice();
  // A device whose blocks are frames of `frames` (which must outlive it),
  // the pool of the cache above, so that write_frame can take a cached
  // page's frame instead of a copy.
  explicit SimDevice(FramePool& frames);
  ~SimDevice();
  SimDevice(const SimDevice&) = delete;
  SimDevice& operator=(const SimDevice&) = delete;

  // REQUIRES: data.size() == kBlockSize.
  IoResult write(uint64_t block, std::span<const std::byte> data);
  // As write, but the block becomes a holder of `frame` (a frame of the
  // pool given at construction, kBlockSize bytes) instead of a copy of it:
  // neither holder may change the frame's bytes while the other holds it.
  IoResult write_frame(uint64_t block, std::byte* frame);
  // REQUIRES: out.size() == kBlockSize. Unwritten blocks read as zeros.
  IoResult read(uint64_t block, std::span<std::byte> out);
  // Makes every completed write stable.
  IoResult flush();

  // Adds a rule; rules accumulate until heal().
  void add_fault(const FaultRule& rule);
  void heal();
  // From now on only `headroom_bytes` more blocks (rounded down) may be
  // allocated; past that a write to an unallocated block fails with ENOSPC,
  // or hangs when `when_full` is FaultMode::hang (dm-thin's queue mode).
  void set_thin(uint64_t headroom_bytes, FaultMode when_full);
  void grow(uint64_t bytes);
  // Loses every write not yet flushed.
  void power_cut();
  // Forgets `count` blocks from `block` on (they read as zeros), as a
  // discard after a truncation. Not a write: no fault applies, nothing is
  // counted, and thin-pool allocation is left as it was.
  void discard(uint64_t block, uint64_t count);

  // Operations failed, dropped or hung by the injector, cumulative.
  uint64_t hits() const { return hits_; }
  // "reference-device", or "libfiu" when the last hit came from a libfiu point.
  std::string last_layer() const { return last_layer_; }
  uint64_t allocated_blocks() const { return allocated_; }
  std::optional<uint64_t> capacity_blocks() const { return capacity_; }
  uint64_t writes() const { return writes_; }
  uint64_t flushes() const { return flushes_; }
  // Counts a fault injected above the device (a libfiu point in the cache).
  // REQUIRES: `layer` is a string literal.
  void count_hit(const char* layer, FaultOp op, uint64_t block, FaultMode mode, int err);

  // One injected fault, as the observer is told of it.
  struct Hit {
    const char* layer;  // "reference-device" or "libfiu"
    FaultOp op;
    uint64_t block;
    FaultMode mode;
    int err;            // the errno delivered (mode error)
  };
  // Called on every injected fault (for a log); empty to stop.
  void observe_hits(std::function<void(const Hit&)> observer) { observer_ = std::move(observer); }

 private:
  // What the first rule matching (op, block) does, with its count consumed.
  struct Taken {
    FaultMode mode;
    int err;
  };
  std::optional<Taken> take_fault(FaultOp op, uint64_t block);
  // The faults and the thin pool's limit for a write of `block`: an
  // IoResult to return, or none and the block's unflushed slot to fill.
  std::optional<IoResult> admit_write(uint64_t block, std::byte**& slot);

  static constexpr uint64_t kSegmentBlocks = 512;
  struct Segment {
    std::byte* stable[kSegmentBlocks] = {};
    std::byte* unflushed[kSegmentBlocks] = {};       // written, not yet flushed
    uint64_t allocated[kSegmentBlocks / 64] = {};    // thin pool: blocks ever written
  };
  Segment* segment(uint64_t block, bool create);

  std::unique_ptr<FramePool> own_frames_;            // when constructed without a pool
  FramePool* frames_;
  std::unordered_map<uint64_t, std::unique_ptr<Segment>> segments_;
  Segment* last_ = nullptr;                         // the segment used last, and its number
  uint64_t last_no_ = 0;
  std::vector<uint64_t> unflushed_;                 // blocks with unflushed data
  uint64_t allocated_ = 0;
  std::optional<uint64_t> capacity_;                // thin pool: max allocated blocks
  FaultMode when_full_ = FaultMode::error;
  std::vector<FaultRule> faults_;
  uint64_t hits_ = 0, writes_ = 0, flushes_ = 0;
  const char* last_layer_ = "reference-device";
  std::function<void(const Hit&)> observer_;
};

}  // namespace syncprobe::ref
