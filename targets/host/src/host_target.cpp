// host:<fs>[:<options>]: this machine's kernel on a scratch filesystem.
//
// Per case: a copy of a freshly made filesystem image, served by the FUSE
// faulty block device (injectors/blockdev/), attached to a loop device with direct I/O,
// mounted under the run's scratch directory. Steps run as real syscalls in
// forked workers (posix_process.h). Faults are sent to the daemon at run
// time; a file's data is located with FIEMAP. Everything created lives under
// <scratch>/<run-id>/ and is removed when the case ends; what a killed run
// left behind is found by that path and removed by the next run.
#include "syncprobe/host_target.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstddef>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <ostream>
#include <sstream>
#include <thread>

#include "syncprobe/catalog.h"
#include "syncprobe/command.h"
#include "syncprobe/app_driver.h"
#include "syncprobe/dm_capabilities.h"
#include "syncprobe/dm_storage.h"
#include "syncprobe/errno_names.h"
#include "syncprobe/interpreter.h"
#include "syncprobe/linux_fs.h"
#include "syncprobe/paths.h"
#include "syncprobe/posix_process.h"
#include "fs_regions.h"

namespace syncprobe {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

constexpr uint64_t kImageBytes = 512ull << 20;  // xfs needs at least 300 MiB

// A filesystem of data/filesystems.toml.
using HostFs = FilesystemSpec;

std::string target_name(const HostFs& h) { return "host:" + h.name; }

std::vector<std::string> mkfs_command(const HostFs& h, const std::string& image) {
  return h.mkfs_argv(image);
}

std::string read_text(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// The FUSE daemon: $SYNCPROBE_BLOCKDEV, libexec/syncprobe/ beside the runner, or in PATH.
std::string blockdev_program() {
  if (auto p = helper_program("syncprobe-blockdev"); !p.empty()) return p;
  return find_program("syncprobe-blockdev");
}

bool kernel_has_fs(const std::string& fs) {
  auto has = [&] {
    std::istringstream in(read_text("/proc/filesystems"));
    std::string line;
    while (std::getline(in, line))
      if (line.size() >= fs.size() && line.substr(line.size() - fs.size()) == fs &&
          (line.size() == fs.size() || std::isspace((unsigned char)(line[line.size() - fs.size() - 1]))))
        return true;
    return false;
  };
  if (has()) return true;
  CommandResult r = run_program({"modprobe", fs}, 20s);
  (void)r;  // the check below says whether it worked
  return has();
}

// Which injector the host targets use: the FUSE block device (default), or
// device-mapper where the kernel has it and SYNCPROBE_HOST_INJECTOR=dm.
bool use_dm() {
  const char* e = std::getenv("SYNCPROBE_HOST_INJECTOR");
  return e && std::string(e) == "dm";
}

bool host_has_dm() {
  return access("/dev/mapper/control", R_OK | W_OK) == 0 && !find_program("dmsetup").empty();
}

bool pid_alive(pid_t pid) { return pid > 0 && (kill(pid, 0) == 0 || errno == EPERM); }

// ---- the FUSE daemon and its control channel -----------------------------------

class Blockdev {
 public:
  Blockdev(const std::string& dir, std::chrono::milliseconds step_timeout)
      : dir_(dir), step_timeout_(step_timeout) {}
  ~Blockdev() { stop(); }

  std::string device_file() const { return dir_ + "/fuse/dev"; }
  std::string log_path() const { return dir_ + "/blockdev.log"; }

  // Starts the daemon over `image` and waits for "ready".
  void start(const std::string& image) {
    const std::string exe = blockdev_program();
    if (exe.empty())
      throw std::runtime_error("syncprobe-blockdev not found (build it, or set SYNCPROBE_BLOCKDEV)");
    fs::create_directories(dir_ + "/fuse");
    // An abstract socket: scratch paths can exceed sun_path's 108 bytes.
    static int serial = 0;
    const std::string sock = "@syncprobe-blockdev-" + std::to_string(getpid()) + "-" +
                             std::to_string(++serial);
    int out[2];
    if (pipe2(out, O_CLOEXEC) < 0) throw std::runtime_error("pipe failed");
    const std::vector<std::string> argv = {
        exe, "--image", image, "--size", std::to_string(kImageBytes), "--mountpoint",
        dir_ + "/fuse", "--control", sock, "--step-timeout-ms",
        std::to_string(step_timeout_.count() * 3)};
    pid_ = fork();
    if (pid_ == 0) {
      int log = ::open(log_path().c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
      int devnull = ::open("/dev/null", O_RDONLY);
      dup2(devnull, 0);
      dup2(out[1], 1);
      dup2(log, 2);
      setpgid(0, 0);  // a Ctrl-C to the runner must not kill the device under a mount
      signal(SIGINT, SIG_DFL);
      std::vector<char*> args;
      for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
      args.push_back(nullptr);
      execv(exe.c_str(), args.data());
      _exit(127);
    }
    ::close(out[1]);
    std::string got;
    const auto deadline = std::chrono::steady_clock::now() + 20s;
    while (got.find("ready") == std::string::npos) {
      pollfd p{out[0], POLLIN, 0};
      if (std::chrono::steady_clock::now() > deadline || poll(&p, 1, 200) < 0) break;
      char buf[256];
      if (p.revents & (POLLIN | POLLHUP)) {
        ssize_t n = read(out[0], buf, sizeof buf);
        if (n <= 0) break;
        got.append(buf, size_t(n));
      }
    }
    ::close(out[0]);
    if (got.find("ready") == std::string::npos)
      throw std::runtime_error("syncprobe-blockdev did not start: " + read_text(log_path()));
    sock_ = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::memcpy(addr.sun_path, sock.data(), sock.size());
    addr.sun_path[0] = '\0';
    if (connect(sock_, reinterpret_cast<sockaddr*>(&addr),
                socklen_t(offsetof(sockaddr_un, sun_path) + sock.size())) < 0)
      throw std::runtime_error("cannot connect to " + sock + ": " + std::strerror(errno));
  }

  // Sends one command and returns the daemon's reply.
  nlohmann::json command(const nlohmann::json& req) {
    if (sock_ < 0) throw std::runtime_error("block device daemon is not running");
    const std::string line = req.dump() + "\n";
    if (::send(sock_, line.data(), line.size(), MSG_NOSIGNAL) != ssize_t(line.size()))
      throw std::runtime_error("block device daemon went away");
    std::string reply;
    char c;
    const auto deadline = std::chrono::steady_clock::now() + 30s;
    while (true) {
      pollfd p{sock_, POLLIN, 0};
      if (std::chrono::steady_clock::now() > deadline)
        throw std::runtime_error("block device daemon did not answer " + req.dump());
      if (poll(&p, 1, 200) <= 0) continue;
      ssize_t n = ::read(sock_, &c, 1);
      if (n <= 0) throw std::runtime_error("block device daemon closed its control channel");
      if (c == '\n') break;
      reply += c;
    }
    return nlohmann::json::parse(reply);
  }

  // Stops the daemon (SIGTERM, then SIGKILL) and makes sure its FUSE mount is gone.
  void stop() {
    if (sock_ >= 0) ::close(sock_);
    sock_ = -1;
    if (pid_ > 0) {
      kill(pid_, SIGTERM);
      int status;
      bool reaped = false;
      for (int i = 0; i < 500 && !reaped; ++i) {  // up to 10 s: unmounting can be slow under load
        if (waitpid(pid_, &status, WNOHANG) == pid_) reaped = true;
        else std::this_thread::sleep_for(20ms);
      }
      if (!reaped) {
        kill(pid_, SIGKILL);
        waitpid(pid_, &status, 0);
      }
      pid_ = -1;
    }
    // A daemon that had to be killed leaves a dead FUSE mount, on which even
    // stat fails (ENOTCONN): look in the mount table, not at the directory.
    for (const auto& m : mounts_under(dir_ + "/fuse")) {
      CommandResult r = run_program({"umount", "-l", m}, 10s);
      (void)r;  // gone already: nothing to do
    }
  }

 private:
  std::string dir_;
  std::chrono::milliseconds step_timeout_;
  pid_t pid_ = -1;
  int sock_ = -1;
};

// ---- one case's storage ------------------------------------------------------------

class HostStorage final : public Storage {
 public:
  HostStorage(const HostFs& hfs, const std::string& template_image, const std::string& dir,
              std::chrono::milliseconds timeout)
      : hfs_(hfs), dir_(dir), timeout_(timeout), dev_(dir, timeout) {
    fs::create_directories(dir_ + "/mnt");
    image_ = dir_ + "/disk.img";
    check(run_program({"cp", "--sparse=always", template_image, image_}, 120s),
          {"cp", template_image, image_});
    attach();
  }

  ~HostStorage() override {
    try {
      teardown();
    } catch (const std::exception&) {
      // Destructors must not throw; what is left is found by the next run.
    }
  }

  // Unmounts, detaches and stops everything; true when all of it went away.
  bool teardown() {
    bool ok = true;
    kill_workers();
    if (mounted_) ok &= umount();
    ok &= detach();
    return ok;
  }

  std::string layer() const override { return "fuse-blockdev"; }

  nlohmann::json environment() const override {
    return {{"kind", "host"},
            {"kernel", kernel_release()},
            {"fs", hfs_.fs},
            {"mount_options", hfs_.options},
            {"injector", "fuse-blockdev"},
            {"measured", true},
            {"device", "loop (direct I/O " + std::string(direct_io_ ? "on" : "off") +
                           ") over a FUSE file, volatile write cache"},
            {"image_bytes", kImageBytes}};
  }

  Process& process(const std::string& name) override {
    auto& p = procs_[name];
    if (!p) p = std::make_unique<PosixProcess>(dir_ + "/mnt", timeout_);
    return *p;
  }

  SysResult app(const AppCall& call, nlohmann::json& evidence) override {
    if (!mounted_) {
      evidence["error"] = "the filesystem is not mounted";
      return SysResult::harness_failure("mount(8)");
    }
    return run_app(call, dir_ + "/mnt", timeout_, evidence);
  }

  SysResult fault(const FaultRequest& req, nlohmann::json& detail) override {
    nlohmann::json cmd = {{"cmd", "fault"},
                          {"op", std::string(to_string(req.rule.op))},
                          {"mode", std::string(to_string(req.rule.mode))},
                          {"errno", errno_name(req.rule.err ? req.rule.err : EIO)},
                          {"invert", false},
                          {"ranges", nlohmann::json::array()}};
    if (req.rule.count) cmd["count"] = *req.rule.count;
    if (req.where == FaultRequest::Where::free || req.where == FaultRequest::Where::journal) {
      const bool free = req.where == FaultRequest::Where::free;
      std::vector<ByteRange> ranges;
      std::string why;
      detail["ranges_from"] = free ? "FS_IOC_GETFSMAP" : hfs_.fs == "xfs" ? "xfs_db" : "debugfs";
      if (!(free ? host::free_ranges(dir_ + "/mnt", kImageBytes, ranges, why)
                 : host::journal_ranges(hfs_.fs, loop_, ranges, why))) {
        detail["error"] = why;
        return SysResult::harness_failure(free ? "free-space lookup" : "journal lookup");
      }
      for (const auto& e : ranges) cmd["ranges"].push_back({e.offset, e.length});
    } else if (req.where != FaultRequest::Where::device) {
      std::vector<ByteRange> extents;
      std::string why;
      const bool found = file_extents(req.file, extents, why);
      detail["extents_from"] = "FIEMAP";
      if (!found && req.where == FaultRequest::Where::data) {
        detail["error"] = why;
        return SysResult::failure(ENOENT);
      }
      if (hfs_.fs == "btrfs" && req.where == FaultRequest::Where::data) {
        // FIEMAP gives btrfs logical addresses, and copy-on-write puts new
        // data elsewhere: a data fault there would miss. Fail the device.
        detail["widened"] = "btrfs: copy-on-write data has no fixed device range; whole device";
      } else {
        for (const auto& e : extents) cmd["ranges"].push_back({e.offset, e.length});
        cmd["invert"] = req.where == FaultRequest::Where::metadata;
      }
    }
    detail["ranges"] = cmd["ranges"];
    detail["invert"] = cmd["invert"];
    detail["io"] = cmd["op"];
    detail["mode"] = cmd["mode"];
    if (req.rule.mode == FaultMode::error) detail["errno"] = cmd["errno"];
    if (req.rule.count) detail["count"] = *req.rule.count;
    return reply_result(dev_.command(cmd), detail);
  }

  SysResult shutdown(ShutdownFlush flush, nlohmann::json& detail) override {
    if (hfs_.shutdown.empty()) return SysResult::failure(ENOTSUP);
    detail["ioctl"] = hfs_.shutdown;
    const std::string root = dir_ + "/mnt";
    return with_timeout([root, flush]() -> int {
      SysResult r = host::shutdown_ioctl(root, flush);
      errno = r.err;
      return r.ok() ? 0 : -1;
    });
  }

  SysResult heal() override {
    nlohmann::json d;
    return reply_result(dev_.command({{"cmd", "heal"}}), d);
  }

  SysResult thin_limit(uint64_t headroom, FaultMode when_full, nlohmann::json& detail) override {
    return reply_result(dev_.command({{"cmd", "thin"},
                                      {"headroom", headroom},
                                      {"when_full", when_full == FaultMode::hang ? "queue" : "error"}}),
                        detail);
  }

  SysResult grow(uint64_t bytes, nlohmann::json& detail) override {
    return reply_result(dev_.command({{"cmd", "grow"}, {"by", bytes}}), detail);
  }

  SysResult memory_limit(uint64_t) override { return SysResult::failure(ENOTSUP); }
  SysResult cache_limit(uint64_t) override { return SysResult::failure(ENOTSUP); }

  SysResult drop_caches() override { return drop_caches_all(); }

  SysResult writeback() override {
    // Background writeback without telling anyone: syncfs through a
    // descriptor of our own waits for the pages but leaves each file's
    // errseq unseen (sync_filesystem keeps errors).
    int fd = ::open((dir_ + "/mnt").c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return SysResult::failure(errno);
    SysResult r = with_timeout([fd] { return ::syncfs(fd); });
    if (!r.hung) ::close(fd);
    return r.hung ? r : SysResult::success();
  }

  SysResult remount() override {
    // The workers' working directory is the mount: they go (a case closes
    // every descriptor before a remount; the parser checks).
    kill_workers();
    if (!umount()) return SysResult::failure(EBUSY);
    return mount();
  }

  SysResult power_cut() override {
    // The machine loses power: from now on the device takes nothing, what
    // its volatile cache held is gone, and every process dies.
    nlohmann::json d;
    dev_.command({{"cmd", "fault"}, {"op", "write"}, {"mode", "error"}, {"errno", "EIO"},
                  {"ranges", nlohmann::json::array()}, {"invert", false}});
    dev_.command({{"cmd", "fault"}, {"op", "flush"}, {"mode", "error"}, {"errno", "EIO"},
                  {"ranges", nlohmann::json::array()}, {"invert", false}});
    dev_.command({{"cmd", "power_cut"}});
    kill_workers();
    // The kernel's dirty pages die with the old mount: unmount against a dead
    // device, then come back on a fresh daemon over the same image.
    if (mounted_ && !umount()) return SysResult::failure(EBUSY);
    if (!detach()) return SysResult::failure(EBUSY);
    attach();
    return SysResult::success();
  }

  ReadBack read_back(const std::string& path, uint64_t offset, uint64_t length) override {
    ReadBack rb;
    kill_workers();
    rb.result = remount();
    if (!rb.result.ok()) return rb;
    int fd = ::open((dir_ + "/mnt/" + path).c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      rb.result = SysResult::failure(errno);
      return rb;
    }
    rb.data.resize(length);
    ssize_t n = ::pread(fd, rb.data.data(), length, off_t(offset));
    rb.result = SysResult::from_syscall(n, errno);
    ::close(fd);
    rb.data.resize(n > 0 ? size_t(n) : 0);
    return rb;
  }

  uint64_t injected_hits() override {
    try {
      auto r = dev_.command({{"cmd", "stats"}});
      return hits_base_ + r.value("hits", uint64_t{0});
    } catch (const std::exception&) {
      return hits_base_;
    }
  }

 private:
  static void check(const CommandResult& r, const std::vector<std::string>& argv) {
    if (!r.ok()) throw std::runtime_error(r.describe(argv));
  }

  SysResult reply_result(const nlohmann::json& reply, nlohmann::json& detail) {
    if (reply.value("ok", false)) {
      for (auto& [k, v] : reply.items())
        if (k != "ok") detail[k] = v;
      return SysResult::success();
    }
    detail["error"] = reply.value("error", std::string("daemon refused"));
    return SysResult::failure(EINVAL);
  }

  // Runs a blocking syscall in a thread; past the step timeout it is hung.
  template <typename F>
  SysResult with_timeout(F f) {
    auto state = std::make_shared<std::pair<std::atomic<bool>, SysResult>>();
    std::thread t([state, f] {
      int r = f();
      state->second = SysResult::from_syscall(r, errno);
      state->first = true;
    });
    const auto deadline = std::chrono::steady_clock::now() + timeout_;
    while (!state->first && std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(5ms);
    if (state->first) {
      t.join();
      return state->second;
    }
    t.detach();  // stuck in the kernel; it ends when the device is healed
    return SysResult::hang();
  }

  bool file_extents(const std::string& path, std::vector<ByteRange>& out, std::string& why) {
    return fiemap_extents(dir_ + "/mnt/" + path, out, why);
  }

  void kill_workers() {
    for (auto& [name, p] : procs_) {
      if (!p->kill_worker(std::chrono::milliseconds(500))) {
        // Stuck in the kernel on a hung device: release the device, then reap.
        try {
          dev_.command({{"cmd", "heal"}});
        } catch (const std::exception&) {
        }
        p->kill_worker(std::chrono::milliseconds(timeout_.count() * 3));
      }
    }
    procs_.clear();
  }

  void attach() {
    dev_.start(image_);
    dev_.command({{"cmd", "cache"}, {"volatile", true}});
    CommandResult r = run_program({"losetup", "--find", "--show", "--direct-io=on", dev_.device_file()}, 30s);
    direct_io_ = r.ok();
    if (!r.ok()) {
      r = run_program({"losetup", "--find", "--show", dev_.device_file()}, 30s);
      check(r, {"losetup", "--find", "--show", dev_.device_file()});
    }
    loop_ = r.output.substr(0, r.output.find('\n'));
    SysResult m = mount();
    if (!m.ok()) throw std::runtime_error("mount of " + loop_ + " failed: " + errno_name(m.err));
  }

  bool detach() {
    bool ok = true;
    if (!loop_.empty()) {
      CommandResult r = run_program({"losetup", "-d", loop_}, 30s);
      ok = r.ok();
      loop_.clear();
    }
    hits_base_ += 0;
    try {
      auto s = dev_.command({{"cmd", "stats"}});
      hits_base_ += s.value("hits", uint64_t{0});
    } catch (const std::exception&) {
    }
    dev_.stop();
    return ok;
  }

  SysResult mount() {
    std::vector<std::string> argv = {"mount", "-t", hfs_.fs};
    if (!hfs_.options.empty()) {
      argv.push_back("-o");
      argv.push_back(hfs_.options);
    }
    argv.push_back(loop_);
    argv.push_back(dir_ + "/mnt");
    CommandResult r = run_program(argv, timeout_ + 30s);
    if (r.timed_out) return SysResult::hang();
    if (!r.ok()) {
      mount_error_ = r.describe(argv);
      return SysResult::failure(EIO);
    }
    mounted_ = true;
    return SysResult::success();
  }

  bool umount() {
    CommandResult r = run_program({"umount", dir_ + "/mnt"}, timeout_ + 30s);
    if (!r.ok()) {
      if (r.output.find("busy") != std::string::npos && !r.timed_out) return false;
      CommandResult lazy = run_program({"umount", "-l", dir_ + "/mnt"}, 30s);
      (void)lazy;
    }
    mounted_ = false;
    return true;
  }

  HostFs hfs_;
  std::string dir_, image_, loop_, mount_error_;
  std::chrono::milliseconds timeout_;
  Blockdev dev_;
  std::map<std::string, std::unique_ptr<PosixProcess>> procs_;
  bool mounted_ = false;
  bool direct_io_ = false;
  uint64_t hits_base_ = 0;  // hits counted by daemons already stopped (power cut)
};

// ---- the target ---------------------------------------------------------------------

class HostTarget final : public Target {
 public:
  explicit HostTarget(HostFs h) : h_(std::move(h)) {}
  ~HostTarget() override {
    std::error_code ec;
    if (!template_.empty()) fs::remove(template_, ec);
  }

  std::string name() const override { return target_name(h_); }
  bool measured() const override { return true; }

  Availability availability() const override {
    if (geteuid() != 0) return {false, "needs root (loop devices, mounts): run as root"};
    if (access("/dev/fuse", R_OK | W_OK) != 0)
      return {false, "/dev/fuse is missing: install fuse3 and load the fuse module"};
    if (blockdev_program().empty())
      return {false, "syncprobe-blockdev not built (scripts/build) or not in PATH"};
    if (find_program("losetup").empty()) return {false, "losetup missing: apt-get install util-linux"};
    if (use_dm() && !host_has_dm())
      return {false, "SYNCPROBE_HOST_INJECTOR=dm but this kernel has no device-mapper "
                     "(/dev/mapper/control) or dmsetup is missing"};
    const std::string mkfs = mkfs_command(h_, "x").front();
    if (find_program(mkfs).empty())
      return {false, mkfs + " missing: install the " + h_.fs + " tools (scripts/setup)"};
    if (!kernel_has_fs(h_.fs)) return {false, "kernel " + kernel_release() + " has no " + h_.fs};
    return {};
  }

  std::set<std::string> capabilities() const override {
    if (use_dm()) return dm_capabilities();
    std::set<std::string> caps = installed_app_capabilities();
    caps.insert({
        "fault",       "fault:write",    "fault:read",      "fault:flush", "fault:drop",
        "fault:hang",  "fault:data",     "fault:metadata",  "fault:device", "thin-pool",
        "drop-caches", "writeback",      "remount",         "power-cut",   "read-back",
        "second-process", "sync_file_range", "mmap",       "mmap-read",   "direct-io",
        "metadata",    "syncfs"});
    if (!h_.shutdown.empty()) caps.insert("shutdown");
    if (h_.fs == "ext4" || h_.fs == "xfs") caps.insert({"fault:free", "fault:journal"});
    return caps;
  }

  std::string lack_reason(const std::string& capability) const override {
    if (use_dm()) return "";
    if (capability == "shutdown" && h_.shutdown.empty())
      return h_.fs + " has no shutdown ioctl here (btrfs on 6.18 answers XFS_IOC_GOINGDOWN with "
                     "ENOTTY: probes/shutdown.sh)";
    if (capability == "fault:free" && h_.fs == "btrfs")
      return "btrfs has no FS_IOC_GETFSMAP (ENOTTY): its free space cannot be located";
    if (capability == "fault:journal" && h_.fs == "btrfs")
      return "btrfs has no journal: its log tree is copy-on-write metadata";
    return "";
  }

  nlohmann::json environment() const override {
    return {{"kind", "host"},     {"kernel", kernel_release()}, {"fs", h_.fs},
            {"mount_options", h_.options},
            {"injector", use_dm() ? "dm-flakey, dm-error, dm-thin" : "fuse-blockdev"},
            {"measured", true}};
  }

  CaseResult run(const Case& c, const RunContext& ctx) override {
    CaseResult r;
    r.case_id = c.id;
    r.case_file = c.file;
    r.case_hash = c.hash;
    r.target = name();
    r.environment = environment();
    r.started_at = now_iso8601();
    const auto t0 = std::chrono::steady_clock::now();
    KernelLog klog;
    std::string slug = name();
    for (char& ch : slug)
      if (ch == ':' || ch == '=' || ch == ',') ch = '-';
    const std::string dir = ctx.scratch_dir + "/" + slug + "/" + c.id;
    try {
      mark_owner(ctx.scratch_dir);
      const std::string tmpl = use_dm() ? std::string() : ensure_template(ctx.scratch_dir);
      if (use_dm()) {
        run_on_dm(c, ctx, dir, r);
      } else {
        auto storage = std::make_unique<HostStorage>(h_, tmpl, dir, ctx.step_timeout);
        r.environment = storage->environment();
        interpret(c, *storage, r);
        if (!storage->teardown()) {
          r.status = CaseStatus::error;
          r.reason = "cleanup failed: the mount or loop device stayed busy";
        }
      }
    } catch (const std::exception& e) {
      r.status = CaseStatus::error;
      r.reason = e.what();
    }
    r.environment["kernel_log"] = klog.drain();
    const std::string log = read_text(dir + "/blockdev.log");
    r.environment["injector_log"] = log.size() > 8000 ? log.substr(log.size() - 8000) : log;
    if (!remove_tree_if_unmounted(dir)) {
      r.status = CaseStatus::error;
      r.reason += (r.reason.empty() ? "" : "; ") + std::string("a mount under ") + dir +
                  " would not go away; the next run removes it";
    }
    r.duration_ns = uint64_t(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                 std::chrono::steady_clock::now() - t0)
                                 .count());
    return r;
  }

 private:
  // Device-mapper instead of the FUSE device: a loop device over a sparse
  // image of the run's own carries the same dm stack the VM guests use; its
  // dm names carry the run id so that a later run can find them.
  void run_on_dm(const Case& c, const RunContext& ctx, const std::string& dir, CaseResult& r) {
    fs::create_directories(dir + "/mnt");
    const std::string image = dir + "/disk.img";
    { std::ofstream(image, std::ios::trunc); }
    fs::resize_file(image, 4ull << 30);
    CommandResult lo = run_program({"losetup", "--find", "--show", image}, 30s);
    if (!lo.ok()) throw std::runtime_error(lo.describe({"losetup", "--find", "--show", image}));
    const std::string loop = lo.output.substr(0, lo.output.find('\n'));
    static int serial = 0;
    DmLayout layout{loop, dir + "/mnt", "syncprobe-" + ctx.run_id + "-" + std::to_string(++serial) + "-",
                    "host"};
    try {
      auto storage = make_dm_storage(DmFs{h_.fs, h_.options}, layout,
                                     c.capabilities().count("thin-pool") > 0,
                                     int(ctx.step_timeout.count()));
      r.environment = storage->environment();
      interpret(c, *storage, r);
    } catch (...) {
      CommandResult d = run_program({"losetup", "-d", loop}, 30s);
      (void)d;
      throw;
    }
    CommandResult d = run_program({"losetup", "-d", loop}, 30s);
    if (!d.ok()) {
      r.status = CaseStatus::error;
      r.reason = "cleanup failed: " + d.describe({"losetup", "-d", loop});
    }
  }

  // The run's scratch directory carries the runner's pid, so a later run can
  // tell a live run's storage from a killed one's.
  static void mark_owner(const std::string& scratch) {
    fs::create_directories(scratch);
    const std::string pidfile = scratch + "/owner.pid";
    if (!fs::exists(pidfile)) std::ofstream(pidfile) << getpid() << "\n";
  }

  std::string ensure_template(const std::string& scratch) {
    if (!template_.empty() && fs::exists(template_)) return template_;
    std::string slug = h_.name;  // one template per entry: mkfs may differ between variants
    for (char& ch : slug)
      if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
    template_ = scratch + "/template-" + slug + ".img";
    {
      std::ofstream f(template_, std::ios::binary | std::ios::trunc);
    }
    fs::resize_file(template_, kImageBytes);
    const auto argv = mkfs_command(h_, template_);
    CommandResult r = run_program(argv, 300s);
    if (!r.ok()) throw std::runtime_error(r.describe(argv));
    return template_;
  }

  HostFs h_;
  std::string template_;
};

}  // namespace

std::unique_ptr<Target> make_host_target(const std::string& spec, std::string& error) {
  for (const auto& h : filesystems())
    if ("host:" + spec == target_name(h)) return std::make_unique<HostTarget>(h);
  error = "unknown host target 'host:" + spec + "': choose one of";
  for (const auto& h : filesystems()) error += " " + target_name(h);
  return nullptr;
}

std::vector<std::string> host_target_names() {
  std::vector<std::string> names;
  for (const auto& h : filesystems()) names.push_back(target_name(h));
  return names;
}

void host_cleanup_stale(const std::string& scratch_root, std::ostream& log) {
  std::error_code ec;
  if (!fs::is_directory(scratch_root, ec)) return;
  for (const auto& entry : fs::directory_iterator(scratch_root, ec)) {
    if (!entry.is_directory(ec)) continue;
    const std::string dir = entry.path().string();
    const std::string owner = read_text(dir + "/owner.pid");
    const pid_t pid = owner.empty() ? 0 : pid_t(std::atol(owner.c_str()));
    if (pid == getpid() || pid_alive(pid)) continue;  // a live run's storage
    bool found = false;
    // 1. filesystems mounted from our loop devices
    for (const auto& m : mounts_under(dir)) {
      if (m.size() >= 5 && m.substr(m.size() - 5) == "/fuse") continue;
      CommandResult r = run_program({"umount", m}, 30s);
      if (!r.ok()) r = run_program({"umount", "-l", m}, 30s);
      log << "syncprobe: removed a stale mount " << m << "\n";
      found = true;
    }
    // 2. device-mapper devices of that run (host targets with SYNCPROBE_HOST_INJECTOR=dm)
    if (host_has_dm()) {
      const std::string prefix = "syncprobe-" + entry.path().filename().string() + "-";
      for (int pass = 0; pass < 3; ++pass) {  // stacked devices go top first
        CommandResult ls = run_program({"dmsetup", "ls"}, 30s);
        std::istringstream in(ls.output);
        for (std::string line; std::getline(in, line);) {
          const std::string dmname = line.substr(0, line.find_first_of(" \t"));
          if (dmname.rfind(prefix, 0) != 0) continue;
          CommandResult rm = run_program({"dmsetup", "remove", "--force", dmname}, 30s);
          if (rm.ok()) log << "syncprobe: removed a stale dm device " << dmname << "\n";
          found = true;
        }
      }
    }
    // 3. loop devices over files of that run
    for (const auto& dev : fs::directory_iterator("/sys/block", ec)) {
      const std::string name = dev.path().filename().string();
      if (name.rfind("loop", 0) != 0) continue;
      std::string backing = read_text(dev.path().string() + "/loop/backing_file");
      while (!backing.empty() && backing.back() == '\n') backing.pop_back();
      if (backing.rfind(dir + "/", 0) != 0) continue;
      CommandResult r = run_program({"losetup", "-d", "/dev/" + name}, 30s);
      log << "syncprobe: detached a stale loop device /dev/" << name
          << (r.ok() ? "" : " (failed: " + r.output + ")") << "\n";
      found = true;
    }
    // 4. block device daemons serving files of that run
    for (const auto& p : fs::directory_iterator("/proc", ec)) {
      const std::string spid = p.path().filename().string();
      if (spid.find_first_not_of("0123456789") != std::string::npos) continue;
      std::string cmdline = read_text(p.path().string() + "/cmdline");
      std::replace(cmdline.begin(), cmdline.end(), '\0', ' ');
      if (cmdline.find("syncprobe-blockdev") == std::string::npos ||
          cmdline.find(dir + "/") == std::string::npos)
        continue;
      kill(pid_t(std::atol(spid.c_str())), SIGKILL);
      log << "syncprobe: killed a stale block device daemon (pid " << spid << ")\n";
      found = true;
    }
    // 5. their FUSE mounts, then the files
    for (const auto& m : mounts_under(dir)) {
      CommandResult r = run_program({"umount", "-l", m}, 30s);
      (void)r;
    }
    if (!remove_tree_if_unmounted(dir)) {
      log << "syncprobe: " << dir << " still has a mount that would not go; left in place\n";
      continue;
    }
    if (found) log << "syncprobe: cleaned up after killed run " << entry.path().filename().string() << "\n";
  }
}

}  // namespace syncprobe

namespace syncprobe {

TargetKind host_target_kind() {
  return {"host", "host:<fs>[:<options>]", make_host_target, host_target_names, host_cleanup_stale};
}

}  // namespace syncprobe
