#pragma once
// errno values by name. The exact errno of every call is the product's data,
// so it travels by name ("EIO", "ENOSPC") from the syscall to the JSON.
#include <optional>
#include <string>
#include <string_view>

namespace syncprobe {

// "EIO" for EIO, from the C library; a value it has no name for is written as
// its decimal number ("4242"), so it still round-trips; "" for 0.
std::string errno_name(int err);

// EIO for "EIO" (aliases such as EWOULDBLOCK and ENOTSUP too); a decimal
// number for itself; nullopt for anything else.
std::optional<int> errno_from_name(std::string_view name);

}  // namespace syncprobe
