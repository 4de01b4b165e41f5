#include "guest_protocol.h"

#include "syncprobe/blockdev_storage.h"

namespace syncprobe::vm {

std::string encode_input(const GuestInput& in) {
  nlohmann::json j = {{"step_timeout_ms", in.step_timeout_ms},
                      {"cases", nlohmann::json::array()},
                      {"targets", nlohmann::json::array()}};
  for (const Case& c : in.cases) j["cases"].push_back(c);
  for (const auto& t : in.targets)
    j["targets"].push_back({{"name", t.name}, {"fs", t.fs}});
  std::string text = j.dump();
  text.push_back('\0');
  text.resize((text.size() + 4095) / 4096 * 4096, '\0');
  return text;
}

GuestInput decode_input(const std::string& text) {
  const auto j = nlohmann::json::parse(text.substr(0, text.find('\0')));
  GuestInput in;
  in.step_timeout_ms = j.value("step_timeout_ms", 20000);
  for (const auto& c : j.at("cases")) in.cases.push_back(c.get<Case>());
  for (const auto& t : j.at("targets"))
    in.targets.push_back({t.at("name"), t.at("fs").get<FilesystemSpec>()});
  return in;
}

GuestOutput decode_output(const std::vector<std::string>& lines) {
  GuestOutput out;
  for (const auto& line : lines) {
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(line);
    } catch (const std::exception&) {
      continue;
    }
    const std::string type = j.value("type", "");
    if (type == "hello") out.kernel = j.value("kernel", "");
    if (type == "result") out.results.push_back(j.at("result").get<CaseResult>());
    if (type == "done") out.done = true;
    if (type == "fatal") out.fatal = j.value("error", "");
  }
  return out;
}

std::string hello_line(const std::string& kernel) {
  return nlohmann::json{{"type", "hello"}, {"kernel", kernel}}.dump() + "\n";
}
std::string result_line(const CaseResult& r) {
  return nlohmann::json{{"type", "result"}, {"result", r}}.dump() + "\n";
}
std::string done_line() { return nlohmann::json{{"type", "done"}}.dump() + "\n"; }
std::string fatal_line(const std::string& error) {
  return nlohmann::json{{"type", "fatal"}, {"error", error}}.dump() + "\n";
}

std::set<std::string> vm_capabilities(const FilesystemSpec& fs) { return blockdev_storage_capabilities(fs); }

}  // namespace syncprobe::vm
