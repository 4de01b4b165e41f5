// `syncprobe merge RUN... -o OUT`: result directories of one plan (the
// shards of `run --shard K/N`, or runs of one catalogue on other targets)
// combined into one run that classifies and reports as if it had run at once.
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <ostream>
#include <set>

#include <fmt/format.h>

#include "syncprobe/classify.h"
#include "syncprobe/commands.h"
#include "syncprobe/report.h"
#include "syncprobe/results_io.h"

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace syncprobe {
namespace {

struct Input {
  std::string dir;
  RunResults results;  // run.json and every case result
  const json& run() const { return results.run; }
};

// The first difference between two runs' catalogues, "" when they agree.
std::string catalogue_difference(const Input& a, const Input& b) {
  const json& ca = a.run()["cases"];
  const json& cb = b.run()["cases"];
  for (const auto& [id, c] : ca.items()) {
    if (!cb.contains(id)) return "case " + id + " is in " + a.dir + " but not in " + b.dir;
    if (c.value("hash", "") != cb[id].value("hash", ""))
      return "case " + id + " differs (sha256 " + c.value("hash", "").substr(0, 12) + "… in " + a.dir + ", " +
             cb[id].value("hash", "").substr(0, 12) + "… in " + b.dir + ")";
  }
  for (const auto& [id, c] : cb.items())
    if (!ca.contains(id)) return "case " + id + " is in " + b.dir + " but not in " + a.dir;
  return "";
}

// Why these runs cannot be one run, or "" when they can.
std::string refusal(const std::vector<Input>& in) {
  const Input& first = in.front();
  for (const Input& i : in) {
    if (i.run().value("schema", "") != "syncprobe.run/1")
      return i.dir + "/run.json is not a run written by `syncprobe run` (schema syncprobe.run/1)";
    if (i.run().contains("interrupted_by_signal"))
      return i.dir + " was interrupted (signal " + i.run()["interrupted_by_signal"].dump() +
             ") and holds partial results: run it again";
    if (i.run().value("syncprobe_version", "") != first.run().value("syncprobe_version", ""))
      return i.dir + " was written by syncprobe " + i.run().value("syncprobe_version", "?") + ", " + first.dir +
             " by " + first.run().value("syncprobe_version", "?") + ": runs of different versions are not merged";
    if (auto d = catalogue_difference(first, i); !d.empty())
      return "different case catalogues: " + d;
  }
  // Shards: all of one plan, each exactly once.
  const bool sharded = first.run().contains("shard");
  std::map<int, std::string> seen;
  for (const Input& i : in) {
    if (i.run().contains("shard") != sharded)
      return (sharded ? i.dir : first.dir) + " is not a shard, " + (sharded ? first.dir : i.dir) +
             " is: merge the shards of one run together";
    if (!sharded) continue;
    const json& s = i.run()["shard"];
    const int k = s.value("index", 0), n = s.value("count", 0);
    if (n != first.run()["shard"].value("count", 0))
      return fmt::format("{} is shard {}/{}, {} one of {}: shards of different plans", i.dir, k, n, first.dir,
                         first.run()["shard"].value("count", 0));
    std::set<std::string> ta, tb;
    for (const auto& [t, v] : i.run()["targets"].items()) ta.insert(t);
    for (const auto& [t, v] : first.run()["targets"].items()) tb.insert(t);
    if (ta != tb) return i.dir + " and " + first.dir + " planned different targets: shards of different runs";
    if (auto [it, added] = seen.emplace(k, i.dir); !added)
      return fmt::format("shard {}/{} given twice ({} and {})", k, n, it->second, i.dir);
    size_t have = 0;
    for (const auto& [t, byc] : i.results.results) have += byc.size();
    if (have != s.value("case_runs", size_t(0)))
      return fmt::format("{} (shard {}/{}) holds {} of its {} case results: it did not finish; run it again", i.dir,
                         k, n, have, s.value("case_runs", 0));
  }
  if (sharded)
    for (int k = 1; k <= first.run()["shard"].value("count", 0); ++k)
      if (!seen.count(k))
        return fmt::format("shard {}/{} is missing: merge every shard of the run", k,
                           first.run()["shard"].value("count", 0));
  // Each (target, case) once; a target on one platform.
  std::map<std::pair<std::string, std::string>, std::string> owner;
  std::map<std::string, std::pair<json, std::string>> platform;
  for (const Input& i : in)
    for (const auto& [t, byc] : i.results.results) {
      const json env = i.run()["targets"][t].value("environment", json::object());
      auto [p, added] = platform.emplace(t, std::make_pair(env, i.dir));
      if (!added && p->second.first != env)
        return t + " ran on different platforms: " + p->second.first.dump() + " in " + p->second.second + ", " +
               env.dump() + " in " + i.dir;
      for (const auto& [c, r] : byc)
        if (auto [o, fresh] = owner.emplace(std::make_pair(t, c), i.dir); !fresh)
          return t + " " + c + " has results in both " + o->second + " and " + i.dir;
    }
  return "";
}

// A result carries the id of the run it belongs to: now the merged run's,
// with the part's id kept beside it. Other files are copied as they are.
std::string restamped(const std::string& text, const std::string& run_id) {
  json j = json::parse(text);
  if (!j.is_object() || !j.contains("run_id")) return text;
  j["part_run_id"] = j["run_id"];
  j["run_id"] = run_id;
  return j.dump(2);
}

}  // namespace

int merge_command(const std::vector<std::string>& dirs, const std::string& out_dir,
                  const std::vector<std::string>& command_line, std::ostream& out, std::ostream& err) {
  std::vector<Input> in;
  for (const auto& d : dirs) {
    if (!fs::exists(fs::path(d) / "run.json")) {
      err << "syncprobe merge: " << d << " has no run.json: is it a directory written by `syncprobe run`?\n";
      return 2;
    }
    try {
      const json run = read_json_file((fs::path(d) / "run.json").string());
      if (run.contains("shard") && run["shard"].value("case_runs", 1) == 0) {
        in.push_back({d, RunResults{d, run, {}, {}}});  // a shard with nothing to run
        continue;
      }
      in.push_back({d, load_run(d)});
    } catch (const std::exception& e) {
      err << "syncprobe merge: " << e.what() << "\n";
      return 2;
    }
  }
  if (auto why = refusal(in); !why.empty()) {
    err << "syncprobe merge: " << why << "\n";
    return 2;
  }
  std::error_code ec;
  if (fs::exists(out_dir) && !fs::is_empty(out_dir, ec)) {
    err << "syncprobe merge: " << out_dir << " exists and is not empty: name a new directory with -o\n";
    return 2;
  }

  // run.json: the first input's, with the union of targets that have results
  // and where each part came from.
  json run = in.front().run();
  run.erase("shard");
  run["id"] = new_run_id();
  run["command"] = command_line;
  json parts = json::array();
  json targets = json::object();
  size_t results = 0;
  for (const Input& i : in) {
    const json& r = i.run();
    run["started_at"] = std::min(run.value("started_at", ""), r.value("started_at", ""));
    run["finished_at"] = std::max(run.value("finished_at", ""), r.value("finished_at", ""));
    json part = {{"id", r.value("id", "")}, {"dir", i.dir}, {"host", r.value("host", json::object())},
                 {"started_at", r.value("started_at", "")}, {"finished_at", r.value("finished_at", "")}};
    if (r.contains("shard")) part["shard"] = r["shard"];
    parts.push_back(part);
    for (const auto& [t, v] : r["targets"].items())
      if (i.results.results.count(t) || (!targets.contains(t) && in.front().run().contains("shard")))
        targets[t] = v;
    // Results and the files beside them (a VM target's console log), copied as written.
    for (const auto& [t, byc] : i.results.results) {
      results += byc.size();
      for (const auto& f : fs::directory_iterator(fs::path(i.dir) / t)) {
        const std::string name = f.path().filename().string();
        if (!f.is_regular_file() || name.front() == '.') continue;
        std::ifstream src(f.path(), std::ios::binary);
        std::string text{std::istreambuf_iterator<char>(src), std::istreambuf_iterator<char>()};
        if (f.path().extension() == ".json") text = restamped(text, run.value("id", ""));
        write_file_atomic((fs::path(out_dir) / t / name).string(), text);
      }
    }
  }
  run["targets"] = targets;
  run["merged_from"] = parts;
  write_file_atomic(out_dir + "/run.json", run.dump(2));
  out << fmt::format("syncprobe: merged {} runs ({} case runs) into run {} -> {}\n", in.size(), results,
                     run.value("id", ""), out_dir);
  try {
    const json summary = classify(load_run(out_dir));
    write_file_atomic(out_dir + "/summary.json", summary.dump(2));
    print_summary(summary, out);
    if (const std::string why = write_test_formats(out_dir); !why.empty()) {
      err << "syncprobe merge: cannot write junit.xml and report.ktap: " << why << "\n";
      return 1;
    }
  } catch (const std::exception& e) {
    err << "syncprobe merge: classification failed: " << e.what() << "\n";
    return 1;
  }
  return 0;
}

}  // namespace syncprobe
