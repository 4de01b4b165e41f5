#include "syncprobe/observation.h"

#include "syncprobe/errno_names.h"

namespace syncprobe {

std::string_view to_string(CaseStatus s) {
  switch (s) {
    case CaseStatus::completed: return "completed";
    case CaseStatus::skipped: return "skipped";
    case CaseStatus::hung: return "hung";
    case CaseStatus::error: return "error";
  }
  return "?";
}

std::optional<CaseStatus> case_status_from_string(std::string_view s) {
  for (auto st : {CaseStatus::completed, CaseStatus::skipped, CaseStatus::hung, CaseStatus::error})
    if (to_string(st) == s) return st;
  return std::nullopt;
}

void to_json(nlohmann::json& j, const StepObservation& o) {
  j = nlohmann::json{{"index", o.index},
                     {"line", o.line},
                     {"op", o.op},
                     {"args", o.args},
                     {"ret", o.result.ret},
                     {"errno", o.result.err ? nlohmann::json(errno_name(o.result.err)) : nlohmann::json()},
                     {"hung", o.result.hung},
                     {"duration_ns", o.duration_ns}};
  if (o.result.harness) j["harness"] = o.result.harness;  // syncprobe's machinery, not the kernel
  if (!o.proc.empty()) j["proc"] = o.proc;
  if (o.bytes >= 0) j["bytes"] = o.bytes;
  if (o.data) {
    nlohmann::json parts = nlohmann::json::array();
    for (const auto& [t, n] : o.data->parts) parts.push_back({{"tag", t}, {"bytes", n}});
    j["data"] = {{"tag", o.data->tag}, {"parts", parts}};
  }
  j["fault_layer"] = o.fault_layer.empty() ? nlohmann::json() : nlohmann::json(o.fault_layer);
  j["injected"] = o.injected;
  if (!o.detail.empty()) j["detail"] = o.detail;
  if (!o.error.empty()) j["error"] = o.error;
}

void from_json(const nlohmann::json& j, StepObservation& o) {
  o.index = j.value("index", size_t{0});
  o.line = j.value("line", 0);
  o.op = j.value("op", std::string());
  o.proc = j.value("proc", std::string());
  o.args = j.value("args", nlohmann::json::object());
  o.result.ret = j.value("ret", int64_t{0});
  o.result.hung = j.value("hung", false);
  if (j.contains("harness")) o.result.harness = "harness (origin in `error`)";
  o.result.err = 0;
  if (j.contains("errno") && j["errno"].is_string())
    o.result.err = errno_from_name(j["errno"].get<std::string>()).value_or(-1);
  o.bytes = j.value("bytes", int64_t{-1});
  if (j.contains("data") && j["data"].is_object()) {
    TagReading r;
    r.tag = j["data"].value("tag", std::string());
    for (const auto& p : j["data"].value("parts", nlohmann::json::array()))
      r.parts.emplace_back(p.value("tag", std::string()), p.value("bytes", uint64_t{0}));
    o.data = r;
  }
  o.duration_ns = j.value("duration_ns", uint64_t{0});
  if (j.contains("fault_layer") && j["fault_layer"].is_string())
    o.fault_layer = j["fault_layer"].get<std::string>();
  o.injected = j.value("injected", uint64_t{0});
  o.detail = j.value("detail", nlohmann::json::object());
  o.error = j.value("error", std::string());
}

void to_json(nlohmann::json& j, const CaseResult& r) {
  j = nlohmann::json{{"schema", "syncprobe.case-result/1"},
                     {"case", {{"id", r.case_id}, {"file", r.case_file}, {"hash", r.case_hash}}},
                     {"target", r.target},
                     {"environment", r.environment},
                     {"status", to_string(r.status)},
                     {"reason", r.reason},
                     {"started_at", r.started_at},
                     {"duration_ns", r.duration_ns},
                     {"steps", r.steps}};
}

void from_json(const nlohmann::json& j, CaseResult& r) {
  const auto& c = j.at("case");
  r.case_id = c.value("id", std::string());
  r.case_file = c.value("file", std::string());
  r.case_hash = c.value("hash", std::string());
  r.target = j.value("target", std::string());
  r.environment = j.value("environment", nlohmann::json::object());
  r.status = case_status_from_string(j.value("status", std::string("error"))).value_or(CaseStatus::error);
  r.reason = j.value("reason", std::string());
  r.started_at = j.value("started_at", std::string());
  r.duration_ns = j.value("duration_ns", uint64_t{0});
  r.steps = j.value("steps", std::vector<StepObservation>{});
}

}  // namespace syncprobe
