#pragma once
// Sharding a run: the plan (targets × cases) cut into N deterministic slices
// so that N machines, each running `syncprobe run --shard K/N` with the same
// catalogue and targets, together run every (target, case) exactly once.
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

namespace syncprobe {

struct Shard {
  int index = 1;  // K, 1-based
  int count = 1;  // N
};
// Parses "K/N" (1 <= K <= N); nullopt with `error` saying why otherwise.
std::optional<Shard> parse_shard(const std::string& text, std::string& error);

// A target as the planner sees it: targets that share a batch key other than
// their own name (the VM targets of one kernel) run under one setup.
struct PlanTarget {
  std::string name;
  std::string batch_key;
};

// The (target, case id) pairs of shard `s`. The plan is cut into units: every
// batch group with all its cases is one unit (so a shard boots each kernel at
// most once); every other target gives one unit per case. Units are dealt in
// plan order (batch groups first, then targets and cases in the order given),
// each to the shard with the fewest case runs so far, the lowest K on a tie.
// Depends only on its arguments: every shard computes the same cut.
std::set<std::pair<std::string, std::string>> shard_pairs(const std::vector<PlanTarget>& targets,
                                                          const std::vector<std::string>& case_ids,
                                                          Shard s);

}  // namespace syncprobe
