#include "syncprobe/results_io.h"

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include "syncprobe/bounded_file.h"
#include "syncprobe/errno_names.h"

namespace fs = std::filesystem;

namespace syncprobe {
namespace {

[[noreturn]] void fail(const std::string& what, const std::string& path, int err) {
  throw std::runtime_error(what + " " + path + ": " + errno_name(err) + " (" + std::strerror(err) + ")");
}

void fsync_dir(const std::string& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) fail("cannot open directory", dir, errno);
  const int r = ::fsync(fd);
  const int err = errno;
  ::close(fd);
  if (r != 0) fail("fsync of directory", dir, err);
}

// The largest results file read: a summary of every case on every target
// is a few MiB; anything this big is not one of ours.
constexpr uint64_t kMaxResultsFile = uint64_t(256) << 20;

// A results file's text: only a regular file (a FIFO or a device named
// run.json would block or never end), and only up to kMaxResultsFile.
std::string read_text(const fs::path& p) {
  BoundedRead r = read_bounded_file(p.string(), kMaxResultsFile);
  if (!r.ok)
    throw std::runtime_error(p.string() + ": " + r.why + "; point at a results directory of `syncprobe run`");
  return std::move(r.text);
}

nlohmann::json read_json(const fs::path& p) {
  try {
    return nlohmann::json::parse(read_text(p));
  } catch (const nlohmann::json::exception& e) {
    throw std::runtime_error(p.string() + ": not valid JSON: " + e.what());
  }
}

}  // namespace

void write_file_atomic(const std::string& path, const std::string& content) {
  const fs::path target(path);
  const fs::path dir = target.has_parent_path() ? target.parent_path() : fs::path(".");
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) throw std::runtime_error("cannot create " + dir.string() + ": " + ec.message());
  // A name no other writer uses (two runs, or two threads, never share one);
  // removed again whatever happens, so a failure leaves no partial file.
  static std::atomic<uint64_t> serial{0};
  const std::string tmp = (dir / ("." + target.filename().string() + "." + std::to_string(getpid()) + "." +
                                  std::to_string(++serial) + ".tmp"))
                              .string();
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
  if (fd < 0) fail("cannot create", tmp, errno);
  auto abandon = [&](const char* what, int err) {
    ::close(fd);
    ::unlink(tmp.c_str());
    fail(what, tmp, err);
  };
  size_t done = 0;
  while (done < content.size()) {
    const ssize_t n = ::write(fd, content.data() + done, content.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      abandon("write to", errno);
    }
    done += size_t(n);
  }
  if (::fsync(fd) != 0) abandon("fsync of", errno);
  if (::close(fd) != 0) {
    const int err = errno;
    ::unlink(tmp.c_str());
    fail("close of", tmp, err);
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    const int err = errno;
    ::unlink(tmp.c_str());
    fail("rename onto", path, err);
  }
  fsync_dir(dir.string());
}

nlohmann::json read_json_file(const std::string& path) { return read_json(path); }

std::string result_path(const std::string& target, const std::string& case_id) {
  return target + "/" + case_id + ".json";
}

RunResults load_run(const std::string& dir) {
  RunResults r;
  r.dir = dir;
  const fs::path root(dir);
  if (!fs::is_directory(root)) throw std::runtime_error(dir + ": not a results directory");
  if (fs::exists(root / "run.json")) {
    r.run = read_json(root / "run.json");
    if (r.run.contains("cases"))
      for (auto& [id, cj] : r.run["cases"].items()) r.cases[id] = cj.get<Case>();
  }
  for (const auto& entry : fs::directory_iterator(root)) {
    if (!entry.is_directory()) continue;
    for (const auto& f : fs::directory_iterator(entry.path())) {
      if (f.path().extension() != ".json" || f.path().filename().string().front() == '.')
        continue;
      nlohmann::json j = read_json(f.path());
      if (j.value("schema", "") != "syncprobe.case-result/1") continue;
      CaseResult cr = j.get<CaseResult>();
      r.results[cr.target][cr.case_id] = std::move(cr);
    }
  }
  if (r.results.empty())
    throw std::runtime_error(dir + ": no case results (expected <target>/<case>.json files)");
  return r;
}

}  // namespace syncprobe
