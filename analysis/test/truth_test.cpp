// Issue 11, section 3: one synthetic-observation test per way the classifier
// used to publish a verdict its observations did not support. Each of these
// fails on the classifier before the fix (analysis/src/classify.cpp at
// 0f54518); docs/classifier.md ("Changes") lists what each changed in a run.
#include <gtest/gtest.h>

#include "run_builder.h"

namespace syncprobe {
namespace {

using namespace testing_support;
using nlohmann::json;

const json& target(const json& s, const std::string& t) { return s["targets"][t]; }

// j[k1][k2]..., or null where a key is missing (older summaries lack some).
json get(const json& j, std::initializer_list<std::string> keys) {
  const json* at = &j;
  for (const auto& k : keys) {
    if (!at->is_object() || !at->contains(k)) return json();
    at = &(*at)[k];
  }
  return *at;
}

// Whether the summary's reason for `key` (under `where`) mentions `word`.
bool says(const json& t, const char* where, const char* key, const std::string& word) {
  const json r = get(t, {where, key});
  return r.is_string() && r.get<std::string>().find(word) != std::string::npos;
}

// "A hung step is not an error report."
TEST(Truth, AHungFsyncIsNotAnErrorReport) {
  RunBuilder b;
  b.add("t", "c", {write("old"), fault(), write("A"), fails(StepKind::fsync, "report.first"),
                   hangs(StepKind::fsync, "report.again")});
  const json s = b.classify();
  EXPECT_EQ(target(s, "t")["profile"]["reporting"], "unknown");
  EXPECT_TRUE(says(target(s, "t"), "profile_reasons", "reporting", "hung"));
  EXPECT_EQ(target(s, "t")["profile"]["fs_reaction"], "hangs");
}

// "A read that fails with EIO is not a reverted page."
TEST(Truth, AFailedReadIsNotARevertedPage) {
  RunBuilder b;
  b.add("t", "c", {write("old"), fault(), write("A"), fails(StepKind::fsync, "report.first"),
                   fails(StepKind::pread, "fate.read_cached"), reads(StepKind::pread, "fate.read_after_drop", "old")});
  const json s = b.classify();
  EXPECT_EQ(target(s, "t")["profile"]["page_fate"], "unknown");
  EXPECT_TRUE(says(target(s, "t"), "profile_reasons", "page_fate", "EIO"));
}

// "EROFS and shutdown errors belong to the fs-reaction axis, never to reporting."
TEST(Truth, FilesystemStateErrorsAreNotReports) {
  RunBuilder b;
  // After repair the writer's fsync gets EROFS (host:btrfs before the fix: sticky-until-close).
  b.add("ro", "c", {write("old"), fault(), write("A"), fails(StepKind::fsync, "report.first"),
                    fails(StepKind::fsync, "report.again"), ok(StepKind::heal),
                    fails(StepKind::fsync, "report.after_heal", EROFS), ok(StepKind::fsync, "close.reopen_fsync")});
  // EUCLEAN while the device fails: the filesystem found itself corrupt; the
  // EIO after it comes from a dead filesystem.
  b.add("dead", "c", {write("old"), fault(), write("A"), fails(StepKind::fsync, "report.first"),
                      fails(StepKind::fsync, "report.again", EUCLEAN), ok(StepKind::heal),
                      ok(StepKind::fsync, "report.after_heal"), reads(StepKind::read_back, "r441.disk", "A")});
  const json s = b.classify();
  EXPECT_EQ(target(s, "ro")["profile"]["reporting"], "unknown");
  EXPECT_EQ(target(s, "ro")["profile"]["fs_reaction"], "read-only");
  EXPECT_EQ(target(s, "dead")["profile"]["reporting"], "unknown");
  EXPECT_EQ(target(s, "dead")["profile"]["fs_reaction"], "shutdown");
}

// "sticky-until-close needs an observed close -> reopen."
TEST(Truth, StickyUntilCloseNeedsACloseAndReopen) {
  std::vector<Scripted> steps = {write("old"), fault(), write("A"), fails(StepKind::fsync, "report.first"),
                                 fails(StepKind::fsync, "report.again"), ok(StepKind::heal),
                                 fails(StepKind::fsync, "report.after_heal")};
  RunBuilder b;
  b.add("no-reopen", "c", steps);
  steps.push_back(ok(StepKind::fsync, "close.reopen_fsync"));
  b.add("reopened", "c", steps);
  const json s = b.classify();
  EXPECT_EQ(target(s, "no-reopen")["profile"]["reporting"], "unknown");
  EXPECT_TRUE(says(target(s, "no-reopen"), "profile_reasons", "reporting", "close and reopen"));
  EXPECT_EQ(target(s, "reopened")["profile"]["reporting"], "sticky-until-close");
}

// "Missing evidence is unknown, never a default (no post-repair probe => until-persisted)."
TEST(Truth, MissingEvidenceIsUnknownNotADefault) {
  RunBuilder b;
  b.add("no-repair", "c", {write("old"), fault(), write("A"), fails(StepKind::fsync, "report.first"),
                           fails(StepKind::fsync, "report.again")});
  // Nothing reported and nothing injected either: the fault never fired, so "silent" is unfounded.
  b.add("never-fired", "c", {write("old"), fault(), write("A"), ok(StepKind::fsync, "report.first"),
                             ok(StepKind::fsync, "report.again")});
  const json s = b.classify();
  EXPECT_EQ(target(s, "no-repair")["profile"]["reporting"], "unknown");
  EXPECT_EQ(target(s, "never-fired")["profile"]["reporting"], "unknown");
  EXPECT_TRUE(says(target(s, "never-fired"), "profile_reasons", "reporting", "failed no write"));
}

// "An honest check whose proof read-back failed or hung is fail or unknown, not n/a."
TEST(Truth, AnHonestCheckWithAFailedProofIsUnknown) {
  const Check honest{"R2", "honest", "A", "disk"};
  RunBuilder b;
  b.add("proof-failed", "c", {write("old"), fault(), write("A"), checked(ok(StepKind::fsync, "again"), honest),
                              fails(StepKind::read_back, "disk")});
  b.add("proof-hung", "c", {write("old"), fault(), write("A"), checked(ok(StepKind::fsync, "again"), honest),
                            hangs(StepKind::read_back, "disk")});
  const json s = b.classify();
  for (const char* t : {"proof-failed", "proof-hung"}) {
    EXPECT_EQ(target(s, t)["rules"]["R2"], "unknown") << t;
    EXPECT_EQ(get(target(s, t), {"cases", "c", "checks_unknown"}), 1) << t;
    EXPECT_TRUE(says(target(s, t), "rule_reasons", "R2", "proof read-back")) << t;
  }
}

// "No single case decides an axis by worst-wins across kinds of fault: classify per fault class."
TEST(Truth, EachFaultClassHasItsOwnProfile) {
  RunBuilder b;
  b.add("t", "data", {write("old"), fault(), write("A"), ok(StepKind::heal), ok(StepKind::fsync, "fate.fsync_after_heal"),
                      reads(StepKind::read_back, "single.disk", "A")});
  b.add("t", "enxio", {write("old"), fault("ENXIO"), write("A"), ok(StepKind::heal), ok(StepKind::fsync, "recovery.retry"),
                       reads(StepKind::read_back, "recovery.disk", "old")});
  b.add("t", "journal", {write("old"), fault("EIO", "metadata"), write("A"), ok(StepKind::heal),
                         fails(StepKind::fsync, "fs.healthy_write", EROFS)});
  const json s = b.classify();
  const json& t = target(s, "t");
  EXPECT_EQ(t["profile"]["recovery"], "recovers");
  EXPECT_EQ(get(t, {"profile_class"}), "data-write");
  EXPECT_EQ(get(t, {"profiles", "data-write", "axes", "recovery", "value"}), "recovers");
  EXPECT_EQ(get(t, {"profiles", "device-gone", "axes", "recovery", "value"}), "lost-silent");
  EXPECT_EQ(get(t, {"profiles", "metadata", "axes", "fs_reaction", "value"}), "read-only");
  EXPECT_EQ(t["profile"]["fs_reaction"], "unknown") << "a journal error says nothing of a data-write error";
  EXPECT_EQ(get(t, {"cases", "enxio", "fault_class"}), "device-gone");
}

// Issue 16: an append after a failed writeback whose fsync returned 0 but
// whose bytes read back as zeros is fsync-confirmed data lost without a
// report: recovery lost-silent. The same case with every range on disk says
// nothing about retrying (the second append re-dirties the failed block), so
// it leaves recovery to the cases that retry.
TEST(Truth, AnAppendWhoseConfirmedBytesAreNotOnDiskIsLostSilent) {
  auto append_case = [](const std::string& block_b) -> std::vector<Scripted> {
    return {write("old"), fault("EIO", "free"), write("A"), fails(StepKind::fsync, "append.first_fsync"),
            ok(StepKind::heal), write("B"), ok(StepKind::fsync, "append.claim"),
            reads(StepKind::read_back, "append.disk_a", "A"),
            reads(StepKind::read_back, "append.disk_b_failed_block", block_b),
            reads(StepKind::read_back, "append.disk_b_next_block", "B")};
  };
  RunBuilder b;
  b.add("ext4", "append", append_case("zero"));
  b.add("xfs", "append", append_case("B"));
  const json s = b.classify();
  EXPECT_EQ(get(target(s, "ext4"), {"profiles", "data-write", "axes", "recovery", "value"}), "lost-silent");
  EXPECT_EQ(target(s, "xfs")["profile"]["recovery"], "unknown");
  EXPECT_TRUE(says(target(s, "xfs"), "profile_reasons", "recovery", "shows loss only"));
}

// "When several cases measure the same probe, cross-check them and flag a disagreement."
TEST(Truth, CasesThatDisagreeAreFlagged) {
  RunBuilder b;
  b.add("t", "a-case", {write("old"), fault(), write("A"), fails(StepKind::fsync, "report.first"),
                        fails(StepKind::fsync, "report.again")});
  b.add("t", "b-case", {write("old"), fault(), write("A"), fails(StepKind::fsync, "report.first"),
                        ok(StepKind::fsync, "report.again"), fails(StepKind::fsync, "report.other_fd")});
  const json s = b.classify();
  EXPECT_EQ(target(s, "t")["profile"]["reporting"], "disagree");
  EXPECT_TRUE(says(target(s, "t"), "profile_reasons", "reporting", "a-case"));
  EXPECT_TRUE(says(target(s, "t"), "profile_reasons", "reporting", "b-case"));
}

// Closest policy: "report ties instead of breaking them by name".
TEST(Truth, ClosestPolicyTiesAreReported) {
  RunBuilder b;
  add_policy(b, "a", "c", {fails(StepKind::fsync, "x"), ok(StepKind::fsync, "y")});
  add_policy(b, "b", "c", {ok(StepKind::fsync, "x"), fails(StepKind::fsync, "y")});
  b.add("host:fs", "c", {ok(StepKind::fsync, "x"), ok(StepKind::fsync, "y")});
  const json s = b.classify();
  EXPECT_TRUE(target(s, "host:fs")["closest_policy"].is_null());
  EXPECT_EQ(get(target(s, "host:fs"), {"closest_policies"}), json::array({"a", "b"}));
}

std::vector<Scripted> ten(int differing_at = -1, int another = -1) {
  std::vector<Scripted> v;
  for (int i = 0; i < 10; ++i)
    v.push_back(i == differing_at || i == another ? fails(StepKind::fsync, "") : ok(StepKind::fsync, ""));
  return v;
}

// Closest policy: "normalise for cases a target skipped".
TEST(Truth, ClosestPolicyIsNormalisedForSkippedCases) {
  RunBuilder b;
  b.add("host:fs", "c1", ten());
  b.add("host:fs", "c2", ten());
  add_policy(b, "skips", "c1", ten(0, 1));                       // 2 of 10 differ
  add_policy(b, "skips", "c2", ten(), CaseStatus::skipped);
  add_policy(b, "runs", "c1", ten(0, 1));                        // 3 of 20 differ
  add_policy(b, "runs", "c2", ten(0));
  const json s = b.classify();
  EXPECT_EQ(target(s, "host:fs")["closest_policy"], "runs");
  EXPECT_EQ(get(target(s, "host:fs"), {"distances", "skips", "compared"}), 10);
}

// Closest policy: "do not count a difference that is an injector artefact (requested ENXIO, delivered EIO)".
TEST(Truth, ClosestPolicyIgnoresInjectorArtefacts) {
  RunBuilder b;
  b.add("host:fs", "enxio", {fault("ENXIO"), write("A"), fails(StepKind::fsync, "f", EIO), ok(StepKind::fsync, "g")});
  add_policy(b, "zz-delivers-enxio", "enxio", {fault("ENXIO"), write("A"), fails(StepKind::fsync, "f", ENXIO),
                                                ok(StepKind::fsync, "g")});
  add_policy(b, "aa-other", "enxio", {fault("ENXIO"), write("A"), fails(StepKind::fsync, "f", EIO),
                                       fails(StepKind::fsync, "g")});
  const json s = b.classify();
  EXPECT_EQ(target(s, "host:fs")["closest_policy"], "zz-delivers-enxio");
  EXPECT_EQ(get(target(s, "host:fs"), {"distances", "zz-delivers-enxio", "differing"}), 0);
  const json artefacts = get(target(s, "host:fs"), {"artefacts"});
  ASSERT_EQ(artefacts.size(), 1u);
  EXPECT_EQ(artefacts[0]["step"], 2);
}

// Closest policy: "do not count steps a hung case never ran".
TEST(Truth, ClosestPolicyIgnoresStepsAHungCaseNeverRan) {
  std::vector<Scripted> hung_at_1 = ten();
  hung_at_1[1] = hangs(StepKind::fsync, "");
  RunBuilder b;
  b.add("host:fs", "c", hung_at_1);
  b.add("host:fs", "c2", ten());
  add_policy(b, "ran-it", "c", ten());                           // differs at the hung step only
  add_policy(b, "ran-it", "c2", ten(0));
  add_policy(b, "skipped-it", "c", ten(), CaseStatus::skipped);
  add_policy(b, "skipped-it", "c2", ten(0, 1));
  const json s = b.classify();
  const json& t = target(s, "host:fs");
  EXPECT_EQ(t["closest_policy"], "ran-it");
  EXPECT_EQ(get(t, {"distances", "ran-it", "compared"}), 12);
  EXPECT_EQ(get(t, {"distances", "ran-it", "differing"}), 2);
  for (const auto& d : t["differences"]) EXPECT_FALSE(d["case"] == "c" && d["step"].get<int>() > 1) << d;
}

// "R3 and R7 on a kernel: say `not measurable here` where that is the truth."
TEST(Truth, RulesNoCaseHereCanCheckAreNotMeasurable) {
  const Check r3{"R3", "honest", "A", "gone_bad.disk"};
  RunBuilder b;
  b.add("host:fs", "r7", {with_args(StepKind::memory_limit, {{"bytes", "8192"}}), fault(), write("A"),
                          reads(StepKind::pread, "r7.read_after_pressure", "A")},
        true, "", CaseStatus::skipped);
  // R3 is measurable on a kernel: the page is evicted and fsync returns 0 over the old data.
  b.add("host:fs", "gone-bad", {write("old"), fault(), write("A"), fails(StepKind::fsync, "gone_bad.first"),
                                ok(StepKind::drop_caches), checked(ok(StepKind::fsync, "gone_bad.after_evict"), r3),
                                reads(StepKind::read_back, "gone_bad.disk", "old")});
  const json s = b.classify();
  EXPECT_EQ(target(s, "host:fs")["rules"]["R7"], "not measurable here");
  EXPECT_TRUE(says(target(s, "host:fs"), "rule_reasons", "R7", "memory-limit"));
  EXPECT_EQ(target(s, "host:fs")["rules"]["R3"], "fail");
  EXPECT_EQ(target(s, "host:fs")["rules"]["R1"], "n/a");
}

}  // namespace
}  // namespace syncprobe
