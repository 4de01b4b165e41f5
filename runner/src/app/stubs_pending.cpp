// Placeholders for subcommands whose issues have not landed. Each is removed
// by the change that implements it.
#include <ostream>

#include "syncprobe/case_parser.h"
#include "syncprobe/commands.h"

namespace syncprobe {

std::string CaseError::format() const {
  return file + ":" + std::to_string(line) + ":" + std::to_string(column) + ": error: " + message;
}
ParseOutcome parse_case_text(std::string_view, const std::string& file) {
  return {{}, {CaseError{file, 0, 0, "case parser not built yet", ""}}};
}
ParseOutcome parse_case_file(const std::string& path) { return parse_case_text("", path); }
ParseOutcome load_cases(const std::string& dir) { return parse_case_text("", dir); }

int run_command(const RunOptions&, std::ostream&, std::ostream& err) {
  err << "syncprobe run: not built yet\n";
  return 1;
}
int classify_command(const std::string&, bool, std::ostream&, std::ostream& err) {
  err << "syncprobe classify: not built yet\n";
  return 1;
}
int list_command(const std::string&, const std::string&, std::ostream&, std::ostream& err) {
  err << "syncprobe list: not built yet\n";
  return 1;
}
int bench_command(const BenchOptions&, std::ostream&, std::ostream& err) {
  err << "syncprobe bench: not built yet\n";
  return 1;
}
std::string default_cases_dir() { return std::string(SYNCPROBE_SOURCE_DIR) + "/cases"; }

}  // namespace syncprobe
