#include "syncprobe/ref/errseq.h"

namespace syncprobe::ref {

void errseq_set(errseq_t& eseq, int err) {
  if (err <= 0 || err > kMaxErrno) return;
  const errseq_t old = eseq;
  errseq_t next = (old & ~(errseq_t(kMaxErrno) | kErrseqSeen)) | errseq_t(err);
  if (old & kErrseqSeen) next += kErrseqCtrInc;
  eseq = next;
}

errseq_t errseq_sample(errseq_t eseq) { return (eseq & kErrseqSeen) ? eseq : 0; }

errseq_t errseq_sample_current(errseq_t eseq) { return eseq; }

errseq_t errseq_sample_v413(errseq_t& eseq) {
  if (eseq != 0) eseq |= kErrseqSeen;  // "we can skip marking the SEEN bit" only when 0
  return eseq;
}

int errseq_check(errseq_t eseq, errseq_t since) {
  if (eseq == since) return 0;
  return int(eseq & errseq_t(kMaxErrno));
}

int errseq_check_and_advance(errseq_t& eseq, errseq_t& since) {
  if (eseq == since) return 0;
  const int err = int(eseq & errseq_t(kMaxErrno));
  // Mark seen only when there is an error to see: a zero word stays zero so
  // that descriptors opened later compare equal.
  if (err) eseq |= kErrseqSeen;
  since = eseq;
  return err;
}

}  // namespace syncprobe::ref
