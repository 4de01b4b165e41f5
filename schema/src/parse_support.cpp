// The `fstests` table of a case: fstests' own pass condition stated in the
// case's probes.
#include <algorithm>
#include <regex>
#include <set>

#include "parse_support.h"
#include "suggest.h"
#include "syncprobe/errno_names.h"

namespace syncprobe::parse {
namespace {

const std::vector<std::string> kFstestsKeys = {"test", "passes_when", "not_checked", "not_run_on", "expect"};
const std::vector<std::string> kExpectationKeys = {"probe", "one_of", "expect"};

const toml::source_region& where(const toml::node& n, const toml::source_region& fallback) {
  // A table made by dotted keys (fstests.test = ...) has no position of its own.
  return n.source().begin.line > 0 ? n.source() : fallback;
}

bool valid_expect(const std::string& e) {
  return e == "ok" || e == "error" || errno_from_name(e).has_value();
}

std::set<std::string> probes_of(const Case& c) {
  std::set<std::string> out;
  for (const auto& s : c.steps)
    if (!s.probe.empty()) out.insert(s.probe);
  return out;
}

void unknown_keys(const toml::table& t, const std::vector<std::string>& keys, const char* what,
                  const ErrorAt& error) {
  for (auto&& [key, node] : t) {
    const std::string k(key.str());
    if (std::find(keys.begin(), keys.end(), k) != keys.end()) continue;
    const std::string dym = did_you_mean(k, keys);
    error(key.source(), "unknown key '" + k + "' in " + what, dym.empty() ? std::string(what) + " has " + join(keys) : dym);
  }
}

std::optional<FstestsExpectation> parse_expectation(const toml::node& n, const std::set<std::string>& probes,
                                                    const ErrorAt& error) {
  const toml::table* t = n.as_table();
  if (!t) {
    error(n.source(), "an fstests expectation must be a table",
          "write { probe = \"report.first\", expect = \"error\" }");
    return std::nullopt;
  }
  bool ok = true;
  unknown_keys(*t, kExpectationKeys, "an fstests expectation", [&](auto& at, auto m, auto h) {
    ok = false;
    error(at, std::move(m), std::move(h));
  });
  FstestsExpectation e;
  e.line = int(n.source().begin.line);
  e.column = int(n.source().begin.column);
  const toml::node* probe = t->get("probe");
  const toml::node* one_of = t->get("one_of");
  auto known = [&](const toml::node& p, const std::string& name) {
    if (probes.count(name)) return true;
    error(p.source(), "probe '" + name + "' names no step of this case",
          "label the step fstests checks with probe = \"" + name + "\"");
    return false;
  };
  if ((probe != nullptr) == (one_of != nullptr)) {
    error(n.source(), "an fstests expectation names either 'probe' or 'one_of'",
          "write probe = \"report.first\" (one call) or one_of = [\"a\", \"b\"] (exactly one of them)");
    return std::nullopt;
  }
  if (probe) {
    if (!probe->is_string()) {
      error(probe->source(), "'probe' must be a string", "e.g. probe = \"report.first\"");
      return std::nullopt;
    }
    e.probes = {*probe->value<std::string>()};
    ok = known(*probe, e.probes[0]) && ok;
  } else {
    const toml::array* arr = one_of->as_array();
    if (!arr || arr->size() < 2) {
      error(one_of->source(), "'one_of' must list at least two probes", "e.g. one_of = [\"syncfs.first\", \"syncfs.again\"]");
      return std::nullopt;
    }
    e.one_of = true;
    for (const toml::node& p : *arr) {
      if (!p.is_string()) {
        error(p.source(), "'one_of' must hold probe names", "quote it: \"syncfs.first\"");
        ok = false;
        continue;
      }
      e.probes.push_back(*p.value<std::string>());
      ok = known(p, e.probes.back()) && ok;
    }
  }
  const toml::node* expect = t->get("expect");
  if (!expect || !expect->is_string()) {
    error(expect ? expect->source() : n.source(), "an fstests expectation needs expect = \"ok\", \"error\" or an errno",
          "fstests checks the call's result: expect = \"error\"");
    return std::nullopt;
  }
  e.expect = *expect->value<std::string>();
  if (!valid_expect(e.expect)) {
    error(expect->source(), "expect cannot be '" + e.expect + "'", "use ok, error or an errno name (EIO)");
    ok = false;
  }
  if (!ok) return std::nullopt;
  return e;
}

std::string string_field(const toml::table& t, const char* key, const toml::source_region& at, bool required,
                         const char* example, const ErrorAt& error) {
  const toml::node* n = t.get(key);
  if (!n) {
    if (required)
      error(at, std::string("the fstests table has no '") + key + "'", std::string("add fstests.") + key + " = " + example);
    return "";
  }
  if (!n->is_string() || n->value<std::string>()->empty()) {
    error(n->source(), std::string("fstests.") + key + " must be a non-empty string",
          std::string("write fstests.") + key + " = " + example);
    return "";
  }
  return *n->value<std::string>();
}

}  // namespace

std::optional<FstestsCondition> parse_fstests(const toml::node& node, const Case& c, const ErrorAt& error) {
  const toml::table* t = node.as_table();
  if (!t) {
    error(node.source(), "'fstests' must be a table",
          "write fstests.test = \"generic/441\", fstests.passes_when = \"...\", fstests.expect = [...]");
    return std::nullopt;
  }
  bool ok = true;
  const ErrorAt note = [&](auto& at, auto m, auto h) {
    ok = false;
    error(at, std::move(m), std::move(h));
  };
  const toml::source_region& at = where(node, node.source());
  unknown_keys(*t, kFstestsKeys, "the fstests table", note);
  FstestsCondition f;
  f.test = string_field(*t, "test", at, true, "\"generic/441\"", note);
  f.passes_when = string_field(*t, "passes_when", at, true, "\"what fstests checks, in words\"", note);
  f.not_checked = string_field(*t, "not_checked", at, false, "\"what this case cannot observe\"", note);
  if (const toml::node* n = t->get("not_run_on")) {
    const toml::array* arr = n->as_array();
    if (!arr) note(n->source(), "fstests.not_run_on must be an array of filesystem names", "e.g. fstests.not_run_on = [\"btrfs\"]");
    for (size_t i = 0; arr && i < arr->size(); ++i) {
      const toml::node& e = *arr->get(i);
      if (e.is_string() && !e.value<std::string>()->empty()) f.not_run_on.push_back(*e.value<std::string>());
      else note(e.source(), "fstests.not_run_on must hold filesystem names", "e.g. \"btrfs\"");
    }
  }
  static const std::regex test_re("[a-z0-9]+/[0-9]{3,}");
  if (!f.test.empty() && !std::regex_match(f.test, test_re))
    note(t->get("test")->source(), "'" + f.test + "' is not an fstests test name", "e.g. \"generic/441\"");
  if (const toml::node* ex = t->get("expect")) {
    if (const toml::array* arr = ex->as_array()) {
      const auto probes = probes_of(c);
      for (const toml::node& n : *arr) {
        auto e = parse_expectation(n, probes, note);
        if (e) f.expect.push_back(std::move(*e));
        else ok = false;
      }
    } else {
      note(ex->source(), "fstests.expect must be an array of tables",
           "write fstests.expect = [ { probe = \"report.first\", expect = \"error\" } ]");
    }
  }
  if (ok && f.expect.empty() && f.not_checked.empty())
    note(at, "the fstests condition checks nothing in this case",
         "add fstests.expect = [ { probe = ..., expect = ... } ], or say in fstests.not_checked what "
         "the restatement cannot observe");
  if (!ok) return std::nullopt;
  return f;
}

void check_fstests_id(const toml::table& root, const Case& c, const ErrorAt& error) {
  static const std::regex id_re("fstests-([a-z0-9]+)-([0-9]{3,})");
  std::smatch m;
  if (!std::regex_match(c.id, m, id_re)) return;
  const std::string test = m[1].str() + "/" + m[2].str();
  const toml::node* id = root.get("id");
  const toml::node* f = root.get("fstests");
  if (!f) {
    error(id->source(), "case '" + c.id + "' restates fstests " + test + " but does not state fstests' pass condition",
          "add fstests.test = \"" + test + "\", fstests.passes_when = \"...\" and fstests.expect = [...]");
    return;
  }
  const toml::table* t = f->as_table();
  const toml::node* named = t ? t->get("test") : nullptr;
  if (named && named->is_string() && *named->value<std::string>() != test)
    error(named->source(), "fstests.test '" + *named->value<std::string>() + "' differs from the case id's " + test,
          "write fstests.test = \"" + test + "\"");
}

}  // namespace syncprobe::parse
