// Pins the reference's observable behaviour across rewrites of its insides.
// Seeded random sequences of every operation (opens with every flag, writes
// and reads at odd offsets, every sync call, faults of every kind, cache and
// memory limits, remount, power cut, read-back) run on each policy; every
// result, every byte read and the cache's counters go into a trace. The
// trace's hashes, 100 operations per block, are compared with
// trace_golden.inc, which was written by the implementation before the
// rewrite. A difference names the block and prints it.
//
// To regenerate after an *intended* change of semantics (say why in the
// commit): SYNCPROBE_TRACE_GOLDEN=path/to/trace_golden.inc ./trace_test
// To diff two builds: SYNCPROBE_TRACE_DUMP=dir writes each full trace.
#include <gtest/gtest.h>

#include <cerrno>
#include <cstdio>
#include <fstream>
#include <random>
#include <set>
#include <sstream>

#include "trace_driver.h"

namespace syncprobe::ref::testing {
namespace {

struct Golden {
  const char* policy;
  uint64_t seed;
  std::vector<uint64_t> blocks;
};

const std::vector<Golden>& golden() {
  static const std::vector<Golden> g = {
#include "trace_golden.inc"
  };
  return g;
}

constexpr uint64_t kSeeds[] = {1, 2, 3, 20261124};
constexpr int kOps = 4000;

TEST(Trace, EveryPolicyBehavesAsBeforeTheRewrite) {
  const char* regenerate = std::getenv("SYNCPROBE_TRACE_GOLDEN");
  const char* dump = std::getenv("SYNCPROBE_TRACE_DUMP");
  std::ostringstream inc;
  size_t compared = 0;
  for (const std::string& policy : policy_names()) {
    for (uint64_t seed : kSeeds) {
      SCOPED_TRACE(policy + " seed " + std::to_string(seed));
      const std::vector<std::string> lines = run_trace(policy, seed, kOps);
      ASSERT_EQ(lines.size(), size_t(kOps));
      const std::vector<uint64_t> blocks = block_hashes(lines);
      if (dump) {
        std::ofstream out(std::string(dump) + "/" + policy + "-" + std::to_string(seed) + ".txt");
        for (const auto& l : lines) out << l << "\n";
      }
      if (regenerate) {
        inc << "{\"" << policy << "\", " << seed << "u, {";
        for (size_t i = 0; i < blocks.size(); ++i) inc << (i ? ", " : "") << blocks[i] << "u";
        inc << "}},\n";
        continue;
      }
      const Golden* g = nullptr;
      for (const Golden& x : golden())
        if (x.policy == policy && x.seed == seed) g = &x;
      ASSERT_NE(g, nullptr) << "no golden trace: regenerate trace_golden.inc";
      ASSERT_EQ(g->blocks.size(), blocks.size());
      for (size_t b = 0; b < blocks.size(); ++b) {
        if (g->blocks[b] == blocks[b]) continue;
        std::string text;
        for (size_t i = b * kTraceBlock; i < (b + 1) * kTraceBlock; ++i) text += lines[i] + "\n";
        FAIL() << "behaviour differs in operations " << b * kTraceBlock << ".."
               << (b + 1) * kTraceBlock - 1 << "; this build's trace of them:\n"
               << text;
      }
      ++compared;
    }
  }
  if (regenerate) {
    std::ofstream(regenerate) << "// Written by trace_test (SYNCPROBE_TRACE_GOLDEN); see its header.\n"
                              << inc.str();
    GTEST_SKIP() << "wrote " << regenerate;
  }
  EXPECT_EQ(compared, policy_names().size() * std::size(kSeeds));
}

// The trace is sensitive: a one-byte difference in what a read returns, or
// one errno, changes its hash.
TEST(Trace, HashesSeeEveryLine) {
  std::vector<std::string> lines = run_trace("proposed", 1, 200);
  const auto before = block_hashes(lines);
  lines[150].back() ^= 1;
  const auto after = block_hashes(lines);
  EXPECT_EQ(before[0], after[0]);
  EXPECT_NE(before[1], after[1]);
}

// Different policies give different traces: the sequences reach the code
// where they differ.
TEST(Trace, PoliciesDiffer) {
  for (uint64_t seed : kSeeds) {
    std::set<std::vector<uint64_t>> distinct;
    for (const std::string& policy : policy_names())
      distinct.insert(block_hashes(run_trace(policy, seed, kOps)));
    EXPECT_EQ(distinct.size(), policy_names().size()) << "seed " << seed;
  }
}

}  // namespace
}  // namespace syncprobe::ref::testing
