// The btrfs chunk map: parsing a BTRFS_IOC_TREE_SEARCH result captured on a
// real filesystem (checked against btrfs-progs' own dump of the same chunk
// tree), mapping logical addresses and choosing what a fault fails; and, as
// root, the same on a live btrfs, checked against the raw device's bytes.
#include <gtest/gtest.h>

#include <fcntl.h>
#include <linux/btrfs_tree.h>
#include <unistd.h>

#include <filesystem>
#include <cstring>
#include <fstream>
#include <map>
#include <regex>
#include <sstream>

#include "syncprobe/btrfs_chunks.h"
#include "syncprobe/command.h"
#include "syncprobe/linux_fs.h"

namespace syncprobe {
namespace {

const std::string kData = SYNCPROBE_PLATFORM_TEST_DATA;

// The captured search buffer: hex lines, '#' comments.
std::vector<unsigned char> captured_search() {
  std::ifstream in(kData + "/btrfs-chunk-search.hex");
  std::vector<unsigned char> out;
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    for (size_t i = 0; i + 1 < line.size(); i += 2) out.push_back(std::stoul(line.substr(i, 2), nullptr, 16));
  }
  return out;
}

// btrfs-progs v6.2's `dump-tree -t chunk` text, reduced to chunks: the
// independent statement of what the buffer holds.
std::vector<BtrfsChunk> dumped_chunks() {
  std::ifstream in(kData + "/btrfs-6.2-chunk-tree.txt");
  const std::regex key(R"(key \(FIRST_CHUNK_TREE CHUNK_ITEM (\d+)\))");
  const std::regex body(R"(length (\d+) owner \d+ stripe_len (\d+) type (\S+))");
  const std::regex stripe(R"(stripe \d+ devid (\d+) offset (\d+))");
  const std::map<std::string, uint64_t> bits = {
      {"DATA", BTRFS_BLOCK_GROUP_DATA}, {"SYSTEM", BTRFS_BLOCK_GROUP_SYSTEM},
      {"METADATA", BTRFS_BLOCK_GROUP_METADATA}, {"DUP", BTRFS_BLOCK_GROUP_DUP}, {"single", 0}};
  std::vector<BtrfsChunk> out;
  std::string line;
  std::smatch m;
  while (std::getline(in, line)) {
    if (std::regex_search(line, m, key)) {
      out.emplace_back();
      out.back().logical = std::stoull(m[1]);
    } else if (!out.empty() && std::regex_search(line, m, body)) {
      out.back().length = std::stoull(m[1]);
      out.back().stripe_len = std::stoull(m[2]);
      std::stringstream names(m[3]);
      for (std::string n; std::getline(names, n, '|');) out.back().type |= bits.at(n);
    } else if (!out.empty() && std::regex_search(line, m, stripe)) {
      out.back().stripes.push_back({std::stoull(m[1]), std::stoull(m[2])});
    }
  }
  return out;
}

std::vector<BtrfsChunk> parsed() {
  const auto buf = captured_search();
  std::vector<BtrfsChunk> chunks;
  std::string why;
  EXPECT_TRUE(parse_btrfs_chunk_items(buf, 4, chunks, why)) << why;
  return chunks;
}

TEST(BtrfsChunks, CapturedSearchMatchesBtrfsProgsDump) {
  const auto chunks = parsed();
  const auto dumped = dumped_chunks();
  ASSERT_EQ(dumped.size(), 4u) << "the dump-tree fixture lists four chunk items";
  ASSERT_EQ(chunks.size(), dumped.size());
  for (size_t i = 0; i < chunks.size(); ++i) {
    SCOPED_TRACE("chunk at logical " + std::to_string(dumped[i].logical));
    EXPECT_EQ(chunks[i].logical, dumped[i].logical);
    EXPECT_EQ(chunks[i].length, dumped[i].length);
    EXPECT_EQ(chunks[i].stripe_len, dumped[i].stripe_len);
    EXPECT_EQ(chunks[i].type, dumped[i].type);
    ASSERT_EQ(chunks[i].stripes.size(), dumped[i].stripes.size());
    for (size_t s = 0; s < chunks[i].stripes.size(); ++s) {
      EXPECT_EQ(chunks[i].stripes[s].devid, dumped[i].stripes[s].devid);
      EXPECT_EQ(chunks[i].stripes[s].offset, dumped[i].stripes[s].offset);
    }
  }
}

TEST(BtrfsChunks, MapsTheCapturedFilesLogicalExtentToWhereDdFoundIt) {
  // filefrag: the 20 MiB file's one extent starts at logical block 15616;
  // dd found its first block at device byte 105906176.
  std::vector<ByteRange> out;
  std::string why;
  ASSERT_TRUE(btrfs_map_logical(parsed(), 1, 15616ull * 4096, 20ull << 20, out, why)) << why;
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].offset, 105906176u);
  EXPECT_EQ(out[0].length, 20ull << 20);
  EXPECT_FALSE(btrfs_map_logical(parsed(), 1, 1 << 20, 4096, out, why)) << "below the first chunk";
  EXPECT_NE(why.find("no chunk"), std::string::npos) << why;
}

