// The report's machine-readable files (KTAP, JUnit) from a small results
// directory written here: links only the report library and what it uses.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "../src/across_kernels.h"
#include "syncprobe/report.h"
#include "syncprobe/results_io.h"

namespace syncprobe {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

std::string slurp(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// A run of three cases on one reference target: one with a failed check,
// one skipped, one hung (with a '#' in its reason, which KTAP forbids).
class ReportFiles : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/report_test.XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    json run = {{"schema", "syncprobe.run/1"}, {"id", "run-1"}, {"syncprobe_version", "9.8.7"},
                {"host", {{"kernel", "6.1"}, {"machine", "x86_64"}}}, {"cases", json::object()}};
    const char* ids[] = {"c1", "c2", "c3"};
    const CaseStatus status[] = {CaseStatus::completed, CaseStatus::skipped, CaseStatus::hung};
    const char* reasons[] = {"", "target lacks capability: fault:flush", "step 4 # did not return in 10 s"};
    for (int i = 0; i < 3; ++i) {
      Case c;
      c.id = ids[i];
      c.title = std::string("case ") + ids[i];
      run["cases"][c.id] = c;
      CaseResult r;
      r.case_id = c.id;
      r.target = "reference:x";
      r.environment = {{"policy", "x"}, {"measured", false}};
      r.status = status[i];
      r.reason = reasons[i];
      write_file_atomic(dir_ + "/" + result_path(r.target, r.case_id), json(r).dump());
    }
    write_file_atomic(dir_ + "/run.json", run.dump());
    json check_ok = {{"case", "c1"}, {"step", 0}, {"line", 4}, {"op", "fsync"}, {"rule", "R5"},
                     {"expect", "an error"}, {"observed", "-1 EIO"}, {"pass", true}};
    json check_bad = {{"case", "c1"}, {"step", 1}, {"line", 5}, {"op", "fsync"}, {"rule", "R2"},
                      {"expect", "an error"}, {"observed", "0"}, {"pass", false}};
    json target = {{"measured", false}, {"environment", {{"policy", "x"}}}, {"profile", json::object()},
                   {"rules", {{"R2", "fail"}, {"R5", "pass"}}}, {"closest_policy", "x"},
                   {"evidence", {{"R2", {check_bad}}, {"R5", {check_ok}}}},
                   {"cases", {{"c1", {{"status", "completed"}, {"reason", ""}, {"checks_passed", 1}, {"checks_failed", 1}}},
                              {"c2", {{"status", "skipped"}, {"reason", reasons[1]}, {"checks_passed", 0}, {"checks_failed", 0}}},
                              {"c3", {{"status", "hung"}, {"reason", reasons[2]}, {"checks_passed", 0}, {"checks_failed", 0}}}}}};
    json summary = {{"schema", "syncprobe.summary/1"}, {"rules", {{"R2", "fd-consistency"}, {"R5", "report-all"}}},
                    {"targets", {{"reference:x", target}}}};
    write_file_atomic(dir_ + "/summary.json", summary.dump());
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string write() {
    ReportOptions o;
    o.results_dir = dir_;
    o.out_dir = dir_ + "/site";
    std::ostringstream out, err;
    EXPECT_EQ(write_report(o, out, err), 0) << err.str();
    return dir_ + "/site";
  }

  std::string dir_;
};

TEST_F(ReportFiles, KtapHasOneResultPerCaseAndASubtestPerCheck) {
  const std::string site = write();
  EXPECT_EQ(slurp(site + "/report.ktap"),
            "KTAP version 1\n"
            "# syncprobe run run-1, syncprobe 9.8.7; one test per target and case\n"
            "1..3\n"
            "  KTAP version 1\n"
            "  # Subtest: reference:x c1\n"
            "  1..2\n"
            "  ok 1 R5 step 0 line 4 fsync # expected an error, observed -1 EIO\n"
            "  not ok 2 R2 step 1 line 5 fsync # expected an error, observed 0\n"
            "not ok 1 reference:x c1 # 1 of 2 checks failed\n"
            "ok 2 reference:x c2 # SKIP target lacks capability: fault:flush\n"
            "not ok 3 reference:x c3 # TIMEOUT step 4 no. did not return in 10 s\n");
}

TEST_F(ReportFiles, JunitCountsFailuresSkipsAndErrors) {
  const std::string xml = slurp(write() + "/junit.xml");
  EXPECT_NE(xml.find("tests=\"3\" failures=\"1\" errors=\"1\" skipped=\"1\""), std::string::npos) << xml;
  EXPECT_NE(xml.find("R2 step 1 (line 5, fsync): expected an error, observed 0"), std::string::npos) << xml;
}

TEST_F(ReportFiles, MissingSummaryIsBadInputNamingTheFix) {
  fs::remove(dir_ + "/summary.json");
  ReportOptions o;
  o.results_dir = dir_;
  std::ostringstream out, err;
  EXPECT_EQ(write_report(o, out, err), 2);
  EXPECT_NE(err.str().find("syncprobe classify"), std::string::npos) << err.str();
}

// A results file that is not a regular file (here a FIFO no one writes,
// which a plain read would wait on forever) is bad input with a message.
TEST_F(ReportFiles, AResultsFileThatIsNotARegularFileIsRefused) {
  fs::remove(dir_ + "/run.json");
  ASSERT_EQ(mkfifo((dir_ + "/run.json").c_str(), 0600), 0);
  ReportOptions o;
  o.results_dir = dir_;
  o.out_dir = dir_ + "/site";
  std::ostringstream out, err;
  EXPECT_EQ(write_report(o, out, err), 2);
  EXPECT_NE(err.str().find("run.json: not a regular file"), std::string::npos) << err.str();
}

// An application row whose scan found a key never put (KC): marked bad with
// its meaning, and explained in the outcome table under the application table;
// an outcome this version does not know is never shown as good.
TEST_F(ReportFiles, ACorruptedKeyIsABadOutcomeExplainedInTheTable) {
  json summary = json::parse(slurp(dir_ + "/summary.json"));
  summary["applications"] = {{{"target", "reference:x"}, {"case", "c1"}, {"program", "sqlite"},
                              {"variant", "wal"}, {"status", "completed"}, {"fault_layer", "libfiu"},
                              {"detected", {"error-return"}}, {"reads", json::array()},
                              {"outcomes", {"KC", "acked-present", "XX"}}}};
  write_file_atomic(dir_ + "/summary.json", summary.dump());
  const std::string index = slurp(write() + "/index.html");
  EXPECT_NE(index.find("<span class=\"bad\" title=\"key corrupted: a scan lists a key that was never put\">KC ✗</span>"),
            std::string::npos) << index;
  EXPECT_NE(index.find("<span class=\"good\" title=\"a read shows the last acknowledged value\">acked-present</span>"),
            std::string::npos);
  EXPECT_NE(index.find("<span class=\"none\" title=\"not an outcome this version knows\">XX</span>"),
            std::string::npos);
  EXPECT_NE(index.find("<th scope=\"row\"><span class=\"bad\">KC ✗</span></th><td>key corrupted"), std::string::npos);
}

// Kernel releases sort by their numbers, not as text: 5.10 before 6.1,
// 6.1 before 6.12 before 6.18, and 6.18 before 7.3.
TEST(AcrossKernels, KernelsAreOrderedByVersionNumbers) {
  using report_detail::kernel_older;
  EXPECT_TRUE(kernel_older("5.10.0-32-amd64", "6.1.0-50-amd64"));
  EXPECT_TRUE(kernel_older("6.1.0-50-amd64", "6.12.57+deb13-amd64"));
  EXPECT_TRUE(kernel_older("6.12.57+deb13-amd64", "6.18.3+deb14-amd64"));
  EXPECT_TRUE(kernel_older("6.18.3+deb14-amd64", "7.3.1-amd64"));
  EXPECT_TRUE(kernel_older("6.16.3-amd64", "6.16.12-amd64"));
  EXPECT_FALSE(kernel_older("6.12.0-1-amd64", "6.1.0-1-amd64"));
  EXPECT_FALSE(kernel_older("6.1.0-1-amd64", "6.1.0-1-amd64"));
  // Columns: one filesystem on three kernels, listed out of order, and one
  // measured on a single kernel (left out: nothing to set beside it).
  json summary = {{"targets", json::object()}};
  auto add = [&](const std::string& t, const std::string& kernel) {
    summary["targets"][t] = {{"measured", true},
                             {"environment", {{"kernel", kernel}}},
                             {"cases", {{"c", {{"status", "completed"}}}}}};
  };
  add("vm:7.3:xfs", "7.3.1-amd64");
  add("host:xfs", "6.18.3+deb14-amd64");
  add("vm:5.10:xfs", "5.10.0-32-amd64");
  add("vm:6.1:btrfs", "6.1.0-50-amd64");
  const auto cols = report_detail::kernel_columns(summary);
  ASSERT_EQ(cols.size(), 1u);
  EXPECT_EQ(cols[0].fs, "xfs");
  EXPECT_EQ(cols[0].targets, (std::vector<std::string>{"vm:5.10:xfs", "host:xfs", "vm:7.3:xfs"}));
}

// A case that ran on ext4 under two guest kernels, where the newer kernel's
// worker was killed by a signal in step 0: the result has ret -1 and a null
// errno. The across-kernels page must show the signal, not fail on the null.
TEST(AcrossKernels, AStepKilledByASignalShowsTheSignalNotAnErrno) {
  char tmpl[] = "/tmp/report_test.XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  const std::string dir = tmpl;
  Case c;
  c.id = "c1";
  c.title = "case c1";
  Step s;
  s.kind = StepKind::fsync;
  s.line = 3;
  c.steps.push_back(s);
  json run = {{"schema", "syncprobe.run/1"}, {"id", "run-1"}, {"syncprobe_version", "9.8.7"},
              {"host", {{"kernel", "6.1"}, {"machine", "x86_64"}}}, {"cases", {{"c1", c}}}};
  write_file_atomic(dir + "/run.json", run.dump());
  json targets = json::object();
  for (const std::string kernel : {"6.1.0-1-amd64", "6.12.0-1-amd64"}) {
    const std::string t = "vm:" + kernel.substr(0, kernel.find(".0-")) + ":ext4";
    CaseResult r;
    r.case_id = "c1";
    r.target = t;
    r.environment = {{"kernel", kernel}, {"fs", "ext4"}, {"measured", true}};
    StepObservation o;
    o.op = "fsync";
    o.line = 3;
    if (kernel.rfind("6.12", 0) == 0) {
      o.result = SysResult{-1, 0, false};
      o.detail = {{"signal", "SIGKILL"}};
    }
    r.steps.push_back(o);
    write_file_atomic(dir + "/" + result_path(t, "c1"), json(r).dump());
    targets[t] = {{"measured", true}, {"environment", {{"kind", "vm"}, {"kernel", kernel}, {"fs", "ext4"}}},
                  {"profile", json::object()}, {"rules", json::object()}, {"closest_policy", nullptr},
                  {"evidence", json::object()},
                  {"cases", {{"c1", {{"status", "completed"}, {"reason", ""}, {"checks_passed", 0}, {"checks_failed", 0}}}}}};
  }
  write_file_atomic(dir + "/summary.json",
                    json({{"schema", "syncprobe.summary/1"}, {"rules", json::object()}, {"targets", targets}}).dump());
  ReportOptions opt;
  opt.results_dir = dir;
  opt.out_dir = dir + "/site";
  std::ostringstream out, err;
  ASSERT_EQ(write_report(opt, out, err), 0) << err.str();
  const std::string page = slurp(dir + "/site/kernels.html");
  EXPECT_NE(page.find(">0</a></td><td class=\"changed\"><a href=\"cases/vm_6.12_ext4/c1.html#step-0\">-1 SIGKILL</a>"),
            std::string::npos)
      << page;
  fs::remove_all(dir);
}

}  // namespace
}  // namespace syncprobe
