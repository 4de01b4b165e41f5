// The interpreter keeps syncprobe's own failures apart from the kernel's: a
// storage operation that fails in the harness (mount(8), the fault daemon)
// ends the case as `error` with its origin, and the JSON carries no errno.
#include <gtest/gtest.h>

#include <optional>

#include "syncprobe/forwarding_process.h"
#include "syncprobe/interpreter.h"
#include "syncprobe/interrupt.h"
#include "syncprobe/storage.h"

namespace syncprobe {
namespace {

class NullProcess : public Process {
 public:
  SysResult open(const std::string&, const OpenFlags&) override { return SysResult::success(3); }
  SysResult close(int) override { return SysResult::success(); }
  SysResult pwrite(int, std::span<const std::byte> d, uint64_t) override { return SysResult::success(int64_t(d.size())); }
  SysResult pread(int, std::span<std::byte>, uint64_t) override { return SysResult::success(0); }
  SysResult fsync(int) override { return SysResult::failure(EIO); }
  SysResult fdatasync(int) override { return SysResult::success(); }
  SysResult sync_file_range(int, uint64_t, uint64_t, const SyncFileRangeFlags&) override { return SysResult::success(); }
  SysResult msync_write(int, std::span<const std::byte>, uint64_t) override { return SysResult::success(); }
  SysResult syncfs(int) override { return SysResult::success(); }
  SysResult sync() override { return SysResult::success(); }
  SysResult stat(const std::string&) override { return SysResult::success(); }
  SysResult rename(const std::string&, const std::string&) override { return SysResult::success(); }
  SysResult unlink(const std::string&) override { return SysResult::success(); }
};

class MountFailsStorage : public Storage {
 public:
  std::string layer() const override { return "test"; }
  nlohmann::json environment() const override { return nlohmann::json::object(); }
  Process& process(const std::string&) override { return p_; }
  SysResult fault(const FaultRequest&, nlohmann::json&) override { return SysResult::success(); }
  SysResult heal() override { return SysResult::success(); }
  SysResult thin_limit(uint64_t, FaultMode, nlohmann::json&) override { return SysResult::success(); }
  SysResult grow(uint64_t, nlohmann::json&) override { return SysResult::success(); }
  SysResult memory_limit(uint64_t) override { return SysResult::success(); }
  SysResult cache_limit(uint64_t) override { return SysResult::success(); }
  SysResult drop_caches() override { return SysResult::success(); }
  SysResult writeback() override { return SysResult::success(); }
  SysResult remount() override { return SysResult::harness_failure("mount(8)"); }
  SysResult power_cut() override { return SysResult::success(); }
  ReadBack read_back(const std::string&, uint64_t, uint64_t) override { return {SysResult::success(), {}}; }
  uint64_t injected_hits() override { return 0; }

