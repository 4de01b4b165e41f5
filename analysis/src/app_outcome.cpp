#include "syncprobe/app_outcome.h"

#include <map>
#include <set>

namespace syncprobe {
namespace {

using json = nlohmann::json;

struct Put {
  std::string value;
  bool acknowledged = false;
  size_t step = 0;
};

void add(json& list, const std::string& s) {
  for (const auto& x : list)
    if (x == s) return;
  list.push_back(s);
}

// Outcome of one read of `key`, given the puts before it (in order).
std::string judge(const std::vector<Put>& puts, const json& ev) {
  const bool found = ev.value("found", false);
  const std::string read = ev.contains("read") && ev["read"].is_string() ? ev["read"].get<std::string>() : "";
  int last_ack = -1;
  for (size_t i = 0; i < puts.size(); ++i)
    if (puts[i].acknowledged) last_ack = int(i);
  // A failed put after the last acknowledged one whose value is read: FF.
  for (size_t i = size_t(last_ack + 1); i < puts.size(); ++i)
    if (!puts[i].acknowledged && found && read == puts[i].value) return "FF";
  if (last_ack < 0) {
    if (!found) return "failed-absent";
    for (const auto& p : puts)
      if (read == p.value) return "FF";
    return "VC";
  }
  if (!found) return "KNF";
  if (read == puts[size_t(last_ack)].value)
    return size_t(last_ack) + 1 < puts.size() ? "failed-absent" : "acked-present";
  for (int i = last_ack - 1; i >= 0; --i)
    if (read == puts[size_t(i)].value) return puts[size_t(i)].acknowledged ? "OV" : "FF";
  return "VC";
}

// A scan lists every key: a key never put is a corrupted key (KC); each key
// put is judged as a read, and one missing after an acknowledged put is KNF.
void scan(const std::map<std::string, std::vector<Put>>& puts, const json& ev, size_t step,
          json& reads, json& outcomes) {
  const json pairs = ev.value("pairs", json::object());
  for (const auto& [key, value] : pairs.items()) {
    json read = {{"step", step}, {"key", key}, {"read", value}};
    const auto it = puts.find(key);
    const std::string verdict =
        it == puts.end() ? "KC" : judge(it->second, {{"found", true}, {"read", value}});
    read["outcome"] = verdict;
    reads.push_back(read);
    add(outcomes, verdict);
  }
  for (const auto& [key, list] : puts) {
    if (pairs.contains(key)) continue;
    const std::string verdict = judge(list, {{"found", false}});
    reads.push_back({{"step", step}, {"key", key}, {"read", nullptr}, {"outcome", verdict}});
    add(outcomes, verdict);
  }
}

}  // namespace

json app_outcome(const CaseResult& r) {
  json out = json::object();
  std::map<std::string, std::vector<Put>> puts;
  bool faulted = false, active = false;  // a fault happened; it is still in place
  json reads = json::array(), detected = json::array(), outcomes = json::array(), steps = json::array();
  for (const auto& o : r.steps) {
    if (o.op == "fault" || o.op == "thin_limit") {
      faulted = active = true;
      if (o.detail.contains("layer")) out["fault_layer"] = o.detail["layer"];
    }
    // A power cut is over once it happened: the device is back when the
    // filesystem is mounted again, so later reads are judged, not excused.
    if (o.op == "power_cut") {
      faulted = true;
      active = false;
      if (!out.contains("fault_layer")) out["fault_layer"] = "power-cut";
    }
    if (o.op == "heal" || o.op == "grow") active = false;
    if (o.op != "app" || !o.detail.contains("app")) continue;
    const json& ev = o.detail["app"];
    steps.push_back(o.index);
    out["program"] = ev.value("program", "");
    if (!out.contains("variant") || out["variant"] == "") out["variant"] = ev.value("variant", "");
    const std::string action = ev.value("action", "");
    const std::string key = ev.value("key", "");
    if (o.result.harness) {
      out["harness"] = o.error.empty() ? std::string(o.result.harness) : o.error;
      continue;
    }
    const bool crashed = ev.value("exit_status", 0) < 0 && !o.result.hung;
    if (o.result.hung) add(detected, "hang");
    else if (crashed) add(detected, "crash");
    // A server that logged PANIC stopped itself rather than go on.
    if (ev.value("panic", false) ||
        (ev.contains("before_restart") && ev["before_restart"].value("panic", false)))
      add(detected, "panic");
    if (action == "put") {
      puts[key].push_back(Put{ev.value("value", ""), o.result.ok(), o.index});
      // A put refused after the heal: the program will not go on (QEMU after a failed flush).
      if (!o.result.ok() && !crashed && !o.result.hung)
        add(detected, faulted && !active ? "refusal to continue" : "error to the client");
      continue;
    }
    if (action == "checkpoint") {
      if (!o.result.ok() && !crashed && !o.result.hung) add(detected, "error to the client");
      continue;
    }
    if (action == "get" || action == "check" || action == "scan" || action == "restart") {
      const bool refused = !o.result.ok() || (action == "check" && !ev.value("consistent", false));
      if (refused && faulted) {
        // While the fault is in place a refusal is how the failure shows;
        // after the heal, a program that still cannot read refuses to start.
        add(detected, "refusal to continue");
        const std::string verdict = active ? "refused-while-faulty" : "refuses-start";
        if (!active) add(outcomes, verdict);
        reads.push_back({{"step", o.index}, {"action", action}, {"key", key}, {"outcome", verdict}});
        continue;
      }
      if (action == "check" || action == "restart") continue;
      if (action == "scan") {
        scan(puts, ev, o.index, reads, outcomes);
        continue;
      }
      json read = {{"step", o.index}, {"key", key}, {"read", ev.value("read", json())}};
      const std::string verdict = judge(puts[key], ev);
      read["outcome"] = verdict;
      reads.push_back(read);
      add(outcomes, verdict);
    }
  }
  if (steps.empty()) return json::object();
  out["detected"] = detected;
  out["reads"] = reads;
  out["outcomes"] = outcomes;
  out["steps"] = steps;
  return out;
}

json classify_apps(const std::map<std::string, std::map<std::string, CaseResult>>& results) {
  json rows = json::array();
  for (const auto& [target, cases] : results)
    for (const auto& [id, r] : cases) {
      json o = app_outcome(r);
      // A case skipped for a missing app:<program> is a row too, with its reason.
      if (o.empty() && (r.status != CaseStatus::skipped || r.reason.find("app:") == std::string::npos))
        continue;
      o["target"] = target;
      o["case"] = id;
      o["status"] = std::string(to_string(r.status));
      if (!r.reason.empty()) o["reason"] = r.reason;
      rows.push_back(o);
    }
  return rows;
}

}  // namespace syncprobe
