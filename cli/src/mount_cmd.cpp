// `syncprobe mount` and `syncprobe fault`: the reference mounted through
// FUSE (refmount/), and faults and events sent to it from another process.
#include <cerrno>
#include <cstring>
#include <ostream>
#include <string>

#include <nlohmann/json.hpp>

#include "syncprobe/commands.h"
#include "syncprobe/errno_names.h"
#ifdef SYNCPROBE_HAVE_REFMOUNT
#include "syncprobe/refmount.h"
#endif

namespace syncprobe {
namespace {

// "FILE" or "FILE:OFF+LEN" (bytes; LEN 0 or absent: to the file's end).
bool parse_range(const std::string& spec, std::string& file, uint64_t& off, uint64_t& len, std::string& err) {
  const size_t colon = spec.rfind(':');
  file = spec.substr(0, colon);
  off = len = 0;
  if (colon == std::string::npos) return !file.empty() || (err = "--range: empty file name", false);
  const std::string rest = spec.substr(colon + 1);
  const size_t plus = rest.find('+');
  try {
    size_t used = 0;
    off = std::stoull(rest.substr(0, plus), &used);
    if (used != rest.substr(0, plus).size()) throw std::invalid_argument("");
    if (plus != std::string::npos) {
      len = std::stoull(rest.substr(plus + 1), &used);
      if (used != rest.size() - plus - 1) throw std::invalid_argument("");
    }
  } catch (const std::exception&) {
    err = "--range '" + spec + "': expected FILE or FILE:OFFSET+LENGTH in bytes (e.g. db:4096+8192)";
    return false;
  }
  return true;
}

}  // namespace

int mount_command(const MountCliOptions& o, std::ostream& out, std::ostream& err) {
#ifndef SYNCPROBE_HAVE_REFMOUNT
  (void)o;
  (void)out;
  err << "syncprobe mount: built without libfuse3 (install libfuse3-dev and rebuild)\n";
  return 1;
#else
  if (o.policy.empty() == o.passthrough_dir.empty()) {
    err << "syncprobe mount: give --policy P (syncprobe list policies), or --passthrough DIR for a bare passthrough\n";
    return 2;
  }
  refmount::MountOptions m;
  m.policy = o.policy;
  m.mountpoint = o.mountpoint;
  m.size = o.size;
  m.memory_limit = o.memory_limit;
  m.error_limit = o.error_limit;
  m.preallocate = o.preallocate;
  if (o.max_file_size) m.max_file_bytes = *o.max_file_size;
  m.background = o.background;
  m.passthrough = !o.passthrough_dir.empty();
  m.passthrough_dir = o.passthrough_dir;
  m.control_dir = o.control_dir;
  std::string error;
  const int rc = refmount::run_mount(m, out, error);
  if (rc != 0) err << "syncprobe mount: " << error << "\n";
  return rc;
#endif
}

int fault_command(const FaultCliOptions& o, std::ostream& out, std::ostream& err) {
#ifndef SYNCPROBE_HAVE_REFMOUNT
  (void)o;
  (void)out;
  err << "syncprobe fault: built without libfuse3 (install libfuse3-dev and rebuild)\n";
  return 1;
#else
  nlohmann::json q;
  if (o.action == "fail") {
    q = {{"op", "fault"}, {"io", o.io}, {"mode", o.mode}, {"errno", o.errno_name}};
    if (!errno_from_name(o.errno_name)) {
      err << "syncprobe fault: --errno '" << o.errno_name << "' is not an errno name (EIO, ENOSPC, ...)\n";
      return 2;
    }
    if (!o.range.empty()) {
      std::string file, why;
      uint64_t off = 0, len = 0;
      if (!parse_range(o.range, file, off, len, why)) {
        err << "syncprobe fault: " << why << "\n";
        return 2;
      }
      // A path given through the mount point names the same file.
      std::string mp = o.mountpoint;
      while (mp.size() > 1 && mp.back() == '/') mp.pop_back();
      if (file.rfind(mp + "/", 0) == 0) file = file.substr(mp.size() + 1);
      q["path"] = file;
      q["offset"] = off;
      q["length"] = len;
    }
    if (!o.where.empty()) q["where"] = o.where;
    if (o.count) q["count"] = *o.count;
  } else if (o.action == "grow") {
    if (!o.bytes) {
      err << "syncprobe fault: grow needs --bytes N\n";
      return 2;
    }
    q = {{"op", "grow"}, {"bytes", *o.bytes}};
  } else {
    q = {{"op", o.action}};
  }
  std::string error;
  auto reply = refmount::control(o.mountpoint, q, error);
  if (!reply) {
    err << "syncprobe fault: " << error << "\n";
    return 1;
  }
  if (o.json) out << reply->dump(2) << "\n";
  if (!reply->value("ok", false)) {
    err << "syncprobe fault: the mount refused: " << reply->value("error", std::string("?")) << "\n";
    return 1;
  }
  if (o.json) return 0;
  if (o.action == "fail") {
    out << "fault installed (layer reference): " << (*reply)["fault"].dump() << "\n";
  } else if (o.action == "status") {
    const auto& s = *reply;
    out << "policy " << s["policy"].get<std::string>() << ", filesystem " << s["state"].get<std::string>() << "\n"
        << "pages: " << s["cached_pages"] << " cached, " << s["dirty_pages"] << " dirty, " << s["error_pages"]
        << " in error (" << s["error_bytes_held"] << " bytes held), " << s["discarded_error_pages"]
        << " discarded\n"
        << "faults injected: " << s["injected_faults"] << " (layer reference); writeback errors: "
        << s["writeback_errors"] << "; open files: " << s["open_files"] << "\n";
    for (const auto& f : s["recent_faults"]) out << "  " << f.dump() << "\n";
  } else {
    out << o.action << ": done\n";
  }
  return 0;
#endif
}

}  // namespace syncprobe
