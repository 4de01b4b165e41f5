#pragma once
// The one table of step kinds and their arguments. It drives the case parser,
// its error messages, case (de)serialisation and `syncprobe list steps`.
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace syncprobe {

enum class StepKind {
  open, close, pwrite, pread, fsync, fdatasync, sync_file_range, msync, syncfs, sync, stat,
  rename, unlink, drop_caches, writeback, fault, heal, thin_limit, grow, memory_limit, cache_limit,
  remount, power_cut, read_back, mmap_read, shutdown, app,
};

enum class ArgType {
  string,       // free text
  name,         // a descriptor or process name: [a-z][a-z0-9_]*
  path,         // a path relative to the filesystem root, no "..", e.g. "f" or "dir/f"
  size,         // integer bytes, or a string with K/M/G suffix ("4K", "1M")
  integer,      // non-negative integer
  tag,          // a data tag (see tag.h)
  choice,       // one of `choices`
  choice_list,  // an array of `choices`
};

struct ArgSpec {
  std::string_view name;
  ArgType type;
  bool required;
  std::string_view default_value;  // "" when none (the argument is then absent)
  std::string_view help;
  std::span<const std::string_view> choices = {};
};

struct StepSpec {
  StepKind kind;
  std::string_view name;
  std::string_view help;
  std::span<const ArgSpec> args;
  // Runs inside a process (accepts `proc`, defaults to "a"); otherwise the
  // step acts on the whole machine (faults, caches, mounts).
  bool in_process;
  // Capability a target must declare to run this step; "" for none. Some
  // arguments add more (see step_capabilities in case.h).
  std::string_view capability;
};

std::span<const StepSpec> step_table();
const StepSpec* find_step(std::string_view name);
const StepSpec& step_spec(StepKind kind);
const ArgSpec* find_arg(const StepSpec& spec, std::string_view name);

// Arguments every step accepts besides its own: `proc` (in-process steps),
// and the evidence fields `probe`, `rule`, `expect`, `expect_tag`, `proof`, `note`.
std::span<const ArgSpec> common_args();

// Parses "4096", "4K", "1M", "2G" (binary units). nullopt when malformed.
bool parse_size(std::string_view text, uint64_t& out);

std::string_view to_string(ArgType t);

}  // namespace syncprobe
