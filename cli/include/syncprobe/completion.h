#pragma once
// Shell completion generated from the command line's own option tables, so
// completion never disagrees with --help.
#include <iosfwd>

namespace CLI {
class App;
}

namespace syncprobe {

// Writes a bash completion script for `app` (subcommands, their options,
// choices of options checked with CLI::IsMember, target and case names from
// `syncprobe list`, directories for the rest).
void bash_completion(const CLI::App& app, std::ostream& out);

}  // namespace syncprobe
