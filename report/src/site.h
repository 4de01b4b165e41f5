#pragma once
// Internal to report/: a run as the report reads it (through schema/results_io
// only) and the helpers every page and writer shares.
#include <filesystem>
#include <iosfwd>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "syncprobe/results_io.h"

namespace syncprobe::site {

namespace fs = std::filesystem;
using json = nlohmann::json;

extern const std::vector<std::string> kAxes;   // taxonomy axes, in column order
extern const std::vector<std::string> kRules;  // R1..R7
std::string axis_title(const std::string& axis);
// The closest policy as shown ("linux-4.17", "tie: linux-4.13 = linux-4.17"),
// and the one a case page sets the steps beside (the first of a tie).
std::string closest_text(const json& target_summary);
std::string closest_for_steps(const json& target_summary);
// The fstests tests any target of the run has a verdict for, sorted.
std::vector<std::string> fstests_tests(const json& summary);

struct Run {
  fs::path dir;
  json run, summary;
  json bench;                        // null when the run has no bench.json
  std::vector<std::string> targets;  // summary order: measured first, then reference
  std::vector<std::string> cases;    // run.json order (sorted ids)
  RunResults results;
  // The result of `c` on `target` as JSON (docs/results.md); null when absent.
  json result(const std::string& target, const std::string& c) const;
  const json& target(const std::string& t) const { return summary["targets"][t]; }
  // The summary of (t, c), or null when the run has none (a partial run):
  // never const operator[] on a key that may be absent.
  const json& case_of(const std::string& t, const std::string& c) const {
    static const json kNone;
    if (!summary.contains("targets") || !summary["targets"].contains(t)) return kNone;
    const json& tj = summary["targets"][t];
    if (!tj.contains("cases") || !tj["cases"].is_object() || !tj["cases"].contains(c)) return kNone;
    return tj["cases"][c];
  }
};

// Reads DIR (run.json, summary.json, the results, bench.json if present).
// On failure writes a message naming the file and the fix to `err` and returns false.
bool load(const std::string& dir, Run& r, std::ostream& err);

// The judged checks of case `c` in a target's summary, in step order: the
// evidence entries that carry "pass".
std::vector<json> checks_of(const json& target_summary, const std::string& c);

void write_file(const fs::path& p, const std::string& text);
std::string read_text(const fs::path& p);

// HTML building blocks.
std::string page(const std::string& title, const std::string& body);
std::string value_class(const std::string& v);  // good | bad | mid | none
std::string symbol(const std::string& verdict);  // "✓ pass", "✗ fail", "? unknown", "○ not run", "– n/a"
std::string status_symbol(const std::string& status);
std::string target_slug(const std::string& t);  // a target name usable as a file name
std::string case_href(const std::string& target, const std::string& c);
std::string fmt_ns(double ns);
std::string platform_cell(const json& target_summary);
std::string observed_cell(const json& observation);
// A step's return value; a step that never returned (killed, harness
// failure) may carry a null "ret", which reads as 0 (no failure count).
long ret_of(const json& observation);
std::string outcome_key(const json& observation);  // "opened", "hung", "-1 EIO", "0 tag A": what two runs of a step are compared by, as shown
std::string args_text(const json& args);

// Pages and files, each from the loaded run.
std::string index_page(const Run& r);
std::string apps_section(const Run& r);  // "" when the run has no application rows
// Kernel cases with a libfiu fault, apart from every verdict; "" when none ran.
std::string libfiu_contrast_section(const Run& r);
std::string target_page(const Run& r, const std::string& t);
std::string case_page(const Run& r, const std::string& t, const std::string& c);
std::string junit(const Run& r);
std::string ktap(const Run& r);
std::string markdown(const Run& r);
// compare.html in `out`; the differences as text lines to `o`.
void compare(const Run& a, const Run& b, const fs::path& out, std::ostream& o);

}  // namespace syncprobe::site
