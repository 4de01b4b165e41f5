#pragma once
// Drivers of real programs for `app` steps (docs/apps.md). Each program is one
// driver in its own file behind this interface; a target that can run
// programs declares app:<name> for every driver whose executables are installed.
#include <chrono>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "syncprobe/storage.h"
#include "syncprobe/sysresult.h"

namespace syncprobe {

class AppDriver {
 public:
  virtual ~AppDriver() = default;
  virtual std::string_view name() const = 0;              // "sqlite": capability app:sqlite
  virtual std::vector<std::string> programs() const = 0;  // executables it needs
  // Runs one action on the program's file at `path` (absolute, on the scratch
  // filesystem). Result and evidence as Storage::app describes.
  virtual SysResult act(const AppCall& call, const std::string& path,
                        std::chrono::milliseconds timeout, nlohmann::json& evidence) const = 0;
};

const AppDriver& sqlite_driver();
const AppDriver& qemu_driver();

// Every driver, and the one named `name` (nullptr if none).
std::vector<const AppDriver*> app_drivers();
const AppDriver* find_app_driver(std::string_view name);

// app:<name> for each driver whose programs are all installed here.
std::set<std::string> installed_app_capabilities();

// Runs `call` with its file under `root` (the mounted scratch filesystem).
SysResult run_app(const AppCall& call, const std::string& root,
                  std::chrono::milliseconds timeout, nlohmann::json& evidence);

// For drivers: runs argv, records command, exit status and output in
// `evidence`; success when it exits 0, failure (errno 0) when it exits
// otherwise, hang past `timeout`, harness failure when it cannot be started.
// The evidence keeps 4000 characters of output; `full_output` gets all of it.
SysResult run_recorded(const std::vector<std::string>& argv, std::chrono::milliseconds timeout,
                       nlohmann::json& evidence, std::string* full_output = nullptr);

// Keys and values travel on command lines: letters, digits, '_', '-', '.'.
bool plain_word(const std::string& s);

}  // namespace syncprobe
