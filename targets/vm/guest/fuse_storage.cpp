#include "fuse_storage.h"

#include <fcntl.h>
#include <linux/loop.h>
#include <poll.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstddef>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "syncprobe/command.h"
#include "syncprobe/errno_names.h"
#include "syncprobe/linux_fs.h"
#include "syncprobe/posix_process.h"

namespace syncprobe::guest {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

constexpr uint64_t kImageBytes = 512ull << 20;  // as the host's: xfs needs 300 MiB
const char kDaemon[] = "/bin/syncprobe-blockdev";

void must(const std::vector<std::string>& argv, std::chrono::milliseconds t = 600s) {
  CommandResult r = run_program(argv, t);
  if (!r.ok()) throw std::runtime_error(r.describe(argv));
}

std::string read_text(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// cp --sparse=always, which busybox lacks: copies only the data extents.
void sparse_copy(const std::string& from, const std::string& to) {
  int in = ::open(from.c_str(), O_RDONLY | O_CLOEXEC);
  int out = ::open(to.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (in < 0 || out < 0) throw std::runtime_error("cannot copy " + from + " to " + to + ": " + std::strerror(errno));
  const off_t size = ::lseek(in, 0, SEEK_END);
  std::vector<char> buf(1 << 20);
  for (off_t pos = ::lseek(in, 0, SEEK_DATA); pos >= 0 && pos < size;) {
    off_t end = ::lseek(in, pos, SEEK_HOLE);
    if (end < 0) end = size;
    while (pos < end) {
      const ssize_t n = ::pread(in, buf.data(), std::min<off_t>(end - pos, off_t(buf.size())), pos);
      if (n <= 0 || ::pwrite(out, buf.data(), size_t(n), pos) != n)
        throw std::runtime_error("copying " + from + " failed: " + std::strerror(errno));
      pos += n;
    }
    pos = ::lseek(in, end, SEEK_DATA);
  }
  const bool ok = ::ftruncate(out, size) == 0;
  ::close(in);
  if (::close(out) != 0 || !ok) throw std::runtime_error("writing " + to + " failed");
}

// The daemon and its control socket.
class Daemon {
 public:
  explicit Daemon(std::string dir) : dir_(std::move(dir)) {}
  ~Daemon() { stop(); }

  std::string device_file() const { return dir_ + "/fuse/dev"; }

  void start(const std::string& image, int step_timeout_ms) {
    fs::create_directories(dir_ + "/fuse");
    static int serial = 0;
    const std::string sock = "@syncprobe-guest-blockdev-" + std::to_string(++serial);
    int out[2];
    if (pipe2(out, O_CLOEXEC) < 0) throw std::runtime_error("pipe failed");
    const std::vector<std::string> argv = {
        kDaemon, "--image", image, "--size", std::to_string(kImageBytes), "--mountpoint",
        dir_ + "/fuse", "--control", sock, "--step-timeout-ms", std::to_string(step_timeout_ms * 3)};
    pid_ = fork();
    if (pid_ == 0) {
      int log = ::open((dir_ + "/blockdev.log").c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
      dup2(out[1], 1);
      dup2(log, 2);
      std::vector<char*> args;
      for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
      args.push_back(nullptr);
      execv(kDaemon, args.data());
      _exit(127);
    }
    ::close(out[1]);
    std::string got;
    const auto deadline = std::chrono::steady_clock::now() + 30s;
    while (got.find("ready") == std::string::npos && std::chrono::steady_clock::now() < deadline) {
      pollfd p{out[0], POLLIN, 0};
      if (poll(&p, 1, 200) <= 0) continue;
      char buf[256];
      const ssize_t n = ::read(out[0], buf, sizeof buf);
      if (n <= 0) break;
      got.append(buf, size_t(n));
    }
    ::close(out[0]);
    if (got.find("ready") == std::string::npos)
      throw std::runtime_error("syncprobe-blockdev did not start: " + read_text(dir_ + "/blockdev.log"));
    sock_ = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::memcpy(addr.sun_path, sock.data(), sock.size());
    addr.sun_path[0] = '\0';
    if (connect(sock_, reinterpret_cast<sockaddr*>(&addr),
                socklen_t(offsetof(sockaddr_un, sun_path) + sock.size())) < 0)
      throw std::runtime_error("cannot connect to the block device daemon: " + std::string(std::strerror(errno)));
  }

  nlohmann::json command(const nlohmann::json& req) {
    if (sock_ < 0) throw std::runtime_error("block device daemon is not running");
    const std::string line = req.dump() + "\n";
    if (::send(sock_, line.data(), line.size(), MSG_NOSIGNAL) != ssize_t(line.size()))
      throw std::runtime_error("block device daemon went away");
    std::string reply;
    const auto deadline = std::chrono::steady_clock::now() + 30s;
    for (char c = 0;;) {
      if (std::chrono::steady_clock::now() > deadline)
        throw std::runtime_error("block device daemon did not answer " + req.dump());
      pollfd p{sock_, POLLIN, 0};
      if (poll(&p, 1, 200) <= 0) continue;
      if (::read(sock_, &c, 1) <= 0) throw std::runtime_error("block device daemon closed its channel");
      if (c == '\n') break;
      reply += c;
    }
    return nlohmann::json::parse(reply);
  }

  uint64_t hits() {
    try {
      return command({{"cmd", "stats"}}).value("hits", uint64_t{0});
    } catch (const std::exception&) {
      return 0;
    }
  }

  void stop() {
    if (sock_ >= 0) ::close(sock_);
    sock_ = -1;
    if (pid_ > 0) {
      kill(pid_, SIGTERM);
      int status;
      bool reaped = false;
      for (int i = 0; i < 500 && !reaped; ++i) {
        reaped = waitpid(pid_, &status, WNOHANG) == pid_;
        if (!reaped) std::this_thread::sleep_for(20ms);
      }
      if (!reaped) {
        kill(pid_, SIGKILL);
        waitpid(pid_, &status, 0);
      }
      pid_ = -1;
    }
    for (const auto& m : mounts_under(dir_ + "/fuse")) {
      CommandResult r = run_program({"umount", "-l", m}, 10s);
      if (!r.ok()) std::fprintf(stderr, "syncprobe-guest: %s\n", r.describe({"umount", "-l", m}).c_str());
    }
  }

 private:
  std::string dir_;
  pid_t pid_ = -1;
  int sock_ = -1;
};

// A loop device over `file` with direct I/O where the kernel allows it.
class Loop {
 public:
  void attach(const std::string& file) {
    int ctl = ::open("/dev/loop-control", O_RDWR | O_CLOEXEC);
    if (ctl < 0) throw std::runtime_error("/dev/loop-control: " + std::string(std::strerror(errno)));
    const int n = ioctl(ctl, LOOP_CTL_GET_FREE);
    ::close(ctl);
    if (n < 0) throw std::runtime_error("LOOP_CTL_GET_FREE: " + std::string(std::strerror(errno)));
    path_ = "/dev/loop" + std::to_string(n);
    for (int i = 0; i < 100 && !fs::exists(path_); ++i) std::this_thread::sleep_for(10ms);
    fd_ = ::open(path_.c_str(), O_RDWR | O_CLOEXEC);
    int backing = ::open(file.c_str(), O_RDWR | O_CLOEXEC);
    if (fd_ < 0 || backing < 0 || ioctl(fd_, LOOP_SET_FD, backing) < 0) {
      const std::string why = std::strerror(errno);
      if (backing >= 0) ::close(backing);
      throw std::runtime_error("attaching " + file + " to " + path_ + ": " + why);
    }
    ::close(backing);
    direct_io_ = ioctl(fd_, LOOP_SET_DIRECT_IO, 1UL) == 0;
  }
  void detach() {
    if (fd_ < 0) return;
    if (ioctl(fd_, LOOP_CLR_FD, 0) < 0)
      std::fprintf(stderr, "syncprobe-guest: LOOP_CLR_FD %s: %s\n", path_.c_str(), std::strerror(errno));
    ::close(fd_);
    fd_ = -1;
  }
  ~Loop() { detach(); }
  const std::string& path() const { return path_; }
  bool direct_io() const { return direct_io_; }

 private:
  std::string path_;
  int fd_ = -1;
  bool direct_io_ = false;
};

class FuseStorage final : public Storage {
 public:
  FuseStorage(const FilesystemSpec& f, const std::string& template_image, const std::string& dir, int timeout_ms)
      : f_(f), dir_(dir), timeout_(timeout_ms), dev_(dir) {
    fs::create_directories(dir_ + "/mnt");
    image_ = dir_ + "/disk.img";
    sparse_copy(template_image, image_);
    attach();
  }

  ~FuseStorage() override {
    kill_workers();
    if (mounted_) umount();
    detach();
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  std::string layer() const override { return "fuse-blockdev"; }

  nlohmann::json environment() const override {
    return {{"kind", "vm"},
            {"kernel", kernel_release()},
            {"fs", f_.fs},
            {"mount_options", f_.options},
            {"injector", "fuse-blockdev"},
            {"measured", true},
            {"device", std::string("loop (direct I/O ") + (loop_.direct_io() ? "on" : "off") +
                           ") over a FUSE file in guest RAM, volatile write cache"},
            {"image_bytes", kImageBytes}};
  }

  Process& process(const std::string& name) override {
    auto& p = procs_[name];
    if (!p) p = std::make_unique<PosixProcess>(dir_ + "/mnt", std::chrono::milliseconds(timeout_));
    return *p;
  }

  SysResult fault(const FaultRequest& req, nlohmann::json& detail) override {
    nlohmann::json cmd = {{"cmd", "fault"},
                          {"op", std::string(to_string(req.rule.op))},
                          {"mode", std::string(to_string(req.rule.mode))},
                          {"errno", errno_name(req.rule.err ? req.rule.err : EIO)},
                          {"invert", false},
                          {"ranges", nlohmann::json::array()}};
    if (req.rule.count) cmd["count"] = *req.rule.count;
    if (req.where != FaultRequest::Where::device) {
      std::vector<ByteRange> extents;
      std::string why;
      const bool found = fiemap_extents(dir_ + "/mnt/" + req.file, extents, why);
      detail["extents_from"] = "FIEMAP";
      if (!found && req.where == FaultRequest::Where::data) {
        detail["error"] = why;
        return SysResult::failure(ENOENT);
      }
      if (f_.copy_on_write && req.where == FaultRequest::Where::data) {
        detail["widened"] = f_.fs + ": copy-on-write data has no fixed device range; whole device";
      } else {
        for (const auto& e : extents) cmd["ranges"].push_back({e.offset, e.length});
        cmd["invert"] = req.where == FaultRequest::Where::metadata;
      }
    }
    for (const char* k : {"ranges", "invert", "mode"}) detail[k] = cmd[k];
    detail["io"] = cmd["op"];
    if (req.rule.mode == FaultMode::error) detail["errno"] = cmd["errno"];
    if (req.rule.count) detail["count"] = *req.rule.count;
    return reply(dev_.command(cmd), detail);
  }

  SysResult heal() override {
    nlohmann::json d;
    return reply(dev_.command({{"cmd", "heal"}}), d);
  }
  SysResult thin_limit(uint64_t headroom, FaultMode when_full, nlohmann::json& detail) override {
    return reply(dev_.command({{"cmd", "thin"}, {"headroom", headroom},
                               {"when_full", when_full == FaultMode::hang ? "queue" : "error"}}),
                 detail);
  }
  SysResult grow(uint64_t bytes, nlohmann::json& detail) override {
    return reply(dev_.command({{"cmd", "grow"}, {"by", bytes}}), detail);
  }
  SysResult memory_limit(uint64_t) override { return SysResult::failure(ENOTSUP); }
  SysResult cache_limit(uint64_t) override { return SysResult::failure(ENOTSUP); }
  SysResult drop_caches() override { return drop_caches_all(); }

  SysResult writeback() override {
    // syncfs through a descriptor of our own: waits for the pages but leaves
    // each file's errseq unseen.
    int fd = ::open((dir_ + "/mnt").c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return SysResult::failure(errno);
    const int r = ::syncfs(fd);
    const int e = errno;
    ::close(fd);
    return r == 0 ? SysResult::success() : SysResult::failure(e);
  }

  SysResult remount() override {
    if (!umount()) return SysResult::failure(EBUSY);
    return mount();
  }

  SysResult power_cut() override {
    // From now on the device takes nothing, its volatile cache is lost, and
    // every process dies; then a fresh daemon over the same image.
    for (const char* op : {"write", "flush"})
      dev_.command({{"cmd", "fault"}, {"op", op}, {"mode", "error"}, {"errno", "EIO"},
                    {"ranges", nlohmann::json::array()}, {"invert", false}});
    dev_.command({{"cmd", "power_cut"}});
    kill_workers();
    if (mounted_ && !umount()) return SysResult::failure(EBUSY);
    detach();
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
    const ssize_t n = ::pread(fd, rb.data.data(), length, off_t(offset));
    rb.result = SysResult::from_syscall(n, errno);
    ::close(fd);
    rb.data.resize(n > 0 ? size_t(n) : 0);
    return rb;
  }

  uint64_t injected_hits() override { return hits_base_ + dev_.hits(); }

 private:
  SysResult reply(const nlohmann::json& r, nlohmann::json& detail) {
    if (r.value("ok", false)) {
      for (auto& [k, v] : r.items())
        if (k != "ok") detail[k] = v;
      return SysResult::success();
    }
    detail["error"] = r.value("error", std::string("daemon refused"));
    return SysResult::harness_failure("syncprobe-blockdev");
  }

  void kill_workers() {
    for (auto& [name, p] : procs_)
      if (!p->kill_worker(500ms)) {
        try {
          dev_.command({{"cmd", "heal"}});  // release a hung device, then reap
        } catch (const std::exception&) {
        }
        p->kill_worker(std::chrono::milliseconds(timeout_ * 3));
      }
    procs_.clear();
  }

  void attach() {
    dev_.start(image_, timeout_);
    dev_.command({{"cmd", "cache"}, {"volatile", true}});
    loop_.attach(dev_.device_file());
    SysResult m = mount();
    if (!m.ok()) throw std::runtime_error("mount of " + loop_.path() + " failed: " + mount_error_);
  }

  void detach() {
    loop_.detach();
    hits_base_ += dev_.hits();
    dev_.stop();
  }

  SysResult mount() {
    std::vector<std::string> argv = {"mount", "-t", f_.fs};
    if (!f_.options.empty()) argv.insert(argv.end(), {"-o", f_.options});
    argv.insert(argv.end(), {loop_.path(), dir_ + "/mnt"});
    CommandResult r = run_program(argv, std::chrono::milliseconds(timeout_) + 30s);
    if (r.timed_out) return SysResult::hang();
    if (!r.ok()) {
      mount_error_ = r.describe(argv);
      return SysResult::harness_failure("mount(8)");
    }
    mounted_ = true;
    return SysResult::success();
  }

  bool umount() {
    CommandResult r = run_program({"umount", dir_ + "/mnt"}, std::chrono::milliseconds(timeout_) + 30s);
    if (!r.ok()) {
      if (r.output.find("busy") != std::string::npos && !r.timed_out) return false;
      CommandResult lazy = run_program({"umount", "-l", dir_ + "/mnt"}, 30s);
      if (!lazy.ok()) std::fprintf(stderr, "syncprobe-guest: %s\n", lazy.describe({"umount", "-l"}).c_str());
    }
    mounted_ = false;
    return true;
  }

  FilesystemSpec f_;
  std::string dir_, image_, mount_error_;
  int timeout_;
  Daemon dev_;
  Loop loop_;
  std::map<std::string, std::unique_ptr<PosixProcess>> procs_;
  bool mounted_ = false;
  uint64_t hits_base_ = 0;
};

}  // namespace

void make_template(const FilesystemSpec& f, const std::string& path) {
  fs::create_directories(fs::path(path).parent_path());
  std::ofstream(path, std::ios::trunc);
  fs::resize_file(path, kImageBytes);
  must(f.mkfs_argv(path));
}

std::unique_ptr<Storage> make_fuse_storage(const FilesystemSpec& f, const std::string& template_image,
                                           const std::string& dir, int step_timeout_ms) {
  return std::make_unique<FuseStorage>(f, template_image, dir, step_timeout_ms);
}

}  // namespace syncprobe::guest
