// Placeholder until its issue lands; deleted by the change that implements it.
#include <ostream>

#include "syncprobe/case_parser.h"
#include "syncprobe/commands.h"

namespace syncprobe {
int bench_command(const BenchOptions&, std::ostream&, std::ostream& err) {
  err << "syncprobe bench: not built yet\n";
  return 1;
}

}  // namespace syncprobe
