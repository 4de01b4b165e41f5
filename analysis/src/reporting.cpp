// The reporting axis: who is told about a failed writeback, and for how long.
// Its decision reads calls from several cases (the writer's fsync in
// seed-single-writer and fstests-generic-441, the second descriptor in 441,
// the newcomer in lifecycle-open-after-error, the reopen in
// lifecycle-close-reopen); each role is cross-checked across the cases of
// the fault class that measure it. docs/classifier.md has the table.
#include <initializer_list>

#include "axes.h"

namespace syncprobe::analysis {
namespace {

// What the cases of a class say about one role (a question asked by one or
// more probes): the call failed (a report), succeeded, the cases disagree,
// or no usable reading.
struct Role {
  enum State { none, failed, ok, disagree } state = none;
  std::string reason;
};

struct RoleSpec {
  const char* name;  // what is asked, for reasons: "the writer's fsync after repair"
  std::initializer_list<const char*> probes;
  const char* if_failed;
  const char* if_ok;
};

Role read_role(const TargetView& v, const std::string& cls, const RoleSpec& spec, AxisResult& a) {
  Role r;
  std::vector<std::string> said_failed, said_ok, unusable;
  for (const char* probe : spec.probes)
    for (const auto& l : v.probes(probe, cls)) {
      const CallReading c = v.read_call(l);
      switch (c.kind) {
        case CallReading::reported:
          a.evidence.push_back(locate_json(l, spec.if_failed));
          said_failed.push_back(l.c->id);
          break;
        case CallReading::ok:
          a.evidence.push_back(locate_json(l, spec.if_ok));
          said_ok.push_back(l.c->id);
          break;
        default:
          a.evidence.push_back(locate_json(l, c.why));
          unusable.push_back(l.c->id + ": " + c.why);
      }
    }
  auto list = [](const std::vector<std::string>& v) {
    std::string s;
    for (const auto& x : v) s += (s.empty() ? "" : ", ") + x;
    return s;
  };
  if (!said_failed.empty() && !said_ok.empty()) {
    r.state = Role::disagree;
    r.reason = std::string(spec.name) + ": failed in " + list(said_failed) + ", succeeded in " + list(said_ok);
  } else if (!said_failed.empty()) {
    r.state = Role::failed;
  } else if (!said_ok.empty()) {
    r.state = Role::ok;
  } else {
    r.reason = std::string(spec.name) + ": " +
               (unusable.empty() ? "no case of this fault class observed it" : list(unusable));
  }
  return r;
}

// Whether the role decided; if not, the axis is unknown or disagree, with the reason.
bool decided(const Role& r, AxisResult& a) {
  if (r.state == Role::failed || r.state == Role::ok) return true;
  a.value = r.state == Role::disagree ? "disagree" : "unknown";
  a.reason = r.reason;
  return false;
}

AxisResult unknown(AxisResult a, std::string reason) {
  a.value = "unknown";
  a.reason = std::move(reason);
  return a;
}

const RoleSpec kFirst{"the writer's fsync after the failure", {"report.first"},
                      "the writer's fsync after the failure reported it",
                      "the writer's fsync after the failure returned success"};
const RoleSpec kAgain{"the writer's next fsync, device still failing", {"report.again"},
                      "the writer's next fsync, device still failing, failed again",
                      "the writer's next fsync, device still failing, succeeded"};
const RoleSpec kAfterRepair{"the writer's fsync after repair", {"report.after_heal", "fate.fsync_after_heal"},
                            "after repair the writer's fsync still failed",
                            "after repair the writer's fsync succeeded"};
const RoleSpec kReopen{"an fsync after close and reopen", {"close.reopen_fsync"},
                       "after close and reopen, fsync still failed",
                       "after close and reopen, fsync succeeded"};
const RoleSpec kOther{"a second descriptor open at the failure", {"report.other_fd"},
                      "a second descriptor open at the failure was told",
                      "a second descriptor open at the failure was not told"};
const RoleSpec kUnseen{"a descriptor opened after an unseen error", {"report.unseen_new_fd"},
                       "a descriptor opened after an unseen error was told",
                       "a descriptor opened after an unseen error was not told"};

// After repair the writer's fsync succeeded: did the data reach the disk?
// Read from the cases whose post-repair fsync decided.
std::optional<bool> persisted_after_repair(const TargetView& v, const std::string& cls, AxisResult& a) {
  std::optional<bool> out;
  for (const char* disk : {"r441.disk", "single.disk"})
    for (const auto& l : v.probes(disk, cls)) {
      if (!returned(*l.obs) || failed(*l.obs) || !l.obs->data) continue;
      const bool there = l.obs->data->tag == case_tags(*l.c).new_tag;
      a.evidence.push_back(locate_json(l, there ? "stable storage held the new data afterwards"
                                                : "stable storage did not hold the new data afterwards"));
      if (out && *out != there) return std::nullopt;
      out = there;
    }
  return out;
}

}  // namespace

AxisResult classify_reporting(const TargetView& v, const std::string& cls) {
  AxisResult a;
  const Role first = read_role(v, cls, kFirst, a);
  if (!decided(first, a)) return a;
  const Role again = read_role(v, cls, kAgain, a);
  if (!decided(again, a)) return a;
  if (first.state == Role::ok) {
    if (again.state == Role::failed) {
      a.value = "deferred";
      return a;
    }
    bool fired = false;
    for (const auto& l : v.probes("report.first", cls)) fired = fired || v.fault_fired(l.c->id);
    if (!fired)
      return unknown(a, "the injector failed no write in the cases that ask: there was nothing to report");
    a.value = "silent";
    return a;
  }
  if (again.state == Role::failed) {
    const Role after = read_role(v, cls, kAfterRepair, a);
    if (!decided(after, a)) return a;
    if (after.state == Role::ok) {
      const auto persisted = persisted_after_repair(v, cls, a);
      if (!persisted)
        return unknown(a, "after repair the fsync succeeded, but no read-back (or disagreeing ones) says "
                          "whether the data reached the disk");
      if (!*persisted)
        return unknown(a, "reported while the device failed, then success after repair although the data "
                          "never reached the disk: no reporting value fits (see recovery)");
      a.value = "until-persisted";
      return a;
    }
    const Role reopen = read_role(v, cls, kReopen, a);
    if (!decided(reopen, a)) {
      if (reopen.state == Role::none)
        a.reason = "fsync still fails after repair, but no close and reopen was observed to tell "
                   "sticky-until-close (" + reopen.reason + ")";
      return a;
    }
    if (reopen.state == Role::failed)
      return unknown(a, "fsync fails after repair and on a descriptor reopened after close: not "
                        "sticky-until-close, and no other reporting value fits");
    a.value = "sticky-until-close";
    return a;
  }
  const Role other = read_role(v, cls, kOther, a);
  if (!decided(other, a)) return a;
  if (other.state == Role::ok) {
    a.value = "first-caller";
    return a;
  }
  const Role unseen = read_role(v, cls, kUnseen, a);
  if (!decided(unseen, a)) {
    if (unseen.state == Role::none) a.reason = "once-per-fd or once-per-fd+unseen: " + unseen.reason;
    return a;
  }
  a.value = unseen.state == Role::failed ? "once-per-fd+unseen" : "once-per-fd";
  return a;
}

}  // namespace syncprobe::analysis
