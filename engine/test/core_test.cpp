#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "syncprobe/case.h"
#include "syncprobe/observation.h"
#include "syncprobe/steps.h"

namespace syncprobe {
namespace {

TEST(StepTable, EveryKindHasOneEntryAndUniqueArgs) {
  std::set<std::string_view> names;
  for (const auto& s : step_table()) {
    EXPECT_TRUE(names.insert(s.name).second) << s.name;
    EXPECT_EQ(&step_spec(s.kind), &s);
    std::set<std::string_view> args;
    for (const auto& a : s.args) EXPECT_TRUE(args.insert(a.name).second) << s.name << "." << a.name;
  }
  EXPECT_EQ(find_step("fsync")->kind, StepKind::fsync);
  EXPECT_EQ(find_step("fsnc"), nullptr);
}

TEST(StepTable, Sizes) {
  uint64_t v = 0;
  EXPECT_TRUE(parse_size("4K", v));
  EXPECT_EQ(v, 4096u);
  EXPECT_TRUE(parse_size("1M", v));
  EXPECT_EQ(v, 1u << 20);
  EXPECT_TRUE(parse_size("123", v));
  EXPECT_EQ(v, 123u);
  EXPECT_FALSE(parse_size("4KB", v));
  EXPECT_FALSE(parse_size("", v));
  EXPECT_FALSE(parse_size("-1", v));
}

TEST(Case, CapabilitiesFollowSteps) {
  Case c;
  Step fault;
  fault.kind = StepKind::fault;
  fault.args = {{"range", "metadata"}, {"io", "write"}, {"mode", "drop"}};
  Step write;
  write.kind = StepKind::pwrite;
  write.proc = "b";
  c.steps = {fault, write};
  c.requires_ = {"thin-pool"};
  auto caps = c.capabilities();
  for (auto want : {"fault", "fault:write", "fault:drop", "fault:metadata", "second-process", "thin-pool"})
    EXPECT_TRUE(caps.count(want)) << want;
}

TEST(Case, JsonRoundTrip) {
  Case c;
  c.id = "x";
  c.rules = {"R2"};
  Step s;
  s.kind = StepKind::fsync;
  s.line = 7;
  s.proc = "a";
  s.args = {{"fd", "a"}};
  s.check = Check{"R2", "error", "", ""};
  c.steps = {s};
  nlohmann::json j = c;
  Case back = j.get<Case>();
  ASSERT_EQ(back.steps.size(), 1u);
  EXPECT_EQ(back.steps[0].kind, StepKind::fsync);
  EXPECT_EQ(back.steps[0].line, 7);
  ASSERT_TRUE(back.steps[0].check.has_value());
  EXPECT_EQ(back.steps[0].check->expect, "error");
}

TEST(Observation, ErrnoTravelsByName) {
  StepObservation o;
  o.op = "fsync";
  o.result = SysResult::failure(ENOSPC);
  nlohmann::json j = o;
  EXPECT_EQ(j["errno"], "ENOSPC");
  EXPECT_EQ(j["ret"], -1);
  auto back = j.get<StepObservation>();
  EXPECT_EQ(back.result.err, ENOSPC);
}

}  // namespace
}  // namespace syncprobe
