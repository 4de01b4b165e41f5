// `syncprobe list cases|steps|targets|policies|capabilities|taxonomy`.
#include <map>
#include <ostream>

#include <fmt/format.h>

#include "syncprobe/case_parser.h"
#include "syncprobe/commands.h"
#include "syncprobe/paths.h"
#include "syncprobe/registry.h"
#include "syncprobe/reference_storage.h"
#include "syncprobe/target.h"
#include "syncprobe/taxonomy.h"

namespace syncprobe {
namespace {

std::string arg_line(const ArgSpec& a) {
  std::string s = fmt::format("    {:<12} {:<7} ", a.name, to_string(a.type));
  if (a.required) s += "required";
  else if (!a.default_value.empty()) s += "default " + std::string(a.default_value);
  else s += "optional";
  s += "  " + std::string(a.help);
  if (!a.choices.empty()) {
    s += " [";
    for (size_t i = 0; i < a.choices.size(); ++i) s += (i ? "|" : "") + std::string(a.choices[i]);
    s += "]";
  }
  return s;
}

}  // namespace

int list_command(const std::string& what, const std::string& cases_dir, std::ostream& out,
                 std::ostream& err) {
  if (what == "cases") {
    const auto capabilities = capability_table(err);
    if (!capabilities) return 2;
    ParseOutcome p = load_cases(cases_dir, &*capabilities);
    for (const auto& e : p.errors) err << e.format() << "\n";
    if (!p.ok()) return 2;
    for (const auto& c : p.cases) {
      std::string caps;
      for (const auto& cap : c.capabilities()) caps += (caps.empty() ? "" : " ") + cap;
      out << fmt::format("{:<40} {}\n{:<40} needs: {}\n", c.id, c.title, "", caps);
    }
    out << p.cases.size() << " cases in " << cases_dir << "\n";
    return 0;
  }
  if (what == "steps") {
    for (const auto& s : step_table()) {
      out << s.name << (s.in_process ? "" : "  (machine-wide)") << "\n    " << s.help << "\n";
      if (!s.capability.empty()) out << "    needs capability: " << s.capability << "\n";
      for (const auto& a : s.args) out << arg_line(a) << "\n";
    }
    out << "\nevery step also takes:\n";
    for (const auto& a : common_args()) out << arg_line(a) << "\n";
    return 0;
  }
  if (what == "targets") {
    for (const auto& name : registry().known()) {
      std::string error;
      auto t = registry().make(name, error);
      if (!t) {
        out << fmt::format("{:<28} error: {}\n", name, error);
        continue;
      }
      const Availability a = t->availability();
      out << fmt::format("{:<28} {:<9} {}\n", name, t->measured() ? "measured" : "modelled",
                         a.available ? "available" : "unavailable: " + a.reason);
    }
    return 0;
  }
  if (what == "policies") {
    for (const auto& p : reference_policies())
      out << fmt::format("{:<12} {}\n", p, reference_policy_summary(p));
    return 0;
  }
  if (what == "capabilities") {
    // Each capability with the targets that declare it; a target declaring a
    // name the list lacks is a bug in that backend (exit 1).
    const auto capabilities = capability_table(err);
    if (!capabilities) return 2;
    std::map<std::string, std::vector<std::string>> declared_by;
    int unknown = 0;
    for (const auto& name : registry().known()) {
      std::string error;
      auto t = registry().make(name, error);
      if (!t) continue;
      for (const auto& cap : t->capabilities()) {
        if (!capabilities->count(cap)) {
          err << "syncprobe list: target " << name << " declares unknown capability '" << cap
              << "' (add it to data/capabilities.toml or fix the target)\n";
          ++unknown;
        }
        declared_by[cap].push_back(name);
      }
    }
    for (const auto& [cap, desc] : *capabilities) {
      out << fmt::format("{:<18} {}\n", cap, desc);
      const auto& ts = declared_by[cap];
      out << fmt::format("{:<18} targets: {}\n", "", ts.empty() ? "none" : std::to_string(ts.size()));
    }
    return unknown ? 1 : 0;
  }
  if (what == "taxonomy") {
    // The one declaration (schema/taxonomy.h) that the classifier, the report and docs/ follow.
    out << "rules\n";
    for (const auto& r : taxonomy::rules()) out << fmt::format("  {} {:<15} {}\n", r.id, r.name, r.text);
    for (const auto& a : taxonomy::axes()) {
      out << "axis " << a.id << " (" << a.title << ")\n";
      for (const auto& v : a.values) out << fmt::format("  {:<19} {}\n", v.name, v.meaning);
    }
    out << fmt::format("any axis\n  {:<19} no case decided it (the reason is given)\n  {:<19} the cases that "
                       "measure it disagree\n", taxonomy::kUnknown, taxonomy::kDisagree);
    out << "rule verdicts\n";
    for (const auto& v : taxonomy::rule_verdicts()) out << fmt::format("  {:<19} {}\n", v.name, v.meaning);
    out << "fstests verdicts\n";
    for (const auto& v : taxonomy::fstests_verdicts()) out << fmt::format("  {:<19} {}\n", v.name, v.meaning);
    out << "fault classes (the headline profile is " << taxonomy::kHeadlineClass << ")\n";
    for (const auto& c : taxonomy::fault_classes())
      out << fmt::format("  {:<13} {}: {}\n", c.id, c.title, c.meaning);
    return 0;
  }
  err << "syncprobe list: unknown '" << what << "': choose cases, steps, targets, policies, capabilities or taxonomy\n";
  return 2;
}

}  // namespace syncprobe
