// Page fate, recovery, fs reaction and cross-fd: each case of a fault class
// that measures the axis gives a value (or says why it cannot), and the
// values are cross-checked (combine). The reporting axis is in reporting.cpp.
#include <algorithm>
#include <set>

#include "axes.h"
#include "syncprobe/errno_names.h"

namespace syncprobe::analysis {
namespace {

AxisResult unknown_because(std::string reason) {
  AxisResult a;
  a.reason = std::move(reason);
  return a;
}

// Why a read cannot show a page's content, or "" when it can.
std::string unreadable(const StepObservation& o) {
  if (o.result.hung) return "the read hung";
  if (harness_error(o)) return "syncprobe could not carry out the read (" + harness_origin(o) + ")";
  if (o.result.ret < 0) return "the read failed with " + errno_name(o.result.err) + ": a failed read shows no page";
  if (!o.data) return "the read returned no data";
  return "";
}

AxisResult page_fate_of(const TargetView& v, const Located& cached) {
  AxisResult a;
  const std::string id = cached.c->id;
  const CaseTags tags = case_tags(*cached.c);
  auto dropped = v.probe_in(id, "fate.read_after_drop");
  auto disk = v.probe_in(id, "single.disk");
  if (std::string why = unreadable(*cached.obs); !why.empty()) {
    a.evidence.push_back(locate_json(cached, why));
    a.reason = id + ": " + why;
    return a;
  }
  const std::string c = tag_of(*cached.obs);
  a.evidence.push_back(locate_json(cached, "read right after the failed fsync returned " + c));
  if (c == tags.old_tag) {
    a.value = "reverted";
    return a;
  }
  if (c != tags.new_tag) {
    a.reason = id + ": the read after the failure returned " + c + ", neither the new data nor the old";
    return a;
  }
  if (!dropped) {
    a.reason = id + ": no read after drop_caches";
    return a;
  }
  if (std::string why = unreadable(*dropped->obs); !why.empty()) {
    a.evidence.push_back(locate_json(*dropped, why));
    a.reason = id + ": " + why;
    return a;
  }
  const std::string d = tag_of(*dropped->obs);
  a.evidence.push_back(locate_json(*dropped, "read after drop_caches returned " + d));
  if (d == tags.old_tag) {
    a.value = "clean-kept";
    return a;
  }
  if (d != tags.new_tag) {
    a.reason = id + ": the read after drop_caches returned " + d + ", neither the new data nor the old";
    return a;
  }
  // Still cached after drop_caches: dirty if it was written later, else kept clean.
  if (!disk || !unreadable(*disk->obs).empty()) {
    a.reason = id + ": no read-back of stable storage after repair to tell dirty-retained from clean-kept";
    return a;
  }
  const bool written = tag_of(*disk->obs) == tags.new_tag;
  a.evidence.push_back(locate_json(*disk, written ? "stable storage held the new data after repair"
                                                  : "stable storage never received the new data"));
  a.value = written ? "dirty-retained" : "clean-kept";
  return a;
}

AxisResult recovery_of(const TargetView& v, const Located& retry, const char* disk_probe) {
  AxisResult a;
  const std::string id = retry.c->id;
  auto disk = v.probe_in(id, disk_probe);
  if (!returned(*retry.obs)) {
    const CallReading r = v.read_call(retry);
    a.evidence.push_back(locate_json(retry, r.why));
    a.reason = id + ": the retry after repair did not return (" + r.why + ")";
    return a;
  }
  const bool retry_failed = failed(*retry.obs);
  a.evidence.push_back(locate_json(retry, retry_failed ? "the retry after repair failed"
                                                       : "the retry after repair succeeded"));
  if (!disk) {
    a.reason = id + ": no read-back of stable storage after the retry";
    return a;
  }
  if (std::string why = unreadable(*disk->obs); !why.empty()) {
    a.evidence.push_back(locate_json(*disk, why));
    a.reason = id + ": " + why;
    return a;
  }
  const bool persisted = tag_of(*disk->obs) == case_tags(*retry.c).new_tag;
  a.evidence.push_back(locate_json(*disk, persisted ? "the data reached stable storage"
                                                    : "the data never reached stable storage"));
  a.value = persisted ? "recovers" : retry_failed ? "lost-reported" : "lost-silent";
  return a;
}

// The append case (append-after-failed-writeback) is evidence of loss only.
// After the heal its second append re-dirties the block the first append
// failed in, so a platform that dropped the failed pages still writes the
// first append again: every range reading back shows nothing about retrying
// after repair, and gives no value. A range missing after the fsync that
// covered it is loss: lost-silent when that fsync returned 0, lost-reported
// when it failed.
AxisResult append_loss_of(const TargetView& v, const Located& claim) {
  AxisResult a;
  const std::string id = claim.c->id;
  if (!returned(*claim.obs)) {
    a.evidence.push_back(locate_json(claim, v.read_call(claim).why));
    a.reason = id + ": the fsync after the second append did not return";
    return a;
  }
  const bool claim_failed = failed(*claim.obs);
  a.evidence.push_back(locate_json(claim, claim_failed ? "the fsync after the second append failed"
                                                       : "the fsync after the second append returned 0"));
  static const std::pair<const char*, const char*> kRanges[] = {
      {"append.disk_a", "A"}, {"append.disk_b_failed_block", "B"}, {"append.disk_b_next_block", "B"}};
  bool lost = false;
  for (const auto& [probe, want] : kRanges) {
    auto disk = v.probe_in(id, probe);
    if (!disk) continue;
    if (std::string why = unreadable(*disk->obs); !why.empty()) {
      a.evidence.push_back(locate_json(*disk, why));
      continue;
    }
    const std::string held = tag_of(*disk->obs);
    if (held == want) continue;
    a.evidence.push_back(locate_json(*disk, std::string("stable storage held ") + (held.empty() ? "nothing" : held) +
                                                " where the fsync covered " + want));
    lost = true;
  }
  if (lost) a.value = claim_failed ? "lost-reported" : "lost-silent";
  else a.reason = id + ": no range was found lost (this case shows loss only; see docs/classifier.md)";
  return a;
}

// The most severe state one case drove the filesystem into, or no value.
AxisResult fs_reaction_of(const TargetView& v, const CaseResult& r) {
  static const char* kOrder[] = {"continues", "read-only", "shutdown", "hangs"};
  int worst = -1;
  AxisResult a;
  auto note = [&](int kind, const Located& l, const std::string& meaning) {
    a.evidence.push_back(locate_json(l, meaning));
    worst = std::max(worst, kind);
  };
  for (const auto& l : v.all()) {
    if (l.result != &r) continue;
    const StepObservation& o = *l.obs;
    const bool healthy_write = l.step->probe == "fs.healthy_write";
    if (o.result.hung) {
      note(3, l, healthy_write ? "writing a new file after repair hung" : "the step did not return: hung");
    } else if (failed(o) && o.result.err == EROFS) {
      note(1, l, healthy_write ? "writing a new file after repair was refused: read-only"
                               : "EROFS: the filesystem turned read-only");
    } else if (failed(o) && is_fs_state_errno(o.result.err)) {
      note(2, l, errno_name(o.result.err) + ": the filesystem shut down");
    } else if (healthy_write && failed(o)) {
      note(2, l, "writing a new file after repair failed with " + errno_name(o.result.err) +
                     ": the filesystem shut down");
    } else if (healthy_write && returned(o)) {
      note(0, l, "a new file could be written after repair");
    }
  }
  if (r.status == CaseStatus::hung && worst < 3) {
    a.reason = r.case_id + " hung: " + r.reason;
    worst = 3;
  }
  if (worst >= 0) a.value = kOrder[worst];
  return a;
}

AxisResult cross_fd_of(const TargetView& v, const Located& read) {
  AxisResult a;
  const std::string id = read.c->id;
  auto sync = v.probe_in(id, "cross.b_fsync");
  auto disk = v.probe_in(id, "cross.disk");
  if (std::string why = unreadable(*read.obs); !why.empty()) {
    a.evidence.push_back(locate_json(read, why));
    a.reason = id + ": the second process's read: " + why;
    return a;
  }
  const std::string seen = tag_of(*read.obs);
  a.evidence.push_back(locate_json(read, "the second process read " + seen));
  if (!sync) return unknown_because(id + ": the second process never fsynced");
  if (!returned(*sync->obs)) {
    a.evidence.push_back(locate_json(*sync, v.read_call(*sync).why));
    a.reason = id + ": the second process's fsync did not return";
    return a;
  }
  if (failed(*sync->obs)) {
    a.evidence.push_back(locate_json(*sync, "the second process's fsync failed"));
    a.value = "safe";
    return a;
  }
  a.evidence.push_back(locate_json(*sync, "the second process's fsync succeeded"));
  if (!disk || !unreadable(*disk->obs).empty()) {
    a.reason = id + ": no read-back of stable storage after the second process's fsync";
    return a;
  }
  const std::string held = tag_of(*disk->obs);
  a.evidence.push_back(locate_json(*disk, "stable storage held " + held + " where the second process read " + seen));
  a.value = held == seen ? "safe" : "corrupts";
  return a;
}

}  // namespace

AxisResult combine(const std::vector<AxisResult>& per_case, const std::string& none_reason) {
  AxisResult out;
  std::set<std::string> values;
  std::string said, reasons;
  for (const auto& r : per_case) {
    for (const auto& e : r.evidence) out.evidence.push_back(e);
    if (r.value != "unknown") {
      values.insert(r.value);
      const std::string who = r.evidence.empty() ? std::string("?") : r.evidence[0].value("case", "?");
      said += (said.empty() ? "" : "; ") + who + " says " + r.value;
    } else if (!r.reason.empty()) {
      reasons += (reasons.empty() ? "" : "; ") + r.reason;
    }
  }
  if (values.size() == 1) {
    out.value = *values.begin();
  } else if (values.size() > 1) {
    out.value = "disagree";
    out.reason = "the cases disagree: " + said;
  } else {
    out.reason = reasons.empty() ? none_reason : reasons;
  }
  return out;
}

AxisResult classify_page_fate(const TargetView& v, const std::string& cls) {
  std::vector<AxisResult> per_case;
  for (const auto& l : v.probes("fate.read_cached", cls)) per_case.push_back(page_fate_of(v, l));
  return combine(per_case, "no case of this fault class reads the page after the failure");
}

AxisResult classify_recovery(const TargetView& v, const std::string& cls) {
  // (retry fsync after repair, read_back afterwards): every pair the catalogue has.
  static const std::pair<const char*, const char*> kPairs[] = {
      {"recovery.retry", "recovery.disk"},   {"fate.fsync_after_heal", "single.disk"},
      {"thin.retry", "thin.disk"},           {"report.after_heal", "r441.disk"},
  };
  std::vector<AxisResult> per_case;
  for (const auto& [retry, disk] : kPairs)
    for (const auto& l : v.probes(retry, cls)) per_case.push_back(recovery_of(v, l, disk));
  for (const auto& l : v.probes("append.claim", cls)) per_case.push_back(append_loss_of(v, l));
  return combine(per_case, "no case of this fault class retries after repair and reads the disk back");
}

AxisResult classify_fs_reaction(const TargetView& v, const std::string& cls) {
  std::vector<AxisResult> per_case;
  for (const CaseResult* r : v.cases_of(cls)) {
    AxisResult a = fs_reaction_of(v, *r);
    if (a.value != "unknown" || !a.evidence.empty()) per_case.push_back(std::move(a));
  }
  return combine(per_case, "no case of this fault class writes a new file after repair, and none showed "
                           "EROFS, a shutdown or a hang");
}

AxisResult classify_cross_fd(const TargetView& v, const std::string& cls) {
  std::vector<AxisResult> per_case;
  for (const auto& l : v.probes("cross.b_read", cls)) per_case.push_back(cross_fd_of(v, l));
  return combine(per_case, "no case of this fault class has a second process read the failed data");
}

}  // namespace syncprobe::analysis
