#pragma once
// The state of one mount: the reference file system, the lock every FUSE
// operation and control request takes (ref::FileSystem wants one caller at
// a time), and the log of injected faults.
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>

#include <nlohmann/json.hpp>

#include "syncprobe/ref/file_system.h"

struct fuse_operations;

namespace syncprobe::refmount {

class MountedFs {
 public:
  MountedFs(std::unique_ptr<ref::Policy> policy, const ref::FileSystem::Options& options,
            std::string control_socket, std::ostream* log);

  // The FUSE operations over this object (fuse_get_context()->private_data).
  static const fuse_operations& operations();

  // One control request (refmount.h), answered as JSON.
  nlohmann::json handle(const nlohmann::json& request);

  std::mutex& lock() { return mu_; }
  ref::FileSystem& fs() { return fs_; }
  const std::string& control_socket() const { return control_socket_; }
  std::string policy() const { return std::string(fs_.policy().name()); }
  void note_hung(const char* call);

 private:
  nlohmann::json status();
  nlohmann::json install_fault(const nlohmann::json& request);

  std::mutex mu_;
  ref::FileSystem fs_;
  std::string control_socket_;
  std::ostream* log_;
  std::deque<nlohmann::json> recent_faults_;  // the last injected faults, newest last
  uint64_t faults_logged_ = 0;
  uint64_t hung_calls_ = 0;
};

// A bare passthrough of a directory through the same FUSE settings (the
// benchmarks' baseline): private_data is the directory's file descriptor.
const fuse_operations& passthrough_operations();

}  // namespace syncprobe::refmount
