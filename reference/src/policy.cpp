// The policies. Each answer cites the source it models; docs/reference.md
// has the same citations in one table.
#include "syncprobe/ref/policy.h"

#include <cerrno>

namespace syncprobe::ref {
namespace {

// block/blk-core.c, errno_to_blk_status() then blk_status_to_errno(): an
// errno the block layer has a status for comes back as itself; anything else
// (ENXIO included) becomes BLK_STS_IOERR, that is EIO.
int blk_status_round_trip(int err) {
  switch (err) {
    case EOPNOTSUPP: case ETIMEDOUT: case ENOSPC: case ENOLINK: case EREMOTEIO: case EBADE:
    case ENODATA: case EILSEQ: case ENOMEM: case EBUSY: case EAGAIN: case ENODEV:
      return err;
    default:
      return EIO;
  }
}

// Before errseq (Linux up to 4.12): one AS_EIO flag per mapping, cleared by
// whichever caller checks it first (mm/filemap.c filemap_check_errors);
// failed pages are marked clean (end_page_writeback after SetPageError).
class Linux412 final : public Policy {
 public:
  std::string_view name() const override { return "linux-4.12"; }
  std::string_view summary() const override {
    return "pre-errseq Linux: one error flag per file, cleared by the first caller that checks "
           "it; failed pages marked clean";
  }
  FailedPage on_writeback_error(int) const override { return FailedPage::clean_kept; }
  ErrorMemory error_memory() const override { return ErrorMemory::as_flags; }
};

// Linux 4.13-4.16: errseq_t per mapping (lib/errseq.c), the descriptor's
// cursor sampled at open (do_dentry_open: filemap_sample_wb_err) by an
// errseq_sample that also marked the error seen. sync_file_range still
// waited through filemap_fdatawait_range: the legacy flags.
class Linux413 final : public Policy {
 public:
  std::string_view name() const override { return "linux-4.13"; }
  std::string_view summary() const override {
    return "errseq per open file description, sampled at open (which marks the error seen): a "
           "descriptor opened after the error never sees it; failed pages marked clean";
  }
  FailedPage on_writeback_error(int) const override { return FailedPage::clean_kept; }
  ErrorMemory error_memory() const override { return ErrorMemory::errseq; }
  errseq_t sample_at_open(errseq_t& wb_err) const override { return errseq_sample_v413(wb_err); }
};

// Linux 4.17-5.7: errseq_sample returns 0 for an error nobody has seen, so
// the next opener is told ("errseq: Always report a writeback error once");
// the error lives in the inode and is lost when it is evicted.
// sync_file_range waits through file_fdatawait_range ->
// file_check_and_advance_wb_err (fs/sync.c, mm/filemap.c).
class Linux417 : public Policy {
 public:
  std::string_view name() const override { return "linux-4.17"; }
  std::string_view summary() const override {
    return "Linux 4.17-5.7: as 4.13, and an unseen error is reported to the next descriptor "
           "opened; lost when the inode is evicted; sync_file_range consumes the descriptor's "
           "error";
  }
  FailedPage on_writeback_error(int) const override { return FailedPage::clean_kept; }
  ErrorMemory error_memory() const override { return ErrorMemory::errseq; }
  bool sync_file_range_checks_errseq() const override { return true; }
};

// Linux 5.8 and later: as 4.17; syncfs reports through sb->s_wb_err
// (mapping_set_error sets it; SYSCALL syncfs checks it against f_sb_err);
// the caller sees the block layer's errno; a failed metadata or journal
// write turns ext4 read-only (jbd2 abort -> ext4_handle_error) or shuts xfs
// down (xfs_force_shutdown) -- the filesystem is the policy's option.
class Linux58 final : public Linux417 {
 public:
  explicit Linux58(bool xfs) : xfs_(xfs) {}
  std::string_view name() const override { return xfs_ ? "linux-5.8:xfs" : "linux-5.8:ext4"; }
  std::string_view summary() const override {
    return xfs_ ? "Linux 5.8 and later on xfs: as 4.17; syncfs reports each error once per "
                  "descriptor; EIO unless the block layer has a status for the device's errno; "
                  "a failed metadata or log write shuts the filesystem down"
                : "Linux 5.8 and later on ext4: as 4.17; syncfs reports each error once per "
                  "descriptor; EIO unless the block layer has a status for the device's errno; "
                  "a failed metadata or journal write turns the filesystem read-only";
  }
  bool syncfs_checks_sb_errseq() const override { return true; }
  int delivered_errno(int device_err) const override { return blk_status_round_trip(device_err); }
  FsReaction on_metadata_error() const override {
    return xfs_ ? FsReaction::shutdown : FsReaction::read_only;
  }
  bool mmap_refused_when_down() const override { return !xfs_; }

