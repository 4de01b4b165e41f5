// The worker side of PosixProcess: one loop, one syscall per request. It
// runs in a forked child of the runner, or in syncprobe-worker when the
// worker is exec'd under a process-level injector (worker.cpp).
#include "posix_wire.h"

#include <csetjmp>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <filesystem>
#include <vector>

namespace syncprobe::posix_wire {

bool write_all(int fd, const void* p, size_t n) {
  auto* c = static_cast<const char*>(p);
  while (n) {
    ssize_t w = ::send(fd, c, n, MSG_NOSIGNAL);
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

namespace {

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

}  // namespace

void worker_main(int sock, const std::string& root, pid_t parent, bool announce) {
  // The runner decides when the worker ends; a runner that dies takes its
  // workers with it (a worker stuck in the kernel dies once released).
  signal(SIGINT, SIG_IGN);
  signal(SIGTERM, SIG_IGN);
  signal(SIGPIPE, SIG_DFL);
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (getppid() != parent) _exit(112);
  // The worker works beside the root, not in it: an idle worker must not
  // keep a mount busy (a remount with no descriptor open must work).
  // "/a/b/" is "/a/b": a trailing slash would leave no name to prefix.
  std::filesystem::path r = std::filesystem::path(root).lexically_normal();
  if (!r.has_filename() && r != r.root_path()) r = r.parent_path();
  const std::string prefix = r.filename().string() + "/";
  if (::chdir(r.parent_path().c_str()) < 0) _exit(111);
  if (announce) {
    const Reply ready{0, 0, 0};
    if (!write_all(sock, &ready, sizeof ready)) _exit(0);
  }
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
    if (!path.empty() && path[0] != '/') path = prefix + path;
    if (!path2.empty() && path2[0] != '/') path2 = prefix + path2;
    Reply rep = serve(h, path, path2, data, out);
    rep.data_len = out.size();
    if (!write_all(sock, &rep, sizeof rep) || !write_all(sock, out.data(), out.size())) break;
  }
  _exit(0);
}

int exec_worker_main(int argc, char** argv) {
  if (argc != 3) {
    std::fputs("syncprobe-worker: started by syncprobe only (a worker of a case process)\n", stderr);
    return 2;
  }
  const pid_t parent = pid_t(std::atol(argv[2]));
  if (fcntl(kExecSocketFd, F_SETFD, FD_CLOEXEC) < 0) return 2;  // not exec'd by the runner
  worker_main(kExecSocketFd, argv[1], parent, true);
}

}  // namespace syncprobe::posix_wire
