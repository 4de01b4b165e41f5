// PosixProcess: real syscalls in a forked worker with its own descriptors.
#include <gtest/gtest.h>

#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>

#include "syncprobe/command.h"
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

}  // namespace
}  // namespace syncprobe
