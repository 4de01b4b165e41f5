// PostgreSQL (Debian's postgresql package): a private cluster whose data
// directory is the program's file on the scratch filesystem, run as the
// unprivileged `postgres` user, listening on a Unix socket in a private
// directory only (listen_addresses=''). The server keeps running between
// steps (an AppServer of the session) and is stopped at the end of the case,
// on failure and on signals; `restart` stops it as a crash would and starts
// it again. Keys and values live in a table kv(k, v).
#include <dirent.h>
#include <fcntl.h>
#include <pwd.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>
#include <thread>

#include "syncprobe/app_driver.h"
#include "syncprobe/linux_fs.h"

namespace syncprobe {
namespace {

using namespace std::chrono_literals;
using json = nlohmann::json;

constexpr const char* kUser = "postgres";

// Debian installs the server's programs under /usr/lib/postgresql/<major>/bin.
std::string bindir() {
  std::string best;
  int best_major = -1;
  if (DIR* d = opendir("/usr/lib/postgresql")) {
    while (dirent* e = readdir(d)) {
      const int major = std::atoi(e->d_name);
      const std::string dir = std::string("/usr/lib/postgresql/") + e->d_name + "/bin";
      if (major > best_major && access((dir + "/pg_ctl").c_str(), X_OK) == 0) {
        best = dir;
        best_major = major;
      }
    }
    closedir(d);
  }
  return best.empty() ? "/usr/lib/postgresql/15/bin" : best;
}

// The server runs as `postgres`; CAP_DAC_READ_SEARCH (ambient, nothing else)
// lets it reach its data directory through the run's private, root-only
// scratch directories. It owns only the data directory and its socket directory.
std::vector<std::string> as_user(std::vector<std::string> argv) {
  std::vector<std::string> out = {"setpriv", std::string("--reuid=") + kUser,
                                  std::string("--regid=") + kUser, "--init-groups",
                                  "--inh-caps=+dac_read_search", "--ambient-caps=+dac_read_search"};
  out.insert(out.end(), argv.begin(), argv.end());
  return out;
}

bool alive(pid_t pid, uint64_t start) {
  if (!process_is(pid, start)) return false;
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  std::getline(in, line);
  const auto close = line.rfind(')');
  return close != std::string::npos && close + 2 < line.size() && line[close + 2] != 'Z';
}

// True when `pid` is a postgres server of the data directory `data` (a stale
// postmaster.pid may name a pid reused by another program).
bool serves(pid_t pid, const std::string& data) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/cmdline");
  std::string cmdline((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  for (char& c : cmdline)
    if (c == '\0') c = ' ';
  return cmdline.find("postgres") != std::string::npos &&
         cmdline.find("-D " + data + " ") != std::string::npos;
}

std::vector<pid_t> children_of(pid_t parent) {
  std::vector<pid_t> out;
  if (DIR* d = opendir("/proc")) {
    while (dirent* e = readdir(d)) {
      const pid_t pid = pid_t(std::atoi(e->d_name));
      if (pid <= 0) continue;
      std::ifstream in(std::string("/proc/") + e->d_name + "/stat");
      std::string line;
      std::getline(in, line);
      const auto close = line.rfind(')');
      if (close == std::string::npos) continue;
      std::istringstream rest(line.substr(close + 2));
      char state = 0;
      pid_t ppid = 0;
      rest >> state >> ppid;
      if (ppid == parent) out.push_back(pid);
    }
    closedir(d);
  }
  return out;
}

class PgServer final : public AppServer {
 public:
  PgServer(std::string data, std::string sockdir, std::string retry, AppSession& session)
      : data_(std::move(data)), sockdir_(std::move(sockdir)), retry_(std::move(retry)),
        session_(session) {}
  ~PgServer() override { stop(true); }

  const std::string& sockdir() const { return sockdir_; }
  bool running() const { return pid_ > 0 && alive(pid_, start_); }

  // pg_ctl start -w. The server's log stays outside the faulty filesystem.
  SysResult start(json& evidence) {
    const std::string opts =
        "-c listen_addresses='' -c unix_socket_directories='" + sockdir_ +
        "' -c data_sync_retry=" + retry_ +
        " -c restart_after_crash=off -c autovacuum=off -c fsync=on -c synchronous_commit=on";
    const auto secs = std::to_string(std::max<int64_t>(5, session_.timeout().count() / 1000 - 2));
    SysResult r = run_recorded(as_user({bindir() + "/pg_ctl", "-D", data_, "-l", log(), "-w", "-t",
                                        secs, "-o", opts, "start"}),
                               session_.timeout(), evidence);
    std::ifstream pidfile(data_ + "/postmaster.pid");
    pid_t pid = 0;
    // Also when pg_ctl gave up waiting: a postmaster that did start must be stopped later.
    if (pidfile >> pid && pid > 0 && serves(pid, data_)) {
      pid_ = pid;
      start_ = process_start_time(pid);
      // Recorded as soon as its pid is known: a killed run's successor kills it.
      session_.ledger().acquire({Resource::Kind::process, "postgres server", pid_, start_});
    }
    return r;
  }

  std::string stop(bool kill) override {
    std::string note;
    if (running() && !kill) {
      json ev;
      SysResult r = run_recorded(as_user({bindir() + "/pg_ctl", "-D", data_, "-m", "immediate", "-w",
                                          "-t", "10", "stop"}),
                                 std::min<std::chrono::milliseconds>(session_.timeout(), 15s), ev);
      if (!r.ok() && running()) note = "pg_ctl stop failed: " + ev.value("output", std::string());
    }
    if (running()) {
      // SIGKILL the postmaster and its children; they also exit on its death.
      std::vector<pid_t> all = children_of(pid_);
      ::kill(pid_, SIGKILL);
      for (pid_t c : all) ::kill(c, SIGKILL);
      for (int i = 0; i < 100 && running(); ++i) std::this_thread::sleep_for(50ms);
      if (running()) note += (note.empty() ? "" : "; ") + std::string("postgres server stayed");
    }
    if (pid_ > 0 && !running())
      session_.ledger().release({Resource::Kind::process, "postgres server", pid_, start_});
    if (!running()) pid_ = 0;
    return note;
  }

  // The server log written since the last call, and whether it says PANIC.
  void log_into(json& evidence) {
    std::ifstream in(log());
    in.seekg(std::streamoff(log_seen_));
    std::stringstream ss;
    ss << in.rdbuf();
    std::string text = ss.str();
    log_seen_ += text.size();
    evidence["panic"] = text.find("PANIC:") != std::string::npos;
    if (text.size() > 3000) text = text.substr(0, 1000) + "\n[...]\n" + text.substr(text.size() - 2000);
    evidence["server_log"] = text;
    evidence["server_running"] = running();
  }

  // Removes the socket directory once the server is gone.
  void forget() {
    if (running()) return;
    std::error_code ec;
    std::filesystem::remove_all(sockdir_, ec);
  }

 private:
  std::string log() const { return sockdir_ + "/server.log"; }

  std::string data_, sockdir_, retry_;
  AppSession& session_;
  pid_t pid_ = 0;
  uint64_t start_ = 0;
  size_t log_seen_ = 0;
};

// Owns the server; its destructor stops it and removes its socket directory.
class PgHandle final : public AppServer {
 public:
  explicit PgHandle(std::unique_ptr<PgServer> s) : server(std::move(s)) {}
  ~PgHandle() override {
    server->stop(true);
    server->forget();
  }
  std::string stop(bool kill) override {
    std::string note = server->stop(kill);
    server->forget();
    return note;
  }
  std::unique_ptr<PgServer> server;
};

std::string trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ')) s.pop_back();
  return s;
}

class PostgresDriver final : public AppDriver {
 public:
  std::string_view name() const override { return "postgres"; }
  std::vector<std::string> programs() const override {
    return {"psql", "setpriv", bindir() + "/initdb", bindir() + "/pg_ctl"};
  }

