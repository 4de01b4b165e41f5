// The control protocol: requests a mount answers (MountedFs::handle) and the
// client side (control()). One JSON object per line each way.
//
//   {"op":"fault","io":"write","path":"f","offset":0,"length":4096,"errno":"EIO","count":1}
//       "where": "data" (default with a path) | "metadata" | "journal" | "free" | "device"
//       (default without a path); "mode": "error" (default) | "drop"
//   {"op":"heal"}  {"op":"grow","bytes":N}  {"op":"power-cut"}  {"op":"drop-caches"}
//   {"op":"writeback"}  {"op":"remount"}  {"op":"sync"}  {"op":"status"}
//   {"op":"settle","open":N}: waits until at most N descriptions are open
//   {"op":"thin","headroom":N,"when_full":"error"}  {"op":"memory-limit","bytes":N}
//   {"op":"cache-limit","bytes":N}  {"op":"shutdown","flush":"sync|log|none"}
//   {"op":"read-back","path":"f","offset":N,"length":N} -> {"ok":true,"ret":N,"hex":"..."}
// Replies: {"ok":true,...} or {"ok":false,"error":"why"}.
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <ostream>
#include <thread>

#include "mounted_fs.h"
#include "syncprobe/errno_names.h"
#include "syncprobe/refmount.h"
#include "socket_path.h"

