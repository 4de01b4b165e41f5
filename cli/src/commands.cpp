// The small subcommands: classify, report and vm, each a thin layer over its
// library (analysis/, report/, targets/vm/).
#include <algorithm>
#include <ostream>

#include "syncprobe/classify.h"
#include "syncprobe/commands.h"
#include "syncprobe/results_io.h"
#include "syncprobe/vm_target.h"

namespace syncprobe {

int classify_command(const std::string& results_dir, bool as_json, std::ostream& out,
                     std::ostream& err) {
  RunResults run;
  try {
    run = load_run(results_dir);
  } catch (const std::exception& e) {
    err << "syncprobe classify: " << e.what() << "\n";
    return 2;
  }
  try {
    const nlohmann::json summary = classify(run);
    write_file_atomic(results_dir + "/summary.json", summary.dump(2));
    if (as_json)
      out << summary.dump(2) << "\n";
    else
      print_summary(summary, out);
  } catch (const std::exception& e) {
    err << "syncprobe classify: " << e.what() << "\n";
    return 1;
  }
  return 0;
}

int report_command(const ReportOptions& opts, std::ostream& out, std::ostream& err) {
  return write_report(opts, out, err);
}

int vm_command(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  const std::string sub = args.empty() ? "status" : args[0];
  const std::vector<std::string> known = vm_kernel_series();
  std::vector<std::string> series(args.size() > 1 ? args.begin() + 1 : args.end(), args.end());
  if (series.empty() || (series.size() == 1 && series[0] == "all")) series = known;
  for (const auto& s : series)
    if (std::find(known.begin(), known.end(), s) == known.end()) {
      err << "syncprobe vm: unknown kernel '" << s << "': choose from";
      for (const auto& k : known) err << " " << k;
      err << " or all\n";
      return 2;
    }
  if (sub == "fetch") {
    int rc = 0;
    for (const auto& s : series) rc = std::max(rc, vm_fetch(s, out, err));
    return rc;
  }
  if (sub == "build") {
    for (const auto& s : series)
      if (int rc = vm_build(s, out, err); rc != 0) return rc;
    return 0;
  }
  if (sub == "status") {
    vm_status(series, out);
    return 0;
  }
  err << "syncprobe vm: unknown action '" << sub << "': use fetch, build or status\n";
  return 2;
}

}  // namespace syncprobe
