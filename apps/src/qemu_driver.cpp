// QEMU's block layer through qemu-img and qemu-io: a preallocated 4 MiB image
// (raw or qcow2), keys are 4 KiB block numbers, values a byte written over
// the whole block. One qemu-io process per action, or with variant "keep" one
// kept running from init to the end (restart: a new one); a put is write then
// flush (kept: a FUA write, the same two requests), as a guest's write and
// flush reach QEMU; the cache mode is QEMU's (-t).
#include <cstdio>
#include <sstream>

#include "qemu_io_session.h"
#include "syncprobe/app_driver.h"

namespace syncprobe {
namespace {

constexpr uint64_t kBlock = 4096;

struct Settings {
  std::string format = "raw";
  std::string cache = "writeback";
  bool keep = false;  // one qemu-io process for the whole case
};

bool parse_variant(const std::string& variant, Settings& s, std::string& error) {
  std::stringstream in(variant);
  std::string item;
  while (std::getline(in, item, ',')) {
    if (item == "raw" || item == "qcow2") s.format = item;
    else if (item == "cache=writeback") s.cache = "writeback";
    else if (item == "cache=none") s.cache = "none";
    else if (item == "keep") s.keep = true;
    else if (!item.empty()) {
      error = "qemu variant item '" + item + "': use raw|qcow2, cache=writeback|cache=none, keep";
      return false;
    }
  }
  return true;
}

// Every byte of qemu-io's `read -v` hex dump ("00000000:  aa aa ...  ....").
std::vector<int> dumped_bytes(const std::string& out) {
  std::vector<int> bytes;
  std::stringstream in(out);
  std::string line;
  while (std::getline(in, line)) {
    const auto colon = line.find(':');
    if (colon != 8) continue;
    std::stringstream fields(line.substr(colon + 1, 3 * 16 + 1));
    std::string hex;
    while (fields >> hex)
      if (hex.size() == 2) bytes.push_back(int(std::stoul(hex, nullptr, 16)));
  }
  return bytes;
}

class QemuDriver final : public AppDriver {
 public:
  std::string_view name() const override { return "qemu"; }
  std::vector<std::string> programs() const override { return {"qemu-img", "qemu-io"}; }

  SysResult act(const AppCall& call, AppSession& session, const std::string& path,
                nlohmann::json& evidence) const override {
    Settings s;
    std::string error;
    if (!parse_variant(call.variant, s, error)) {
      evidence["error"] = error;
      return SysResult::harness_failure("app driver");
    }
    evidence["format"] = s.format;
    evidence["cache"] = s.cache;
    const std::vector<std::string> base = {"qemu-io", "-f", s.format, "-t", s.cache};
    if (call.action == "init") {
      SysResult r = session.run_program({"qemu-img", "create", "-q", "-f", s.format, "-o",
                                         "preallocation=full", path, "4M"},
                                        evidence);
      if (!r.ok() || !s.keep) return r;
      return start_kept(session, base, path, evidence);
    }
    auto* kept = dynamic_cast<QemuIoSession*>(session.server(path));
    if (s.keep && !kept) {
      evidence["error"] = "no qemu-io runs on " + path + ": the case must start with action = \"init\"";
      return SysResult::harness_failure("app driver");
    }
    if (s.keep && call.action == "restart") {
      const std::string note = kept->stop(false);
      if (!note.empty()) evidence["stop_note"] = note;
      return start_kept(session, base, path, evidence);
    }
    if (call.action == "check") {
      if (s.format != "qcow2") {
        evidence["consistent"] = true;
        evidence["note"] = "raw images have no metadata to check";
        return SysResult::success(0);
      }
      // -U: a kept qemu-io holds the image's lock; the check only reads.
      std::vector<std::string> argv = {"qemu-img", "check", "-q", "-f", "qcow2", path};
      if (s.keep) argv.insert(argv.begin() + 2, "-U");
      SysResult r = session.run_program(argv, evidence);
      evidence["consistent"] = r.ok();
      return r;
    }
    if (call.action == "restart") {
      evidence["note"] = "every qemu-io action is a new process: nothing keeps running";
      return SysResult::success(0);
    }
    if (call.action == "scan" || call.action == "checkpoint") {
      evidence["error"] = "qemu has no '" + call.action + "' action (keys are blocks: use get; "
                          "a lone flush reports nothing in qemu-io: a put is the write and its flush)";
      return SysResult::harness_failure("app driver");
    }
    uint64_t block = 0;
    int value = 0;
    try {
      block = std::stoull(call.key);
      if (call.action == "put") value = std::stoi(call.value, nullptr, 0);
    } catch (const std::exception&) {
      evidence["error"] = "qemu keys are block numbers and values bytes (1..255)";
      return SysResult::harness_failure("app driver");
    }
    if (block >= (4u << 20) / kBlock || (call.action == "put" && (value < 1 || value > 255))) {
      evidence["error"] = "qemu key must be a block below 1024 and value a byte 1..255";
      return SysResult::harness_failure("app driver");
    }
    const std::string range = std::to_string(block * kBlock) + " " + std::to_string(kBlock);
    if (call.action == "put" && s.keep)
      // A FUA write (-f): QEMU writes, then flushes, and prints the flush's
      // failure as the write's; a lone `flush` command prints nothing.
      return kept->run({"write -f -P " + std::to_string(value) + " " + range}, evidence);
    if (call.action == "put") {
      auto argv = base;
      argv.insert(argv.end(), {"-c", "write -P " + std::to_string(value) + " " + range, "-c",
                               "flush", path});
      return session.run_program(argv, evidence);
    }
    auto argv = base;  // get
    argv.insert(argv.end(), {"-c", "read -v " + range, path});
    std::string out;
    SysResult r = s.keep ? kept->run({"read -v " + range}, evidence, &out)
                         : session.run_program(argv, evidence, &out);
    if (!r.ok()) return r;
    const auto bytes = dumped_bytes(out);
    if (bytes.size() != kBlock) {
      evidence["error"] = "qemu-io printed " + std::to_string(bytes.size()) + " bytes, not 4096";
      return SysResult::harness_failure("app driver");
    }
    evidence["output"] = out.substr(0, 400);  // the dump itself is summarised by `read`
    bool uniform = true;
    for (int b : bytes) uniform = uniform && b == bytes.front();
    evidence["found"] = true;
    evidence["read"] = uniform ? std::to_string(bytes.front()) : std::string("mixed");
    return r;
  }

 private:
  // One qemu-io for the rest of the case (under the process injector, whose
  // later faults reach it with fiu-ctrl).
  static SysResult start_kept(AppSession& session, std::vector<std::string> argv,
                              const std::string& path, nlohmann::json& evidence) {
    argv.push_back(path);
    if (auto* injector = session.process_injector()) argv = injector->command(argv);
    evidence["started"] = argv;
    std::string error;
    auto io = QemuIoSession::start(argv, session, error);
    if (!io) {
      evidence["error"] = error;
      return SysResult::harness_failure("app driver");
    }
    session.keep(path, std::move(io));
    return SysResult::success(0);
  }
};

}  // namespace

const AppDriver& qemu_driver() {
  static const QemuDriver d;
  return d;
}

}  // namespace syncprobe
