#pragma once
// Reading a file that input names (a case, a run's JSON) without trusting
// what it is: only a regular file, only up to a size, and never blocking (a
// FIFO in its place would hang the reader; /dev/zero would never end).
#include <cstdint>
#include <string>

namespace syncprobe {

struct BoundedRead {
  enum class Problem { none, open, not_regular, too_large, read };
  bool ok = false;
  Problem problem = Problem::none;
  std::string text;
  // When !ok: "cannot open: <strerror>", "not a regular file (a FIFO)",
  // "larger than <max> bytes (<size> bytes)", "read failed: <strerror>".
  std::string why;
};

BoundedRead read_bounded_file(const std::string& path, uint64_t max_bytes);

}  // namespace syncprobe
