// PosixProcess: real syscalls in a forked worker with its own descriptors.
#include <gtest/gtest.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <csignal>
#include <filesystem>
#include <fstream>
#include <thread>

#include "syncprobe/command.h"
#include "syncprobe/filesystem.h"
#include "syncprobe/loop_device.h"
#include "syncprobe/posix_process.h"
#include "syncprobe/tag.h"

namespace syncprobe {
namespace {

using namespace std::chrono_literals;

class PosixProcessTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/syncprobe-posix-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string dir_;
};

TEST_F(PosixProcessTest, WriteReadFsyncAcrossTwoProcesses) {
  PosixProcess a(dir_, 5000ms), b(dir_, 5000ms);
  SysResult fa = a.open("f", {});
  ASSERT_TRUE(fa.ok()) << fa.err;
  auto data = make_tagged("A", 0, 8192);
  EXPECT_EQ(a.pwrite(int(fa.ret), data, 0).ret, 8192);
  EXPECT_TRUE(a.fsync(int(fa.ret)).ok());
  EXPECT_TRUE(a.fdatasync(int(fa.ret)).ok());
  SysResult fb = b.open("f", {});
  ASSERT_TRUE(fb.ok());
  std::vector<std::byte> buf(8192);
  EXPECT_EQ(b.pread(int(fb.ret), buf, 0).ret, 8192);
  EXPECT_EQ(classify_tagged(buf, 0).tag, "A");
  EXPECT_EQ(a.stat("f").ret, 8192);
  // Descriptor tables are separate: b's descriptor number means nothing to a
  // unless a happens to have the same one open.
  EXPECT_TRUE(a.close(int(fa.ret)).ok());
  EXPECT_EQ(a.fsync(int(fa.ret)).err, EBADF);
  EXPECT_TRUE(b.fsync(int(fb.ret)).ok());
  auto m = make_tagged("M", 0, 4096);
  EXPECT_TRUE(b.msync_write(int(fb.ret), m, 0).ok());
  EXPECT_EQ(b.pread(int(fb.ret), std::span(buf).first(4096), 0).ret, 4096);
  EXPECT_EQ(classify_tagged(std::span(buf).first(4096), 0).tag, "M");
  EXPECT_TRUE(b.rename("f", "g").ok());
  EXPECT_EQ(b.stat("f").err, ENOENT);
  EXPECT_TRUE(b.unlink("g").ok());
  EXPECT_TRUE(b.sync().ok());
}

// A read through a shared mapping reports residency, the bytes, and a SIGBUS
// past the end of the file as an outcome (the worker survives it).
TEST_F(PosixProcessTest, MappedReadReportsResidencyAndSigbus) {
  PosixProcess a(dir_, 5000ms);
  SysResult f = a.open("f", {});
  ASSERT_TRUE(f.ok());
  auto data = make_tagged("A", 0, 8192);
  ASSERT_EQ(a.pwrite(int(f.ret), data, 0).ret, 8192);
  std::vector<std::byte> buf(8192);
  MappedRead m = a.mmap_read(int(f.ret), buf, 0);
  ASSERT_TRUE(m.result.ok()) << m.result.err;
  EXPECT_EQ(m.result.ret, 8192);
  EXPECT_TRUE(m.signal.empty());
  EXPECT_EQ(m.resident, (std::vector<bool>{true, true})) << "just written: in the cache";
  EXPECT_EQ(classify_tagged(buf, 0).tag, "A");

  std::vector<std::byte> past(12288);
  m = a.mmap_read(int(f.ret), past, 0);
  EXPECT_EQ(m.signal, "SIGBUS") << "the third page lies past EOF";
  EXPECT_FALSE(m.result.ok());
  EXPECT_EQ(m.result.err, 0) << "a signal is not an errno";
  EXPECT_EQ(m.resident.size(), 3u);
  EXPECT_EQ(m.copied, 8192u);
  EXPECT_EQ(classify_tagged(std::span(past).first(8192), 0).tag, "A") << "pages before it were read";
  EXPECT_TRUE(a.fsync(int(f.ret)).ok()) << "the worker lives on";

  m = a.mmap_read(12345, buf, 0);
  EXPECT_EQ(m.result.err, EBADF);
}

TEST_F(PosixProcessTest, ErrnoIsKept) {
  PosixProcess a(dir_, 5000ms);
  OpenFlags nocreate;
  nocreate.create = false;
  EXPECT_EQ(a.open("missing", nocreate).err, ENOENT);
  OpenFlags dir;
  dir.directory = true;
  SysResult d = a.open(".", dir);
  ASSERT_TRUE(d.ok());
  EXPECT_TRUE(a.fsync(int(d.ret)).ok());
  EXPECT_EQ(a.pwrite(int(d.ret), make_tagged("A", 0, 512), 0).err, EBADF);
}

TEST_F(PosixProcessTest, ACallThatDoesNotReturnIsHung) {
  ASSERT_EQ(mkfifo((dir_ + "/fifo").c_str(), 0600), 0);
  PosixProcess a(dir_, 300ms);
  OpenFlags ro;
  ro.read_only = true;
  ro.create = false;
  SysResult r = a.open("fifo", ro);  // blocks: no writer
  EXPECT_TRUE(r.hung);
  EXPECT_TRUE(a.hung());
  EXPECT_TRUE(a.fsync(3).hung) << "a hung worker takes no more calls";
  EXPECT_TRUE(a.kill_worker(2000ms));
  EXPECT_FALSE(a.alive());
}

TEST(Command, ExitCodesOutputAndDeadline) {
  std::vector<std::string> argv = {"sh", "-c", "echo hello; exit 3"};
  CommandResult r = run_program(argv, 5000ms);
  EXPECT_EQ(r.exit_code, 3);
  EXPECT_EQ(r.output, "hello\n");
  CommandResult slow = run_program({"sleep", "10"}, 200ms);
  EXPECT_TRUE(slow.timed_out);
  EXPECT_FALSE(slow.ok());
  CommandResult missing = run_program({"no-such-program-xyz"}, 1000ms);
  EXPECT_EQ(missing.exit_code, 127);
  EXPECT_TRUE(find_program("sh").size() > 0);
}

TEST(Command, ArgumentsAreNeverShellCodeAndRedirectionsWork) {
  char tmpl[] = "/tmp/syncprobe-cmd-XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  // Run in `dir`, a shell would create PWNED there.
  const std::string dir = tmpl, quoted = dir + "/a'; touch PWNED; echo '";
  CommandOptions o;
  o.stdout_file = quoted;
  o.cwd = dir;
  CommandResult r = run_program({"echo", quoted}, o);
  EXPECT_TRUE(r.ok()) << r.output;
  EXPECT_FALSE(std::filesystem::exists(dir + "/PWNED"));
  std::ifstream in(quoted);
  std::string line;
  std::getline(in, line);
  EXPECT_EQ(line, quoted) << "stdout went to the file, byte for byte";
  CommandOptions here;
  here.cwd = dir;
  here.stdin_file = quoted;
  CommandResult pwd = run_program({"sh", "-c", "pwd; cat"}, here);
  EXPECT_EQ(pwd.output, dir + "\n" + quoted + "\n");
  // No output file through a symbolic link.
  std::filesystem::create_symlink("/dev/null", dir + "/link");
  CommandOptions via_link;
  via_link.stdout_file = dir + "/link";
  EXPECT_FALSE(run_program({"true"}, via_link).ok());
  std::filesystem::remove_all(dir);
}

TEST_F(PosixProcessTest, ADeadWorkerIsAnErrorThatSaysHowItDied) {
  PosixProcess a(dir_, 5000ms);
  ASSERT_TRUE(a.sync().ok());
  ASSERT_EQ(::kill(a.pid(), SIGKILL), 0);
  try {
    (void)a.fsync(0);
    FAIL() << "a call to a dead worker must throw";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("killed by SIGKILL"), std::string::npos) << e.what();
  }
}

