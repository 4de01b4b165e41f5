#include "syncprobe/tag.h"

#include <algorithm>
#include <cstring>

namespace syncprobe {
namespace {

constexpr char kMagic[4] = {'S', 'P', 'v', '1'};
constexpr size_t kHeader = 32;

uint32_t mix(std::span<const std::byte> bytes) {
  uint32_t h = 2166136261u;  // FNV-1a: cheap, and enough to reject torn sectors
  for (auto b : bytes) h = (h ^ static_cast<uint8_t>(b)) * 16777619u;
  return h;
}

void put_le(std::byte* p, uint64_t v, int n) {
  for (int i = 0; i < n; ++i) p[i] = static_cast<std::byte>((v >> (8 * i)) & 0xff);
}

// One whole sector of `tag` at `sector_offset`.
void fill_sector(std::byte* s, std::string_view tag, uint64_t sector_offset) {
  std::memset(s, 0, kTagSector);
  std::memcpy(s, kMagic, 4);
  std::memcpy(s + 4, tag.data(), std::min(tag.size(), kMaxTagLength));
  put_le(s + 20, sector_offset, 8);
  put_le(s + 28, mix({s, 28}), 4);
  const uint32_t seed = mix({s, 20});
  for (size_t i = kHeader; i < kTagSector; ++i)
    s[i] = static_cast<std::byte>((seed >> ((i % 4) * 8)) ^ (i & 0xff));
}

bool all_zero(std::span<const std::byte> s) {
  return std::all_of(s.begin(), s.end(), [](std::byte b) { return b == std::byte{0}; });
}

// The tag a whole sector carries, "zero", or "garbage".
std::string sector_tag(std::span<const std::byte> s, uint64_t sector_offset) {
  if (all_zero(s)) return "zero";
  if (s.size() != kTagSector || std::memcmp(s.data(), kMagic, 4) != 0) return "garbage";
  const char* t = reinterpret_cast<const char*>(s.data() + 4);
  std::string tag(t, strnlen(t, kMaxTagLength));
  if (!valid_tag(tag)) return "garbage";
  std::byte expect[kTagSector];
  fill_sector(expect, tag, sector_offset);
  return std::memcmp(expect, s.data(), kTagSector) == 0 ? tag : "garbage";
}

}  // namespace

bool valid_tag(std::string_view tag) {
  if (tag.empty() || tag.size() > kMaxTagLength) return false;
  if (tag == "zero" || tag == "mixed" || tag == "garbage" || tag == "empty") return false;
  return std::all_of(tag.begin(), tag.end(), [](char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '.' || c == '-';
  });
}

void fill_tagged(std::span<std::byte> out, std::string_view tag, uint64_t offset) {
  // Sectors are aligned to absolute file offsets, so a write at an unaligned
  // offset still produces the same bytes as an aligned write covering it.
  size_t i = 0;
  while (i < out.size()) {
    const uint64_t abs = offset + i;
    const uint64_t sector = abs - abs % kTagSector;
    const size_t in_sector = abs - sector;
    const size_t n = std::min(kTagSector - in_sector, out.size() - i);
    std::byte s[kTagSector];
    fill_sector(s, tag, sector);
    std::memcpy(out.data() + i, s + in_sector, n);
    i += n;
  }
}

std::vector<std::byte> make_tagged(std::string_view tag, uint64_t offset, size_t length) {
  std::vector<std::byte> v(length);
  fill_tagged(v, tag, offset);
  return v;
}

TagReading classify_tagged(std::span<const std::byte> data, uint64_t offset) {
  TagReading r;
  if (data.empty()) {
    r.tag = "empty";
    return r;
  }
  size_t i = 0;
  while (i < data.size()) {
    const size_t n = std::min(kTagSector, data.size() - i);
    std::string t = sector_tag(data.subspan(i, n), offset + i);
    if (!r.parts.empty() && r.parts.back().first == t)
      r.parts.back().second += n;
    else
      r.parts.emplace_back(std::move(t), n);
    i += n;
  }
  r.tag = r.parts.size() == 1 ? r.parts.front().first : "mixed";
  return r;
}

}  // namespace syncprobe
