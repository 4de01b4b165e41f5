// Sharding the plan: every (target, case) in exactly one shard, a VM kernel's
// cases in one shard, the same cut every time.
#include <gtest/gtest.h>

#include <map>

#include "syncprobe/plan.h"

namespace syncprobe {
namespace {

std::vector<PlanTarget> matrix() {
  return {{"vm:6.1:ext4", "vm:6.1"},   {"vm:6.1:xfs", "vm:6.1"},     {"vm:6.12:ext4", "vm:6.12"},
          {"host:ext4", "host:ext4"},  {"host:xfs", "host:xfs"},     {"reference:proposed", "reference:proposed"},
          {"reference:openbsd", "reference:openbsd"}};
}

std::vector<std::string> cases(int n) {
  std::vector<std::string> ids;
  for (int i = 0; i < n; ++i) ids.push_back("case-" + std::to_string(i));
  return ids;
}

TEST(ParseShard, AcceptsKOverN) {
  std::string err;
  auto s = parse_shard("2/5", err);
  ASSERT_TRUE(s);
  EXPECT_EQ(s->index, 2);
  EXPECT_EQ(s->count, 5);
}

TEST(ParseShard, RejectsOutOfRangeAndGarbage) {
  for (const char* bad : {"0/3", "4/3", "1/0", "3", "a/b", "1/", "/2", "-1/2", "1/2/3"}) {
    std::string err;
    EXPECT_FALSE(parse_shard(bad, err)) << bad;
    EXPECT_NE(err.find("K/N"), std::string::npos) << bad;
  }
}

TEST(ShardPairs, EveryPairInExactlyOneShard) {
  const auto ids = cases(9);
  for (int n : {1, 2, 3, 5, 40}) {
    std::map<std::pair<std::string, std::string>, int> seen;
    for (int k = 1; k <= n; ++k)
      for (const auto& p : shard_pairs(matrix(), ids, {k, n})) seen[p]++;
    EXPECT_EQ(seen.size(), matrix().size() * ids.size()) << n;
    for (const auto& [p, count] : seen) EXPECT_EQ(count, 1) << p.first << " " << p.second;
  }
}

TEST(ShardPairs, AKernelsCasesStayInOneShard) {
  const auto ids = cases(9);
  for (int n : {2, 3, 4}) {
    std::map<std::string, std::set<int>> shards_of_kernel;
    for (int k = 1; k <= n; ++k)
      for (const auto& [t, c] : shard_pairs(matrix(), ids, {k, n}))
        if (t.rfind("vm:6.12:", 0) == 0) shards_of_kernel["6.12"].insert(k);
        else if (t.rfind("vm:6.1:", 0) == 0) shards_of_kernel["6.1"].insert(k);
    EXPECT_EQ(shards_of_kernel["6.1"].size(), 1u);
    EXPECT_EQ(shards_of_kernel["6.12"].size(), 1u);
    // Two kernels and two or more shards: they boot on different machines.
    EXPECT_NE(*shards_of_kernel["6.1"].begin(), *shards_of_kernel["6.12"].begin());
  }
}

TEST(ShardPairs, SameCutEveryTimeAndBalanced) {
  const auto ids = cases(20);
  std::vector<PlanTarget> t = {{"host:ext4", "host:ext4"}, {"host:xfs", "host:xfs"},
                               {"reference:proposed", "reference:proposed"}};
  size_t smallest = 1000, largest = 0;
  for (int k = 1; k <= 3; ++k) {
    const auto a = shard_pairs(t, ids, {k, 3});
    EXPECT_EQ(a, shard_pairs(t, ids, {k, 3}));
    smallest = std::min(smallest, a.size());
    largest = std::max(largest, a.size());
  }
  EXPECT_EQ(smallest, 20u);  // 60 case runs over 3 shards
  EXPECT_EQ(largest, 20u);
}

TEST(ShardPairs, MoreShardsThanUnitsLeavesSomeEmpty) {
  const std::vector<PlanTarget> t = {{"reference:proposed", "reference:proposed"}};
  EXPECT_EQ(shard_pairs(t, cases(2), {1, 4}).size(), 1u);
  EXPECT_EQ(shard_pairs(t, cases(2), {2, 4}).size(), 1u);
  EXPECT_TRUE(shard_pairs(t, cases(2), {3, 4}).empty());
}

}  // namespace
}  // namespace syncprobe
