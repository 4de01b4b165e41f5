#pragma once
// libfiu failure points of the reference. With libfiu (SYNCPROBE_HAVE_FIU)
// they are real: a test enables e.g. "reference/device/write" with
// fiu_enable(name, 1, (void*)(intptr_t)EIO, 0) and the point fails with that
// errno (EIO when failinfo is null). Without libfiu they compile away.
#include <cerrno>
#include <cstdint>

#ifdef SYNCPROBE_HAVE_FIU
#define FIU_ENABLE 1
#include <fiu.h>
#else
#define fiu_fail(name) 0
#define fiu_failinfo() nullptr
#endif

namespace syncprobe::ref {

// 0, or the errno the enabled point `name` fails with.
inline int fiu_point_errno(const char* name) {
  (void)name;
  if (!fiu_fail(name)) return 0;
  const auto info = reinterpret_cast<intptr_t>(fiu_failinfo());
  return info > 0 ? int(info) : EIO;
}

}  // namespace syncprobe::ref
