// The run as the report reads it, and the HTML helpers shared by its pages.
#include "site.h"

#include <fstream>
#include <map>
#include <ostream>
#include <set>
#include <sstream>

#include <fmt/format.h>

#include "syncprobe/report.h"
#include "syncprobe/taxonomy.h"

namespace syncprobe::site {

namespace {

std::vector<std::string> axis_ids() {
  std::vector<std::string> out;
  for (const auto& a : taxonomy::axes()) out.emplace_back(a.id);
  return out;
}
std::vector<std::string> rule_ids() {
  std::vector<std::string> out;
  for (const auto& r : taxonomy::rules()) out.emplace_back(r.id);
  return out;
}

}  // namespace

// From the one declaration in schema/ (taxonomy.h).
const std::vector<std::string> kAxes = axis_ids();
const std::vector<std::string> kRules = rule_ids();

std::string axis_title(const std::string& axis) {
  const taxonomy::Axis* a = taxonomy::find_axis(axis);
  return a ? std::string(a->title) : axis;
}

std::string closest_text(const json& t) {
  const json names = t.value("closest_policies", json::array());
  if (names.empty()) return t["closest_policy"].is_string() ? t["closest_policy"].get<std::string>() : "";
  std::string s;
  for (const auto& n : names) s += (s.empty() ? "" : " = ") + n.get<std::string>();
  return names.size() > 1 ? "tie: " + s : s;
}

std::string closest_for_steps(const json& t) {
  if (t["closest_policy"].is_string()) return t["closest_policy"];
  const json names = t.value("closest_policies", json::array());
  return names.empty() ? "" : names[0].get<std::string>();
}

std::vector<std::string> fstests_tests(const json& summary) {
  std::set<std::string> tests;
  for (const auto& [name, t] : summary["targets"].items()) {
    const json f = t.value("fstests", json::object());
    for (const auto& [test, v] : f.items()) tests.insert(test);
  }
  return {tests.begin(), tests.end()};
}

json Run::result(const std::string& target, const std::string& c) const {
  auto t = results.results.find(target);
  if (t == results.results.end()) return json();
  auto r = t->second.find(c);
  return r == t->second.end() ? json() : json(r->second);
}

bool load(const std::string& dir, Run& r, std::ostream& err) {
  r.dir = dir;
  if (!fs::is_directory(dir)) {
    err << "syncprobe report: " << dir << ": no such results directory\n";
    return false;
  }
  if (!fs::exists(r.dir / "run.json")) {
    err << "syncprobe report: " << dir << " has no run.json: is it a directory written by `syncprobe run`?\n";
    return false;
  }
  if (!fs::exists(r.dir / "summary.json")) {
    err << "syncprobe report: " << dir << " has no summary.json: run `syncprobe classify " << dir << "` first\n";
    return false;
  }
  try {
    r.results = load_run(dir);
    r.run = r.results.run;
    r.summary = read_json_file((r.dir / "summary.json").string());
    if (fs::exists(r.dir / "bench.json")) r.bench = read_json_file((r.dir / "bench.json").string());
  } catch (const std::exception& e) {
    err << "syncprobe report: " << e.what() << "\n";
    return false;
  }
  for (const auto& [name, t] : r.summary["targets"].items())
    if (t.value("measured", false)) r.targets.push_back(name);
  for (const auto& [name, t] : r.summary["targets"].items())
    if (!t.value("measured", false)) r.targets.push_back(name);
  for (const auto& [id, c] : r.run["cases"].items()) r.cases.push_back(id);
  return true;
}

std::vector<json> checks_of(const json& target_summary, const std::string& c) {
  std::map<std::pair<size_t, std::string>, json> by_step;  // one per (step, rule)
  if (target_summary.contains("evidence"))
    for (const auto& [key, ev] : target_summary["evidence"].items())
      for (const auto& e : ev)
        if (e.value("case", "") == c && e.contains("pass"))
          by_step[{e.value("step", size_t(0)), e.value("rule", key)}] = e;
  std::vector<json> out;
  for (auto& [k, e] : by_step) out.push_back(std::move(e));
  return out;
}

std::string read_text(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Every page through a temporary of its own, checked and renamed: a full
// disk or a second writer throws (report.cpp turns that into a message)
// instead of leaving a truncated page or another writer's half.
void write_file(const fs::path& p, const std::string& text) { write_file_atomic(p.string(), text); }

namespace {
const char kCss[] = R"CSS(
:root{--good:#1a7f37;--bad:#b42318;--mid:#9a6700;--none:#6e7781;--bg:#fff;--fg:#1f2328;--line:#d0d7de}
body{font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:var(--fg);background:var(--bg);margin:0 auto;max-width:1200px;padding:1rem}
h1{font-size:1.6rem;margin:.2rem 0}h2{font-size:1.25rem;margin-top:2rem;border-bottom:1px solid var(--line)}
.meta{color:var(--none);font-size:.9rem}.wrap{overflow-x:auto;margin:.5rem 0}
table{border-collapse:collapse;font-size:.88rem}caption{text-align:left;font-weight:600;padding:.3rem 0}
th,td{border:1px solid var(--line);padding:.25rem .45rem;text-align:left;vertical-align:top}
thead th{background:#f6f8fa;position:sticky;top:0}
td.good,span.good{background:#dafbe1}td.bad,span.bad{background:#ffebe9}span.none{color:var(--none)}td.mid{background:#fff8c5}td.none{color:var(--none)}
td.changed{outline:2px solid #bf8700;outline-offset:-2px;background:#fff8c5}.chg{font-size:.8rem;color:#7d4e00}
td.diff,tr.diff td{background:#fff1e5}.tag{font-family:ui-monospace,monospace}
.badge{display:inline-block;font-size:.75rem;border:1px solid var(--line);border-radius:1em;padding:0 .5em;color:var(--none)}
a{color:#0550ae}code,pre{font-family:ui-monospace,SFMono-Regular,monospace;font-size:.85rem}
pre{white-space:pre-wrap;background:#f6f8fa;padding:.5rem}.legend td{font-size:.85rem}
svg{max-width:100%;height:auto}.note{color:var(--none);font-size:.85rem}
@media (max-width:640px){body{padding:.5rem;font-size:14px}th,td{padding:.2rem .3rem}}
@media print{a{color:inherit;text-decoration:none}.wrap{overflow:visible}thead th{position:static}
td.good,td.bad,td.mid{background:none}body{max-width:none}}
)CSS";

}  // namespace

std::string page(const std::string& title, const std::string& body) {
  return "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
         "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
         "<title>" + html_escape(title) + "</title><style>" + kCss + "</style></head><body>\n" +
         body + "\n<footer class=\"note\"><p>Generated by syncprobe from the run's JSON files. "
         "Reference policies are modelled, not measured.</p></footer></body></html>\n";
}

// Values a reader should see as good, bad or neither (colour is never the only signal).
std::string value_class(const std::string& v) { return std::string(taxonomy::to_string(taxonomy::tone_of(v))); }

std::string symbol(const std::string& verdict) {
  if (verdict == taxonomy::kPass) return "✓ pass";
  if (verdict == taxonomy::kFail) return "✗ fail";
  if (verdict == taxonomy::kUnknown) return "? unknown";
  if (verdict == taxonomy::kNotMeasurable || verdict == taxonomy::kNotRun) return "○ " + verdict;
  return "– n/a";
}

std::string status_symbol(const std::string& status) {
  if (status == "completed") return "";
  if (status == "skipped") return "○ ";
  if (status == "hung") return "⏸ ";
  return "⚠ ";
}

std::string target_slug(const std::string& t) {
  std::string s = t;
  for (char& c : s)
    if (c == ':' || c == '=' || c == '/' || c == ',' || c == '*') c = '_';
  return s;
}

std::string case_href(const std::string& target, const std::string& c) {
  return "cases/" + target_slug(target) + "/" + c + ".html";
}

std::string fmt_ns(double ns) {
  if (ns < 1e3) return fmt::format("{:.0f} ns", ns);
  if (ns < 1e6) return fmt::format("{:.1f} µs", ns / 1e3);
  if (ns < 1e9) return fmt::format("{:.1f} ms", ns / 1e6);
  return fmt::format("{:.2f} s", ns / 1e9);
}

std::string platform_cell(const json& t) {
  const json& e = t["environment"];
  if (!t.value("measured", false))
    return "<span class=\"badge\">modelled, not measured</span> policy " +
           html_escape(e.value("policy", ""));
  std::string s = "<span class=\"badge\">measured</span> " + html_escape(e.value("kind", "")) +
                  ", kernel " + html_escape(e.value("kernel", "?")) + ", " + html_escape(e.value("fs", "?"));
  if (!e.value("mount_options", std::string()).empty())
    s += " (" + html_escape(e.value("mount_options", "")) + ")";
  s += ", injector " + html_escape(e.value("injector", "?"));
  return s;
}

// Why a step failed: its errno by name, or (app steps, a harness failure, a
// signal) what failed instead; never an errno the call did not return.
static std::string failure_text(const json& o, const std::string& unknown) {
  if (o.contains("errno") && o["errno"].is_string()) return o["errno"].get<std::string>();
  if (o.contains("harness")) return "harness failure";
  if (o.contains("detail") && o["detail"].is_object() && o["detail"].contains("signal") &&
      o["detail"]["signal"].is_string())
    return o["detail"]["signal"].get<std::string>();  // a SIGBUS through a mapping
  if (o.contains("detail") && o["detail"].contains("app"))
    return "program failed (exit " + std::to_string(o["detail"]["app"].value("exit_status", -1)) + ")";
  return unknown;
}

long ret_of(const json& o) {
  return o.contains("ret") && o["ret"].is_number_integer() ? o["ret"].get<long>() : 0;
}

std::string observed_cell(const json& o) {
  if (o.is_null()) return "<td class=\"none\">not run</td>";
  std::string s;
  if (o.value("hung", false)) s = "hung";
  else if (ret_of(o) < 0) s = "-1 " + html_escape(failure_text(o, "?"));
  else s = std::to_string(ret_of(o));
  if (o.contains("data") && o["data"].is_object()) s += " <span class=\"tag\">tag " + html_escape(o["data"].value("tag", "")) + "</span>";
  return "<td>" + (o.value("hung", false) || ret_of(o) < 0 ? std::string("<strong>") + s + "</strong>" : s) + "</td>";
}

std::string outcome_key(const json& o) {
  if (o.is_null()) return "not run";
  if (o.value("op", "") == "open" && ret_of(o) >= 0) return "opened";
  std::string s = o.value("hung", false) ? "hung" : ret_of(o) < 0 ? "-1 " + failure_text(o, "?") : std::to_string(ret_of(o));
  if (o.contains("data") && o["data"].is_object() && o["data"].contains("tag") && o["data"]["tag"].is_string())
    s += " tag " + o["data"]["tag"].get<std::string>();
  return s;
}

std::string args_text(const json& args) {
  std::string s;
  for (const auto& [k, v] : args.items()) s += (s.empty() ? "" : ", ") + k + "=" + (v.is_string() ? v.get<std::string>() : v.dump());
  return s;
}

}  // namespace syncprobe::site
