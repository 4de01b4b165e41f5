// summary.md: the profile and rule tables in Markdown.
#include "site.h"


#include "syncprobe/report.h"

namespace syncprobe::site {

std::string markdown(const Run& r) {
  std::string m = "# syncprobe run " + r.run.value("id", "") + "\n\nHost kernel " + r.run["host"].value("kernel", "?") +
                  ". Reference policies are modelled, not measured.\n\n| target | platform |";
  for (const auto& a : kAxes) m += " " + axis_title(a) + " |";
  m += " closest policy |\n|---|---|";
  for (size_t i = 0; i < kAxes.size() + 1; ++i) m += "---|";
  m += "\n";
  for (const auto& t : r.targets) {
    const json& tj = r.summary["targets"][t];
    const json& e = tj["environment"];
    m += "| " + t + " | " + (tj.value("measured", false) ? e.value("fs", "") + " on " + e.value("kernel", "") + ", " + e.value("injector", "") : "modelled") + " |";
    for (const auto& a : kAxes) m += " " + tj["profile"].value(a, "unknown") + " |";
    m += " " + closest_text(tj) + " |\n";
  }
  const std::vector<std::string> tests = fstests_tests(r.summary);
  m += "\n| target |";
  for (const auto& rule : kRules) m += " " + rule + " |";
  for (const auto& test : tests) m += " fstests " + test + " |";
  m += "\n|---|";
  for (size_t i = 0; i < kRules.size() + tests.size(); ++i) m += "---|";
  m += "\n";
  for (const auto& t : r.targets) {
    const json& tj = r.summary["targets"][t];
    m += "| " + t + " |";
    for (const auto& rule : kRules) m += " " + symbol(tj["rules"].value(rule, "n/a")) + " |";
    const json fstests = tj.value("fstests", json::object());
    for (const auto& test : tests) m += " " + symbol(fstests.value(test, json::object()).value("verdict", "n/a")) + " |";
    m += "\n";
  }
  return m;
}

}  // namespace syncprobe::site
