#pragma once
// Reads cases from TOML (toml++). Every problem in every file is reported,
// each with file:line:column, what is wrong and what to write instead;
// nothing runs while any remain.
#include <map>
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

// The capability vocabulary of data/capabilities.toml: name -> what it means.
using CapabilityTable = std::map<std::string, std::string>;
// Throws std::runtime_error naming the file and line when it is malformed.
CapabilityTable load_capabilities(const std::string& path);

// With `capabilities`, a `requires` name it lacks is an error with a
// did-you-mean hint; without it, names are not checked.
ParseOutcome parse_case_text(std::string_view text, const std::string& file,
                             const CapabilityTable* capabilities = nullptr);
ParseOutcome parse_case_file(const std::string& path, const CapabilityTable* capabilities = nullptr);
// Every *.toml under `dir`, sorted by file name. Duplicate ids are errors.
ParseOutcome load_cases(const std::string& dir, const CapabilityTable* capabilities = nullptr);

}  // namespace syncprobe
