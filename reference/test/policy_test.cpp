// The seed thread's three scenarios on each policy, step by step: the return
// value and errno of each fsync, which version a read returns before and
// after drop_caches, and what the device holds afterwards.
#include <gtest/gtest.h>

#include "test_rig.h"

namespace syncprobe::ref::testing {
namespace {

// ---- Scenario 1: one writer, the device keeps failing, then is repaired ----

struct SingleWriter {
  const char* policy;
  int first_fsync;            // errno of the fsync that meets the failure
  const char* read_cached;    // read right after it
  const char* read_after_drop;
  int fsync_while_failing;    // fsync again, device still failing
  int fsync_after_heal;
  const char* disk;           // stable storage after close and remount
};

class SingleWriterTest : public ::testing::TestWithParam<SingleWriter> {};

TEST_P(SingleWriterTest, StepByStep) {
  const SingleWriter& e = GetParam();
  Rig rig(e.policy);
  int a = rig.open();
  ASSERT_TRUE(rig.write(a, "old", 0, 8192).ok());
  ASSERT_EQ(rig.fsync(a), 0);
  rig.fail_data("f", EIO);
  ASSERT_TRUE(rig.write(a, "A", 0, 4096).ok()) << "the write only reaches the cache";
  EXPECT_EQ(rig.fsync(a), e.first_fsync);
  EXPECT_EQ(rig.read(a, 0, 4096), e.read_cached);
  ASSERT_TRUE(rig.cache.drop_caches().ok());
  EXPECT_EQ(rig.read(a, 0, 4096), e.read_after_drop);
  EXPECT_EQ(rig.fsync(a), e.fsync_while_failing);
  rig.heal();
  EXPECT_EQ(rig.fsync(a), e.fsync_after_heal);
  ASSERT_TRUE(rig.proc().close(a).ok());
  EXPECT_EQ(rig.disk("f", 0, 4096), e.disk);
  EXPECT_EQ(rig.disk("f", 4096, 4096), "old") << "the page nobody rewrote";
}

INSTANTIATE_TEST_SUITE_P(
    Policies, SingleWriterTest,
    ::testing::Values(
        // Linux marks the page clean: the data survives only in the cache,
        // and once the error has been reported, fsync succeeds.
        SingleWriter{"linux-4.12", EIO, "A", "old", 0, 0, "old"},
        SingleWriter{"linux-4.13", EIO, "A", "old", 0, 0, "old"},
        SingleWriter{"linux-4.17", EIO, "A", "old", 0, 0, "old"},
        SingleWriter{"linux-5.8:ext4", EIO, "A", "old", 0, 0, "old"},
        SingleWriter{"linux-5.8:xfs", EIO, "A", "old", 0, 0, "old"},
        // OpenBSD discards the buffer and keeps failing until the vnode goes.
        SingleWriter{"openbsd", EIO, "old", "old", EIO, EIO, "old"},
        // FreeBSD and the proposal retry: the data is never lost.
        SingleWriter{"freebsd", EIO, "A", "A", EIO, 0, "A"},
        SingleWriter{"illumos", EIO, "A", "A", EIO, 0, "A"},
        SingleWriter{"proposed", EIO, "A", "A", EIO, 0, "A"}),
    [](const auto& info) {
      std::string n = info.param.policy;
      std::replace(n.begin(), n.end(), '-', '_');
      std::replace(n.begin(), n.end(), ':', '_');
      std::replace(n.begin(), n.end(), '.', '_');
      std::replace(n.begin(), n.end(), ':', '_');
      return n;
    });

// ---- Scenario 2: process B reads A's unpersisted data and fsyncs ----

struct TwoProcess {
  const char* policy;
  int a_fsync;
  const char* b_reads;
  int b_fsync;
  const char* disk;  // page 0 after the fact
};

class TwoProcessTest : public ::testing::TestWithParam<TwoProcess> {};

TEST_P(TwoProcessTest, StepByStep) {
  const TwoProcess& e = GetParam();
  Rig rig(e.policy);
  int a = rig.open();
  ASSERT_TRUE(rig.write(a, "old", 0, 8192).ok());
  ASSERT_EQ(rig.fsync(a), 0);
  rig.fail_data("f", EIO, 1);  // one write fails, then the device works
  ASSERT_TRUE(rig.write(a, "A", 0, 4096).ok());
  EXPECT_EQ(rig.fsync(a), e.a_fsync);
  int b = rig.open("f", "b");
  EXPECT_EQ(rig.read(b, 0, 4096, "b"), e.b_reads);
  ASSERT_TRUE(rig.write(b, "B", 4096, 4096, "b").ok());
  EXPECT_EQ(rig.fsync(b, "b"), e.b_fsync);
  ASSERT_TRUE(rig.proc("b").close(b).ok());
  ASSERT_TRUE(rig.proc().close(a).ok());
  const std::string disk = rig.disk("f", 0, 4096);
  EXPECT_EQ(disk, e.disk);
  EXPECT_EQ(rig.disk("f", 4096, 4096), "B");
  // R2 in one line: B's fsync may succeed only if what B read is on disk.
  if (e.b_fsync == 0 && std::string(e.policy) == "proposed") {
    EXPECT_EQ(disk, e.b_reads);
  }
}

INSTANTIATE_TEST_SUITE_P(
    Policies, TwoProcessTest,
    ::testing::Values(
        // Linux: B builds on A's data, B's fsync succeeds, the disk holds old.
        TwoProcess{"linux-4.12", EIO, "A", 0, "old"},
        TwoProcess{"linux-4.13", EIO, "A", 0, "old"},
        TwoProcess{"linux-4.17", EIO, "A", 0, "old"},
        TwoProcess{"linux-5.8:ext4", EIO, "A", 0, "old"},
        TwoProcess{"openbsd", EIO, "old", EIO, "old"},
        TwoProcess{"freebsd", EIO, "A", 0, "A"},
        TwoProcess{"illumos", EIO, "A", 0, "A"},
        TwoProcess{"proposed", EIO, "A", 0, "A"}),
    [](const auto& info) {
      std::string n = info.param.policy;
      std::replace(n.begin(), n.end(), '-', '_');
      std::replace(n.begin(), n.end(), ':', '_');
      std::replace(n.begin(), n.end(), '.', '_');
      std::replace(n.begin(), n.end(), ':', '_');
      return n;
    });

// ---- Scenario 3: thin pool exhausted, then grown ----

struct ThinPool {
  const char* policy;
  int first_fsync;
  int retry_after_grow;
  const char* disk;
};

class ThinPoolTest : public ::testing::TestWithParam<ThinPool> {};

TEST_P(ThinPoolTest, StepByStep) {
  const ThinPool& e = GetParam();
  Rig rig(e.policy);
  int a = rig.open();
  ASSERT_TRUE(rig.write(a, "old", 0, 8192).ok());
  ASSERT_EQ(rig.fsync(a), 0);
  nlohmann::json detail;
  ASSERT_TRUE(rig.cache.thin_limit(0, FaultMode::error, detail).ok());
  ASSERT_TRUE(rig.write(a, "A", 1 << 20, 65536).ok());
  EXPECT_EQ(rig.fsync(a), e.first_fsync);
  ASSERT_TRUE(rig.cache.grow(64 << 20, detail).ok());
  EXPECT_EQ(rig.fsync(a), e.retry_after_grow);
  ASSERT_TRUE(rig.proc().close(a).ok());
  EXPECT_EQ(rig.disk("f", 1 << 20, 65536), e.disk);
}

INSTANTIATE_TEST_SUITE_P(
    Policies, ThinPoolTest,
    ::testing::Values(ThinPool{"linux-4.12", ENOSPC, 0, "zero"},
                      ThinPool{"linux-4.13", ENOSPC, 0, "zero"},
                      ThinPool{"linux-4.17", ENOSPC, 0, "zero"},
                      // blk_status_t carries ENOSPC through (BLK_STS_NOSPC)
                      ThinPool{"linux-5.8:ext4", ENOSPC, 0, "zero"},
                      // the writeback's own errno first, then VOP_FSYNC's EIO
                      ThinPool{"openbsd", ENOSPC, EIO, "zero"},
                      ThinPool{"freebsd", ENOSPC, 0, "A"},
                      ThinPool{"illumos", ENOSPC, 0, "A"},
                      ThinPool{"proposed", ENOSPC, 0, "A"}),
    [](const auto& info) {
      std::string n = info.param.policy;
      std::replace(n.begin(), n.end(), '-', '_');
      std::replace(n.begin(), n.end(), ':', '_');
      std::replace(n.begin(), n.end(), '.', '_');
      std::replace(n.begin(), n.end(), ':', '_');
      return n;
    });

// R6 at scale: many files, the pool runs dry mid-way, is grown, and every
// byte written is recovered by the retried fsyncs under `proposed`, while
// linux-4.17 loses what failed.
TEST(ThinPool, ProposedRecoversEverythingLinux417DoesNot) {
  for (const char* policy : {"proposed", "linux-4.17"}) {
    SCOPED_TRACE(policy);
    Rig rig(policy);
    nlohmann::json detail;
    ASSERT_TRUE(rig.cache.thin_limit(40 * 4096, FaultMode::error, detail).ok());
    std::vector<int> fds;
    for (int i = 0; i < 3; ++i) {
      fds.push_back(rig.open("file" + std::to_string(i)));
      ASSERT_TRUE(rig.write(fds.back(), "T" + std::to_string(i), 0, 25 * 4096).ok());
    }
    int failures = 0;
    for (int fd : fds) failures += rig.fsync(fd) != 0;
    EXPECT_GT(failures, 0) << "75 pages do not fit in 40 blocks";
    ASSERT_TRUE(rig.cache.grow(1 << 20, detail).ok());
    for (int fd : fds) EXPECT_EQ(rig.fsync(fd), 0);
    for (int fd : fds) ASSERT_TRUE(rig.proc().close(fd).ok());
    int recovered = 0;
    for (int i = 0; i < 3; ++i)
      recovered += rig.disk("file" + std::to_string(i), 0, 25 * 4096) == "T" + std::to_string(i);
    if (std::string(policy) == "proposed") {
      EXPECT_EQ(recovered, 3);
    } else {
      EXPECT_LT(recovered, 3);
    }
  }
}

// R7 and R3 together: past the memory limit the oldest error pages go, and
// the descriptor that wrote them never succeeds again; one that touched
// nothing is not poisoned (R4).
TEST(ErrorMemoryLimit, DiscardsOldestAndPoisonsTheWriterOnly) {
  Rig rig("proposed");
  ASSERT_TRUE(rig.cache.memory_limit(8192).ok());
  int a = rig.open();
  ASSERT_TRUE(rig.write(a, "old", 0, 65536).ok());
  ASSERT_EQ(rig.fsync(a), 0);
  rig.fail_data("f", EIO);
  ASSERT_TRUE(rig.write(a, "A", 0, 65536).ok());
  EXPECT_EQ(rig.fsync(a), EIO);
  const CacheStats st = rig.cache.stats();
  EXPECT_EQ(st.error_bytes_held, 8192u);
  EXPECT_EQ(st.discarded_error_pages, 14u);
  int c = rig.open();
  ASSERT_TRUE(rig.cache.drop_caches().ok());
  EXPECT_EQ(rig.read(a, 0, 57344), "old") << "the discarded pages read back from disk";
  EXPECT_EQ(rig.read(a, 57344, 8192), "A") << "the newest error pages are still held";
  rig.heal();
  EXPECT_EQ(rig.fsync(a), EIO) << "R3: a's data was discarded";
  EXPECT_EQ(rig.fsync(a), EIO) << "R3: never succeeds again";
  EXPECT_EQ(rig.fsync(c), 0) << "R4: c touched nothing";
}

TEST(ErrorMemoryLimit, OnlyTheProposedPolicyBoundsErrorPages) {
  Rig rig("freebsd");
  ASSERT_TRUE(rig.cache.memory_limit(8192).ok());
  int a = rig.open();
  rig.fail_data("f", EIO);
  ASSERT_TRUE(rig.write(a, "A", 0, 65536).ok());
  EXPECT_EQ(rig.fsync(a), EIO);
  EXPECT_EQ(rig.cache.stats().error_bytes_held, 65536u);
  EXPECT_EQ(rig.cache.stats().discarded_error_pages, 0u);
}

// Memory pressure evicts clean pages and writes back dirty ones; a page
// kept dirty after a failed write stays (R1 "while memory allows").
TEST(CacheLimit, PressureEvictsCleanPagesKeepsFailedDirtyOnes) {
  for (const char* policy : {"proposed", "linux-4.17"}) {
    SCOPED_TRACE(policy);
    Rig rig(policy);
    int a = rig.open();
    ASSERT_TRUE(rig.write(a, "old", 0, 8192).ok());
    ASSERT_EQ(rig.fsync(a), 0);
    rig.fail_data("f", EIO);
    ASSERT_TRUE(rig.write(a, "A", 0, 4096).ok());
    EXPECT_EQ(rig.fsync(a), EIO);
    ASSERT_TRUE(rig.cache.cache_limit(16384).ok());
    int g = rig.open("g");
    ASSERT_TRUE(rig.write(g, "G", 0, 65536).ok());
    EXPECT_LE(rig.cache.stats().cached_pages, 4u + 1u) << "at most the limit, plus a page kept dirty";
    const std::string want = std::string(policy) == "proposed" ? "A" : "old";
    EXPECT_EQ(rig.read(a, 0, 4096), want);
    EXPECT_EQ(rig.read(g, 0, 65536), "G") << "what pressure wrote back reads back from the device";
  }
}

// FreeBSD treats ENXIO (device gone) as permanent: the buffer is dropped
// (brelse) and UFS force-unmounts (ffs_fsfail_cleanup); ffs_fsync keeps
// returning ENXIO, the dead vnode fails I/O, and after a new mount the disk
// holds the old data. sources_test.cpp has the other platforms' answers.
TEST(FreeBsd, EnxioDiscardsAndForceUnmounts) {
  Rig rig("freebsd");
  int a = rig.open();
  ASSERT_TRUE(rig.write(a, "old", 0, 4096).ok());
  ASSERT_EQ(rig.fsync(a), 0);
  rig.fail_data("f", ENXIO);
  ASSERT_TRUE(rig.write(a, "A", 0, 4096).ok());
  EXPECT_EQ(rig.fsync(a), ENXIO);
  rig.heal();
  EXPECT_EQ(rig.fsync(a), ENXIO) << "the forced unmount is under way";
  EXPECT_EQ(rig.read(a, 0, 4096), "-1 " + std::to_string(EIO));
  EXPECT_EQ(rig.write(a, "B", 0, 4096).err, EIO);
  ASSERT_TRUE(rig.proc().close(a).ok());
  EXPECT_EQ(rig.disk("f", 0, 4096), "old");
}

// Power cut: what was not flushed is gone, what fsync covered stays.
TEST(PowerCut, LosesUnflushedKeepsFsynced) {
  for (const auto& policy : policy_names()) {
    SCOPED_TRACE(policy);
    Rig rig(policy);
    int a = rig.open();
    ASSERT_TRUE(rig.write(a, "A", 0, 8192).ok());
    ASSERT_EQ(rig.fsync(a), 0);
    ASSERT_TRUE(rig.write(a, "B", 0, 4096).ok());
    ASSERT_TRUE(rig.cache.power_cut().ok());
    EXPECT_EQ(rig.disk("f", 0, 8192), "A");
  }
}

TEST(PowerCut, NewFileWithoutDirectoryCommitIsGone) {
  Rig rig("proposed");
  SysResult g = rig.proc().open("g", {});
  ASSERT_TRUE(g.ok());
  ASSERT_TRUE(rig.write(int(g.ret), "G", 0, 4096).ok());
  ASSERT_TRUE(rig.cache.power_cut().ok());
  EXPECT_EQ(rig.disk("g", 0, 4096), "-1 " + std::to_string(ENOENT));
}

// Metadata: a failed journal commit fails fsync; the directory entry reaches
// the disk only once a commit succeeds.
TEST(Metadata, DirectoryFsyncCommitsCreate) {
  Rig rig("proposed");
  OpenFlags dir;
  dir.directory = true;
  int d = rig.open(".", "a", dir);
  FaultRequest req;
  req.where = FaultRequest::Where::metadata;
  req.file = "f";  // does not exist: the whole device fails
  req.rule.err = EIO;
  nlohmann::json detail;
  ASSERT_TRUE(rig.cache.fault(req, detail).ok());
  int g = rig.open("g");
  ASSERT_TRUE(rig.write(g, "G", 0, 4096).ok());
  EXPECT_EQ(rig.fsync(g), EIO);
  EXPECT_EQ(rig.fsync(d), EIO);
  rig.heal();
  EXPECT_EQ(rig.fsync(g), 0);
  EXPECT_EQ(rig.fsync(d), 0);
  ASSERT_TRUE(rig.cache.power_cut().ok());
  EXPECT_EQ(rig.disk("g", 0, 4096), "G");
}

TEST(Device, VolatileCacheFlushAndThin) {
  SimDevice dev;
  std::vector<std::byte> a(kBlockSize, std::byte{1}), out(kBlockSize);
  ASSERT_TRUE(dev.write(7, a).ok());
  ASSERT_TRUE(dev.read(7, out).ok());
  EXPECT_EQ(out, a);
  dev.power_cut();
  ASSERT_TRUE(dev.read(7, out).ok());
  EXPECT_EQ(out, std::vector<std::byte>(kBlockSize)) << "unflushed write lost";
  ASSERT_TRUE(dev.write(7, a).ok());
  ASSERT_TRUE(dev.flush().ok());
  dev.power_cut();
  ASSERT_TRUE(dev.read(7, out).ok());
  EXPECT_EQ(out, a);

  dev.set_thin(0, FaultMode::error);
  EXPECT_TRUE(dev.write(7, a).ok()) << "already allocated";
  EXPECT_EQ(dev.write(8, a).err, ENOSPC);
  dev.set_thin(0, FaultMode::hang);
  EXPECT_TRUE(dev.write(8, a).hung) << "queue mode";
  dev.grow(kBlockSize);
  EXPECT_TRUE(dev.write(8, a).ok());
  EXPECT_EQ(dev.hits(), 2u);
}

TEST(Device, FaultCountsRangesAndDrop) {
  SimDevice dev;
  std::vector<std::byte> a(kBlockSize, std::byte{1}), out(kBlockSize);
  FaultRule r;
  r.ranges = {{2 * kBlockSize, kBlockSize}};
  r.err = ENOSPC;
  r.count = 2;
  dev.add_fault(r);
  EXPECT_TRUE(dev.write(1, a).ok());
  EXPECT_EQ(dev.write(2, a).err, ENOSPC);
  EXPECT_EQ(dev.write(2, a).err, ENOSPC);
  EXPECT_TRUE(dev.write(2, a).ok()) << "count exhausted";
  FaultRule drop;
  drop.mode = FaultMode::drop;
  dev.add_fault(drop);
  std::vector<std::byte> b(kBlockSize, std::byte{2});
  EXPECT_TRUE(dev.write(2, b).ok());
  ASSERT_TRUE(dev.read(2, out).ok());
  EXPECT_EQ(out, a) << "dropped write acknowledged but not stored";
  dev.heal();
  EXPECT_TRUE(dev.write(2, b).ok());
  ASSERT_TRUE(dev.read(2, out).ok());
  EXPECT_EQ(out, b);
}

}  // namespace
}  // namespace syncprobe::ref::testing
