// QEMU's block layer through qemu-img and qemu-io: a preallocated 4 MiB image
// (raw or qcow2), keys are 4 KiB block numbers, values a byte written over
// the whole block. One qemu-io process per action: write then flush, as a
// guest's write and flush reach QEMU; the cache mode is QEMU's (-t).
#include <cstdio>
#include <sstream>

#include "syncprobe/app_driver.h"

namespace syncprobe {
namespace {

constexpr uint64_t kBlock = 4096;

struct Settings {
  std::string format = "raw";
  std::string cache = "writeback";
};

bool parse_variant(const std::string& variant, Settings& s, std::string& error) {
  std::stringstream in(variant);
  std::string item;
  while (std::getline(in, item, ',')) {
    if (item == "raw" || item == "qcow2") s.format = item;
    else if (item == "cache=writeback") s.cache = "writeback";
    else if (item == "cache=none") s.cache = "none";
    else if (!item.empty()) {
      error = "qemu variant item '" + item + "': use raw|qcow2 and cache=writeback|cache=none";
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

  SysResult act(const AppCall& call, const std::string& path, std::chrono::milliseconds timeout,
                nlohmann::json& evidence) const override {
    Settings s;
    std::string error;
    if (!parse_variant(call.variant, s, error)) {
      evidence["error"] = error;
      return SysResult::harness_failure("app driver");
    }
    evidence["format"] = s.format;
    evidence["cache"] = s.cache;
    if (call.action == "init")
      return run_recorded({"qemu-img", "create", "-q", "-f", s.format, "-o", "preallocation=full",
                           path, "4M"},
                          timeout, evidence);
    if (call.action == "check") {
      if (s.format != "qcow2") {
        evidence["consistent"] = true;
        evidence["note"] = "raw images have no metadata to check";
        return SysResult::success(0);
      }
      SysResult r = run_recorded({"qemu-img", "check", "-q", "-f", "qcow2", path}, timeout, evidence);
      evidence["consistent"] = r.ok();
      return r;
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
    const std::vector<std::string> base = {"qemu-io", "-f", s.format, "-t", s.cache};
    if (call.action == "put") {
      auto argv = base;
      argv.insert(argv.end(), {"-c", "write -P " + std::to_string(value) + " " + range, "-c",
                               "flush", path});
      return run_recorded(argv, timeout, evidence);
    }
    auto argv = base;  // get
    argv.insert(argv.end(), {"-c", "read -v " + range, path});
    std::string out;
    SysResult r = run_recorded(argv, timeout, evidence, &out);
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
};

}  // namespace

const AppDriver& qemu_driver() {
  static const QemuDriver d;
  return d;
}

}  // namespace syncprobe
