#pragma once
// How a platform reacts to a failed writeback: one small strategy object per
// policy. The file system (file_system.h) asks the policy four questions and
// does everything else the same way for all of them:
//   - what becomes of a page whose write failed (on_writeback_error);
//   - where the error is remembered for later reporting (error_memory);
//   - what a new descriptor's error cursor starts from (sample_at_open);
//   - which pages an fsync writes and whether descriptors can go bad.
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "syncprobe/ref/errseq.h"

namespace syncprobe::ref {

// What happens to a page whose writeback failed.
enum class FailedPage {
  clean_kept,  // PG_dirty cleared, data kept in the cache (Linux)
  discard,     // removed from the cache: a later read returns the disk's data
  redirty,     // stays PG_dirty with PG_error, written again later
};

// Where a writeback error is remembered until reported.
enum class ErrorMemory {
  as_flags,      // AS_EIO / AS_ENOSPC on the mapping, cleared by the first checker
  errseq,        // mapping->wb_err (and the legacy flags), per-descriptor cursors
  vnode_sticky,  // an error on the vnode that fails every fsync until released
  none,          // not remembered: only the writeback that failed reports it
};

class Policy {
 public:
  virtual ~Policy() = default;
  virtual std::string_view name() const = 0;
  virtual std::string_view summary() const = 0;

  virtual FailedPage on_writeback_error(int err) const = 0;
  virtual ErrorMemory error_memory() const = 0;
  // The cursor a new open file description starts from (errseq policies).
  virtual errseq_t sample_at_open(errseq_t wb_err) const { return errseq_sample(wb_err); }
  // true: fsync, which writes every dirty page of the file, fails for a page
  // that did not get written only if the descriptor read or wrote it (R2's
  // scope, R4); false: any failure of this writeback fails it.
  virtual bool fsync_reports_touched_only() const { return false; }
  // true: every failed write of a page is a new error for wb_err; false: only
  // a page's first failure is (its retries failing again are not news, and a
  // descriptor opened since is not told of them: R4).
  virtual bool records_repeated_failures() const { return true; }
  // syncfs() returns the writeback errors it met (false: returns 0, as Linux
  // before 5.8).
  virtual bool syncfs_reports() const { return false; }
  // Pages in error count against the cache's memory limit; past it the
  // oldest are discarded and the descriptors that touched them go bad (R3, R7).
  virtual bool bounds_error_pages() const { return false; }
};

// The six policies, in a stable order: linux-4.12, linux-4.13, linux-4.17,
// openbsd, freebsd, proposed.
const std::vector<std::string>& policy_names();
// nullptr for an unknown name.
std::unique_ptr<Policy> make_policy(std::string_view name);

}  // namespace syncprobe::ref
