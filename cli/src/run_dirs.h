#pragma once
// The two directories of a run: the results directory (--out), locked for
// the run and never mixed with another run's results, and the run's private
// scratch directory under the checked scratch root. Private to cli/.
#include <iosfwd>
#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "syncprobe/scratch.h"

namespace syncprobe {

// SYNCPROBE_SCRATCH, else /var/tmp/syncprobe.
std::string scratch_root();

// Checks (or creates) the scratch root, releases what killed runs left
// there, and creates this run's directory. nullptr and `error` set when the
// root cannot be used; nothing has been created then.
std::unique_ptr<RunDirectory> open_run_directory(const std::string& run_id, std::string& error,
                                                 std::ostream& log);

// For a run that needs no scratch directory: releases what killed runs
// left, when the scratch root exists and is safe; does nothing otherwise.
void cleanup_if_safe(std::ostream& log);

// The results directory, held under an exclusive lock (flock on the
// directory) until destroyed, so two runs never write into one.
class OutDir {
 public:
  enum class Mode { fresh, resume, overwrite };
  OutDir() = default;
  ~OutDir();
  OutDir(const OutDir&) = delete;
  OutDir& operator=(const OutDir&) = delete;

  // fresh: the directory must be empty or absent. resume: it must hold a run
  // (its run.json), whose id is kept. overwrite: what a run left there is
  // removed first (refused when it holds anything else). "" on success.
  std::string open(const std::string& path, Mode mode);
  // The resumed run's run.json; {} unless resuming.
  const nlohmann::json& previous() const { return previous_; }
  // True when resuming and <target>/<case>.json holds a result of the resumed run.
  bool has_result(const std::string& target, const std::string& case_id) const;

 private:
  std::string path_;
  int fd_ = -1;
  nlohmann::json previous_ = nlohmann::json::object();
};

}  // namespace syncprobe
