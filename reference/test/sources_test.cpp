// One test per modelled behaviour that docs/reference.md traces to a source
// file and function: if the model drifts from what it says it models, the
// test names the behaviour and its source.
#include <gtest/gtest.h>

#include <cerrno>

#include "test_rig.h"

namespace syncprobe::ref::testing {
namespace {

SyncFileRangeFlags sfr(bool wait_before, bool write, bool wait_after) {
  return {wait_before, write, wait_after};
}

// A failed background writeback of page 0 through `a`, nobody told yet.
void fail_page_in_background(Rig& rig, int a, uint64_t off = 0) {
  ASSERT_TRUE(rig.write(a, "A", off, 4096).ok());
  ASSERT_TRUE(rig.cache.writeback().ok());
}

// lib/errseq.c errseq_sample in 4.13-4.16 marked the error seen, so a
// second error moves the counter and reaches a descriptor opened between the
// two; 4.17's errseq_sample leaves an unseen error unseen.
TEST(Linux413, SampleAtOpenMarksTheErrorSeen) {
  errseq_t eseq = 0;
  errseq_set(eseq, EIO);
  EXPECT_EQ(errseq_sample_v413(eseq), eseq);
  EXPECT_TRUE(eseq & kErrseqSeen);
  errseq_t zero = 0;
  EXPECT_EQ(errseq_sample_v413(zero), 0u) << "no error: nothing to mark";

  for (const char* policy : {"linux-4.13", "linux-4.17"}) {
    SCOPED_TRACE(policy);
    Rig rig(policy);
    int a = rig.open();
    rig.fail_data("f", EIO);
    fail_page_in_background(rig, a, 0);
    int c = rig.open();
    fail_page_in_background(rig, a, 4096);  // a second error, same errno
    EXPECT_EQ(rig.fsync(c), EIO) << "4.13: the counter moved; 4.17: c sampled 0";
    EXPECT_EQ(rig.fsync(c), 0);
  }
}

// fs/sync.c sync_file_range: before 4.14 its waits went through
// filemap_fdatawait_range (the legacy AS_EIO flag); since, through
// file_fdatawait_range -> file_check_and_advance_wb_err, which consumes the
// descriptor's error like fsync does.
TEST(SyncFileRange, WaitConsumesTheErrseqSince414) {
  struct Want {
    const char* policy;
    int fsync_after;  // fsync on the same descriptor after sync_file_range reported
  };
  for (const Want& w : {Want{"linux-4.13", EIO}, Want{"linux-4.17", 0}, Want{"linux-5.8:ext4", 0}}) {
    SCOPED_TRACE(w.policy);
    Rig rig(w.policy);
    int a = rig.open();
    rig.fail_data("f", EIO);
    ASSERT_TRUE(rig.write(a, "A", 0, 4096).ok());
    EXPECT_EQ(rig.proc().sync_file_range(a, 0, 0, sfr(true, true, true)).err, EIO);
    EXPECT_EQ(rig.fsync(a), w.fsync_after);
  }
}

// SYNC_FILE_RANGE_WRITE alone starts writeback and waits for nothing: it
// reports nothing and consumes nothing, so the next fsync reports the error.
TEST(SyncFileRange, WriteOnlyConsumesNothing) {
  for (const char* policy : {"linux-4.12", "linux-4.13", "linux-4.17", "linux-5.8:ext4", "proposed"}) {
    SCOPED_TRACE(policy);
    Rig rig(policy);
    int a = rig.open();
    rig.fail_data("f", EIO);
    ASSERT_TRUE(rig.write(a, "A", 0, 4096).ok());
    SysResult r = rig.proc().sync_file_range(a, 0, 0, sfr(false, true, false));
    EXPECT_TRUE(r.ok());
    EXPECT_EQ(rig.fsync(a), EIO);
  }
}

// fs/sync.c syncfs since 5.8: errseq_check_and_advance(&sb->s_wb_err,
// &f_sb_err); mapping_set_error records every writeback error there too. So
// syncfs reports an error an fsync already consumed, once per descriptor.
TEST(Linux58, SyncfsReportsThroughTheSuperblockOncePerDescriptor) {
  Rig rig("linux-5.8:ext4");
  int a = rig.open(), b = rig.open();
  rig.fail_data("f", EIO);
  ASSERT_TRUE(rig.write(a, "A", 0, 4096).ok());
  EXPECT_EQ(rig.fsync(a), EIO);
  EXPECT_EQ(rig.proc().syncfs(a).err, EIO) << "the file's error was consumed, the superblock's not";
  EXPECT_TRUE(rig.proc().syncfs(a).ok()) << "once per descriptor";
  EXPECT_EQ(rig.proc().syncfs(b).err, EIO);
  EXPECT_EQ(rig.fsync(b), EIO) << "syncfs did not consume b's file error";

  Rig old("linux-4.17");
  int c = old.open();
  old.fail_data("f", EIO);
  ASSERT_TRUE(old.write(c, "A", 0, 4096).ok());
  EXPECT_TRUE(old.proc().syncfs(c).ok()) << "before 5.8 syncfs returned 0";
}

// block/blk-core.c errno_to_blk_status / blk_status_to_errno: ENOSPC has a
// status and survives; ENXIO has none and arrives as EIO.
TEST(Linux58, TheBlockLayerDeliversEioUnlessItHasAStatus) {
  for (int device_err : {ENXIO, ENOSPC, EIO}) {
    SCOPED_TRACE(device_err);
    Rig rig("linux-5.8:xfs");
    int a = rig.open();
    rig.fail_data("f", device_err);
    ASSERT_TRUE(rig.write(a, "A", 0, 4096).ok());
    EXPECT_EQ(rig.fsync(a), device_err == ENOSPC ? ENOSPC : EIO);
  }
}

// A failed journal commit: ext4 aborts the journal and goes read-only
// (changes fail with EROFS, fsync writes nothing and reports only the
// descriptor's errseq: ext4_sync_file); xfs shuts down (every call EIO). A
// remount, once the device works, brings both back.
TEST(Linux58, MetadataFailureMakesExt4ReadOnlyAndShutsXfsDown) {
  for (const char* policy : {"linux-5.8:ext4", "linux-5.8:xfs"}) {
    SCOPED_TRACE(policy);
    const bool xfs = std::string(policy) == "linux-5.8:xfs";
    Rig rig(policy);
    int a = rig.open();
    ASSERT_TRUE(rig.write(a, "old", 0, 4096).ok());
    ASSERT_EQ(rig.fsync(a), 0);
    FaultRequest req;
    req.where = FaultRequest::Where::journal;
    req.rule.err = EIO;
    nlohmann::json detail;
    ASSERT_TRUE(rig.cache.fault(req, detail).ok());
    ASSERT_TRUE(rig.write(a, "A", 0, 4096).ok());
    EXPECT_EQ(rig.fsync(a), EIO) << "the commit failed";
    rig.heal();
    EXPECT_EQ(rig.proc().open("g", {}).err, xfs ? EIO : EROFS);
    EXPECT_EQ(rig.write(a, "B", 0, 4096).err, xfs ? EIO : EROFS);
    EXPECT_EQ(rig.read(a, 0, 4096), xfs ? "-1 " + std::to_string(EIO) : "A");
    EXPECT_EQ(rig.fsync(a), xfs ? EIO : 0);
    ASSERT_TRUE(rig.proc().close(a).ok());
    ASSERT_TRUE(rig.cache.remount().ok());
    int g = rig.open("g");
    EXPECT_TRUE(rig.write(g, "G", 0, 4096).ok());
    EXPECT_EQ(rig.fsync(g), 0) << "a new mount works again";
  }
  Rig old("linux-4.17");  // the older policies model no filesystem reaction
  FaultRequest req;
  req.where = FaultRequest::Where::journal;
  req.rule.err = EIO;
  nlohmann::json detail;
  int a = old.open();
  ASSERT_TRUE(old.write(a, "A", 0, 4096).ok());
  ASSERT_TRUE(old.cache.fault(req, detail).ok());
  EXPECT_EQ(old.fsync(a), EIO);
  old.heal();
  EXPECT_TRUE(old.proc().open("g", {}).ok());
}

// sys/kern/vfs_bio.c brelse sets VBIOERROR only for VREG vnodes, and
// sys/kern/vfs_vops.c VOP_FSYNC turns a later successful fsync into EIO.
TEST(OpenBsd, StickyEioForRegularFilesOnly) {
  Rig rig("openbsd");
  int a = rig.open();
  rig.fail_data("f", ENOSPC);
  ASSERT_TRUE(rig.write(a, "A", 0, 4096).ok());
  EXPECT_EQ(rig.fsync(a), ENOSPC) << "the failing writeback's own errno";
  rig.heal();
  EXPECT_EQ(rig.fsync(a), EIO) << "VBIOERROR: EIO, not ENOSPC";

  Rig raw("openbsd");
  int d = raw.open("@device");
  FaultRequest req;  // the raw device: a VBLK vnode, never marked
  req.rule.err = EIO;
  nlohmann::json detail;
  ASSERT_TRUE(raw.cache.fault(req, detail).ok());
  ASSERT_TRUE(raw.write(d, "A", 1 << 20, 4096).ok());
  EXPECT_EQ(raw.fsync(d), EIO);
  raw.heal();
  EXPECT_EQ(raw.fsync(d), 0);
}

// usr/src/uts/common/vm/vm_pvn.c pvn_write_done re-sets the mod bit after any
// write error: ENXIO is retried like EIO, and nothing is lost.
TEST(Illumos, RedirtiesEvenOnEnxio) {
  Rig rig("illumos");
  int a = rig.open();
  ASSERT_TRUE(rig.write(a, "old", 0, 4096).ok());
  ASSERT_EQ(rig.fsync(a), 0);
  rig.fail_data("f", ENXIO);
  ASSERT_TRUE(rig.write(a, "A", 0, 4096).ok());
  EXPECT_EQ(rig.fsync(a), ENXIO);
  ASSERT_TRUE(rig.cache.drop_caches().ok());
  EXPECT_EQ(rig.read(a, 0, 4096), "A") << "still dirty, not evicted";
  rig.heal();
  EXPECT_EQ(rig.fsync(a), 0);
  ASSERT_TRUE(rig.proc().close(a).ok());
  EXPECT_EQ(rig.disk("f", 0, 4096), "A");
}

TEST(Capabilities, PlatformsLackWhatTheyDoNotHave) {
  auto lacked = [](const char* policy) {
    std::set<std::string> out;
    for (const auto& l : make_policy(policy)->lacks()) {
      EXPECT_FALSE(l.reason.empty()) << policy << " " << l.capability;
      out.insert(l.capability);
    }
    return out;
  };
  using S = std::set<std::string>;
  EXPECT_EQ(lacked("openbsd"), (S{"syncfs", "sync_file_range", "direct-io", "shutdown"}));
  EXPECT_EQ(lacked("freebsd"), (S{"syncfs", "sync_file_range", "shutdown"}));
  EXPECT_EQ(lacked("illumos"), (S{"syncfs", "sync_file_range", "direct-io", "shutdown"}));
  for (const char* p : {"linux-4.12", "linux-4.13", "linux-4.17", "linux-5.8:ext4", "proposed"})
    EXPECT_TRUE(lacked(p).empty()) << p;
}

// The shutdown ioctls: GOING_FLAGS_DEFAULT syncs first; LOGFLUSH commits
// the journal, which holds no size for an append whose data is not written;
// NOLOGFLUSH writes nothing. Then every call fails; on xfs a resident page is
// still readable through a mapping and a page not in the cache raises SIGBUS
// (ext4 refuses the mmap); after a remount the disk holds what was written
// before the shutdown. probes/shutdown.sh measured the same on 6.18.
TEST(Shutdown, FlushModesDecideWhatTheDiskHolds) {
  struct Want {
    ShutdownFlush flush;
    const char* tail;     // the appended block on disk after remount ("": past EOF)
    int64_t size;         // the file's size after remount
  };
  for (const Want& w : {Want{ShutdownFlush::sync, "A", 8192}, Want{ShutdownFlush::log, "", 4096},
                        Want{ShutdownFlush::none, "", 4096}}) {
    SCOPED_TRACE(int(w.flush));
    Rig rig("linux-5.8:xfs");
    int a = rig.open();
    ASSERT_TRUE(rig.write(a, "old", 0, 4096).ok());
    ASSERT_EQ(rig.fsync(a), 0);
    ASSERT_TRUE(rig.cache.drop_caches().ok());
    ASSERT_TRUE(rig.write(a, "A", 4096, 4096).ok());
    nlohmann::json detail;
    ASSERT_TRUE(rig.cache.shutdown(w.flush, detail).ok());
    EXPECT_EQ(rig.fsync(a), EIO);
    EXPECT_EQ(rig.read(a, 4096, 4096), "-1 " + std::to_string(EIO));
    std::vector<std::byte> buf(8192);
    MappedRead m = rig.proc().mmap_read(a, buf, 0);
    EXPECT_EQ(m.resident, (std::vector<bool>{false, true}));
    EXPECT_EQ(m.signal, "SIGBUS") << "page 0 was evicted and cannot be read in";
    m = rig.proc().mmap_read(a, std::span(buf).subspan(4096), 4096);
    EXPECT_TRUE(m.signal.empty());
    EXPECT_EQ(classify_tagged(std::span(buf).subspan(4096), 4096).tag, "A") << "served from the cache";
    ASSERT_TRUE(rig.proc().close(a).ok());
    EXPECT_EQ(rig.proc().stat("f").ret, 8192) << "the cached size";
    ASSERT_TRUE(rig.cache.remount().ok());
    EXPECT_EQ(rig.proc().stat("f").ret, w.size);
    if (*w.tail) {
      EXPECT_EQ(rig.disk("f", 4096, 4096), w.tail);
    }
    EXPECT_EQ(rig.disk("f", 0, 4096), "old");
  }
  Rig ext4("linux-5.8:ext4");
  int a = ext4.open();
  nlohmann::json detail;
  ASSERT_TRUE(ext4.cache.shutdown(ShutdownFlush::none, detail).ok());
  std::vector<std::byte> buf(4096);
  EXPECT_EQ(ext4.proc().mmap_read(a, buf, 0).result.err, EIO) << "ext4_file_mmap";
}

// A log flush still commits names: a file created before the shutdown exists
// after the remount, with the size its written data has.
TEST(Shutdown, LogFlushCommitsNamesNotUnwrittenSizes) {
  Rig rig("linux-5.8:xfs");
  int g = rig.open("g");
  ASSERT_TRUE(rig.write(g, "G", 0, 4096).ok());
  nlohmann::json detail;
  ASSERT_TRUE(rig.cache.shutdown(ShutdownFlush::log, detail).ok());
  ASSERT_TRUE(rig.proc().close(g).ok());
  ASSERT_TRUE(rig.cache.remount().ok());
  EXPECT_EQ(rig.proc().stat("g").ret, 0) << "named, but its data never written";
}

// range = "free": space no file holds yet fails (an append), space a file
// holds does not (an overwrite in place); range = "journal": only commits.
TEST(Faults, FreeSpaceAndJournalRanges) {
  Rig rig("proposed");
  int a = rig.open();
  ASSERT_TRUE(rig.write(a, "old", 0, 8192).ok());
  ASSERT_EQ(rig.fsync(a), 0);
  FaultRequest req;
  req.where = FaultRequest::Where::free;
  req.rule.err = EIO;
  nlohmann::json detail;
  ASSERT_TRUE(rig.cache.fault(req, detail).ok());
  ASSERT_TRUE(rig.write(a, "A", 0, 4096).ok());
  EXPECT_EQ(rig.fsync(a), 0) << "an overwrite uses allocated space";
  ASSERT_TRUE(rig.write(a, "B", 8192, 4096).ok());
  EXPECT_EQ(rig.fsync(a), EIO) << "an append needs new space";
  rig.heal();
  EXPECT_EQ(rig.fsync(a), 0);

  req.where = FaultRequest::Where::journal;
  ASSERT_TRUE(rig.cache.fault(req, detail).ok());
  ASSERT_TRUE(rig.write(a, "C", 0, 4096).ok());
  EXPECT_EQ(rig.fsync(a), EIO) << "the write changed the inode: a commit is needed";
  EXPECT_GT(rig.cache.device().hits(), 0u);
}

}  // namespace
}  // namespace syncprobe::ref::testing
