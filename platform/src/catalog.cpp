#include "syncprobe/catalog.h"

#include <algorithm>
#include <set>

#include <toml++/toml.h>

#include "syncprobe/paths.h"

namespace syncprobe {
namespace {

std::string where(const std::string& path, const toml::node& n) {
  return path + ":" + std::to_string(n.source().begin.line) + ":" +
         std::to_string(n.source().begin.column);
}

std::vector<std::string> strings(const std::string& path, const toml::table& t, const char* key,
                                 bool required) {
  const toml::node* n = t.get(key);
  if (!n) {
    if (required) throw DataError(where(path, t) + ": filesystem entry has no '" + key + "'");
    return {};
  }
  const toml::array* a = n->as_array();
  if (!a) throw DataError(where(path, *n) + ": '" + key + "' must be a list of strings");
  std::vector<std::string> out;
  for (const auto& e : *a) {
    if (!e.is_string()) throw DataError(where(path, e) + ": '" + key + "' must hold strings only");
    out.push_back(**e.as_string());
  }
  return out;
}

std::string string(const std::string& path, const toml::table& t, const char* key, bool required) {
  const toml::node* n = t.get(key);
  if (!n) {
    if (required) throw DataError(where(path, t) + ": filesystem entry has no '" + key + "'");
    return "";
  }
  if (!n->is_string()) throw DataError(where(path, *n) + ": '" + key + "' must be a string");
  return **n->as_string();
}

}  // namespace

std::vector<FilesystemSpec> load_filesystems(const std::string& path) {
  toml::table root;
  try {
    root = toml::parse_file(path);
  } catch (const toml::parse_error& e) {
    throw DataError(path + ":" + std::to_string(e.source().begin.line) + ":" +
                    std::to_string(e.source().begin.column) + ": " + std::string(e.description()));
  }
  const toml::array* list = root["filesystem"].as_array();
  if (!list) throw DataError(path + ": no [[filesystem]] entries (see the comment at its top)");
  std::vector<FilesystemSpec> out;
  std::set<std::string> seen;
  for (const auto& node : *list) {
    const toml::table* t = node.as_table();
    if (!t) throw DataError(where(path, node) + ": a [[filesystem]] must be a table");
    FilesystemSpec f;
    f.name = string(path, *t, "name", true);
    f.fs = string(path, *t, "fs", true);
    f.options = string(path, *t, "options", false);
    f.mkfs = strings(path, *t, "mkfs", true);
    f.modules = strings(path, *t, "modules", false);
    f.tools = strings(path, *t, "tools", false);
    f.shutdown = string(path, *t, "shutdown", false);
    if (const toml::node* c = t->get("copy_on_write")) {
      if (!c->is_boolean()) throw DataError(where(path, *c) + ": 'copy_on_write' must be true or false");
      f.copy_on_write = **c->as_boolean();
    }
    const std::string expected = f.fs + (f.options.empty() ? "" : ":" + f.options);
    if (f.name != expected)
      throw DataError(where(path, *t) + ": name '" + f.name + "' should be '" + expected +
                      "' (fs, then ':' and the mount options)");
    if (f.mkfs.empty() || std::find(f.mkfs.begin(), f.mkfs.end(), "{device}") == f.mkfs.end())
      throw DataError(where(path, *t) + ": mkfs of '" + f.name + "' must contain \"{device}\"");
    if (!seen.insert(f.name).second)
      throw DataError(where(path, *t) + ": filesystem '" + f.name + "' is listed twice");
    out.push_back(std::move(f));
  }
  return out;
}

const std::vector<FilesystemSpec>& filesystems() {
  static const std::vector<FilesystemSpec> all = load_filesystems(data_dir() + "/filesystems.toml");
  return all;
}

const FilesystemSpec* find_filesystem(const std::string& name) {
  for (const auto& f : filesystems())
    if (f.name == name) return &f;
  return nullptr;
}

}  // namespace syncprobe
