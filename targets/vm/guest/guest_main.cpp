// syncprobe-guest: the runner inside a VM guest. Static, started by the
// initramfs's /init. Reads the cases and targets from the input disk
// (guest_protocol.h), runs every case on every target on a fresh filesystem,
// and writes one JSON line per result to the output disk, flushed as it
// goes so that a guest killed by the host's watchdog still leaves what it
// finished.
//
// Faults go through the FUSE block device under a loop device, built by the
// host targets' own code (injectors/blockdev/blockdev_storage.h); only
// thin-pool cases use device-mapper (dm-thin over /dev/vda), which no FUSE
// daemon imitates faithfully. The guest is thrown away after the boot, so
// nothing is recorded in a ledger.
#include <fcntl.h>
#include <signal.h>
#include <sys/mount.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "../src/guest_protocol.h"
#include "syncprobe/clock.h"
#include "syncprobe/blockdev_storage.h"
#include "syncprobe/dm_injector.h"
#include "syncprobe/interpreter.h"
#include "syncprobe/linux_fs.h"

using namespace syncprobe;

namespace {

const char kWork[] = "/tmp/sp";  // tmpfs: the FUSE images live in guest RAM

std::string read_input(const char* dev) {
  int fd = ::open(dev, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return "";
  std::string text;
  char buf[65536];
  for (;;) {
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n <= 0) break;
    const char* nul = static_cast<const char*>(std::memchr(buf, 0, size_t(n)));
    text.append(buf, nul ? size_t(nul - buf) : size_t(n));
    if (nul) break;
  }
  ::close(fd);
  return text;
}

class Output {
 public:
  explicit Output(const char* dev) : fd_(::open(dev, O_WRONLY | O_CLOEXEC)) {}
  ~Output() {
    if (fd_ >= 0) ::close(fd_);
  }
  void write(const std::string& s) {
    if (fd_ < 0) {
      std::fputs(s.c_str(), stdout);
      return;
    }
    if (::pwrite(fd_, s.data(), s.size(), off_t(off_)) == ssize_t(s.size())) off_ += s.size();
    if (::fsync(fd_) != 0) std::perror("syncprobe-guest: fsync of the output disk");
  }

 private:
  int fd_;
  uint64_t off_ = 0;
};

// One target's cases. The filesystem template is made on first use.
void run_target(const vm::GuestTarget& t, const std::vector<Case>& cases, int timeout_ms, Output& out) {
  const std::string tmpl = std::string(kWork) + "/template.img";
  bool have_template = false;
  const auto caps = vm::vm_capabilities(t.fs);
  const std::chrono::milliseconds timeout(timeout_ms);
  NullLedger ledger;
  for (const Case& c : cases) {
    CaseResult r;
    r.case_id = c.id;
    r.case_file = c.file;
    r.case_hash = c.hash;
    r.target = t.name;
    r.started_at = utc_now();
    const nlohmann::json env = {{"kind", "vm"}, {"kernel", kernel_release()}, {"fs", t.fs.fs},
                                {"mount_options", t.fs.options}, {"measured", true}};
    r.environment = env;
    std::string missing;
    const auto need = c.capabilities();
    for (const auto& cap : need)
      if (!caps.count(cap)) missing += " " + cap;
    const auto t0 = std::chrono::steady_clock::now();
    const std::string dir = std::string(kWork) + "/case";
    if (!missing.empty()) {
      r.status = CaseStatus::skipped;
      r.reason = "target lacks capability:" + missing;
    } else {
      KernelLog klog;
      try {
        std::unique_ptr<MountedStorage> storage;
        if (need.count("thin-pool")) {
          storage = make_dm_storage(t.fs, DmLayout{}, true, timeout, ledger);
        } else {
          if (!have_template) {
            make_fs_image(t.fs, tmpl, kBlockdevImageBytes);
            have_template = true;
          }
          std::filesystem::remove_all(dir);
          std::filesystem::create_directories(dir);
          storage = make_blockdev_storage({t.fs, tmpl, dir, env, timeout, {}}, ledger);
        }
        r.environment = storage->environment();
        interpret(c, *storage, r);
        if (!storage->teardown() && r.status != CaseStatus::error) {
          r.status = CaseStatus::error;
          r.reason = (r.reason.empty() ? "" : r.reason + "; ") + "cleanup failed: " + storage->teardown_note();
        }
      } catch (const std::exception& e) {
        r.status = CaseStatus::error;
        r.reason = std::string("harness: ") + e.what();
      }
      r.environment["kernel_log"] = klog.drain();
      std::error_code ec;
      std::filesystem::remove_all(dir, ec);
    }
    r.duration_ns = uint64_t(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                 std::chrono::steady_clock::now() - t0).count());
    out.write(vm::result_line(r));
    std::fprintf(stderr, "syncprobe-guest: %s %s %s %.1f s\n", t.name.c_str(), c.id.c_str(),
                 std::string(to_string(r.status)).c_str(), double(r.duration_ns) / 1e9);
  }
  std::error_code ec;
  std::filesystem::remove(tmpl, ec);
}

}  // namespace

int main(int argc, char** argv) {
  signal(SIGPIPE, SIG_IGN);  // a dead worker is an error of its case, not the end of the runner
  setenv("SYNCPROBE_BLOCKDEV", "/bin/syncprobe-blockdev", 0);  // where the initramfs puts it
  const char* in = argc > 1 ? argv[1] : "/dev/vdb";
  Output out(argc > 2 ? argv[2] : "/dev/vdc");
  vm::GuestInput input;
  try {
    input = vm::decode_input(read_input(in));
  } catch (const std::exception& e) {
    out.write(vm::fatal_line(std::string("bad input: ") + e.what()));
    return 2;
  }
  std::filesystem::create_directories(kWork);
  if (::mount("tmpfs", kWork, "tmpfs", 0, "size=90%") != 0) {
    out.write(vm::fatal_line(std::string("mount tmpfs on /tmp/sp: ") + std::strerror(errno)));
    return 1;
  }
  out.write(vm::hello_line(kernel_release()));
  for (const auto& t : input.targets) run_target(t, input.cases, input.step_timeout_ms, out);
  out.write(vm::done_line());
  return 0;
}
