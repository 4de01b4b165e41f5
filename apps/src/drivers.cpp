#include "syncprobe/app_driver.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "syncprobe/command.h"

namespace syncprobe {

std::vector<const AppDriver*> app_drivers() {
  return {&sqlite_driver(), &qemu_driver(), &postgres_driver(), &redis_driver(), &lmdb_driver()};
}

const AppDriver* find_app_driver(std::string_view name) {
  for (const auto* d : app_drivers())
    if (d->name() == name) return d;
  return nullptr;
}

std::set<std::string> installed_app_capabilities() {
  std::set<std::string> caps;
  for (const auto* d : app_drivers()) {
    bool all = true;
    for (const auto& p : d->programs()) all = all && !find_program(p).empty();
    if (all) caps.insert("app:" + std::string(d->name()));
  }
  return caps;
}

bool plain_word(const std::string& s) {
  if (s.empty() || s.size() > 64) return false;
  for (char c : s)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '.'))
      return false;
  return true;
}

SysResult run_recorded(const std::vector<std::string>& argv, std::chrono::milliseconds timeout,
                       nlohmann::json& evidence, std::string* full_output) {
  evidence["command"] = argv;
  if (find_program(argv.front()).empty()) {
    evidence["error"] = argv.front() + " is not installed (scripts/setup)";
    return SysResult::harness_failure("app driver");
  }
  CommandResult r = run_program(argv, timeout);
  if (full_output) *full_output = r.output;
  std::string out = r.output;
  if (out.size() > 4000) out = out.substr(0, 2000) + "\n[...]\n" + out.substr(out.size() - 2000);
  evidence["output"] = out;
  evidence["exit_status"] = r.exit_code;
  if (r.timed_out) {
    evidence["timed_out"] = true;
    return SysResult::hang();
  }
  return r.ok() ? SysResult::success(0) : SysResult::failure(0);
}

SysResult sync_filesystem(const std::string& dir, const std::string& after, nlohmann::json& evidence) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  const int synced = fd >= 0 ? ::syncfs(fd) : -1;
  const int err = errno;
  if (fd >= 0) ::close(fd);
  if (synced == 0) return SysResult::success(0);
  evidence["error"] = "syncfs after " + after + ": " + std::strerror(err);
  return SysResult::harness_failure("app driver");
}

AppSession::AppSession(std::string root, std::chrono::milliseconds timeout, Ledger& ledger,
                       Injector* process_injector)
    : root_(std::move(root)), timeout_(timeout), ledger_(ledger), injector_(process_injector) {}

AppSession::~AppSession() { stop(false); }

AppRunner app_runner(Ledger& ledger) {
  return [&ledger](const std::string& root, std::chrono::milliseconds timeout, Injector* injector) {
    return std::unique_ptr<AppHost>(std::make_unique<AppSession>(root, timeout, ledger, injector));
  };
}

std::string AppSession::stop(bool kill) {
  std::string note;
  for (auto& [key, server] : servers_) {
    const std::string n = server->stop(kill);
    if (!n.empty()) note += (note.empty() ? "" : "; ") + n;
  }
  servers_.clear();
  return note;
}

AppServer* AppSession::server(const std::string& key) {
  auto it = servers_.find(key);
  return it == servers_.end() ? nullptr : it->second.get();
}

void AppSession::keep(const std::string& key, std::unique_ptr<AppServer> server) {
  servers_[key] = std::move(server);
}

SysResult AppSession::run_program(const std::vector<std::string>& argv, nlohmann::json& evidence,
                                  std::string* full_output) {
  if (!injector_ || find_program(argv.front()).empty())
    return run_recorded(argv, timeout_, evidence, full_output);
  evidence["under"] = injector_->layer();
  return run_recorded(injector_->command(argv), timeout_, evidence, full_output);
}

SysResult AppSession::run(const AppCall& call, nlohmann::json& evidence) {
  evidence["program"] = call.program;
  evidence["action"] = call.action;
  evidence["variant"] = call.variant;
  if (!call.key.empty()) evidence["key"] = call.key;
  if (call.action == "put") evidence["value"] = call.value;
  const AppDriver* d = find_app_driver(call.program);
  if (!d) {
    evidence["error"] = "no driver for program '" + call.program + "'";
    return SysResult::harness_failure("app driver");
  }
  if ((call.action == "put" || call.action == "get") && !plain_word(call.key)) {
    evidence["error"] = "key '" + call.key + "' must be letters, digits, '_', '-', '.'";
    return SysResult::harness_failure("app driver");
  }
  if (call.action == "put" && !plain_word(call.value)) {
    evidence["error"] = "value '" + call.value + "' must be letters, digits, '_', '-', '.'";
    return SysResult::harness_failure("app driver");
  }
  SysResult r = d->act(call, *this, root_ + "/" + call.file, evidence);
  if (call.action == "put") evidence["acknowledged"] = r.ok();
  return r;
}

}  // namespace syncprobe
