// Redis (Debian's redis-server 7.0): a private server whose --dir is the
// program's file (a directory) on the scratch filesystem, with its
// append-only file on (appendonly yes; variant appendfsync=always or
// =everysec), RDB snapshots and AOF rewrites off, no configuration file, no
// TCP at all (--port 0) and a Unix socket in a private directory outside the
// faulty filesystem. The server keeps running between steps (an AppServer of
// the session) and is killed at the end of the case, on failure and on
// signals; `restart` kills it as a crash would and starts it again, which
// replays the AOF. Keys and values are Redis strings (SET/GET).
#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "syncprobe/app_driver.h"
#include "syncprobe/command.h"
#include "syncprobe/interrupt.h"
#include "syncprobe/linux_fs.h"

namespace syncprobe {
namespace {

using namespace std::chrono_literals;
using json = nlohmann::json;

std::string trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ')) s.pop_back();
  return s;
}

class RedisServer final : public AppServer {
 public:
  RedisServer(std::string dir, std::string sockdir, std::string fsync, AppSession& session)
      : dir_(std::move(dir)), sockdir_(std::move(sockdir)), fsync_(std::move(fsync)),
        session_(session) {}
  ~RedisServer() override {
    stop(true);
    std::error_code ec;
    std::filesystem::remove_all(sockdir_, ec);
  }

  std::string socket() const { return sockdir_ + "/redis.sock"; }

  bool running() {
    if (pid_ <= 0) return false;
    int status = 0;
    if (waitpid(pid_, &status, WNOHANG) != pid_) return true;
    exit_status_ = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    session_.ledger().release({Resource::Kind::process, "redis server", pid_, start_});
    pid_ = 0;
    return false;
  }

  // Starts redis-server (no configuration file: every setting on its command
  // line) and waits until it answers PING; failure when it exits first (it
  // refuses to load its AOF), hang when it never answers.
  SysResult start(json& evidence) {
    const std::vector<std::string> argv = {
        "redis-server", "--port", "0", "--bind", "127.0.0.1", "--protected-mode", "yes",
        "--unixsocket", socket(), "--unixsocketperm", "700", "--daemonize", "no",
        "--logfile", log(), "--dir", dir_, "--appendonly", "yes", "--appendfsync", fsync_,
        "--save", "", "--auto-aof-rewrite-percentage", "0"};
    evidence["command"] = argv;
    const std::string program = find_program(argv.front());
    if (program.empty()) {
      evidence["error"] = "redis-server is not installed (scripts/setup)";
      return SysResult::harness_failure("app driver");
    }
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    const pid_t parent = getpid();
    const pid_t pid = fork();
    if (pid == 0) {
      setpgid(0, 0);
      // Dies with the runner (a killed run must not leave it holding the
      // scratch filesystem); kept across the exec, redis-server is not setuid.
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (getppid() != parent) _exit(127);
      const int null = ::open("/dev/null", O_RDWR);
      dup2(null, 0);
      dup2(null, 1);
      dup2(null, 2);
      execv(program.c_str(), args.data());
      _exit(127);
    }
    if (pid < 0) {
      evidence["error"] = std::string("fork: ") + std::strerror(errno);
      return SysResult::harness_failure("app driver");
    }
    setpgid(pid, pid);  // as the child does: a kill(-pid) right away reaches it
    pid_ = pid;
    start_ = process_start_time(pid);
    // Recorded as soon as it is started: a killed run's successor kills it.
    session_.ledger().acquire({Resource::Kind::process, "redis server", pid_, start_});
    const auto deadline = std::chrono::steady_clock::now() + session_.timeout();
    while (std::chrono::steady_clock::now() < deadline) {
      if (interrupted()) return SysResult::harness_failure(kInterrupted);
      if (!running()) {
        evidence["exit_status"] = exit_status_;
        if (exit_status_ == 127 || exit_status_ == 126 || exit_status_ < 0) {  // never ran, or killed
          evidence["error"] = "redis-server could not be started (exit " + std::to_string(exit_status_) + ")";
          return SysResult::harness_failure("app driver");
        }
        // The program refused: its log says why (an AOF it cannot load).
        evidence["error"] = "redis-server exited while starting";
        evidence["refusal"] = refusal_lines();
        return SysResult::failure(0);
      }
      CommandResult r = run_program({"redis-cli", "-s", socket(), "PING"}, 5s);
      if (r.ok() && trim(r.output) == "PONG") {
        evidence["exit_status"] = 0;
        return SysResult::success(0);
      }
      std::this_thread::sleep_for(50ms);
    }
    evidence["timed_out"] = true;
    return SysResult::hang();
  }

  // SIGKILL, as a crash stops it (the AOF gets no last fsync).
  std::string stop(bool) override {
    if (!running()) return "";
    ::kill(-pid_, SIGKILL);
    for (int i = 0; i < 100 && running(); ++i) std::this_thread::sleep_for(50ms);
    if (!running()) return "";
    adopt_stuck_child(pid_);  // stuck in the kernel: reaped once the device lets go
    const std::string note = "redis-server " + std::to_string(pid_) + " stuck in the kernel";
    pid_ = 0;
    return note;
  }

