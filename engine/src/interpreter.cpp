#include "syncprobe/interpreter.h"

#include <chrono>
#include <map>
#include <string_view>

#include "syncprobe/errno_names.h"
#include "syncprobe/interrupt.h"
#include "syncprobe/tag.h"

namespace syncprobe {
namespace {

struct Binding {
  std::string proc;
  int fd = -1;
};

OpenFlags open_flags(const Step& s) {
  OpenFlags f;
  for (const auto& name : s.list_args("flags")) {
    if (name == "create") f.create = true;
    else if (name == "nocreate") f.create = false;
    else if (name == "truncate") f.truncate = true;
    else if (name == "direct") f.direct = true;
    else if (name == "sync") f.sync = true;
    else if (name == "dsync") f.dsync = true;
    else if (name == "rdonly") f.read_only = true;
    else if (name == "directory") f.directory = true;
  }
  if (f.directory) {
    f.create = false;
    f.read_only = true;
  }
  return f;
}

SyncFileRangeFlags sfr_flags(const Step& s) {
  SyncFileRangeFlags f{false, false, false};
  for (const auto& name : s.list_args("flags")) {
    if (name == "wait_before") f.wait_before = true;
    else if (name == "write") f.write = true;
    else if (name == "wait_after") f.wait_after = true;
  }
  return f;
}

class Interpreter {
 public:
  Interpreter(const Case& c, Storage& storage, CaseResult& result)
      : case_(c), storage_(storage), result_(result) {}

  void run() {
    result_.status = CaseStatus::completed;
    for (size_t i = 0; i < case_.steps.size(); ++i) {
      const Step& step = case_.steps[i];
      StepObservation obs;
      obs.index = i;
      obs.line = step.line;
      obs.op = std::string(step_spec(step.kind).name);
      obs.proc = step_spec(step.kind).in_process ? step.proc : "";
      obs.args = step.args;
      const auto hits_before = storage_.injected_by_layer();
      const auto t0 = std::chrono::steady_clock::now();
      try {
        execute(step, obs);
      } catch (const std::exception& e) {
        // The machinery failed (a worker died, a daemon refused): the step
        // was not carried out, and no errno of the kernel is recorded for it.
        obs.error = e.what();
      }
      const auto t1 = std::chrono::steady_clock::now();
      obs.duration_ns =
          uint64_t(std::chrono::duration_cast<std::chrono::nanoseconds>(t1 - t0).count());
      // Which layer failed, dropped or held this step's I/O: the ones whose
      // count moved ("fuse-blockdev", or "fuse-blockdev+libfiu" if both did).
      for (const auto& [layer, after] : storage_.injected_by_layer()) {
        const auto it = hits_before.find(layer);
        const uint64_t before = it == hits_before.end() ? 0 : it->second;
        if (after <= before) continue;
        obs.injected += after - before;
        obs.fault_layer += (obs.fault_layer.empty() ? "" : "+") + layer;
      }
      if (obs.result.harness && std::string_view(obs.result.harness) == kInterrupted) result_.cut_short = true;
      if (obs.result.harness && obs.error.empty())
        obs.error = std::string("harness failure (") + obs.result.harness + ")" +
                    (obs.detail.contains("harness") ? ": " + obs.detail["harness"].get<std::string>() : "");
      // An injector that stopped makes every later result meaningless: the
      // case is an error even if this step seemed to work or hang, and the
      // injector's death is named first (a mount that failed because of it
      // is a consequence).
      if (auto why = storage_.broken())
        obs.error = *why + (obs.error.empty() ? "" : " (then: " + obs.error + ")");
      const bool hung = obs.result.hung && obs.error.empty();
      const bool broken = !obs.error.empty();
      result_.steps.push_back(std::move(obs));
      if (hung) {
        result_.status = CaseStatus::hung;
        result_.reason = "step " + std::to_string(i) + " (" + std::string(step_spec(step.kind).name) +
                         ", line " + std::to_string(step.line) + ") did not return in time";
        return;
      }
      if (broken) {
        result_.status = CaseStatus::error;
        result_.reason = "step " + std::to_string(i) + " (line " + std::to_string(step.line) +
                         "): " + result_.steps.back().error;
        return;
      }
    }
    never_fired();
  }

