#include "syncprobe/filesystems.h"

namespace syncprobe {

std::vector<std::string> FilesystemSpec::mkfs_argv(const std::string& device) const {
  std::vector<std::string> argv = mkfs;
  for (auto& a : argv)
    if (a == "{device}") a = device;
  return argv;
}

void to_json(nlohmann::json& j, const FilesystemSpec& f) {
  j = {{"name", f.name},       {"fs", f.fs},           {"options", f.options},
       {"mkfs", f.mkfs},       {"modules", f.modules}, {"tools", f.tools},
       {"copy_on_write", f.copy_on_write}, {"shutdown", f.shutdown}};
}

void from_json(const nlohmann::json& j, FilesystemSpec& f) {
  j.at("name").get_to(f.name);
  j.at("fs").get_to(f.fs);
  f.options = j.value("options", "");
  j.at("mkfs").get_to(f.mkfs);
  f.modules = j.value("modules", std::vector<std::string>{});
  f.tools = j.value("tools", std::vector<std::string>{});
  f.copy_on_write = j.value("copy_on_write", false);
  f.shutdown = j.value("shutdown", "");
}

}  // namespace syncprobe
