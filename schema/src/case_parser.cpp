// Cases from TOML. The step table (steps.cpp) drives what is accepted; this
// file turns TOML nodes into Steps and every problem into a CaseError with
// the position of the node at fault and a suggestion. Nothing stops at the
// first problem: a file is checked to the end, and every file is checked.
#include "syncprobe/case_parser.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <array>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <sstream>

#include <toml++/toml.h>

#include "parse_support.h"
#include "suggest.h"
#include "syncprobe/errno_names.h"
#include "syncprobe/hash.h"
#include "syncprobe/tag.h"
#include "syncprobe/taxonomy.h"

namespace syncprobe {

std::string CaseError::format() const {
  std::string s = file;
  if (line > 0) s += ":" + std::to_string(line) + ":" + std::to_string(column);
  s += ": error: " + message;
  if (!hint.empty()) s += "\n  hint: " + hint;
  return s;
}

namespace {

std::vector<std::string> axis_ids() {
  std::vector<std::string> out;
  for (const auto& a : taxonomy::axes()) out.emplace_back(a.id);
  return out;
}

const std::vector<std::string> kCaseKeys = {"id",   "title",    "description", "rules",  "axes",
                                            "requires", "references", "step", "fstests"};
const std::set<std::string> kReadTags = {"zero", "mixed", "garbage", "empty"};

bool is_rule(const std::string& r) { return taxonomy::find_rule(r) != nullptr; }

// ---- the parser ---------------------------------------------------------------------

class Parser {
 public:
  Parser(std::string file, std::vector<CaseError>& errors, const CapabilityTable* capabilities)
      : file_(std::move(file)), errors_(errors), capabilities_(capabilities) {}

  void error(const toml::source_region& at, std::string message, std::string hint = "") {
    errors_.push_back({file_, int(at.begin.line), int(at.begin.column), std::move(message),
                       std::move(hint)});
  }
  void error(const toml::node& at, std::string message, std::string hint = "") {
    error(at.source(), std::move(message), std::move(hint));
  }

  std::optional<Case> parse(const toml::table& root) {
    const size_t before = errors_.size();
    Case c;
    c.file = file_;
    for (auto&& [key, node] : root) {
      const std::string k(key.str());
      if (std::find(kCaseKeys.begin(), kCaseKeys.end(), k) == kCaseKeys.end())
        error(key.source(), "unknown key '" + k + "' in a case",
              did_you_mean(k, kCaseKeys).empty() ? "a case has " + join(kCaseKeys)
                                                 : did_you_mean(k, kCaseKeys));
    }
    c.id = required_string(root, "id", "id = \"my-case\"");
    c.title = required_string(root, "title", "title = \"what the case shows\"");
    c.description = required_string(root, "description",
                                     "description = \"\"\"what a conforming platform does; "
                                     "what is known of Linux\"\"\"");
    if (!c.id.empty()) {
      static const std::regex id_re("[a-z0-9][a-z0-9-]*");
      if (!std::regex_match(c.id, id_re))
        error(*root.get("id"), "case id '" + c.id + "' is not lowercase letters, digits and '-'",
              "e.g. id = \"lifecycle-close-reopen\"");
      const std::string stem = std::filesystem::path(file_).stem().string();
      if (std::filesystem::path(file_).extension() == ".toml" && stem != c.id)
        error(*root.get("id"), "case id '" + c.id + "' differs from its file name '" + stem + ".toml'",
              "rename the file to " + c.id + ".toml or set id = \"" + stem + "\"");
    }
    c.rules = string_list(root, "rules", [&](const toml::node& n, const std::string& v) {
      if (!is_rule(v)) error(n, "unknown rule '" + v + "'", "rules are R1 to R7");
    });
    c.axes = string_list(root, "axes", [&](const toml::node& n, const std::string& v) {
      const auto axes = axis_ids();
      if (!taxonomy::find_axis(v))
        error(n, "unknown axis '" + v + "'",
              did_you_mean(v, axes).empty() ? "axes are " + join(axes) : did_you_mean(v, axes));
    });
    c.requires_ = string_list(root, "requires", [&](const toml::node& n, const std::string& v) {
      if (!capabilities_ || capabilities_->count(v)) return;
      std::vector<std::string> names;
      for (const auto& [name, _] : *capabilities_) names.push_back(name);
      const std::string hint = did_you_mean(v, names);
      error(n, "unknown capability '" + v + "'",
            hint.empty() ? "capabilities are listed in data/capabilities.toml (syncprobe list capabilities)"
                         : hint);
    });
    c.references = string_list(root, "references", [](const toml::node&, const std::string&) {});

    const toml::node* steps = root.get("step");
    if (!steps) {
      errors_.push_back({file_, 1, 1, "the case has no steps",
                         "add step = [ { op = \"open\", fd = \"a\" }, ... ]"});
    } else if (const toml::array* arr = steps->as_array()) {
      for (const toml::node& s : *arr) {
        if (const toml::table* t = s.as_table()) {
          if (auto step = parse_step(*t)) c.steps.push_back(std::move(*step));
        } else {
          error(s, "a step must be a table", "write { op = \"fsync\", fd = \"a\" }");
        }
      }
      if (arr->empty()) error(*steps, "the case has no steps", "add at least one step");
    } else {
      error(*steps, "'step' must be an array of tables",
            "write step = [ { op = \"open\", fd = \"a\" }, ... ] or [[step]] tables");
    }
    parse::check_flow(c, [&](const Step& s, std::string m, std::string h) { at(s, std::move(m), std::move(h)); });
    const parse::ErrorAt report = [this](const toml::source_region& at, std::string m, std::string h) {
      error(at, std::move(m), std::move(h));
    };
    if (const toml::node* f = root.get("fstests")) c.fstests = parse::parse_fstests(*f, c, report);
    if (!c.id.empty()) parse::check_fstests_id(root, c, report);
    if (errors_.size() != before) return std::nullopt;
    return c;
  }