  SysResult act(const AppCall& call, AppSession& session, const std::string& path,
                json& evidence) const override {
    const std::string variant = call.variant.empty() ? "data_sync_retry=off" : call.variant;
    if (variant != "data_sync_retry=off" && variant != "data_sync_retry=on") {
      evidence["error"] = "postgres variant '" + variant + "': use data_sync_retry=off or =on";
      return SysResult::harness_failure("app driver");
    }
    if (session.process_injector()) {
      evidence["error"] = "PostgreSQL cannot run under libfiu's POSIX preload: Debian's postgres "
                          "exports hash_create, which the preload then calls instead of its own "
                          "and crashes (docs/apps.md)";
      return SysResult::harness_failure("app driver");
    }
    evidence["data_sync_retry"] = variant.substr(variant.find('=') + 1);
    auto* handle = dynamic_cast<PgHandle*>(session.server(path));
    if (call.action == "init") {
      if (handle) {
        evidence["error"] = "a cluster already runs on " + path;
        return SysResult::harness_failure("app driver");
      }
      return init(session, path, variant.substr(variant.find('=') + 1), evidence);
    }
    if (!handle) {
      evidence["error"] = "no cluster on " + path + ": the case must start with action = \"init\"";
      return SysResult::harness_failure("app driver");
    }
    PgServer& pg = *handle->server;
    SysResult r = SysResult::success(0);
    if (call.action == "restart") {
      // What the page cache holds of the table and the WAL now: whether a
      // "kept" scenario really kept them (another program's drop_caches may not).
      for (const char* which : {"table", "wal"}) {
        json ev;
        std::string out;
        SysResult f = run_recorded({"fincore", "--bytes", "--noheadings", "--output", "RES",
                                    path + "." + which},
                                   session.timeout(), ev, &out);
        evidence["resident_before_restart"][which] =
            f.ok() ? json(std::strtoull(out.c_str(), nullptr, 10)) : json(ev.value("output", ""));
      }
      const std::string note = pg.stop(false);
      if (!note.empty()) evidence["stop_note"] = note;
      pg.log_into(evidence["before_restart"]);
      r = pg.start(evidence);
    } else if (call.action == "put") {
      r = psql(session, pg, "INSERT INTO kv VALUES('" + call.key + "','" + call.value +
                                "') ON CONFLICT (k) DO UPDATE SET v = excluded.v", evidence);
    } else if (call.action == "get") {
      std::string out;
      r = psql(session, pg, "SELECT v FROM kv WHERE k = '" + call.key + "'", evidence, &out);
      if (r.ok()) {
        const std::string v = trim(out);
        evidence["found"] = !v.empty();
        evidence["read"] = v.empty() ? json() : json(v);
      }
    } else if (call.action == "scan") {
      std::string out;
      r = psql(session, pg, "SELECT k || chr(31) || v FROM kv ORDER BY k", evidence, &out);
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
      r = psql(session, pg, "CHECKPOINT", evidence);
    } else {  // check: amcheck on the table and its index
      std::string out;
      r = psql(session, pg,
               "CREATE EXTENSION IF NOT EXISTS amcheck; SELECT bt_index_check('kv_pkey', true); "
               "SELECT count(*) FROM verify_heapam('kv')",
               evidence, &out);
      const std::string text = trim(out);
      evidence["consistent"] = r.ok() && text.substr(text.find_last_of('\n') + 1) == "0";
    }
    pg.log_into(evidence);
    return r;
  }

