#pragma once
// One qemu-io process kept running between steps (qemu variant "keep"): the
// guest's view of one QEMU instance that lives through the fault, the heal
// and its own retried flush. Commands go to its stdin; a command is complete
// when qemu-io prints its next prompt.
#include <sys/types.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "syncprobe/app_driver.h"

namespace syncprobe {

class QemuIoSession final : public AppServer {
 public:
  // Starts `argv` (qemu-io, possibly under the process injector's command)
  // and waits for its first prompt; nullptr with `error` when it cannot.
  static std::unique_ptr<QemuIoSession> start(const std::vector<std::string>& argv,
                                              AppSession& session, std::string& error);
  ~QemuIoSession() override;

  // Sends `commands` and collects what qemu-io printed until each has
  // finished. Hang past the deadline; failure (errno 0) when a command
  // printed "failed"; harness failure when qemu-io is gone.
  SysResult run(const std::vector<std::string>& commands, nlohmann::json& evidence,
                std::string* output = nullptr);
  std::string stop(bool kill) override;  // "quit", then SIGKILL

 private:
  QemuIoSession(pid_t pid, int in, int out, AppSession& session)
      : pid_(pid), in_(in), out_(out), session_(session) {}
  // Reads until `prompts` prompts have been seen in total or the deadline.
  bool wait_prompts(size_t prompts, std::chrono::steady_clock::time_point deadline);

  pid_t pid_;
  int in_, out_;
  AppSession& session_;
  size_t prompts_seen_ = 0, commands_sent_ = 0;
  std::string unread_;  // output since the last command finished
};

}  // namespace syncprobe
