// The file-system API beyond what the catalogue's cases use: directories,
// rename of trees, readdir, truncate, attributes, handles that go stale, and
// what of it survives a power cut (names and sizes that were committed).
#include <gtest/gtest.h>

#include <cerrno>

#include "test_rig.h"

namespace syncprobe::ref::testing {
namespace {

std::vector<std::string> names(FileSystem& fs, const std::string& dir) {
  std::vector<DirEntry> entries;
  EXPECT_TRUE(fs.readdir(dir, entries).ok()) << dir;
  std::vector<std::string> out;
  for (const auto& e : entries) out.push_back(e.name + (e.dir ? "/" : ""));
  return out;
}

int err_of(const SysResult& r) { return r.ok() ? 0 : r.err; }

TEST(Namespace, DirectoriesHoldFilesAndListThem) {
  FileSystem fs(make_policy("proposed"));
  ASSERT_TRUE(fs.mkdir("a").ok());
  ASSERT_TRUE(fs.mkdir("a/b").ok());
  Handle h;
  ASSERT_TRUE(fs.open("a/b/f", {}, h).ok());
  ASSERT_TRUE(fs.open("a/g", {}, h).ok());
  ASSERT_TRUE(fs.open("a-z", {}, h).ok());  // sorts between "a" and "a/"
  EXPECT_EQ(names(fs, ""), (std::vector<std::string>{"a/", "a-z"}));
  EXPECT_EQ(names(fs, "/a"), (std::vector<std::string>{"b/", "g"}));
  EXPECT_EQ(names(fs, "a/b"), (std::vector<std::string>{"f"}));
  Attr at;
  ASSERT_TRUE(fs.getattr("a/b", at).ok());
  EXPECT_TRUE(at.dir);
  ASSERT_TRUE(fs.getattr("a/b/f", at).ok());
  EXPECT_FALSE(at.dir);
  EXPECT_EQ(at.nlink, 1u);
}

TEST(Namespace, ErrorsAsPosixNamesThem) {
  FileSystem fs(make_policy("proposed"));
  Handle h;
  ASSERT_TRUE(fs.open("f", {}, h).ok());
  ASSERT_TRUE(fs.mkdir("d").ok());
  EXPECT_EQ(err_of(fs.open("x/y", {}, h)), ENOENT) << "no parent";
  EXPECT_EQ(err_of(fs.open("f/y", {}, h)), ENOTDIR) << "a file as a directory";
  EXPECT_EQ(err_of(fs.mkdir("d")), EEXIST);
  EXPECT_EQ(err_of(fs.mkdir("x/y")), ENOENT);
  EXPECT_EQ(err_of(fs.unlink("d")), EISDIR);
  EXPECT_EQ(err_of(fs.rmdir("f")), ENOTDIR);
  EXPECT_EQ(err_of(fs.unlink("nothing")), ENOENT);
  OpenFlags excl;
  excl.exclusive = true;
  EXPECT_EQ(err_of(fs.open("f", excl, h)), EEXIST);
  OpenFlags no_create;
  no_create.create = false;
  EXPECT_EQ(err_of(fs.open("g", no_create, h)), ENOENT);
  EXPECT_EQ(err_of(fs.open("d", {}, h)), EISDIR) << "a directory opened for writing";
  OpenFlags dir;
  dir.directory = true;
  EXPECT_EQ(err_of(fs.open("f", dir, h)), ENOTDIR);
  ASSERT_TRUE(fs.open("d", dir, h).ok());
  std::byte b[1]{};
  EXPECT_EQ(err_of(fs.pwrite(h, b, 0)), EISDIR);
  ASSERT_TRUE(fs.open("d/in", {}, h).ok());
  EXPECT_EQ(err_of(fs.rmdir("d")), ENOTEMPTY);
  std::vector<DirEntry> e;
  EXPECT_EQ(err_of(fs.readdir("f", e)), ENOTDIR);
}

TEST(Namespace, RenameMovesTreesAndReplacesFiles) {
  FileSystem fs(make_policy("proposed"));
  Handle h;
  ASSERT_TRUE(fs.mkdir("a").ok());
  ASSERT_TRUE(fs.mkdir("a/b").ok());
  ASSERT_TRUE(fs.open("a/b/f", {}, h).ok());
  const std::byte data[3]{std::byte{1}, std::byte{2}, std::byte{3}};
  ASSERT_TRUE(fs.pwrite(h, data, 0).ok());
  ASSERT_TRUE(fs.rename("a", "z").ok());
  EXPECT_EQ(names(fs, ""), (std::vector<std::string>{"z/"}));
  Attr at;
  ASSERT_TRUE(fs.getattr("z/b/f", at).ok());
  EXPECT_EQ(at.size, 3u);
  EXPECT_EQ(err_of(fs.getattr("a/b/f", at)), ENOENT);
  EXPECT_EQ(err_of(fs.rename("z", "z/b/inside")), EINVAL) << "a directory into itself";
  // Replacing a file: the old one keeps its open description, loses its name.
  Handle old;
  ASSERT_TRUE(fs.open("victim", {}, old).ok());
  ASSERT_TRUE(fs.rename("z/b/f", "victim").ok());
  ASSERT_TRUE(fs.fgetattr(old, at).ok());
  EXPECT_EQ(at.nlink, 0u);
  ASSERT_TRUE(fs.getattr("victim", at).ok());
  EXPECT_EQ(at.size, 3u);
  ASSERT_TRUE(fs.mkdir("empty").ok());
  EXPECT_EQ(err_of(fs.rename("victim", "empty")), EISDIR);
  EXPECT_EQ(err_of(fs.rename("empty", "victim")), ENOTDIR);
  EXPECT_EQ(err_of(fs.rename("empty", "z")), ENOTEMPTY);
  ASSERT_TRUE(fs.rename("z/b", "empty").ok()) << "onto an empty directory";
  EXPECT_EQ(names(fs, "empty"), std::vector<std::string>{});
}

TEST(Namespace, CommittedNamesAndSizesSurviveAPowerCutOthersDoNot) {
  FileSystem fs(make_policy("proposed"));
  Handle h, d;
  ASSERT_TRUE(fs.mkdir("kept").ok());
  ASSERT_TRUE(fs.open("kept/f", {}, h).ok());
  const std::vector<std::byte> page(4096, std::byte{7});
  ASSERT_TRUE(fs.pwrite(h, page, 0).ok());
  ASSERT_TRUE(fs.fsync(h, false).ok());  // commits the namespace with the inode
  ASSERT_TRUE(fs.mkdir("lost").ok());     // never committed
  ASSERT_TRUE(fs.power_cut().ok());
  EXPECT_EQ(names(fs, ""), (std::vector<std::string>{"kept/"}));
  Attr at;
  ASSERT_TRUE(fs.getattr("kept/f", at).ok());
  EXPECT_EQ(at.size, 4096u);
  EXPECT_EQ(err_of(fs.fsync(h, false)), EBADF) << "the power took every description";
  ReadBack rb = fs.read_back("kept/f", 0, 4096);
  ASSERT_TRUE(rb.result.ok());
  EXPECT_EQ(rb.data, page);
}

TEST(Namespace, TruncateShrinksGrowsAndZeroesTheTail) {
  FileSystem fs(make_policy("proposed"));
  Handle h;
  ASSERT_TRUE(fs.open("f", {}, h).ok());
  const std::vector<std::byte> data(3 * 4096, std::byte{9});
  ASSERT_TRUE(fs.pwrite(h, data, 0).ok());
  ASSERT_TRUE(fs.truncate("f", 5000).ok());
  Attr at;
  ASSERT_TRUE(fs.getattr("f", at).ok());
  EXPECT_EQ(at.size, 5000u);
  ASSERT_TRUE(fs.ftruncate(h, 8192).ok());
  std::vector<std::byte> back(8192);
  ASSERT_EQ(fs.pread(h, back, 0).ret, 8192);
  for (size_t i = 0; i < back.size(); ++i)
    ASSERT_EQ(back[i], i < 5000 ? std::byte{9} : std::byte{0}) << "byte " << i;
  OpenFlags ro;
  ro.read_only = true;
  Handle r;
  ASSERT_TRUE(fs.open("f", ro, r).ok());
  EXPECT_EQ(err_of(fs.ftruncate(r, 0)), EINVAL);
  EXPECT_EQ(err_of(fs.truncate("f", 1ull << 40)), EFBIG);
}

// Truncation is durable with the journal commit that records the new size:
// before it, a power cut brings back the old size and data; after it, the
// cut-off blocks are gone and a hole made later reads as zeros.
TEST(Namespace, TruncationIsDurableWithItsCommit) {
  for (bool committed : {false, true}) {
    SCOPED_TRACE(committed ? "committed" : "not committed");
    FileSystem fs(make_policy("proposed"));
    Handle h;
    ASSERT_TRUE(fs.open("f", {}, h).ok());
    const std::vector<std::byte> old(2 * 4096, std::byte{5});
    ASSERT_TRUE(fs.pwrite(h, old, 0).ok());
    ASSERT_TRUE(fs.fsync(h, false).ok());
    ASSERT_TRUE(fs.ftruncate(h, 0).ok());
    ASSERT_TRUE(fs.drop_caches().ok());
    std::vector<std::byte> back(4096);
    const std::vector<std::byte> page(4096, std::byte{6}), zeros(4096, std::byte{0});
    ASSERT_TRUE(fs.pwrite(h, page, 4096).ok());  // page 0 is now a hole
    ASSERT_EQ(fs.pread(h, back, 0).ret, 4096);
    EXPECT_EQ(back, zeros) << "a hole never shows the data truncated away";
    if (committed) {
      ASSERT_TRUE(fs.fsync(h, false).ok());
    }
    ASSERT_TRUE(fs.power_cut().ok());
    ReadBack rb = fs.read_back("f", 0, 8192);
    ASSERT_TRUE(rb.result.ok());
    ASSERT_EQ(rb.data.size(), 8192u);
    const std::vector<std::byte> head(rb.data.begin(), rb.data.begin() + 4096);
    const std::vector<std::byte> tail(rb.data.begin() + 4096, rb.data.end());
    EXPECT_EQ(head, committed ? zeros : std::vector<std::byte>(4096, std::byte{5}));
    EXPECT_EQ(tail, committed ? page : std::vector<std::byte>(4096, std::byte{5}));
  }
}

TEST(Namespace, StaleHandlesGetEbadfEvenWhenTheirSlotIsReused) {
  FileSystem fs(make_policy("proposed"));
  Handle a, b;
  ASSERT_TRUE(fs.open("f", {}, a).ok());
  ASSERT_TRUE(fs.close(a).ok());
  ASSERT_TRUE(fs.open("g", {}, b).ok());  // reuses a's slot
  EXPECT_EQ(err_of(fs.close(a)), EBADF);
  std::byte x[1]{};
  EXPECT_EQ(err_of(fs.pwrite(a, x, 0)), EBADF);
  EXPECT_TRUE(fs.pwrite(b, x, 0).ok());
  EXPECT_EQ(fs.stats().open_files, 1u);
  EXPECT_EQ(err_of(fs.remount()), EBUSY);
  ASSERT_TRUE(fs.close(b).ok());
  EXPECT_TRUE(fs.remount().ok());
}

TEST(Namespace, ModesAndTimesAreKeptInCore) {
  FileSystem fs(make_policy("proposed"));
  Handle h;
  ASSERT_TRUE(fs.open("f", {}, h, 0600).ok());
  Attr at;
  ASSERT_TRUE(fs.getattr("f", at).ok());
  EXPECT_EQ(at.mode, 0600u);
  ASSERT_TRUE(fs.chmod("f", 0755).ok());
  const timespec t{1000, 5};
  ASSERT_TRUE(fs.utimens("f", std::nullopt, t).ok());
  ASSERT_TRUE(fs.getattr("f", at).ok());
  EXPECT_EQ(at.mode, 0755u);
  EXPECT_EQ(at.mtime.tv_sec, 1000);
  EXPECT_EQ(at.mtime.tv_nsec, 5);
}

TEST(Namespace, AFaultOnPartOfAFileFailsOnlyThatPart) {
  for (const char* policy : {"proposed", "linux-4.17"}) {
    SCOPED_TRACE(policy);
    FileSystem fs(make_policy(policy));
    Handle h;
    ASSERT_TRUE(fs.open("f", {}, h).ok());
    FaultRule rule, got;
    rule.err = ENOSPC;
    ASSERT_TRUE(fs.fault({FaultPlace::Where::data, "f", 4096, 4096}, rule, got).ok());
    ASSERT_EQ(got.ranges.size(), 1u);
    EXPECT_EQ(got.ranges[0].length, 4096u);
    const std::vector<std::byte> page(4096, std::byte{1});
    ASSERT_TRUE(fs.pwrite(h, page, 0).ok());
    ASSERT_TRUE(fs.fsync(h, false).ok()) << "page 0 is outside the fault";
    ASSERT_TRUE(fs.pwrite(h, page, 4096).ok());
    EXPECT_EQ(err_of(fs.fsync(h, false)), ENOSPC);
    EXPECT_EQ(fs.injected_hits(), 1u);
    EXPECT_EQ(err_of(fs.fault({FaultPlace::Where::data, "nope"}, rule, got)), ENOENT);
  }
}

// Preallocated memory is what later writes use; more than the machine has
// is refused before anything is touched.
TEST(Namespace, PreallocatedFramesAreUsedByLaterWrites) {
  FileSystem fs(make_policy("proposed"));
  ASSERT_TRUE(fs.preallocate(uint64_t(8) << 20).ok());
  const uint64_t reserved = fs.stats().frame_bytes_reserved;
  EXPECT_GE(reserved, uint64_t(8) << 20);
  const std::vector<std::byte> data(uint64_t(4) << 20, std::byte{5});
  Handle h;
  ASSERT_TRUE(fs.open("f", {}, h).ok());
  ASSERT_TRUE(fs.pwrite(h, data, 0).ok());
  ASSERT_TRUE(fs.fsync(h, false).ok());
  EXPECT_EQ(fs.stats().frame_bytes_reserved, reserved) << "4 MiB written took new memory";
  const SysResult r = fs.preallocate(uint64_t(1) << 62);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.err, ENOMEM);
  EXPECT_EQ(fs.stats().frame_bytes_reserved, reserved);
}

// Writeback gives the device the cached page's frame instead of a copy
// (frame_pool.h); a later change to the page must then reach neither the
// device nor a later read from it, whole pages or parts.
TEST(Namespace, WritebackSharesTheFrameAndALaterWriteCopiesIt) {
  FileSystem fs(make_policy("proposed"));
  constexpr uint64_t kPages = 1024;
  const std::vector<std::byte> ones(kPages * 4096, std::byte{1});
  Handle h;
  ASSERT_TRUE(fs.open("f", {}, h).ok());
  ASSERT_TRUE(fs.pwrite(h, ones, 0).ok());
  ASSERT_TRUE(fs.fsync(h, false).ok());
  ASSERT_TRUE(fs.sync().ok());
  // 1024 frames need three 2 MiB arenas of 511; a copy for the device, five.
  EXPECT_LE(fs.stats().frame_bytes_reserved, uint64_t(6) << 20) << "the device holds the cache's frames";

  const std::vector<std::byte> twos(4096, std::byte{2}), threes(10, std::byte{3});
  ASSERT_TRUE(fs.pwrite(h, twos, 0).ok());           // page 0, whole
  ASSERT_TRUE(fs.pwrite(h, threes, 4096 + 100).ok());  // page 1, in part
  std::vector<std::byte> back(2 * 4096);
  ASSERT_TRUE(fs.pread(h, back, 0).ok());
  EXPECT_EQ(back[0], std::byte{2});
  EXPECT_EQ(back[4096 + 99], std::byte{1}) << "the part not written keeps the old bytes";
  EXPECT_EQ(back[4096 + 100], std::byte{3});
  EXPECT_EQ(back[4096 + 110], std::byte{1});

  // Neither change written back: after a power cut the device has the old
  // bytes. Then page 1's change, written back, is there once the cache is gone.
  ASSERT_TRUE(fs.close(h).ok());
  ASSERT_TRUE(fs.power_cut().ok());
  ASSERT_TRUE(fs.open("f", {}, h).ok());
  ASSERT_TRUE(fs.pread(h, back, 0).ok());
  EXPECT_EQ(back[0], std::byte{1}) << "a write after writeback reached the device";
  EXPECT_EQ(back[4096 + 100], std::byte{1});
  ASSERT_TRUE(fs.pwrite(h, threes, 4096 + 100).ok());
  ASSERT_TRUE(fs.fsync(h, false).ok());
  ASSERT_TRUE(fs.close(h).ok());
  ASSERT_TRUE(fs.drop_caches().ok());
  ASSERT_TRUE(fs.open("f", {}, h).ok());
  ASSERT_TRUE(fs.pread(h, back, 0).ok());
  EXPECT_EQ(back[0], std::byte{1});
  EXPECT_EQ(back[4096 + 99], std::byte{1});
  EXPECT_EQ(back[4096 + 100], std::byte{3});
  EXPECT_EQ(back[2 * 4096 - 1], std::byte{1});
  ASSERT_TRUE(fs.close(h).ok());
}

}  // namespace
}  // namespace syncprobe::ref::testing

