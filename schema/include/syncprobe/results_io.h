#pragma once
// Reading and writing a results directory (layout in docs/results.md).
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "syncprobe/case.h"
#include "syncprobe/observation.h"

namespace syncprobe {

// Writes `content` to `path` so that readers see the old file or the whole
// new one: a temporary file beside it, fsync, rename, fsync of the directory.
// Creates missing parent directories. Throws std::runtime_error (with the
// path and errno name) on failure.
void write_file_atomic(const std::string& path, const std::string& content);

// A JSON file of a results directory (summary.json, bench.json). Throws
// std::runtime_error naming the file when it cannot be read or parsed.
nlohmann::json read_json_file(const std::string& path);

// The relative path of a case result: "<target>/<case-id>.json".
std::string result_path(const std::string& target, const std::string& case_id);

// A results directory as read back: run.json, every case result, summary.json.
struct RunResults {
  std::string dir;
  nlohmann::json run;                                 // run.json ({} if absent)
  std::map<std::string, Case> cases;                  // from run.json "cases"
  // target -> case id -> result
  std::map<std::string, std::map<std::string, CaseResult>> results;
};

// Throws std::runtime_error naming the file when the directory or a file in
// it cannot be read or parsed.
RunResults load_run(const std::string& dir);

}  // namespace syncprobe
