// compare.html: what changed between two runs, target by target.
#include "site.h"

#include <algorithm>
#include <map>
#include <set>
#include <ostream>

#include "syncprobe/report.h"

namespace syncprobe::site {

void compare(const Run& a, const Run& b, const fs::path& out, std::ostream& o) {
  std::string body = "<p><a href=\"index.html\">← report</a></p><h1>What changed</h1><p class=\"meta\">From run <code>" +
                     html_escape(a.run.value("id", "")) + "</code> (host kernel " + html_escape(a.run["host"].value("kernel", "")) +
                     ") to run <code>" + html_escape(b.run.value("id", "")) + "</code> (host kernel " +
                     html_escape(b.run["host"].value("kernel", "")) + ").</p>";
  std::string rows, text;
  int changes = 0;
  // Targets pair by name; a VM target also pairs with the same filesystem on
  // another kernel (vm:6.1:ext4 with vm:6.12:ext4) when that is unambiguous.
  auto kernel_free = [](const std::string& t) {
    if (t.rfind("vm:", 0) != 0) return t;
    const auto second = t.find(':', 3);
    return second == std::string::npos ? t : "vm:*" + t.substr(second);
  };
  std::map<std::string, std::vector<std::string>> b_by_key;
  for (const auto& t : b.targets) b_by_key[kernel_free(t)].push_back(t);
  for (const auto& ta_name : a.targets) {
    std::string tb_name = ta_name;
    if (!b.summary["targets"].contains(ta_name)) {
      auto it = b_by_key.find(kernel_free(ta_name));
      if (it == b_by_key.end() || it->second.size() != 1 || kernel_free(ta_name) == ta_name) continue;
      tb_name = it->second[0];
    }
    const std::string t = ta_name == tb_name ? ta_name : ta_name + " → " + tb_name;
    const json& ta = a.summary["targets"][ta_name];
    const json& tb = b.summary["targets"][tb_name];
    auto add = [&](const std::string& what, const std::string& va, const std::string& vb, const std::string& where = "") {
      ++changes;
      rows += "<tr><th scope=\"row\">" + html_escape(t) + "</th><td>" + html_escape(what) + "</td><td class=\"" + value_class(va) +
              "\">" + html_escape(va) + "</td><td class=\"" + value_class(vb) + "\">" + html_escape(vb) + "</td><td>" + where + "</td></tr>";
      text += t + ": " + what + ": " + va + " -> " + vb + "\n";
    };
    for (const auto& ax : kAxes)
      if (ta["profile"].value(ax, "") != tb["profile"].value(ax, "")) add(axis_title(ax), ta["profile"].value(ax, ""), tb["profile"].value(ax, ""));
    for (const auto& rule : kRules)
      if (ta["rules"].value(rule, "") != tb["rules"].value(rule, "")) add(rule, ta["rules"].value(rule, ""), tb["rules"].value(rule, ""));
    if (closest_text(ta) != closest_text(tb)) add("closest policy", closest_text(ta), closest_text(tb));
    // Fault classes and fstests verdicts, where both summaries have them.
    const json pa = ta.value("profiles", json()), pb = tb.value("profiles", json());
    if (pa.is_object() && pb.is_object()) {
      std::set<std::string> classes;
      for (const auto& [c, v] : pa.items()) classes.insert(c);
      for (const auto& [c, v] : pb.items()) classes.insert(c);
      for (const auto& c : classes)
        for (const auto& ax : kAxes) {
          auto value = [&](const json& p) {
            return p.contains(c) ? p[c]["axes"].value(ax, json::object()).value("value", "") : std::string("(no case)");
          };
          if (value(pa) != value(pb)) add(axis_title(ax) + " (" + c + ")", value(pa), value(pb));
        }
    }
    const json fa = ta.value("fstests", json()), fb = tb.value("fstests", json());
    if (fa.is_object() && fb.is_object())
      for (const auto& [test, f] : fa.items()) {
        const std::string va = f.value("verdict", ""), vb = fb.value(test, json::object()).value("verdict", "");
        if (va != vb) add("fstests " + test, va, vb);
      }
    for (const auto& c : a.cases) {
      const json ra = a.result(ta_name, c), rb = b.result(tb_name, c);
      if (ra.is_null() || rb.is_null()) continue;
      const json sa = ra.value("steps", json::array()), sb = rb.value("steps", json::array());
      for (size_t i = 0; i < std::max(sa.size(), sb.size()); ++i) {
        const json oa = i < sa.size() ? sa[i] : json(), ob = i < sb.size() ? sb[i] : json();
        if (outcome_key(oa) == outcome_key(ob)) continue;
        const json& any = oa.is_null() ? ob : oa;
        add(c + " step " + std::to_string(i) + " (" + any.value("op", "") + ", line " + std::to_string(any.value("line", 0)) + ")",
            outcome_key(oa), outcome_key(ob));
      }
    }
  }
  body += "<div class=\"wrap\"><table><caption>" + std::to_string(changes) + " differences between the runs, for targets present in both</caption>"
          "<thead><tr><th scope=\"col\">Target</th><th scope=\"col\">What</th><th scope=\"col\">Run A</th><th scope=\"col\">Run B</th><th scope=\"col\"></th></tr></thead><tbody>" +
          rows + "</tbody></table></div>";
  write_file(out / "compare.html", page("syncprobe: what changed", body));
  o << (text.empty() ? "no differences\n" : text);
  o << "compare: " << (out / "compare.html").string() << "\n";
}

}  // namespace syncprobe::site
