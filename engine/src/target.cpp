// Target defaults and the registry: names to backends. Each backend lives in
// its own library under targets/ and is reached only through its TargetKind.
#include <fnmatch.h>

#include <ostream>

#include "syncprobe/clock.h"
#include "syncprobe/target.h"

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

CaseResult new_result(const Target& t, const Case& c) {
  CaseResult r;
  r.case_id = c.id;
  r.case_file = c.file;
  r.case_hash = c.hash;
  r.target = t.name();
  r.environment = t.environment();
  r.started_at = utc_now();
  return r;
}

std::optional<CaseResult> skip_if_unsupported(const Target& t, const Case& c) {
  const auto have = t.capabilities();
  std::vector<std::string> missing;
  for (const auto& cap : c.capabilities())
    if (!have.count(cap)) missing.push_back(cap);
  if (missing.empty()) return std::nullopt;
  CaseResult r = new_result(t, c);
  r.status = CaseStatus::skipped;
  r.reason = "target lacks capability";
  if (missing.size() > 1) r.reason += "ies";
  r.reason += ":";
  for (const auto& m : missing) {
    r.reason += " " + m;
    if (const std::string why = t.lack_reason(m); !why.empty()) r.reason += " (" + why + ")";
  }
  return r;
}

void TargetRegistry::add(TargetKind kind) { kinds_.push_back(std::move(kind)); }

std::unique_ptr<Target> TargetRegistry::make(const std::string& name, std::string& error) const {
  const auto colon = name.find(':');
  const std::string prefix = name.substr(0, colon);
  const std::string spec = colon == std::string::npos ? "" : name.substr(colon + 1);
  for (const auto& k : kinds_)
    if (k.prefix == prefix) return k.make(spec, error);
  error = "unknown target kind '" + prefix + "' in '" + name + "': targets are";
  for (size_t i = 0; i < kinds_.size(); ++i)
    error += (i == 0 ? " " : i + 1 == kinds_.size() ? " or " : ", ") + kinds_[i].syntax;
  error += " (see 'syncprobe list targets')";
  return nullptr;
}

std::vector<std::string> TargetRegistry::known() const {
  std::vector<std::string> all;
  for (const auto& k : kinds_)
    for (auto& n : k.names()) all.push_back(std::move(n));
  return all;
}

std::vector<std::string> TargetRegistry::expand(const std::string& pattern) const {
  if (pattern.find_first_of("*?[") == std::string::npos) return {pattern};
  std::vector<std::string> out;
  for (const auto& t : known())
    if (fnmatch(pattern.c_str(), t.c_str(), 0) == 0) out.push_back(t);
  return out;
}

void TargetRegistry::cleanup_stale(const std::string& scratch_root, std::ostream& log) const {
  for (const auto& k : kinds_)
    if (k.cleanup_stale) k.cleanup_stale(scratch_root, log);
}

}  // namespace syncprobe
