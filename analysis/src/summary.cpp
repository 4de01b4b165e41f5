// The terminal summary: profiles per fault class, rule and fstests verdicts,
// the closest policy. Words come from the taxonomy (schema/), as in the report.
#include <algorithm>
#include <ostream>
#include <set>

#include <fmt/format.h>

#include "syncprobe/classify.h"
#include "syncprobe/taxonomy.h"

namespace syncprobe {
namespace {

using nlohmann::json;

std::string short_env(const json& t) {
  const json& e = t["environment"];
  if (!t.value("measured", true)) return "modelled, not measured";
  std::string s;
  if (e.contains("kernel")) s += "kernel " + e.value("kernel", "");
  if (e.contains("fs")) s += (s.empty() ? "" : ", ") + e.value("fs", "");
  if (!e.value("mount_options", "").empty()) s += " (" + e.value("mount_options", "") + ")";
  if (e.contains("injector")) s += ", " + e.value("injector", "");
  return s;
}

// A verdict in at most 5 columns: pass, FAIL, ?, n/m, -.
std::string short_verdict(const std::string& v) {
  if (v == taxonomy::kFail) return "FAIL";
  if (v == taxonomy::kUnknown) return "?";
  if (v == taxonomy::kNotMeasurable) return "n/m";
  if (v == taxonomy::kNotApplicable) return "-";
  if (v == taxonomy::kNotRun) return "n/r";
  return v;
}

std::string closest(const json& t) {
  const json names = t.value("closest_policies", json::array());
  if (names.empty()) return "-";
  std::string s;
  for (const auto& n : names) s += (s.empty() ? "" : " = ") + n.get<std::string>();
  return names.size() > 1 ? "tie: " + s : s;
}

}  // namespace

void print_summary(const json& summary, std::ostream& out) {
  const json& targets = summary["targets"];
  size_t w = 8;
  for (const auto& [name, t] : targets.items()) w = std::max(w, name.size());

  out << "\nProfiles per fault class (docs/design.md, the taxonomy; rows with any value known)\n";
  out << fmt::format("{:<{}}  {:<13}", "target", w, "fault class");
  for (const auto& a : taxonomy::axes()) out << fmt::format(" {:<18}", a.title);
  out << "\n";
  for (const auto& [name, t] : targets.items()) {
    bool first = true;
    for (const auto& fc : taxonomy::fault_classes()) {
      const std::string cls(fc.id);
      if (!t["profiles"].contains(cls)) continue;
      const json& axes = t["profiles"][cls]["axes"];
      const bool any = std::any_of(axes.begin(), axes.end(),
                                   [](const json& a) { return a.value("value", "") != taxonomy::kUnknown; });
      if (!any) continue;
      out << fmt::format("{:<{}}  {:<13}", first ? name : "", w, cls);
      for (const auto& a : taxonomy::axes()) out << fmt::format(" {:<18}", axes[std::string(a.id)].value("value", "?"));
      out << "\n";
      first = false;
    }
    if (first) out << fmt::format("{:<{}}  (no fault class decided any axis)\n", name, w);
  }

  std::set<std::string> tests;
  for (const auto& [name, t] : targets.items()) {
    const json fstests = t.value("fstests", json::object());
    for (const auto& [test, f] : fstests.items()) tests.insert(test);
  }
  out << "\nRules (pass, FAIL, ? unknown, n/m not measurable here, - none) and fstests (n/r not run)\n";
  out << fmt::format("{:<{}} ", "target", w);
  for (const auto& r : taxonomy::rules()) out << fmt::format(" {:<4}", r.id);
  out << " ";
  for (const auto& test : tests) out << fmt::format(" {:<4}", test.substr(test.find('/') + 1));
  out << "  closest policy; platform\n";
  for (const auto& [name, t] : targets.items()) {
    out << fmt::format("{:<{}} ", name, w);
    for (const auto& r : taxonomy::rules())
      out << fmt::format(" {:<4}", short_verdict(t["rules"].value(std::string(r.id), "n/a")));
    out << " ";
    for (const auto& test : tests) {
      const json f = t.value("fstests", json::object()).value(test, json::object());
      out << fmt::format(" {:<4}", short_verdict(f.value("verdict", "n/a")));
    }
    out << "  " << closest(t) << "; " << short_env(t) << "\n";
  }
  if (!tests.empty()) {
    std::string names;
    for (const auto& test : tests) names += (names.empty() ? "" : ", ") + test;
    out << "fstests columns: " << names << " (what fstests would conclude from the same observations)\n";
  }
  out << "\n";
}

}  // namespace syncprobe
