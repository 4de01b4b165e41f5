#pragma once
// The data files under data/ (docs/design.md): plain TOML read at run time,
// so adding a filesystem is an entry, not code. Not linked by the guest.
#include <stdexcept>
#include <string>
#include <vector>

#include "syncprobe/filesystems.h"

namespace syncprobe {

// A data file that cannot be used; what() names the file, line and fix.
struct DataError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// Every [[filesystem]] of `path`. Throws DataError on a malformed file.
std::vector<FilesystemSpec> load_filesystems(const std::string& path);

// The filesystems of data_dir()/filesystems.toml, loaded once. Throws DataError.
const std::vector<FilesystemSpec>& filesystems();

// The entry named `name` ("ext4:data=journal"), or nullptr.
const FilesystemSpec* find_filesystem(const std::string& name);

}  // namespace syncprobe
