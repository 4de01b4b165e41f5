// syncprobe-guest: the runner inside a VM guest. Static, started by the
// initramfs's /init. Reads the cases and targets from /dev/vdb (JSON, NUL
// terminated), runs every case on every target on a fresh filesystem, and
// writes one JSON line per result to /dev/vdc, flushed as it goes so that a
// guest killed by the host's watchdog still leaves what it finished.
#include <fcntl.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "syncprobe/dm_capabilities.h"
#include "syncprobe/dm_storage.h"
#include "syncprobe/case.h"
#include "syncprobe/interpreter.h"
#include "syncprobe/linux_fs.h"
#include "syncprobe/observation.h"

using namespace syncprobe;

namespace {

std::string read_input(const char* dev) {
  int fd = ::open(dev, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return "";
  std::string text;
  char buf[65536];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n <= 0) break;
    const char* nul = static_cast<const char*>(std::memchr(buf, 0, size_t(n)));
    text.append(buf, nul ? size_t(nul - buf) : size_t(n));
    if (nul) break;
  }
  ::close(fd);
  return text;
}

class Output {
 public:
  explicit Output(const char* dev) : fd_(::open(dev, O_WRONLY | O_CLOEXEC)) {}
  ~Output() {
    if (fd_ >= 0) ::close(fd_);
  }
  void line(const nlohmann::json& j) {
    const std::string s = j.dump() + "\n";
    if (fd_ < 0) {
      std::fputs(s.c_str(), stdout);
      return;
    }
    if (::pwrite(fd_, s.data(), s.size(), off_t(off_)) == ssize_t(s.size())) off_ += s.size();
    ::fsync(fd_);
  }

 private:
  int fd_;
  uint64_t off_ = 0;
};

}  // namespace

int main(int argc, char** argv) {
  const char* in = argc > 1 ? argv[1] : "/dev/vdb";
  const char* out_dev = argc > 2 ? argv[2] : "/dev/vdc";
  Output out(out_dev);
  nlohmann::json input;
  try {
    input = nlohmann::json::parse(read_input(in));
  } catch (const std::exception& e) {
    out.line({{"type", "fatal"}, {"error", std::string("bad input: ") + e.what()}});
    return 2;
  }
  out.line({{"type", "hello"}, {"kernel", kernel_release()}});
  const int timeout_ms = input.value("step_timeout_ms", 20000);
  std::vector<Case> cases;
  for (const auto& jc : input.at("cases")) cases.push_back(jc.get<Case>());
  const auto caps = dm_capabilities();
  for (const auto& jt : input.at("targets")) {
    const std::string name = jt.at("name");
    DmFs gfs{jt.at("fs"), jt.value("options", "")};
    for (const Case& c : cases) {
      CaseResult r;
      r.case_id = c.id;
      r.case_file = c.file;
      r.case_hash = c.hash;
      r.target = name;
      r.started_at = now_iso8601();
      r.environment = {{"kind", "vm"}, {"kernel", kernel_release()}, {"fs", gfs.fs},
                       {"mount_options", gfs.options}, {"measured", true}};
      std::string missing;
      const auto need = c.capabilities();
      for (const auto& cap : need)
        if (!caps.count(cap)) missing += " " + cap;
      const auto t0 = std::chrono::steady_clock::now();
      if (!missing.empty()) {
        r.status = CaseStatus::skipped;
        r.reason = "target lacks capability:" + missing;
      } else {
        KernelLog klog;
        try {
          auto storage = make_dm_storage(gfs, DmLayout{}, need.count("thin-pool") > 0, timeout_ms);
          r.environment = storage->environment();
          interpret(c, *storage, r);
        } catch (const std::exception& e) {
          r.status = CaseStatus::error;
          r.reason = e.what();
        }
        r.environment["kernel_log"] = klog.drain();
      }
      r.duration_ns = uint64_t(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                   std::chrono::steady_clock::now() - t0)
                                   .count());
      out.line({{"type", "result"}, {"result", r}});
      std::fprintf(stderr, "syncprobe-guest: %s %s %s\n", name.c_str(), c.id.c_str(),
                   std::string(to_string(r.status)).c_str());
    }
  }
  out.line({{"type", "done"}});
  return 0;
}