  // Waits at most `limit` for the server to exit (it may be on its way out).
  void wait_exit(std::chrono::milliseconds limit) {
    const auto until = std::chrono::steady_clock::now() + limit;
    while (running() && std::chrono::steady_clock::now() < until) std::this_thread::sleep_for(10ms);
  }

  // The server log written since the last call, and whether it still runs.
  void log_into(json& evidence) {
    std::ifstream in(log());
    in.seekg(std::streamoff(log_seen_));
    std::stringstream ss;
    ss << in.rdbuf();
    std::string text = ss.str();
    log_seen_ += text.size();
    if (text.size() > 3000) text = text.substr(0, 1000) + "\n[...]\n" + text.substr(text.size() - 2000);
    evidence["server_log"] = text;
    evidence["server_running"] = running();
    if (!running() && exit_status_ != 0) evidence["server_exit_status"] = exit_status_;
  }

 private:
  std::string log() const { return sockdir_ + "/server.log"; }
  // The log's warning and error lines ("#"), which say why a start failed.
  json refusal_lines() const {
    std::ifstream in(log());
    json lines = json::array();
    for (std::string line; std::getline(in, line);)
      if (line.find(" # ") != std::string::npos && lines.size() < 20) lines.push_back(line);
    return lines;
  }

  std::string dir_, sockdir_, fsync_;
  AppSession& session_;
  pid_t pid_ = 0;
  uint64_t start_ = 0;
  int exit_status_ = 0;
  size_t log_seen_ = 0;
};

class RedisDriver final : public AppDriver {
 public:
  std::string_view name() const override { return "redis"; }
  std::vector<std::string> programs() const override { return {"redis-server", "redis-cli"}; }

  SysResult act(const AppCall& call, AppSession& session, const std::string& path,
                json& evidence) const override {
    const std::string variant = call.variant.empty() ? "appendfsync=always" : call.variant;
    if (variant != "appendfsync=always" && variant != "appendfsync=everysec") {
      evidence["error"] = "redis variant '" + variant + "': use appendfsync=always or =everysec";
      return SysResult::harness_failure("app driver");
    }
    if (session.process_injector()) {
      evidence["error"] = "Redis under libfiu is not built yet (docs/apps.md)";
      return SysResult::harness_failure("app driver");
    }
    const std::string fsync = variant.substr(variant.find('=') + 1);
    evidence["appendfsync"] = fsync;
    auto* server = dynamic_cast<RedisServer*>(session.server(path));
    if (call.action == "init") {
      if (server) {
        evidence["error"] = "a server already runs on " + path;
        return SysResult::harness_failure("app driver");
      }
      return init(session, path, fsync, evidence);
    }
    if (!server) {
      evidence["error"] = "no server on " + path + ": the case must start with action = \"init\"";
      return SysResult::harness_failure("app driver");
    }
    SysResult r = SysResult::success(0);
    if (call.action == "restart") {
      // What the page cache holds of the AOF now: whether a "kept" scenario
      // really kept it (another program's drop_caches may not).
      json ev;
      std::string out;
      SysResult f = run_recorded({"fincore", "--bytes", "--noheadings", "--output", "RES", aof(path)},
                                 session.timeout(), ev, &out);
      evidence["resident_before_restart"]["aof"] =
          f.ok() ? json(std::strtoull(out.c_str(), nullptr, 10)) : json(ev.value("output", ""));
      const std::string note = server->stop(true);
      server->log_into(evidence["before_restart"]);
      if (!note.empty()) {
        // A second server would replay the AOF while the first may still append.
        evidence["error"] = note + ": not started again";
        return SysResult::harness_failure("app driver");
      }
      r = server->start(evidence);
    } else if (call.action == "put") {
      r = cli(session, *server, {"SET", call.key, call.value}, evidence);
      // A SET without a reply may mean the server is exiting (always: a
      // failed fsync); its exit is the evidence, so wait for it briefly
      // rather than record it as running in its last milliseconds.
      if (!r.ok()) server->wait_exit(2s);
      // everysec replies first and fsyncs in the background right after: the
      // step ends once that fsync is done, so a device failure it meets is
      // counted in this step (between two steps nobody would count it).
      if (r.ok() && fsync == "everysec")
        if (SysResult w = settle(session, *server, evidence["background_fsync"]); !w.ok()) r = w;
    } else if (call.action == "get") {
      std::string out;
      r = cli(session, *server, {"GET", call.key}, evidence, &out);
      if (r.ok()) {
        const std::string v = trim(out);  // --raw prints an empty line for nil; values are never empty
        evidence["found"] = !v.empty();
        evidence["read"] = v.empty() ? json() : json(v);
      }
    } else if (call.action == "scan") {
      // Separator 0x1f, as the other drivers: a mangled key or value is still seen.
      std::string out;
      r = cli(session, *server,
              {"EVAL",
               "local r = {} for _, k in ipairs(redis.call('KEYS', '*')) do "
               "r[#r + 1] = k .. '\\31' .. (redis.call('GET', k) or '') end return r",
               "0"},
              evidence, &out);
      if (r.ok()) {
        json pairs = json::object();
        std::istringstream in(out);
        for (std::string line; std::getline(in, line);) {
          const auto sep = line.find('\x1f');
          if (sep == std::string::npos) pairs[line] = nullptr;
          else pairs[line.substr(0, sep)] = trim(line.substr(sep + 1));
        }
        evidence["pairs"] = pairs;
      }
    } else if (call.action == "checkpoint") {
      r = wait_fsync(session, *server, fsync, evidence);
    } else {  // check: redis-check-aof on the AOF (read only; without --fix)
      r = run_recorded({"redis-check-aof", aof_manifest(path)}, session.timeout(), evidence);
      evidence["consistent"] = r.ok();
    }
    server->log_into(evidence);
    return r;
  }

