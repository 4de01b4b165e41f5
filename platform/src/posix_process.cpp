#include "syncprobe/posix_process.h"

#include <cerrno>
#include <csetjmp>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <poll.h>
#include <stdexcept>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>
#include <vector>

namespace syncprobe {

namespace {

enum class Op : uint32_t {
  open, close, pwrite, pread, fsync, fdatasync, sync_file_range, msync_write, syncfs, sync,
  stat, rename, unlink, mmap_read,
};

// Wire format between runner and worker: a fixed header, then the two paths
// and the data. The worker answers with a Reply and, for reads, the bytes.
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

bool write_all(int fd, const void* p, size_t n) {
  auto* c = static_cast<const char*>(p);
  while (n) {
    ssize_t w = ::write(fd, c, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return false;
    c += w;
    n -= size_t(w);
  }
  return true;
}

bool read_all(int fd, void* p, size_t n) {
  auto* c = static_cast<char*>(p);
  while (n) {
    ssize_t r = ::read(fd, c, n);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return false;
    c += r;
    n -= size_t(r);
  }
  return true;
}

// ---- the worker side: one loop, one syscall per request ------------------------

sigjmp_buf g_sigbus_jump;
void on_sigbus(int) { siglongjmp(g_sigbus_jump, 1); }

// Page-aligned scratch buffer (O_DIRECT needs alignment).
std::byte* aligned(size_t n) {
  static void* buf = nullptr;
  static size_t cap = 0;
  if (n > cap) {
    std::free(buf);
    cap = (n + 4095) & ~size_t(4095);
    if (posix_memalign(&buf, 4096, cap ? cap : 4096) != 0) std::abort();
  }
  return static_cast<std::byte*>(buf);
}

Reply serve(const Header& h, const std::string& path, const std::string& path2,
            std::vector<std::byte>& data, std::vector<std::byte>& out) {
  auto result = [](int64_t r) {
    return r < 0 ? Reply{-1, errno, 0} : Reply{r, 0, 0};
  };
  switch (h.op) {
    case Op::open: {
      int flags = (h.flags & kRdonly) || (h.flags & kDirectory) ? O_RDONLY : O_RDWR;
      if (h.flags & kCreate) flags |= O_CREAT;
      if (h.flags & kTrunc) flags |= O_TRUNC;
      if (h.flags & kDirect) flags |= O_DIRECT;
      if (h.flags & kSync) flags |= O_SYNC;
      if (h.flags & kDsync) flags |= O_DSYNC;
      if (h.flags & kDirectory) flags = O_RDONLY | O_DIRECTORY;
      return result(::open(path.c_str(), flags | O_CLOEXEC, 0644));
    }
    case Op::close:
      return result(::close(h.fd));
    case Op::pwrite: {
      std::byte* buf = aligned(data.size());
      if (!data.empty()) std::memcpy(buf, data.data(), data.size());
      return result(::pwrite(h.fd, buf, data.size(), off_t(h.offset)));
    }
    case Op::pread: {
      std::byte* buf = aligned(h.length);
      ssize_t r = ::pread(h.fd, buf, h.length, off_t(h.offset));
      if (r < 0) return result(r);
      out.assign(buf, buf + r);
      return Reply{r, 0, uint64_t(r)};
    }
    case Op::fsync:
      return result(::fsync(h.fd));
    case Op::fdatasync:
      return result(::fdatasync(h.fd));
    case Op::sync_file_range:
      return result(::sync_file_range(h.fd, off_t(h.offset), off_t(h.length), h.flags));
    case Op::msync_write: {
      const long page = sysconf(_SC_PAGESIZE);
      const uint64_t start = h.offset & ~uint64_t(page - 1);
      const size_t span = size_t(h.offset - start + data.size());
      void* map = ::mmap(nullptr, span, PROT_READ | PROT_WRITE, MAP_SHARED, h.fd, off_t(start));
      if (map == MAP_FAILED) return result(-1);
      struct sigaction sa {}, old {};
      sa.sa_handler = on_sigbus;
      sigaction(SIGBUS, &sa, &old);
      Reply r;
      if (sigsetjmp(g_sigbus_jump, 1) == 0) {
        std::memcpy(static_cast<char*>(map) + (h.offset - start), data.data(), data.size());
        r = result(::msync(map, span, MS_SYNC));
      } else {
        r = Reply{-1, EFAULT, 0};  // SIGBUS: the page could not be brought in
      }
      sigaction(SIGBUS, &old, nullptr);
      ::munmap(map, span);
      return r;
    }
    case Op::mmap_read: {
      // Reply data: one byte (1: SIGBUS), one byte per page of mincore(2),
      // then the bytes copied before any signal; ret is how many.
      const long page = sysconf(_SC_PAGESIZE);
      const uint64_t start = h.offset & ~uint64_t(page - 1);
      const size_t span = size_t(h.offset - start + h.length);
      if (span == 0) return Reply{0, 0, 0};
      void* map = ::mmap(nullptr, span, PROT_READ, MAP_SHARED, h.fd, off_t(start));
      if (map == MAP_FAILED) return result(-1);
      const size_t pages = (span + size_t(page) - 1) / size_t(page);
      std::vector<unsigned char> vec(pages);
      if (::mincore(map, span, vec.data()) < 0) std::fill(vec.begin(), vec.end(), 0xff);
      out.assign(1 + pages, std::byte{0});
      for (size_t i = 0; i < pages; ++i) out[1 + i] = std::byte(vec[i] == 0xff ? 2 : vec[i] & 1);
      struct sigaction sa {}, old {};
      sa.sa_handler = on_sigbus;
      sigaction(SIGBUS, &sa, &old);
      const char* src = static_cast<const char*>(map) + (h.offset - start);
      std::byte* dst = aligned(h.length);
      volatile uint64_t copied = 0;
      if (sigsetjmp(g_sigbus_jump, 1) == 0) {
        // A page at a time, so that what came before a faulting page is kept.
        while (copied < h.length) {
          const uint64_t n = std::min<uint64_t>(h.length - copied, uint64_t(page) - (h.offset + copied) % uint64_t(page));
          std::memcpy(dst + copied, src + copied, n);
          copied = copied + n;
        }
      } else {
        out[0] = std::byte{1};
      }
      sigaction(SIGBUS, &old, nullptr);
      ::munmap(map, span);
      out.insert(out.end(), dst, dst + copied);
      return Reply{int64_t(copied), 0, 0};
    }
    case Op::syncfs:
      return result(::syncfs(h.fd));
    case Op::sync:
      ::sync();
      return Reply{0, 0, 0};
    case Op::stat: {
      struct stat st {};
      if (::stat(path.c_str(), &st) < 0) return result(-1);
      return Reply{int64_t(st.st_size), 0, 0};
    }
    case Op::rename:
      return result(::rename(path.c_str(), path2.c_str()));
    case Op::unlink:
      return result(::unlink(path.c_str()));
  }
  return Reply{-1, ENOSYS, 0};
}

[[noreturn]] void worker_main(int sock, const std::string& root) {
  signal(SIGINT, SIG_IGN);  // the runner decides when the worker ends
  signal(SIGTERM, SIG_DFL);
  signal(SIGPIPE, SIG_DFL);
  if (::chdir(root.c_str()) < 0) _exit(111);
  std::vector<std::byte> data, out;
  std::string path, path2;
  Header h{};
  while (read_all(sock, &h, sizeof h)) {
    path.resize(h.path_len);
    path2.resize(h.path2_len);
    data.resize(h.data_len);
    if (!read_all(sock, path.data(), path.size()) || !read_all(sock, path2.data(), path2.size()) ||
        !read_all(sock, data.data(), data.size()))
      break;
    out.clear();
    Reply r = serve(h, path, path2, data, out);
    r.data_len = out.size();
    if (!write_all(sock, &r, sizeof r) || !write_all(sock, out.data(), out.size())) break;
  }
  _exit(0);
}

}  // namespace

struct PosixProcess::Request {
  Header h{};
  std::string path, path2;
  std::span<const std::byte> data;
};

PosixProcess::PosixProcess(const std::string& root, std::chrono::milliseconds timeout)
    : timeout_(timeout) {
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
    throw std::runtime_error(std::string("socketpair: ") + std::strerror(errno));
  pid_ = fork();
  if (pid_ < 0) throw std::runtime_error(std::string("fork: ") + std::strerror(errno));
  if (pid_ == 0) {
    ::close(sv[0]);
    worker_main(sv[1], root);
  }
  ::close(sv[1]);
  sock_ = sv[0];
}

PosixProcess::~PosixProcess() { kill_worker(); }

bool PosixProcess::kill_worker(std::chrono::milliseconds grace) {
  if (sock_ >= 0) ::close(sock_);
  sock_ = -1;
  if (pid_ <= 0) return true;
  ::kill(pid_, SIGKILL);
  const auto deadline = std::chrono::steady_clock::now() + grace;
  for (;;) {
    int status = 0;
    pid_t r = waitpid(pid_, &status, WNOHANG);
    if (r == pid_ || (r < 0 && errno == ECHILD)) {
      pid_ = -1;
      return true;
    }
    if (std::chrono::steady_clock::now() > deadline) return false;  // in the kernel still
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

SysResult PosixProcess::call(const Request& req, std::span<std::byte> out,
                            std::vector<std::byte>* raw) {
  if (hung_ || sock_ < 0) return SysResult::hang();
  Header h = req.h;
  h.path_len = uint32_t(req.path.size());
  h.path2_len = uint32_t(req.path2.size());
  h.data_len = req.data.size();
  if (!write_all(sock_, &h, sizeof h) || !write_all(sock_, req.path.data(), req.path.size()) ||
      !write_all(sock_, req.path2.data(), req.path2.size()) ||
      !write_all(sock_, req.data.data(), req.data.size()))
    throw std::runtime_error("worker process " + std::to_string(pid_) + " went away");
  pollfd p{sock_, POLLIN, 0};
  const auto deadline = std::chrono::steady_clock::now() + timeout_;
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      hung_ = true;
      return SysResult::hang();
    }
    int r = poll(&p, 1, int(left.count()));
    if (r > 0) break;
    if (r < 0 && errno != EINTR) throw std::runtime_error("poll on worker socket failed");
  }
  Reply rep{};
  if (!read_all(sock_, &rep, sizeof rep))
    throw std::runtime_error("worker process " + std::to_string(pid_) + " died");
  std::vector<std::byte> tmp(rep.data_len);
  if (!read_all(sock_, tmp.data(), tmp.size()))
    throw std::runtime_error("worker process " + std::to_string(pid_) + " died mid-reply");
  if (!out.empty() && !tmp.empty()) std::memcpy(out.data(), tmp.data(), std::min(out.size(), tmp.size()));
  if (raw) *raw = std::move(tmp);
  return rep.ret < 0 ? SysResult::failure(rep.err) : SysResult::success(rep.ret);
}

SysResult PosixProcess::open(const std::string& path, const OpenFlags& flags) {
  Request r;
  r.h.op = Op::open;
  r.path = path;
  r.h.flags = (flags.create ? kCreate : 0) | (flags.truncate ? kTrunc : 0) |
              (flags.direct ? kDirect : 0) | (flags.sync ? kSync : 0) |
              (flags.dsync ? kDsync : 0) | (flags.read_only ? kRdonly : 0) |
              (flags.directory ? kDirectory : 0);
  return call(r);
}

SysResult PosixProcess::close(int fd) {
  Request r;
  r.h.op = Op::close;
  r.h.fd = fd;
  return call(r);
}

SysResult PosixProcess::pwrite(int fd, std::span<const std::byte> data, uint64_t offset) {
  Request r;
  r.h.op = Op::pwrite;
  r.h.fd = fd;
  r.h.offset = offset;
  r.data = data;
  return call(r);
}

SysResult PosixProcess::pread(int fd, std::span<std::byte> out, uint64_t offset) {
  Request r;
  r.h.op = Op::pread;
  r.h.fd = fd;
  r.h.offset = offset;
  r.h.length = out.size();
  return call(r, out);
}

SysResult PosixProcess::fsync(int fd) {
  Request r;
  r.h.op = Op::fsync;
  r.h.fd = fd;
  return call(r);
}

SysResult PosixProcess::fdatasync(int fd) {
  Request r;
  r.h.op = Op::fdatasync;
  r.h.fd = fd;
  return call(r);
}

SysResult PosixProcess::sync_file_range(int fd, uint64_t offset, uint64_t length,
                                        const SyncFileRangeFlags& flags) {
  Request r;
  r.h.op = Op::sync_file_range;
  r.h.fd = fd;
  r.h.offset = offset;
  r.h.length = length;
  r.h.flags = (flags.wait_before ? SYNC_FILE_RANGE_WAIT_BEFORE : 0) |
              (flags.write ? SYNC_FILE_RANGE_WRITE : 0) |
              (flags.wait_after ? SYNC_FILE_RANGE_WAIT_AFTER : 0);
  return call(r);
}

SysResult PosixProcess::msync_write(int fd, std::span<const std::byte> data, uint64_t offset) {
  Request r;
  r.h.op = Op::msync_write;
  r.h.fd = fd;
  r.h.offset = offset;
  r.data = data;
  return call(r);
}

MappedRead PosixProcess::mmap_read(int fd, std::span<std::byte> out, uint64_t offset) {
  Request r;
  r.h.op = Op::mmap_read;
  r.h.fd = fd;
  r.h.offset = offset;
  r.h.length = out.size();
  std::vector<std::byte> reply;
  MappedRead m;
  m.result = call(r, {}, &reply);
  if (!m.result.ok() || reply.empty()) return m;
  const long page = sysconf(_SC_PAGESIZE);
  const size_t pages = (offset % uint64_t(page) + out.size() + size_t(page) - 1) / size_t(page);
  if (reply.size() < 1 + pages) {
    m.result = SysResult::harness_failure("mmap_read reply");
    return m;
  }
  if (reply[0] == std::byte{1}) m.signal = "SIGBUS";
  for (size_t i = 0; i < pages; ++i) m.resident.push_back(reply[1 + i] == std::byte{1});
  const size_t copied = std::min(out.size(), reply.size() - 1 - pages);
  std::memcpy(out.data(), reply.data() + 1 + pages, copied);
  m.copied = copied;
  if (!m.signal.empty()) m.result = SysResult{-1, 0, false};
  return m;
}

SysResult PosixProcess::syncfs(int fd) {
  Request r;
  r.h.op = Op::syncfs;
  r.h.fd = fd;
  return call(r);
}

SysResult PosixProcess::sync() {
  Request r;
  r.h.op = Op::sync;
  return call(r);
}

SysResult PosixProcess::stat(const std::string& path) {
  Request r;
  r.h.op = Op::stat;
  r.path = path;
  return call(r);
}

SysResult PosixProcess::rename(const std::string& from, const std::string& to) {
  Request r;
  r.h.op = Op::rename;
  r.path = from;
  r.path2 = to;
  return call(r);
}

SysResult PosixProcess::unlink(const std::string& path) {
  Request r;
  r.h.op = Op::unlink;
  r.path = path;
  return call(r);
}

}  // namespace syncprobe
