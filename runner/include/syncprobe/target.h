#pragma once
// A target is where a case runs: reference:<policy>, host:<fs>[:<opts>],
// vm:<kernel>:<fs>. New backends are new Target implementations registered in
// targets.cpp, not branches in the runner.
#include <chrono>
#include <map>
#include <optional>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "syncprobe/case.h"
#include "syncprobe/observation.h"

namespace syncprobe {

struct Availability {
  bool available = true;
  std::string reason;  // why not, and how to fix it, when !available
};

struct RunContext {
  std::string run_id;               // e.g. "20261124-140102-ab12"
  std::string run_dir;              // results directory of this run
  std::string scratch_dir;          // where targets may create images, mounts, sockets
  std::chrono::milliseconds step_timeout{10000};
  bool verbose = false;
};

class Target {
 public:
  virtual ~Target() = default;
  virtual std::string name() const = 0;
  // Reference policies are modelled; everything else is measured.
  virtual bool measured() const = 0;
  virtual Availability availability() const = 0;
  virtual std::set<std::string> capabilities() const = 0;
  virtual nlohmann::json environment() const = 0;

  // Runs one case from a fresh state. Failures of the case (a hang, a missing
  // capability, a step that could not be carried out) become the result's
  // status; only failures of the machinery itself throw.
  virtual CaseResult run(const Case& c, const RunContext& ctx) = 0;

  // Runs several cases; targets with a costly setup (a VM boot) override this
  // to share it. The default calls run() for each.
  virtual std::vector<CaseResult> run_all(const std::vector<const Case*>& cases,
                                          const RunContext& ctx);

  // Targets with the same batch key (the VM targets of one kernel) are run
  // together: the runner calls run_batch on the first of them with all of
  // them, so one VM boot serves every filesystem. Default: each target's
  // run_all. Returns results keyed by target name.
  virtual std::string batch_key() const { return name(); }
  virtual std::map<std::string, std::vector<CaseResult>> run_batch(
      const std::vector<Target*>& targets, const std::vector<const Case*>& cases,
      const RunContext& ctx);
};

// Returns nullopt-like nullptr for a name no backend recognises; `error` then
// says why (unknown kind, unknown policy, unknown filesystem).
std::unique_ptr<Target> make_target(const std::string& name, std::string& error);

// Expands "reference:*", "host:*", "vm:*" and "vm:6.1:*" into target names.
std::vector<std::string> expand_target_pattern(const std::string& pattern);

// Every target name this build knows, for `syncprobe list targets`.
std::vector<std::string> known_targets();

// The result for a case this target cannot run (missing capabilities),
// or nullopt when it can.
std::optional<CaseResult> skip_if_unsupported(const Target& t, const Case& c);

}  // namespace syncprobe
