// The small subcommands: classify, report and vm, each a thin layer over its
// library (analysis/, report/, targets/vm/).
#include <algorithm>
#include <filesystem>
#include <ostream>

#include "syncprobe/classify.h"
#include "syncprobe/commands.h"
#include "syncprobe/report.h"
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
    if (const std::string why = write_test_formats(results_dir); !why.empty())
      throw std::runtime_error("cannot write junit.xml and report.ktap: " + why);
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
  // A run that was killed never classified itself: do it now, so that its
  // report (which says it is partial) can be written.
  for (const std::string* dir : {&opts.results_dir, opts.compare_with ? &*opts.compare_with : nullptr}) {
    if (!dir || !std::filesystem::exists(*dir + "/run.json") || std::filesystem::exists(*dir + "/summary.json"))
      continue;
    try {
      write_file_atomic(*dir + "/summary.json", classify(load_run(*dir)).dump(2));
      err << "syncprobe report: " << *dir << " had no summary.json (the run did not finish): classified it\n";
    } catch (const std::exception& e) {
      err << "syncprobe report: " << *dir << " has no summary.json and cannot be classified: " << e.what() << "\n";
      return 2;
    }
  }
  return write_report(opts, out, err);
}

int vm_command(const VmOptions& o, std::ostream& out, std::ostream& err) {
  try {
    if (o.action == "list") return vm_list(o.refresh, false, out, err);
    if (o.action == "status") return vm_list(false, true, out, err);
    if (o.action == "fetch") return vm_fetch(o.kernels, out, err);
    if (o.action == "build") return vm_build(o.kernels, out, err);
    if (o.action == "add") return vm_add({o.name, o.kernel, o.modules, o.config, o.debs, o.force}, out, err);
  } catch (const std::runtime_error& e) {
    err << "syncprobe vm " << o.action << ": " << e.what() << "\n";  // e.g. a bad kernels.toml
    return 2;
  }
  err << "syncprobe vm: unknown action '" << o.action << "': use list, status, fetch, add or build\n";
  return 2;
}

}  // namespace syncprobe