 private:
  NullProcess p_;
};

Step step(StepKind k, std::map<std::string, std::string> args = {}) {
  Step s;
  s.kind = k;
  s.proc = "a";
  s.args = std::move(args);
  return s;
}

TEST(Interpreter, HarnessFailureIsAnErrorOfTheCaseNotAnErrno) {
  Case c;
  c.id = "t";
  c.steps = {step(StepKind::open, {{"fd", "a"}, {"file", "f"}}), step(StepKind::fsync, {{"fd", "a"}}),
             step(StepKind::close, {{"fd", "a"}}), step(StepKind::remount), step(StepKind::sync)};
  MountFailsStorage storage;
  CaseResult r;
  interpret(c, storage, r);
  ASSERT_EQ(r.steps.size(), 4u) << "the case stops at the failing harness step";
  EXPECT_EQ(r.status, CaseStatus::error);
  EXPECT_NE(r.reason.find("harness failure (mount(8))"), std::string::npos) << r.reason;
  EXPECT_EQ(r.steps[1].result.err, EIO) << "a real errno stays an errno";
  const nlohmann::json j = r.steps[3];
  EXPECT_TRUE(j["errno"].is_null());
  EXPECT_EQ(j["harness"], "mount(8)");
  const StepObservation back = j.get<StepObservation>();
  EXPECT_FALSE(back.result.ok());
  EXPECT_EQ(back.result.err, 0);
}

// A step given up because of SIGINT/SIGTERM marks the case cut short (the
// runner does not keep it); any other harness failure does not.
class InterruptedWritebackStorage : public MountFailsStorage {
 public:
  SysResult writeback() override { return SysResult::harness_failure(kInterrupted); }
};

TEST(Interpreter, AStepGivenUpForTheSignalMarksTheCaseCutShort) {
  Case c;
  c.id = "t";
  c.steps = {step(StepKind::open, {{"fd", "a"}, {"file", "f"}}), step(StepKind::writeback),
             step(StepKind::remount)};
  InterruptedWritebackStorage interrupted;
  CaseResult r;
  interpret(c, interrupted, r);
  EXPECT_TRUE(r.cut_short);
  EXPECT_EQ(r.status, CaseStatus::error);
  EXPECT_EQ(r.steps.size(), 2u);
  EXPECT_FALSE(nlohmann::json(r).contains("cut_short")) << "a marker for the runner, not a result field";

  c.steps = {step(StepKind::open, {{"fd", "a"}, {"file", "f"}}), step(StepKind::remount)};
  MountFailsStorage mount_fails;
  CaseResult m;
  interpret(c, mount_fails, m);
  EXPECT_EQ(m.status, CaseStatus::error);
  EXPECT_FALSE(m.cut_short) << "mount(8) failing is a result to keep";
}

// A process whose mapped reads die with SIGBUS on the second page, and a
// storage that remembers the shutdown it was asked for.
class SigbusProcess : public NullProcess {
 public:
  MappedRead mmap_read(int, std::span<std::byte> out, uint64_t) override {
    MappedRead m;
    m.resident = {true, false};
    m.copied = 4096;
    std::fill(out.begin(), out.begin() + 4096, std::byte{0});
    m.signal = "SIGBUS";
    m.result = SysResult{-1, 0, false};
    return m;
  }
};

class ShutdownStorage : public MountFailsStorage {
 public:
  Process& process(const std::string&) override { return p_; }
  SysResult shutdown(ShutdownFlush flush, nlohmann::json& detail) override {
    seen = flush;
    detail["by"] = "test";
    return SysResult::success();
  }
  std::optional<ShutdownFlush> seen;

 private:
  SigbusProcess p_;
};

TEST(Interpreter, SigbusIsAnOutcomeAndShutdownPassesItsFlush) {
  Case c;
  c.id = "t";
  c.steps = {step(StepKind::open, {{"fd", "a"}, {"file", "f"}}),
             step(StepKind::shutdown, {{"flush", "none"}}),
             step(StepKind::mmap_read, {{"fd", "a"}, {"off", "0"}, {"len", "8192"}}),
             step(StepKind::fsync, {{"fd", "a"}})};
  ShutdownStorage storage;
  CaseResult r;
  interpret(c, storage, r);
  EXPECT_EQ(r.status, CaseStatus::completed) << r.reason;
  ASSERT_EQ(r.steps.size(), 4u) << "the case goes on after the signal";
  ASSERT_TRUE(storage.seen.has_value());
  EXPECT_EQ(*storage.seen, ShutdownFlush::none);
  EXPECT_EQ(r.steps[1].detail["flush"], "none");
  EXPECT_EQ(r.steps[1].detail["by"], "test");
  const nlohmann::json j = r.steps[2];
  EXPECT_EQ(j["detail"]["signal"], "SIGBUS");
  EXPECT_EQ(j["detail"]["mincore"], nlohmann::json::array({1, 0}));
  EXPECT_TRUE(j["errno"].is_null()) << "a signal is not an errno";
  EXPECT_EQ(j["bytes"], 4096);
  EXPECT_EQ(j["data"]["tag"], "zero") << "what was read before the signal";
}

// A decorator forwards mapped reads too: the signal and the residency reach
// the case through it (the host's storage wraps its processes so).
// A storage whose fault fails the next fsync, counted by its hits; or, with
// `fires` false, a fault that nothing reaches.
class HealthyProcess : public NullProcess {
 public:
  SysResult fsync(int) override { return SysResult::success(); }
};

class CountingStorage : public MountFailsStorage {
 public:
  explicit CountingStorage(bool fires) : fires_(fires) {}
  Process& process(const std::string&) override { return p_; }
  SysResult fault(const FaultRequest&, nlohmann::json&) override {
    armed_ = fires_;
    return SysResult::success();
  }
  SysResult remount() override { return SysResult::success(); }
  uint64_t injected_hits() override { return armed_ ? 1 : 0; }

