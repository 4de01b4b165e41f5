#pragma once
// The across-kernels page: for each filesystem, every kernel measured in the
// run side by side (vm: targets and the host), ordered by kernel version,
// with the cells that changed from the neighbour to the left marked.
#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace syncprobe::report_detail {

// What the page needs from the report: the run, its summary, each result.
struct RunView {
  const nlohmann::json& run;
  const nlohmann::json& summary;
  std::function<nlohmann::json(const std::string& target, const std::string& c)> result;
  std::vector<std::string> cases;
};

// Columns of one filesystem: targets that completed a case on it, oldest
// kernel first; filesystems measured on fewer than two kernels are left out.
struct KernelColumns {
  std::string fs;                    // "ext4:data=journal"
  std::vector<std::string> targets;  // "vm:5.10:ext4:data=journal", ..., "host:ext4:data=journal"
  std::vector<std::string> kernels;  // their kernel releases
};
std::vector<KernelColumns> kernel_columns(const nlohmann::json& summary);

// True when `a` is an older kernel release than `b` ("5.10.0-32-amd64" < "6.1.0-50-amd64").
bool kernel_older(const std::string& a, const std::string& b);

// The page body (page() adds head and footer); links are relative to the report's root.
std::string across_kernels_body(const RunView& v);

}  // namespace syncprobe::report_detail
