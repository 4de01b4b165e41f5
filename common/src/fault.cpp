#include "syncprobe/fault.h"

namespace syncprobe {

bool FaultRule::matches(FaultOp o, uint64_t off, uint64_t len) const {
  if (o != op) return false;
  if (count && *count == 0) return false;
  if (o == FaultOp::flush || ranges.empty()) return !invert || ranges.empty();
  bool inside = false;
  for (const auto& r : ranges)
    if (r.overlaps(off, len == 0 ? 1 : len)) inside = true;
  return invert ? !inside : inside;
}

std::string_view to_string(FaultOp op) {
  switch (op) {
    case FaultOp::write: return "write";
    case FaultOp::read: return "read";
    case FaultOp::flush: return "flush";
  }
  return "?";
}

std::string_view to_string(FaultMode mode) {
  switch (mode) {
    case FaultMode::error: return "error";
    case FaultMode::drop: return "drop";
    case FaultMode::hang: return "hang";
  }
  return "?";
}

std::optional<FaultOp> fault_op_from_string(std::string_view s) {
  if (s == "write") return FaultOp::write;
  if (s == "read") return FaultOp::read;
  if (s == "flush") return FaultOp::flush;
  return std::nullopt;
}

std::optional<FaultMode> fault_mode_from_string(std::string_view s) {
  if (s == "error") return FaultMode::error;
  if (s == "drop") return FaultMode::drop;
  if (s == "hang") return FaultMode::hang;
  return std::nullopt;
}

}  // namespace syncprobe