 private:
  // A case whose error faults on the device never failed anything
  // measured no failure: what it saw is the healthy path (5.10's GETFSMAP put
  // an append's block outside the `free` range; data=journal wrote the data
  // to the journal only). It is an error with that reason, never a verdict.
  // libfiu counts nothing, so its faults are not judged here.
  void never_fired() {
    if (result_.status != CaseStatus::completed) return;
    bool device_fault = false;
    uint64_t injected = 0;
    // An errno seen by the case also shows the fault did something: the
    // device's count is read between steps, and a write that failed in
    // asynchronous writeback can fall outside every step's window.
    for (const auto& o : result_.steps)
      if (o.result.err != 0) return;
    for (size_t i = 0; i < case_.steps.size(); ++i) {
      const Step& s = case_.steps[i];
      // Error faults only: a held or dropped write may be the point without
      // any I/O (a power cut right after the device stopped answering).
      const std::string mode = s.arg("mode");
      if (s.kind == StepKind::fault && s.arg("range") != "libfiu" && !(mode.empty() || mode == "error"))
        return;
      device_fault = device_fault || (s.kind == StepKind::fault && s.arg("range") != "libfiu");
      injected += result_.steps[i].injected;
    }
    if (!device_fault || injected > 0) return;
    result_.status = CaseStatus::error;
    result_.reason = "the fault never fired: no I/O reached what it names (0 requests failed, dropped or "
                     "held), so the case measured no failure";
  }

  // The descriptor bound to the step's `fd`, or nullptr. When the open that
  // should have bound it failed (EROFS on a read-only filesystem, say), the
  // step is not attempted and reports that failure, so the case goes on and
  // the classifier sees why; any other unbound name is an error of the case.
  const Binding* bound(const Step& s, StepObservation& obs) {
    if (auto f = failed_opens_.find(s.arg("fd")); f != failed_opens_.end()) {
      obs.result = f->second.second;
      obs.detail["not_attempted"] = "descriptor '" + s.arg("fd") + "' was not opened: the open at step " +
                                    std::to_string(f->second.first) + " failed";
      return nullptr;
    }
    auto it = fds_.find(s.arg("fd"));
    if (it == fds_.end()) {
      obs.error = "descriptor '" + s.arg("fd") + "' is not open";
      return nullptr;
    }
    if (it->second.proc != s.proc) {
      obs.error = "descriptor '" + s.arg("fd") + "' belongs to process '" + it->second.proc + "'";
      return nullptr;
    }
    return &it->second;
  }

