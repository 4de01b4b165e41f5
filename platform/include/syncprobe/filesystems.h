#pragma once
// The filesystems the real targets offer, from data/filesystems.toml. The
// struct travels to the static guest runner inside its plan (JSON), so the
// guest needs no TOML; only the host side loads the file.
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace syncprobe {

struct FilesystemSpec {
  std::string name;                // target suffix: "ext4", "ext4:data=journal"
  std::string fs;                  // type for mount(8)
  std::string options;             // mount options, "" for the defaults
  std::vector<std::string> mkfs;   // argv with "{device}" standing for the device
  std::vector<std::string> modules;
  std::vector<std::string> tools;
  bool copy_on_write = false;
  std::string shutdown;            // "EXT4_IOC_SHUTDOWN", "XFS_IOC_GOINGDOWN" or ""

  // mkfs with the device's path filled in.
  std::vector<std::string> mkfs_argv(const std::string& device) const;
};

void to_json(nlohmann::json& j, const FilesystemSpec& f);
void from_json(const nlohmann::json& j, FilesystemSpec& f);

}  // namespace syncprobe
