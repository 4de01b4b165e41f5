#pragma once
// Tagged data patterns. Every write in a case carries a tag ("A", "B", "old"),
// and a read reports which tag it returned instead of raw bytes.
//
// Layout: the data is cut into 512-byte sectors at absolute file offsets; each
// sector begins with a 32-byte header
//   "SPv1" | tag (16 bytes, NUL padded) | file offset of the sector (8 bytes LE)
//   | checksum of the above (4 bytes LE)
// followed by filler bytes derived from the tag. A sector is recognised only
// when its header and filler are intact, so a torn or misplaced sector is not
// mistaken for a good one.
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace syncprobe {

inline constexpr size_t kTagSector = 512;
inline constexpr size_t kMaxTagLength = 16;

// Fills `out` with the pattern of `tag` as if written at file offset `offset`.
// REQUIRES: tag is 1..16 characters of [A-Za-z0-9_.-].
void fill_tagged(std::span<std::byte> out, std::string_view tag, uint64_t offset);
std::vector<std::byte> make_tagged(std::string_view tag, uint64_t offset, size_t length);

bool valid_tag(std::string_view tag);

// What a read returned, by content.
struct TagReading {
  // The tag when every sector carries the same one; "zero" when every byte is
  // zero; "mixed" when sectors differ (see `parts`); "garbage" when a sector is
  // neither zero nor a valid pattern for its offset; "empty" for no bytes.
  std::string tag;
  // Run-length composition, e.g. {{"A", 4096}, {"zero", 4096}}; one entry
  // unless `tag` is "mixed".
  std::vector<std::pair<std::string, uint64_t>> parts;
};

// REQUIRES: offset and data.size() are multiples of kTagSector, except that a
// short final sector is classified as "garbage" unless it is all zero.
TagReading classify_tagged(std::span<const std::byte> data, uint64_t offset);

}  // namespace syncprobe