 private:
  bool fires_, armed_ = false;
  HealthyProcess p_;
};

TEST(Interpreter, AnErrorFaultThatNeverFiredIsNoMeasurement) {
  Case c;
  c.id = "t";
  c.steps = {step(StepKind::open, {{"fd", "a"}, {"file", "f"}}),
             step(StepKind::fault, {{"range", "data"}, {"io", "write"}, {"mode", "error"}}),
             step(StepKind::fsync, {{"fd", "a"}}), step(StepKind::close, {{"fd", "a"}})};
  CountingStorage quiet(false), fired(true);
  CaseResult a, b;
  interpret(c, quiet, a);
  EXPECT_EQ(a.status, CaseStatus::error);
  EXPECT_NE(a.reason.find("never fired"), std::string::npos) << a.reason;
  interpret(c, fired, b);
  EXPECT_EQ(b.status, CaseStatus::completed) << b.reason;
  // A held write may be the point without any I/O (a power cut at once).
  Case held = c;
  held.steps[1] = step(StepKind::fault, {{"range", "device"}, {"io", "write"}, {"mode", "hang"}});
  held.steps[2] = step(StepKind::power_cut);
  held.steps.pop_back();
  CaseResult h;
  interpret(held, quiet, h);
  EXPECT_EQ(h.status, CaseStatus::completed) << h.reason;
  // An errno the case saw shows the fault acted even when the count missed
  // it (a write failed in asynchronous writeback between two readings).
  MountFailsStorage eio;  // fsync fails with EIO, the count stays 0
  CaseResult e;
  interpret(c, eio, e);
  EXPECT_EQ(e.status, CaseStatus::completed) << e.reason;
}

// A storage with a device injector and a process injector: the step's
// fault_layer names the layer whose count moved during it, not the storage's
// first layer.
class TwoLayerStorage : public CountingStorage {
 public:
  TwoLayerStorage() : CountingStorage(true) {}
  SysResult fault(const FaultRequest& r, nlohmann::json&) override {
    (r.where == FaultRequest::Where::libfiu ? fiu_ : device_) = 1;
    return SysResult::success();
  }
  std::map<std::string, uint64_t> injected_by_layer() override {
    return {{"fuse-blockdev", device_}, {"libfiu", fiu_}};
  }

 private:
  uint64_t device_ = 0, fiu_ = 0;
};

TEST(Interpreter, EachStepRecordsTheLayerWhoseCountMoved) {
  Case c;
  c.id = "t";
  c.steps = {step(StepKind::open, {{"fd", "a"}, {"file", "f"}}),
             step(StepKind::fault, {{"range", "libfiu"}, {"point", "posix/io/sync/fsync"}}),
             step(StepKind::fsync, {{"fd", "a"}})};
  TwoLayerStorage s;
  CaseResult r;
  interpret(c, s, r);
  ASSERT_EQ(r.steps.size(), 3u) << r.reason;
  EXPECT_EQ(r.steps[1].fault_layer, "libfiu");
  EXPECT_EQ(r.steps[1].injected, 1u);
  EXPECT_EQ(r.steps[2].fault_layer, "");
}

TEST(ForwardingProcess, ForwardsMappedReads) {
  SigbusProcess inner;
  ForwardingProcess outer(inner);
  std::vector<std::byte> buf(8192);
  MappedRead m = outer.mmap_read(3, buf, 0);
  EXPECT_EQ(m.signal, "SIGBUS");
  EXPECT_EQ(m.resident, (std::vector<bool>{true, false}));
  EXPECT_EQ(m.copied, 4096u);
}

}  // namespace
}  // namespace syncprobe
