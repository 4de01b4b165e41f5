#include <ostream>

#include "syncprobe/commands.h"

namespace syncprobe {
int report_command(const ReportOptions&, std::ostream&, std::ostream& err) {
  err << "syncprobe report: not built yet\n";
  return 1;
}
}  // namespace syncprobe