TEST_F(PosixProcessTest, AnIdleWorkerDoesNotWorkInsideItsRoot) {
  // So that it never keeps a filesystem mounted at the root busy.
  std::filesystem::create_directory(dir_ + "/root");
  PosixProcess a(dir_ + "/root", 5000ms);
  ASSERT_TRUE(a.open("f", {}).ok());
  EXPECT_TRUE(std::filesystem::exists(dir_ + "/root/f"));
  EXPECT_EQ(std::filesystem::read_symlink("/proc/" + std::to_string(a.pid()) + "/cwd").string(), dir_);
  // A root written with a trailing slash is the same root.
  PosixProcess b(dir_ + "/root/", 5000ms);
  ASSERT_TRUE(b.open("g", {}).ok());
  EXPECT_TRUE(std::filesystem::exists(dir_ + "/root/g"));
  EXPECT_FALSE(std::filesystem::exists(dir_ + "/g"));
  EXPECT_FALSE(std::filesystem::exists("/g"));
}

TEST_F(PosixProcessTest, FiemapIsReadToTheLastExtent) {
  // 600 separate extents: more than one FIEMAP batch (256), all of them found.
  const std::string path = dir_ + "/fragmented";
  const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  ASSERT_GE(fd, 0);
  std::vector<char> block(4096, 'x');
  for (int i = 0; i < 600; ++i) ASSERT_EQ(::pwrite(fd, block.data(), block.size(), off_t(i) * 8192), 4096);
  ASSERT_EQ(::fsync(fd), 0);  // allocated: delayed allocation would hide them
  ::close(fd);
  NullLedger none;
  FilesystemSpec spec;
  spec.fs = "none";
  Filesystem fs(spec, "", dir_, 1000ms, none);
  std::vector<ByteRange> ranges;
  std::string why;
  if (!fs.data_ranges("fragmented", ranges, why)) GTEST_SKIP() << "no FIEMAP here: " << why;
  uint64_t bytes = 0;
  for (const auto& r : ranges) bytes += r.length;
  EXPECT_EQ(bytes, 600u * 4096) << ranges.size() << " extents";
  EXPECT_GE(ranges.size(), 300u) << "the writes were merged: the test did not test the batching";
}

