// The target registry: names to backends. Each backend lives in its own
// library (reference/, host/, vm/) and is reached only through its factory.
#include <algorithm>
#include <fnmatch.h>

#include "syncprobe/host_target.h"
#include "syncprobe/reference_storage.h"
#include "syncprobe/reference_target.h"
#include "syncprobe/target.h"
#include "syncprobe/vm_target.h"

namespace syncprobe {

std::vector<CaseResult> Target::run_all(const std::vector<const Case*>& cases,
                                        const RunContext& ctx) {
  std::vector<CaseResult> out;
  out.reserve(cases.size());
  for (const Case* c : cases) {
    if (auto skipped = skip_if_unsupported(*this, *c)) {
      out.push_back(std::move(*skipped));
      continue;
    }
    out.push_back(run(*c, ctx));
  }
  return out;
}

std::map<std::string, std::vector<CaseResult>> Target::run_batch(
    const std::vector<Target*>& targets, const std::vector<const Case*>& cases,
    const RunContext& ctx) {
  std::map<std::string, std::vector<CaseResult>> out;
  for (Target* t : targets) out[t->name()] = t->run_all(cases, ctx);
  return out;
}

std::optional<CaseResult> skip_if_unsupported(const Target& t, const Case& c) {
  const auto have = t.capabilities();
  std::vector<std::string> missing;
  for (const auto& cap : c.capabilities())
    if (!have.count(cap)) missing.push_back(cap);
  if (missing.empty()) return std::nullopt;
  CaseResult r;
  r.case_id = c.id;
  r.case_file = c.file;
  r.case_hash = c.hash;
  r.target = t.name();
  r.environment = t.environment();
  r.status = CaseStatus::skipped;
  r.reason = "target lacks capability";
  if (missing.size() > 1) r.reason += "ies";
  r.reason += ":";
  for (const auto& m : missing) r.reason += " " + m;
  return r;
}

std::unique_ptr<Target> make_target(const std::string& name, std::string& error) {
  const auto colon = name.find(':');
  const std::string kind = name.substr(0, colon);
  const std::string spec = colon == std::string::npos ? "" : name.substr(colon + 1);
  if (kind == "reference") return make_reference_target(spec, error);
  if (kind == "host") return make_host_target(spec, error);
  if (kind == "vm") return make_vm_target(spec, error);
  error = "unknown target kind '" + kind + "' in '" + name +
          "': targets are reference:<policy>, host:<fs>[:<options>] or vm:<kernel>:<fs> "
          "(see 'syncprobe list targets')";
  return nullptr;
}

std::vector<std::string> known_targets() {
  std::vector<std::string> all;
  for (const auto& p : reference_policies()) all.push_back("reference:" + p);
  for (const auto& h : host_target_names()) all.push_back(h);
  for (const auto& v : vm_target_names()) all.push_back(v);
  return all;
}

std::vector<std::string> expand_target_pattern(const std::string& pattern) {
  if (pattern.find_first_of("*?[") == std::string::npos) return {pattern};
  std::vector<std::string> out;
  for (const auto& t : known_targets())
    if (fnmatch(pattern.c_str(), t.c_str(), 0) == 0) out.push_back(t);
  return out;
}

}  // namespace syncprobe