TEST(BtrfsChunks, DuplicatedChunksMapToEveryCopy) {
  std::vector<ByteRange> out;
  std::string why;
  // The METADATA|DUP chunk at logical 30408704: copies at 38797312 and 72351744.
  ASSERT_TRUE(btrfs_map_logical(parsed(), 1, 30408704 + 16384, 16384, out, why)) << why;
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0].offset, 38797312u + 16384);
  EXPECT_EQ(out[1].offset, 72351744u + 16384);
}

TEST(BtrfsChunks, DataFaultFailsEveryDataBlockGroupAndNoMetadata) {
  BtrfsFaultRanges data;
  std::string why;
  ASSERT_TRUE(btrfs_fault_ranges_from(parsed(), 1, 512ull << 20, true, data, why)) << why;
  ASSERT_EQ(data.ranges.size(), 2u);
  EXPECT_EQ(data.ranges[0].offset, 13631488u);
  EXPECT_EQ(data.ranges[0].length, 8ull << 20);
  EXPECT_EQ(data.ranges[1].offset, 105906176u);
  EXPECT_EQ(data.ranges[1].length, 64ull << 20);
  EXPECT_NE(data.from.find("DATA"), std::string::npos);
  EXPECT_TRUE(data.note.empty());

  BtrfsFaultRanges meta;
  ASSERT_TRUE(btrfs_fault_ranges_from(parsed(), 1, 512ull << 20, false, meta, why)) << why;
  // The superblock at 64 KiB; SYSTEM (two copies) and METADATA (two copies)
  // touch each other from 21 MiB to 101 MiB, the 64 MiB superblock inside.
  ASSERT_EQ(meta.ranges.size(), 2u);
  EXPECT_EQ(meta.ranges[0].offset, 65536u);
  EXPECT_EQ(meta.ranges[0].length, 4096u);
  EXPECT_EQ(meta.ranges[1].offset, 22020096u);
  EXPECT_EQ(meta.ranges[1].offset + meta.ranges[1].length, 72351744u + (32ull << 20));
  for (const auto& d : data.ranges)
    for (const auto& m : meta.ranges) EXPECT_FALSE(m.overlaps(d.offset, d.length)) << "data and metadata disjoint";
}

TEST(BtrfsChunks, MixedGroupsAndMissingGroupsAreSaid) {
  BtrfsChunk mixed;
  mixed.logical = 1 << 20;
  mixed.length = 8 << 20;
  mixed.type = BTRFS_BLOCK_GROUP_DATA | BTRFS_BLOCK_GROUP_METADATA;
  mixed.stripes = {{1, 1 << 20}};
  BtrfsFaultRanges out;
  std::string why;
  ASSERT_TRUE(btrfs_fault_ranges_from({mixed}, 1, 64 << 20, true, out, why)) << why;
  EXPECT_NE(out.note.find("mixed"), std::string::npos);
  EXPECT_FALSE(btrfs_fault_ranges_from({mixed}, 2, 64 << 20, true, out, why)) << "nothing on device 2";
  EXPECT_NE(why.find("no DATA"), std::string::npos) << why;
}

TEST(BtrfsChunks, StripedProfilesShareTheLengthAndAreNotMapped) {
  BtrfsChunk raid0;
  raid0.logical = 0;
  raid0.length = 8 << 20;
  raid0.type = BTRFS_BLOCK_GROUP_DATA | BTRFS_BLOCK_GROUP_RAID0;
  raid0.stripes = {{1, 0}, {2, 0}};
  EXPECT_EQ(btrfs_stripe_bytes(raid0), 4u << 20);
  std::vector<ByteRange> out;
  std::string why;
  EXPECT_FALSE(btrfs_map_logical({raid0}, 1, 0, 4096, out, why));
  EXPECT_NE(why.find("striped"), std::string::npos) << why;
}

TEST(BtrfsChunks, MalformedSearchResultsAreRefused) {
  auto buf = captured_search();
  std::vector<BtrfsChunk> chunks;
  std::string why;
  EXPECT_FALSE(parse_btrfs_chunk_items(std::span(buf).first(buf.size() - 8), 4, chunks, why));
  EXPECT_NE(why.find("claims"), std::string::npos) << why;
  EXPECT_FALSE(parse_btrfs_chunk_items(buf, 5, chunks, why)) << "a fifth header that is not there";
  EXPECT_NE(why.find("cut short"), std::string::npos) << why;
  // The first chunk item (after its 32-byte header; num_stripes at byte 44
  // of the item) claims 9 stripes in 80 bytes.
  buf[32 + 44] = 9;
  EXPECT_FALSE(parse_btrfs_chunk_items(buf, 4, chunks, why));
  EXPECT_NE(why.find("9 stripes"), std::string::npos) << why;
  EXPECT_TRUE(chunks.empty()) << "nothing appended from a refused buffer";
}