  void execute(const Step& s, StepObservation& obs) {
    const StepSpec& spec = step_spec(s.kind);
    Process* p = spec.in_process ? &storage_.process(s.proc) : nullptr;
    const uint64_t off = s.size_arg("off");
    const uint64_t len = s.size_arg("len");
    switch (s.kind) {
      case StepKind::open: {
        obs.result = p->open(s.arg("file"), open_flags(s));
        if (obs.result.ok()) {
          fds_[s.arg("fd")] = Binding{s.proc, int(obs.result.ret)};
          failed_opens_.erase(s.arg("fd"));
        } else if (!obs.result.hung) {
          failed_opens_[s.arg("fd")] = {obs.index, obs.result};
        }
        return;
      }
      case StepKind::close: {
        if (auto* b = bound(s, obs)) {
          obs.result = p->close(b->fd);
          fds_.erase(s.arg("fd"));  // closed even on error, as close(2) does
        }
        failed_opens_.erase(s.arg("fd"));
        return;
      }
      case StepKind::pwrite:
      case StepKind::msync: {
        if (auto* b = bound(s, obs)) {
          auto data = make_tagged(s.arg("tag"), off, len);
          obs.result = s.kind == StepKind::pwrite ? p->pwrite(b->fd, data, off)
                                                  : p->msync_write(b->fd, data, off);
          obs.bytes = s.kind == StepKind::pwrite ? (obs.result.ok() ? obs.result.ret : 0)
                                                 : int64_t(len);
        }
        return;
      }
      case StepKind::pread: {
        if (auto* b = bound(s, obs)) {
          std::vector<std::byte> buf(len);
          obs.result = p->pread(b->fd, buf, off);
          obs.bytes = obs.result.ok() ? obs.result.ret : 0;
          if (obs.result.ok())
            obs.data = classify_tagged(std::span(buf).first(size_t(obs.result.ret)), off);
        }
        return;
      }
      case StepKind::mmap_read: {
        if (auto* b = bound(s, obs)) {
          std::vector<std::byte> buf(len);
          MappedRead m = p->mmap_read(b->fd, buf, off);
          obs.result = m.result;
          obs.bytes = int64_t(m.copied);
          if (!m.signal.empty()) obs.detail["signal"] = m.signal;
          if (!m.resident.empty()) {
            auto pages = nlohmann::json::array();
            for (bool r : m.resident) pages.push_back(r ? 1 : 0);
            obs.detail["mincore"] = pages;
          }
          if (m.copied) obs.data = classify_tagged(std::span(buf).first(size_t(m.copied)), off);
        }
        return;
      }
      case StepKind::shutdown: {
        const std::string flush = s.arg("flush");
        obs.detail["flush"] = flush;
        obs.result = storage_.shutdown(flush == "sync"  ? ShutdownFlush::sync
                                       : flush == "none" ? ShutdownFlush::none
                                                         : ShutdownFlush::log,
                                       obs.detail);
        return;
      }
      case StepKind::fsync:
        if (auto* b = bound(s, obs)) obs.result = p->fsync(b->fd);
        return;
      case StepKind::fdatasync:
        if (auto* b = bound(s, obs)) obs.result = p->fdatasync(b->fd);
        return;
      case StepKind::sync_file_range:
        if (auto* b = bound(s, obs)) obs.result = p->sync_file_range(b->fd, off, len, sfr_flags(s));
        return;
      case StepKind::syncfs:
        if (auto* b = bound(s, obs)) obs.result = p->syncfs(b->fd);
        return;
      case StepKind::sync:
        obs.result = p->sync();
        return;
      case StepKind::stat:
        obs.result = p->stat(s.arg("file"));
        return;
      case StepKind::rename:
        obs.result = p->rename(s.arg("from"), s.arg("to"));
        return;
      case StepKind::unlink:
        obs.result = p->unlink(s.arg("file"));
        return;
      case StepKind::drop_caches:
        obs.result = storage_.drop_caches();
        return;
      case StepKind::writeback:
        obs.result = storage_.writeback();
        return;
      case StepKind::fault: {
        FaultRequest req;
        const std::string range = s.arg("range");
        req.where = range == "data"       ? FaultRequest::Where::data
                    : range == "metadata" ? FaultRequest::Where::metadata
                    : range == "free"     ? FaultRequest::Where::free
                    : range == "journal"  ? FaultRequest::Where::journal
                    : range == "libfiu"   ? FaultRequest::Where::libfiu
                                          : FaultRequest::Where::device;
        req.file = s.arg("file");
        req.point = s.arg("point");
        if (s.has("percent")) req.percent = std::stoi(s.arg("percent"));
        req.rule.op = fault_op_from_string(s.arg("io")).value_or(FaultOp::write);
        req.rule.mode = fault_mode_from_string(s.arg("mode")).value_or(FaultMode::error);
        req.rule.err = errno_from_name(s.arg("errno")).value_or(0);
        if (s.has("count")) req.rule.count = uint32_t(std::stoul(s.arg("count")));
        obs.detail["layer"] = storage_.layer();
        obs.result = storage_.fault(req, obs.detail);
        return;
      }
      case StepKind::heal:
        obs.result = storage_.heal();
        return;
      case StepKind::thin_limit:
        obs.result = storage_.thin_limit(s.size_arg("headroom"),
                                         s.arg("when_full") == "queue" ? FaultMode::hang
                                                                       : FaultMode::error,
                                         obs.detail);
        return;
      case StepKind::grow:
        obs.result = storage_.grow(s.size_arg("by"), obs.detail);
        return;
      case StepKind::memory_limit:
        obs.result = storage_.memory_limit(s.size_arg("bytes"));
        return;
      case StepKind::cache_limit:
        obs.result = storage_.cache_limit(s.size_arg("bytes"));
        return;
      case StepKind::remount:
        obs.result = storage_.remount();
        return;
      case StepKind::power_cut:
        obs.result = storage_.power_cut();
        fds_.clear();  // every process died with the power
        failed_opens_.clear();
        return;
      case StepKind::app: {
        const AppCall call{s.arg("program"), s.arg("action"), s.arg("file"),
                           s.arg("variant"), s.arg("key"), s.arg("value")};
        obs.detail["app"] = nlohmann::json::object();
        obs.result = storage_.app(call, obs.detail["app"]);
        return;
      }
      case StepKind::read_back: {
        fds_.clear();  // read_back closes every descriptor before remounting
        failed_opens_.clear();
        ReadBack rb = storage_.read_back(s.arg("file"), off, len);
        obs.result = rb.result;
        obs.bytes = rb.result.ok() ? rb.result.ret : 0;
        if (rb.result.ok())
          obs.data = classify_tagged(std::span(rb.data).first(size_t(rb.result.ret)), off);
        return;
      }
    }
  }

  const Case& case_;
  Storage& storage_;
  CaseResult& result_;
  std::map<std::string, Binding> fds_;
  std::map<std::string, std::pair<size_t, SysResult>> failed_opens_;  // name -> (step, result)
};

}  // namespace

void interpret(const Case& c, Storage& storage, CaseResult& result) {
  Interpreter(c, storage, result).run();
}

}  // namespace syncprobe
