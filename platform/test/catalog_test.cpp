#include "syncprobe/catalog.h"

#include <gtest/gtest.h>

#include <fstream>

namespace syncprobe {
namespace {

std::string write_temp(const std::string& text) {
  const std::string path = testing::TempDir() + "/fs-" +
                           testing::UnitTest::GetInstance()->current_test_info()->name() + ".toml";
  std::ofstream(path) << text;
  return path;
}

TEST(Catalog, TheRepositoryFileLoads) {
  const auto all = load_filesystems(SYNCPROBE_DATA_DIR "/filesystems.toml");
  ASSERT_GE(all.size(), 4u);
  const FilesystemSpec* journal = nullptr;
  for (const auto& f : all)
    if (f.name == "ext4:data=journal") journal = &f;
  ASSERT_NE(journal, nullptr);
  EXPECT_EQ(journal->fs, "ext4");
  EXPECT_EQ(journal->options, "data=journal");
  const auto argv = journal->mkfs_argv("/dev/loop7");
  EXPECT_EQ(argv.front(), "mkfs.ext4");
  EXPECT_EQ(argv.back(), "/dev/loop7");
}

TEST(Catalog, JsonRoundTripForTheGuest) {
  const auto all = load_filesystems(SYNCPROBE_DATA_DIR "/filesystems.toml");
  for (const auto& f : all) {
    FilesystemSpec back = nlohmann::json(f).get<FilesystemSpec>();
    EXPECT_EQ(nlohmann::json(back), nlohmann::json(f));
  }
}

TEST(Catalog, MistakesNameFileLineAndFix) {
  auto message = [](const std::string& text) {
    try {
      load_filesystems(write_temp(text));
    } catch (const DataError& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_NE(message("[[filesystem]]\nname = \"ext4\"\nfs = \"ext4\"\n").find(".toml:1:1: filesystem entry has no 'mkfs'"),
            std::string::npos);
  EXPECT_NE(message("[[filesystem]]\nname = \"ext4\"\nfs = \"ext4\"\nmkfs = [\"mkfs.ext4\"]\n")
                .find("must contain \"{device}\""),
            std::string::npos);
  EXPECT_NE(message("[[filesystem]]\nname = \"ext4:x\"\nfs = \"ext4\"\nmkfs = [\"{device}\"]\n")
                .find("should be 'ext4'"),
            std::string::npos);
  EXPECT_NE(message("[[filesystem]]\nname = \"a\"\nfs = \"a\"\nmkfs = [\"{device}\"]\n"
                    "[[filesystem]]\nname = \"a\"\nfs = \"a\"\nmkfs = [\"{device}\"]\n")
                .find("listed twice"),
            std::string::npos);
  EXPECT_NE(message("filesystem = 3 = 4\n").find(".toml:1:"), std::string::npos);
  EXPECT_NE(message("x = 1\n").find("no [[filesystem]] entries"), std::string::npos);
}

}  // namespace
}  // namespace syncprobe
