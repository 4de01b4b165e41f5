// libfiu on syncprobe's own worker: a PosixProcess exec'd under the
// injector's command line (fiu-run -x) answers, fiu-ctrl reaches it, the
// point fails the call with the errno asked for (once, or until heal), and
// the worker keeps the forked worker's guarantees (hangs time out, a dying
// runner takes it along, a worker that cannot start is a harness error).
#include <gtest/gtest.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <thread>

#include "syncprobe/libfiu_injector.h"
#include "syncprobe/posix_process.h"
#include "syncprobe/tag.h"

namespace syncprobe {
namespace {

using namespace std::chrono_literals;

bool on_path(const std::string& program) {
  for (const char* dir : {"/usr/bin", "/usr/local/bin", "/bin"})
    if (access((std::string(dir) + "/" + program).c_str(), X_OK) == 0) return true;
  return false;
}

std::string environ_of(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/environ");
  std::string s((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  for (char& c : s)
    if (c == '\0') c = '\n';
  return s;
}

class LibfiuWorkerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!on_path("fiu-run") || !on_path("fiu-ctrl") || access("/usr/lib/fiu/fiu_posix_preload.so", R_OK) != 0)
      GTEST_SKIP() << "needs fiu-utils (fiu-run, fiu-ctrl, /usr/lib/fiu)";
    if (access(SYNCPROBE_WORKER_PATH, X_OK) != 0) GTEST_SKIP() << "syncprobe-worker not built";
    setenv("SYNCPROBE_WORKER", SYNCPROBE_WORKER_PATH, 1);
#if defined(__SANITIZE_ADDRESS__)
    // fiu-run preloads libfiu ahead of the exec'd worker's ASan runtime: the
    // runtime refuses that order, and told to accept it the worker dies of
    // SIGSEGV at start. The release build's run of these tests covers them.
    GTEST_SKIP() << "libfiu's preload cannot run in front of an AddressSanitizer worker";
#endif
    char tmpl[] = "/tmp/syncprobe-libfiu-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    std::filesystem::create_directory(dir_ + "/root");
    std::filesystem::create_directory(dir_ + "/fiu");
    fiu_ = std::make_unique<LibfiuInjector>(dir_ + "/fiu", 10000ms);
  }
  void TearDown() override {
    fiu_.reset();
    if (!dir_.empty()) std::filesystem::remove_all(dir_);
  }
  WorkerCommand under_fiu() {
    return [this](const std::vector<std::string>& argv) { return fiu_->command(argv); };
  }
  std::string dir_;
  std::unique_ptr<LibfiuInjector> fiu_;
};

TEST_F(LibfiuWorkerTest, TheExecdWorkerAnswersAndThePointFailsItsCalls) {
  PosixProcess worker(dir_ + "/root", 10000ms, under_fiu());
  ASSERT_TRUE(worker.alive());
  fiu_->attach(worker.pid());
  Process& a = fiu_->wrap(worker);
  // It is syncprobe-worker, with libfiu's preload and its control fifo.
  EXPECT_EQ(std::filesystem::read_symlink("/proc/" + std::to_string(worker.pid()) + "/exe").filename(),
            "syncprobe-worker");
  EXPECT_NE(environ_of(worker.pid()).find("fiu_posix_preload.so"), std::string::npos);
  struct stat st{};
  EXPECT_EQ(::stat((dir_ + "/fiu/fiu-" + std::to_string(worker.pid()) + ".in").c_str(), &st), 0);

  SysResult f = a.open("f", {});
  ASSERT_TRUE(f.ok()) << f.err;
  const int fd = int(f.ret);
  ASSERT_EQ(a.pwrite(fd, make_tagged("A", 0, 4096), 0).ret, 4096);
  ASSERT_TRUE(a.fsync(fd).ok());
  EXPECT_EQ(fiu_->injected(), 0u);

  // One-shot fsync: the first call fails with the errno asked for, the next works.
  nlohmann::json detail;
  ASSERT_TRUE(fiu_->fail_call("posix/io/sync/fsync", ENOSPC, 100, true, detail).ok()) << detail.dump();
  EXPECT_EQ(detail["reached"], nlohmann::json::array({worker.pid()})) << detail.dump();
  EXPECT_EQ(detail["layer"], "libfiu");
  EXPECT_EQ(a.fsync(fd).err, ENOSPC);
  EXPECT_EQ(fiu_->injected(), 1u);
  EXPECT_TRUE(a.fsync(fd).ok()) << "onetime: libfiu disabled the point after its failure";
  EXPECT_TRUE(a.fdatasync(fd).ok()) << "only the named point fails";
  EXPECT_EQ(fiu_->injected(), 1u);

  // Until heal: every pwrite fails, and nothing reaches the file.
  nlohmann::json d2;
  ASSERT_TRUE(fiu_->fail_call("posix/io/rw/pwrite", EIO, 100, false, d2).ok()) << d2.dump();
  EXPECT_EQ(a.pwrite(fd, make_tagged("B", 0, 4096), 0).err, EIO);
  EXPECT_EQ(a.pwrite(fd, make_tagged("B", 0, 4096), 0).err, EIO);
  EXPECT_EQ(fiu_->injected(), 3u);
  std::vector<std::byte> buf(4096);
  ASSERT_EQ(a.pread(fd, buf, 0).ret, 4096);
  EXPECT_EQ(classify_tagged(buf, 0).tag, "A");
  ASSERT_TRUE(fiu_->heal().ok());
  EXPECT_EQ(a.pwrite(fd, make_tagged("B", 0, 4096), 0).ret, 4096);
  EXPECT_EQ(fiu_->injected(), 3u);
  fiu_->detach(worker.pid());
  EXPECT_TRUE(worker.kill_worker());
}

// A worker started while a point is enabled fails from its first call.
TEST_F(LibfiuWorkerTest, AWorkerStartedAfterTheFaultHasThePointFromTheStart) {
  nlohmann::json detail;
  ASSERT_TRUE(fiu_->fail_call("posix/io/sync/fdatasync", EIO, 100, false, detail).ok());
  EXPECT_EQ(detail["reached"], nlohmann::json::array());
  PosixProcess worker(dir_ + "/root", 10000ms, under_fiu());
  SysResult f = worker.open("g", {});
  ASSERT_TRUE(f.ok());
  EXPECT_EQ(worker.fdatasync(int(f.ret)).err, EIO);
  EXPECT_TRUE(worker.fsync(int(f.ret)).ok());
}

TEST_F(LibfiuWorkerTest, AHungCallOfTheExecdWorkerStillTimesOut) {
  ASSERT_EQ(mkfifo((dir_ + "/root/fifo").c_str(), 0600), 0);
  PosixProcess worker(dir_ + "/root", 300ms, under_fiu());
  OpenFlags ro;
  ro.read_only = true;
  ro.create = false;
  EXPECT_TRUE(worker.open("fifo", ro).hung);  // no writer: blocks
  EXPECT_TRUE(worker.kill_worker(5000ms));
}

TEST_F(LibfiuWorkerTest, AWorkerThatCannotBeExecdIsAHarnessError) {
  setenv("SYNCPROBE_WORKER", (dir_ + "/no-such-worker").c_str(), 1);
  try {
    PosixProcess worker(dir_ + "/root", 10000ms, under_fiu());
    FAIL() << "a worker that never served must throw";
  } catch (const std::runtime_error& e) {
    EXPECT_EQ(std::string(e.what()).rfind("harness:", 0), 0u) << e.what();
    EXPECT_NE(std::string(e.what()).find("before it served"), std::string::npos) << e.what();
  }
}

// PR_SET_PDEATHSIG survives the exec: a runner that dies takes its exec'd worker along.
TEST_F(LibfiuWorkerTest, ADyingRunnerTakesItsExecdWorkerAlong) {
  int p[2];
  ASSERT_EQ(pipe(p), 0);
  const pid_t runner = fork();
  ASSERT_GE(runner, 0);
  if (runner == 0) {
    ::close(p[0]);
    PosixProcess worker(dir_ + "/root", 10000ms, under_fiu());
    const pid_t pid = worker.pid();
    if (write(p[1], &pid, sizeof pid) != sizeof pid) _exit(1);
    _exit(0);  // no destructor: the worker is left to PR_SET_PDEATHSIG
  }
  ::close(p[1]);
  pid_t worker = 0;
  ASSERT_EQ(read(p[0], &worker, sizeof worker), ssize_t(sizeof worker));
  ::close(p[0]);
  int status = 0;
  ASSERT_EQ(waitpid(runner, &status, 0), runner);
  // The worker is the runner's child, reparented and killed: wait until /proc no longer shows it alive.
  bool gone = false;
  for (int i = 0; i < 1000 && !gone; ++i) {
    std::ifstream stat("/proc/" + std::to_string(worker) + "/stat");
    std::string line;
    gone = !std::getline(stat, line) || line.find(") Z ") != std::string::npos;
    if (!gone) std::this_thread::sleep_for(10ms);
  }
  EXPECT_TRUE(gone) << "worker " << worker << " outlived its runner";
}

}  // namespace
}  // namespace syncprobe