// mount(8) failing is syncprobe's machinery failing: a harness failure with
// its origin and mount's message, never an errno a case could read as the
// kernel's answer to a call.
TEST_F(PosixProcessTest, AMountThatFailsIsAHarnessFailureNotAnErrno) {
  if (geteuid() != 0) GTEST_SKIP() << "mount(8) needs root";
  NullLedger none;
  FilesystemSpec spec;
  spec.fs = "ext4";
  Filesystem fs(spec, dir_ + "/no-such-device", dir_, 10000ms, none);
  const SysResult r = fs.mount();
  EXPECT_FALSE(r.ok());
  ASSERT_NE(r.harness, nullptr);
  EXPECT_STREQ(r.harness, "mount(8)");
  EXPECT_EQ(r.err, 0);
  EXPECT_NE(fs.mount_error().find("no-such-device"), std::string::npos) << fs.mount_error();
}

TEST(LoopDevice, DetachesItselfWhenItsLastUserLetsGo) {
  if (geteuid() != 0 || access("/dev/loop-control", R_OK | W_OK) != 0) GTEST_SKIP() << "needs root and loop devices";
  char tmpl[] = "/tmp/syncprobe-loop-XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  const std::string image = std::string(tmpl) + "/img";
  std::filesystem::resize_file((std::ofstream(image), image), 1 << 20);
  std::string sys;
  {
    LoopDevice loop(image);
    ASSERT_EQ(loop.path().rfind("/dev/loop", 0), 0u);
    sys = "/sys/block/" + loop.path().substr(5) + "/loop/";
    std::ifstream backing(sys + "backing_file"), autoclear(sys + "autoclear");
    std::string b, a;
    std::getline(backing, b);
    std::getline(autoclear, a);
    EXPECT_EQ(b, image);
    EXPECT_EQ(a, "1");
  }
  // The kernel detaches it when the last descriptor closes (asynchronously on some kernels).
  bool gone = false;
  for (int i = 0; i < 200 && !gone; ++i) {
    std::ifstream backing(sys + "backing_file");
    std::string b;
    gone = !std::getline(backing, b) || b != image;
    if (!gone) std::this_thread::sleep_for(10ms);
  }
  EXPECT_TRUE(gone) << "no loop device leaks";
  std::filesystem::remove_all(tmpl);
}

}  // namespace
}  // namespace syncprobe