// A btrfs of the test's own on a loop device (root and mkfs.btrfs needed):
// a file's FIEMAP extent, mapped through the live chunk tree, is where the
// raw device holds the file's bytes; the data fault's ranges contain it.
class LiveBtrfs : public ::testing::Test {
 protected:
  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "needs root (loop device, mount)";
    if (find_program("mkfs.btrfs").empty()) GTEST_SKIP() << "mkfs.btrfs missing (scripts/setup)";
    std::ifstream known("/proc/filesystems");
    std::stringstream fss;
    fss << known.rdbuf();
    if (fss.str().find("\tbtrfs\n") == std::string::npos && !run_program({"modprobe", "btrfs"}).ok())
      GTEST_SKIP() << "this kernel has no btrfs";
    char tmpl[] = "/tmp/syncprobe-btrfs-chunks-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    const std::string img = dir_ + "/img";
    { std::ofstream(img).close(); }
    std::filesystem::resize_file(img, 512ull << 20);
    CommandResult l = run_program({"losetup", "--find", "--show", img});
    ASSERT_TRUE(l.ok()) << l.output;
    loop_ = l.output.substr(0, l.output.find('\n'));
    ASSERT_TRUE(run_program({"mkfs.btrfs", "-q", "-f", "-K", loop_}).ok());
    std::filesystem::create_directory(dir_ + "/mnt");
    ASSERT_TRUE(run_program({"mount", "-t", "btrfs", loop_, dir_ + "/mnt"}).ok());
    mounted_ = true;
  }
  void TearDown() override {
    if (mounted_) {
      EXPECT_TRUE(run_program({"umount", dir_ + "/mnt"}).ok());
    }
    if (!loop_.empty()) {
      EXPECT_TRUE(run_program({"losetup", "-d", loop_}).ok());
    }
    if (!dir_.empty()) std::filesystem::remove_all(dir_);
  }
  std::string dir_, loop_;
  bool mounted_ = false;
};

TEST_F(LiveBtrfs, FileBytesAreWhereTheChunkTreeSays) {
  // mkfs's first data chunk (8 MiB) sits where its logical address says; a
  // file larger than it gets a new chunk that does not.
  const std::string file = dir_ + "/mnt/f";
  std::string pattern(12 << 20, '\0');
  for (size_t i = 0; i < pattern.size(); ++i) pattern[i] = char('a' + (i / 4096) % 26);
  {
    std::ofstream out(file, std::ios::binary);
    out.write(pattern.data(), std::streamsize(pattern.size()));
  }
  ASSERT_TRUE(run_program({"sync", "-f", file}).ok());
  std::vector<ByteRange> extents;
  std::string why;
  ASSERT_TRUE(fiemap_extents(file, extents, why)) << why;
  ASSERT_FALSE(extents.empty());
  std::vector<BtrfsChunk> chunks;
  ASSERT_TRUE(btrfs_chunks(dir_ + "/mnt", chunks, why)) << why;
  BtrfsFaultRanges data;
  ASSERT_TRUE(btrfs_fault_ranges(dir_ + "/mnt", true, data, why)) << why;
  const int dev = ::open(loop_.c_str(), O_RDONLY | O_DIRECT | O_CLOEXEC);
  ASSERT_GE(dev, 0);
  uint64_t logical_in_file = 0;
  bool moved = false;
  for (const auto& e : extents) {
    std::vector<ByteRange> phys;
    ASSERT_TRUE(btrfs_map_logical(chunks, 1, e.offset, e.length, phys, why)) << why;
    ASSERT_EQ(phys.size(), 1u) << "data is single on one device";
    moved = moved || phys[0].offset != e.offset;
    bool inside = false;
    for (const auto& r : data.ranges)
      inside = inside || (phys[0].offset >= r.offset && phys[0].offset + phys[0].length <= r.offset + r.length);
    EXPECT_TRUE(inside) << "the file's blocks lie in the data fault's ranges";
    void* block = nullptr;
    ASSERT_EQ(posix_memalign(&block, 4096, 4096), 0);
    ASSERT_EQ(pread(dev, block, 4096, off_t(phys[0].offset)), 4096);
    EXPECT_EQ(std::memcmp(block, pattern.data() + logical_in_file, 4096), 0)
        << "the device holds the file's bytes at the mapped offset";
    free(block);
    logical_in_file += e.length;
  }
  ::close(dev);
  EXPECT_TRUE(moved) << "the file's logical and physical addresses differ: the mapping was exercised";
}

}  // namespace
}  // namespace syncprobe
