#pragma once
// errseq_t as in the kernel (lib/errseq.c): one 32-bit word per mapping that
// records the latest writeback error, whether anyone has seen it, and a
// counter that moves when a new error arrives after the last one was seen.
// Each open file description keeps a sampled copy (its cursor) and is told
// about every error recorded after the sample, once.
#include <cstdint>

namespace syncprobe::ref {

using errseq_t = uint32_t;

inline constexpr int kMaxErrno = 4095;               // low 12 bits: the errno
inline constexpr errseq_t kErrseqSeen = 1u << 12;    // somebody has seen this error
inline constexpr errseq_t kErrseqCtrInc = 1u << 13;  // counter increment

// Records `err` (a positive errno). The counter moves only when the previous
// error was seen, so an error nobody looked at is not counted twice.
void errseq_set(errseq_t& eseq, int err);

// The cursor a new file description starts from (Linux 4.17 and later): an
// error that nobody has seen yet is reported to the new descriptor.
errseq_t errseq_sample(errseq_t eseq);

// The current value, unchanged: a descriptor opened after an error never
// hears of it (the proposed policy's R4).
errseq_t errseq_sample_current(errseq_t eseq);

// errseq_sample as Linux 4.13-4.16 had it (lib/errseq.c before "errseq:
// Always report a writeback error once", 4.17): the current value, and an
// error in it is marked seen, so the next error moves the counter.
errseq_t errseq_sample_v413(errseq_t& eseq);

// The errno recorded since `since`, or 0. Does not mark anything seen.
int errseq_check(errseq_t eseq, errseq_t since);

// As errseq_check, and when there is something to report, marks it seen and
// moves `since` to the current value: each descriptor is told once.
int errseq_check_and_advance(errseq_t& eseq, errseq_t& since);

}  // namespace syncprobe::ref
