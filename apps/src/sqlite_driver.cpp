// SQLite through the sqlite3 command-line shell: a table kv(k, v), one
// process per action (each action is a fresh connection, as a restarted
// program would be), synchronous=FULL, rollback journal or WAL.
#include "syncprobe/app_driver.h"

namespace syncprobe {
namespace {

std::string trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ')) s.pop_back();
  return s;
}

class SqliteDriver final : public AppDriver {
 public:
  std::string_view name() const override { return "sqlite"; }
  std::vector<std::string> programs() const override { return {"sqlite3"}; }

  SysResult act(const AppCall& call, const std::string& path, std::chrono::milliseconds timeout,
                nlohmann::json& evidence) const override {
    const std::string mode = call.variant.empty() ? "rollback" : call.variant;
    if (mode != "rollback" && mode != "wal") {
      evidence["error"] = "sqlite variant '" + mode + "': use 'rollback' or 'wal'";
      return SysResult::harness_failure("app driver");
    }
    evidence["journal_mode"] = mode == "wal" ? "WAL" : "DELETE";
    const std::string pragmas = "PRAGMA synchronous=FULL; ";
    if (call.action == "init")
      return sql(path, std::string("PRAGMA journal_mode=") + (mode == "wal" ? "WAL" : "DELETE") +
                           "; CREATE TABLE IF NOT EXISTS kv(k TEXT PRIMARY KEY, v TEXT);",
                 timeout, evidence);
    if (call.action == "put")
      return sql(path, pragmas + "INSERT OR REPLACE INTO kv VALUES('" + call.key + "','" +
                           call.value + "');",
                 timeout, evidence);
    if (call.action == "get") {
      SysResult r = sql(path, pragmas + "SELECT v FROM kv WHERE k='" + call.key + "';", timeout,
                        evidence);
      if (r.ok()) {
        const std::string v = trim(evidence.value("output", std::string()));
        evidence["found"] = !v.empty();
        evidence["read"] = v.empty() ? nlohmann::json() : nlohmann::json(v);
      }
      return r;
    }
    // check: SQLite's own consistency check.
    SysResult r = sql(path, "PRAGMA integrity_check;", timeout, evidence);
    evidence["consistent"] = r.ok() && trim(evidence.value("output", std::string())) == "ok";
    return r;
  }

 private:
  static SysResult sql(const std::string& path, const std::string& text,
                       std::chrono::milliseconds timeout, nlohmann::json& evidence) {
    evidence["sql"] = text;
    return run_recorded({"sqlite3", "-bail", "-batch", path, text}, timeout, evidence);
  }
};

}  // namespace

const AppDriver& sqlite_driver() {
  static const SqliteDriver d;
  return d;
}

}  // namespace syncprobe
