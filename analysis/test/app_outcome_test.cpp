// The outcome classifier on synthetic evidence: each test builds the app
// steps a program would leave and checks the outcome named.
#include "syncprobe/app_outcome.h"
#include "syncprobe/taxonomy.h"

#include <gtest/gtest.h>

namespace syncprobe {
namespace {

using json = nlohmann::json;

class Script {
 public:
  Script& put(const std::string& key, const std::string& value, bool acked) {
    return app("put", {{"key", key}, {"value", value}},
               acked ? SysResult::success(0) : SysResult::failure(0), acked ? 0 : 1);
  }
  Script& get(const std::string& key, std::optional<std::string> read) {
    json ev = {{"key", key}, {"found", read.has_value()}};
    ev["read"] = read ? json(*read) : json();
    return app("get", ev, SysResult::success(0), 0);
  }
  Script& get_fails(const std::string& key) {
    return app("get", {{"key", key}}, SysResult::failure(0), 1);
  }
  Script& check(bool consistent) {
    return app("check", {{"consistent", consistent}}, SysResult::success(0), 0);
  }
  Script& scan(json pairs) { return app("scan", {{"pairs", pairs}}, SysResult::success(0), 0); }
  Script& checkpoint(bool ok, bool panic) {
    return app("checkpoint", {{"panic", panic}}, ok ? SysResult::success(0) : SysResult::failure(0),
               ok ? 0 : 2);
  }
  Script& restart(bool ok) {
    return app("restart", json::object(), ok ? SysResult::success(0) : SysResult::failure(0), ok ? 0 : 1);
  }
  Script& crash_put(const std::string& key, const std::string& value) {
    return app("put", {{"key", key}, {"value", value}}, SysResult::failure(0), -1);
  }
  Script& fault() { return event("fault", {{"layer", "fuse-blockdev"}}); }
  Script& power_cut() { return event("power_cut"); }
  Script& heal() { return event("heal"); }
  json outcome() const { return app_outcome(r_); }
  // Every outcome named must be one the report can explain (taxonomy::app_outcomes()).
  std::vector<std::string> outcomes() const {
    const auto list = outcome()["outcomes"].get<std::vector<std::string>>();
    for (const auto& o : list) EXPECT_NE(taxonomy::find_app_outcome(o), nullptr) << o << " is not in the taxonomy";
    return list;
  }
  std::vector<std::string> detected() const { return outcome()["detected"].get<std::vector<std::string>>(); }

