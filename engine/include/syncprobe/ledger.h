#pragma once
// What a run has acquired on the machine (processes, mounts, loop and dm
// devices), recorded before use so that a later run can release it if this
// one is killed. The run's marker file implements it (platform/scratch.h);
// the guest runner, whose machine is thrown away, records nothing.
#include <cstdint>
#include <string>

namespace syncprobe {

struct Resource {
  enum class Kind { process, mount, loop, dm };
  Kind kind = Kind::process;
  std::string what;   // mount point, loop backing file, dm name, or what the process is
  int64_t pid = 0;    // process: its pid and its start time (/proc/<pid>/stat field 22),
  uint64_t start = 0; // so that a reused pid is never mistaken for ours
  bool operator==(const Resource&) const = default;
};

class Ledger {
 public:
  virtual ~Ledger() = default;
  // Records `r` before it is acquired. Throws when it cannot be recorded:
  // then the resource must not be acquired.
  virtual void acquire(const Resource& r) = 0;
  // Forgets `r` once it is released; releasing what was never recorded is a no-op.
  virtual void release(const Resource& r) = 0;
};

// For callers that need no record (the guest runner, unit tests).
class NullLedger final : public Ledger {
 public:
  void acquire(const Resource&) override {}
  void release(const Resource&) override {}
};

}  // namespace syncprobe
