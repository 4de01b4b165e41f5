#pragma once
// The result of one syscall-like call, as a value: return value and errno.
#include <cstdint>
#include <string>

namespace syncprobe {

struct [[nodiscard]] SysResult {
  int64_t ret = 0;      // the call's return value (-1 on failure, as the syscall)
  int err = 0;          // errno when ret < 0, else 0
  bool hung = false;    // the call did not return within its timeout

  bool ok() const { return ret >= 0 && !hung; }

  static SysResult success(int64_t value = 0) { return {value, 0, false}; }
  static SysResult failure(int error) { return {-1, error, false}; }
  static SysResult hang() { return {-1, 0, true}; }
  // From a raw syscall return: failure(errno) when r < 0.
  static SysResult from_syscall(int64_t r, int saved_errno) {
    return r < 0 ? failure(saved_errno) : success(r);
  }
};

// "0", "-1 EIO", "hung": for messages and logs, not for the JSON.
std::string describe(const SysResult& r);

}  // namespace syncprobe
