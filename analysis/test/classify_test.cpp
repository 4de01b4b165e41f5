// The classifier's decision tables on synthetic observations: each test
// builds a case and the observations a platform might produce, and checks the
// profile value or rule verdict the classifier derives from them.
#include <gtest/gtest.h>

#include <cerrno>

#include "syncprobe/classify.h"

namespace syncprobe {
namespace {

// A step of a synthetic case, with the outcome a target produced for it.
struct Scripted {
  StepKind kind = StepKind::fsync;
  std::string probe;
  int64_t ret = 0;
  int err = 0;
  std::string tag;          // what a read returned ("" for none)
  std::optional<Check> check = std::nullopt;
  std::map<std::string, std::string> args = {};
};

Scripted ok(StepKind k, std::string probe = "") {
  Scripted s;
  s.kind = k;
  s.probe = std::move(probe);
  return s;
}
Scripted fails(StepKind k, std::string probe, int err = EIO) {
  Scripted s = ok(k, std::move(probe));
  s.ret = -1;
  s.err = err;
  return s;
}
Scripted reads(StepKind k, std::string probe, std::string tag) {
  Scripted s = ok(k, std::move(probe));
  s.ret = 4096;
  s.tag = std::move(tag);
  return s;
}
Scripted with_args(StepKind k, std::map<std::string, std::string> args) {
  Scripted s = ok(k);
  s.args = std::move(args);
  return s;
}

class RunBuilder {
 public:
  // Adds case `id` with `steps` observed on `target`.
  RunBuilder& add(const std::string& target, const std::string& id, std::vector<Scripted> steps,
                  bool measured = true, const std::string& policy = "") {
    Case& c = run_.cases[id];
    c.id = id;
    c.steps.clear();
    CaseResult r;
    r.case_id = id;
    r.target = target;
    r.status = CaseStatus::completed;
    r.environment = {{"measured", measured}};
    if (!policy.empty()) r.environment["policy"] = policy;
    for (size_t i = 0; i < steps.size(); ++i) {
      Step s;
      s.kind = steps[i].kind;
      s.probe = steps[i].probe;
      s.check = steps[i].check;
      s.args = steps[i].args;
      c.steps.push_back(s);
      StepObservation o;
      o.index = i;
      o.op = std::string(step_spec(s.kind).name);
      o.result = steps[i].ret < 0 ? SysResult::failure(steps[i].err) : SysResult::success(steps[i].ret);
      if (!steps[i].tag.empty()) o.data = TagReading{steps[i].tag, {{steps[i].tag, 4096}}};
      r.steps.push_back(o);
    }
    run_.results[target][id] = r;
    return *this;
  }
  nlohmann::json classify() const { return syncprobe::classify(run_); }
  RunResults& run() { return run_; }

