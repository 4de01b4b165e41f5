// index.html: the headline table, the rules and case matrices, latency, benchmarks.
#include "across_kernels.h"
#include "site.h"

#include <algorithm>
#include <cmath>
#include <filesystem>

#include <fmt/format.h>

#include "syncprobe/report.h"
#include "syncprobe/taxonomy.h"

namespace syncprobe::site {
namespace {

// fsync/fdatasync latency per target, healthy vs failing, on a log axis.
std::string latency_svg(const Run& r) {
  struct Row {
    std::string target;
    std::vector<double> ok, failed;
  };
  std::vector<Row> rows;
  for (const auto& t : r.targets) {
    Row row{t, {}, {}};
    for (const auto& c : r.cases) {
      json res = r.result(t, c);
      if (res.is_null()) continue;
      for (const auto& s : res["steps"]) {
        const std::string op = s.value("op", "");
        if (op != "fsync" && op != "fdatasync") continue;
        const double ns = s.value("duration_ns", 0.0);
        if (ns <= 0) continue;
        (ret_of(s) < 0 ? row.failed : row.ok).push_back(ns);
      }
    }
    if (!row.ok.empty() || !row.failed.empty()) rows.push_back(row);
  }
  if (rows.empty()) return "<p class=\"note\">No fsync was timed in this run.</p>";
  double lo = 1e12, hi = 1;
  for (const auto& row : rows)
    for (const auto* v : {&row.ok, &row.failed})
      for (double x : *v) lo = std::min(lo, x), hi = std::max(hi, x);
  const double l0 = std::floor(std::log10(std::max(lo, 1.0))), l1 = std::ceil(std::log10(hi) + 1e-9);
  const int left = 230, width = 560, rowh = 34, top = 30;
  const int h = top + int(rows.size()) * rowh + 40;
  auto x = [&](double ns) { return left + (std::log10(ns) - l0) / std::max(1.0, l1 - l0) * width; };
  std::string s = fmt::format(
      "<svg role=\"img\" aria-labelledby=\"lat-title lat-desc\" viewBox=\"0 0 {} {}\" width=\"{}\" "
      "xmlns=\"http://www.w3.org/2000/svg\" font-family=\"sans-serif\" font-size=\"11\">"
      "<title id=\"lat-title\">fsync and fdatasync latency per target</title>"
      "<desc id=\"lat-desc\">Each mark is one call: circles succeeded, crosses returned an error. "
      "Log time axis.</desc>",
      left + width + 20, h, left + width + 20);
  for (double d = l0; d <= l1; d += 1) {
    const double px = x(std::pow(10, d));
    s += fmt::format("<line x1=\"{0:.1f}\" x2=\"{0:.1f}\" y1=\"{1}\" y2=\"{2}\" stroke=\"#d0d7de\"/>"
                     "<text x=\"{0:.1f}\" y=\"{3}\" text-anchor=\"middle\">{4}</text>",
                     px, top - 5, h - 30, h - 15, fmt_ns(std::pow(10, d)));
  }
  s += fmt::format("<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">time per call</text>", left + width / 2, h - 2);
  for (size_t i = 0; i < rows.size(); ++i) {
    const int y = top + int(i) * rowh;
    s += fmt::format("<text x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text>", left - 8, y + 20,
                     html_escape(rows[i].target));
    for (double ns : rows[i].ok)
      s += fmt::format("<circle cx=\"{:.1f}\" cy=\"{}\" r=\"3\" fill=\"none\" stroke=\"#1a7f37\"><title>ok {}</title></circle>",
                       x(ns), y + 10, fmt_ns(ns));
    for (double ns : rows[i].failed)
      s += fmt::format("<path d=\"M{0:.1f} {1} l6 6 m0 -6 l-6 6\" stroke=\"#b42318\" stroke-width=\"1.5\"><title>error {2}</title></path>",
                       x(ns) - 3, y + 20, fmt_ns(ns));
  }
  s += "</svg>";
  s += "<p class=\"note\">Circles (upper row of each target): calls that succeeded. Crosses (lower row): calls that "
       "returned an error. Times include the runner's round trip to its worker process on measured targets.</p>";
  return s;
}

// The taxonomy's values and what they mean, from schema/ (taxonomy.h).
std::string legend() {
  std::string s = "<table class=\"legend\"><caption>Axis values</caption><tbody>";
  for (const auto& a : taxonomy::axes()) {
    s += "<tr><th scope=\"row\">" + html_escape(std::string(a.title)) + "</th><td>";
    bool first = true;
    for (const auto& v : a.values) {
      s += std::string(first ? "" : " · ") + "<strong>" + html_escape(std::string(v.name)) + "</strong> (" +
           html_escape(std::string(v.meaning)) + ")";
      first = false;
    }
    s += "</td></tr>";
  }
  return s + "<tr><th scope=\"row\">Any axis</th><td><strong>unknown</strong> (no case decided it; the reason is "
             "on the target page) · <strong>disagree</strong> (the cases that measure it disagree)</td></tr>"
             "</tbody></table>";
}

std::string headline_title(const Run& r) {
  const std::string id = r.summary.value("headline_class", std::string(taxonomy::kHeadlineClass));
  for (const auto& c : taxonomy::fault_classes())
    if (c.id == id) return std::string(c.title);
  return id;
}

// One row per (target, fault class) that decided any axis, besides the headline class.
std::string classes_table(const Run& r) {
  std::string rows;
  const std::string headline = r.summary.value("headline_class", std::string(taxonomy::kHeadlineClass));
  for (const auto& t : r.targets) {
    const json profiles = r.summary["targets"][t].value("profiles", json::object());
    for (const auto& fc : taxonomy::fault_classes()) {
      const std::string cls(fc.id);
      if (!profiles.contains(cls) || cls == headline) continue;
      const json& axes = profiles[cls]["axes"];
      std::string cells;
      bool any = false;
      for (const auto& a : kAxes) {
        const json ax = axes.value(a, json::object());
        const std::string v = ax.value("value", "unknown");
        any = any || v != taxonomy::kUnknown;
        cells += "<td class=\"" + value_class(v) + "\"" +
                 (ax.contains("reason") ? " title=\"" + html_escape(ax.value("reason", "")) + "\"" : std::string()) +
                 "><a href=\"targets/" + target_slug(t) + ".html#class-" + cls + "\">" + html_escape(v) + "</a></td>";
      }
      if (any)
        rows += "<tr><th scope=\"row\">" + html_escape(t) + "</th><td>" + html_escape(std::string(fc.title)) + "</td>" +
                cells + "</tr>";
    }
  }
  if (rows.empty()) return "";
  std::string s = "<h2 id=\"classes\">Per fault class</h2><p class=\"note\">Each case is classified under the "
                  "class of its fault; no case of one class decides another's profile.</p><div class=\"wrap\"><table>"
                  "<caption>Profiles under the other fault classes (rows where any axis was decided)</caption><thead><tr>"
                  "<th scope=\"col\">Target</th><th scope=\"col\">Fault class</th>";
  for (const auto& a : kAxes) s += "<th scope=\"col\">" + axis_title(a) + "</th>";
  return s + "</tr></thead><tbody>" + rows + "</tbody></table></div>";
}

}  // namespace

// A run that did not finish (interrupted, killed, stopped): say so, and
// which planned results are missing, before any table.
std::string partial_notice(const Run& r) {
  std::vector<std::string> missing;
  size_t planned = 0;
  if (r.run.contains("targets") && r.run["targets"].is_object())
    for (auto it = r.run["targets"].begin(); it != r.run["targets"].end(); ++it)
      for (const auto& c : r.cases) {
        ++planned;
        if (!std::filesystem::exists(r.dir / it.key() / (c + ".json"))) missing.push_back(it.key() + " " + c);
      }
  std::string why;
  if (r.run.contains("interrupted_by_signal")) why = "interrupted by signal " + r.run["interrupted_by_signal"].dump();
  else if (r.run.contains("stopped")) why = "stopped: " + r.run["stopped"].dump();
  else if (!r.run.contains("finished_at")) why = "it has no finish time (killed?)";
  if (why.empty() && missing.empty()) return "";
  std::string b = "<p class=\"partial\"><strong>Partial run</strong>: " + html_escape(why.empty() ? "results are missing" : why) +
                  "; " + std::to_string(missing.size()) + " of " + std::to_string(planned) +
                  " case results missing. Verdicts below use only the results present.";
  if (!missing.empty()) {
    b += "<br>Missing:";
    for (size_t i = 0; i < missing.size() && i < 50; ++i) b += " <code>" + html_escape(missing[i]) + "</code>";
    if (missing.size() > 50) b += " …";
  }
  return b + "</p>\n";
}

std::string index_page(const Run& r) {
  const json& run = r.run;
  std::string b;
  b += "<header><h1>syncprobe report</h1><p class=\"meta\">Run <code>" + html_escape(run.value("id", "")) +
       "</code>, " + html_escape(run.value("started_at", "")) + " to " + html_escape(run.value("finished_at", "")) +
       "; host kernel " + html_escape(run["host"].value("kernel", "?")) + " (" +
       html_escape(run["host"].value("machine", "")) + "); syncprobe " +
       html_escape(run.value("syncprobe_version", "")) + ".<br>Command: <code>";
  for (const auto& a : run.value("command", json::array())) b += html_escape(a.get<std::string>()) + " ";
  b += "</code></p>";
  b += "<nav><a href=\"#profiles\">Profiles</a> · <a href=\"#classes\">Fault classes</a> · <a href=\"#rules\">Rules</a> · <a href=\"#cases\">Cases</a> · "
       "<a href=\"#latency\">Latency</a>" + std::string(r.bench.is_null() ? "" : " · <a href=\"#bench\">Benchmarks</a>") +
       (report_detail::kernel_columns(r.summary).empty() ? "" : " · <a href=\"kernels.html\">Across kernels</a>") +
       " · <a href=\"summary.md\">summary.md</a> · <a href=\"junit.xml\">junit.xml</a></nav></header>\n";
  b += partial_notice(r);

  // Headline table: the profile under a transient data-write error.
  b += "<h2 id=\"profiles\">What each platform does after a write fails</h2><div class=\"wrap\"><table>"
       "<caption>Profiles under a " + html_escape(headline_title(r)) + ": one row per platform, one column per "
       "axis of the taxonomy (other fault classes <a href=\"#classes\">below</a>)</caption><thead><tr>"
       "<th scope=\"col\">Target</th><th scope=\"col\">Platform</th>";
  for (const auto& a : kAxes) b += "<th scope=\"col\">" + axis_title(a) + "</th>";
  b += "<th scope=\"col\">Closest policy</th></tr></thead><tbody>";
  for (const auto& t : r.targets) {
    const json& tj = r.summary["targets"][t];
    b += "<tr><th scope=\"row\"><a href=\"targets/" + target_slug(t) + ".html\">" + html_escape(t) + "</a></th><td>" +
         platform_cell(tj) + "</td>";
    for (const auto& a : kAxes) {
      const std::string v = tj["profile"].value(a, "unknown");
      const std::string why = tj.value("profile_reasons", json::object()).value(a, "");
      b += "<td class=\"" + value_class(v) + "\"><a href=\"targets/" + target_slug(t) + ".html#" + a + "\"" +
           (why.empty() ? "" : " title=\"" + html_escape(why) + "\"") + ">" + html_escape(v) + "</a></td>";
    }
    b += "<td>" + html_escape(closest_text(tj)) + "</td></tr>";
  }
  b += "</tbody></table></div>";
  b += legend();
  b += classes_table(r);

  // Rules matrix, with what fstests would say beside it.
  const std::vector<std::string> tests = fstests_tests(r.summary);
  b += "<h2 id=\"rules\">Rules R1–R7, and fstests</h2><div class=\"wrap\"><table><caption>Rule verdicts; each cell "
       "links to the observations that decided it. The fstests columns say what fstests itself would conclude from "
       "the same observations (its own pass condition, stated in each restated case)</caption><thead><tr>"
       "<th scope=\"col\">Target</th>";
  for (const auto& rule : kRules)
    b += "<th scope=\"col\" title=\"" + html_escape(r.summary["rules"].value(rule, "")) + "\">" + rule + " " +
         html_escape(r.summary["rules"].value(rule, "")) + "</th>";
  for (const auto& test : tests) b += "<th scope=\"col\">fstests " + html_escape(test) + "</th>";
  b += "</tr></thead><tbody>";
  for (const auto& t : r.targets) {
    const json& tj = r.summary["targets"][t];
    b += "<tr><th scope=\"row\">" + html_escape(t) + "</th>";
    for (const auto& rule : kRules) {
      const std::string v = tj["rules"].value(rule, "n/a");
      const std::string why = tj.value("rule_reasons", json::object()).value(rule, "");
      b += "<td class=\"" + value_class(v) + "\"><a href=\"targets/" + target_slug(t) + ".html#" + rule + "\"" +
           (why.empty() ? "" : " title=\"" + html_escape(why) + "\"") + ">" + symbol(v) + "</a></td>";
    }
    const json fstests = tj.value("fstests", json::object());
    for (const auto& test : tests) {
      const json f = fstests.value(test, json::object());
      const std::string v = f.value("verdict", "n/a");
      b += "<td class=\"" + value_class(v) + "\"><a href=\"targets/" + target_slug(t) + ".html#fstests\" title=\"" +
           html_escape(f.value("reason", f.value("passes_when", ""))) + "\">" + symbol(v) +
           (f.contains("not_checked") && v == "pass" ? "*" : "") + "</a></td>";
    }
    b += "</tr>";
  }
  b += "</tbody></table></div>";
  if (!tests.empty())
    b += "<p class=\"note\">* fstests checks more than the restated case can observe (see the target page). "
         "? unknown: a check ran but could not be judged; ○ not measurable here: every case checking the rule "
         "needs a capability this target lacks.</p>";

  b += apps_section(r);
  b += libfiu_contrast_section(r);

  // Case matrix.
  b += "<h2 id=\"cases\">Cases</h2><div class=\"wrap\"><table><caption>Targets × cases: status and checks "
       "(passed/failed); each cell links to the steps</caption><thead><tr><th scope=\"col\">Case</th>";
  for (const auto& t : r.targets) b += "<th scope=\"col\">" + html_escape(t) + "</th>";
  b += "</tr></thead><tbody>";
  for (const auto& c : r.cases) {
    b += "<tr><th scope=\"row\" title=\"" + html_escape(r.run["cases"][c].value("title", "")) + "\">" + html_escape(c) + "</th>";
    for (const auto& t : r.targets) {
      static const json kNone;
      const json* cjp = &kNone;
      if (r.summary["targets"].contains(t)) {
        const json& tj = r.summary["targets"][t];
        if (tj.contains("cases") && tj["cases"].is_object() && tj["cases"].contains(c)) cjp = &tj["cases"][c];
      }
      const json& cj = *cjp;
      if (!cj.is_object()) {
        b += "<td class=\"none\">–</td>";
        continue;
      }
      const std::string st = cj.value("status", "");
      const int pass = cj.value("checks_passed", 0), fail = cj.value("checks_failed", 0);
      const std::string cls = st != "completed" ? "none" : fail ? "bad" : "good";
      std::string text = st == "completed" ? fmt::format("{}{} ✓ {} ✗", status_symbol(st), pass, fail)
                                           : status_symbol(st) + st;
      b += "<td class=\"" + cls + "\"><a href=\"" + case_href(t, c) + "\" title=\"" + html_escape(cj.value("reason", "")) +
           "\">" + text + "</a></td>";
    }
    b += "</tr>";
  }
  b += "</tbody></table></div><p class=\"note\">✓ checks that held, ✗ checks that did not; ○ skipped (a capability "
       "the target lacks), ⏸ hung, ⚠ error.</p>";

  b += "<h2 id=\"latency\">fsync latency, healthy and failing</h2>" + latency_svg(r);

  if (!r.bench.is_null()) {
    b += "<h2 id=\"bench\">Benchmarks</h2>";
    if (r.bench.contains("targets") && r.bench["targets"].is_object()) {
      b += "<div class=\"wrap\"><table><caption>Latency distributions from <code>syncprobe bench</code></caption><thead><tr>"
           "<th scope=\"col\">Target</th><th scope=\"col\">Figure</th><th scope=\"col\">n</th><th scope=\"col\">min</th>"
           "<th scope=\"col\">median</th><th scope=\"col\">p99</th><th scope=\"col\">max</th></tr></thead><tbody>";
      for (const auto& [t, figs] : r.bench["targets"].items())
        for (const auto& [name, f] : figs.items()) {
          if (!f.is_object() || !f.contains("median")) continue;
          b += "<tr><th scope=\"row\">" + html_escape(t) + "</th><td>" + html_escape(name) + "</td><td>" +
               std::to_string(f.value("n", 0)) + "</td>";
          for (const char* k : {"min", "median", "p99", "max"}) b += "<td>" + fmt_ns(f.value(k, 0.0)) + "</td>";
          b += "</tr>";
        }
      b += "</tbody></table></div>";
    }
    b += "<details><summary>bench.json</summary><pre>" + html_escape(r.bench.dump(2)) + "</pre></details>";
  }
  return page("syncprobe report " + run.value("id", ""), b);
}

}  // namespace syncprobe::site
