#include "syncprobe/case.h"

#include <nlohmann/json.hpp>

namespace syncprobe {
namespace {

std::vector<std::string> split_list(const std::string& s) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= s.size() && !s.empty()) {
    size_t comma = s.find(',', start);
    if (comma == std::string::npos) comma = s.size();
    if (comma > start) out.push_back(s.substr(start, comma - start));
    start = comma + 1;
  }
  return out;
}

}  // namespace

std::vector<std::string> Step::list_args(const std::string& name) const {
  return split_list(arg(name));
}

std::string Step::arg(const std::string& name) const {
  auto it = args.find(name);
  return it == args.end() ? std::string() : it->second;
}

uint64_t Step::size_arg(const std::string& name) const {
  uint64_t v = 0;
  if (!parse_size(arg(name), v)) return 0;
  return v;
}

std::set<std::string> step_capabilities(const Step& step) {
  std::set<std::string> caps;
  const StepSpec& spec = step_spec(step.kind);
  if (!spec.capability.empty()) caps.insert(std::string(spec.capability));
  if (spec.in_process && step.proc != "a") caps.insert("second-process");
  if (step.kind == StepKind::open) {
    for (const auto& f : step.list_args("flags"))
      if (f == "direct") caps.insert("direct-io");
  }
  if (step.kind == StepKind::fault) {
    const std::string range = step.arg("range");
    caps.insert("fault:" + step.arg("io"));
    if (step.arg("mode") != "error") caps.insert("fault:" + step.arg("mode"));
    if (range != "device") caps.insert("fault:" + range);  // fault:data, fault:free...
    // A device error other than EIO needs an injector that can return it
    // (libfiu sets any errno itself).
    if (range != "libfiu" && step.arg("mode") == "error" && !step.arg("errno").empty() &&
        step.arg("errno") != "EIO")
      caps.insert("fault:errno");
  }
  if (step.kind == StepKind::app) caps.insert("app:" + step.arg("program"));
  return caps;
}

std::set<std::string> Case::capabilities() const {
  std::set<std::string> caps(requires_.begin(), requires_.end());
  for (const auto& s : steps) {
    auto sc = step_capabilities(s);
    caps.insert(sc.begin(), sc.end());
  }
  return caps;
}

void to_json(nlohmann::json& j, const Step& s) {
  j = nlohmann::json{{"op", step_spec(s.kind).name}, {"line", s.line}, {"column", s.column},
                     {"args", s.args}};
  if (!s.proc.empty()) j["proc"] = s.proc;
  if (!s.probe.empty()) j["probe"] = s.probe;
  if (!s.note.empty()) j["note"] = s.note;
  if (s.check) {
    j["check"] = {{"rule", s.check->rule}};
    if (!s.check->expect.empty()) j["check"]["expect"] = s.check->expect;
    if (!s.check->expect_tag.empty()) j["check"]["expect_tag"] = s.check->expect_tag;
    if (!s.check->proof.empty()) j["check"]["proof"] = s.check->proof;
  }
}

void from_json(const nlohmann::json& j, Step& s) {
  const std::string op = j.at("op").get<std::string>();
  const StepSpec* spec = find_step(op);
  if (!spec) throw std::runtime_error("unknown step op '" + op + "'");
  s.kind = spec->kind;
  s.line = j.value("line", 0);
  s.column = j.value("column", 0);
  s.args = j.value("args", std::map<std::string, std::string>{});
  s.proc = j.value("proc", std::string());
  s.probe = j.value("probe", std::string());
  s.note = j.value("note", std::string());
  if (j.contains("check")) {
    const auto& c = j["check"];
    s.check = Check{c.value("rule", std::string()), c.value("expect", std::string()),
                    c.value("expect_tag", std::string()), c.value("proof", std::string())};
  }
}

void to_json(nlohmann::json& j, const FstestsCondition& f) {
  j = nlohmann::json{{"test", f.test}, {"passes_when", f.passes_when}, {"expect", nlohmann::json::array()}};
  if (!f.not_checked.empty()) j["not_checked"] = f.not_checked;
  if (!f.not_run_on.empty()) j["not_run_on"] = f.not_run_on;
  for (const auto& e : f.expect) {
    nlohmann::json x = {{"expect", e.expect}, {"line", e.line}, {"column", e.column}};
    if (e.one_of) x["one_of"] = e.probes;
    else x["probe"] = e.probes.empty() ? std::string() : e.probes[0];
    j["expect"].push_back(std::move(x));
  }
}

void from_json(const nlohmann::json& j, FstestsCondition& f) {
  f.test = j.value("test", std::string());
  f.passes_when = j.value("passes_when", std::string());
  f.not_checked = j.value("not_checked", std::string());
  f.not_run_on = j.value("not_run_on", std::vector<std::string>{});
  f.expect.clear();
  for (const auto& x : j.value("expect", nlohmann::json::array())) {
    FstestsExpectation e;
    e.expect = x.value("expect", std::string());
    e.line = x.value("line", 0);
    e.column = x.value("column", 0);
    if (x.contains("one_of")) {
      e.one_of = true;
      e.probes = x["one_of"].get<std::vector<std::string>>();
    } else {
      e.probes = {x.value("probe", std::string())};
    }
    f.expect.push_back(std::move(e));
  }
}

void to_json(nlohmann::json& j, const Case& c) {
  j = nlohmann::json{{"id", c.id},           {"title", c.title}, {"description", c.description},
                     {"file", c.file},       {"hash", c.hash},   {"rules", c.rules},
                     {"axes", c.axes},       {"requires", c.requires_},
                     {"references", c.references}, {"steps", c.steps}};
  if (c.fstests) j["fstests"] = *c.fstests;
}

void from_json(const nlohmann::json& j, Case& c) {
  c.id = j.at("id").get<std::string>();
  c.title = j.value("title", std::string());
  c.description = j.value("description", std::string());
  c.file = j.value("file", std::string());
  c.hash = j.value("hash", std::string());
  c.rules = j.value("rules", std::vector<std::string>{});
  c.axes = j.value("axes", std::vector<std::string>{});
  c.requires_ = j.value("requires", std::vector<std::string>{});
  c.references = j.value("references", std::vector<std::string>{});
  c.steps = j.value("steps", std::vector<Step>{});
  c.fstests.reset();
  if (j.contains("fstests")) c.fstests = j["fstests"].get<FstestsCondition>();
}

}  // namespace syncprobe
