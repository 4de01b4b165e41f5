#pragma once
// Private to analysis/: the taxonomy's axes, decided per fault class.
#include <string>
#include <vector>

#include "view.h"

namespace syncprobe::analysis {

// One axis for one fault class: a taxonomy value, `unknown` or `disagree`,
// why (for the last two), and the observations that decided it.
struct AxisResult {
  std::string value = "unknown";
  std::string reason;
  json evidence = json::array();
};

// Several cases each gave a value (or a reason why not): the value when the
// ones that decided agree, `disagree` (naming who said what) when they do
// not, `unknown` with the reasons when none decided.
AxisResult combine(const std::vector<AxisResult>& per_case, const std::string& none_reason);

AxisResult classify_reporting(const TargetView& v, const std::string& cls);
AxisResult classify_page_fate(const TargetView& v, const std::string& cls);
AxisResult classify_recovery(const TargetView& v, const std::string& cls);
AxisResult classify_fs_reaction(const TargetView& v, const std::string& cls);
AxisResult classify_cross_fd(const TargetView& v, const std::string& cls);

}  // namespace syncprobe::analysis
