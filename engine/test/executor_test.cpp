// The run loop on fake targets: every (target, case) gets exactly one
// result; missing capabilities skip, an unavailable target skips with its
// reason, a throwing target is an error of that case and the run goes on,
// and one batch key means one run_batch call.
#include <gtest/gtest.h>

#include <map>

#include "syncprobe/executor.h"

namespace syncprobe {
namespace {

class FakeTarget : public Target {
 public:
  FakeTarget(std::string name, bool measured, std::string batch = "")
      : name_(std::move(name)), measured_(measured), batch_(std::move(batch)) {}
  std::string name() const override { return name_; }
  bool measured() const override { return measured_; }
  Availability availability() const override { return {available, available ? "" : "no such thing"}; }
  std::set<std::string> capabilities() const override { return {"fault"}; }
  nlohmann::json environment() const override { return {{"fake", name_}}; }
  CaseResult run(const Case& c, const RunContext&) override {
    if (c.id == throws_on) throw std::runtime_error("daemon refused");
    CaseResult r;
    r.case_id = c.id;
    r.target = name_;
    return r;
  }
  std::string batch_key() const override { return batch_.empty() ? name_ : batch_; }
  std::map<std::string, std::vector<CaseResult>> run_batch(const std::vector<Target*>& targets,
                                                           const std::vector<const Case*>& cases,
                                                           const RunContext& ctx) override {
    ++batches;
    return Target::run_batch(targets, cases, ctx);
  }
  bool available = true;
  std::string throws_on;
  int batches = 0;

 private:
  std::string name_;
  bool measured_;
  std::string batch_;
};

Case make_case(const std::string& id, std::vector<std::string> requires_ = {}) {
  Case c;
  c.id = id;
  c.requires_ = std::move(requires_);
  return c;
}

TEST(Executor, OneResultPerTargetAndCaseWithTheRightStatus) {
  Case plain = make_case("plain"), needs = make_case("needs-thin", {"thin-pool"}),
       boom = make_case("boom");
  FakeTarget ref("reference:x", false), host("host:y", true), gone("host:z", true);
  FakeTarget vm1("vm:1:a", true, "vm:1"), vm2("vm:1:b", true, "vm:1");
  host.throws_on = "boom";
  gone.available = false;
  Plan plan{{&plain, &needs, &boom}, {&ref, &host, &gone, &vm1, &vm2}, 2};
  std::map<std::pair<std::string, std::string>, CaseResult> got;
  const bool ok = execute(plan, RunContext{}, [&](const CaseResult& r) {
    EXPECT_TRUE(got.emplace(std::pair{r.target, r.case_id}, r).second) << "twice: " << r.target << " " << r.case_id;
  });
  EXPECT_FALSE(ok) << "a throwing target is a failure of the machinery";
  EXPECT_EQ(got.size(), 15u);
  EXPECT_EQ(got.at({"host:y", "boom"}).status, CaseStatus::error);
  EXPECT_NE(got.at({"host:y", "boom"}).reason.find("daemon refused"), std::string::npos);
  EXPECT_EQ(got.at({"host:y", "plain"}).status, CaseStatus::completed);
  EXPECT_EQ(got.at({"reference:x", "needs-thin"}).status, CaseStatus::skipped);
  EXPECT_NE(got.at({"reference:x", "needs-thin"}).reason.find("thin-pool"), std::string::npos);
  EXPECT_EQ(got.at({"host:z", "plain"}).status, CaseStatus::skipped);
  EXPECT_NE(got.at({"host:z", "plain"}).reason.find("no such thing"), std::string::npos);
  EXPECT_EQ(vm1.batches + vm2.batches, 1) << "one batch (one boot) for one key";
}

TEST(Executor, NoMachineryFailureMeansTrue) {
  Case plain = make_case("plain");
  FakeTarget ref("reference:x", false);
  int n = 0;
  EXPECT_TRUE(execute(Plan{{&plain}, {&ref}, 1}, RunContext{}, [&](const CaseResult&) { ++n; }));
  EXPECT_EQ(n, 1);
}

}  // namespace
}  // namespace syncprobe