 private:
  static SysResult psql(AppSession& session, PgServer& pg, const std::string& sql, json& evidence,
                        std::string* out = nullptr) {
    evidence["sql"] = sql;
    // Over the private Unix socket only; trust authentication (initdb -A trust).
    return run_recorded({"psql", "-h", pg.sockdir(), "-U", kUser, "-d", "postgres", "-X", "-A",
                         "-t", "-q", "-v", "ON_ERROR_STOP=1", "-c", sql},
                        session.timeout(), evidence, out);
  }

  static SysResult init(AppSession& session, const std::string& path, const std::string& retry,
                        json& evidence) {
    const passwd* pw = getpwnam(kUser);
    if (!pw) {
      evidence["error"] = "no user 'postgres' (the postgresql package creates it: scripts/setup)";
      return SysResult::harness_failure("app driver");
    }
    if (::mkdir(path.c_str(), 0700) != 0 || ::chown(path.c_str(), pw->pw_uid, pw->pw_gid) != 0) {
      evidence["error"] = "cannot create " + path + ": " + std::strerror(errno);
      return SysResult::harness_failure("app driver");
    }
    char tmpl[] = "/tmp/syncprobe-pg-XXXXXX";
    if (!mkdtemp(tmpl) || ::chown(tmpl, pw->pw_uid, pw->pw_gid) != 0) {
      evidence["error"] = std::string("cannot create the socket directory: ") + std::strerror(errno);
      return SysResult::harness_failure("app driver");
    }
    auto server = std::make_unique<PgServer>(path, tmpl, retry, session);
    PgServer& pg = *server;
    session.keep(path, std::make_unique<PgHandle>(std::move(server)));
    evidence["socket_dir"] = tmpl;
    SysResult r = run_recorded(as_user({bindir() + "/initdb", "-D", path, "-A", "trust", "-U", kUser,
                                        "-E", "UTF8", "--no-locale", "--no-sync"}),
                               session.timeout(), evidence["initdb"]);
    if (!r.ok()) return r;
    r = pg.start(evidence["start"]);
    if (!r.ok()) {
      pg.log_into(evidence);
      return r;
    }
    std::string out;
    r = psql(session, pg,
             "CREATE TABLE kv(k text PRIMARY KEY, v text); CHECKPOINT; "
             "SELECT pg_relation_filepath('kv') || ' ' || pg_walfile_name(pg_current_wal_lsn())",
             evidence, &out);
    pg.log_into(evidence);
    if (!r.ok()) return r;
    // The table's file and the WAL segment in use, linked where a case's
    // fault can name them: <file>.table and <file>.wal (same inodes).
    std::istringstream files(out);
    std::string table, wal;
    files >> table >> wal;
    const std::vector<std::pair<std::string, std::string>> links = {
        {path + "/" + table, path + ".table"}, {path + "/pg_wal/" + wal, path + ".wal"}};
    for (const auto& [from, to] : links)
      if (table.empty() || wal.empty() || ::link(from.c_str(), to.c_str()) != 0) {
        evidence["error"] = "cannot link " + from + " to " + to + ": " + std::strerror(errno);
        return SysResult::harness_failure("app driver");
      }
    evidence["table_file"] = table;
    evidence["wal_file"] = "pg_wal/" + wal;
    // Everything initdb wrote (it did not sync) reaches the disk before any fault.
    if (SysResult s = sync_filesystem(path, "initdb", evidence); !s.ok()) return s;
    return r;
  }
};

}  // namespace

const AppDriver& postgres_driver() {
  static const PostgresDriver d;
  return d;
}

}  // namespace syncprobe
