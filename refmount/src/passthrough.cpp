// A bare FUSE passthrough of one directory, with the mount's own FUSE
// settings (direct I/O, no attribute caching, one request at a time): what
// the mounted reference costs beyond FUSE itself is measured against it.
#define FUSE_USE_VERSION 31
#include <dirent.h>
#include <fcntl.h>
#include <fuse.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>

#include "mounted_fs.h"

namespace syncprobe::refmount {
namespace {

int root() { return int(reinterpret_cast<intptr_t>(fuse_get_context()->private_data)); }
std::string rel(const char* path) {
  while (*path == '/') ++path;
  return *path ? path : ".";
}
int neg(int r) { return r < 0 ? -errno : r; }

void* pt_init(fuse_conn_info* conn, fuse_config* cfg) {
  cfg->use_ino = 1;
  cfg->direct_io = 1;
  cfg->entry_timeout = cfg->attr_timeout = cfg->negative_timeout = 0;
  cfg->hard_remove = 1;
  conn->want &= ~unsigned(FUSE_CAP_WRITEBACK_CACHE);
  return fuse_get_context()->private_data;
}

int pt_getattr(const char* path, struct stat* st, fuse_file_info* fi) {
  if (fi) return neg(::fstat(int(fi->fh), st));
  return neg(::fstatat(root(), rel(path).c_str(), st, AT_SYMLINK_NOFOLLOW));
}

int pt_readdir(const char* path, void* buf, fuse_fill_dir_t filler, off_t, fuse_file_info*,
               fuse_readdir_flags) {
  const int fd = ::openat(root(), rel(path).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return -errno;
  DIR* d = ::fdopendir(fd);
  if (!d) {
    const int e = errno;
    ::close(fd);
    return -e;
  }
  while (dirent* e = ::readdir(d))
    if (filler(buf, e->d_name, nullptr, 0, fuse_fill_dir_flags(0))) break;
  ::closedir(d);
  return 0;
}

int pt_mkdir(const char* path, mode_t mode) { return neg(::mkdirat(root(), rel(path).c_str(), mode)); }
int pt_unlink(const char* path) { return neg(::unlinkat(root(), rel(path).c_str(), 0)); }
int pt_rmdir(const char* path) { return neg(::unlinkat(root(), rel(path).c_str(), AT_REMOVEDIR)); }
int pt_rename(const char* from, const char* to, unsigned int flags) {
  return neg(::renameat2(root(), rel(from).c_str(), root(), rel(to).c_str(), flags));
}
int pt_chmod(const char* path, mode_t mode, fuse_file_info*) {
  return neg(::fchmodat(root(), rel(path).c_str(), mode, 0));
}
int pt_truncate(const char* path, off_t size, fuse_file_info* fi) {
  if (fi) return neg(::ftruncate(int(fi->fh), size));
  const int fd = ::openat(root(), rel(path).c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) return -errno;
  const int r = neg(::ftruncate(fd, size));
  ::close(fd);
  return r;
}
int pt_open(const char* path, fuse_file_info* fi) {
  const int fd = ::openat(root(), rel(path).c_str(), fi->flags & ~O_NOFOLLOW);
  if (fd < 0) return -errno;
  fi->fh = uint64_t(fd);
  fi->direct_io = 1;
  return 0;
}
int pt_create(const char* path, mode_t mode, fuse_file_info* fi) {
  const int fd = ::openat(root(), rel(path).c_str(), fi->flags | O_CREAT, mode);
  if (fd < 0) return -errno;
  fi->fh = uint64_t(fd);
  fi->direct_io = 1;
  return 0;
}
int pt_read(const char*, char* buf, size_t size, off_t off, fuse_file_info* fi) {
  return neg(int(::pread(int(fi->fh), buf, size, off)));
}
int pt_write(const char*, const char* buf, size_t size, off_t off, fuse_file_info* fi) {
  return neg(int(::pwrite(int(fi->fh), buf, size, off)));
}
int pt_statfs(const char*, struct statvfs* st) { return neg(::fstatvfs(root(), st)); }
int pt_release(const char*, fuse_file_info* fi) {
  ::close(int(fi->fh));
  return 0;
}
int pt_fsync(const char*, int datasync, fuse_file_info* fi) {
  return neg(datasync ? ::fdatasync(int(fi->fh)) : ::fsync(int(fi->fh)));
}
int pt_utimens(const char* path, const struct timespec tv[2], fuse_file_info*) {
  return neg(::utimensat(root(), rel(path).c_str(), tv, AT_SYMLINK_NOFOLLOW));
}

fuse_operations make() {
  fuse_operations ops{};
  ops.init = pt_init;
  ops.getattr = pt_getattr;
  ops.readdir = pt_readdir;
  ops.mkdir = pt_mkdir;
  ops.unlink = pt_unlink;
  ops.rmdir = pt_rmdir;
  ops.rename = pt_rename;
  ops.chmod = pt_chmod;
  ops.truncate = pt_truncate;
  ops.open = pt_open;
  ops.create = pt_create;
  ops.read = pt_read;
  ops.write = pt_write;
  ops.statfs = pt_statfs;
  ops.release = pt_release;
  ops.fsync = pt_fsync;
  ops.utimens = pt_utimens;
  return ops;
}

}  // namespace

const fuse_operations& passthrough_operations() {
  static const fuse_operations ops = make();
  return ops;
}

}  // namespace syncprobe::refmount
