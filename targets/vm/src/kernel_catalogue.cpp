#include "kernel_catalogue.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>
#include <stdexcept>

#include <nlohmann/json.hpp>
#include <toml++/toml.h>

#include "syncprobe/paths.h"
#include "syncprobe/results_io.h"

namespace syncprobe::vm {
namespace {

namespace fs = std::filesystem;

std::string read_text(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Reading one TOML table with messages that say file:line and what to write.
class Reader {
 public:
  explicit Reader(std::string file) : file_(std::move(file)) {}

  [[noreturn]] void fail(const toml::node* at, const std::string& what, const std::string& fix) const {
    std::string where = file_;
    if (at) where += ":" + std::to_string(at->source().begin.line);
    throw std::runtime_error(where + ": " + what + (fix.empty() ? "" : " (" + fix + ")"));
  }

  std::string str(const toml::table& t, const std::string& key, const std::string& example,
                  bool required = true) const {
    const toml::node* n = t.get(key);
    if (!n) {
      if (required) fail(&t, "missing '" + key + "'", "e.g. " + example);
      return "";
    }
    if (!n->is_string()) fail(n, "'" + key + "' must be a string", "e.g. " + example);
    return std::string(*n->value<std::string>());
  }

  std::vector<std::string> list(const toml::table& t, const std::string& key,
                                const std::string& example, bool required = true) const {
    std::vector<std::string> out;
    const toml::node* n = t.get(key);
    if (!n) {
      if (required) fail(&t, "missing '" + key + "'", "e.g. " + example);
      return out;
    }
    const toml::array* a = n->as_array();
    if (!a) fail(n, "'" + key + "' must be a list of strings", "e.g. " + example);
    for (const auto& e : *a) {
      if (!e.is_string()) fail(&e, "'" + key + "' must hold strings", "e.g. " + example);
      out.emplace_back(*e.value<std::string>());
    }
    return out;
  }

 private:
  std::string file_;
};

}  // namespace

const SeriesEntry* Catalogue::find(const std::string& name) const {
  for (const auto& s : series)
    if (s.name == name) return &s;
  return nullptr;
}

std::vector<std::string> Catalogue::suites() const {
  std::vector<std::string> out;
  for (const auto& s : series)
    for (const auto& suite : s.suites)
      if (std::find(out.begin(), out.end(), suite) == out.end()) out.push_back(suite);
  return out;
}

std::string Catalogue::release_regex(const std::string& s) const {
  std::string escaped;
  for (char c : s) escaped += c == '.' ? std::string("\\.") : std::string(1, c);
  std::string r = release;
  if (auto at = r.find("{series}"); at != std::string::npos) r.replace(at, 8, escaped);
  return r;
}

std::vector<std::string> Catalogue::guest_modules() const {
  std::vector<std::string> out;
  for (const auto& r : requires_)
    for (const auto& m : r.modules) out.push_back(m);
  return out;
}

Catalogue load_catalogue(const std::string& path) {
  Reader rd(path);
  toml::table root;
  try {
    root = toml::parse_file(path);
  } catch (const toml::parse_error& e) {
    throw std::runtime_error(path + ":" + std::to_string(e.source().begin.line) + ": " +
                             std::string(e.description()));
  } catch (const std::exception& e) {
    throw std::runtime_error(path + ": cannot read the kernel catalogue: " + e.what());
  }
  Catalogue c;
  c.file = path;
  c.mirror = rd.str(root, "mirror", "mirror = \"http://deb.debian.org/debian\"");
  c.keyring = rd.str(root, "keyring", "keyring = \"/usr/share/keyrings/debian-archive-keyring.gpg\"");
  c.arch = rd.str(root, "arch", "arch = \"amd64\"");
  c.release = rd.str(root, "release", "release = '{series}[.-][0-9][0-9.-]*-amd64'");
  try {
    const std::regex check(c.release_regex("1.0"));
  } catch (const std::regex_error& e) {
    rd.fail(root.get("release"), std::string("'release' is not a valid regex: ") + e.what(), "");
  }
  const toml::table* layouts = root["layout"].as_table();
  if (!layouts) rd.fail(&root, "missing [layout.<name>] tables", "e.g. [layout.split]");
  for (auto&& [name, node] : *layouts) {
    const toml::table* t = node.as_table();
    if (!t) rd.fail(&node, "layout." + std::string(name.str()) + " must be a table", "");
    Layout l;
    l.kernel = rd.list(*t, "kernel", "kernel = [\"linux-image-{release}\"]");
    l.with = rd.list(*t, "with", "with = [\"linux-modules-{release}\"]", false);
    c.layouts[std::string(name.str())] = l;
  }
  const toml::table* files = root["files"].as_table();
  if (!files) rd.fail(&root, "missing [files]", "vmlinuz, modules and config search paths");
  for (const char* k : {"vmlinuz", "modules", "config"})
    c.files[k] = rd.list(*files, k, std::string(k) + " = [\"boot/" + k + "-{release}\"]");
  if (const toml::array* reqs = root["require"].as_array())
    for (const auto& n : *reqs) {
      const toml::table* t = n.as_table();
      if (!t) rd.fail(&n, "[[require]] must be a table", "");
      Requirement r;
      r.option = rd.str(*t, "option", "option = \"CONFIG_FUSE_FS\"");
      if (r.option.rfind("CONFIG_", 0) != 0)
        rd.fail(t->get("option"), "option '" + r.option + "' does not start with CONFIG_", "");
      r.modules = rd.list(*t, "modules", "modules = [\"fuse\"]");
      r.need = rd.str(*t, "need", "need = \"xfs targets\"");
      r.fs = rd.str(*t, "fs", "fs = \"xfs\"", false);
      c.requires_.push_back(r);
    }
  const toml::array* series = root["series"].as_array();
  if (!series) rd.fail(&root, "missing [[series]] entries", "[[series]] name = \"6.1\" ...");
  std::set<std::string> names;
  for (const auto& n : *series) {
    const toml::table* t = n.as_table();
    if (!t) rd.fail(&n, "[[series]] must be a table", "");
    SeriesEntry s;
    s.name = rd.str(*t, "name", "name = \"6.1\"");
    if (!std::regex_match(s.name, std::regex("[0-9]+\\.[0-9]+")))
      rd.fail(t->get("name"), "series '" + s.name + "' is not MAJOR.MINOR", "e.g. name = \"6.12\"");
    if (!names.insert(s.name).second) rd.fail(t, "series " + s.name + " is listed twice", "");
    s.suites = rd.list(*t, "suites", "suites = [\"trixie\"]");
    if (s.suites.empty()) rd.fail(t, "series " + s.name + " names no suite", "suites = [\"trixie\"]");
    s.layout = rd.str(*t, "layout", "layout = \"image-unsigned\"");
    if (!c.layouts.count(s.layout)) {
      std::string known;
      for (const auto& [k, v] : c.layouts) known += (known.empty() ? "" : ", ") + k;
      rd.fail(t->get("layout"), "unknown layout '" + s.layout + "'", "one of " + known);
    }
    s.note = rd.str(*t, "note", "note = \"...\"", false);
    c.series.push_back(s);
  }
  return c;
}

const Catalogue& catalogue() {
  static const Catalogue c = load_catalogue(data_dir() + "/kernels.toml");
  return c;
}

std::string expand(const std::string& tmpl, const std::string& release) {
  std::string s = tmpl;
  for (size_t at; (at = s.find("{release}")) != std::string::npos;) s.replace(at, 9, release);
  return s;
}

bool Installed::present() const {
  return !vmlinuz.empty() && fs::exists(vmlinuz) && !modules.empty() && fs::is_directory(modules);
}

std::string kernels_dir() { return cache_dir() + "/vm/kernels"; }

std::optional<Installed> installed(const std::string& name) {
  const std::string dir = kernels_dir() + "/" + name;
  const std::string text = read_text(dir + "/kernel.json");
  if (text.empty()) return std::nullopt;
  try {
    const auto j = nlohmann::json::parse(text);
    Installed k;
    k.name = name;
    k.dir = dir;
    k.release = j.at("release");
    k.source = j.value("source", "debian");
    k.packages = j.value("packages", std::vector<std::string>{});
    auto abs = [&](const std::string& rel) { return rel.empty() ? rel : dir + "/" + rel; };
    k.vmlinuz = abs(j.value("vmlinuz", ""));
    k.modules = abs(j.value("modules", ""));
    k.config = abs(j.value("config", ""));
    return k;
  } catch (const std::exception&) {
    return std::nullopt;  // a half-written manifest: as if not fetched
  }
}

std::vector<Installed> installed_all() {
  std::vector<Installed> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(kernels_dir(), ec))
    if (auto k = installed(e.path().filename().string())) out.push_back(*k);
  std::sort(out.begin(), out.end(), [](const Installed& a, const Installed& b) { return a.name < b.name; });
  return out;
}

void save(const Installed& k) {
  auto rel = [&](const std::string& p) {
    return p.empty() ? p : fs::relative(p, k.dir).string();
  };
  nlohmann::json j = {{"name", k.name},       {"release", k.release},      {"source", k.source},
                      {"packages", k.packages}, {"vmlinuz", rel(k.vmlinuz)}, {"modules", rel(k.modules)},
                      {"config", rel(k.config)}};
  write_file_atomic(k.dir + "/kernel.json", j.dump(2) + "\n");
}

void locate_files(const std::string& root, const std::string& release, Installed& k) {
  auto first = [&](const std::string& key, bool dir) -> std::string {
    for (const auto& t : catalogue().files.at(key)) {
      const std::string p = root + "/" + expand(t, release);
      if (dir ? fs::is_directory(p) : fs::is_regular_file(p)) return p;
    }
    return "";
  };
  k.release = release;
  k.vmlinuz = first("vmlinuz", false);
  k.modules = first("modules", true);
  k.config = first("config", false);
}

std::vector<std::string> releases_under(const std::string& root) {
  std::set<std::string> out;
  std::error_code ec;
  for (const char* d : {"/lib/modules", "/usr/lib/modules"})
    for (const auto& e : fs::directory_iterator(root + d, ec))
      if (e.is_directory()) out.insert(e.path().filename().string());
  return {out.begin(), out.end()};
}

std::string describe(const Requirement& r) { return r.option + " (" + r.need + ")"; }

std::vector<Requirement> missing_requirements(const Installed& k) {
  auto key = [](std::string m) {
    m = m.substr(m.find_last_of('/') + 1);
    m = m.substr(0, m.find(".ko"));
    std::replace(m.begin(), m.end(), '-', '_');
    return m;
  };
  std::map<std::string, char> config;  // CONFIG_X -> 'y' or 'm'
  std::set<std::string> modules;       // built in or loadable, by module key
  if (!k.config.empty()) {
    std::istringstream in(read_text(k.config));
    for (std::string line; std::getline(in, line);)
      if (auto eq = line.find('='); line.rfind("CONFIG_", 0) == 0 && eq != std::string::npos)
        config[line.substr(0, eq)] = line[eq + 1];
  } else {
    for (const char* f : {"/modules.builtin", "/modules.dep"}) {
      std::istringstream in(read_text(k.modules + f));
      for (std::string line; std::getline(in, line);)
        if (!line.empty()) modules.insert(key(line.substr(0, line.find(':'))));
    }
  }
  std::vector<Requirement> missing;
  for (const auto& r : catalogue().requires_) {
    bool ok = false;
    if (!k.config.empty()) {
      auto it = config.find(r.option);
      ok = it != config.end() && (it->second == 'y' || it->second == 'm');
    } else {
      for (const auto& m : r.modules) ok |= modules.count(key(m)) > 0;
    }
    if (!ok) missing.push_back(r);
  }
  return missing;
}

}  // namespace syncprobe::vm
