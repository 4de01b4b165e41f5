#include "syncprobe/ref/policy.h"

#include <cerrno>

namespace syncprobe::ref {
namespace {

// Before errseq (Linux up to 4.12): one AS_EIO flag per mapping, cleared by
// whichever caller checks it first; failed pages are marked clean.
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

// Linux 4.13-4.16: errseq_t per mapping, cursor sampled at open.
class Linux413 final : public Policy {
 public:
  std::string_view name() const override { return "linux-4.13"; }
  std::string_view summary() const override {
    return "errseq per open file description, sampled at open: a descriptor opened after the "
           "error never sees it; failed pages marked clean";
  }
  FailedPage on_writeback_error(int) const override { return FailedPage::clean_kept; }
  ErrorMemory error_memory() const override { return ErrorMemory::errseq; }
  errseq_t sample_at_open(errseq_t wb_err) const override { return errseq_sample_current(wb_err); }
};

// Linux 4.17 and later: an error nobody has seen is reported to the next
// opener; the error lives in the inode and is lost when it is evicted.
class Linux417 final : public Policy {
 public:
  std::string_view name() const override { return "linux-4.17"; }
  std::string_view summary() const override {
    return "today's Linux: as 4.13, and an unseen error is reported to the next descriptor "
           "opened; lost when the inode is evicted";
  }
  FailedPage on_writeback_error(int) const override { return FailedPage::clean_kept; }
  ErrorMemory error_memory() const override { return ErrorMemory::errseq; }
};

class OpenBsd final : public Policy {
 public:
  std::string_view name() const override { return "openbsd"; }
  std::string_view summary() const override {
    return "failed buffers discarded; every fsync on the vnode fails until the vnode is "
           "released (last close)";
  }
  FailedPage on_writeback_error(int) const override { return FailedPage::discard; }
  ErrorMemory error_memory() const override { return ErrorMemory::vnode_sticky; }
  bool syncfs_reports() const override { return true; }
};

// FreeBSD (and the illumos and macOS families): a failed buffer is
// re-dirtied and retried, except ENXIO (the device is gone), which discards it.
class FreeBsd final : public Policy {
 public:
  std::string_view name() const override { return "freebsd"; }
  std::string_view summary() const override {
    return "failed buffers re-dirtied and retried (every error but ENXIO is transient); also "
           "the illumos and macOS families";
  }
  FailedPage on_writeback_error(int err) const override {
    return err == ENXIO ? FailedPage::discard : FailedPage::redirty;
  }
  ErrorMemory error_memory() const override { return ErrorMemory::none; }
  bool syncfs_reports() const override { return true; }
};

// The rules R1-R7 of DESIGN.md section 2.
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
  errseq_t sample_at_open(errseq_t wb_err) const override { return errseq_sample_current(wb_err); }
  bool fsync_reports_touched_only() const override { return true; }
  bool records_repeated_failures() const override { return false; }
  bool syncfs_reports() const override { return true; }
  bool bounds_error_pages() const override { return true; }
};

}  // namespace

const std::vector<std::string>& policy_names() {
  static const std::vector<std::string> names = {"linux-4.12", "linux-4.13", "linux-4.17",
                                                 "openbsd",    "freebsd",    "proposed"};
  return names;
}

std::unique_ptr<Policy> make_policy(std::string_view name) {
  if (name == "linux-4.12") return std::make_unique<Linux412>();
  if (name == "linux-4.13") return std::make_unique<Linux413>();
  if (name == "linux-4.17") return std::make_unique<Linux417>();
  if (name == "openbsd") return std::make_unique<OpenBsd>();
  if (name == "freebsd") return std::make_unique<FreeBsd>();
  if (name == "proposed") return std::make_unique<Proposed>();
  return nullptr;
}

}  // namespace syncprobe::ref
