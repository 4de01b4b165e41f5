#pragma once
// A Process whose calls are real syscalls, made by a forked worker process
// so that each case process has its own descriptor table (as the second
// process of a case must) and so that a call stuck in the kernel cannot
// stall the runner: a call that does not answer within the timeout is
// reported as hung, and the worker is killed once the storage is released.
//
// REQUIRES: the caller is single-threaded when it creates the worker (fork).
#include <chrono>
#include <string>
#include <sys/types.h>
#include <vector>

#include "syncprobe/storage.h"

namespace syncprobe {

class PosixProcess final : public Process {
 public:
  // Forks a worker whose working directory is `root` (paths are relative to it).
  PosixProcess(const std::string& root, std::chrono::milliseconds timeout);
  ~PosixProcess() override;  // kills the worker
  PosixProcess(const PosixProcess&) = delete;
  PosixProcess& operator=(const PosixProcess&) = delete;

  SysResult open(const std::string& path, const OpenFlags& flags) override;
  SysResult close(int fd) override;
  SysResult pwrite(int fd, std::span<const std::byte> data, uint64_t offset) override;
  SysResult pread(int fd, std::span<std::byte> out, uint64_t offset) override;
  SysResult fsync(int fd) override;
  SysResult fdatasync(int fd) override;
  SysResult sync_file_range(int fd, uint64_t offset, uint64_t length,
                            const SyncFileRangeFlags& flags) override;
  SysResult msync_write(int fd, std::span<const std::byte> data, uint64_t offset) override;
  MappedRead mmap_read(int fd, std::span<std::byte> out, uint64_t offset) override;
  SysResult syncfs(int fd) override;
  SysResult sync() override;
  SysResult stat(const std::string& path) override;
  SysResult rename(const std::string& from, const std::string& to) override;
  SysResult unlink(const std::string& path) override;

  // Kills the worker (its descriptors close with it) and reaps it, waiting at
  // most `grace` for a worker stuck in the kernel. True when it was reaped.
  bool kill_worker(std::chrono::milliseconds grace = std::chrono::milliseconds(5000));
  bool alive() const { return pid_ > 0; }
  // True once a call has timed out: the worker may still be inside it.
  bool hung() const { return hung_; }
  pid_t pid() const { return pid_; }

 private:
  struct Request;
  // `raw`, when given, receives the reply's whole data (for mmap_read).
  SysResult call(const Request& req, std::span<std::byte> out = {},
                 std::vector<std::byte>* raw = nullptr);

  pid_t pid_ = -1;
  int sock_ = -1;
  std::chrono::milliseconds timeout_;
  bool hung_ = false;
};

}  // namespace syncprobe
