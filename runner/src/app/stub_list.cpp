// Placeholder until its issue lands; deleted by the change that implements it.
#include <ostream>

#include "syncprobe/case_parser.h"
#include "syncprobe/commands.h"

namespace syncprobe {
int list_command(const std::string&, const std::string&, std::ostream&, std::ostream& err) {
  err << "syncprobe list: not built yet\n";
  return 1;
}

}  // namespace syncprobe