 private:
  std::string required_string(const toml::table& t, const char* key, const char* example) {
    const toml::node* n = t.get(key);
    if (!n) {
      errors_.push_back({file_, 1, 1, std::string("the case has no '") + key + "'",
                         std::string("add ") + example});
      return "";
    }
    if (!n->is_string()) {
      error(*n, std::string("'") + key + "' must be a string", std::string("write ") + example);
      return "";
    }
    return *n->value<std::string>();
  }

  template <typename F>
  std::vector<std::string> string_list(const toml::table& t, const char* key, F validate) {
    std::vector<std::string> out;
    const toml::node* n = t.get(key);
    if (!n) return out;
    const toml::array* arr = n->as_array();
    if (!arr) {
      error(*n, std::string("'") + key + "' must be an array of strings",
            std::string("write ") + key + " = [\"...\"]");
      return out;
    }
    for (const toml::node& e : *arr) {
      if (!e.is_string()) {
        error(e, std::string("'") + key + "' must hold strings", "quote it: \"...\"");
        continue;
      }
      out.push_back(*e.value<std::string>());
      validate(e, out.back());
    }
    return out;
  }

  // The value of an argument as the step table wants it, or nullopt (and an error).
  std::optional<std::string> convert(const ArgSpec& spec, const toml::node& n, std::string_view op) {
    const std::string where = "'" + std::string(spec.name) + "' of " + std::string(op);
    auto want_string = [&](const char* example) -> std::optional<std::string> {
      if (!n.is_string()) {
        error(n, where + " must be a string", std::string("write ") + std::string(spec.name) + " = " + example);
        return std::nullopt;
      }
      return *n.value<std::string>();
    };
    switch (spec.type) {
      case ArgType::string:
        return want_string("\"...\"");
      case ArgType::name: {
        auto v = want_string("\"a\"");
        if (!v) return v;
        static const std::regex re("[a-z][a-z0-9_]*");
        if (!std::regex_match(*v, re)) {
          error(n, where + " '" + *v + "' is not a name", "names are lowercase: [a-z][a-z0-9_]*");
          return std::nullopt;
        }
        return v;
      }
      case ArgType::path: {
        auto v = want_string("\"f\"");
        if (!v) return v;
        if (v->empty() || (*v)[0] == '/' || v->find("..") != std::string::npos) {
          error(n, where + " '" + *v + "' must be relative to the filesystem root, without '..'",
                "e.g. file = \"f\"");
          return std::nullopt;
        }
        return v;
      }
      case ArgType::size: {
        uint64_t bytes = 0;
        if (auto i = n.value<int64_t>(); i && n.is_integer()) {
          if (*i < 0) {
            error(n, where + " must not be negative", "");
            return std::nullopt;
          }
          bytes = uint64_t(*i);
        } else if (n.is_string()) {
          if (!parse_size(*n.value<std::string>(), bytes)) {
            error(n, where + " '" + *n.value<std::string>() + "' is not a size",
                  "write bytes (4096) or a string with K, M or G (\"4K\")");
            return std::nullopt;
          }
        } else {
          error(n, where + " must be a size", "write bytes (4096) or a string with K, M or G (\"4K\")");
          return std::nullopt;
        }
        if (bytes > arg_max(spec)) {
          error(n, where + " is " + size_text(bytes) + ", more than the " + size_text(arg_max(spec)) +
                       " a case may ask for",
                "cases show semantics with small amounts: use at most " + size_text(arg_max(spec)));
          return std::nullopt;
        }
        return std::to_string(bytes);
      }
      case ArgType::integer: {
        const auto i = n.value<int64_t>();
        if (!i || !n.is_integer() || *i < 0) {
          error(n, where + " must be a non-negative integer", std::string("e.g. ") + std::string(spec.name) + " = 1");
          return std::nullopt;
        }
        if (uint64_t(*i) > arg_max(spec)) {
          error(n, where + " is " + std::to_string(*i) + ", more than " + std::to_string(arg_max(spec)),
                "use at most " + std::to_string(arg_max(spec)));
          return std::nullopt;
        }
        return std::to_string(*i);
      }
      case ArgType::tag: {
        auto v = want_string("\"A\"");
        if (!v) return v;
        if (!valid_tag(*v)) {
          error(n, where + " '" + *v + "' is not a tag", "1 to 16 characters of A-Z a-z 0-9 _ . -");
          return std::nullopt;
        }
        return v;
      }
      case ArgType::choice: {
        auto v = want_string("\"...\"");
        if (!v) return v;
        std::vector<std::string> choices(spec.choices.begin(), spec.choices.end());
        if (std::find(choices.begin(), choices.end(), *v) == choices.end()) {
          const std::string dym = did_you_mean(*v, choices);
          error(n, where + " cannot be '" + *v + "'",
                (dym.empty() ? "" : dym + " ") + "choose one of " + join(choices));
          return std::nullopt;
        }
        return v;
      }
      case ArgType::choice_list: {
        const toml::array* arr = n.as_array();
        if (!arr) {
          error(n, where + " must be an array", std::string("e.g. ") + std::string(spec.name) + " = [\"" +
                                                    std::string(spec.choices.empty() ? "" : spec.choices[0]) + "\"]");
          return std::nullopt;
        }
        std::vector<std::string> choices(spec.choices.begin(), spec.choices.end());
        std::string joined;
        bool ok = true;
        for (const toml::node& e : *arr) {
          if (!e.is_string()) {
            error(e, where + " must hold strings", "choose from " + join(choices));
            ok = false;
            continue;
          }
          const std::string v = *e.value<std::string>();
          if (std::find(choices.begin(), choices.end(), v) == choices.end()) {
            const std::string dym = did_you_mean(v, choices);
            error(e, where + " cannot hold '" + v + "'",
                  (dym.empty() ? "" : dym + " ") + "choose from " + join(choices));
            ok = false;
            continue;
          }
          joined += (joined.empty() ? "" : ",") + v;
        }
        if (!ok) return std::nullopt;
        return joined;
      }
    }
    return std::nullopt;
  }