namespace syncprobe::refmount {
namespace {

nlohmann::json failed(const std::string& why) { return {{"ok", false}, {"error", why}}; }

nlohmann::json outcome(const SysResult& r) {
  if (r.ok()) return {{"ok", true}};
  if (r.hung) return failed("the model did not complete the operation (hang)");
  return failed(errno_name(r.err));
}

const char* state_name(ref::FsReaction s) {
  switch (s) {
    case ref::FsReaction::continues: return "continues";
    case ref::FsReaction::read_only: return "read-only";
    case ref::FsReaction::shutdown: return "shutdown";
    case ref::FsReaction::force_unmount: return "force-unmount";
  }
  return "?";
}

}  // namespace

nlohmann::json MountedFs::handle(const nlohmann::json& request) {
  if (!request.is_object() || !request.contains("op") || !request["op"].is_string())
    return failed("a request is a JSON object with an \"op\"");
  const std::string op = request["op"];
  std::unique_lock l(mu_);
  // close(2) returns before the kernel sends FUSE's release: give the
  // descriptions that processes closed (at most 1 s) to go.
  auto settle = [&](uint64_t open) {
    for (int i = 0; i < 100 && fs_.stats().open_files > open; ++i) {
      l.unlock();
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
      l.lock();
    }
    return fs_.stats().open_files <= open;
  };
  if (op == "remount" || op == "read-back") settle(0);
  try {
    if (op == "status") return status();
    if (op == "settle") {
      const bool ok = settle(request.at("open").get<uint64_t>());
      nlohmann::json out{{"ok", ok}, {"open_files", fs_.stats().open_files}};
      if (!ok) out["error"] = "descriptions still open after 1 s";
      return out;
    }
    if (op == "fault") return install_fault(request);
    if (op == "heal") return outcome(fs_.heal());
    if (op == "grow") {
      if (!fs_.device().capacity_blocks()) return failed("the mount has no --size to grow");
      nlohmann::json out = outcome(fs_.grow(request.at("bytes").get<uint64_t>()));
      out["capacity_blocks"] = *fs_.device().capacity_blocks();
      return out;
    }
    if (op == "power-cut") return outcome(fs_.power_cut());
    if (op == "drop-caches") return outcome(fs_.drop_caches());
    if (op == "writeback") return outcome(fs_.writeback());
    if (op == "remount") return outcome(fs_.remount());
    if (op == "sync") return outcome(fs_.sync());
    if (op == "memory-limit") return outcome(fs_.memory_limit(request.at("bytes").get<uint64_t>()));
    if (op == "cache-limit") return outcome(fs_.cache_limit(request.at("bytes").get<uint64_t>()));
    if (op == "thin") {
      const std::string when = request.value("when_full", "error");
      if (when != "error" && when != "queue") return failed("when_full: error or queue");
      SysResult r = fs_.thin_limit(request.at("headroom").get<uint64_t>(),
                                   when == "queue" ? FaultMode::hang : FaultMode::error);
      nlohmann::json out = outcome(r);
      out["allocated_blocks"] = fs_.device().allocated_blocks();
      out["capacity_blocks"] = *fs_.device().capacity_blocks();
      return out;
    }
    if (op == "shutdown") {
      const std::string how = request.value("flush", "sync");
      const ref::ShutdownFlush f = how == "log" ? ref::ShutdownFlush::log
                                   : how == "none" ? ref::ShutdownFlush::none : ref::ShutdownFlush::sync;
      ref::ShutdownReport report;
      nlohmann::json out = outcome(fs_.shutdown(f, report));
      if (report.sync) out["sync"] = describe(*report.sync);
      if (report.log_commit) out["log_commit"] = *report.log_commit ? errno_name(*report.log_commit) : "0";
      return out;
    }
    if (op == "read-back") {
      ref::ReadBack rb = fs_.read_back(request.at("path").get<std::string>(), request.value("offset", uint64_t(0)),
                                       request.value("length", uint64_t(0)));
      if (!rb.result.ok()) return outcome(rb.result);
      static const char* digits = "0123456789abcdef";
      std::string hex;
      hex.reserve(rb.data.size() * 2);
      for (std::byte b : rb.data) {
        hex += digits[uint8_t(b) >> 4];
        hex += digits[uint8_t(b) & 15];
      }
      return {{"ok", true}, {"ret", rb.result.ret}, {"hex", hex}};
    }
  } catch (const nlohmann::json::exception& e) {
    return failed(std::string("bad request: ") + e.what());
  }
  return failed("unknown op '" + op + "' (fault, heal, grow, power-cut, drop-caches, writeback, remount, "
                "sync, thin, memory-limit, cache-limit, shutdown, read-back, settle, status)");
}

nlohmann::json MountedFs::install_fault(const nlohmann::json& q) {
  ref::FaultPlace place;
  const std::string path = q.value("path", "");
  const std::string where = q.value("where", path.empty() ? "device" : "data");
  if (where == "data") place.where = ref::FaultPlace::Where::data;
  else if (where == "metadata") place.where = ref::FaultPlace::Where::metadata;
  else if (where == "journal") place.where = ref::FaultPlace::Where::journal;
  else if (where == "free") place.where = ref::FaultPlace::Where::free;
  else if (where == "device") place.where = ref::FaultPlace::Where::device;
  else return failed("where '" + where + "': data, metadata, journal, free or device");
  if (place.where == ref::FaultPlace::Where::data && path.empty()) return failed("a data fault needs a path");
  place.path = path;
  place.offset = q.value("offset", uint64_t(0));
  place.length = q.value("length", uint64_t(0));
  FaultRule rule;
  const auto op = fault_op_from_string(q.value("io", "write"));
  if (!op) return failed("io '" + q.value("io", "") + "': write, read or flush");
  rule.op = *op;
  const auto mode = fault_mode_from_string(q.value("mode", "error"));
  if (!mode || *mode == FaultMode::hang)
    return failed("mode '" + q.value("mode", "") + "': error or drop (a hang would block the mount)");
  rule.mode = *mode;
  const auto err = errno_from_name(q.value("errno", "EIO"));
  if (!err || *err <= 0) return failed("errno '" + q.value("errno", "") + "' is not an errno name");
  rule.err = *err;
  if (q.contains("count")) rule.count = q["count"].get<uint32_t>();
  FaultRule got;
  if (SysResult r = fs_.fault(place, rule, got); !r.ok())
    return failed(r.err == ENOENT ? "no file '" + path + "' in the mount" : errno_name(r.err));
  auto ranges = nlohmann::json::array();
  for (const auto& x : got.ranges) ranges.push_back({x.offset, x.length});
  nlohmann::json installed{{"layer", "reference"}, {"io", std::string(to_string(got.op))},
                           {"mode", std::string(to_string(got.mode))}, {"ranges", ranges},
                           {"invert", got.invert}};
  if (got.mode == FaultMode::error) installed["errno"] = errno_name(got.err);
  if (got.count) installed["count"] = *got.count;
  if (log_) *log_ << "syncprobe mount: fault installed " << installed.dump() << std::endl;
  return {{"ok", true}, {"fault", installed}};
}

nlohmann::json MountedFs::status() {
  const ref::CacheStats st = fs_.stats();
  nlohmann::json s{{"ok", true},
                   {"policy", policy()},
                   {"state", state_name(fs_.state())},
                   {"layer", "reference"},
                   {"injector_layer", fs_.layer()},
                   {"cached_pages", st.cached_pages},
                   {"dirty_pages", st.dirty_pages},
                   {"error_pages", st.error_pages},
                   {"error_bytes_held", st.error_bytes_held},
                   {"discarded_error_pages", st.discarded_error_pages},
                   {"writeback_errors", st.writeback_errors},
                   {"evicted_pages", st.evicted_pages},
                   {"open_files", st.open_files},
                   {"device_writes", st.device_writes},
                   {"device_flushes", st.device_flushes},
                   {"frame_bytes_reserved", st.frame_bytes_reserved},
                   {"injected_faults", fs_.injected_hits()},
                   {"faults_logged", faults_logged_},
                   {"hung_calls", hung_calls_},
                   {"recent_faults", nlohmann::json(recent_faults_)}};
  if (auto cap = fs_.device().capacity_blocks()) {
    s["capacity_bytes"] = *cap * ref::kBlockSize;
    s["allocated_bytes"] = fs_.device().allocated_blocks() * ref::kBlockSize;
  }
  return s;
}

std::optional<nlohmann::json> control(const std::string& mountpoint, const nlohmann::json& request,
                                      std::string& error) {
  char path[4096] = {};  // the socket's path: any length (socket_path.h)
  const ssize_t n = ::getxattr(mountpoint.c_str(), kControlXattr, path, sizeof path - 1);
  if (n <= 0) {
    error = mountpoint + ": not a syncprobe mount (no " + kControlXattr + ": " +
            (n < 0 ? std::strerror(errno) : "empty") + ")";
    return std::nullopt;
  }
  return control_socket(std::string(path, size_t(n)), request, error);
}

std::optional<nlohmann::json> control_socket(const std::string& socket_path, const nlohmann::json& request,
                                             std::string& error) {
  const char* path = socket_path.c_str();
  sockaddr_un addr{};
  int dir_fd = -1;
  if (!refmount_detail::socket_address(socket_path, addr, dir_fd)) {
    error = socket_path + ": " + std::strerror(errno);
    return std::nullopt;
  }
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    error = std::string("socket: ") + std::strerror(errno);
    if (dir_fd >= 0) ::close(dir_fd);
    return std::nullopt;
  }
  std::string reply;
  bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  if (dir_fd >= 0) ::close(dir_fd);
  if (!ok) error = std::string(path) + ": " + std::strerror(errno);
  const std::string line = request.dump() + "\n";
  for (size_t off = 0; ok && off < line.size();) {
    const ssize_t w = ::write(fd, line.data() + off, line.size() - off);
    if (w <= 0) {
      ok = false;
      error = std::string("control socket write: ") + std::strerror(errno);
    } else {
      off += size_t(w);
    }
  }
  while (ok && (reply.empty() || reply.back() != '\n')) {
    char buf[4096];
    const ssize_t r = ::read(fd, buf, sizeof buf);
    if (r <= 0) {
      ok = false;
      error = "the mount closed the control socket without an answer";
    } else {
      reply.append(buf, size_t(r));
    }
  }
  ::close(fd);
  if (!ok) return std::nullopt;
  auto j = nlohmann::json::parse(reply, nullptr, false);
  if (j.is_discarded()) {
    error = "the mount's answer is not JSON: " + reply;
    return std::nullopt;
  }
  return j;
}

}  // namespace syncprobe::refmount
