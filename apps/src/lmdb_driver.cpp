// LMDB through Debian's lmdb-utils: an environment in the directory that is
// the program's file (data.mdb and lock.mdb in it), written with
// `mdb_load -T` (plain text: a line with the key, a line with the value) and
// read with `mdb_dump -p`. One process per action, as with sqlite3: each
// action opens the environment afresh (a restarted program). mdb_load opens
// it with LMDB's defaults: every commit writes its pages, fdatasyncs them, then
// writes the new meta page through a descriptor opened O_DSYNC.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <sstream>

#include "syncprobe/app_driver.h"
#include "syncprobe/command.h"

namespace syncprobe {
namespace {

using json = nlohmann::json;

class LmdbDriver final : public AppDriver {
 public:
  std::string_view name() const override { return "lmdb"; }
  std::vector<std::string> programs() const override { return {"mdb_load", "mdb_dump"}; }

  SysResult act(const AppCall& call, AppSession& session, const std::string& path,
                json& evidence) const override {
    if (!call.variant.empty()) {
      evidence["error"] = "lmdb has no variants (got '" + call.variant + "')";
      return SysResult::harness_failure("app driver");
    }
    if (call.action == "init") {
      if (::mkdir(path.c_str(), 0700) != 0) {
        evidence["error"] = "cannot create " + path + ": " + std::strerror(errno);
        return SysResult::harness_failure("app driver");
      }
      return load(session, path, "", evidence);  // an empty load creates data.mdb and commits
    }
    if (call.action == "put") return load(session, path, call.key + "\n" + call.value + "\n", evidence);
    if (call.action == "restart") {
      evidence["note"] = "every mdb_load/mdb_dump action is a new process: nothing keeps running";
      return SysResult::success(0);
    }
    if (call.action == "checkpoint") {
      evidence["note"] = "LMDB has no checkpoint: every commit is synced";
      return SysResult::success(0);
    }
    // get, scan, check: mdb_dump walks every page of the database.
    std::string out;
    SysResult r = session.run_program({"mdb_dump", "-p", path}, evidence, &out);
    if (call.action == "check") {
      evidence["note"] = "lmdb-utils has no checker: the check is a full walk (mdb_dump) that "
                         "must succeed";
      evidence["consistent"] = r.ok();
      return r;
    }
    if (!r.ok()) return r;
    const json pairs = parse(out);
    if (call.action == "scan") {
      evidence["pairs"] = pairs;
      return r;
    }
    evidence["found"] = pairs.contains(call.key);
    evidence["read"] = pairs.contains(call.key) ? pairs[call.key] : json();
    return r;
  }

 private:
  // mdb_dump -p: a header up to HEADER=END, then a line " key" and a line
  // " value" per record (printable characters as they are), then DATA=END.
  static json parse(const std::string& out) {
    json pairs = json::object();
    std::istringstream in(out);
    bool data = false;
    std::string key;
    bool have_key = false;
    for (std::string line; std::getline(in, line);) {
      if (!data) {
        data = line == "HEADER=END";
        continue;
      }
      if (line == "DATA=END") {
        data = false;
        continue;
      }
      const std::string item = line.empty() ? line : line.substr(1);
      if (!have_key) key = item;
      else pairs[key] = item;
      have_key = !have_key;
    }
    if (have_key) pairs[key] = nullptr;  // a key without its value: corrupted
    return pairs;
  }

  // mdb_load -T reads its records from a file: a private one in /tmp (not on
  // the faulty filesystem), removed once mdb_load has exited.
  static SysResult load(AppSession& session, const std::string& path, const std::string& text,
                        json& evidence) {
    char tmpl[] = "/tmp/syncprobe-lmdb-XXXXXX";
    const int fd = mkstemp(tmpl);
    const bool written =
        fd >= 0 && ::write(fd, text.data(), text.size()) == ssize_t(text.size()) && ::close(fd) == 0;
    if (!written) {
      if (fd >= 0) ::unlink(tmpl);
      evidence["error"] = std::string("cannot write mdb_load's input: ") + std::strerror(errno);
      return SysResult::harness_failure("app driver");
    }
    evidence["input"] = text;
    SysResult r = session.run_program({"mdb_load", "-T", "-f", tmpl, path}, evidence);
    ::unlink(tmpl);
    return r;
  }
};

}  // namespace

const AppDriver& lmdb_driver() {
  static const LmdbDriver d;
  return d;
}

}  // namespace syncprobe
