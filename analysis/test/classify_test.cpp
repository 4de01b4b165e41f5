// The classifier's decision tables on synthetic observations: each test
// builds cases and the observations a platform might produce, and checks the
// profile value or rule verdict the classifier derives from them. The
// regressions of issue 11 (section 3) are in truth_test.cpp.
#include <gtest/gtest.h>

#include <cctype>

#include "run_builder.h"

namespace syncprobe {
namespace {

using namespace testing_support;

struct ReportingRow {
  int first, other, again, healed, unseen, reopen;  // 1 the fsync failed, 0 it succeeded, -1 absent
  const char* disk;                                  // what the read-back after repair holds
  const char* expected;
};

std::vector<Scripted> reporting_steps(const ReportingRow& row) {
  auto f = [](int failed, const char* probe, std::vector<Scripted>& v) {
    if (failed < 0) return;
    v.push_back(failed ? fails(StepKind::fsync, probe) : ok(StepKind::fsync, probe));
  };
  std::vector<Scripted> v = {write("old"), fault(), write("A")};
  f(row.first, "report.first", v);
  if (row.first == 0) v.back().injected = 1;  // the write failed; the fsync did not say so
  f(row.other, "report.other_fd", v);
  f(row.again, "report.again", v);
  f(row.healed, "report.after_heal", v);
  f(row.unseen, "report.unseen_new_fd", v);
  f(row.reopen, "close.reopen_fsync", v);
  v.push_back(reads(StepKind::read_back, "r441.disk", row.disk));
  return v;
}

class Reporting : public testing::TestWithParam<ReportingRow> {};

TEST_P(Reporting, DecisionTable) {
  const auto& row = GetParam();
  RunBuilder b;
  b.add("t", "c", reporting_steps(row));
  auto s = b.classify();
  EXPECT_EQ(s["targets"]["t"]["profile"]["reporting"], row.expected) << s["targets"]["t"]["profile_reasons"];
  EXPECT_FALSE(s["targets"]["t"]["evidence"]["reporting"].empty());
}

INSTANTIATE_TEST_SUITE_P(
    Axes, Reporting,
    testing::Values(ReportingRow{1, 0, 0, 0, 1, -1, "old", "first-caller"},
                    ReportingRow{1, 1, 0, 0, 0, -1, "old", "once-per-fd"},
                    ReportingRow{1, 1, 0, 0, 1, -1, "old", "once-per-fd+unseen"},
                    ReportingRow{1, 1, 1, 1, 1, 0, "old", "sticky-until-close"},
                    ReportingRow{1, 1, 1, 0, 0, -1, "A", "until-persisted"},
                    ReportingRow{0, 0, 0, 0, 0, -1, "old", "silent"},
                    ReportingRow{0, 0, 1, 0, 0, -1, "old", "deferred"}),
    // Named after the value each row expects: stable names, not the row's bytes.
    [](const testing::TestParamInfo<ReportingRow>& info) {
      std::string name = info.param.expected;
      for (char& ch : name)
        if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
      return name;
    });

TEST(Classify, UnknownWithoutEvidence) {
  RunBuilder b;
  b.add("t", "c", {write("old"), fault(), write("A"), ok(StepKind::fsync)});
  auto s = b.classify();
  for (const char* axis : {"reporting", "page_fate", "recovery", "fs_reaction", "cross_fd"}) {
    EXPECT_EQ(s["targets"]["t"]["profile"][axis], "unknown") << axis;
    EXPECT_FALSE(s["targets"]["t"]["profile_reasons"].value(axis, "").empty()) << axis;
  }
  for (const char* rule : {"R1", "R2", "R3", "R4", "R5", "R6", "R7"})
    EXPECT_EQ(s["targets"]["t"]["rules"][rule], "n/a") << rule;
}

TEST(Classify, AHarnessFailureIsNoAnswerOfThePlatform) {
  const Check error{"R5", "error", "", ""};
  RunBuilder b;
  b.add("t", "c", {write("old"), fault(), write("A"),
                   checked(harness_fails(StepKind::fsync, "report.first", "worker killed"), error),
                   fails(StepKind::fsync, "report.again")});
  auto s = b.classify();
  EXPECT_EQ(s["targets"]["t"]["profile"]["reporting"], "unknown");
  EXPECT_NE(s["targets"]["t"]["profile_reasons"]["reporting"].get<std::string>().find("worker killed"),
            std::string::npos);
  EXPECT_EQ(s["targets"]["t"]["rules"]["R5"], "unknown");
}

TEST(Classify, CrossFdCorruptsOnlyWhenTheSuccessIsUntrue) {
  auto steps = [](const char* read, bool fsync_ok, const char* disk) {
    return std::vector<Scripted>{write("old"), fault(), write("A"), reads(StepKind::pread, "cross.b_read", read),
                                 fsync_ok ? ok(StepKind::fsync, "cross.b_fsync") : fails(StepKind::fsync, "cross.b_fsync"),
                                 reads(StepKind::read_back, "cross.disk", disk)};
  };
  RunBuilder b;
  b.add("linux", "two", steps("A", true, "old"));
  b.add("retry", "two", steps("A", true, "A"));
  b.add("discard", "two", steps("old", false, "old"));
  auto s = b.classify();
  EXPECT_EQ(s["targets"]["linux"]["profile"]["cross_fd"], "corrupts");
  EXPECT_EQ(s["targets"]["retry"]["profile"]["cross_fd"], "safe");
  EXPECT_EQ(s["targets"]["discard"]["profile"]["cross_fd"], "safe");
}

TEST(Classify, HonestCheckNeedsProofOnlyWhenTheCallSucceeded) {
  Check honest{"R2", "honest", "@cross.b_read", "cross.disk"};
  auto steps = [&](bool fsync_ok, const std::string& disk) {
    return std::vector<Scripted>{
        reads(StepKind::pread, "cross.b_read", "A"),
        checked(fsync_ok ? ok(StepKind::fsync, "cross.b_fsync") : fails(StepKind::fsync, "cross.b_fsync"), honest),
        reads(StepKind::read_back, "cross.disk", disk)};
  };
  RunBuilder b;
  b.add("lying", "two", steps(true, "old"));
  b.add("truthful", "two", steps(true, "A"));
  b.add("failing", "two", steps(false, "old"));
  auto s = b.classify();
  EXPECT_EQ(s["targets"]["lying"]["rules"]["R2"], "fail");
  EXPECT_EQ(s["targets"]["truthful"]["rules"]["R2"], "pass");
  EXPECT_EQ(s["targets"]["failing"]["rules"]["R2"], "pass");
  const auto& ev = s["targets"]["lying"]["evidence"]["R2"][0];
  EXPECT_EQ(ev["case"], "two");
  EXPECT_EQ(ev["step"], 1);
  EXPECT_EQ(ev["observed"], "0");
  EXPECT_FALSE(ev["pass"].get<bool>());
}

TEST(Classify, ErrnoAndTagExpectations) {
  RunBuilder b;
  b.add("t", "c", {checked(fails(StepKind::fsync, "", ENOSPC), Check{"R5", "EIO", "", ""}),
                   checked(reads(StepKind::pread, "", "A"), Check{"R1", "", "A", ""})});
  auto s = b.classify();
  EXPECT_EQ(s["targets"]["t"]["rules"]["R5"], "fail");  // ENOSPC is not the EIO asked for
  EXPECT_EQ(s["targets"]["t"]["rules"]["R1"], "pass");
  EXPECT_EQ(s["targets"]["t"]["cases"]["c"]["checks_failed"], 1);
  EXPECT_EQ(s["targets"]["t"]["cases"]["c"]["checks_passed"], 1);
}

TEST(Classify, RecoveryAgreesAcrossCasesOfAClass) {
  RunBuilder b;
  b.add("t", "thin1", {write("old"), with_args(StepKind::thin_limit, {{"headroom", "0"}}), write("A"),
                       ok(StepKind::fsync, "recovery.retry"), reads(StepKind::read_back, "recovery.disk", "A")});
  b.add("t", "thin2", {write("old"), with_args(StepKind::thin_limit, {{"headroom", "0"}}), write("A"),
                       ok(StepKind::fsync, "thin.retry"), reads(StepKind::read_back, "thin.disk", "A")});
  b.add("u", "thin1", {write("old"), with_args(StepKind::thin_limit, {{"headroom", "0"}}), write("A"),
                       fails(StepKind::fsync, "recovery.retry"), reads(StepKind::read_back, "recovery.disk", "old")});
  auto s = b.classify();
  EXPECT_EQ(s["targets"]["t"]["profiles"]["thin-enospc"]["axes"]["recovery"]["value"], "recovers");
  EXPECT_EQ(s["targets"]["u"]["profiles"]["thin-enospc"]["axes"]["recovery"]["value"], "lost-reported");
}

TEST(Classify, FsReactionFromErrno) {
  auto steps = [](Scripted healthy) {
    return std::vector<Scripted>{write("old"), fault(), write("A"), ok(StepKind::heal), healthy};
  };
  RunBuilder b;
  b.add("ro", "m", steps(fails(StepKind::fsync, "fs.healthy_write", EROFS)));
  b.add("down", "m", steps(fails(StepKind::fsync, "fs.healthy_write", EIO)));
  b.add("fine", "m", steps(ok(StepKind::fsync, "fs.healthy_write")));
  auto s = b.classify();
  EXPECT_EQ(s["targets"]["ro"]["profile"]["fs_reaction"], "read-only");
  EXPECT_EQ(s["targets"]["down"]["profile"]["fs_reaction"], "shutdown");
  EXPECT_EQ(s["targets"]["fine"]["profile"]["fs_reaction"], "continues");
}

TEST(Classify, R7CountsTheFailedTagAgainstTheCap) {
  auto steps = [](const std::string& tag) {
    return std::vector<Scripted>{with_args(StepKind::memory_limit, {{"bytes", "8192"}}), fault(), write("A"),
                                 reads(StepKind::pread, "r7.read_after_pressure", tag)};
  };
  RunBuilder b;
  b.add("bounded", "r7", steps("old"));
  b.add("unbounded", "r7", steps("A"));
  // Synthetic reads carry 4096 bytes; make the unbounded one hold 64 KiB.
  b.run().results["unbounded"]["r7"].steps[3].data->parts = {{"A", 65536}};
  auto s = b.classify();
  EXPECT_EQ(s["targets"]["bounded"]["rules"]["R7"], "pass");
  EXPECT_EQ(s["targets"]["unbounded"]["rules"]["R7"], "fail");
}

TEST(Classify, ClosestPolicyIsTheOneWithTheSmallestShareOfDifferences) {
  RunBuilder b;
  add_policy(b, "x", "c", {fails(StepKind::fsync, "a"), ok(StepKind::fsync, "b")});
  add_policy(b, "y", "c", {fails(StepKind::fsync, "a"), fails(StepKind::fsync, "b")});
  b.add("host:fs", "c", {fails(StepKind::fsync, "a"), ok(StepKind::fsync, "b")});
  auto s = b.classify();
  const auto& t = s["targets"]["host:fs"];
  EXPECT_EQ(t["closest_policy"], "x");
  EXPECT_EQ(t["closest_policies"], nlohmann::json::array({"x"}));
  EXPECT_EQ(t["distances"]["x"]["differing"], 0);
  EXPECT_EQ(t["distances"]["x"]["compared"], 2);
  EXPECT_EQ(t["distances"]["y"]["differing"], 1);
  EXPECT_EQ(s["targets"]["reference:y"]["closest_policy"], "y");
  // Differences are listed for the closest policy only: none for x.
  EXPECT_TRUE(t["differences"].empty());
}

}  // namespace
}  // namespace syncprobe