 private:
  RunResults run_;
};

std::vector<Scripted> reporting_steps(bool first, bool other, bool again, bool healed, bool unseen) {
  auto f = [](bool failed, const char* probe) {
    return failed ? fails(StepKind::fsync, probe) : ok(StepKind::fsync, probe);
  };
  return {f(first, "report.first"), f(other, "report.other_fd"), f(again, "report.again"),
          f(healed, "report.after_heal"), f(unseen, "report.unseen_new_fd")};
}

struct ReportingRow {
  bool first, other, again, healed, unseen;
  const char* expected;
};

class Reporting : public testing::TestWithParam<ReportingRow> {};

TEST_P(Reporting, DecisionTable) {
  const auto& row = GetParam();
  RunBuilder b;
  b.add("t", "c", reporting_steps(row.first, row.other, row.again, row.healed, row.unseen));
  auto s = b.classify();
  EXPECT_EQ(s["targets"]["t"]["profile"]["reporting"], row.expected);
  EXPECT_FALSE(s["targets"]["t"]["evidence"]["reporting"].empty());
}

INSTANTIATE_TEST_SUITE_P(
    Axes, Reporting,
    testing::Values(ReportingRow{true, false, false, false, true, "first-caller"},
                    ReportingRow{true, true, false, false, false, "once-per-fd"},
                    ReportingRow{true, true, false, false, true, "once-per-fd+unseen"},
                    ReportingRow{true, true, true, true, true, "sticky-until-close"},
                    ReportingRow{true, true, true, false, false, "until-persisted"},
                    ReportingRow{false, false, false, false, false, "silent"},
                    ReportingRow{false, false, true, false, false, "deferred"}));

TEST(Classify, UnknownWithoutEvidence) {
  RunBuilder b;
  b.add("t", "c", {ok(StepKind::fsync)});
  auto s = b.classify();
  for (const char* axis : {"reporting", "page_fate", "recovery", "fs_reaction", "cross_fd"})
    EXPECT_EQ(s["targets"]["t"]["profile"][axis], "unknown") << axis;
  for (const char* rule : {"R1", "R2", "R3", "R4", "R5", "R6", "R7"})
    EXPECT_EQ(s["targets"]["t"]["rules"][rule], "n/a") << rule;
}

TEST(Classify, CrossFdCorruptsOnlyWhenTheSuccessIsUntrue) {
  RunBuilder b;
  b.add("linux", "two", {reads(StepKind::pread, "cross.b_read", "A"), ok(StepKind::fsync, "cross.b_fsync"),
                         reads(StepKind::read_back, "cross.disk", "old")});
  b.add("retry", "two", {reads(StepKind::pread, "cross.b_read", "A"), ok(StepKind::fsync, "cross.b_fsync"),
                         reads(StepKind::read_back, "cross.disk", "A")});
  b.add("discard", "two", {reads(StepKind::pread, "cross.b_read", "old"), fails(StepKind::fsync, "cross.b_fsync"),
                           reads(StepKind::read_back, "cross.disk", "old")});
  auto s = b.classify();
  EXPECT_EQ(s["targets"]["linux"]["profile"]["cross_fd"], "corrupts");
  EXPECT_EQ(s["targets"]["retry"]["profile"]["cross_fd"], "safe");
  EXPECT_EQ(s["targets"]["discard"]["profile"]["cross_fd"], "safe");
}

TEST(Classify, HonestCheckNeedsProofOnlyWhenTheCallSucceeded) {
  Check honest{"R2", "honest", "@cross.b_read", "cross.disk"};
  auto steps = [&](bool fsync_ok, const std::string& disk) {
    std::vector<Scripted> v = {reads(StepKind::pread, "cross.b_read", "A")};
    Scripted f = fsync_ok ? ok(StepKind::fsync, "cross.b_fsync") : fails(StepKind::fsync, "cross.b_fsync");
    f.check = honest;
    v.push_back(f);
    v.push_back(reads(StepKind::read_back, "cross.disk", disk));
    return v;
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
  Scripted f = fails(StepKind::fsync, "", ENOSPC);
  f.check = Check{"R5", "EIO", "", ""};
  Scripted r = reads(StepKind::pread, "", "A");
  r.check = Check{"R1", "", "A", ""};
  RunBuilder b;
  b.add("t", "c", {f, r});
  auto s = b.classify();
  EXPECT_EQ(s["targets"]["t"]["rules"]["R5"], "fail");  // ENOSPC is not the EIO asked for
  EXPECT_EQ(s["targets"]["t"]["rules"]["R1"], "pass");
  EXPECT_EQ(s["targets"]["t"]["cases"]["c"]["checks_failed"], 1);
  EXPECT_EQ(s["targets"]["t"]["cases"]["c"]["checks_passed"], 1);
}

TEST(Classify, RecoveryTakesTheWorstPair) {
  RunBuilder b;
  b.add("t", "thin", {ok(StepKind::fsync, "recovery.retry"), reads(StepKind::read_back, "recovery.disk", "A")});
  b.add("t", "enxio", {ok(StepKind::fsync, "recovery.enxio_retry"),
                       reads(StepKind::read_back, "recovery.enxio_disk", "old")});
  b.add("u", "thin", {fails(StepKind::fsync, "recovery.retry"), reads(StepKind::read_back, "recovery.disk", "old")});
  auto s = b.classify();
  EXPECT_EQ(s["targets"]["t"]["profile"]["recovery"], "lost-silent");
  EXPECT_EQ(s["targets"]["u"]["profile"]["recovery"], "lost-reported");
}

TEST(Classify, FsReactionFromErrno) {
  RunBuilder b;
  b.add("ro", "m", {fails(StepKind::fsync, "fs.healthy_write", EROFS)});
  b.add("down", "m", {fails(StepKind::fsync, "fs.healthy_write", EIO)});
  b.add("fine", "m", {ok(StepKind::fsync, "fs.healthy_write")});
  auto s = b.classify();
  EXPECT_EQ(s["targets"]["ro"]["profile"]["fs_reaction"], "read-only");
  EXPECT_EQ(s["targets"]["down"]["profile"]["fs_reaction"], "shutdown");
  EXPECT_EQ(s["targets"]["fine"]["profile"]["fs_reaction"], "continues");
}

TEST(Classify, R7CountsTheFailedTagAgainstTheCap) {
  auto steps = [](const std::string& tag) {
    return std::vector<Scripted>{with_args(StepKind::memory_limit, {{"bytes", "8192"}}),
                                 ok(StepKind::fault),
                                 with_args(StepKind::pwrite, {{"tag", "A"}}),
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

TEST(Classify, ClosestPolicyIsTheOneWithFewestDifferences) {
  RunBuilder b;
  b.add("reference:x", "c", {fails(StepKind::fsync, "a"), ok(StepKind::fsync, "b")}, false, "x");
  b.add("reference:y", "c", {fails(StepKind::fsync, "a"), fails(StepKind::fsync, "b")}, false, "y");
  b.add("host:fs", "c", {fails(StepKind::fsync, "a"), ok(StepKind::fsync, "b")});
  auto s = b.classify();
  EXPECT_EQ(s["targets"]["host:fs"]["closest_policy"], "x");
  EXPECT_EQ(s["targets"]["host:fs"]["distances"]["x"], 0);
  EXPECT_EQ(s["targets"]["host:fs"]["distances"]["y"], 1);
  EXPECT_EQ(s["targets"]["reference:y"]["closest_policy"], "y");
  ASSERT_EQ(s["targets"]["reference:y"]["differences"].size(), 0u);
  // Against y the host target differs at step 1, and the summary lists it for
  // the closest policy only: none for x.
  EXPECT_TRUE(s["targets"]["host:fs"]["differences"].empty());
}

}  // namespace
}  // namespace syncprobe
