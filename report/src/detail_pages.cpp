// targets/<target>.html (the evidence behind each verdict) and
// cases/<target>/<case>.html (the steps beside the closest reference policy).
#include "site.h"

#include <map>

#include "syncprobe/report.h"

namespace syncprobe::site {
namespace {

std::string evidence_row(const json& e, const std::string& target) {
  std::string s = "<tr><td><a href=\"../" + case_href(target, e.value("case", "")) + "#step-" +
                  std::to_string(e.value("step", 0)) + "\">" + html_escape(e.value("case", "")) + "</a></td><td>" +
                  std::to_string(e.value("step", 0)) + "</td><td>" + std::to_string(e.value("line", 0)) + "</td><td>" +
                  html_escape(e.value("op", "")) + "</td><td>" + html_escape(e.value("probe", "")) + "</td><td>" +
                  html_escape(e.value("observed", "")) + "</td><td>" + html_escape(e.value("expect", e.value("meaning", ""))) + "</td>";
  if (e.contains("pass")) s += std::string("<td class=\"") + (e["pass"].get<bool>() ? "good\">✓ held" : "bad\">✗ did not") + "</td>";
  else s += "<td></td>";
  return s + "</tr>";
}

}  // namespace

std::string target_page(const Run& r, const std::string& t) {
  const json& tj = r.summary["targets"][t];
  std::string b = "<p><a href=\"../index.html\">← report</a></p><h1>" + html_escape(t) + "</h1><p>" + platform_cell(tj) + "</p>";
  b += "<details><summary>Environment</summary><pre>" + html_escape(tj["environment"].dump(2)) + "</pre></details>";
  if (fs::exists(r.dir / t / "console.log"))
    b += "<p><a href=\"" + target_slug(t) + "-console.txt\">The guest's console log</a></p>";
  auto table = [&](const std::string& id, const std::string& title, const std::string& verdict, const std::string& why,
                   const json& ev) {
    std::string s = "<h2 id=\"" + id + "\">" + html_escape(title) + ": <span class=\"" + value_class(verdict) + "\">" +
                    html_escape(verdict) + "</span></h2>";
    if (!why.empty()) s += "<p class=\"note\">Why: " + html_escape(why) + "</p>";
    if (ev.empty()) return s + "<p class=\"note\">No observation decided this here.</p>";
    s += "<div class=\"wrap\"><table><caption>Observations behind " + html_escape(title) + "</caption><thead><tr>"
         "<th scope=\"col\">Case</th><th scope=\"col\">Step</th><th scope=\"col\">Line</th><th scope=\"col\">Op</th>"
         "<th scope=\"col\">Probe</th><th scope=\"col\">Observed</th><th scope=\"col\">Expected / meaning</th>"
         "<th scope=\"col\">Check</th></tr></thead><tbody>";
    for (const auto& e : ev) s += evidence_row(e, t);
    return s + "</tbody></table></div>";
  };
  const json rule_reasons = tj.value("rule_reasons", json::object());
  const json profile_reasons = tj.value("profile_reasons", json::object());
  const json evidence = tj.value("evidence", json::object());
  for (const auto& rule : kRules)
    b += table(rule, rule + " " + r.summary["rules"].value(rule, ""), tj["rules"].value(rule, "n/a"),
               rule_reasons.value(rule, ""), evidence.value(rule, json::array()));
  for (const auto& a : kAxes)
    b += table(a, axis_title(a) + " (" + tj.value("profile_class", std::string("data-write")) + ")",
               tj["profile"].value(a, "unknown"), profile_reasons.value(a, ""), evidence.value(a, json::array()));
  // Every other fault class, axis by axis.
  const json profiles = tj.value("profiles", json::object());
  for (const auto& [cls, p] : profiles.items()) {
    if (cls == tj.value("profile_class", std::string())) continue;
    b += "<h2 id=\"class-" + html_escape(cls) + "\">Fault class " + html_escape(cls) + ": " +
         html_escape(p.value("title", "")) + "</h2><p class=\"note\">Cases:";
    const json cases = p.value("cases", json::array());
    for (const auto& c : cases) b += " " + html_escape(c.get<std::string>());
    b += "</p>";
    for (const auto& a : kAxes) {
      const json ax = p["axes"].value(a, json::object());
      b += table("class-" + cls + "-" + a, axis_title(a) + " (" + cls + ")", ax.value("value", "unknown"),
                 ax.value("reason", ""), ax.value("evidence", json::array()));
    }
  }
  const json fstests = tj.value("fstests", json::object());
  if (!fstests.empty()) {
    b += "<h2 id=\"fstests\">What fstests would say</h2><p class=\"note\">Each case restated from an fstests test "
         "states fstests' own pass condition; this is that condition judged on the observations above, beside the "
         "rules (which ask for more).</p>";
    for (const auto& [test, f] : fstests.items()) {
      const std::string v = f.value("verdict", "n/a");
      std::string why = f.value("reason", "");
      if (f.contains("not_checked")) why += (why.empty() ? "" : " ") + std::string("Not observed here: ") + f.value("not_checked", "");
      b += table("fstests-" + test, "fstests " + test + " (" + f.value("case", "") + ")", v,
                 "fstests passes when: " + f.value("passes_when", "") + (why.empty() ? "" : " " + why),
                 f.value("evidence", json::array()));
    }
  }
  if (tj.contains("distances")) {
    b += "<h2 id=\"closest\">Closest reference policy: " + html_escape(closest_text(tj)) +
         "</h2><p>Step outcomes that differ, of those compared, per policy (cases both ran; steps after a hang and "
         "errno differences only the injector made are not compared):";
    for (const auto& [p, d] : tj["distances"].items())
      b += " " + html_escape(p) + " " +
           (d.is_object() ? std::to_string(d.value("differing", 0)) + "/" + std::to_string(d.value("compared", 0))
                          : d.dump()) + ";";
    b += "</p>";
  }
  return page(t + " — syncprobe", b);
}

std::string case_page(const Run& r, const std::string& t, const std::string& c) {
  const json res = r.result(t, c);
  const json& cj = r.run["cases"][c];
  const json& tj = r.summary["targets"][t];
  std::string policy = tj.value("measured", false) ? closest_for_steps(tj) : "";
  const json pres = policy.empty() ? json() : r.result("reference:" + policy, c);
  if (pres.is_null()) policy.clear();
  std::string b = "<p><a href=\"../../index.html\">← report</a> · <a href=\"../../targets/" + target_slug(t) +
                  ".html\">" + html_escape(t) + "</a></p>";
  b += "<h1>" + html_escape(cj.value("title", c)) + "</h1><p class=\"meta\"><code>" + html_escape(c) + "</code> on " +
       html_escape(t) + " · file <code>" + html_escape(cj.value("file", "")) + "</code> · sha256 <code>" +
       html_escape(cj.value("hash", "").substr(0, 16)) + "…</code> · rules ";
  for (const auto& x : cj.value("rules", json::array())) b += html_escape(x.get<std::string>()) + " ";
  b += "</p><pre>" + html_escape(cj.value("description", "")) + "</pre>";
  if (res.is_null()) return page(c, b + "<p>No result for this target.</p>");
  b += "<p>Status: <strong>" + html_escape(res.value("status", "")) + "</strong> " + html_escape(res.value("reason", "")) + "</p>";
  b += "<div class=\"wrap\"><table><caption>Steps" +
       (policy.empty() ? std::string() : " beside reference:" + html_escape(policy) + " (the closest policy); rows marked “differs” disagree") +
       "</caption><thead><tr><th scope=\"col\">#</th><th scope=\"col\">Line</th><th scope=\"col\">Proc</th><th scope=\"col\">Op</th>"
       "<th scope=\"col\">Arguments</th><th scope=\"col\">" + html_escape(t) + "</th>";
  if (!policy.empty()) b += "<th scope=\"col\">reference:" + html_escape(policy) + "</th>";
  b += "<th scope=\"col\">Time</th><th scope=\"col\">Fault layer</th><th scope=\"col\">Check</th><th scope=\"col\">Note</th></tr></thead><tbody>";
  const json steps = cj.value("steps", json::array());
  std::map<size_t, json> obs, pobs;
  for (const auto& o : res.value("steps", json::array())) obs[o.value("index", size_t(0))] = o;
  for (const auto& o : pres.is_null() ? json::array() : pres.value("steps", json::array())) pobs[o.value("index", size_t(0))] = o;
  // Checks of this case on this target, from the summary's evidence.
  std::map<size_t, json> checks;
  for (const auto& e : checks_of(tj, c)) checks[e.value("step", size_t(0))] = e;
  for (size_t i = 0; i < steps.size(); ++i) {
    const json& s = steps[i];
    const json o = obs.count(i) ? obs[i] : json();
    const json p = pobs.count(i) ? pobs[i] : json();
    const bool differs = !policy.empty() && outcome_key(o) != outcome_key(p);
    b += std::string("<tr id=\"step-") + std::to_string(i) + "\"" + (differs ? " class=\"diff\"" : "") + "><td>" +
         std::to_string(i) + "</td><td>" + std::to_string(s.value("line", 0)) + "</td><td>" +
         html_escape(s.value("proc", "")) + "</td><td>" + html_escape(s.value("op", "")) + "</td><td><code>" +
         html_escape(args_text(s.value("args", json::object()))) + "</code></td>" + observed_cell(o);
    if (!policy.empty()) b += observed_cell(p);
    b += "<td>" + (o.is_null() ? std::string() : fmt_ns(o.value("duration_ns", 0.0))) + "</td><td>" +
         (o.is_null() || o["fault_layer"].is_null() ? std::string() : html_escape(o.value("fault_layer", "")) + " ×" + std::to_string(o.value("injected", 0))) + "</td>";
    if (checks.count(i)) {
      const json& e = checks[i];
      b += std::string("<td class=\"") + (e["pass"].get<bool>() ? "good\">✓ " : "bad\">✗ ") + html_escape(e.value("rule", "")) +
           " expects " + html_escape(e.value("expect", "")) + "</td>";
    } else if (s.contains("check")) {
      b += "<td class=\"none\">" + html_escape(s["check"].value("rule", "")) + " (not judged)</td>";
    } else {
      b += "<td></td>";
    }
    b += "<td>" + (differs ? std::string("<strong>differs</strong> ") + html_escape(s.value("note", "")) : html_escape(s.value("note", ""))) +
         (!o.is_null() && o.contains("detail") && !o["detail"].empty() ? " <code>" + html_escape(o["detail"].dump()) + "</code>" : "") + "</td></tr>";
  }
  b += "</tbody></table></div>";
  const json env = res.value("environment", json::object());
  if (env.contains("kernel_log") && !env["kernel_log"].empty()) {
    b += "<h2>Kernel messages during the case</h2><pre>";
    for (const auto& l : env["kernel_log"]) b += html_escape(l.get<std::string>()) + "\n";
    b += "</pre>";
  }
  if (env.contains("injector_log") && !env.value("injector_log", std::string()).empty())
    b += "<h2>Injector log</h2><pre>" + html_escape(env.value("injector_log", "")) + "</pre>";
  if (fs::exists(r.dir / t / "console.log"))
    b += "<p>The guest's console during the boot that ran this case: <a href=\"../../targets/" + target_slug(t) +
         "-console.txt\">console log</a>.</p>";
  return page(c + " on " + t, b);
}

}  // namespace syncprobe::site
