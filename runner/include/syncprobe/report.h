#pragma once
// Helpers of the HTML report (report_command itself is in commands.h).
#include <string>

namespace syncprobe {

// Text made safe for HTML content and attribute values.
std::string html_escape(const std::string& s);

}  // namespace syncprobe
