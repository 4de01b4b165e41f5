// libfiu failure points fail the simulated device from outside the cache.
#include <gtest/gtest.h>

#include "test_rig.h"

#ifdef SYNCPROBE_HAVE_FIU
#define FIU_ENABLE 1
#include <fiu-control.h>
#include <fiu.h>
#endif

namespace syncprobe::ref::testing {
namespace {

TEST(Libfiu, DeviceWritePointFailsFsyncAndIsCounted) {
#ifndef SYNCPROBE_HAVE_FIU
  GTEST_SKIP() << "built without libfiu (SYNCPROBE_WITH_FIU=OFF or libfiu-dev missing)";
#else
  fiu_init(0);
  Rig rig("proposed");
  int a = rig.open();
  ASSERT_TRUE(rig.write(a, "A", 0, 4096).ok());
  ASSERT_EQ(fiu_enable("reference/device/write", 1, reinterpret_cast<void*>(intptr_t(ENOSPC)),
                       FIU_ONETIME),
            0);
  EXPECT_EQ(rig.fsync(a), ENOSPC);
  EXPECT_EQ(rig.fs.layer(), "libfiu");
  EXPECT_EQ(rig.fs.injected_hits(), 1u);
  EXPECT_EQ(rig.fsync(a), 0) << "one-time point: the retry goes through";
  ASSERT_TRUE(rig.proc().close(a).ok());
  EXPECT_EQ(rig.disk("f", 0, 4096), "A");
  fiu_disable("reference/device/write");
#endif
}

TEST(Libfiu, WritebackSubmitPoint) {
#ifndef SYNCPROBE_HAVE_FIU
  GTEST_SKIP() << "built without libfiu";
#else
  fiu_init(0);
  Rig rig("linux-4.17");
  int a = rig.open();
  ASSERT_TRUE(rig.write(a, "A", 0, 4096).ok());
  ASSERT_EQ(fiu_enable("reference/writeback/submit", 1, nullptr, 0), 0);
  EXPECT_EQ(rig.fsync(a), EIO) << "null failinfo means EIO";
  fiu_disable("reference/writeback/submit");
  EXPECT_EQ(rig.fsync(a), 0);
#endif
}

}  // namespace
}  // namespace syncprobe::ref::testing
