#pragma once
// A fault as the runner hands it to an injector: which device bytes, which
// operation, what happens, and for how long. Deterministic by construction:
// there is no randomness here, and every field is recorded in the results.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace syncprobe {

enum class FaultOp { write, read, flush };
enum class FaultMode {
  error,  // the operation fails with `err`
  drop,   // the operation is acknowledged but nothing is stored (writes)
  hang,   // the operation does not complete until healed (or a timeout)
};

struct ByteRange {
  uint64_t offset = 0;
  uint64_t length = 0;  // 0 means "to the end of the device"
  bool contains(uint64_t off) const { return off >= offset && (length == 0 || off - offset < length); }
  bool overlaps(uint64_t off, uint64_t len) const {
    return off + len > offset && (length == 0 || off < offset + length);
  }
};

struct FaultRule {
  std::vector<ByteRange> ranges;   // empty: the whole device
  bool invert = false;             // the rule applies *outside* `ranges`
  FaultOp op = FaultOp::write;
  FaultMode mode = FaultMode::error;
  int err = 0;                     // errno for FaultMode::error (EIO, ENOSPC, ...)
  std::optional<uint32_t> count;   // hits before the rule expires; nullopt: until healed

  // True when an operation `op` on [off, off+len) is subject to this rule.
  bool matches(FaultOp o, uint64_t off, uint64_t len) const;
};

std::string_view to_string(FaultOp op);
std::string_view to_string(FaultMode mode);
std::optional<FaultOp> fault_op_from_string(std::string_view s);
std::optional<FaultMode> fault_mode_from_string(std::string_view s);

}  // namespace syncprobe