 private:
  // A step that is not the program's: the fault, the heal, a power cut.
  Script& event(const char* op, json detail = json::object()) {
    StepObservation o;
    o.index = r_.steps.size();
    o.op = op;
    o.detail = std::move(detail);
    r_.steps.push_back(o);
    return *this;
  }
  Script& app(const std::string& action, json ev, SysResult res, int exit_status) {
    StepObservation o;
    o.index = r_.steps.size();
    o.op = "app";
    ev["program"] = "sqlite";
    ev["action"] = action;
    ev["exit_status"] = exit_status;
    o.detail = {{"app", ev}};
    o.result = res;
    r_.steps.push_back(o);
    return *this;
  }
  CaseResult r_;
};

using V = std::vector<std::string>;

TEST(AppOutcome, NoAppStepsIsEmpty) {
  CaseResult r;
  StepObservation o;
  o.op = "fsync";
  r.steps.push_back(o);
  EXPECT_TRUE(app_outcome(r).empty());
}

TEST(AppOutcome, AcknowledgedValueReadBackIsPresent) {
  Script s;
  s.put("k", "v1", true).fault().put("k", "v2", true).get("k", "v2");
  EXPECT_EQ(s.outcomes(), V{"acked-present"});
  EXPECT_EQ(s.detected(), V{});
}

TEST(AppOutcome, ReportedFailureWithOldValueKeptIsCorrect) {
  Script s;
  s.put("k", "v1", true).fault().put("k", "v2", false).get("k", "v1");
  EXPECT_EQ(s.outcomes(), V{"failed-absent"});
  EXPECT_EQ(s.detected(), V{"error to the client"});
}

TEST(AppOutcome, FailedValueReadLaterIsFalseFailure) {
  Script s;
  s.put("k", "v1", true).fault().put("k", "v2", false).get("k", "v2");
  EXPECT_EQ(s.outcomes(), V{"FF"});
}

TEST(AppOutcome, FalseFailureThenRevertedIsBoth) {
  Script s;
  s.put("k", "v1", true).fault().put("k", "v2", false).get("k", "v2").get("k", "v1");
  EXPECT_EQ(s.outcomes(), (V{"FF", "failed-absent"}));
  EXPECT_EQ(s.outcome()["reads"][1]["outcome"], "failed-absent");
}

TEST(AppOutcome, OlderValueAfterAcknowledgementIsOV) {
  Script s;
  s.put("k", "v1", true).fault().put("k", "v2", true).get("k", "v1");
  EXPECT_EQ(s.outcomes(), V{"OV"});
}

TEST(AppOutcome, MissingKeyAfterAcknowledgementIsKNF) {
  Script s;
  s.put("k", "v1", true).fault().get("k", std::nullopt);
  EXPECT_EQ(s.outcomes(), V{"KNF"});
}

TEST(AppOutcome, UnknownValueIsCorruption) {
  Script s;
  s.put("k", "v1", true).fault().get("k", "mixed");
  EXPECT_EQ(s.outcomes(), V{"VC"});
}

TEST(AppOutcome, NeverAcknowledgedKeyAbsentIsCorrect) {
  Script s;
  s.fault().put("k", "v1", false).get("k", std::nullopt);
  EXPECT_EQ(s.outcomes(), V{"failed-absent"});
}

TEST(AppOutcome, ReadFailureAfterHealIsRefusalToStart) {
  Script s;
  s.put("k", "v1", true).fault().put("k", "v2", false).heal().get_fails("k").check(false);
  EXPECT_EQ(s.outcomes(), V{"refuses-start"});
  EXPECT_EQ(s.detected(), (V{"error to the client", "refusal to continue"}));
}

TEST(AppOutcome, ReadFailureWhileFaultyIsDetectionNotAnOutcome) {
  Script s;
  s.put("k", "v1", true).fault().put("k", "v2", false).get_fails("k").heal().get("k", "v1");
  EXPECT_EQ(s.outcomes(), V{"failed-absent"});
  EXPECT_EQ(s.outcome()["reads"][0]["outcome"], "refused-while-faulty");
  EXPECT_EQ(s.detected(), (V{"error to the client", "refusal to continue"}));
}

TEST(AppOutcome, ReadFailureBeforeAnyFaultIsNotAnOutcomeOfTheFault) {
  Script s;
  s.put("k", "v1", true).check(false);
  EXPECT_EQ(s.outcomes(), V{});
}

TEST(AppOutcome, KilledProgramIsACrash) {
  Script s;
  s.put("k", "v1", true).fault().crash_put("k", "v2").get("k", "v1");
  EXPECT_EQ(s.detected(), V{"crash"});
  EXPECT_EQ(s.outcomes(), V{"failed-absent"});
}

TEST(AppOutcome, ScanFindsACorruptedKeyAndAMissingOne) {
  Script s;
  s.put("a", "1", true).put("b", "2", true).fault().heal().scan({{"a", "1"}, {"x", "2"}});
  EXPECT_EQ(s.outcomes(), (V{"acked-present", "KC", "KNF"}));
  const json reads = s.outcome()["reads"];
  ASSERT_EQ(reads.size(), 3u);
  EXPECT_EQ(reads[1]["key"], "x");
  EXPECT_EQ(reads[1]["outcome"], "KC");
  EXPECT_EQ(reads[2]["key"], "b");
  EXPECT_EQ(reads[2]["outcome"], "KNF");
}

TEST(AppOutcome, ScanSeesACorruptedValue) {
  Script s;
  s.put("a", "1", true).fault().heal().scan({{"a", "1x"}});
  EXPECT_EQ(s.outcomes(), V{"VC"});
}

TEST(AppOutcome, PanicOnAFailedCheckpointIsDetection) {
  Script s;
  s.put("k", "v1", true).fault().put("k", "v2", true).checkpoint(false, true).heal().restart(true).get(
      "k", "v2");
  EXPECT_EQ(s.detected(), (V{"panic", "error to the client"}));
  EXPECT_EQ(s.outcomes(), V{"acked-present"});
}

TEST(AppOutcome, APutRefusedAfterTheHealIsRefusalToContinue) {
  Script s;
  s.put("1", "17", true).fault().put("1", "34", false).heal().put("2", "51", false).get("1", "34");
  EXPECT_EQ(s.detected(), (V{"error to the client", "refusal to continue"}));
  EXPECT_EQ(s.outcomes(), V{"FF"});
}

TEST(AppOutcome, ARestartThatFailsAfterTheHealRefusesStart) {
  Script s;
  s.put("k", "v1", true).fault().heal().restart(false);
  EXPECT_EQ(s.outcomes(), V{"refuses-start"});
}

// After a power cut the device is back: a read that returns the older of two
// acknowledged values is OV, and a failing read is refusal to start, not
// detection while a fault is in place.
TEST(AppOutcome, APowerCutIsOverOnceItHappened) {
  Script s;
  s.put("k", "v1", true).put("k", "v2", true).power_cut().get("k", "v1");
  EXPECT_EQ(s.outcomes(), (std::vector<std::string>{"OV"}));
  EXPECT_EQ(s.outcome()["fault_layer"], "power-cut");
  Script t;
  t.put("k", "v1", true).power_cut().get_fails("k");
  EXPECT_EQ(t.outcomes(), (std::vector<std::string>{"refuses-start"}));
}

TEST(AppOutcome, RowsForAppCasesAndSkipsForMissingPrograms) {
  Script s;
  s.put("k", "v1", true).get("k", "v1");
  std::map<std::string, std::map<std::string, CaseResult>> results;
  CaseResult skipped;
  skipped.status = CaseStatus::skipped;
  skipped.reason = "target lacks capability: app:qemu";
  results["host:ext4"]["app-q"] = skipped;
  CaseResult kernel;
  kernel.steps.push_back(StepObservation{});
  results["host:ext4"]["seed"] = kernel;
  const json rows = classify_apps(results);
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0]["case"], "app-q");
  EXPECT_EQ(rows[0]["status"], "skipped");
}

}  // namespace
}  // namespace syncprobe
