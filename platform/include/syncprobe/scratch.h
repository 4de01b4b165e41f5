#pragma once
// Where a run keeps what it creates on the machine, and how a later run
// finds what a killed one left.
//
// The scratch root (SYNCPROBE_SCRATCH, default /var/tmp/syncprobe) is created
// by the run with mode 0700, or accepted only when it is a real directory
// (not a symbolic link) owned by this user that no group or other user can
// write. Each run makes its own directory there and writes a marker into it
// before it acquires anything: the run id, the owner's pid and its start
// time, and every process, mount, loop and dm device it holds. A later run
// cleans only directories with such a marker whose owner is gone, and only
// what the marker lists; everything else in the scratch root is left alone.
#include <iosfwd>
#include <mutex>
#include <string>
#include <vector>

#include "syncprobe/ledger.h"

namespace syncprobe {

// Creates the scratch root (and missing parents) or checks an existing one.
// "" on success, else why it cannot be used and how to fix it. With
// create = false a missing root is an error too (nothing is created).
std::string prepare_scratch_root(const std::string& path, bool create = true);

// A directory of the run's own below its run directory: created with mode
// 0700, or, when `may_exist` and it is there already, accepted only as a real
// directory (not a symbolic link) owned by this user that no group or other
// user can write. Throws std::runtime_error naming the path otherwise.
void make_private_dir(const std::string& path, bool may_exist);

// A run's own directory under the scratch root, and its marker. Every
// acquire() rewrites the marker atomically before returning.
class RunDirectory final : public Ledger {
 public:
  static constexpr const char* kMarker = ".syncprobe-run.json";
  // Creates <root>/<run_id> (mode 0700, not through a symbolic link) and its
  // marker. Throws with the reason.
  RunDirectory(const std::string& root, const std::string& run_id);
  // Removes the directory, unless a mount below it would not go away (the
  // marker then stays, for the next run).
  ~RunDirectory() override;
  RunDirectory(const RunDirectory&) = delete;
  RunDirectory& operator=(const RunDirectory&) = delete;

  const std::string& path() const { return path_; }
  // Removes the directory now; false (and the marker kept) when something
  // is still mounted below it.
  bool remove();

  void acquire(const Resource& r) override;
  void release(const Resource& r) override;

 private:
  void write_marker();
  std::string root_, run_id_, path_;
  std::mutex mu_;
  std::vector<Resource> held_;
  bool removed_ = false;
};

// Releases what killed runs left under `root`: for every directory whose
// marker names an owner that is gone, kills the processes it lists (only
// those whose start time matches), unmounts its mounts, removes its dm and
// loop devices, then the directory. Says what it did on `log`. Never
// follows a symbolic link; never touches a directory without a marker.
void cleanup_stale_runs(const std::string& root, std::ostream& log);

}  // namespace syncprobe
