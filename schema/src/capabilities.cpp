// data/capabilities.toml: the one vocabulary of capability names.
#include <stdexcept>

#include <toml++/toml.h>

#include "syncprobe/case_parser.h"

namespace syncprobe {

CapabilityTable load_capabilities(const std::string& path) {
  toml::table root;
  try {
    root = toml::parse_file(path);
  } catch (const toml::parse_error& e) {
    throw std::runtime_error(path + ":" + std::to_string(e.source().begin.line) + ":" +
                             std::to_string(e.source().begin.column) + ": " +
                             std::string(e.description()));
  }
  const toml::table* t = root["capability"].as_table();
  if (!t) throw std::runtime_error(path + ": no [capability] table of name = \"description\"");
  CapabilityTable out;
  for (const auto& [name, desc] : *t) {
    if (!desc.is_string())
      throw std::runtime_error(path + ":" + std::to_string(desc.source().begin.line) +
                               ": the description of '" + std::string(name.str()) +
                               "' must be a string");
    out.emplace(std::string(name.str()), **desc.as_string());
  }
  return out;
}

}  // namespace syncprobe