  std::optional<Step> parse_step(const toml::table& t) {
    const size_t before = errors_.size();
    Step step;
    step.line = int(t.source().begin.line);
    step.column = int(t.source().begin.column);
    const toml::node* opn = t.get("op");
    std::vector<std::string> ops;
    for (const auto& s : step_table()) ops.emplace_back(s.name);
    if (!opn) {
      error(t, "a step needs 'op'", "e.g. { op = \"fsync\", fd = \"a\" }; ops: " + join(ops));
      return std::nullopt;
    }
    if (!opn->is_string()) {
      error(*opn, "'op' must be a string", "e.g. op = \"fsync\"");
      return std::nullopt;
    }
    const std::string op = *opn->value<std::string>();
    const StepSpec* spec = find_step(op);
    if (!spec) {
      const std::string dym = did_you_mean(op, ops);
      error(*opn, "unknown step '" + op + "'" + (dym.empty() ? "" : "; " + dym),
            "steps are " + join(ops) + " (syncprobe list steps)");
      return std::nullopt;
    }
    step.kind = spec->kind;
    std::vector<std::string> valid = {"op"};
    for (const auto& a : spec->args) valid.emplace_back(a.name);
    for (const auto& a : common_args())
      if (a.name != "proc" || spec->in_process) valid.emplace_back(a.name);

    std::map<std::string, std::string> evidence;
    for (auto&& [key, node] : t) {
      const std::string k(key.str());
      if (k == "op") continue;
      const ArgSpec* a = find_arg(*spec, k);
      bool common = false;
      if (!a)
        for (const auto& c : common_args())
          if (c.name == k) {
            a = &c;
            common = true;
          }
      if (!a || (k == "proc" && !spec->in_process)) {
        const std::string dym = did_you_mean(k, valid);
        std::string msg = k == "proc" ? "'" + op + "' acts on the whole machine and takes no 'proc'"
                                      : "'" + op + "' has no argument '" + k + "'";
        error(key.source(), msg,
              (dym.empty() || k == "proc" ? "" : dym + " ") + op + " takes " +
                  join(std::vector<std::string>(valid.begin() + 1, valid.end())));
        continue;
      }
      auto v = convert(*a, node, op);
      if (!v) continue;
      if (k == "errno" && !errno_from_name(*v)) {
        error(node, "unknown errno '" + *v + "'", "use a name such as EIO, ENOSPC, ENXIO, EROFS");
        continue;
      }
      if (common) evidence[k] = *v;
      else step.args[k] = *v;
    }
    for (const auto& a : spec->args) {
      if (step.args.count(std::string(a.name))) continue;
      if (a.required) {
        error(t, "'" + op + "' needs '" + std::string(a.name) + "' (" + std::string(a.help) + ")",
              "add " + std::string(a.name) + " = " + (a.type == ArgType::size ? "\"4K\"" : "\"...\""));
        continue;
      }
      if (a.default_value.empty()) continue;
      std::string d(a.default_value);
      if (a.type == ArgType::size) {
        uint64_t bytes = 0;
        parse_size(d, bytes);
        d = std::to_string(bytes);
      }
      step.args[std::string(a.name)] = d;
    }
    if (step.kind == StepKind::fault) {
      const bool fiu = step.arg("range") == "libfiu";
      if (fiu && !step.args.count("point"))
        error(t, "a libfiu fault needs 'point' (the failure point of the programs' calls)",
              "add point = \"posix/io/sync/fdatasync\"");
      // libfiu's onetime: one failure per process; it cannot count further.
      if (fiu && step.args.count("count") && step.arg("count") != "1")
        error(*t.get("count"), "a libfiu fault fails every call until heal, or one (count = 1, libfiu's onetime)",
              "use count = 1 or remove it");
      for (const char* k : {"point", "percent"})
        if (!fiu && step.args.count(k))
          error(*t.get(k), std::string("'") + k + "' is only meaningful with range = \"libfiu\"",
                "add range = \"libfiu\" or remove it");
    }
    step.proc = spec->in_process ? (evidence.count("proc") ? evidence["proc"] : "a") : "";
    step.probe = evidence["probe"];
    step.note = evidence["note"];
    const bool has_check = evidence.count("rule") || evidence.count("expect") ||
                           evidence.count("expect_tag") || evidence.count("proof");
    if (has_check) {
      Check c{evidence["rule"], evidence["expect"], evidence["expect_tag"], evidence["proof"]};
      if (c.rule.empty())
        error(t, "a check (expect, expect_tag, proof) needs the rule it is evidence for",
              "add rule = \"R5\"");
      if (c.expect.empty() && c.expect_tag.empty())
        error(t, "rule '" + c.rule + "' is given but nothing is expected",
              "add expect = \"error\" (or ok, an errno, honest) or expect_tag = \"A\"");
      if (!c.expect.empty() && c.expect != "ok" && c.expect != "error" && c.expect != "honest" &&
          !errno_from_name(c.expect))
        error(*t.get("expect"), "expect cannot be '" + c.expect + "'",
              "use ok, error, an errno name (EIO) or honest");
      if (c.expect == "honest" && (c.proof.empty() || c.expect_tag.empty()))
        error(*t.get("expect"), "expect = \"honest\" needs proof and expect_tag",
              "add proof = \"<probe of a later read_back>\", expect_tag = \"A\"");
      if (!c.proof.empty() && c.expect != "honest")
        error(*t.get("proof"), "proof is only meaningful with expect = \"honest\"", "");
      if (!c.expect_tag.empty() && c.expect_tag[0] != '@' && !valid_tag(c.expect_tag) &&
          !kReadTags.count(c.expect_tag))
        error(*t.get("expect_tag"), "expect_tag '" + c.expect_tag + "' is not a tag",
              "a tag (A), zero, mixed, or @probe (what that step read)");
      step.check = c;
    }
    if (errors_.size() != before) return std::nullopt;
    return step;
  }

  void at(const Step& s, std::string message, std::string hint) {
    errors_.push_back({file_, s.line, s.column, std::move(message), std::move(hint)});
  }

  std::string file_;
  std::vector<CaseError>& errors_;
  const CapabilityTable* capabilities_;  // nullptr: names are not checked
};

}  // namespace

ParseOutcome parse_case_text(std::string_view text, const std::string& file,
                             const CapabilityTable* capabilities) {
  ParseOutcome out;
  toml::table root;
  try {
    root = toml::parse(text, file);
  } catch (const toml::parse_error& e) {
    out.errors.push_back({file, int(e.source().begin.line), int(e.source().begin.column),
                          "not valid TOML: " + std::string(e.description()),
                          "see https://toml.io for the syntax; steps are inline tables"});
    return out;
  }
  Parser p(file, out.errors, capabilities);
  if (auto c = p.parse(root)) {
    c->hash = sha256_hex(text);
    out.cases.push_back(std::move(*c));
  }
  return out;
}

}  // namespace syncprobe
