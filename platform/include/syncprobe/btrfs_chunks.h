#pragma once
// Where btrfs keeps things on its device. FIEMAP on btrfs reports logical
// addresses; the chunk tree maps them to device bytes. It is read from the
// mounted filesystem with BTRFS_IOC_TREE_SEARCH (no btrfs-progs, so the
// static guest runner can use it too). Free functions over plain data.
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "syncprobe/fault.h"

namespace syncprobe {

struct BtrfsStripe {
  uint64_t devid = 0;
  uint64_t offset = 0;  // device byte where this stripe's device extent starts
};

// One chunk: logical [logical, logical + length), of the block-group type and
// profile in `type` (BTRFS_BLOCK_GROUP_* bits), stored on `stripes`.
struct BtrfsChunk {
  uint64_t logical = 0;
  uint64_t length = 0;
  uint64_t type = 0;
  uint64_t stripe_len = 0;
  uint16_t sub_stripes = 0;
  std::vector<BtrfsStripe> stripes;
};

// Appends the CHUNK_ITEMs among the `items` search results in `buf` (the
// buffer of BTRFS_IOC_TREE_SEARCH: a header, then the item, for each) to
// `out`; other item types are skipped. False and `why` when the buffer is
// short or an item is malformed (then `out` is unchanged).
bool parse_btrfs_chunk_items(std::span<const unsigned char> buf, uint32_t items,
                             std::vector<BtrfsChunk>& out, std::string& why);

// Every chunk of the btrfs mounted at `mountpoint`, in logical order. False
// and `why` when it is no btrfs or the ioctl fails (it needs CAP_SYS_ADMIN).
bool btrfs_chunks(const std::string& mountpoint, std::vector<BtrfsChunk>& out, std::string& why);

// The device bytes each stripe of `c` occupies (its device extent): the
// chunk's length for single, DUP and RAID1*, a share of it for striped profiles.
uint64_t btrfs_stripe_bytes(const BtrfsChunk& c);

// The device extents on `devid` of every stripe (every copy) of the chunks
// whose type has a bit of `type_mask`, sorted, touching ranges merged.
std::vector<ByteRange> btrfs_device_ranges(const std::vector<BtrfsChunk>& chunks, uint64_t type_mask,
                                           uint64_t devid);

// The device bytes on `devid` of every copy of logical [logical, logical +
// length). False and `why` when part of it lies in no chunk or in a striped
// profile (RAID0, RAID10, RAID5, RAID6), which this does not map.
bool btrfs_map_logical(const std::vector<BtrfsChunk>& chunks, uint64_t devid, uint64_t logical,
                       uint64_t length, std::vector<ByteRange>& out, std::string& why);

// The device bytes a fault on a one-device btrfs fails. data: every copy of
// the DATA block groups (copy-on-write writes a file's new data anywhere in
// them); metadata: every copy of the METADATA and SYSTEM block groups and the
// superblock copies. Only chunks that exist now: one allocated later is not
// covered. `note` says when the ranges hold more than asked (mixed groups).
struct BtrfsFaultRanges {
  std::vector<ByteRange> ranges;
  std::string from;  // for the step's detail: where the ranges came from
  std::string note;  // empty, or what else the ranges hold
};
// False and `why` when the mapping is impossible (not btrfs, more than one
// device, the ioctl failed, no such block group).
bool btrfs_fault_ranges(const std::string& mountpoint, bool data, BtrfsFaultRanges& out, std::string& why);

// The same from chunks already read, for a device `device_bytes` long with
// the id `devid`: the part of btrfs_fault_ranges that needs no kernel.
bool btrfs_fault_ranges_from(const std::vector<BtrfsChunk>& chunks, uint64_t devid, uint64_t device_bytes,
                             bool data, BtrfsFaultRanges& out, std::string& why);

}  // namespace syncprobe
