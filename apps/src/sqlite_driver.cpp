// SQLite through the sqlite3 command-line shell: a table kv(k, v), one
// process per action (each action is a fresh connection, as a restarted
// program would be), synchronous=FULL, rollback journal or WAL. The variant
// "rollback,extra" sets synchronous=EXTRA: SQLite then also fsyncs the
// directory after deleting the journal, the commit point of DELETE mode.
#include "syncprobe/app_driver.h"

#include <sstream>

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

  SysResult act(const AppCall& call, AppSession& session, const std::string& path,
                nlohmann::json& evidence) const override {
    const std::string variant = call.variant.empty() ? "rollback" : call.variant;
    const bool extra = variant == "rollback,extra";
    const std::string mode = extra ? "rollback" : variant;
    if (mode != "rollback" && mode != "wal") {
      evidence["error"] = "sqlite variant '" + variant + "': use 'rollback', 'rollback,extra' or 'wal'";
      return SysResult::harness_failure("app driver");
    }
    evidence["journal_mode"] = mode == "wal" ? "WAL" : "DELETE";
    evidence["synchronous"] = extra ? "EXTRA" : "FULL";
    const std::string pragmas = extra ? "PRAGMA synchronous=EXTRA; " : "PRAGMA synchronous=FULL; ";
    if (call.action == "init")
      return sql(session, path, std::string("PRAGMA journal_mode=") + (mode == "wal" ? "WAL" : "DELETE") +
                           "; CREATE TABLE IF NOT EXISTS kv(k TEXT PRIMARY KEY, v TEXT);",
                 evidence);
    if (call.action == "put")
      return sql(session, path, pragmas + "INSERT OR REPLACE INTO kv VALUES('" + call.key + "','" +
                           call.value + "');",
                 evidence);
    if (call.action == "get") {
      SysResult r = sql(session, path, pragmas + "SELECT v FROM kv WHERE k='" + call.key + "';", evidence);
      if (r.ok()) {
        const std::string v = trim(evidence.value("output", std::string()));
        evidence["found"] = !v.empty();
        evidence["read"] = v.empty() ? nlohmann::json() : nlohmann::json(v);
      }
      return r;
    }
    if (call.action == "scan") {
      // Separator 0x1f: a key or value mangled into anything is still seen.
      std::string out;
      SysResult r = sql(session, path, "SELECT k || char(31) || v FROM kv ORDER BY k;", evidence, &out);
      if (r.ok()) evidence["pairs"] = pairs(out);
      return r;
    }
    if (call.action == "checkpoint")
      return sql(session, path, "PRAGMA wal_checkpoint(TRUNCATE);", evidence);
    if (call.action == "restart") {
      evidence["note"] = "every sqlite3 action is a new process: nothing keeps running";
      return SysResult::success(0);
    }
    // check: SQLite's own consistency check.
    SysResult r = sql(session, path, "PRAGMA integrity_check;", evidence);
    evidence["consistent"] = r.ok() && trim(evidence.value("output", std::string())) == "ok";
    return r;
  }

 private:
  static nlohmann::json pairs(const std::string& out) {
    nlohmann::json p = nlohmann::json::object();
    std::istringstream in(out);
    for (std::string line; std::getline(in, line);) {
      const auto sep = line.find('\x1f');
      if (sep == std::string::npos) p[line] = nullptr;  // a row without its separator: corrupted
      else p[line.substr(0, sep)] = trim(line.substr(sep + 1));
    }
    return p;
  }

  static SysResult sql(AppSession& session, const std::string& path, const std::string& text,
                       nlohmann::json& evidence, std::string* out = nullptr) {
    evidence["sql"] = text;
    return session.run_program({"sqlite3", "-bail", "-batch", path, text}, evidence, out);
  }
};

}  // namespace

const AppDriver& sqlite_driver() {
  static const SqliteDriver d;
  return d;
}

}  // namespace syncprobe
