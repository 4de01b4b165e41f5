// Placeholder until its issue lands; deleted by the change that implements it.
#include <ostream>

#include "syncprobe/case_parser.h"
#include "syncprobe/commands.h"

namespace syncprobe {
int run_command(const RunOptions&, std::ostream&, std::ostream& err) {
  err << "syncprobe run: not built yet\n";
  return 1;
}
std::string default_cases_dir() { return std::string(SYNCPROBE_SOURCE_DIR) + "/cases"; }

}  // namespace syncprobe
