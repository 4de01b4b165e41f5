#include "syncprobe/taxonomy.h"

#include <array>

#include "syncprobe/case.h"

namespace syncprobe::taxonomy {
namespace {

using T = Tone;

constexpr std::array kRules = {
    Rule{"R1", "retain",
         "A page whose writeback failed stays dirty (marked in error) and is written again by a later "
         "fsync or by background writeback; it is not dropped while memory allows."},
    Rule{"R2", "fd-consistency",
         "A successful fsync on a descriptor means every byte written or read through that descriptor "
         "is on stable storage."},
    Rule{"R3", "gone-bad",
         "If data written or seen through a descriptor is discarded without being written, every later "
         "fsync on that descriptor fails."},
    Rule{"R4", "per-fd",
         "A descriptor that never saw the discarded data is not poisoned."},
    Rule{"R5", "report-all",
         "An error is reported to every descriptor open when it happened, and is not consumed by "
         "sync(), syncfs(), stat() or another process."},
    Rule{"R6", "recover",
         "After a transient failure is repaired, a retried fsync persists the data and nothing is lost."},
    Rule{"R7", "bounded",
         "Pages held in error do not pin unbounded memory: past a limit they are discarded (then R3 "
         "applies) and the discard is counted."},
};

constexpr std::array kReporting = {
    Value{"silent", "never reported", T::bad},
    Value{"first-caller", "one report per file, to whoever checks first", T::bad},
    Value{"once-per-fd", "each open descriptor sees it once", T::mid},
    Value{"once-per-fd+unseen", "also a descriptor opened later, if nobody has seen it", T::mid},
    Value{"deferred", "reported by the next fsync, not the failing one", T::mid},
    Value{"sticky-until-close", "every fsync fails, even after repair, until the descriptor is closed",
          T::mid},
    Value{"until-persisted", "fails until the data is on disk", T::good},
};
constexpr std::array kPageFate = {
    Value{"clean-kept", "unwritten data stays readable, marked clean", T::mid},
    Value{"reverted", "the cache drops it; reads return the disk's content", T::mid},
    Value{"dirty-retained", "kept and retried", T::good},
};
constexpr std::array kRecovery = {
    Value{"recovers", "after repair the retry persists the data", T::good},
    Value{"lost-reported", "the data is lost and a later fsync says so", T::mid},
    Value{"lost-silent", "a later fsync returns 0 but the data is not on disk", T::bad},
};
constexpr std::array kFsReaction = {
    Value{"continues", "new files can be written after repair", T::good},
    Value{"read-only", "the filesystem refuses writes (EROFS)", T::mid},
    Value{"shutdown", "the filesystem fails every operation", T::bad},
    Value{"hangs", "a step never returned", T::bad},
};
constexpr std::array kCrossFd = {
    Value{"safe", "no process gets a successful fsync for data that is not on disk", T::good},
    Value{"corrupts", "another process builds on data that never reached the disk and its fsync "
                      "succeeds", T::bad},
};

constexpr std::array kAxes = {
    Axis{"reporting", "Reporting", kReporting},
    Axis{"page_fate", "Page fate", kPageFate},
    Axis{"recovery", "Recovery", kRecovery},
    Axis{"fs_reaction", "FS reaction", kFsReaction},
    Axis{"cross_fd", "Cross-fd", kCrossFd},
};

constexpr std::array kFaultClasses = {
    FaultClass{"data-write", "transient data-write error",
               "writes of the file's data (range data, or free: an append's new blocks) fail with EIO or "
               "another errno but ENXIO; metadata and journal stay healthy; the device is repaired later"},
    FaultClass{"metadata", "metadata or journal write error",
               "writes outside the file's data fail (range metadata), or the journal's only (range journal)"},
    FaultClass{"device-gone", "device gone (ENXIO)",
               "writes fail with ENXIO, as when the path to the device is lost"},
    FaultClass{"thin-enospc", "thin pool out of space",
               "the thin pool cannot allocate; writes fail (error_if_no_space) or queue until it grows"},
    FaultClass{"device-write", "every write of the device fails",
               "all writes to the device fail, data and metadata alike"},
    FaultClass{"flush", "cache flush fails",
               "writes succeed but the device fails the cache flushes that make them durable"},
    FaultClass{"read", "read error", "reads of the named range fail"},
    FaultClass{"dropped-write", "writes silently dropped", "the device acknowledges writes it never makes"},
    FaultClass{"device-hang", "device hangs", "the device never answers the named operations"},
    FaultClass{"shutdown", "filesystem shut down",
               "the filesystem is shut down with dirty data in the cache (XFS_IOC_GOINGDOWN, "
               "EXT4_IOC_SHUTDOWN); the device itself works"},
};

constexpr std::array kRuleVerdicts = {
    Value{kPass, "every check that could be judged held, and at least one was", T::good},
    Value{kFail, "a check did not hold", T::bad},
    Value{kUnknown, "a check ran but could not be judged (its proof read-back failed or hung), or "
                    "the cases checking it hung before the check", T::none},
    Value{kNotMeasurable, "every case checking it needs a capability this target lacks", T::none},
    Value{kNotApplicable, "no case in the run checks it", T::none},
};

constexpr std::array kFstestsVerdicts = {
    Value{kPass, "every observation fstests checks is what fstests wants", T::good},
    Value{kFail, "an observation fstests checks is not what fstests wants, or a step hung", T::bad},
    Value{kNotRun, "the case was skipped here, or fstests itself skips this filesystem ([not run])", T::none},
    Value{kUnknown, "the case hung or failed before fstests' condition could be judged", T::none},
};

constexpr std::array kAppOutcomes = {
    Value{"acked-present", "a read shows the last acknowledged value", T::good},
    Value{"failed-absent", "a read shows the acknowledged value from before a reported failure", T::good},
    Value{"OV", "old value: an older acknowledged value after a newer put was acknowledged", T::bad},
    Value{"FF", "false failure: a put reported failure, yet its value is read back", T::bad},
    Value{"KNF", "key not found after a put was acknowledged", T::bad},
    Value{"VC", "value corrupted: neither a value put nor absent", T::bad},
    Value{"KC", "key corrupted: a scan lists a key that was never put", T::bad},
    Value{"refuses-start", "the program fails to read, or its check fails, after the heal", T::bad},
};

}  // namespace

std::string_view to_string(Tone t) {
  switch (t) {
    case Tone::good: return "good";
    case Tone::mid: return "mid";
    case Tone::bad: return "bad";
    case Tone::none: return "none";
  }
  return "none";
}

std::span<const Rule> rules() { return kRules; }
std::span<const Axis> axes() { return kAxes; }
std::span<const FaultClass> fault_classes() { return kFaultClasses; }
std::span<const Value> rule_verdicts() { return kRuleVerdicts; }
std::span<const Value> fstests_verdicts() { return kFstestsVerdicts; }
std::span<const Value> app_outcomes() { return kAppOutcomes; }

const Value* find_app_outcome(std::string_view name) {
  for (const auto& v : kAppOutcomes)
    if (v.name == name) return &v;
  return nullptr;
}

const Rule* find_rule(std::string_view id) {
  for (const auto& r : kRules)
    if (r.id == id) return &r;
  return nullptr;
}

const Axis* find_axis(std::string_view id) {
  for (const auto& a : kAxes)
    if (a.id == id) return &a;
  return nullptr;
}

const Value* find_value(const Axis& axis, std::string_view name) {
  for (const auto& v : axis.values)
    if (v.name == name) return &v;
  return nullptr;
}

std::string_view fault_class_of(const Case& c) {
  for (const auto& s : c.steps) {
    if (s.kind == StepKind::thin_limit) return "thin-enospc";
    if (s.kind == StepKind::shutdown) return "shutdown";
    if (s.kind != StepKind::fault) continue;
    // libfiu fails a call in front of the kernel: no device fault, no class,
    // whatever io or errno it names (a contrast row, docs/apps.md).
    if (s.arg("range") == "libfiu") return "";
    if (s.arg("mode") == "hang") return "device-hang";
    if (s.arg("mode") == "drop") return "dropped-write";
    if (s.arg("io") == "flush") return "flush";
    if (s.arg("io") == "read") return "read";
    if (s.arg("errno") == "ENXIO") return "device-gone";
    const std::string range = s.arg("range");
    if (range == "metadata" || range == "journal") return "metadata";
    if (range == "device") return "device-write";
    if (range == "data" || range == "free") return "data-write";  // free: where an append's new data goes
    return "";  // a range this table does not know decides no profile, rather than a wrong one
  }
  return "";
}

Tone tone_of(std::string_view value) {
  for (const auto& a : kAxes)
    if (const Value* v = find_value(a, value)) return v->tone;
  for (const auto& v : kRuleVerdicts)
    if (v.name == value) return v.tone;
  for (const auto& v : kFstestsVerdicts)
    if (v.name == value) return v.tone;
  return Tone::none;
}

}  // namespace syncprobe::taxonomy
