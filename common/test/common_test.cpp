#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <ctime>
#include <regex>

#include "syncprobe/bounded_file.h"
#include "syncprobe/clock.h"
#include "syncprobe/errno_names.h"
#include "syncprobe/hash.h"
#include "syncprobe/fault.h"
#include "syncprobe/tag.h"

namespace syncprobe {
namespace {

TEST(ErrnoNames, RoundTrip) {
  EXPECT_EQ(errno_name(EIO), "EIO");
  EXPECT_EQ(errno_name(ENOSPC), "ENOSPC");
  EXPECT_EQ(errno_name(0), "");
  EXPECT_EQ(errno_from_name("ENXIO"), ENXIO);
  EXPECT_FALSE(errno_from_name("EWHATEVER").has_value());
  EXPECT_EQ(errno_name(4000), "4000");
  EXPECT_EQ(errno_from_name("4000"), 4000);
  EXPECT_EQ(errno_name(-1), "-1");
  EXPECT_EQ(errno_from_name("-1"), -1);
}

TEST(ErrnoNames, EveryNameTheCLibraryKnowsRoundTrips) {
  int named = 0;
  for (int e = 1; e < 4096; ++e) {
    const std::string n = errno_name(e);
    ASSERT_EQ(errno_from_name(n), e) << n;
    named += n[0] == 'E';
  }
  EXPECT_GT(named, 120);  // Linux has about 133 named errnos
  EXPECT_EQ(errno_name(EUCLEAN), "EUCLEAN");
  EXPECT_EQ(errno_name(EHWPOISON), "EHWPOISON");  // not in the old hand-written table
  EXPECT_EQ(errno_from_name("EWOULDBLOCK"), EAGAIN);
  EXPECT_EQ(errno_from_name("ENOTSUP"), EOPNOTSUPP);
}

TEST(Hash, Sha256KnownAnswers) {
  // FIPS 180-2 appendix B.1 and the empty string.
  EXPECT_EQ(sha256_hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(sha256_hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

TEST(Tag, ReadsBackWhatWasWritten) {
  auto a = make_tagged("A", 4096, 8192);
  auto r = classify_tagged(a, 4096);
  EXPECT_EQ(r.tag, "A");
  ASSERT_EQ(r.parts.size(), 1u);
  EXPECT_EQ(r.parts[0].second, 8192u);
}

TEST(Tag, MisplacedSectorIsGarbage) {
  auto a = make_tagged("A", 0, 512);
  EXPECT_EQ(classify_tagged(a, 512).tag, "garbage");
}

TEST(Tag, MixedAndZero) {
  auto a = make_tagged("A", 0, 1024);
  std::vector<std::byte> z(1024);
  a.insert(a.end(), z.begin(), z.end());
  auto r = classify_tagged(a, 0);
  EXPECT_EQ(r.tag, "mixed");
  ASSERT_EQ(r.parts.size(), 2u);
  EXPECT_EQ(r.parts[1].first, "zero");
  EXPECT_EQ(classify_tagged(z, 0).tag, "zero");
  EXPECT_EQ(classify_tagged({}, 0).tag, "empty");
}

TEST(Tag, UnalignedWriteMatchesAlignedPattern) {
  auto whole = make_tagged("B", 0, 1024);
  auto part = make_tagged("B", 100, 600);
  EXPECT_TRUE(std::equal(part.begin(), part.end(), whole.begin() + 100));
}

TEST(Tag, TornSectorIsGarbage) {
  auto a = make_tagged("A", 0, 512);
  auto b = make_tagged("B", 0, 512);
  std::copy(b.begin() + 256, b.end(), a.begin() + 256);
  EXPECT_EQ(classify_tagged(a, 0).tag, "garbage");
}

TEST(Tag, ReservedNamesAreNotTags) {
  EXPECT_FALSE(valid_tag("zero"));
  EXPECT_FALSE(valid_tag("mixed"));
  EXPECT_FALSE(valid_tag(""));
  EXPECT_FALSE(valid_tag("has space"));
  EXPECT_TRUE(valid_tag("old"));
}

TEST(FaultRule, RangesInversionAndCount) {
  FaultRule r;
  r.ranges = {{4096, 4096}};
  r.op = FaultOp::write;
  EXPECT_TRUE(r.matches(FaultOp::write, 4096, 512));
  EXPECT_FALSE(r.matches(FaultOp::write, 0, 4096));
  EXPECT_FALSE(r.matches(FaultOp::read, 4096, 512));
  r.invert = true;
  EXPECT_FALSE(r.matches(FaultOp::write, 4096, 512));
  EXPECT_TRUE(r.matches(FaultOp::write, 0, 4096));
  r.count = 0;
  EXPECT_FALSE(r.matches(FaultOp::write, 0, 4096));
}

}  // namespace
}  // namespace syncprobe

TEST(Clock, UtcNowInResultsAndRunIdFormats) {
  const std::time_t before = std::time(nullptr);
  const std::string iso = syncprobe::utc_now();
  EXPECT_TRUE(std::regex_match(iso, std::regex(R"(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z)"))) << iso;
  const std::string id = syncprobe::utc_now("%Y%m%d-%H%M%S");
  EXPECT_TRUE(std::regex_match(id, std::regex(R"(\d{8}-\d{6})"))) << id;
  // UTC, not local time: the year matches gmtime's for the same moment.
  std::tm tm{};
  gmtime_r(&before, &tm);
  EXPECT_EQ(iso.substr(0, 4), std::to_string(1900 + tm.tm_year));
}

namespace syncprobe {
namespace {

// A FIFO is refused without waiting for a writer; a file over the bound is
// refused by its size; a regular file within it is read whole.
TEST(BoundedFile, OnlyRegularFilesWithinTheBound) {
  char tmpl[] = "/tmp/bounded_file_test.XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  const std::string dir = tmpl;
  ASSERT_EQ(mkfifo((dir + "/fifo").c_str(), 0600), 0);
  BoundedRead f = read_bounded_file(dir + "/fifo", 1024);
  EXPECT_FALSE(f.ok);
  EXPECT_EQ(f.problem, BoundedRead::Problem::not_regular);
  EXPECT_EQ(f.why, "not a regular file (a FIFO)");
  FILE* out = std::fopen((dir + "/small").c_str(), "w");
  ASSERT_NE(out, nullptr);
  std::fputs("twelve bytes", out);
  std::fclose(out);
  BoundedRead ok = read_bounded_file(dir + "/small", 12);
  EXPECT_TRUE(ok.ok) << ok.why;
  EXPECT_EQ(ok.text, "twelve bytes");
  BoundedRead big = read_bounded_file(dir + "/small", 11);
  EXPECT_EQ(big.problem, BoundedRead::Problem::too_large);
  EXPECT_EQ(read_bounded_file(dir + "/missing", 1).problem, BoundedRead::Problem::open);
  std::remove((dir + "/fifo").c_str());
  std::remove((dir + "/small").c_str());
  ::rmdir(dir.c_str());
}

}  // namespace
}  // namespace syncprobe
