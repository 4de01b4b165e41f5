#pragma once
// A target is where a case runs: reference:<policy>, host:<fs>[:<opts>],
// vm:<kernel>:<fs>. A backend is a TargetKind (a name prefix with a factory)
// added to the TargetRegistry; the runner knows no backend by name.
#include <chrono>
#include <functional>
#include <iosfwd>
#include <map>
#include <optional>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "syncprobe/case.h"
#include "syncprobe/ledger.h"
#include "syncprobe/observation.h"

namespace syncprobe {

struct Availability {
  bool available = true;
  std::string reason;  // why not, and how to fix it, when !available
};

struct RunContext {
  std::string run_id;               // e.g. "20261124-140102-ab12"
  std::string run_dir;              // results directory of this run
  // The run's private directory (mode 0700, checked): targets create their
  // images, mounts and logs below it, and record in `ledger` what they
  // acquire on the machine before acquiring it. Empty when the run has only
  // modelled targets.
  std::string scratch_dir;
  Ledger* ledger = nullptr;
  std::chrono::milliseconds step_timeout{10000};
  // The user chose step_timeout: VM guests (slow under TCG) use it as is
  // instead of their own default.
  bool step_timeout_given = false;
  bool verbose = false;
};

class Target {
 public:
  virtual ~Target() = default;
  virtual std::string name() const = 0;
  // Reference policies are modelled; everything else is measured.
  virtual bool measured() const = 0;
  // True when the target acquires things on the machine (processes, mounts):
  // it then gets the run's scratch directory and ledger, and runs outside the
  // thread pool of the in-process targets (it forks). Default: measured().
  virtual bool uses_machine() const { return measured(); }
  virtual Availability availability() const = 0;
  virtual std::set<std::string> capabilities() const = 0;
  // Why the target lacks `capability` ("OpenBSD has no syncfs(2)"), for the
  // reason a skipped case gives; "" when there is nothing more to say.
  virtual std::string lack_reason(const std::string& /*capability*/) const { return ""; }
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
  // True when this target's batches share nothing with other batches (a VM
  // guest brings its own kernel and disks), so the runner may run several
  // such batches at once. Default: false (host targets share the machine).
  virtual bool isolated_batches() const { return false; }
  virtual std::map<std::string, std::vector<CaseResult>> run_batch(
      const std::vector<Target*>& targets, const std::vector<const Case*>& cases,
      const RunContext& ctx);
};

// One kind of target: every name "<prefix>:<spec>" is made by `make`.
struct TargetKind {
  std::string prefix;   // "reference", "host", "vm"
  std::string syntax;   // "host:<fs>[:<options>]", for messages and --help
  // nullptr for a spec the kind does not know; `error` then says why and how to fix it.
  std::function<std::unique_ptr<Target>(const std::string& spec, std::string& error)> make;
  std::function<std::vector<std::string>()> names;  // every full name this kind offers
  // Removes what a killed run of this kind left under `scratch_root` beyond
  // what the runs' markers list (which the runner releases itself); may be empty.
  std::function<void(const std::string& scratch_root, std::ostream& log)> cleanup_stale;
};

// The backends this build knows. Filled once at start-up (cli/), read-only after.
class TargetRegistry {
 public:
  void add(TargetKind kind);
  // nullptr for a name no kind recognises; `error` then says why.
  std::unique_ptr<Target> make(const std::string& name, std::string& error) const;
  std::vector<std::string> known() const;
  // Expands "reference:*", "host:*", "vm:6.1:*" into known names; a name without
  // a wildcard is returned as it is.
  std::vector<std::string> expand(const std::string& pattern) const;
  void cleanup_stale(const std::string& scratch_root, std::ostream& log) const;
  const std::vector<TargetKind>& kinds() const { return kinds_; }

 private:
  std::vector<TargetKind> kinds_;
};

// A result of `t` for `c` started now: the case's identity, the target's
// name and environment; status and steps are the caller's.
CaseResult new_result(const Target& t, const Case& c);

// The result for a case this target cannot run (missing capabilities),
// or nullopt when it can.
std::optional<CaseResult> skip_if_unsupported(const Target& t, const Case& c);

}  // namespace syncprobe
