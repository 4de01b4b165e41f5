// Case files on disk: only regular files of bounded size are read (a FIFO or
// a link to /dev/zero is refused, never read), every file of a directory is
// checked, in name order.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "syncprobe/case_parser.h"
#include "syncprobe/steps.h"
#include "syncprobe/tag.h"

namespace syncprobe {

ParseOutcome parse_case_file(const std::string& path, const CapabilityTable* capabilities) {
  // Only a regular file of bounded size: a FIFO would block, /dev/zero never ends.
  auto fail = [&](std::string why, std::string hint) {
    return ParseOutcome{{}, {CaseError{path, 0, 0, std::move(why), std::move(hint)}}};
  };
  const int fd = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) return fail(std::string("cannot read the case file: ") + std::strerror(errno), "check the path");
  struct stat st{};
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    const char* kind = S_ISFIFO(st.st_mode) ? "a FIFO" : S_ISCHR(st.st_mode) ? "a character device"
                       : S_ISBLK(st.st_mode) ? "a block device" : S_ISDIR(st.st_mode) ? "a directory"
                       : S_ISSOCK(st.st_mode) ? "a socket" : "not a file";
    return fail(std::string("not a regular file (") + kind + ")", "a case is a .toml file; remove or rename this one");
  }
  if (uint64_t(st.st_size) > kMaxCaseFileBytes) {
    ::close(fd);
    return fail("larger than " + size_text(kMaxCaseFileBytes) + " (" + std::to_string(st.st_size) + " bytes)",
                "a case is a short script; split it");
  }
  std::string text(size_t(st.st_size), '\0');
  size_t done = 0;
  while (done < text.size()) {
    const ssize_t n = ::read(fd, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    done += size_t(n);
  }
  ::close(fd);
  text.resize(done);
  return parse_case_text(text, path, capabilities);
}

ParseOutcome load_cases(const std::string& dir, const CapabilityTable* capabilities) {
  ParseOutcome out;
  std::error_code ec;
  if (!std::filesystem::is_directory(dir, ec))
    return {{}, {CaseError{dir, 0, 0, "no such case directory", "give --cases DIR with *.toml files"}}};
  std::vector<std::string> files;
  for (const auto& e : std::filesystem::directory_iterator(dir, ec))
    if (e.path().extension() == ".toml") files.push_back(e.path().string());
  std::sort(files.begin(), files.end());
  if (files.empty())
    return {{}, {CaseError{dir, 0, 0, "no *.toml case files here", "give --cases DIR with *.toml files"}}};
  std::map<std::string, std::string> seen;
  for (const auto& f : files) {
    ParseOutcome one = parse_case_file(f, capabilities);
    out.errors.insert(out.errors.end(), one.errors.begin(), one.errors.end());
    for (auto& c : one.cases) {
      if (auto it = seen.find(c.id); it != seen.end()) {
        out.errors.push_back({f, 1, 1, "case id '" + c.id + "' is also the id of " + it->second,
                              "give each case its own id"});
        continue;
      }
      seen[c.id] = f;
      out.cases.push_back(std::move(c));
    }
  }
  return out;
}

}  // namespace syncprobe
