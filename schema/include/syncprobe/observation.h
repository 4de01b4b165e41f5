#pragma once
// What running a case produced: one observation per step, and the result of
// the case on one target. Serialised as results/<run>/<target>/<case>.json
// (schema in docs/results.md).
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "syncprobe/sysresult.h"
#include "syncprobe/tag.h"

namespace syncprobe {

struct StepObservation {
  size_t index = 0;                // position in the case's steps
  int line = 0;                    // the step's line in the case file
  std::string op;                  // step kind name
  std::string proc;                // process, for in-process steps
  nlohmann::json args = nlohmann::json::object();
  SysResult result;
  int64_t bytes = -1;              // bytes moved by reads and writes; -1 when n/a
  std::optional<TagReading> data;  // what a read returned, by tag
  uint64_t duration_ns = 0;
  std::string fault_layer;         // layer that injected a fault during this step; "" none
  uint64_t injected = 0;           // operations the injector failed/dropped/hung in this step
  nlohmann::json detail = nlohmann::json::object();  // step-specific facts (resolved ranges...)
  std::string error;               // the step could not be carried out (not a syscall failure)
};

enum class CaseStatus { completed, skipped, hung, error };
std::string_view to_string(CaseStatus s);
std::optional<CaseStatus> case_status_from_string(std::string_view s);

struct CaseResult {
  std::string run_id;              // the run that produced it (a results directory holds one run)
  std::string case_id;
  std::string case_file;
  std::string case_hash;
  std::string target;
  nlohmann::json environment = nlohmann::json::object();  // kernel, fs, mount options, injector, policy
  CaseStatus status = CaseStatus::completed;
  std::string reason;              // why skipped / hung / error
  std::vector<StepObservation> steps;
  uint64_t duration_ns = 0;
  std::string started_at;          // ISO 8601 UTC
  // Not written: SIGINT/SIGTERM cut the case short (a step's wait was given
  // up, or the guest was stopped before reporting it). It measured nothing,
  // so the runner does not keep it and --resume runs it again.
  bool cut_short = false;
};

void to_json(nlohmann::json& j, const StepObservation& o);
void from_json(const nlohmann::json& j, StepObservation& o);
void to_json(nlohmann::json& j, const CaseResult& r);
void from_json(const nlohmann::json& j, CaseResult& r);

}  // namespace syncprobe
