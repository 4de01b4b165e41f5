#pragma once
// Drivers of real programs for `app` steps (docs/apps.md). Each program is one
// driver in its own file behind this interface; a target that can run
// programs declares app:<name> for every driver whose executables are installed.
#include <chrono>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "syncprobe/injector.h"
#include "syncprobe/ledger.h"
#include "syncprobe/mounted_storage.h"
#include "syncprobe/storage.h"
#include "syncprobe/sysresult.h"

namespace syncprobe {

// A program that keeps running between steps (a database server), owned by
// the case's AppSession.
class AppServer {
 public:
  virtual ~AppServer() = default;
  // Stops it: as a crash would (immediate), or at once with SIGKILL when
  // `kill`. "" when it went cleanly, else what had to be forced.
  virtual std::string stop(bool kill) = 0;
};

// Everything a case's programs need, one per case storage: its scratch root,
// the step deadline, the run's ledger, the process-level injector (libfiu)
// when the case has one, and the servers still running. Destroying it stops them.
class AppSession final : public AppHost {
 public:
  AppSession(std::string root, std::chrono::milliseconds timeout, Ledger& ledger,
             Injector* process_injector);
  ~AppSession() override;
  AppSession(const AppSession&) = delete;
  AppSession& operator=(const AppSession&) = delete;

  // Runs `call` with its file under the root. Result and evidence as Storage::app describes.
  SysResult run(const AppCall& call, nlohmann::json& evidence) override;
  // Stops every server (SIGKILL at once when `kill`); "" when all went cleanly.
  std::string stop(bool kill) override;

  const std::string& root() const { return root_; }
  std::chrono::milliseconds timeout() const { return timeout_; }
  Ledger& ledger() { return ledger_; }
  Injector* process_injector() { return injector_; }
  // argv as the process-level injector starts programs (libfiu: under its
  // preload), then as run_recorded.
  SysResult run_program(const std::vector<std::string>& argv, nlohmann::json& evidence,
                        std::string* full_output = nullptr);

  AppServer* server(const std::string& key);  // nullptr when none runs under `key`
  void keep(const std::string& key, std::unique_ptr<AppServer> server);

 private:
  std::string root_;
  std::chrono::milliseconds timeout_;
  Ledger& ledger_;
  Injector* injector_;
  std::map<std::string, std::unique_ptr<AppServer>> servers_;
};

class AppDriver {
 public:
  virtual ~AppDriver() = default;
  virtual std::string_view name() const = 0;              // "sqlite": capability app:sqlite
  virtual std::vector<std::string> programs() const = 0;  // executables it needs
  // Runs one action on the program's file at `path` (absolute, on the scratch
  // filesystem). Result and evidence as Storage::app describes.
  virtual SysResult act(const AppCall& call, AppSession& session, const std::string& path,
                        nlohmann::json& evidence) const = 0;
};

const AppDriver& sqlite_driver();
const AppDriver& qemu_driver();
const AppDriver& postgres_driver();
const AppDriver& redis_driver();
const AppDriver& lmdb_driver();

// Every driver, and the one named `name` (nullptr if none).
std::vector<const AppDriver*> app_drivers();
const AppDriver* find_app_driver(std::string_view name);

// What a storage builder hands MountedStorage: an AppSession per case
// storage, its servers recorded in `ledger` (which must outlive it).
AppRunner app_runner(Ledger& ledger);

// app:<name> for each driver whose programs are all installed here.
std::set<std::string> installed_app_capabilities();

// For drivers: runs argv, records command, exit status and output in
// `evidence`; success when it exits 0, failure (errno 0) when it exits
// otherwise, hang past `timeout`, harness failure when it cannot be started.
// The evidence keeps 4000 characters of output; `full_output` gets all of it.
SysResult run_recorded(const std::vector<std::string>& argv, std::chrono::milliseconds timeout,
                       nlohmann::json& evidence, std::string* full_output = nullptr);

// Keys and values travel on command lines: letters, digits, '_', '-', '.'.
bool plain_word(const std::string& s);

// syncfs(2) on the filesystem holding the directory `dir`, so that what a
// program wrote while starting reaches the disk before any fault; a harness
// failure naming `after` ("initdb") in evidence["error"] when it fails.
SysResult sync_filesystem(const std::string& dir, const std::string& after, nlohmann::json& evidence);

}  // namespace syncprobe
