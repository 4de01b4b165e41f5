#pragma once
// The HTML report, JUnit XML and Markdown summary of a run, from its JSON alone.
#include <iosfwd>
#include <optional>
#include <string>

namespace syncprobe {

struct ReportOptions {
  std::string results_dir;                 // RUN_A with --compare
  std::string out_dir;                     // default: reports/<run-id> under the current directory
  std::optional<std::string> compare_with; // RUN_B
};
// Writes the report; returns 0, 2 when the results cannot be read, 1 when
// the report cannot be written. Progress and the report's path go to `out`.
int write_report(const ReportOptions& opts, std::ostream& out, std::ostream& err);

// junit.xml and report.ktap of the classified run in `results_dir`, written
// beside its summary.json: what `syncprobe run`, `classify` and `merge`
// leave for CI systems (kernel CI reads KTAP as it reads kselftest output).
// "" on success, else why not.
std::string write_test_formats(const std::string& results_dir);

// Text made safe for HTML content and attribute values.
std::string html_escape(const std::string& s);

}  // namespace syncprobe
