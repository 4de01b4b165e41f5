#pragma once
// Reads cases from TOML (toml++). Every problem in every file is reported,
// each with file:line:column, what is wrong and what to write instead;
// nothing runs while any remain.
#include <string>
#include <string_view>
#include <vector>

#include "syncprobe/case.h"

namespace syncprobe {

struct CaseError {
  std::string file;
  int line = 0;       // 1-based; 0 when the error concerns the whole file
  int column = 0;
  std::string message;  // what is wrong
  std::string hint;     // what to write instead ("" when there is nothing to suggest)
  // "cases/x.toml:12:3: error: unknown step 'fsnyc'; did you mean 'fsync'?"
  std::string format() const;
};

struct ParseOutcome {
  std::vector<Case> cases;
  std::vector<CaseError> errors;
  bool ok() const { return errors.empty(); }
};

ParseOutcome parse_case_text(std::string_view text, const std::string& file);
ParseOutcome parse_case_file(const std::string& path);
// Every *.toml under `dir`, sorted by file name. Duplicate ids are errors.
ParseOutcome load_cases(const std::string& dir);

}  // namespace syncprobe
