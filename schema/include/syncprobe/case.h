#pragma once
// A case: a declarative script of steps, with the evidence it gives. Cases know
// nothing about targets; they list the capabilities they need.
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "syncprobe/steps.h"

namespace syncprobe {

// What a conforming platform (the proposed semantics) does at a step, and the
// rule (R1..R7) that this is evidence for.
//
// expect = "honest" states R2/R3 directly: the step may return success only
// if the later read_back labelled `proof` shows `expect_tag` on stable
// storage. `expect_tag` may name another step's reading as "@<probe>" (the
// tag that step read), e.g. "what process B read must be on disk".
struct Check {
  std::string rule;                // "R2"
  std::string expect;              // "ok", "error", an errno name ("EIO"), "honest", or "" (none)
  std::string expect_tag;          // a tag, "zero", "@<probe>", ... for reads and proofs; "" (none)
  std::string proof;               // for expect = "honest": probe of a later read_back
};

struct Step {
  StepKind kind{};
  int line = 0;                    // where the step starts in its case file (1-based)
  int column = 0;
  std::string proc;                // in-process steps: the process ("a" by default)
  // The step's own arguments, as declared in the step table, with defaults
  // applied; sizes are already converted to bytes (as decimal strings).
  std::map<std::string, std::string> args;
  std::vector<std::string> list_args(const std::string& name) const;  // choice_list args
  std::string arg(const std::string& name) const;                     // "" when absent
  uint64_t size_arg(const std::string& name) const;                   // 0 when absent
  bool has(const std::string& name) const { return args.count(name) != 0; }

  std::string probe;               // classifier label, e.g. "report.other_fd"; "" none
  std::optional<Check> check;
  std::string note;                // free text shown in reports
};

// What fstests itself checks, for a case restated from an fstests test, in
// this case's probes: the restatement runs the same scenario, and the report
// shows fstests' verdict beside the rules' (a kernel can pass generic/441 and
// fail R2). Parsed from the case's `fstests` table (docs/cases.md).
struct FstestsExpectation {
  std::vector<std::string> probes;  // the probe whose call is judged; with one_of, several
  bool one_of = false;              // exactly one of `probes` meets `expect`, the others succeed
  std::string expect;               // "ok", "error" or an errno name ("EIO")
  int line = 0;                     // where the expectation is written
  int column = 0;
};
struct FstestsCondition {
  std::string test;                 // "generic/441"
  std::string passes_when;          // fstests' pass condition, in words
  std::string not_checked;          // what of it the restatement cannot observe; "" none
  std::vector<std::string> not_run_on;  // filesystems the fstests test itself skips (_notrun)
  std::vector<FstestsExpectation> expect;
};

struct Case {
  std::string id;                  // stable id, e.g. "seed-two-process"
  std::string title;
  std::string description;         // what a conforming platform does; what is known of Linux
  std::string file;                // path it was read from ("" when built in code)
  std::string hash;                // sha256 of the file's bytes (hex)
  std::vector<std::string> rules;  // rules this case gives evidence for
  std::vector<std::string> axes;   // taxonomy axes it gives evidence for
  std::vector<std::string> requires_;  // declared capabilities, besides those of the steps
  std::vector<std::string> references; // e.g. "fstests generic/441"
  std::vector<Step> steps;
  std::optional<FstestsCondition> fstests;  // cases restated from fstests

  // Declared capabilities plus those implied by the steps.
  std::set<std::string> capabilities() const;
};

// Capabilities one step needs (its kind's, plus e.g. "fault:drop" for
// mode="drop", "fault:metadata" for range="metadata").
std::set<std::string> step_capabilities(const Step& step);

// Cases travel to guests and into results as JSON.
void to_json(nlohmann::json& j, const Case& c);
void from_json(const nlohmann::json& j, Case& c);
void to_json(nlohmann::json& j, const Step& s);
void to_json(nlohmann::json& j, const FstestsCondition& f);
void from_json(const nlohmann::json& j, FstestsCondition& f);
void from_json(const nlohmann::json& j, Step& s);

}  // namespace syncprobe
