#include "qemu.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "syncprobe/command.h"
#include "syncprobe/interrupt.h"
#include "syncprobe/ledger.h"
#include "syncprobe/linux_fs.h"

namespace syncprobe::vm {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

// How long a KVM boot may take to reach the guest runner before syncprobe
// gives up on KVM (TCG needs up to ~40 s on a busy 2-core machine; KVM ~2 s).
constexpr auto kKvmFirstLine = std::chrono::seconds(30);

// Complete lines of the output disk, up to the first NUL (the rest of the
// disk is zeros); read in chunks so polling stays cheap.
std::vector<std::string> read_lines(const std::string& path) {
  std::vector<std::string> lines;
  std::ifstream in(path, std::ios::binary);
  std::string text;
  char buf[65536];
  while (in.read(buf, sizeof buf) || in.gcount() > 0) {
    const size_t n = size_t(in.gcount());
    const char* nul = static_cast<const char*>(std::memchr(buf, 0, n));
    text.append(buf, nul ? size_t(nul - buf) : n);
    if (nul) break;
  }
  size_t start = 0;
  for (size_t nl; (nl = text.find('\n', start)) != std::string::npos; start = nl + 1)
    lines.push_back(text.substr(start, nl - start));
  return lines;
}

std::string read_text(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace

// Set once a KVM boot produced nothing: later boots of this process go
// straight to TCG.
static std::atomic<bool> kvm_failed{false};

std::string preferred_accelerator() {
  if (const char* a = std::getenv("SYNCPROBE_ACCEL")) return std::string(a) == "kvm" ? "kvm" : "tcg";
  return access("/dev/kvm", R_OK | W_OK) == 0 && !kvm_failed ? "kvm" : "tcg";
}

std::string drive_arg(const std::string& path, const std::string& options) {
  std::string s = "file=";
  for (char c : path) s += c == ',' ? std::string(",,") : std::string(1, c);
  return s + "," + options;
}

BootResult boot_guest(const BootSpec& spec) {
  BootResult res;
  fs::create_directories(spec.dir);
  const std::string scratch = spec.dir + "/scratch.img", input = spec.dir + "/input.img",
                    output = spec.dir + "/output.img";
  res.console_path = spec.dir + "/console.log";
  std::ofstream(scratch, std::ios::trunc);
  fs::resize_file(scratch, 4ull << 30);
  std::ofstream(input, std::ios::binary | std::ios::trunc) << spec.input;
  bool kvm = preferred_accelerator() == "kvm";
  bool stalled = false;  // a KVM boot that did not reach the runner in time
  const auto t0 = Clock::now();
  auto boot = [&] {
    std::ofstream(output, std::ios::trunc);
    fs::resize_file(output, 64ull << 20);
    std::vector<std::string> argv = {
        find_program("qemu-system-x86_64"), "-nodefaults", "-no-reboot", "-display", "none",
        "-m", std::to_string(spec.memory_mb), "-smp", std::to_string(spec.cpus),
        "-accel", kvm ? "kvm" : "tcg", "-serial", "file:" + res.console_path,
        "-kernel", spec.vmlinuz, "-initrd", spec.initrd,
        "-append", "console=ttyS0 panic=-1 rdinit=/init loglevel=4 " + spec.append,
        "-drive", drive_arg(scratch, "if=virtio,format=raw,cache=unsafe"),
        "-drive", drive_arg(input, "if=virtio,format=raw,readonly=on"),
        "-drive", drive_arg(output, "if=virtio,format=raw,cache=writethrough"),
        "-nic", "none"};
    if (kvm) argv.insert(argv.end(), {"-cpu", "host"});
    int go[2];
    if (pipe2(go, O_CLOEXEC) != 0) {
      res.ended = std::string("pipe: ") + std::strerror(errno);
      return;
    }
    pid_t pid = fork();
    if (pid == 0) {
      setpgid(0, 0);  // Ctrl-C reaches the runner, which ends QEMU itself
      char c;
      if (::read(go[0], &c, 1) != 1) _exit(0);  // the runner died before recording QEMU
      int devnull = ::open("/dev/null", O_RDWR);
      dup2(devnull, 0);
      dup2(devnull, 1);
      int log = ::open((spec.dir + "/qemu.log").c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      dup2(log, 2);
      std::vector<char*> args;
      for (auto& a : argv) args.push_back(a.data());
      args.push_back(nullptr);
      execv(args[0], args.data());
      _exit(127);
    }
    ::close(go[0]);
    // Recorded in the run's marker before it runs: a killed runner's QEMU
    // is ended by the next run, and no other process ever is.
    const Resource qemu{Resource::Kind::process, "qemu-system-x86_64", pid, process_start_time(pid)};
    try {
      if (spec.ledger) spec.ledger->acquire(qemu);
    } catch (const std::exception& e) {
      ::close(go[1]);
      waitpid(pid, nullptr, 0);
      res.ended = e.what();
      return;
    }
    const bool went = ::write(go[1], "g", 1) == 1;
    ::close(go[1]);
    if (!went) res.ended = "qemu could not be started";
    size_t seen = 0;
    const auto started = Clock::now();
    auto last_progress = started;
    stalled = false;
    for (;;) {
      int status = 0;
      if (waitpid(pid, &status, WNOHANG) == pid) {
        pid = -1;
        break;
      }
      if (interrupted()) {
        res.ended = kInterrupted;
        break;
      }
      const size_t n = read_lines(output).size();
      if (n > seen) {
        if (seen == 0) res.boot_s = std::chrono::duration<double>(Clock::now() - t0).count();
        seen = n;
        last_progress = Clock::now();
        if (spec.verbose) std::fprintf(stderr, "vm %s: %zu result lines\n", spec.label.c_str(), seen);
      }
      // A usable KVM reaches the guest runner in seconds; a /dev/kvm that
      // QEMU cannot really use may also spin without ever getting there.
      if (kvm && seen == 0 && Clock::now() - started > kKvmFirstLine) {
        stalled = true;
        break;
      }
      if (Clock::now() - last_progress > spec.quiet_limit) {
        res.ended = "watchdog: no result for " + std::to_string(spec.quiet_limit.count()) + " s";
        break;
      }
      std::this_thread::sleep_for(250ms);
    }
    if (pid > 0) {
      kill(-pid, SIGKILL);
      kill(pid, SIGKILL);
      waitpid(pid, nullptr, 0);
    }
    if (spec.ledger) spec.ledger->release(qemu);
  };
  boot();
  // A /dev/kvm that QEMU cannot use (nested virtualisation without the MSRs
  // QEMU wants) produces nothing: boot again under TCG.
  if (kvm && read_lines(output).empty() && (res.ended.empty() || stalled)) {
    res.ended.clear();
    kvm = false;
    kvm_failed = true;
    boot();
  }
  res.accelerator = kvm ? "kvm" : "tcg";
  res.wall_s = std::chrono::duration<double>(Clock::now() - t0).count();
  res.lines = read_lines(output);
  std::string qemu_log = read_text(spec.dir + "/qemu.log");
  while (!qemu_log.empty() && std::isspace(static_cast<unsigned char>(qemu_log.back()))) qemu_log.pop_back();
  if (!qemu_log.empty() && res.ended.empty() && res.lines.empty())
    res.ended = "qemu: " + qemu_log.substr(0, 500);
  std::error_code ec;
  fs::remove(scratch, ec);  // 4 GiB sparse: not worth keeping
  return res;
}

}  // namespace syncprobe::vm
