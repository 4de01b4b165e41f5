// The scratch root's checks, the run marker, and what the cleanup of a
// killed run may touch (docs/safety.md sections 1 and 2).
#include <gtest/gtest.h>

#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "syncprobe/linux_fs.h"
#include "syncprobe/scratch.h"

namespace syncprobe {
namespace {

namespace fs = std::filesystem;

class ScratchTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/syncprobe-scratch-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    base_ = tmpl;
  }
  void TearDown() override { fs::remove_all(base_); }
  static nlohmann::json read_json(const std::string& path) {
    std::ifstream in(path);
    std::stringstream ss;
    ss << in.rdbuf();
    return nlohmann::json::parse(ss.str());
  }
  // A process that sleeps until killed; reaped by the test.
  static pid_t sleeper() {
    const pid_t pid = fork();
    if (pid == 0) {
      pause();
      _exit(0);
    }
    return pid;
  }
  // A marker for a run whose owner is gone, listing `resources`.
  void dead_run(const std::string& name, const nlohmann::json& resources) {
    fs::create_directory(base_ + "/root/" + name);
    const pid_t gone = fork();
    if (gone == 0) _exit(0);
    const uint64_t start = process_start_time(gone);
    waitpid(gone, nullptr, 0);
    std::ofstream(base_ + "/root/" + name + "/" + RunDirectory::kMarker)
        << nlohmann::json{{"schema", "syncprobe.run-marker/1"},
                          {"run_id", name},
                          {"owner", {{"pid", gone}, {"start", start}}},
                          {"resources", resources}}
               .dump();
  }
  std::string base_;
};