 private:
  // Redis 7's multi-part AOF: the file SET commands are appended to.
  static std::string aof(const std::string& path) {
    return path + "/appendonlydir/appendonly.aof.1.incr.aof";
  }
  static std::string aof_manifest(const std::string& path) {
    return path + "/appendonlydir/appendonly.aof.manifest";
  }

  // -e: an error reply (MISCONF, ERR) is a failed exit, not output to parse.
  static SysResult cli(AppSession& session, RedisServer& server, const std::vector<std::string>& args,
                       json& evidence, std::string* out = nullptr) {
    std::vector<std::string> argv = {"redis-cli", "-s", server.socket(), "-e", "--raw"};
    argv.insert(argv.end(), args.begin(), args.end());
    return run_recorded(argv, session.timeout(), evidence, out);
  }

  // Waits until no background fsync of the AOF is queued or running (INFO
  // persistence: aof_pending_bio_fsync:0). The client's reply came before.
  // A harness failure when SIGINT/SIGTERM ended the wait, else success.
  static SysResult settle(AppSession& session, RedisServer& server, json& evidence) {
    const auto until = std::chrono::steady_clock::now() + session.timeout() / 2;
    std::string out;
    do {
      if (!cli(session, server, {"INFO", "persistence"}, evidence, &out).ok()) return SysResult::success(0);
      if (out.find("aof_pending_bio_fsync:0") != std::string::npos) return SysResult::success(0);
      std::this_thread::sleep_for(20ms);
      if (interrupted()) return SysResult::harness_failure(kInterrupted);
    } while (std::chrono::steady_clock::now() < until);
    evidence["timed_out"] = true;
    return SysResult::success(0);
  }

  // Redis has no command that syncs the AOF. With appendfsync=everysec a
  // background thread fsyncs it about once a second; `checkpoint` waits three
  // of those periods (or until Redis reports the AOF failed) and reports
  // INFO persistence: failure when aof_last_write_status is err.
  static SysResult wait_fsync(AppSession& session, RedisServer& server, const std::string& fsync,
                              json& evidence) {
    const auto until = std::chrono::steady_clock::now() + (fsync == "everysec" ? 3s : 0s);
    std::string out;
    SysResult r = SysResult::success(0);
    do {
      r = cli(session, server, {"INFO", "persistence"}, evidence, &out);
      if (!r.ok() || out.find("aof_last_write_status:err") != std::string::npos) break;
      std::this_thread::sleep_for(100ms);
      if (interrupted()) return SysResult::harness_failure(kInterrupted);
    } while (std::chrono::steady_clock::now() < until);
    if (!r.ok()) return r;
    evidence["aof_last_write_status"] =
        out.find("aof_last_write_status:ok") != std::string::npos ? "ok" : "err";
    return evidence["aof_last_write_status"] == "ok" ? SysResult::success(0) : SysResult::failure(0);
  }

  static SysResult init(AppSession& session, const std::string& path, const std::string& fsync,
                        json& evidence) {
    if (::mkdir(path.c_str(), 0700) != 0) {
      evidence["error"] = "cannot create " + path + ": " + std::strerror(errno);
      return SysResult::harness_failure("app driver");
    }
    char tmpl[] = "/tmp/syncprobe-redis-XXXXXX";
    if (!mkdtemp(tmpl)) {
      evidence["error"] = std::string("cannot create the socket directory: ") + std::strerror(errno);
      return SysResult::harness_failure("app driver");
    }
    auto owned = std::make_unique<RedisServer>(path, tmpl, fsync, session);
    RedisServer& server = *owned;
    session.keep(path, std::move(owned));
    evidence["socket_dir"] = tmpl;
    SysResult r = server.start(evidence);
    server.log_into(evidence);
    if (!r.ok()) return r;
    // The AOF files Redis created reach the disk before any fault: a fault
    // on the AOF's blocks then finds them allocated.
    if (SysResult s = sync_filesystem(path, "start", evidence); !s.ok()) return s;
    evidence["aof_file"] = aof(path).substr(path.size() + 1);
    return r;
  }
};

}  // namespace

const AppDriver& redis_driver() {
  static const RedisDriver d;
  return d;
}

}  // namespace syncprobe
