// `syncprobe report`: a self-contained static site from a results directory.
//
// Reads only the run's files, through schema/results_io (run.json,
// summary.json, <target>/<case>.json, bench.json when present), and writes
// index.html, one page per target (the evidence behind each verdict), one
// page per (target, case) (the steps beside the closest reference policy),
// junit.xml, report.ktap and summary.md. No scripts, fonts or anything else
// from the network: inline CSS and SVG drawn here.
#include "syncprobe/report.h"

#include <ostream>
#include <sstream>

#include "across_kernels.h"
#include "site.h"

namespace syncprobe {

std::string html_escape(const std::string& s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  return out;
}

std::string write_test_formats(const std::string& results_dir) {
  using namespace site;
  Run r;
  std::ostringstream why;
  if (!load(results_dir, r, why)) return why.str();
  try {
    write_file(fs::path(results_dir) / "junit.xml", junit(r));
    write_file(fs::path(results_dir) / "report.ktap", ktap(r));
  } catch (const std::exception& e) {
    return e.what();
  }
  return "";
}

int write_report(const ReportOptions& opts, std::ostream& out, std::ostream& err) {
  using namespace site;
  Run r;
  if (!load(opts.results_dir, r, err)) return 2;
  fs::path dir = opts.out_dir.empty()
                     ? fs::path("reports") / r.run.value("id", "report")
                     : fs::path(opts.out_dir);
  try {
    fs::create_directories(dir);
    write_file(dir / "index.html", index_page(r));
    for (const auto& t : r.targets) {
      write_file(dir / "targets" / (target_slug(t) + ".html"), target_page(r, t));
      if (fs::exists(r.dir / t / "console.log"))  // VM targets: the guest's console, kept beside
        write_file(dir / "targets" / (target_slug(t) + "-console.txt"), read_text(r.dir / t / "console.log"));
      for (const auto& c : r.cases)
        if (!r.case_of(t, c).is_null()) write_file(dir / case_href(t, c), case_page(r, t, c));
    }
    if (!report_detail::kernel_columns(r.summary).empty()) {  // a filesystem on two kernels or more
      const report_detail::RunView view{r.run, r.summary,
                                        [&](const std::string& t, const std::string& c) { return r.result(t, c); },
                                        r.cases};
      write_file(dir / "kernels.html", page("syncprobe: across kernels", report_detail::across_kernels_body(view)));
    }
    write_file(dir / "junit.xml", junit(r));
    write_file(dir / "report.ktap", ktap(r));
    write_file(dir / "summary.md", markdown(r));
    if (opts.compare_with) {
      Run b;
      if (!load(*opts.compare_with, b, err)) return 2;
      compare(r, b, dir, out);
    }
  } catch (const std::exception& e) {
    err << "syncprobe report: " << e.what() << "\n";
    return 1;
  }
  out << "report: " << (dir / "index.html").string() << "\n";
  return 0;
}

}  // namespace syncprobe
