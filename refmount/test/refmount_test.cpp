// The mount's control protocol and checks, without mounting: requests are
// answered by MountedFs::handle as the control socket would answer them.
// (Mounting itself is tested end to end in tests/test_mount.py.)
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "../src/mounted_fs.h"
#include "syncprobe/refmount.h"

namespace syncprobe::refmount {
namespace {

struct Mounted {
  explicit Mounted(const char* policy)
      : m(ref::make_policy(policy), ref::FileSystem::Options{}, "/nonexistent/control", nullptr) {}
  nlohmann::json ask(const nlohmann::json& q) { return m.handle(q); }
  MountedFs m;
};

TEST(Control, FaultOnAFileFailsItsFsyncAndIsReported) {
  Mounted mt("proposed");
  ref::FileSystem& fs = mt.m.fs();
  ref::Handle h;
  ASSERT_TRUE(fs.open("f", {}, h).ok());
  auto r = mt.ask({{"op", "fault"}, {"io", "write"}, {"path", "f"}, {"errno", "ENOSPC"}, {"count", 1}});
  ASSERT_TRUE(r["ok"]) << r.dump();
  EXPECT_EQ(r["fault"]["layer"], "reference");
  EXPECT_EQ(r["fault"]["errno"], "ENOSPC");
  EXPECT_EQ(r["fault"]["count"], 1);
  const std::vector<std::byte> page(4096, std::byte{1});
  ASSERT_TRUE(fs.pwrite(h, page, 0).ok());
  EXPECT_EQ(fs.fsync(h, false).err, ENOSPC);
  auto st = mt.ask({{"op", "status"}});
  EXPECT_EQ(st["injected_faults"], 1);
  EXPECT_EQ(st["faults_logged"], 1);
  ASSERT_EQ(st["recent_faults"].size(), 1u);
  EXPECT_EQ(st["recent_faults"][0]["layer"], "reference");
  EXPECT_EQ(st["recent_faults"][0]["errno"], "ENOSPC");
  EXPECT_EQ(st["dirty_pages"], 1) << "proposed keeps the failed page dirty";
  EXPECT_TRUE(fs.fsync(h, false).ok()) << "count 1: the retry goes through";
}

TEST(Control, ARangeWithinAFileAndTheOtherEvents) {
  Mounted mt("linux-4.17");
  ref::FileSystem& fs = mt.m.fs();
  ref::Handle h;
  ASSERT_TRUE(fs.open("f", {}, h).ok());
  auto r = mt.ask({{"op", "fault"}, {"path", "f"}, {"offset", 4096}, {"length", 4096}});
  ASSERT_TRUE(r["ok"]) << r.dump();
  EXPECT_EQ(r["fault"]["ranges"][0][1], 4096);
  const std::vector<std::byte> two(8192, std::byte{2});
  ASSERT_TRUE(fs.pwrite(h, two, 0).ok());
  EXPECT_EQ(fs.fsync(h, false).err, EIO);
  EXPECT_TRUE(fs.fsync(h, false).ok()) << "linux-4.17 marked the page clean";
  EXPECT_TRUE(mt.ask({{"op", "heal"}})["ok"]);
  EXPECT_TRUE(mt.ask({{"op", "drop-caches"}})["ok"]);
  EXPECT_TRUE(mt.ask({{"op", "writeback"}})["ok"]);
  EXPECT_EQ(mt.ask({{"op", "remount"}})["error"], "EBUSY") << "a description is open";
  EXPECT_TRUE(mt.ask({{"op", "power-cut"}})["ok"]);
  EXPECT_EQ(fs.fsync(h, false).err, EBADF) << "the power took the description";
  EXPECT_EQ(mt.ask({{"op", "status"}})["open_files"], 0);
  EXPECT_TRUE(mt.ask({{"op", "remount"}})["ok"]);
}

// The requests refmount:<policy> sends besides the fault: settle, read-back,
// sync, thin, limits and shutdown.
TEST(Control, WhatTheTargetAsks) {
  Mounted mt("proposed");
  ref::FileSystem& fs = mt.m.fs();
  ref::Handle h;
  ASSERT_TRUE(fs.open("f", {}, h).ok());
  const std::vector<std::byte> page(4096, std::byte{0xab});
  ASSERT_TRUE(fs.pwrite(h, page, 0).ok());
  auto r = mt.ask({{"op", "settle"}, {"open", 1}});
  EXPECT_TRUE(r["ok"]) << r.dump();
  EXPECT_EQ(r["open_files"], 1);
  r = mt.ask({{"op", "settle"}, {"open", 0}});  // nothing will close it: gives up after its second
  EXPECT_FALSE(r["ok"]);
  EXPECT_NE(r["error"].get<std::string>().find("still open"), std::string::npos);
  EXPECT_TRUE(mt.ask({{"op", "sync"}})["ok"]);
  EXPECT_EQ(mt.ask({{"op", "status"}})["dirty_pages"], 0) << "sync wrote the page";
  ASSERT_TRUE(fs.close(h).ok());
  r = mt.ask({{"op", "read-back"}, {"path", "f"}, {"offset", 0}, {"length", 2}});
  ASSERT_TRUE(r["ok"]) << r.dump();
  EXPECT_EQ(r["hex"], "abab");
  EXPECT_EQ(r["ret"], 2);
  r = mt.ask({{"op", "thin"}, {"headroom", 8192}, {"when_full", "error"}});
  ASSERT_TRUE(r["ok"]) << r.dump();
  EXPECT_EQ(r["capacity_blocks"].get<uint64_t>(), r["allocated_blocks"].get<uint64_t>() + 2);
  EXPECT_EQ(mt.ask({{"op", "thin"}, {"headroom", 1}, {"when_full", "later"}})["error"], "when_full: error or queue");
  EXPECT_TRUE(mt.ask({{"op", "memory-limit"}, {"bytes", 65536}})["ok"]);
  EXPECT_TRUE(mt.ask({{"op", "cache-limit"}, {"bytes", 1 << 20}})["ok"]);
  r = mt.ask({{"op", "shutdown"}, {"flush", "sync"}});
  ASSERT_TRUE(r["ok"]) << r.dump();
  EXPECT_TRUE(r.contains("sync"));
}

TEST(Control, BadRequestsSayWhy) {
  Mounted mt("proposed");
  auto why = [&](const nlohmann::json& q) { return mt.ask(q).value("error", std::string()); };
  EXPECT_NE(why(nlohmann::json::array()).find("\"op\""), std::string::npos);
  EXPECT_NE(why({{"op", "explode"}}).find("unknown op"), std::string::npos);
  EXPECT_NE(why({{"op", "fault"}, {"path", "nope"}}).find("no file 'nope'"), std::string::npos);
  EXPECT_NE(why({{"op", "fault"}, {"errno", "EWHAT"}}).find("not an errno"), std::string::npos);
  EXPECT_NE(why({{"op", "fault"}, {"mode", "hang"}}).find("block the mount"), std::string::npos);
  EXPECT_NE(why({{"op", "fault"}, {"io", "sideways"}}).find("io 'sideways'"), std::string::npos);
  EXPECT_NE(why({{"op", "grow"}, {"bytes", 4096}}).find("no --size"), std::string::npos);
  EXPECT_NE(why({{"op", "fault"}, {"where", "data"}}).find("needs a path"), std::string::npos);
}

TEST(Mountpoint, RefusesWhatIsNotAnEmptyDirectoryOfItsOwn) {
  const auto dir = std::filesystem::temp_directory_path() / ("refmount-test-" + std::to_string(getpid()));
  std::filesystem::create_directories(dir / "empty");
  std::filesystem::create_directories(dir / "full");
  std::ofstream(dir / "full" / "x") << "x";
  std::ofstream(dir / "file") << "x";
  EXPECT_EQ(check_mountpoint((dir / "empty").string()), "");
  EXPECT_NE(check_mountpoint((dir / "full").string()).find("not empty"), std::string::npos);
  EXPECT_NE(check_mountpoint((dir / "file").string()).find("not a directory"), std::string::npos);
  EXPECT_NE(check_mountpoint((dir / "missing").string()).find("create an empty directory"), std::string::npos);
  EXPECT_NE(check_mountpoint("/proc").find("already a mount point"), std::string::npos);
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace syncprobe::refmount
