#pragma once
// The taxonomy, declared once: the rules R1..R7, the axes of a profile and
// their values, the verdicts a rule or an fstests condition can get, and the
// fault classes a case is classified under. The case parser, the classifier,
// the terminal summary, the report and `syncprobe list taxonomy` read these
// tables; docs/design.md states them in prose (schema/test checks it agrees).
#include <span>
#include <string_view>

namespace syncprobe {

struct Case;

namespace taxonomy {

// How a reader should see a value: good, bad, in between, or no verdict.
// Colour is never the only signal; reports also print the value.
enum class Tone { good, mid, bad, none };
std::string_view to_string(Tone t);

struct Value {
  std::string_view name;     // "once-per-fd"
  std::string_view meaning;  // one line, shown in legends and `list taxonomy`
  Tone tone;
};

struct Axis {
  std::string_view id;       // "page_fate": the key in summary.json and in cases' `axes`
  std::string_view title;    // "Page fate"
  std::span<const Value> values;
};

struct Rule {
  std::string_view id;       // "R3"
  std::string_view name;     // "gone-bad"
  std::string_view text;
};

// A kind of fault. Each case is classified under the class of its fault, and
// each class gets its own profile: a device that vanished (ENXIO) says nothing
// about what a transient write error does.
struct FaultClass {
  std::string_view id;       // "data-write"
  std::string_view title;    // "transient data-write error"
  std::string_view meaning;
};

std::span<const Rule> rules();
std::span<const Axis> axes();
std::span<const FaultClass> fault_classes();
const Rule* find_rule(std::string_view id);
const Axis* find_axis(std::string_view id);
const Value* find_value(const Axis& axis, std::string_view name);

// Values any axis may take besides its own: no case decided it, or the
// cases that measure it disagree. Both come with the reason in the evidence.
inline constexpr std::string_view kUnknown = "unknown";
inline constexpr std::string_view kDisagree = "disagree";

// Verdicts of a rule on a target.
std::span<const Value> rule_verdicts();
inline constexpr std::string_view kPass = "pass";
inline constexpr std::string_view kFail = "fail";
inline constexpr std::string_view kNotMeasurable = "not measurable here";
inline constexpr std::string_view kNotApplicable = "n/a";

// Verdicts of an fstests pass condition on a target.
std::span<const Value> fstests_verdicts();
inline constexpr std::string_view kNotRun = "not run";

// Outcomes of a read by an application after a fault (docs/apps.md), in the
// order the report explains them; bad ones lost, invented or refused data the
// program had acknowledged. The classifier's app_outcome() names only these.
std::span<const Value> app_outcomes();
const Value* find_app_outcome(std::string_view name);  // nullptr when unknown

// The class a profile is headlined by: the fault the 2017 thread is about.
inline constexpr std::string_view kHeadlineClass = "data-write";

// The fault class of a case, from its first fault (`fault` or `thin_limit`
// step); "" when it injects none. power_cut is not a fault class: it is
// what a case does after its fault.
std::string_view fault_class_of(const Case& c);

// The tone of any axis value, meta value or verdict; Tone::none when unknown.
Tone tone_of(std::string_view value);

}  // namespace taxonomy
}  // namespace syncprobe
