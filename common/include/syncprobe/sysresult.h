#pragma once
// The result of one syscall-like call, as a value: return value and errno.
#include <cstdint>
#include <string>

namespace syncprobe {

struct [[nodiscard]] SysResult {
  int64_t ret = 0;      // the call's return value (-1 on failure, as the syscall)
  int err = 0;          // errno when ret < 0, else 0
  bool hung = false;    // the call did not return within its timeout
  // Set when syncprobe's own machinery failed (mount(8), the fault daemon, a
  // worker killed by a signal): names that origin; `err` is then 0, so a
  // harness failure can never pass for an errno the kernel returned.
  const char* harness = nullptr;

  bool ok() const { return ret >= 0 && !hung && !harness; }

  static SysResult success(int64_t value = 0) { return {value, 0, false}; }
  static SysResult failure(int error) { return {-1, error, false}; }
  static SysResult hang() { return {-1, 0, true}; }
  // `origin` must outlive the result: a string literal ("mount(8)").
  static SysResult harness_failure(const char* origin) { return {-1, 0, false, origin}; }
  // From a raw syscall return: failure(errno) when r < 0.
  static SysResult from_syscall(int64_t r, int saved_errno) {
    return r < 0 ? failure(saved_errno) : success(r);
  }
};

// "0", "-1 EIO", "hung": for messages and logs, not for the JSON.
std::string describe(const SysResult& r);

}  // namespace syncprobe
