#include "syncprobe/plan.h"

#include <map>

namespace syncprobe {

std::optional<Shard> parse_shard(const std::string& text, std::string& error) {
  const auto slash = text.find('/');
  auto number = [](const std::string& s) -> int {
    if (s.empty() || s.size() > 6 || s.find_first_not_of("0123456789") != std::string::npos) return 0;
    return std::stoi(s);
  };
  const int k = slash == std::string::npos ? 0 : number(text.substr(0, slash));
  const int n = slash == std::string::npos ? 0 : number(text.substr(slash + 1));
  if (k < 1 || n < 1 || k > n) {
    error = "--shard '" + text + "': expected K/N with 1 <= K <= N (e.g. --shard 2/4)";
    return std::nullopt;
  }
  return Shard{k, n};
}

std::set<std::pair<std::string, std::string>> shard_pairs(const std::vector<PlanTarget>& targets,
                                                          const std::vector<std::string>& case_ids,
                                                          Shard s) {
  using Pairs = std::vector<std::pair<std::string, std::string>>;
  std::vector<Pairs> units;
  // Batch groups, in order of their first target.
  std::map<std::string, size_t> members;
  for (const auto& t : targets) members[t.batch_key]++;
  std::map<std::string, size_t> group_unit;
  for (const auto& t : targets) {
    const bool batched = t.batch_key != t.name || members[t.batch_key] > 1;
    if (!batched) continue;
    auto [it, added] = group_unit.emplace(t.batch_key, units.size());
    if (added) units.emplace_back();
    for (const auto& c : case_ids) units[it->second].emplace_back(t.name, c);
  }
  for (const auto& t : targets) {
    if (group_unit.count(t.batch_key)) continue;
    for (const auto& c : case_ids) units.push_back({{t.name, c}});
  }
  std::vector<size_t> load(size_t(s.count), 0);
  std::set<std::pair<std::string, std::string>> mine;
  for (auto& unit : units) {
    size_t best = 0;
    for (size_t k = 1; k < load.size(); ++k)
      if (load[k] < load[best]) best = k;
    load[best] += unit.size();
    if (best + 1 == size_t(s.index)) mine.insert(unit.begin(), unit.end());
  }
  return mine;
}

}  // namespace syncprobe
