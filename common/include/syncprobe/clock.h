#pragma once
// Wall-clock time in UTC, as results and run ids print it.
#include <string>

namespace syncprobe {

// Now, formatted with a strftime-style spec (fmt's chrono format):
// "%Y-%m-%dT%H:%M:%SZ" for results, "%Y%m%d-%H%M%S" for run ids.
std::string utc_now(const std::string& spec = "%Y-%m-%dT%H:%M:%SZ");

}  // namespace syncprobe
