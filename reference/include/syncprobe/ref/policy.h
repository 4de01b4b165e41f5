#pragma once
// How a platform reacts to a failed writeback: one small strategy object per
// policy. The page cache (page_cache.h) asks the policy these questions and
// does everything else the same way for all of them:
//   - what becomes of a page whose write failed (on_writeback_error);
//   - where the error is remembered for later reporting (error_memory);
//   - what a new descriptor's error cursor starts from (sample_at_open);
//   - which pages an fsync writes and whether descriptors can go bad;
//   - what errno the block layer hands up, what sync_file_range and syncfs
//     check, and what the filesystem does when its metadata cannot be written;
//   - which calls the platform does not have (lacks).
// docs/reference.md names the source file and function behind each answer.
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

// What the filesystem as a whole does after a failure.
enum class FsReaction {
  continues,       // nothing: later calls work as before
  read_only,       // ext4 after a journal abort: changes fail with EROFS
  shutdown,        // xfs (and a shutdown ioctl): every call fails with EIO
  force_unmount,   // FreeBSD UFS on ENXIO: a forced unmount is under way
};

// A capability the platform does not have, and why: a case that needs it is
// skipped with `reason` (e.g. "OpenBSD has no syncfs(2)").
struct Lack {
  std::string capability;
  std::string reason;
};

class Policy {
 public:
  virtual ~Policy() = default;
  virtual std::string_view name() const = 0;
  virtual std::string_view summary() const = 0;

  virtual FailedPage on_writeback_error(int err) const = 0;
  virtual ErrorMemory error_memory() const = 0;
  // The cursor a new open file description starts from (errseq policies).
  // May mark the mapping's error seen, as Linux 4.13-4.16 did.
  virtual errseq_t sample_at_open(errseq_t& wb_err) const { return errseq_sample(wb_err); }
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
  // syncfs() reports through the superblock's errseq (sb->s_wb_err, each
  // descriptor told once, Linux 5.8 and later) instead of what it met.
  virtual bool syncfs_checks_sb_errseq() const { return false; }
  // sync_file_range's waits check the descriptor's errseq cursor
  // (file_fdatawait_range) instead of the legacy AS_EIO flags.
  virtual bool sync_file_range_checks_errseq() const { return false; }
  // Pages in error count against the cache's memory limit; past it the
  // oldest are discarded and the descriptors that touched them go bad (R3, R7).
  virtual bool bounds_error_pages() const { return false; }
  // The errno the caller gets for a device that failed with `device_err`
  // (Linux: the block layer's blk_status_t translation).
  virtual int delivered_errno(int device_err) const { return device_err; }
  // The errno a remembered sticky error is reported as on later fsyncs.
  virtual int sticky_errno(int err) const { return err; }
  // Whether an error on this kind of file is remembered at all (OpenBSD:
  // regular files only, not directories or device nodes).
  virtual bool remembers_error_for(bool /*regular_file*/) const { return true; }
  // What the filesystem does when a metadata or journal write fails.
  virtual FsReaction on_metadata_error() const { return FsReaction::continues; }
  // mmap(2) itself fails on a filesystem that is shut down (ext4_file_mmap);
  // false: it succeeds and only pages not in the cache fault (xfs: SIGBUS).
  virtual bool mmap_refused_when_down() const { return false; }
  // What the filesystem does when a data write fails with `err`.
  virtual FsReaction on_data_error(int /*err*/) const { return FsReaction::continues; }
  // Capabilities the platform lacks, with the reason.
  virtual std::vector<Lack> lacks() const { return {}; }
};

// Every policy, in a stable order: linux-4.12, linux-4.13, linux-4.17,
// linux-5.8:ext4, linux-5.8:xfs, openbsd, freebsd, illumos, proposed.
const std::vector<std::string>& policy_names();
// nullptr for an unknown name.
std::unique_ptr<Policy> make_policy(std::string_view name);

}  // namespace syncprobe::ref
