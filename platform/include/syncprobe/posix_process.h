#pragma once
// A Process whose calls are real syscalls, made by a forked worker process
// so that each case process has its own descriptor table (as the second
// process of a case must) and so that a call stuck in the kernel cannot
// stall the runner: a call that does not answer within the timeout is
// reported as hung, and the worker is killed once the storage is released.
// A worker that dies makes its calls throw (the case is then an error); the
// runner never gets SIGPIPE from it, and a runner that dies takes its
// workers with it (PR_SET_PDEATHSIG).
//
// A worker is forked. Only when a process-level injector must sit in front
// of its calls (libfiu's preload, docs/apps.md) is the forked child turned,
// by exec, into libexec/syncprobe/syncprobe-worker (SYNCPROBE_WORKER) under
// the injector's command line; it serves the same socket the same way.
//
// REQUIRES: the caller is single-threaded when it creates the worker (fork).
#include <chrono>
#include <functional>
#include <string>
#include <sys/types.h>
#include <vector>

#include "syncprobe/storage.h"

namespace syncprobe {

// "SIGKILL" for 9.
std::string signal_name(int sig);

// Turns the worker's command line into the one it is exec'd with (libfiu:
// under fiu-run -x), as Injector::command() does for programs.
using WorkerCommand = std::function<std::vector<std::string>(const std::vector<std::string>&)>;

class PosixProcess final : public Process {
 public:
  // Forks a worker for paths relative to `root`. It works in root's parent, so
  // that an idle worker never keeps a mount at `root` busy. With `exec_under`,
  // the child execs syncprobe-worker through it and the constructor waits (at
  // most `timeout`) until the worker serves; throws a "harness:" error when
  // it cannot be found or does not start.
  PosixProcess(const std::string& root, std::chrono::milliseconds timeout,
               const WorkerCommand& exec_under = {});
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
  std::string death();  // what became of a worker whose socket failed (reaps it)
  void await_worker();  // an exec'd worker's announcement; throws when it does not come

  pid_t pid_ = -1;
  int sock_ = -1;
  std::chrono::milliseconds timeout_;
  bool hung_ = false;
};

}  // namespace syncprobe
