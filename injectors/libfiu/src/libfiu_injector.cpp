#include "syncprobe/libfiu_injector.h"

#include <dirent.h>
#include <sys/stat.h>

#include <algorithm>
#include <fstream>
#include <sstream>

#include "syncprobe/command.h"
#include "syncprobe/errno_names.h"
#include "syncprobe/forwarding_process.h"

namespace syncprobe {
namespace {

// The process's parent and state letter (R, S, Z, ...), from /proc; 0 when gone.
pid_t parent_of(pid_t pid, char* state_out = nullptr) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  std::getline(in, line);
  const auto close = line.rfind(')');  // the command name may hold spaces
  if (close == std::string::npos) return 0;
  std::istringstream rest(line.substr(close + 2));
  char state = 0;
  pid_t ppid = 0;
  rest >> state >> ppid;
  if (state_out) *state_out = state;
  return ppid;
}

bool exited(pid_t pid) {
  char state = 0;
  return parent_of(pid, &state) == 0 || state == 'Z' || state == 'X';
}

// `root` and every process descended from it, as /proc shows them now.
std::vector<pid_t> tree(pid_t root) {
  std::vector<std::pair<pid_t, pid_t>> all;  // pid, parent
  if (DIR* d = opendir("/proc")) {
    while (dirent* e = readdir(d)) {
      const pid_t pid = pid_t(std::atoi(e->d_name));
      if (pid > 0) all.emplace_back(pid, parent_of(pid));
    }
    closedir(d);
  }
  std::vector<pid_t> out;
  for (const auto& [pid, _] : all)
    if (pid == root) out.push_back(root);
  for (size_t i = 0; i < out.size(); ++i)
    for (const auto& [pid, parent] : all)
      if (parent == out[i]) out.push_back(pid);
  return out;
}

}  // namespace

// A case process's calls, counted when the enabled point of their kind failed them.
class LibfiuInjector::Counted final : public ForwardingProcess {
 public:
  Counted(Process& p, LibfiuInjector& fiu) : ForwardingProcess(p), fiu_(fiu) {}
  SysResult pwrite(int fd, std::span<const std::byte> d, uint64_t o) override {
    return count("posix/io/rw/pwrite", target().pwrite(fd, d, o));
  }
  SysResult fsync(int fd) override { return count("posix/io/sync/fsync", target().fsync(fd)); }
  SysResult fdatasync(int fd) override { return count("posix/io/sync/fdatasync", target().fdatasync(fd)); }

 private:
  SysResult count(const std::string& point, SysResult r) {
    auto it = fiu_.points_.find(point);
    if (it == fiu_.points_.end() || r.ok() || r.hung || r.harness || r.err != it->second.err) return r;
    const Point& p = it->second;
    if (p.once && spent_[point] == p.generation) return r;  // libfiu disabled it after its one failure
    if (p.once) spent_[point] = p.generation;
    ++fiu_.injected_;
    return r;
  }
  LibfiuInjector& fiu_;
  std::map<std::string, uint64_t> spent_;  // point -> generation of the one-shot it spent
};

Process& LibfiuInjector::wrap(Process& p) {
  wrappers_.push_back(std::make_unique<Counted>(p, *this));
  return *wrappers_.back();
}

LibfiuInjector::LibfiuInjector(std::string control_dir, std::chrono::milliseconds timeout)
    : base_(std::move(control_dir) + "/fiu"), timeout_(timeout) {}

std::string LibfiuInjector::enable_command(const std::string& point, const Point& p) {
  const std::string info = ",failinfo=" + std::to_string(p.err) + (p.once ? ",onetime" : "");
  if (p.percent >= 100) return "enable name=" + point + info;
  char prob[16];
  std::snprintf(prob, sizeof prob, "%.2f", p.percent / 100.0);
  return "enable_random name=" + point + ",probability=" + prob + info;
}

std::vector<std::string> LibfiuInjector::command(const std::vector<std::string>& argv) const {
  std::vector<std::string> out = {"fiu-run", "-x", "-f", base_};
  for (const auto& [point, p] : points_) out.insert(out.end(), {"-c", enable_command(point, p)});
  out.insert(out.end(), argv.begin(), argv.end());
  return out;
}

void LibfiuInjector::detach(int root) { std::erase(roots_, root); }

std::vector<pid_t> LibfiuInjector::control(const std::string& cmd, nlohmann::json& detail) {
  std::vector<pid_t> reached;
  auto failed = nlohmann::json::array();
  for (pid_t root : roots_)
    for (pid_t pid : tree(root)) {
      struct stat st{};
      // Only programs under fiu-run listen; a child that skipped it has no
      // fifo. A process started under fiu-run that has none was never
      // reached: the preload did not start in it.
      if (::stat((base_ + "-" + std::to_string(pid) + ".in").c_str(), &st) != 0 || !S_ISFIFO(st.st_mode)) {
        if (pid == root && !exited(root))
          failed.push_back({{"pid", pid}, {"error", "started under fiu-run but has no control fifo " + base_ +
                                                        "-" + std::to_string(pid) + ".in"}});
        continue;
      }
      const std::vector<std::string> argv = {"fiu-ctrl", "-f", base_, "-c", cmd, std::to_string(pid)};
      CommandResult r = run_program(argv, timeout_);
      if (r.ok()) reached.push_back(pid);
      else failed.push_back({{"pid", pid}, {"error", r.describe(argv)}});
    }
  if (!failed.empty()) detail["fiu_ctrl_failed"] = failed;
  return reached;
}

SysResult LibfiuInjector::fail_call(const std::string& point, int err, int percent, bool once,
                                    nlohmann::json& detail) {
  const Point p{err == 0 ? EIO : err, std::clamp(percent, 1, 100), once, ++generation_};
  points_[point] = p;
  const std::string cmd = enable_command(point, p);
  detail["layer"] = layer();
  detail["point"] = point;
  detail["errno_requested"] = errno_name(p.err);
  detail["errno"] = errno_name(p.err);  // failinfo: the wrapper sets exactly this errno
  detail["percent"] = p.percent;
  if (once) detail["once"] = true;
  detail["fiu_command"] = cmd;
  detail["reached"] = control(cmd, detail);
  detail["note"] = "no device fails: libfiu fails the call before the kernel sees it";
  return detail.contains("fiu_ctrl_failed") ? SysResult::harness_failure("fiu-ctrl") : SysResult::success(0);
}

SysResult LibfiuInjector::fault(const FaultRule& rule, nlohmann::json& detail) {
  std::vector<std::string> points;
  if (rule.op == FaultOp::flush) points = {"posix/io/sync/fsync", "posix/io/sync/fdatasync"};
  else if (rule.op == FaultOp::write) points = {"posix/io/rw/pwrite", "posix/io/rw/write"};
  else points = {"posix/io/rw/pread", "posix/io/rw/read"};
  SysResult r = SysResult::success(0);
  for (const auto& point : points) {
    nlohmann::json d;
    SysResult one = fail_call(point, rule.err, 100, rule.count == 1u, d);
    detail["points"].push_back(d);
    if (!one.ok()) r = one;
  }
  return r;
}

SysResult LibfiuInjector::heal() {
  nlohmann::json detail;
  for (const auto& [point, _] : points_) control("disable name=" + point, detail);
  points_.clear();
  return detail.contains("fiu_ctrl_failed") ? SysResult::harness_failure("fiu-ctrl") : SysResult::success(0);
}

nlohmann::json LibfiuInjector::environment() const {
  return {{"process_injector", "libfiu (fiu-run -x, fiu-ctrl)"}};
}

}  // namespace syncprobe
