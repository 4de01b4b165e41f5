#pragma once
// Private to platform/: the wire between the runner (PosixProcess) and its
// worker (posix_worker.cpp): a fixed header, then the two paths and the
// data; the worker answers with a Reply and, for reads, the bytes.
#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <string>

namespace syncprobe::posix_wire {

enum class Op : uint32_t {
  open, close, pwrite, pread, fsync, fdatasync, sync_file_range, msync_write, syncfs, sync,
  stat, rename, unlink, mmap_read,
};

struct Header {
  Op op;
  int32_t fd;
  uint64_t offset;
  uint64_t length;
  uint32_t flags;
  uint32_t path_len;
  uint32_t path2_len;
  uint64_t data_len;
};

struct Reply {
  int64_t ret;
  int32_t err;
  uint64_t data_len;
};

constexpr uint32_t kCreate = 1, kTrunc = 2, kDirect = 4, kSync = 8, kDsync = 16, kRdonly = 32,
                   kDirectory = 64;

// MSG_NOSIGNAL: a worker that died must be an error of its case, never a
// SIGPIPE that kills the runner.
bool write_all(int fd, const void* p, size_t n);
bool read_all(int fd, void* p, size_t n);

// Serves requests on `sock` for paths relative to `root` until the socket
// closes. `parent`: the runner, which must still be there (else exit 112).
// `announce`: first send one empty Reply, so that a runner that exec'd the
// worker (under fiu-run) knows it is serving.
[[noreturn]] void worker_main(int sock, const std::string& root, pid_t parent, bool announce);

// The descriptor an exec'd worker finds its socket on.
constexpr int kExecSocketFd = 3;
// syncprobe-worker's main: `syncprobe-worker <root> <runner pid>`, the
// socket on kExecSocketFd; announces itself, then worker_main().
int exec_worker_main(int argc, char** argv);

}  // namespace syncprobe::posix_wire
