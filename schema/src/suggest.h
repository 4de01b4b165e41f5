#pragma once
// Suggestions for the parser's messages (private to schema/).
#include <string>
#include <string_view>
#include <vector>

namespace syncprobe {

// Levenshtein distance.
size_t edit_distance(std::string_view a, std::string_view b);
// "did you mean 'x'?" for the closest candidate within reach, else "".
std::string did_you_mean(std::string_view word, const std::vector<std::string>& candidates);
// The items separated by `sep`.
std::string join(const std::vector<std::string>& v, const char* sep = ", ");

}  // namespace syncprobe
