#pragma once
// Content hashes (OpenSSL's SHA-256), e.g. the case hash recorded in every
// result. In its own library: the static guest runner does not link it.
#include <string>
#include <string_view>

namespace syncprobe {

// Lower-case hex SHA-256 of `data`.
std::string sha256_hex(std::string_view data);

}  // namespace syncprobe
