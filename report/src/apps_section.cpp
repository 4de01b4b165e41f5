// The application table of the index page (docs/apps.md): program ×
// scenario × target → what the program detected and the outcome of every
// read after the fault, each linked to the case's steps (the evidence); and
// the libfiu contrast rows of kernel cases.
#include "site.h"
#include "syncprobe/taxonomy.h"
#include "syncprobe/report.h"

namespace syncprobe::site {

std::string apps_section(const Run& r) {
  const json& rows = r.summary.contains("applications") ? r.summary["applications"] : json();
  if (!rows.is_array() || rows.empty()) return "";
  std::string b =
      "<h2 id=\"apps\">Applications: what real programs did with the fault</h2><div class=\"wrap\">"
      "<table><caption>Program × scenario × target. Detected: how the program showed the failure. "
      "Reads: the value each later read returned and its outcome (below). "
      "Fault layer: where the failure came from (a device fault is never mixed with a libfiu one; "
      "power-cut: nothing failed, the power was cut). "
      "Each row links to the steps, with the program's command, exit status and output."
      "</caption><thead><tr><th scope=\"col\">Program</th><th scope=\"col\">Scenario</th>"
      "<th scope=\"col\">Target</th><th scope=\"col\">Fault layer</th><th scope=\"col\">Detected</th>"
      "<th scope=\"col\">Reads</th><th scope=\"col\">Outcomes</th></tr></thead><tbody>";
  for (const auto& row : rows) {
    const std::string target = row.value("target", ""), c = row.value("case", "");
    b += "<tr><td>" + html_escape(row.value("program", "")) + " " +
         html_escape(row.value("variant", "")) + "</td><td><a href=\"" +
         html_escape(case_href(target, c)) + "\">" + html_escape(c) + "</a></td><td>" +
         html_escape(target) + "</td>";
    if (row.value("status", "") != "completed") {
      b += "<td colspan=\"4\">" + html_escape(row.value("status", "") + ": " + row.value("reason", "")) +
           "</td></tr>";
      continue;
    }
    b += "<td>" + html_escape(row.value("fault_layer", "none")) + "</td><td>";
    std::string detected;
    for (const auto& d : row.value("detected", json::array()))
      detected += (detected.empty() ? "" : ", ") + d.get<std::string>();
    b += html_escape(detected.empty() ? "not reported" : detected) + "</td><td>";
    for (const auto& rd : row.value("reads", json::array())) {
      const json v = rd.value("read", json());
      b += "step " + std::to_string(rd.value("step", 0)) + ": " +
           html_escape(v.is_string() ? v.get<std::string>() : std::string("—")) + " → " +
           html_escape(rd.value("outcome", "")) + "<br>";
    }
    b += "</td><td>";
    for (const auto& o : row.value("outcomes", json::array())) {
      const std::string s = o.is_string() ? o.get<std::string>() : o.dump();
      // An outcome this version does not know (a summary from another
      // version) is shown as unknown, never as good.
      const taxonomy::Value* k = taxonomy::find_app_outcome(s);
      const bool bad = k && k->tone == taxonomy::Tone::bad;
      const std::string cls = k ? std::string(taxonomy::to_string(k->tone)) : "none";
      b += "<span class=\"" + cls + "\" title=\"" +
           html_escape(k ? std::string(k->meaning) : "not an outcome this version knows") + "\">" + html_escape(s) +
           (bad ? " ✗" : "") + "</span> ";
    }
    b += "</td></tr>";
  }
  b += "</tbody></table></div><table><caption>Outcomes of a read after the fault (✗: the program lost, "
       "invented or refused acknowledged data)</caption><thead><tr><th scope=\"col\">Outcome</th>"
       "<th scope=\"col\">Meaning</th></tr></thead><tbody>";
  for (const auto& k : taxonomy::app_outcomes()) {
    const bool bad = k.tone == taxonomy::Tone::bad;
    b += "<tr><th scope=\"row\"><span class=\"" + std::string(taxonomy::to_string(k.tone)) + "\">" +
         std::string(k.name) + (bad ? " ✗" : "") + "</span></th><td>" + html_escape(std::string(k.meaning)) +
         "</td></tr>";
  }
  return b + "</tbody></table>";
}

}  // namespace syncprobe::site

namespace syncprobe::site {

std::string libfiu_contrast_section(const Run& r) {
  std::string rows;
  for (const auto& t : r.targets) {
    if (!r.summary["targets"].contains(t)) continue;
    const json& list = r.summary["targets"][t].value("libfiu_contrast", json::array());
    for (const auto& row : list) {
      const std::string c = row.value("case", "");
      rows += "<tr><td><a href=\"" + html_escape(case_href(t, c)) + "\">" + html_escape(c) + "</a></td><td>" +
              html_escape(t) + "</td><td>";
      if (row.value("status", "") != "completed") {
        rows += html_escape(row.value("status", "") + ": " + row.value("reason", "")) + "</td></tr>";
        continue;
      }
      for (const auto& s : row.value("steps", json::array()))
        rows += "step " + std::to_string(s.value("step", 0)) + " " + html_escape(s.value("op", "")) + " " +
                html_escape(s.value("probe", s.value("point", ""))) + ": " + html_escape(s.value("observed", "")) +
                (s.contains("fault_layer") ? " (from " + html_escape(s.value("fault_layer", "")) + ")" : "") + "<br>";
      rows += "</td></tr>";
    }
  }
  if (rows.empty()) return "";
  return "<h2 id=\"libfiu\">libfiu contrast rows: failures in front of the kernel</h2><div class=\"wrap\"><table>"
         "<caption>Kernel cases whose failure libfiu injected in the case process (fault layer libfiu): the "
         "kernel's page cache never saw a failure, and the data may well be on disk. No profile, rule verdict "
         "or closest policy above reads these cases.</caption><thead><tr><th scope=\"col\">Case</th>"
         "<th scope=\"col\">Target</th><th scope=\"col\">Steps</th></tr></thead><tbody>" +
         rows + "</tbody></table></div>";
}

}  // namespace syncprobe::site
