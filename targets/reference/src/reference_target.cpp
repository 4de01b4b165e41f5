#include "syncprobe/reference_target.h"

#include <chrono>
#include <ctime>

#include "syncprobe/interpreter.h"
#include "syncprobe/reference_storage.h"

namespace syncprobe {
namespace {

class ReferenceTarget final : public Target {
 public:
  explicit ReferenceTarget(std::string policy) : policy_(std::move(policy)) {}

  std::string name() const override { return "reference:" + policy_; }
  bool measured() const override { return false; }
  Availability availability() const override { return {}; }
  std::set<std::string> capabilities() const override { return reference_capabilities(policy_); }
  std::string lack_reason(const std::string& capability) const override {
    return reference_lack_reason(policy_, capability);
  }
  nlohmann::json environment() const override {
    return {{"kind", "reference"},
            {"policy", policy_},
            {"injector", "reference-device"},
            {"measured", false},
            {"note", "modelled, not measured"}};
  }

  CaseResult run(const Case& c, const RunContext&) override {
    CaseResult r = new_result(*this, c);
    const auto t0 = std::chrono::steady_clock::now();
    std::string error;
    auto storage = make_reference_storage(policy_, error);
    if (!storage) {
      r.status = CaseStatus::error;
      r.reason = error;
      return r;
    }
    r.environment = storage->environment();
    interpret(c, *storage, r);
    r.environment = storage->environment();  // with the counters the case moved
    r.duration_ns = uint64_t(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                 std::chrono::steady_clock::now() - t0)
                                 .count());
    return r;
  }

 private:
  std::string policy_;
};

}  // namespace

std::unique_ptr<Target> make_reference_target(const std::string& policy, std::string& error) {
  for (const auto& p : reference_policies())
    if (p == policy) return std::make_unique<ReferenceTarget>(policy);
  error = "unknown reference policy '" + policy + "': choose one of";
  for (const auto& p : reference_policies()) error += " " + p;
  return nullptr;
}

TargetKind reference_target_kind() {
  return {"reference", "reference:<policy>", make_reference_target,
          [] {
            std::vector<std::string> names;
            for (const auto& p : reference_policies()) names.push_back("reference:" + p);
            return names;
          },
          nullptr};
}

}  // namespace syncprobe
