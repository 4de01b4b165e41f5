// report.ktap: the run in the kernel's test format (KTAP version 1,
// Documentation/dev-tools/ktap.rst), so kernel CI ingests it as it ingests
// kselftest and KUnit output. One result per (target, case) in the plan;
// each completed case nests one subtest per judged check.
#include "site.h"

#include <fmt/format.h>

namespace syncprobe::site {
namespace {

// KTAP descriptions and diagnostics are single lines and a description may
// not contain '#': newlines become spaces and '#' becomes "no.".
std::string ktap_text(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '\n' || c == '\r' || c == '\t') out += ' ';
    else if (c == '#') out += "no.";
    else out += c;
  }
  while (!out.empty() && out.back() == ' ') out.pop_back();
  return out;
}

std::string check_line(size_t n, const json& e) {
  const bool pass = e.value("pass", false);
  std::string line = fmt::format("{} {} {} step {} line {} {}", pass ? "ok" : "not ok", n,
                                 e.value("rule", ""), e.value("step", 0), e.value("line", 0), e.value("op", ""));
  return ktap_text(line) + " # expected " + ktap_text(e.value("expect", "")) + ", observed " +
         ktap_text(e.value("observed", ""));
}

}  // namespace

std::string ktap(const Run& r) {
  struct Item {
    std::string target, c;
  };
  std::vector<Item> items;
  for (const auto& t : r.targets)
    for (const auto& c : r.cases)
      if (!r.target(t)["cases"][c].is_null()) items.push_back({t, c});

  std::string k = "KTAP version 1\n";
  k += "# syncprobe run " + ktap_text(r.run.value("id", "")) + ", syncprobe " +
       ktap_text(r.run.value("syncprobe_version", "")) + "; one test per target and case\n";
  k += fmt::format("1..{}\n", items.size());
  size_t n = 0;
  for (const auto& [t, c] : items) {
    ++n;
    const json& cj = r.target(t)["cases"][c];
    const std::string name = ktap_text(t + " " + c);
    const std::string status = cj.value("status", "");
    const std::string reason = ktap_text(cj.value("reason", ""));
    if (status == "skipped") {
      k += fmt::format("ok {} {} # SKIP {}\n", n, name, reason);
      continue;
    }
    if (status == "hung") {
      k += fmt::format("not ok {} {} # TIMEOUT {}\n", n, name, reason);
      continue;
    }
    if (status != "completed") {
      k += fmt::format("not ok {} {} # ERROR {}\n", n, name, reason);
      continue;
    }
    const std::vector<json> checks = checks_of(r.target(t), c);
    bool failed = cj.value("checks_failed", 0) > 0;
    if (!checks.empty()) {
      k += "  KTAP version 1\n  # Subtest: " + name + "\n" + fmt::format("  1..{}\n", checks.size());
      for (size_t i = 0; i < checks.size(); ++i) {
        k += "  " + check_line(i + 1, checks[i]) + "\n";
        failed = failed || !checks[i].value("pass", false);
      }
    }
    k += fmt::format("{} {} {}", failed ? "not ok" : "ok", n, name);
    if (failed) k += fmt::format(" # {} of {} checks failed", cj.value("checks_failed", 0), checks.size());
    k += "\n";
  }
  return k;
}

}  // namespace syncprobe::site
