#include "syncprobe/btrfs_chunks.h"

#include <endian.h>
#include <fcntl.h>
#include <linux/btrfs.h>
#include <linux/btrfs_tree.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <limits>

namespace syncprobe {

namespace {

// The kernel's search results are packed native-endian headers followed by
// the on-disk (little-endian) item; read both by copying, never by casting.
template <typename T>
T load(const unsigned char* p) {
  T v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
uint64_t le64(const unsigned char* p) { return le64toh(load<uint64_t>(p)); }
uint16_t le16(const unsigned char* p) { return le16toh(load<uint16_t>(p)); }

constexpr size_t kChunkFixed = offsetof(btrfs_chunk, stripe);  // 48 bytes
constexpr size_t kStripe = sizeof(btrfs_stripe);               // 32 bytes

bool parse_chunk(const unsigned char* item, size_t len, uint64_t logical, BtrfsChunk& c, std::string& why) {
  if (len < kChunkFixed + kStripe) {
    why = "chunk item at logical " + std::to_string(logical) + " is " + std::to_string(len) + " bytes";
    return false;
  }
  c.logical = logical;
  c.length = le64(item + offsetof(btrfs_chunk, length));
  c.stripe_len = le64(item + offsetof(btrfs_chunk, stripe_len));
  c.type = le64(item + offsetof(btrfs_chunk, type));
  c.sub_stripes = le16(item + offsetof(btrfs_chunk, sub_stripes));
  const uint16_t n = le16(item + offsetof(btrfs_chunk, num_stripes));
  if (n == 0 || kChunkFixed + size_t(n) * kStripe > len) {
    why = "chunk item at logical " + std::to_string(logical) + " names " + std::to_string(n) +
          " stripes in " + std::to_string(len) + " bytes";
    return false;
  }
  for (uint16_t i = 0; i < n; ++i) {
    const unsigned char* s = item + kChunkFixed + size_t(i) * kStripe;
    c.stripes.push_back({le64(s + offsetof(btrfs_stripe, devid)), le64(s + offsetof(btrfs_stripe, offset))});
  }
  return true;
}

std::vector<ByteRange> merged(std::vector<ByteRange> v) {
  std::sort(v.begin(), v.end(), [](const ByteRange& a, const ByteRange& b) { return a.offset < b.offset; });
  std::vector<ByteRange> out;
  for (const auto& r : v) {
    if (!out.empty() && out.back().offset + out.back().length >= r.offset)
      out.back().length = std::max(out.back().offset + out.back().length, r.offset + r.length) - out.back().offset;
    else
      out.push_back(r);
  }
  return out;
}

// fs/btrfs/disk-io.h (not in the uapi headers): btrfs_sb_offset(mirror).
constexpr int kSuperMirrors = 3;
constexpr uint64_t kSuperBytes = 4096;
uint64_t super_offset(int mirror) { return mirror == 0 ? 65536 : uint64_t(16384) << (12 * mirror); }

constexpr uint64_t kStriped = BTRFS_BLOCK_GROUP_RAID0 | BTRFS_BLOCK_GROUP_RAID10 | BTRFS_BLOCK_GROUP_RAID5 |
                              BTRFS_BLOCK_GROUP_RAID6;

}  // namespace

bool parse_btrfs_chunk_items(std::span<const unsigned char> buf, uint32_t items, std::vector<BtrfsChunk>& out,
                             std::string& why) {
  std::vector<BtrfsChunk> found;
  size_t at = 0;
  for (uint32_t i = 0; i < items; ++i) {
    if (buf.size() - at < sizeof(btrfs_ioctl_search_header)) {
      why = "search result " + std::to_string(i) + " of " + std::to_string(items) + " is cut short";
      return false;
    }
    const auto h = load<btrfs_ioctl_search_header>(buf.data() + at);
    at += sizeof h;
    if (buf.size() - at < h.len) {
      why = "search result " + std::to_string(i) + " claims " + std::to_string(h.len) + " bytes, " +
            std::to_string(buf.size() - at) + " left";
      return false;
    }
    if (h.type == BTRFS_CHUNK_ITEM_KEY) {
      BtrfsChunk c;
      if (!parse_chunk(buf.data() + at, h.len, h.offset, c, why)) return false;
      found.push_back(std::move(c));
    }
    at += h.len;
  }
  out.insert(out.end(), found.begin(), found.end());
  return true;
}

bool btrfs_chunks(const std::string& mountpoint, std::vector<BtrfsChunk>& out, std::string& why) {
  const int fd = ::open(mountpoint.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) {
    why = mountpoint + ": " + std::strerror(errno);
    return false;
  }
  // Chunk items are keyed (FIRST_CHUNK_TREE, CHUNK_ITEM, logical): walk the
  // logical addresses in batches until the kernel returns nothing more.
  btrfs_ioctl_search_args args{};
  uint64_t from = 0;
  std::vector<BtrfsChunk> found;
  for (;;) {
    std::memset(&args, 0, sizeof args);
    args.key.tree_id = BTRFS_CHUNK_TREE_OBJECTID;
    args.key.min_objectid = args.key.max_objectid = BTRFS_FIRST_CHUNK_TREE_OBJECTID;
    args.key.min_type = args.key.max_type = BTRFS_CHUNK_ITEM_KEY;
    args.key.min_offset = from;
    args.key.max_offset = std::numeric_limits<uint64_t>::max();
    args.key.max_transid = std::numeric_limits<uint64_t>::max();
    args.key.nr_items = 4096;
    if (ioctl(fd, BTRFS_IOC_TREE_SEARCH, &args) < 0) {
      why = "BTRFS_IOC_TREE_SEARCH (chunk tree) on " + mountpoint + ": " + std::strerror(errno);
      ::close(fd);
      return false;
    }
    if (args.key.nr_items == 0) break;
    const size_t before = found.size();
    const auto* buf = reinterpret_cast<const unsigned char*>(args.buf);
    if (!parse_btrfs_chunk_items({buf, sizeof args.buf}, args.key.nr_items, found, why)) {
      ::close(fd);
      return false;
    }
    if (found.size() == before || found.back().logical == std::numeric_limits<uint64_t>::max()) break;
    from = found.back().logical + 1;
  }
  ::close(fd);
  std::sort(found.begin(), found.end(), [](const BtrfsChunk& a, const BtrfsChunk& b) { return a.logical < b.logical; });
  out.insert(out.end(), found.begin(), found.end());
  return true;
}

uint64_t btrfs_stripe_bytes(const BtrfsChunk& c) {
  const uint64_t n = c.stripes.size();
  if (c.type & BTRFS_BLOCK_GROUP_RAID0) return c.length / n;
  if (c.type & BTRFS_BLOCK_GROUP_RAID10) return c.length / std::max<uint64_t>(1, n / std::max<uint16_t>(1, c.sub_stripes));
  if (c.type & BTRFS_BLOCK_GROUP_RAID5) return n > 1 ? c.length / (n - 1) : c.length;
  if (c.type & BTRFS_BLOCK_GROUP_RAID6) return n > 2 ? c.length / (n - 2) : c.length;
  return c.length;  // single, DUP, RAID1, RAID1C3, RAID1C4: every stripe is a whole copy
}

std::vector<ByteRange> btrfs_device_ranges(const std::vector<BtrfsChunk>& chunks, uint64_t type_mask,
                                           uint64_t devid) {
  std::vector<ByteRange> v;
  for (const auto& c : chunks) {
    if (!(c.type & type_mask)) continue;
    for (const auto& s : c.stripes)
      if (s.devid == devid) v.push_back({s.offset, btrfs_stripe_bytes(c)});
  }
  return merged(std::move(v));
}

bool btrfs_map_logical(const std::vector<BtrfsChunk>& chunks, uint64_t devid, uint64_t logical, uint64_t length,
                       std::vector<ByteRange>& out, std::string& why) {
  std::vector<ByteRange> v;
  for (uint64_t at = logical; at < logical + length;) {
    auto c = std::find_if(chunks.begin(), chunks.end(),
                          [&](const BtrfsChunk& k) { return at >= k.logical && at - k.logical < k.length; });
    if (c == chunks.end()) {
      why = "logical " + std::to_string(at) + " is in no chunk";
      return false;
    }
    if (c->type & kStriped) {
      why = "logical " + std::to_string(at) + " is in a striped chunk (RAID0/10/5/6), not mapped";
      return false;
    }
    const uint64_t n = std::min(logical + length, c->logical + c->length) - at;
    for (const auto& s : c->stripes)
      if (s.devid == devid) v.push_back({s.offset + (at - c->logical), n});
    at += n;
  }
  out = merged(std::move(v));
  return true;
}

bool btrfs_fault_ranges_from(const std::vector<BtrfsChunk>& chunks, uint64_t devid, uint64_t device_bytes,
                             bool data, BtrfsFaultRanges& out, std::string& why) {
  const uint64_t mask = data ? BTRFS_BLOCK_GROUP_DATA : BTRFS_BLOCK_GROUP_METADATA | BTRFS_BLOCK_GROUP_SYSTEM;
  out.ranges = btrfs_device_ranges(chunks, mask, devid);
  if (out.ranges.empty()) {
    why = std::string("the chunk tree has no ") + (data ? "DATA" : "METADATA or SYSTEM") +
          " block group on device " + std::to_string(devid);
    return false;
  }
  out.from = data ? "btrfs chunk tree (DATA block groups, every copy)"
                  : "btrfs chunk tree (METADATA and SYSTEM block groups, every copy) and the superblock copies";
  bool mixed = false;
  for (const auto& c : chunks)
    mixed = mixed || ((c.type & BTRFS_BLOCK_GROUP_DATA) && (c.type & BTRFS_BLOCK_GROUP_METADATA));
  out.note = mixed ? "mixed block groups (DATA|METADATA): the failed ranges hold both data and metadata" : "";
  if (!data) {
    // The primary superblock and its mirrors, written at every commit, lie outside every chunk.
    for (int i = 0; i < kSuperMirrors; ++i)
      if (super_offset(i) + kSuperBytes <= device_bytes) out.ranges.push_back({super_offset(i), kSuperBytes});
    out.ranges = merged(std::move(out.ranges));
  }
  return true;
}

bool btrfs_fault_ranges(const std::string& mountpoint, bool data, BtrfsFaultRanges& out, std::string& why) {
  const int fd = ::open(mountpoint.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) {
    why = mountpoint + ": " + std::strerror(errno);
    return false;
  }
  btrfs_ioctl_fs_info_args fs{};
  btrfs_ioctl_dev_info_args dev{};
  bool ok = ioctl(fd, BTRFS_IOC_FS_INFO, &fs) == 0;
  if (!ok) why = "BTRFS_IOC_FS_INFO on " + mountpoint + ": " + std::strerror(errno);
  if (ok && fs.num_devices != 1) {
    why = std::to_string(fs.num_devices) + " devices: which one is under the injector is unknown";
    ok = false;
  }
  dev.devid = fs.max_id;  // the one device's id
  if (ok && ioctl(fd, BTRFS_IOC_DEV_INFO, &dev) != 0) {
    why = "BTRFS_IOC_DEV_INFO on " + mountpoint + ": " + std::strerror(errno);
    ok = false;
  }
  ::close(fd);
  std::vector<BtrfsChunk> chunks;
  if (!ok || !btrfs_chunks(mountpoint, chunks, why)) return false;
  return btrfs_fault_ranges_from(chunks, dev.devid, dev.total_bytes, data, out, why);
}

}  // namespace syncprobe
