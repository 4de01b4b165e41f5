// The errseq rules, first on the bare functions, then through descriptors of
// the cache under the three Linux policies.
#include <gtest/gtest.h>

#include "syncprobe/ref/errseq.h"
#include "test_rig.h"

namespace syncprobe::ref::testing {
namespace {

TEST(Errseq, ReportsOncePerCursor) {
  errseq_t wb = 0;
  errseq_t a = errseq_sample(wb), b = errseq_sample(wb);
  errseq_set(wb, EIO);
  EXPECT_EQ(errseq_check(wb, a), EIO) << "check does not consume";
  EXPECT_EQ(errseq_check_and_advance(wb, a), EIO);
  EXPECT_EQ(errseq_check_and_advance(wb, a), 0) << "told once";
  EXPECT_EQ(errseq_check_and_advance(wb, b), EIO) << "b has its own cursor";
}

TEST(Errseq, SampleUnseenVersusCurrent) {
  errseq_t wb = 0;
  errseq_set(wb, EIO);
  errseq_t late_417 = errseq_sample(wb);
  errseq_t late_413 = errseq_sample_current(wb);
  EXPECT_EQ(errseq_check(wb, late_417), EIO) << "4.17: an unseen error reaches the next opener";
  EXPECT_EQ(errseq_check(wb, late_413), 0) << "4.13: sampled as already there";
  errseq_t first = 0;
  EXPECT_EQ(errseq_check_and_advance(wb, first), EIO);
  EXPECT_EQ(errseq_check(wb, errseq_sample(wb)), 0) << "once seen, new openers start clean";
}

TEST(Errseq, NewErrorAfterSeenIsCountedAgain) {
  errseq_t wb = 0, a = 0;
  errseq_set(wb, EIO);
  EXPECT_EQ(errseq_check_and_advance(wb, a), EIO);
  errseq_set(wb, EIO);
  EXPECT_EQ(errseq_check_and_advance(wb, a), EIO) << "the counter moved";
  errseq_set(wb, ENOSPC);
  errseq_set(wb, EIO);  // unseen: overwrites the errno, no new count
  EXPECT_EQ(errseq_check_and_advance(wb, a), EIO);
  EXPECT_EQ(errseq_check_and_advance(wb, a), 0);
}

// The same rules, observed through fsync.
struct Lifecycle {
  const char* policy;
  int before_both;           // a and b open before the error: b after a saw it
  int opened_after_unseen;   // c opened after background writeback failed, nobody told
  int reopen_after_seen;     // d opened after a reported it
  int after_sync;            // fsync after sync(2) met the error
};

class LifecycleTest : public ::testing::TestWithParam<Lifecycle> {};

TEST_P(LifecycleTest, OpenBeforeAfterCloseReopenSync) {
  const Lifecycle& e = GetParam();
  {  // two descriptors open before the error
    Rig rig(e.policy);
    int a = rig.open(), b = rig.open();
    rig.fail_data("f", EIO);
    ASSERT_TRUE(rig.write(a, "A", 0, 4096).ok());
    EXPECT_EQ(rig.fsync(a), EIO);
    EXPECT_EQ(rig.fsync(b), e.before_both);
  }
  {  // a descriptor opened after an error nobody has seen
    Rig rig(e.policy);
    int a = rig.open();
    rig.fail_data("f", EIO);
    ASSERT_TRUE(rig.write(a, "A", 0, 4096).ok());
    ASSERT_TRUE(rig.cache.writeback().ok());
    int c = rig.open();
    EXPECT_EQ(rig.fsync(c), e.opened_after_unseen);
  }
  {  // close and reopen after the error was reported
    Rig rig(e.policy);
    int a = rig.open();
    rig.fail_data("f", EIO);
    ASSERT_TRUE(rig.write(a, "A", 0, 4096).ok());
    EXPECT_EQ(rig.fsync(a), EIO);
    ASSERT_TRUE(rig.proc().close(a).ok());
    int d = rig.open();
    EXPECT_EQ(rig.fsync(d), e.reopen_after_seen);
  }
  {  // sync(2) does not consume the error
    Rig rig(e.policy);
    int a = rig.open();
    rig.fail_data("f", EIO);
    ASSERT_TRUE(rig.write(a, "A", 0, 4096).ok());
    ASSERT_TRUE(rig.proc().sync().ok()) << "sync returns nothing";
    EXPECT_TRUE(rig.proc().stat("f").ok());
    EXPECT_EQ(rig.fsync(a), e.after_sync);
  }
}

INSTANTIATE_TEST_SUITE_P(Policies, LifecycleTest,
                         ::testing::Values(Lifecycle{"linux-4.12", 0, EIO, 0, EIO},
                                           Lifecycle{"linux-4.13", EIO, 0, 0, EIO},
                                           Lifecycle{"linux-4.17", EIO, EIO, 0, EIO},
                                           Lifecycle{"linux-5.8:ext4", EIO, EIO, 0, EIO},
                                           Lifecycle{"proposed", EIO, 0, 0, EIO}),
                         [](const auto& info) {
                           std::string n = info.param.policy;
                           std::replace(n.begin(), n.end(), '-', '_');
                           std::replace(n.begin(), n.end(), ':', '_');
                           std::replace(n.begin(), n.end(), '.', '_');
                           std::replace(n.begin(), n.end(), ':', '_');
                           return n;
                         });

// Linux 4.17: the error lives in the inode; evicting it forgets the error.
TEST(Errseq, Linux417LosesErrorWithEvictedInode) {
  for (bool evict : {false, true}) {
    Rig rig("linux-4.17");
    int a = rig.open();
    rig.fail_data("f", EIO);
    ASSERT_TRUE(rig.write(a, "A", 0, 4096).ok());
    ASSERT_TRUE(rig.cache.writeback().ok());
    ASSERT_TRUE(rig.proc().close(a).ok());
    if (evict) {
      ASSERT_TRUE(rig.cache.drop_caches().ok());
    }
    int b = rig.open();
    EXPECT_EQ(rig.fsync(b), evict ? 0 : EIO) << (evict ? "evicted" : "still cached");
  }
}

}  // namespace
}  // namespace syncprobe::ref::testing
