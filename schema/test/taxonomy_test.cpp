// The taxonomy is declared once (schema/src/taxonomy.cpp); the docs state it
// in prose. These tests fail when the two drift apart, and pin how a case's
// fault class is derived from its fault step.
#include <gtest/gtest.h>

#include <fstream>
#include <regex>
#include <set>
#include <sstream>

#include "syncprobe/case_parser.h"
#include "syncprobe/taxonomy.h"

namespace syncprobe {
namespace {

std::string read(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// The backticked words of the markdown table row that starts with `| <first> |`.
std::set<std::string> row_words(const std::string& doc, const std::string& first) {
  std::istringstream lines(doc);
  for (std::string line; std::getline(lines, line);) {
    if (line.rfind("| " + first + " |", 0) != 0) continue;
    std::set<std::string> out;
    static const std::regex tick("`([^`]+)`");
    for (std::sregex_iterator it(line.begin(), line.end(), tick), end; it != end; ++it) out.insert((*it)[1]);
    return out;
  }
  return {};
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = char(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

TEST(Taxonomy, DesignDocStatesTheSameAxesAndValues) {
  const std::string doc = read(std::string(SYNCPROBE_DOCS_DIR) + "/design.md");
  ASSERT_FALSE(doc.empty());
  for (const auto& axis : taxonomy::axes()) {
    std::set<std::string> declared;
    for (const auto& v : axis.values) declared.insert(std::string(v.name));
    EXPECT_EQ(row_words(doc, lower(axis.title)), declared) << axis.id;
  }
}

TEST(Taxonomy, DesignDocStatesTheSameRules) {
  const std::string doc = read(std::string(SYNCPROBE_DOCS_DIR) + "/design.md");
  for (const auto& r : taxonomy::rules())
    EXPECT_NE(doc.find("| " + std::string(r.id) + " " + std::string(r.name) + " |"), std::string::npos) << r.id;
}

TEST(Taxonomy, ClassifierDocListsEveryFaultClassAndVerdict) {
  const std::string doc = read(std::string(SYNCPROBE_DOCS_DIR) + "/classifier.md");
  for (const auto& c : taxonomy::fault_classes())
    EXPECT_FALSE(row_words(doc, "`" + std::string(c.id) + "`").empty()) << c.id;
  for (const auto& v : taxonomy::rule_verdicts())
    EXPECT_NE(doc.find("`" + std::string(v.name) + "`"), std::string::npos) << v.name;
}

Case parsed(const std::string& fault) {
  const std::string text = "id = \"t\"\ntitle = \"x\"\ndescription = \"x\"\nstep = [ " + fault + " ]\n";
  ParseOutcome p = parse_case_text(text, "t.toml");
  EXPECT_TRUE(p.errors.empty()) << (p.errors.empty() ? "" : p.errors[0].format());
  return p.cases.empty() ? Case{} : p.cases[0];
}

TEST(Taxonomy, FaultClassComesFromTheFirstFault) {
  EXPECT_EQ(taxonomy::fault_class_of(parsed("{ op = \"fault\", range = \"data\", errno = \"EIO\" }")), "data-write");
  EXPECT_EQ(taxonomy::fault_class_of(parsed("{ op = \"fault\", range = \"data\", errno = \"ENOSPC\" }")), "data-write");
  EXPECT_EQ(taxonomy::fault_class_of(parsed("{ op = \"fault\", range = \"data\", errno = \"ENXIO\" }")), "device-gone");
  EXPECT_EQ(taxonomy::fault_class_of(parsed("{ op = \"fault\", range = \"journal\" }")), "metadata");
  EXPECT_EQ(taxonomy::fault_class_of(parsed("{ op = \"fault\", range = \"free\" }")), "data-write");
  EXPECT_EQ(taxonomy::fault_class_of(parsed("{ op = \"fault\", range = \"metadata\" }")), "metadata");
  EXPECT_EQ(taxonomy::fault_class_of(parsed("{ op = \"fault\", range = \"journal\" }")), "metadata");
  EXPECT_EQ(taxonomy::fault_class_of(parsed("{ op = \"fault\", range = \"free\" }")), "data-write");
  EXPECT_EQ(taxonomy::fault_class_of(parsed("{ op = \"fault\", range = \"device\" }")), "device-write");
  EXPECT_EQ(taxonomy::fault_class_of(parsed("{ op = \"fault\", range = \"device\", io = \"flush\" }")), "flush");
  EXPECT_EQ(taxonomy::fault_class_of(parsed("{ op = \"thin_limit\", headroom = 0 }, { op = \"fault\" }")), "thin-enospc");
  EXPECT_EQ(taxonomy::fault_class_of(parsed("{ op = \"sync\" }, { op = \"power_cut\" }")), "");
  EXPECT_EQ(taxonomy::fault_class_of(parsed("{ op = \"fault\", range = \"journal\" }")), "metadata");
  EXPECT_EQ(taxonomy::fault_class_of(parsed("{ op = \"fault\", range = \"free\" }")), "data-write");
  EXPECT_EQ(taxonomy::fault_class_of(parsed("{ op = \"shutdown\", flush = \"log\" }")), "shutdown");
  // libfiu fails no device: no class decides from it, whatever io or errno it names.
  for (const char* f : {"{ op = \"fault\", range = \"libfiu\", point = \"posix/io/sync/fsync\" }",
                        "{ op = \"fault\", range = \"libfiu\", point = \"posix/io/sync/fsync\", errno = \"ENXIO\" }",
                        "{ op = \"fault\", range = \"libfiu\", point = \"posix/io/sync/fsync\", io = \"flush\" }"})
    EXPECT_EQ(taxonomy::fault_class_of(parsed(f)), "") << f;
}

TEST(Taxonomy, TonesOfValuesAndVerdicts) {
  EXPECT_EQ(taxonomy::tone_of("until-persisted"), taxonomy::Tone::good);
  EXPECT_EQ(taxonomy::tone_of("lost-silent"), taxonomy::Tone::bad);
  EXPECT_EQ(taxonomy::tone_of("read-only"), taxonomy::Tone::mid);
  EXPECT_EQ(taxonomy::tone_of("fail"), taxonomy::Tone::bad);
  EXPECT_EQ(taxonomy::tone_of(taxonomy::kNotMeasurable), taxonomy::Tone::none);
  EXPECT_EQ(taxonomy::tone_of(taxonomy::kDisagree), taxonomy::Tone::none);
}

}  // namespace
}  // namespace syncprobe
