#include "run_dirs.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "syncprobe/registry.h"
#include "syncprobe/results_io.h"

namespace syncprobe {
namespace {

namespace fs = std::filesystem;

nlohmann::json read_json(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return nlohmann::json::parse(ss.str());
}

}  // namespace

std::string scratch_root() {
  if (const char* s = std::getenv("SYNCPROBE_SCRATCH"); s && *s) return s;
  return "/var/tmp/syncprobe";
}

std::unique_ptr<RunDirectory> open_run_directory(const std::string& run_id, std::string& error,
                                                 std::ostream& log) {
  const std::string root = scratch_root();
  error = prepare_scratch_root(root);
  if (!error.empty()) return nullptr;
  // A killed earlier run may have left mounts, loop devices, daemons or VMs.
  cleanup_stale_runs(root, log);
  registry().cleanup_stale(root, log);
  try {
    return std::make_unique<RunDirectory>(root, run_id);
  } catch (const std::exception& e) {
    error = e.what();
    return nullptr;
  }
}

void cleanup_if_safe(std::ostream& log) {
  const std::string root = scratch_root();
  if (!prepare_scratch_root(root, false).empty()) return;
  cleanup_stale_runs(root, log);
  registry().cleanup_stale(root, log);
}

OutDir::~OutDir() {
  if (fd_ >= 0) ::close(fd_);
}

std::string OutDir::open(const std::string& path, Mode mode) {
  path_ = path;
  std::error_code ec;
  fs::create_directories(path, ec);
  if (ec) return "cannot create " + path + ": " + ec.message();
  fd_ = ::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd_ < 0) return "cannot open " + path + ": " + std::strerror(errno);
  if (flock(fd_, LOCK_EX | LOCK_NB) != 0)
    return "another syncprobe run is writing into " + path + "; wait for it, or choose another --out";
  std::vector<fs::path> entries;
  for (const auto& e : fs::directory_iterator(path, ec)) entries.push_back(e.path());
  if (ec) return "cannot read " + path + ": " + ec.message();
  const fs::path run_json = fs::path(path) / "run.json";
  const bool is_run = fs::is_regular_file(fs::symlink_status(run_json));
  if (mode == Mode::resume) {
    if (!is_run) return path + " holds no run to resume (no run.json); drop --resume";
    try {
      previous_ = read_json(run_json);
    } catch (const std::exception& e) {
      return run_json.string() + " cannot be read (" + e.what() + "); use --overwrite to start again";
    }
    if (!previous_.is_object() || !previous_.contains("id") || !previous_["id"].is_string())
      return run_json.string() + " has no run id; use --overwrite to start again";
    return "";
  }
  if (entries.empty()) return "";
  if (mode == Mode::fresh) {
    std::string id;
    try {
      if (is_run) id = read_json(run_json).value("id", "");
    } catch (const std::exception&) {
    }
    return path + " is not empty" + (id.empty() ? "" : " (it holds run " + id + ")") +
           ": results of two runs must not mix. Use --resume to finish that run, --overwrite "
           "to replace it, or another --out";
  }
  // overwrite: only what a run writes there.
  if (!is_run) return path + " holds files but no run.json: refusing to delete what is not a syncprobe run";
  // A run writes run.json, summary.json, bench.json, junit.xml, report.ktap
  // and dot files at the top, and one directory per target holding
  // <case>.json and console.log. Anything else (a subdirectory in a target's
  // directory, a link, notes) is someone's, and then nothing is deleted.
  auto run_file = [](const fs::path& f, bool top) {
    const auto st = fs::symlink_status(f);
    const std::string name = f.filename().string();
    return fs::is_regular_file(st) &&
           (f.extension() == ".json" || (top && (name.front() == '.' || name == "junit.xml" || name == "report.ktap")) ||
            (!top && name == "console.log"));
  };
  for (const auto& e : entries) {
    const std::string name = e.filename().string();
    if (fs::is_directory(fs::symlink_status(e))) {
      for (const auto& f : fs::directory_iterator(e, ec))
        if (!run_file(f.path(), false))
          return path + " holds " + name + "/" + f.path().filename().string() +
                 ", which no run writes: refusing to delete anything; move it away or choose another --out";
      if (ec) return "cannot read " + e.string() + ": " + ec.message();
    } else if (!run_file(e, true)) {
      return path + " holds " + name + ", which no run writes: refusing to delete anything; move it away "
             "or choose another --out";
    }
  }
  for (const auto& e : entries) {
    fs::remove_all(e, ec);
    if (ec) return "cannot remove " + e.string() + ": " + ec.message();
  }
  return "";
}

bool OutDir::has_result(const std::string& target, const std::string& case_id) const {
  if (!previous_.contains("id")) return false;
  try {
    const auto j = read_json(fs::path(path_) / result_path(target, case_id));
    return j.value("run_id", "") == previous_["id"].get<std::string>();
  } catch (const std::exception&) {
    return false;
  }
}

}  // namespace syncprobe
