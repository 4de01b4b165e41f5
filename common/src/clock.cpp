#include "syncprobe/clock.h"

#include <chrono>
#include <ctime>

#include <fmt/chrono.h>
#include <fmt/format.h>

namespace syncprobe {

std::string utc_now(const std::string& spec) {
  const std::time_t t = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  return fmt::format(fmt::runtime("{:" + spec + "}"), fmt::gmtime(t));
}

}  // namespace syncprobe
