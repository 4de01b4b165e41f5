#pragma once
// Device-mapper as an injector, with faults made by switching dm tables as
// fstests does, over a device the run owns:
//   <prefix>top   the device the filesystem lives on; its table is switched
//                 between `linear` (healthy) and, over the faulted ranges,
//                 `flakey ... error_writes` / `drop_writes` (dm-flakey) or
//                 `error` (dm-error, for read faults); suspended for a hang;
//   <prefix>pool  a thin pool (cases that need one), with <prefix>meta,
//                 <prefix>data and <prefix>thin: exhausted by a filler volume,
//                 grown by extending its data device and reloading (dm-thin).
// dm-flakey fails every write-direction bio of its range, empty flushes
// included, and returns EIO whatever was asked: it cannot fail a flush
// alone nor deliver another errno, and says so. Only devices named with the
// layout's prefix are created or removed, each recorded in the ledger first.
#include <memory>
#include <string>

#include "syncprobe/filesystems.h"
#include "syncprobe/injector.h"
#include "syncprobe/ledger.h"
#include "syncprobe/linux_fs.h"
#include "syncprobe/mounted_storage.h"
#include "syncprobe/storage.h"

namespace syncprobe {

struct DmLayout {
  std::string disk = "/dev/vda";  // at least 4 GiB: plain fs in [0,512M), thin meta at 1G, data from 2G
  std::string mount = "/mnt/sp";  // where the filesystem is mounted
  std::string prefix = "sp-";     // dm device names
  std::string kind = "vm";        // environment.kind of the results
};

class DmInjector final : public Injector {
 public:
  // Creates the stack (a thin volume under top when `thin`). Throws with a
  // message naming the command that failed.
  DmInjector(const DmLayout& layout, bool thin, std::chrono::milliseconds step_timeout, Ledger& ledger);
  ~DmInjector() override;  // resumes and removes the stack. REQUIRES: nothing mounted on it
  DmInjector(const DmInjector&) = delete;
  DmInjector& operator=(const DmInjector&) = delete;

  std::string device() const;  // /dev/mapper/<prefix>top
  uint64_t device_bytes() const { return base_sectors_ * 512; }  // the top device's size

  Level level() const override { return Level::device; }
  std::string layer() const override { return layer_; }
  std::set<std::string> capabilities() const override;
  int delivered_errno(int) const override { return EIO; }
  SysResult fault(const FaultRule& rule, nlohmann::json& detail) override;
  SysResult heal() override;
  SysResult thin_limit(uint64_t headroom, FaultMode when_full, nlohmann::json& detail) override;
  SysResult grow(uint64_t bytes, nlohmann::json& detail) override;
  SysResult power_cut() override;
  SysResult power_restore() override;
  void release_everything() override;
  uint64_t injected() override;
  std::optional<std::string> failure() override { return std::nullopt; }
  void after_call(const SysResult& r) override;
  nlohmann::json environment() const override;

 private:
  struct Segment;
  std::string name(const std::string& n) const { return L_.prefix + n; }
  std::string dev(const std::string& n) const { return "/dev/mapper/" + name(n); }
  void create(const std::string& n, const std::string& table);
  void load(const std::string& n, const std::string& table);
  void remove_devices();
  std::string pool_table(bool error_if_no_space) const;
  std::pair<uint64_t, uint64_t> pool_usage();
  std::vector<Segment> segments(const std::vector<ByteRange>& ranges, bool invert, const std::string& target) const;
  std::string render(const std::vector<Segment>& segs) const;

  DmLayout L_;
  bool thin_;
  std::chrono::milliseconds timeout_;
  Ledger& ledger_;
  std::string base_;
  uint64_t base_sectors_ = 0;
  uint64_t data_bytes_ = 0;
  std::string layer_ = "dm-flakey";
  bool faulted_ = false, suspended_ = false, pending_count_ = false, powered_off_ = false;
  uint64_t hits_ = 0;
  KernelLog klog_;
};

// A case's storage on a dm stack: the injector, `fs` made on its top device
// and mounted at layout.mount (the guest runner's and the host's dm variant).
std::unique_ptr<MountedStorage> make_dm_storage(const FilesystemSpec& fs, const DmLayout& layout, bool thin,
                                         std::chrono::milliseconds step_timeout, Ledger& ledger);

}  // namespace syncprobe