namespace syncprobe::ref::testing {
namespace {

// A file with no name and no open description is evicted: its pages at once,
// its device blocks once the unlink is committed, so a mount that creates and
// deletes files does not grow; a power cut before the commit brings it back.
TEST(Namespace, ADeletedFileGivesBackItsMemory) {
  FileSystem fs(make_policy("proposed"));
  const std::vector<std::byte> mib(1 << 20, std::byte{7});
  auto write_file = [&](const std::string& name) {
    Handle h;
    ASSERT_TRUE(fs.open(name, {}, h).ok());
    for (uint64_t off = 0; off < (4u << 20); off += mib.size()) ASSERT_TRUE(fs.pwrite(h, mib, off).ok());
    ASSERT_TRUE(fs.fsync(h, false).ok());
    ASSERT_TRUE(fs.close(h).ok());
  };
  write_file("a");
  ASSERT_TRUE(fs.sync().ok());
  const uint64_t reserved = fs.stats().frame_bytes_reserved;
  for (int round = 0; round < 4; ++round) {
    ASSERT_TRUE(fs.unlink("a").ok());
    EXPECT_EQ(fs.stats().cached_pages, 0u) << "no name, nothing open: evicted";
    ASSERT_TRUE(fs.sync().ok());  // commits the unlink: the blocks may go
    write_file("a");
  }
  EXPECT_EQ(fs.stats().frame_bytes_reserved, reserved) << "four rounds reused the first round's frames";

  // Unlinked while open: the description keeps it, whole, until it closes.
  Handle h;
  ASSERT_TRUE(fs.open("a", {}, h).ok());
  ASSERT_TRUE(fs.unlink("a").ok());
  std::vector<std::byte> back(4096);
  ASSERT_TRUE(fs.pread(h, back, 0).ok());
  EXPECT_EQ(back[0], std::byte{7});
  ASSERT_TRUE(fs.close(h).ok());

  // Not committed when the power goes: name and data come back.
  write_file("b");
  ASSERT_TRUE(fs.sync().ok());
  ASSERT_TRUE(fs.unlink("b").ok());
  ASSERT_TRUE(fs.power_cut().ok());
  ASSERT_TRUE(fs.open("b", {}, h).ok());
  ASSERT_TRUE(fs.pread(h, back, (4u << 20) - 4096).ok());
  EXPECT_EQ(back[0], std::byte{7});
  ASSERT_TRUE(fs.close(h).ok());
}

// pwrite and pread take a fast path for one whole, aligned page; it must
// refuse and decide exactly as the general path does. Each call below is a
// whole page at a page boundary, the case the fast path takes when it can.
TEST(Namespace, WholePageCallsMeetEveryCheckOfTheGeneralPath) {
  FileSystem::Options small;
  small.max_file_bytes = 4 * kPageSize;
  FileSystem fs(make_policy("proposed"), small);
  std::vector<std::byte> page(kPageSize, std::byte{7}), back(kPageSize);
  Handle rw, ro, sync, dir;
  ASSERT_TRUE(fs.open("f", {}, rw).ok());
  EXPECT_TRUE(fs.pwrite(rw, page, 3 * kPageSize).ok()) << "the last page of the file's region";
  EXPECT_EQ(err_of(fs.pwrite(rw, page, 4 * kPageSize)), EFBIG) << "one page past it";
  OpenFlags read_only;
  read_only.read_only = true;
  ASSERT_TRUE(fs.open("f", read_only, ro).ok());
  EXPECT_EQ(err_of(fs.pwrite(ro, page, 0)), EBADF);
  EXPECT_EQ(fs.pread(ro, back, 3 * kPageSize).ret, int64_t(kPageSize));
  EXPECT_EQ(back, page);
  EXPECT_EQ(fs.pread(ro, back, 4 * kPageSize).ret, 0) << "at the end of the file";
  EXPECT_EQ(fs.pread(ro, back, 0).ret, int64_t(kPageSize)) << "a hole reads as zeros";
  EXPECT_EQ(back, std::vector<std::byte>(kPageSize)) << "a hole reads as zeros";
  OpenFlags directory;
  directory.directory = true;
  ASSERT_TRUE(fs.mkdir("d").ok());
  ASSERT_TRUE(fs.open("d", directory, dir).ok());
  EXPECT_EQ(err_of(fs.pread(dir, back, 0)), EISDIR);
  EXPECT_EQ(err_of(fs.pwrite(dir, page, 0)), EISDIR);

  // O_SYNC: the page reaches the device before the call returns.
  OpenFlags o_sync;
  o_sync.sync = true;
  ASSERT_TRUE(fs.open("f", o_sync, sync).ok());
  const uint64_t writes = fs.stats().device_writes;
  ASSERT_TRUE(fs.pwrite(sync, page, 0).ok());
  EXPECT_GT(fs.stats().device_writes, writes);
  EXPECT_EQ(fs.stats().dirty_pages, 1u) << "only the page written without O_SYNC stays dirty";

  // A cache limit: whole-page writes and reads evict as the general path does.
  ASSERT_TRUE(fs.fsync(rw, false).ok());
  ASSERT_TRUE(fs.cache_limit(kPageSize).ok());
  ASSERT_TRUE(fs.pwrite(rw, page, kPageSize).ok());
  ASSERT_TRUE(fs.pread(ro, back, 3 * kPageSize).ok());
  EXPECT_LE(fs.stats().cached_pages, 2u) << "clean pages beyond the limit were evicted";
  EXPECT_GT(fs.stats().evicted_pages, 0u);

  // A shut-down filesystem refuses whole-page calls too.
  ShutdownReport report;
  ASSERT_TRUE(fs.shutdown(ShutdownFlush::none, report).ok());
  EXPECT_EQ(err_of(fs.pwrite(rw, page, 0)), EIO);
  EXPECT_EQ(err_of(fs.pread(rw, back, 0)), EIO);
}

}  // namespace
}  // namespace syncprobe::ref::testing
