// Case files on disk: only regular files of bounded size are read (a FIFO or
// a link to /dev/zero is refused, never read), every file of a directory is
// checked, in name order.

#include <algorithm>
#include <filesystem>
#include <string>
#include <vector>

#include "syncprobe/bounded_file.h"
#include "syncprobe/case_parser.h"
#include "syncprobe/steps.h"
#include "syncprobe/tag.h"

namespace syncprobe {

ParseOutcome parse_case_file(const std::string& path, const CapabilityTable* capabilities) {
  // Only a regular file of bounded size: a FIFO would block, /dev/zero never ends.
  auto fail = [&](std::string why, std::string hint) {
    return ParseOutcome{{}, {CaseError{path, 0, 0, std::move(why), std::move(hint)}}};
  };
  BoundedRead r = read_bounded_file(path, kMaxCaseFileBytes);
  using P = BoundedRead::Problem;
  if (r.problem == P::not_regular) return fail(r.why, "a case is a .toml file; remove or rename this one");
  if (r.problem == P::too_large)
    return fail("larger than " + size_text(kMaxCaseFileBytes) + r.why.substr(r.why.find(" (")),
                "a case is a short script; split it");
  if (!r.ok) return fail("cannot read the case file: " + r.why, "check the path");
  const std::string& text = r.text;
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