 private:
  bool xfs_;
};

// OpenBSD: a failed buffer is invalidated (sys/kern/vfs_bio.c brelse: B_ERROR
// -> B_INVAL) and, for a regular file, the vnode marked VBIOERROR; VOP_FSYNC
// (sys/kern/vfs_vops.c) then turns every successful fsync into EIO until the
// vnode goes to the free list (sys/kern/vfs_subr.c vputonfreelist clears it).
class OpenBsd final : public Policy {
 public:
  std::string_view name() const override { return "openbsd"; }
  std::string_view summary() const override {
    return "failed buffers discarded; every later fsync on a regular file's vnode fails with EIO "
           "until the vnode is released (last close)";
  }
  FailedPage on_writeback_error(int) const override { return FailedPage::discard; }
  ErrorMemory error_memory() const override { return ErrorMemory::vnode_sticky; }
  bool syncfs_reports() const override { return true; }
  int sticky_errno(int) const override { return EIO; }
  bool remembers_error_for(bool regular_file) const override { return regular_file; }
  std::vector<Lack> lacks() const override {
    return {{"syncfs", "OpenBSD has no syncfs(2)"},
            {"sync_file_range", "OpenBSD has no sync_file_range(2)"},
            {"direct-io", "OpenBSD has no O_DIRECT"},
            {"shutdown", "OpenBSD has no filesystem shutdown call (the ioctls are Linux's)"}};
  }
};

// FreeBSD: a failed write is re-dirtied and retried, except ENXIO (the device
// is gone) with no soft-updates dependencies, which invalidates the buffer
// (sys/kern/vfs_bio.c brelse). UFS starts a forced unmount on the first
// ENXIO (sys/ufs/ffs/ffs_subr.c ffs_fsfail_cleanup), and ffs_fsync returns
// ENXIO while it is under way.
class FreeBsd final : public Policy {
 public:
  std::string_view name() const override { return "freebsd"; }
  std::string_view summary() const override {
    return "failed buffers re-dirtied and retried (every error but ENXIO is transient); ENXIO "
           "invalidates the buffer and UFS force-unmounts the filesystem";
  }
  FailedPage on_writeback_error(int err) const override {
    return err == ENXIO ? FailedPage::discard : FailedPage::redirty;
  }
  ErrorMemory error_memory() const override { return ErrorMemory::none; }
  bool syncfs_reports() const override { return true; }
  FsReaction on_data_error(int err) const override {
    return err == ENXIO ? FsReaction::force_unmount : FsReaction::continues;
  }
  std::vector<Lack> lacks() const override {
    return {{"syncfs", "FreeBSD has no syncfs(2)"},
            {"sync_file_range", "FreeBSD has no sync_file_range(2)"},
            {"shutdown", "FreeBSD has no filesystem shutdown call (the ioctls are Linux's)"}};
  }
};

// illumos: pvn_write_done (usr/src/uts/common/vm/vm_pvn.c) sets the page's
// mod bit again after any write error unless B_FORCE: ENXIO included, the
// page stays dirty and is retried. fsync reports the writeback it did.
class Illumos final : public Policy {
 public:
  std::string_view name() const override { return "illumos"; }
  std::string_view summary() const override {
    return "failed pages re-dirtied and retried whatever the error, ENXIO included; only the "
           "writeback that failed reports it";
  }
  FailedPage on_writeback_error(int) const override { return FailedPage::redirty; }
  ErrorMemory error_memory() const override { return ErrorMemory::none; }
  bool syncfs_reports() const override { return true; }
  std::vector<Lack> lacks() const override {
    return {{"syncfs", "illumos has no syncfs(2)"},
            {"sync_file_range", "illumos has no sync_file_range(2)"},
            {"direct-io", "illumos has no O_DIRECT (it has directio(3C))"},
            {"shutdown", "illumos has no filesystem shutdown call (the ioctls are Linux's)"}};
  }
};

// The rules R1-R7 of docs/design.md.
class Proposed final : public Policy {
 public:
  std::string_view name() const override { return "proposed"; }
  std::string_view summary() const override {
    return "R1-R7: failed pages stay dirty and are retried; fsync covers what the descriptor "
           "read or wrote; a descriptor whose data was discarded never succeeds again";
  }
  FailedPage on_writeback_error(int) const override { return FailedPage::redirty; }
  ErrorMemory error_memory() const override { return ErrorMemory::errseq; }
  // R4: a descriptor opened after the failure, having touched nothing, is clean.
  errseq_t sample_at_open(errseq_t& wb_err) const override { return errseq_sample_current(wb_err); }
  bool fsync_reports_touched_only() const override { return true; }
  bool records_repeated_failures() const override { return false; }
  bool syncfs_reports() const override { return true; }
  bool bounds_error_pages() const override { return true; }
};

}  // namespace

const std::vector<std::string>& policy_names() {
  static const std::vector<std::string> names = {
      "linux-4.12", "linux-4.13", "linux-4.17", "linux-5.8:ext4", "linux-5.8:xfs",
      "openbsd",    "freebsd",    "illumos",    "proposed"};
  return names;
}

std::unique_ptr<Policy> make_policy(std::string_view name) {
  if (name == "linux-4.12") return std::make_unique<Linux412>();
  if (name == "linux-4.13") return std::make_unique<Linux413>();
  if (name == "linux-4.17") return std::make_unique<Linux417>();
  if (name == "linux-5.8:ext4") return std::make_unique<Linux58>(false);
  if (name == "linux-5.8:xfs") return std::make_unique<Linux58>(true);
  if (name == "openbsd") return std::make_unique<OpenBsd>();
  if (name == "freebsd") return std::make_unique<FreeBsd>();
  if (name == "illumos") return std::make_unique<Illumos>();
  if (name == "proposed") return std::make_unique<Proposed>();
  return nullptr;
}

std::set<std::string> model_capabilities(std::string_view policy) {
  auto p = make_policy(policy);
  if (!p) return {};
  std::set<std::string> caps = {
      "fault",          "fault:write",     "fault:read",   "fault:flush",    "fault:drop",
      "fault:hang",     "fault:data",      "fault:metadata", "fault:device", "fault:free",
      "fault:journal",  "fault:errno",     "thin-pool",       "memory-limit", "cache-limit",    "drop-caches",
      "writeback",      "remount",         "power-cut",    "read-back",      "second-process",
      "sync_file_range", "syncfs",         "mmap",         "mmap-read",      "direct-io",
      "metadata",       "raw-device",      "shutdown"};
  for (const auto& lack : p->lacks()) caps.erase(lack.capability);
  return caps;
}

std::string model_lack_reason(std::string_view policy, std::string_view capability) {
  if (auto p = make_policy(policy))
    for (const auto& lack : p->lacks())
      if (lack.capability == capability) return lack.reason;
  return "";
}

}  // namespace syncprobe::ref
