// The case parser: the catalogue parses; each kind of mistake is reported at
// the right place with a suggestion; several mistakes are all reported.
#include <gtest/gtest.h>

#include <set>

#include <filesystem>

#include <nlohmann/json.hpp>

#include "syncprobe/case_parser.h"

namespace syncprobe {
namespace {

const char kHead[] = "id = \"t\"\ntitle = \"x\"\ndescription = \"x\"\n";

ParseOutcome parse(const std::string& steps) {
  return parse_case_text(std::string(kHead) + "step = [\n" + steps + "]\n", "t.toml");
}

TEST(Parser, CatalogueParses) {
  const CapabilityTable caps = load_capabilities(SYNCPROBE_DATA_DIR "/capabilities.toml");
  ParseOutcome p = load_cases(SYNCPROBE_CASES_DIR, &caps);
  for (const auto& e : p.errors) ADD_FAILURE() << e.format();
  ASSERT_GE(p.cases.size(), 24u);
  std::set<std::string> ids;
  for (const auto& c : p.cases) {
    ids.insert(c.id);
    EXPECT_EQ(c.hash.size(), 64u) << c.id;
    EXPECT_EQ(std::filesystem::path(c.file).stem(), c.id);
    EXPECT_FALSE(c.steps.empty());
  }
  for (const char* id : {"seed-single-writer", "seed-two-process", "seed-transient-recovery",
                         "fstests-generic-441", "fstests-generic-442", "fstests-generic-484",
                         "fstests-generic-487", "fstests-generic-347"})
    EXPECT_TRUE(ids.count(id)) << id;
}

TEST(Parser, StepsGetDefaultsSizesAndChecks) {
  ParseOutcome p = parse(
      "  { op = \"open\", fd = \"a\", flags = [\"create\", \"direct\"] },\n"
      "  { op = \"pwrite\", fd = \"a\", off = \"1M\", tag = \"A\" },\n"
      "  { op = \"fsync\", fd = \"a\", probe = \"x\", rule = \"R5\", expect = \"EIO\" },\n"
      "  { op = \"fault\", range = \"data\" },\n"
      "  { op = \"read_back\", probe = \"disk\" },\n");
  for (const auto& e : p.errors) ADD_FAILURE() << e.format();
  ASSERT_EQ(p.cases.size(), 1u);
  const Case& c = p.cases[0];
  ASSERT_EQ(c.steps.size(), 5u);
  EXPECT_EQ(c.steps[0].list_args("flags"), (std::vector<std::string>{"create", "direct"}));
  EXPECT_EQ(c.steps[0].arg("file"), "f");
  EXPECT_EQ(c.steps[1].arg("off"), "1048576");
  EXPECT_EQ(c.steps[1].arg("len"), "4096") << "default from the step table";
  EXPECT_EQ(c.steps[1].proc, "a");
  EXPECT_EQ(c.steps[1].line, 6);
  ASSERT_TRUE(c.steps[2].check);
  EXPECT_EQ(c.steps[2].check->expect, "EIO");
  EXPECT_EQ(c.steps[3].arg("io"), "write");
  EXPECT_EQ(c.steps[3].arg("errno"), "EIO");
  EXPECT_TRUE(c.steps[3].proc.empty()) << "machine-wide steps have no process";
  EXPECT_TRUE(c.capabilities().count("direct-io"));
  EXPECT_TRUE(c.capabilities().count("fault:data"));
}

TEST(Parser, ArrayOfTablesWorksToo) {
  ParseOutcome p = parse_case_text(std::string(kHead) +
                                       "[[step]]\nop = \"open\"\nfd = \"a\"\n[[step]]\nop = \"fsync\"\nfd = \"a\"\n",
                                   "t.toml");
  for (const auto& e : p.errors) ADD_FAILURE() << e.format();
  ASSERT_EQ(p.cases.size(), 1u);
  EXPECT_EQ(p.cases[0].steps.size(), 2u);
}

struct Bad {
  const char* steps;
  int line, column;
  const char* message;  // a substring of the message
  const char* hint;     // a substring of the hint
};

class BadStep : public ::testing::TestWithParam<Bad> {};

TEST_P(BadStep, ReportedPrecisely) {
  const Bad& b = GetParam();
  ParseOutcome p = parse(b.steps);
  EXPECT_TRUE(p.cases.empty());
  ASSERT_EQ(p.errors.size(), 1u) << (p.errors.empty() ? "" : p.errors[0].format());
  const CaseError& e = p.errors[0];
  EXPECT_EQ(e.file, "t.toml");
  EXPECT_EQ(e.line, b.line) << e.format();
  EXPECT_EQ(e.column, b.column) << e.format();
  EXPECT_NE(e.message.find(b.message), std::string::npos) << e.format();
  EXPECT_NE(e.hint.find(b.hint), std::string::npos) << e.format();
}

INSTANTIATE_TEST_SUITE_P(
    Mistakes, BadStep,
    ::testing::Values(
        Bad{"  { op = \"fsnyc\", fd = \"a\" },\n", 5, 10, "did you mean 'fsync'?", "syncprobe list steps"},
        Bad{"  { op = \"open\", fd = \"a\" },\n  { op = \"pwrite\", fd = \"a\" },\n", 6, 3,
            "'pwrite' needs 'tag'", "add tag"},
        Bad{"  { op = \"fault\", count = \"one\" },\n", 5, 27, "must be a non-negative integer", "count = 1"},
        Bad{"  { op = \"open\", fd = \"a\" },\n  { op = \"pwrite\", fd = \"a\", len = \"4Q\", tag = \"A\" },\n", 6, 36,
            "is not a size", "\"4K\""},
        Bad{"  { op = \"fsync\", fd = \"b\" },\n", 5, 3, "descriptor 'b' is not open", "{ op = \"open\", fd = \"b\" }"},
        Bad{"  { op = \"open\", fd = \"a\" },\n  { op = \"close\", fd = \"a\" },\n  { op = \"fsync\", fd = \"a\" },\n",
            7, 3, "descriptor 'a' is not open", "open it first"},
        Bad{"  { op = \"fault\", errno = \"EOOPS\" },\n", 5, 27, "unknown errno 'EOOPS'", "EIO"},
        Bad{"  { op = \"open\", fd = \"a\" },\n  { op = \"fsync\", fd = \"a\", rule = \"R2\", expect = \"honest\" },\n",
            6, 51, "needs proof and expect_tag", "proof ="},
        Bad{"  { op = \"open\", fd = \"a\" },\n"
            "  { op = \"fsync\", fd = \"a\", rule = \"R2\", expect = \"honest\", proof = \"d\", expect_tag = \"A\" },\n",
            6, 3, "proof 'd' names no later read_back", "read_back"},
        Bad{"  { op = \"open\", fd = \"a\", flagz = [] },\n", 5, 28, "'open' has no argument 'flagz'",
            "did you mean 'flags'?"},
        Bad{"  { op = \"open\", fd = \"a\" },\n  { op = \"pread\", fd = \"a\", rule = \"R1\", expect_tag = \"@nope\" },\n",
            6, 3, "expect_tag '@nope' names no step", "probe = \"nope\""},
        Bad{"  { op = \"fault\", range = \"libfiu\" },\n", 5, 3, "a libfiu fault needs 'point'",
            "point = \"posix/io/sync/fdatasync\""},
        Bad{"  { op = \"fault\", range = \"data\", point = \"posix/io/sync/fsync\" },\n", 5, 43,
            "'point' is only meaningful with range = \"libfiu\"", "range = \"libfiu\""},
        Bad{"  { op = \"fault\", range = \"libfiu\", point = \"posix/io/sync/fsync\" },\n"
            "  { op = \"heal\" },\n  { op = \"fault\", range = \"data\" },\n",
            7, 3, "already injects a libfiu fault (line 5); a device fault as well", "one per fault layer"},
        Bad{"  { op = \"fault\", range = \"libfiu\", point = \"posix/io/sync/fsync\", count = 2 },\n", 5, 76,
            "fails every call until heal, or one (count = 1", "use count = 1"}));

// An error other than EIO from the device needs an injector that can return
// it (dm cannot); libfiu sets any errno itself.
TEST(Parser, ADeviceErrnoOtherThanEioNeedsFaultErrno) {
  auto caps = [](const char* fault) {
    ParseOutcome p = parse(std::string("  ") + fault + ",\n");
    for (const auto& e : p.errors) ADD_FAILURE() << e.format();
    return p.cases.empty() ? std::set<std::string>{} : p.cases[0].capabilities();
  };
  EXPECT_TRUE(caps("{ op = \"fault\", errno = \"ENXIO\" }").count("fault:errno"));
  EXPECT_FALSE(caps("{ op = \"fault\", errno = \"EIO\" }").count("fault:errno"));
  EXPECT_FALSE(caps("{ op = \"fault\" }").count("fault:errno"));
  EXPECT_FALSE(caps("{ op = \"fault\", mode = \"drop\" }").count("fault:errno"));
  EXPECT_FALSE(caps("{ op = \"fault\", range = \"libfiu\", point = \"posix/io/sync/fsync\", errno = \"ENOSPC\" }")
                   .count("fault:errno"));
}

TEST(Parser, LibfiuFaultNeedsItsCapability) {
  ParseOutcome p = parse(
      "  { op = \"fault\", range = \"libfiu\", point = \"posix/io/sync/fdatasync\", percent = 50 },\n");
  for (const auto& e : p.errors) ADD_FAILURE() << e.format();
  ASSERT_EQ(p.cases.size(), 1u);
  EXPECT_TRUE(p.cases[0].capabilities().count("fault:libfiu"));
  EXPECT_EQ(p.cases[0].steps[0].arg("percent"), "50");
}

TEST(Parser, EveryMistakeInAFileIsReported) {
  ParseOutcome p = parse(
      "  { op = \"fsnyc\", fd = \"a\" },\n"
      "  { op = \"fault\", errno = \"EOOPS\" },\n"
      "  { op = \"fsync\", fd = \"q\" },\n");
  ASSERT_EQ(p.errors.size(), 3u);
  EXPECT_EQ(p.errors[0].line, 5);
  EXPECT_EQ(p.errors[1].line, 6);
  EXPECT_EQ(p.errors[2].line, 7);
}

TEST(Parser, CaseLevelProblems) {
  ParseOutcome p = parse_case_text("id = \"Bad Id\"\nstep = [ { op = \"sync\" } ]\nsetps = 1\n", "x.toml");
  std::vector<std::string> messages;
  for (const auto& e : p.errors) messages.push_back(e.format());
  auto has = [&](const char* s) {
    return std::any_of(messages.begin(), messages.end(), [&](const auto& m) { return m.find(s) != std::string::npos; });
  };
  EXPECT_TRUE(has("x.toml:3:1: error: unknown key 'setps'")) << ::testing::PrintToString(messages);
  EXPECT_TRUE(has("the case has no 'title'"));
  EXPECT_TRUE(has("the case has no 'description'"));
  EXPECT_TRUE(has("is not lowercase"));
  EXPECT_TRUE(has("differs from its file name"));
}

TEST(Parser, TomlSyntaxErrorHasAPosition) {
  ParseOutcome p = parse_case_text("id = \"t\"\nstep = [ { op = \"open\", fd } ]\n", "t.toml");
  ASSERT_EQ(p.errors.size(), 1u);
  EXPECT_EQ(p.errors[0].line, 2);
  EXPECT_NE(p.errors[0].message.find("not valid TOML"), std::string::npos);
}

TEST(Parser, HashIsSha256OfTheFile) {
  // The digest of the exact bytes: two texts that parse alike hash differently.
  const std::string a = std::string(kHead) + "step = [ { op = \"sync\" } ]\n";
  ParseOutcome p1 = parse_case_text(a, "t.toml"), p2 = parse_case_text(a + "# comment\n", "t.toml");
  ASSERT_EQ(p1.cases.size(), 1u);
  ASSERT_EQ(p2.cases.size(), 1u);
  EXPECT_NE(p1.cases[0].hash, p2.cases[0].hash);
  // Known vector: sha256 of the empty file parses to an error, so check via a
  // file whose digest is computed independently.
  const std::string path = ::testing::TempDir() + "/t.toml";
  FILE* f = std::fopen(path.c_str(), "w");
  std::fputs(a.c_str(), f);
  std::fclose(f);
  const std::string cmd = "sha256sum " + path;
  FILE* pipe = popen(cmd.c_str(), "r");
  char buf[65] = {};
  ASSERT_EQ(std::fread(buf, 1, 64, pipe), 64u);
  pclose(pipe);
  EXPECT_EQ(parse_case_file(path).cases.at(0).hash, std::string(buf));
}

// ---- the fstests table -----------------------------------------------------------

const char kFstestsSteps[] =
    "step = [\n"
    "  { op = \"open\", fd = \"a\" },\n"
    "  { op = \"fsync\", fd = \"a\", probe = \"first\" },\n"
    "  { op = \"fsync\", fd = \"a\", probe = \"again\" },\n"
    "]\n";

ParseOutcome parse_fstests(const std::string& id, const std::string& table) {
  return parse_case_text("id = \"" + id + "\"\ntitle = \"x\"\ndescription = \"x\"\n" + table + kFstestsSteps,
                         id + ".toml");
}

TEST(Parser, FstestsConditionIsParsedAndTravels) {
  ParseOutcome p = parse_fstests("fstests-generic-484",
                                 "fstests.test = \"generic/484\"\n"
                                 "fstests.passes_when = \"one of two syncfs fails\"\n"
                                 "fstests.expect = [\n"
                                 "  { probe = \"first\", expect = \"error\" },\n"
                                 "  { one_of = [\"first\", \"again\"], expect = \"EIO\" },\n"
                                 "]\n");
  for (const auto& e : p.errors) ADD_FAILURE() << e.format();
  ASSERT_EQ(p.cases.size(), 1u);
  ASSERT_TRUE(p.cases[0].fstests);
  const FstestsCondition& f = *p.cases[0].fstests;
  EXPECT_EQ(f.test, "generic/484");
  ASSERT_EQ(f.expect.size(), 2u);
  EXPECT_FALSE(f.expect[0].one_of);
  EXPECT_EQ(f.expect[0].probes, std::vector<std::string>{"first"});
  EXPECT_EQ(f.expect[0].line, 7);
  EXPECT_TRUE(f.expect[1].one_of);
  EXPECT_EQ(f.expect[1].probes, (std::vector<std::string>{"first", "again"}));
  EXPECT_EQ(f.expect[1].expect, "EIO");
  // Cases travel to guests and into run.json as JSON: the condition with them.
  const Case back = nlohmann::json(p.cases[0]).get<Case>();
  ASSERT_TRUE(back.fstests);
  EXPECT_EQ(back.fstests->expect[1].probes, f.expect[1].probes);
  EXPECT_EQ(back.fstests->passes_when, f.passes_when);
}

struct BadFstests {
  const char* id;
  const char* table;
  int line, column;
  const char* message;
  const char* hint;
};

class BadFstestsTable : public ::testing::TestWithParam<BadFstests> {};

TEST_P(BadFstestsTable, ReportedPrecisely) {
  const BadFstests& b = GetParam();
  ParseOutcome p = parse_fstests(b.id, b.table);
  EXPECT_TRUE(p.cases.empty());
  ASSERT_EQ(p.errors.size(), 1u) << ::testing::PrintToString(p.errors.size()) << " "
                                  << (p.errors.empty() ? "" : p.errors[0].format() + " / " + p.errors.back().format());
  const CaseError& e = p.errors[0];
  EXPECT_EQ(e.line, b.line) << e.format();
  EXPECT_EQ(e.column, b.column) << e.format();
  EXPECT_NE(e.message.find(b.message), std::string::npos) << e.format();
  EXPECT_NE(e.hint.find(b.hint), std::string::npos) << e.format();
}

INSTANTIATE_TEST_SUITE_P(
    Mistakes, BadFstestsTable,
    ::testing::Values(
        BadFstests{"fstests-generic-441", "", 1, 6, "does not state fstests' pass condition", "fstests.test = \"generic/441\""},
        BadFstests{"fstests-generic-441", "fstests.test = \"generic/442\"\nfstests.passes_when = \"x\"\nfstests.not_checked = \"y\"\n",
                   4, 16, "differs from the case id's generic/441", "fstests.test = \"generic/441\""},
        BadFstests{"t", "fstests.test = \"441\"\nfstests.passes_when = \"x\"\nfstests.not_checked = \"y\"\n", 4, 16,
                   "is not an fstests test name", "generic/441"},
        BadFstests{"t", "fstests.test = \"generic/441\"\nfstests.passes_when = \"x\"\n"
                   "fstests.expect = [ { probe = \"frist\", expect = \"error\" } ]\n", 6, 30,
                   "probe 'frist' names no step", "probe = \"frist\""},
        BadFstests{"t", "fstests.test = \"generic/441\"\nfstests.passes_when = \"x\"\n"
                   "fstests.expect = [ { probe = \"first\", expect = \"fails\" } ]\n", 6, 48,
                   "expect cannot be 'fails'", "ok, error or an errno"},
        BadFstests{"t", "fstests.test = \"generic/441\"\nfstests.passes_when = \"x\"\n"
                   "fstests.expect = [ { one_of = [\"first\"], expect = \"EIO\" } ]\n", 6, 31,
                   "'one_of' must list at least two probes", "one_of = ["},
        BadFstests{"t", "fstests.test = \"generic/441\"\nfstests.passes_when = \"x\"\n", 4, 1,
                   "checks nothing in this case", "not_checked"},
        BadFstests{"t", "fstests.test = \"generic/441\"\nfstests.passes_when = \"x\"\nfstests.not_chekced = \"y\"\n",
                   6, 9, "unknown key 'not_chekced'", "did you mean 'not_checked'?"}));

TEST(Parser, MissingDirectoryIsAnError) {
  ParseOutcome p = load_cases("/nonexistent/cases");
  ASSERT_EQ(p.errors.size(), 1u);
  EXPECT_NE(p.errors[0].format().find("no such case directory"), std::string::npos);
}

TEST(Parser, UnknownCapabilityIsAnErrorWithAHint) {
  const CapabilityTable caps = load_capabilities(SYNCPROBE_DATA_DIR "/capabilities.toml");
  const std::string text = std::string(kHead) + "requires = [\"power-cut\", \"powercut\"]\n" +
                           "step = [ { op = \"sync\" } ]\n";
  ParseOutcome p = parse_case_text(text, "t.toml", &caps);
  ASSERT_EQ(p.errors.size(), 1u);
  EXPECT_EQ(p.errors[0].line, 4);
  EXPECT_EQ(p.errors[0].message, "unknown capability 'powercut'");
  EXPECT_NE(p.errors[0].hint.find("power-cut"), std::string::npos);
  EXPECT_TRUE(parse_case_text(text, "t.toml").ok()) << "without a table, names are not checked";
}

// Every capability a step can imply is in data/capabilities.toml, so the
// names steps, cases and targets use are one vocabulary.
TEST(Parser, StepCapabilitiesAreInTheDataFile) {
  const CapabilityTable caps = load_capabilities(SYNCPROBE_DATA_DIR "/capabilities.toml");
  for (const auto& spec : step_table()) {
    if (!spec.capability.empty()) {
      EXPECT_TRUE(caps.count(std::string(spec.capability))) << spec.name << ": " << spec.capability;
    }
  }
  for (const char* implied : {"second-process", "direct-io", "fault:data", "fault:metadata"})
    EXPECT_TRUE(caps.count(implied)) << implied;
  for (const auto& spec : step_table()) {
    if (spec.name != "fault") continue;
    for (const auto& a : spec.args) {
      if (a.name != "io" && a.name != "mode") continue;
      for (const auto& choice : a.choices) {
        if (choice != "error") {
          EXPECT_TRUE(caps.count("fault:" + std::string(choice))) << choice;
        }
      }
    }
  }
}

}  // namespace
}  // namespace syncprobe
