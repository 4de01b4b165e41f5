// junit.xml: one <testsuite> per target, one <testcase> per case.
#include "site.h"

#include <fmt/format.h>

#include "syncprobe/report.h"

namespace syncprobe::site {

std::string junit(const Run& r) {
  std::string x = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"syncprobe " +
                  html_escape(r.run.value("id", "")) + "\">\n";
  for (const auto& t : r.targets) {
    const json& tj = r.summary["targets"][t];
    std::string body;
    int failures = 0, skipped = 0, errors = 0;
    for (const auto& c : r.cases) {
      const json& cj = tj["cases"][c];
      if (cj.is_null()) continue;
      body += "  <testcase classname=\"" + html_escape(t) + "\" name=\"" + html_escape(c) + "\">";
      const std::string st = cj.value("status", "");
      if (st == "skipped") {
        ++skipped;
        body += "<skipped message=\"" + html_escape(cj.value("reason", "")) + "\"/>";
      } else if (st == "hung" || st == "error") {
        ++errors;
        body += "<error type=\"" + st + "\" message=\"" + html_escape(cj.value("reason", "")) + "\"/>";
      } else if (cj.value("checks_failed", 0) > 0) {
        ++failures;
        std::string msg;
        for (const auto& e : checks_of(tj, c))
          if (!e["pass"].get<bool>())
            msg += e.value("rule", "") + " step " + std::to_string(e.value("step", 0)) + " (line " + std::to_string(e.value("line", 0)) +
                     ", " + e.value("op", "") + "): expected " + e.value("expect", "") + ", observed " + e.value("observed", "") + "\n";
        body += "<failure type=\"rule violation\" message=\"" + std::to_string(cj.value("checks_failed", 0)) +
                " check(s) failed\">" + html_escape(msg) + "</failure>";
      }
      body += "</testcase>\n";
    }
    x += fmt::format(" <testsuite name=\"{}\" tests=\"{}\" failures=\"{}\" errors=\"{}\" skipped=\"{}\">\n", html_escape(t),
                     tj["cases"].size(), failures, errors, skipped) + body + " </testsuite>\n";
  }
  return x + "</testsuites>\n";
}

}  // namespace syncprobe::site
