// Issue 11, section 5: what fstests would say, beside the rules. A target
// that passes generic/441's own condition can fail R2; both must show.
#include <gtest/gtest.h>

#include "run_builder.h"

namespace syncprobe {
namespace {

using namespace testing_support;
using nlohmann::json;

FstestsCondition condition(std::vector<FstestsExpectation> expect) {
  FstestsCondition f;
  f.test = "generic/441";
  f.passes_when = "every fsync after the failure fails, the next returns 0";
  f.expect = std::move(expect);
  return f;
}

FstestsExpectation want(std::vector<std::string> probes, std::string expect, bool one_of = false) {
  FstestsExpectation e;
  e.probes = std::move(probes);
  e.expect = std::move(expect);
  e.one_of = one_of;
  return e;
}

// Linux's answer to generic/441: told once, then success (a lie about the disk).
std::vector<Scripted> linux_441() {
  const Check honest{"R2", "honest", "A", "disk"};
  return {write("old"), fault(), write("A"), fails(StepKind::fsync, "first"),
          checked(ok(StepKind::fsync, "again"), honest), reads(StepKind::read_back, "disk", "old")};
}

TEST(Fstests, PassingFstestsAndFailingARuleShowBoth) {
  RunBuilder b;
  b.add("host:ext4", "fstests-generic-441", linux_441());
  b.run().cases["fstests-generic-441"].fstests = condition({want({"first"}, "error"), want({"again"}, "ok")});
  const json s = b.classify();
  const json& t = s["targets"]["host:ext4"];
  EXPECT_EQ(t["rules"]["R2"], "fail");
  EXPECT_EQ(t["fstests"]["generic/441"]["verdict"], "pass");
  EXPECT_EQ(t["fstests"]["generic/441"]["case"], "fstests-generic-441");
  EXPECT_EQ(t["fstests"]["generic/441"]["evidence"].size(), 2u);
}

TEST(Fstests, AnExpectationNotMetFails) {
  RunBuilder b;
  b.add("t", "c", linux_441());
  b.run().cases["c"].fstests = condition({want({"first"}, "EIO"), want({"again"}, "error")});
  const json s = b.classify();
  EXPECT_EQ(s["targets"]["t"]["fstests"]["generic/441"]["verdict"], "fail");
}

TEST(Fstests, OneOfMeansExactlyOneAndTheOthersSucceed) {
  auto run = [](bool first_fails, bool again_fails) {
    RunBuilder b;
    b.add("t", "c", {write("old"), fault(), write("A"),
                     first_fails ? fails(StepKind::syncfs, "first") : ok(StepKind::syncfs, "first"),
                     again_fails ? fails(StepKind::syncfs, "again") : ok(StepKind::syncfs, "again")});
    b.run().cases["c"].fstests = condition({want({"first", "again"}, "EIO", true)});
    return b.classify()["targets"]["t"]["fstests"]["generic/441"]["verdict"].get<std::string>();
  };
  EXPECT_EQ(run(true, false), "pass");
  EXPECT_EQ(run(false, true), "pass");
  EXPECT_EQ(run(true, true), "fail");
  EXPECT_EQ(run(false, false), "fail");
}

TEST(Fstests, SkippedHungAndExcludedFilesystems) {
  RunBuilder b;
  b.add("skipped", "c", linux_441(), true, "", CaseStatus::skipped);
  std::vector<Scripted> hung = linux_441();
  hung[4] = hangs(StepKind::fsync, "again");
  b.add("hung", "c", hung);
  b.add("btrfs", "c", linux_441());
  b.run().results["btrfs"]["c"].environment["fs"] = "btrfs";
  FstestsCondition f = condition({want({"first"}, "error"), want({"again"}, "ok")});
  f.not_run_on = {"btrfs"};
  b.run().cases["c"].fstests = f;
  const json s = b.classify();
  EXPECT_EQ(s["targets"]["skipped"]["fstests"]["generic/441"]["verdict"], "not run");
  EXPECT_EQ(s["targets"]["hung"]["fstests"]["generic/441"]["verdict"], "fail");
  EXPECT_EQ(s["targets"]["btrfs"]["fstests"]["generic/441"]["verdict"], "not run");
  EXPECT_NE(s["targets"]["btrfs"]["fstests"]["generic/441"]["reason"].get<std::string>().find("btrfs"),
            std::string::npos);
}

}  // namespace
}  // namespace syncprobe
