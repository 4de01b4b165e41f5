// The case's flow: what can only be checked once every step is parsed.
#include <algorithm>
#include <map>
#include <set>
#include <string>

#include "parse_support.h"
#include "syncprobe/steps.h"

namespace syncprobe::parse {

// Descriptors are opened before use and not used after close; probes are
// unique; proofs and @probe references name steps that exist (proofs: a
// later read_back).
void check_flow(const Case& c, const StepErrorAt& at) {
  std::map<std::string, std::string> open;  // fd name -> process
  std::map<std::string, size_t> probes;
  std::set<std::string> procs;
  for (const Step& s : c.steps) {
    if (s.proc.empty() || procs.count(s.proc)) continue;
    if (procs.size() == kMaxProcesses) {
      at(s, "process '" + s.proc + "' is one more than the " + std::to_string(kMaxProcesses) +
                " processes a case may use", "let the processes share names");
      break;
    }
    procs.insert(s.proc);
  }
  if (c.steps.size() > kMaxSteps)
    at(c.steps[kMaxSteps], "the case has " + std::to_string(c.steps.size()) + " steps, more than " +
                               std::to_string(kMaxSteps), "split it into several cases");
  for (size_t i = 0; i < c.steps.size(); ++i) {
    const Step& s = c.steps[i];
    if (!s.probe.empty()) {
      if (probes.count(s.probe))
        at(s, "probe '" + s.probe + "' is used twice in this case", "give each step its own probe");
      probes[s.probe] = i;
    }
    if (s.kind == StepKind::power_cut || s.kind == StepKind::read_back) {
      open.clear();
      continue;
    }
    if (s.kind == StepKind::remount && !open.empty())
      at(s, "descriptor '" + open.begin()->first + "' is still open at the remount",
         "close it first: an unmount needs every file closed");
    if (!s.has("fd")) continue;
    const std::string fd = s.arg("fd");
    if (s.kind == StepKind::open) {
      if (open.count(fd))
        at(s, "descriptor '" + fd + "' is already open", "close it first, or use another name");
      open[fd] = s.proc;
      continue;
    }
    auto it = open.find(fd);
    if (it == open.end()) {
      at(s, "descriptor '" + fd + "' is not open here",
         "open it first: { op = \"open\", fd = \"" + fd + "\"" +
             (s.proc != "a" ? ", proc = \"" + s.proc + "\"" : "") + " }");
    } else if (it->second != s.proc) {
      at(s, "descriptor '" + fd + "' belongs to process '" + it->second + "', not '" + s.proc + "'",
         "add proc = \"" + it->second + "\" or open it in process '" + s.proc + "'");
    } else if (s.kind == StepKind::close) {
      open.erase(it);
    }
  }
  // One fault layer per case: a libfiu fault (a program's calls fail) and a
  // device fault (the storage fails) in one case would leave every outcome
  // without a known cause (docs/apps.md).
  const Step* fiu = nullptr;
  const Step* device = nullptr;
  for (const Step& s : c.steps) {
    const bool is_fiu = s.kind == StepKind::fault && s.arg("range") == "libfiu";
    const bool is_device = (s.kind == StepKind::fault && !is_fiu) || s.kind == StepKind::thin_limit;
    if (is_fiu && !fiu) fiu = &s;
    if (is_device && !device) device = &s;
    if (fiu && device) {  // `s` is the step that completed the pair
      const bool fiu_first = device == &s;
      at(s, std::string("this case already injects a ") + (fiu_first ? "libfiu" : "device") + " fault (line " +
                std::to_string((fiu_first ? fiu : device)->line) + "); a " + (fiu_first ? "device" : "libfiu") +
                " fault as well would leave its outcomes without a known cause",
         "split it into two cases, one per fault layer");
      break;
    }
  }
  // A case without programs fails only its own processes' calls, which are
  // pwrite(2), never write(2): that point would never fire.
  const bool programs = std::any_of(c.steps.begin(), c.steps.end(), [](const Step& s) { return s.kind == StepKind::app; });
  for (const Step& s : c.steps)
    if (!programs && s.kind == StepKind::fault && s.arg("range") == "libfiu" && s.arg("point") == "posix/io/rw/write")
      at(s, "the case's own processes write with pwrite(2), never write(2): posix/io/rw/write would never fail",
         "use point = \"posix/io/rw/pwrite\"");
  for (size_t i = 0; i < c.steps.size(); ++i) {
    const Step& s = c.steps[i];
    if (!s.check) continue;
    if (!s.check->proof.empty()) {
      auto p = probes.find(s.check->proof);
      if (p == probes.end() || p->second <= i || c.steps[p->second].kind != StepKind::read_back)
        at(s, "proof '" + s.check->proof + "' names no later read_back",
           "add { op = \"read_back\", probe = \"" + s.check->proof + "\" } after this step");
    }
    const std::string& tag = s.check->expect_tag;
    if (!tag.empty() && tag[0] == '@' && !probes.count(tag.substr(1)))
      at(s, "expect_tag '" + tag + "' names no step of this case",
         "label the step whose reading you mean with probe = \"" + tag.substr(1) + "\"");
  }
}

}  // namespace syncprobe::parse
