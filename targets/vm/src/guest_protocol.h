#pragma once
// What travels between the host and the guest runner. The input disk holds
// one JSON document (cases, targets, step timeout), NUL-terminated and padded
// to 4 KiB; the output disk collects one JSON line per event ("hello",
// "result", "done", "fatal"), each flushed as it is written, so a guest that
// is killed still leaves every result it finished.
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "syncprobe/case.h"
#include "syncprobe/filesystems.h"
#include "syncprobe/observation.h"

namespace syncprobe::vm {

struct GuestTarget {
  std::string name;        // "vm:6.12:ext4:data=journal"
  FilesystemSpec fs;       // its entry of data/filesystems.toml
};

struct GuestInput {
  std::vector<Case> cases;
  std::vector<GuestTarget> targets;
  int step_timeout_ms = 20000;
};

// The input disk's bytes.
std::string encode_input(const GuestInput& in);
// Parses the input disk's text (up to its NUL); throws on malformed input.
GuestInput decode_input(const std::string& text);

struct GuestOutput {
  std::string kernel;                // from "hello"
  std::vector<CaseResult> results;
  bool done = false;                 // the runner reached its end
  std::string fatal;                 // the runner's own failure, if any
};
// Reads the output lines; lines that are not JSON (a torn last write) are skipped.
GuestOutput decode_output(const std::vector<std::string>& lines);

std::string hello_line(const std::string& kernel);
std::string result_line(const CaseResult& r);
std::string done_line();
std::string fatal_line(const std::string& error);

// What a VM target on `fs` can do (the host skips cases before the boot, the
// guest checks again): what the host's FUSE block device storage offers on
// that filesystem, thin pools from device-mapper; no programs (app steps).
std::set<std::string> vm_capabilities(const FilesystemSpec& fs);

}  // namespace syncprobe::vm
