#pragma once
// errno values by name. The exact errno of every call is the product's data,
// so it travels by name ("EIO", "ENOSPC") from the syscall to the JSON.
#include <optional>
#include <string>
#include <string_view>

namespace syncprobe {

// "EIO" for EIO; "E<number>" for a value this table does not know; "" for 0.
std::string errno_name(int err);

// EIO for "EIO"; nullopt for an unknown name.
std::optional<int> errno_from_name(std::string_view name);

}  // namespace syncprobe
