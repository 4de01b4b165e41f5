#include "across_kernels.h"

#include <algorithm>
#include <cctype>
#include <map>

#include "site.h"
#include "syncprobe/report.h"

namespace syncprobe::report_detail {
namespace {

using json = nlohmann::json;

using site::kAxes;
using site::kRules;
using site::outcome_key;
using site::target_slug;

// "vm:6.1:ext4:data=journal" -> "ext4:data=journal"; "host:xfs" -> "xfs".
std::string fs_of(const std::string& target) {
  if (target.rfind("host:", 0) == 0) return target.substr(5);
  if (target.rfind("vm:", 0) == 0) {
    const auto colon = target.find(':', 3);
    return colon == std::string::npos ? "" : target.substr(colon + 1);
  }
  return "";
}

// One row: a label and a value per column, each linked; a cell that differs
// from its left neighbour is marked (class and text, not colour alone).
std::string row(const std::string& label, const std::vector<std::string>& values,
                const std::vector<std::string>& hrefs) {
  std::string s = "<tr><th scope=\"row\">" + label + "</th>";
  for (size_t i = 0; i < values.size(); ++i) {
    const bool changed = i > 0 && values[i] != values[i - 1];
    s += std::string("<td") + (changed ? " class=\"changed\"" : "") + "><a href=\"" + html_escape(hrefs[i]) +
         "\">" + html_escape(values[i]) + "</a>" + (changed ? " <span class=\"chg\">◆ changed</span>" : "") + "</td>";
  }
  return s + "</tr>";
}

}  // namespace

bool kernel_older(const std::string& a, const std::string& b) {
  size_t i = 0, j = 0;
  while (i < a.size() && j < b.size()) {
    const bool da = std::isdigit(static_cast<unsigned char>(a[i])), db = std::isdigit(static_cast<unsigned char>(b[j]));
    if (da && db) {
      size_t ie = i, je = j;
      while (ie < a.size() && std::isdigit(static_cast<unsigned char>(a[ie]))) ++ie;
      while (je < b.size() && std::isdigit(static_cast<unsigned char>(b[je]))) ++je;
      const auto x = std::stoull(a.substr(i, ie - i)), y = std::stoull(b.substr(j, je - j));
      if (x != y) return x < y;
      i = ie;
      j = je;
    } else {
      if (a[i] != b[j]) return a[i] < b[j];
      ++i;
      ++j;
    }
  }
  return a.size() - i < b.size() - j;
}

std::vector<KernelColumns> kernel_columns(const json& summary) {
  std::map<std::string, std::vector<std::pair<std::string, std::string>>> by_fs;  // fs -> (kernel, target)
  for (const auto& [name, t] : summary["targets"].items()) {
    if (!t.value("measured", false)) continue;
    // A target that completed no case (its kernel not fetched here) measured nothing.
    bool completed = false;
    const json cases = t.value("cases", json::object());
    for (const auto& [c, cj] : cases.items()) completed |= cj.value("status", "") == "completed";
    if (!completed) continue;
    const std::string f = fs_of(name);
    if (f.empty()) continue;
    by_fs[f].push_back({t["environment"].value("kernel", "?"), name});
  }
  std::vector<KernelColumns> out;
  for (auto& [f, list] : by_fs) {
    if (list.size() < 2) continue;  // nothing to set side by side
    std::stable_sort(list.begin(), list.end(),
                     [](const auto& x, const auto& y) { return kernel_older(x.first, y.first); });
    KernelColumns k;
    k.fs = f;
    for (const auto& [kernel, target] : list) {
      k.kernels.push_back(kernel);
      k.targets.push_back(target);
    }
    out.push_back(k);
  }
  return out;
}

std::string across_kernels_body(const RunView& v) {
  const auto columns = kernel_columns(v.summary);
  std::string b = "<p><a href=\"index.html\">← report</a></p><h1>Across kernels</h1>"
                  "<p>For each filesystem, every kernel measured in this run, oldest first. A cell marked "
                  "<span class=\"chg\">◆ changed</span> differs from the kernel to its left. Every cell links to "
                  "its evidence: the target's page for profiles and rules, the case's steps for outcomes.</p>";
  if (columns.empty())
    return b + "<p class=\"note\">This run measured no filesystem on two or more kernels.</p>";
  b += "<nav>";
  for (const auto& k : columns) b += "<a href=\"#fs-" + target_slug(k.fs) + "\">" + html_escape(k.fs) + "</a> ";
  b += "</nav>";
  for (const auto& k : columns) {
    b += "<h2 id=\"fs-" + target_slug(k.fs) + "\">" + html_escape(k.fs) + "</h2><div class=\"wrap\"><table><caption>" +
         html_escape(k.fs) + " on " + std::to_string(k.targets.size()) +
         " kernels</caption><thead><tr><th scope=\"col\"></th>";
    for (size_t i = 0; i < k.targets.size(); ++i)
      b += "<th scope=\"col\"><a href=\"targets/" + target_slug(k.targets[i]) + ".html\">" + html_escape(k.kernels[i]) +
           "</a><br><span class=\"note\">" + html_escape(k.targets[i]) + "</span></th>";
    b += "</tr></thead><tbody><tr><th scope=\"rowgroup\" colspan=\"" + std::to_string(k.targets.size() + 1) +
         "\">Profile</th></tr>";
    auto target_row = [&](const std::string& label, const std::string& anchor, auto value_of) {
      std::vector<std::string> values, hrefs;
      for (const auto& t : k.targets) {
        values.push_back(value_of(v.summary["targets"][t]));
        hrefs.push_back("targets/" + target_slug(t) + ".html#" + anchor);
      }
      return row(html_escape(label), values, hrefs);
    };
    for (const auto& a : kAxes)
      b += target_row(a, a, [&](const json& tj) { return tj["profile"].value(a, "unknown"); });
    // closest_policy is null when policies tie; closest_policies names them.
    b += target_row("closest policy", "closest", [](const json& tj) {
      if (tj.contains("closest_policy") && tj["closest_policy"].is_string())
        return tj["closest_policy"].get<std::string>();
      std::string tie;
      for (const auto& p : tj.value("closest_policies", json::array()))
        if (p.is_string()) tie += (tie.empty() ? "" : " = ") + p.get<std::string>();
      return tie.empty() ? std::string("none") : "tie: " + tie;
    });
    b += "<tr><th scope=\"rowgroup\" colspan=\"" + std::to_string(k.targets.size() + 1) + "\">Rules</th></tr>";
    for (const auto& r : kRules)
      b += target_row(r, r, [&](const json& tj) { return tj["rules"].value(r, "n/a"); });
    b += "<tr><th scope=\"rowgroup\" colspan=\"" + std::to_string(k.targets.size() + 1) +
         "\">Steps whose outcome differs between kernels</th></tr>";
    size_t differing = 0;
    for (const auto& c : v.cases) {
      std::vector<json> results;
      for (const auto& t : k.targets) results.push_back(v.result(t, c));
      const json steps = v.run["cases"][c].value("steps", json::array());
      for (size_t i = 0; i < steps.size(); ++i) {
        std::vector<std::string> values, hrefs;
        for (size_t col = 0; col < k.targets.size(); ++col) {
          json o;
          const json& res = results[col];
          if (res.is_null()) {
            values.push_back("no result");
          } else if (res.value("status", "") != "completed" && res.value("steps", json::array()).empty()) {
            values.push_back(res.value("status", "?"));
          } else {
            for (const auto& s : res.value("steps", json::array()))
              if (s.value("index", size_t(0)) == i) o = s;
            values.push_back(outcome_key(o));
          }
          hrefs.push_back("cases/" + target_slug(k.targets[col]) + "/" + c + ".html#step-" + std::to_string(i));
        }
        if (std::all_of(values.begin(), values.end(), [&](const std::string& x) { return x == values[0]; })) continue;
        ++differing;
        const json& s = steps[i];
        std::string label = html_escape(c) + " <span class=\"note\">#" + std::to_string(i) + " " +
                            html_escape(s.value("op", ""));
        if (s.contains("probe")) label += " " + html_escape(s.value("probe", ""));
        b += row(label + "</span>", values, hrefs);
      }
    }
    if (differing == 0)
      b += "<tr><td colspan=\"" + std::to_string(k.targets.size() + 1) +
           "\" class=\"note\">Every step of every case had the same outcome on all these kernels.</td></tr>";
    b += "</tbody></table></div>";
  }
  return b;
}

}  // namespace syncprobe::report_detail
