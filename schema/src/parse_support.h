#pragma once
// The case parser's helpers (private to schema/): the `fstests` table and
// the checks of a case's flow.
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <toml++/toml.h>

#include "syncprobe/case.h"

namespace syncprobe::parse {

// Records a problem at a position of the file being parsed, with a hint.
using ErrorAt = std::function<void(const toml::source_region& at, std::string message, std::string hint)>;

// The case's `fstests` table (docs/cases.md). Every problem goes to `error`;
// nullopt when there was one. `c` must hold the case's parsed steps: the
// probes the table names must be steps of the case.
std::optional<FstestsCondition> parse_fstests(const toml::node& node, const Case& c, const ErrorAt& error);

// A case whose id says it restates an fstests test ("fstests-generic-441")
// must state fstests' pass condition, and name that test.
void check_fstests_id(const toml::table& root, const Case& c, const ErrorAt& error);

// Records a problem at a step of the case being checked, with a hint.
using StepErrorAt = std::function<void(const Step& s, std::string message, std::string hint)>;

// Descriptors are opened before use and not used after close, within the
// process that opened them; probes are unique; proofs and @probe references
// name steps that exist; at most kMaxSteps steps and kMaxProcesses processes.
void check_flow(const Case& c, const StepErrorAt& at);

}  // namespace syncprobe::parse