TEST_F(ScratchTest, TheRootIsCreatedPrivate) {
  const std::string root = base_ + "/a/b/root";
  EXPECT_EQ(prepare_scratch_root(root), "");
  struct stat st{};
  ASSERT_EQ(lstat(root.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);
  EXPECT_EQ(st.st_uid, geteuid());
  EXPECT_EQ(prepare_scratch_root(root), "") << "an existing private root is accepted";
}

TEST_F(ScratchTest, AnUnsafeRootIsRefusedWithTheReason) {
  EXPECT_NE(prepare_scratch_root(base_ + "/missing", false).find("cannot be opened"), std::string::npos);
  EXPECT_FALSE(fs::exists(base_ + "/missing"));
  fs::create_directory(base_ + "/target");
  fs::create_directory_symlink(base_ + "/target", base_ + "/link");
  EXPECT_NE(prepare_scratch_root(base_ + "/link").find("symbolic link"), std::string::npos);
  fs::create_directory(base_ + "/open");
  chmod((base_ + "/open").c_str(), 0777);
  EXPECT_NE(prepare_scratch_root(base_ + "/open").find("writable by other users"), std::string::npos);
  if (geteuid() == 0) {
    fs::create_directory(base_ + "/theirs");
    ASSERT_EQ(chown((base_ + "/theirs").c_str(), 65534, 65534), 0);
    EXPECT_NE(prepare_scratch_root(base_ + "/theirs").find("owned by uid 65534"), std::string::npos);
  }
  // Below a directory others can write without the sticky bit, anyone could
  // rename the root away and put another in its place.
  fs::create_directories(base_ + "/shared/root");
  chmod((base_ + "/shared").c_str(), 0777);
  chmod((base_ + "/shared/root").c_str(), 0700);
  EXPECT_NE(prepare_scratch_root(base_ + "/shared/root").find("lets other users rename"), std::string::npos);
  chmod((base_ + "/shared").c_str(), 01777);
  EXPECT_EQ(prepare_scratch_root(base_ + "/shared/root"), "") << "sticky, like /tmp: fine";
  if (geteuid() == 0) {
    // The owner of a directory on the way can rename in it, sticky or not;
    // a symbolic link on the way is its owner's choice of where things go.
    // Nothing is created through either.
    fs::create_directory(base_ + "/others");
    ASSERT_EQ(chown((base_ + "/others").c_str(), 65534, 65534), 0);
    EXPECT_NE(prepare_scratch_root(base_ + "/others/new/root").find("owned by uid 65534"), std::string::npos);
    EXPECT_FALSE(fs::exists(base_ + "/others/new"));
    fs::create_directory(base_ + "/mine");
    fs::create_directory_symlink(base_ + "/mine", base_ + "/via");
    ASSERT_EQ(lchown((base_ + "/via").c_str(), 65534, 65534), 0);
    EXPECT_NE(prepare_scratch_root(base_ + "/via/root").find("symbolic link owned by uid 65534"), std::string::npos);
    EXPECT_FALSE(fs::exists(base_ + "/mine/root"));
    ASSERT_EQ(lchown((base_ + "/via").c_str(), 0, 0), 0);
    EXPECT_EQ(prepare_scratch_root(base_ + "/via/root"), "") << "a link of root's to a safe directory is fine";
    // The directory a link leads to is judged too.
    fs::create_directory(base_ + "/others/root");
    chmod((base_ + "/others/root").c_str(), 0700);
    fs::create_directory_symlink(base_ + "/others", base_ + "/to-others");
    EXPECT_NE(prepare_scratch_root(base_ + "/to-others/root", false).find("owned by uid 65534"), std::string::npos);
  }
}

// The directories a run makes under its own: new and private, or (where a
// target shares one between cases) an existing one only when it is private.
TEST_F(ScratchTest, PrivateDirectoriesRefuseWhatTheRunDidNotMake) {
  const std::string d = base_ + "/d";
  make_private_dir(d, false);
  struct stat st{};
  ASSERT_EQ(lstat(d.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);
  EXPECT_NO_THROW(make_private_dir(d, true));
  EXPECT_THROW(make_private_dir(d, false), std::runtime_error) << "a new directory was asked for";
  fs::create_directory_symlink(base_ + "/d", base_ + "/link");
  try {
    make_private_dir(base_ + "/link", true);
    ADD_FAILURE() << "a symbolic link was accepted";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("a symbolic link"), std::string::npos) << e.what();
  }
  chmod(d.c_str(), 0777);
  EXPECT_THROW(make_private_dir(d, true), std::runtime_error) << "writable by others";
}

TEST_F(ScratchTest, TheMarkerListsWhatIsHeldBeforeItIsUsed) {
  ASSERT_EQ(prepare_scratch_root(base_ + "/root"), "");
  const std::string marker = base_ + "/root/run1/" + RunDirectory::kMarker;
  {
    RunDirectory run(base_ + "/root", "run1");
    auto m = read_json(marker);
    EXPECT_EQ(m["run_id"], "run1");
    EXPECT_EQ(m["owner"]["pid"], getpid());
    EXPECT_EQ(m["owner"]["start"], process_start_time(getpid()));
    EXPECT_TRUE(m["resources"].empty());
    const Resource mount{Resource::Kind::mount, run.path() + "/mnt", 0, 0};
    const Resource daemon{Resource::Kind::process, "syncprobe-blockdev", 42, 7};
    run.acquire(mount);
    run.acquire(daemon);
    m = read_json(marker);
    ASSERT_EQ(m["resources"].size(), 2u);
    EXPECT_EQ(m["resources"][0]["kind"], "mount");
    EXPECT_EQ(m["resources"][1]["pid"], 42);
    EXPECT_EQ(m["resources"][1]["start"], 7);
    run.release(mount);
    EXPECT_EQ(read_json(marker)["resources"].size(), 1u);
    run.release(daemon);
    EXPECT_THROW(RunDirectory(base_ + "/root", "run1"), std::runtime_error) << "a run directory is new";
  }
  EXPECT_FALSE(fs::exists(base_ + "/root/run1")) << "removed with the run";
}

TEST_F(ScratchTest, CleanupTouchesOnlyMarkedDirectoriesOfDeadOwners) {
  ASSERT_EQ(prepare_scratch_root(base_ + "/root"), "");
  const std::string root = base_ + "/root";
  fs::create_directory(root + "/unmarked");
  std::ofstream(root + "/unmarked/owner.pid") << "999999\n";  // the old format: not a marker
  std::ofstream(root + "/loose-file") << "x";
  RunDirectory live(root, "live");  // this process: alive
  const pid_t listed = sleeper(), reused = sleeper();
  dead_run("dead", {{{"kind", "process"}, {"what", "syncprobe-blockdev"}, {"pid", listed},
                     {"start", process_start_time(listed)}},
                    // the right pid but another start time: a reused pid, not ours
                    {{"kind", "process"}, {"what", "qemu-system-x86_64"}, {"pid", reused},
                     {"start", process_start_time(reused) + 1}},
                    // a mount point outside the run's directory is never unmounted
                    {{"kind", "mount"}, {"what", "/"}}});
  dead_run("copied", {});
  fs::rename(root + "/copied", root + "/renamed");  // a marker whose run id is not its directory
  std::stringstream log;
  cleanup_stale_runs(root, log);
  int status = 0;
  EXPECT_EQ(waitpid(listed, &status, 0), listed);
  EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << "the listed process was killed";
  EXPECT_EQ(waitpid(reused, &status, WNOHANG), 0) << "a reused pid is left alone";
  kill(reused, SIGKILL);
  waitpid(reused, nullptr, 0);
  EXPECT_FALSE(fs::exists(root + "/dead"));
  EXPECT_TRUE(fs::exists(root + "/unmarked/owner.pid"));
  EXPECT_TRUE(fs::exists(root + "/loose-file"));
  EXPECT_TRUE(fs::exists(root + "/live/" + RunDirectory::kMarker));
  EXPECT_TRUE(fs::exists(root + "/renamed"));
  EXPECT_NE(log.str().find("cleaned up after killed run dead"), std::string::npos) << log.str();
  EXPECT_NE(log.str().find("killed pid " + std::to_string(listed)), std::string::npos) << log.str();
  EXPECT_EQ(log.str().find("unmounted /"), std::string::npos) << log.str();
}

TEST_F(ScratchTest, CleanupNeverFollowsASymbolicLink) {
  ASSERT_EQ(prepare_scratch_root(base_ + "/root"), "");
  fs::create_directory(base_ + "/elsewhere");
  dead_run("x", {});
  fs::rename(base_ + "/root/x", base_ + "/elsewhere/x");
  fs::create_directory_symlink(base_ + "/elsewhere/x", base_ + "/root/x");
  std::stringstream log;
  cleanup_stale_runs(base_ + "/root", log);
  EXPECT_TRUE(fs::exists(base_ + "/elsewhere/x/" + std::string(RunDirectory::kMarker)));
}

}  // namespace
}  // namespace syncprobe
