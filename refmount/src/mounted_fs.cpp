// FUSE operations (libfuse3's path-based API) over ref::FileSystem, one lock
// around each. Every open is a description of the model (fi->fh holds its
// handle) opened for direct I/O, so the kernel caches no data and every
// read, write and fsync reaches the model with the description it came from.
#define FUSE_USE_VERSION 31
#include "mounted_fs.h"

#include <fuse.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ostream>

#include "syncprobe/errno_names.h"
#include "syncprobe/refmount.h"

namespace syncprobe::refmount {
namespace {

MountedFs& self() { return *static_cast<MountedFs*>(fuse_get_context()->private_data); }

// A call's result as FUSE wants it: the return value, or -errno. A call the
// model reports as hung (a hang fault, a thin pool's queue) cannot block the
// mount: it fails with EIO and is counted in status.
int ret(const SysResult& r, const char* call) {
  if (r.hung || r.harness) {
    self().note_hung(call);
    return -EIO;
  }
  return r.ok() ? int(r.ret) : -r.err;
}

ref::Handle handle(const fuse_file_info* fi) { return ref::Handle{fi->fh}; }

ref::OpenFlags open_flags(int flags, bool create) {
  ref::OpenFlags f;
  f.create = create;
  f.exclusive = create && (flags & O_EXCL);
  f.truncate = flags & O_TRUNC;
  f.direct = flags & O_DIRECT;
  f.sync = (flags & O_SYNC) == O_SYNC;
  f.dsync = !f.sync && (flags & O_DSYNC);
  f.read_only = (flags & O_ACCMODE) == O_RDONLY;
  return f;
}

void fill(const ref::Attr& a, struct stat* st) {
  std::memset(st, 0, sizeof *st);
  st->st_ino = a.ino;
  st->st_mode = (a.dir ? S_IFDIR : S_IFREG) | a.mode;
  st->st_nlink = a.nlink;
  st->st_size = off_t(a.size);
  st->st_uid = getuid();
  st->st_gid = getgid();
  st->st_blksize = 4096;
  st->st_blocks = blkcnt_t((a.size + 511) / 512);
  st->st_atim = a.atime;
  st->st_mtim = a.mtime;
  st->st_ctim = a.ctime;
}

void* op_init(fuse_conn_info* conn, fuse_config* cfg) {
  cfg->use_ino = 1;
  cfg->direct_io = 1;      // the kernel caches no data: every read and write reaches the model
  cfg->entry_timeout = 0;  // nor names and attributes: sizes come from the model
  cfg->attr_timeout = 0;
  cfg->negative_timeout = 0;
  cfg->hard_remove = 1;    // an unlinked open file stays the model's (no .fuse_hidden rename)
  conn->want &= ~unsigned(FUSE_CAP_WRITEBACK_CACHE);
  return fuse_get_context()->private_data;
}

int op_getattr(const char* path, struct stat* st, fuse_file_info* fi) {
  std::lock_guard l(self().lock());
  ref::Attr a;
  SysResult r = fi ? self().fs().fgetattr(handle(fi), a) : self().fs().getattr(path, a);
  if (!r.ok()) return ret(r, "getattr");
  fill(a, st);
  return 0;
}

int op_readdir(const char* path, void* buf, fuse_fill_dir_t filler, off_t, fuse_file_info*,
               fuse_readdir_flags) {
  std::vector<ref::DirEntry> entries;
  {
    std::lock_guard l(self().lock());
    SysResult r = self().fs().readdir(path, entries);
    if (!r.ok()) return ret(r, "readdir");
  }
  filler(buf, ".", nullptr, 0, fuse_fill_dir_flags(0));
  filler(buf, "..", nullptr, 0, fuse_fill_dir_flags(0));
  for (const auto& e : entries)
    if (filler(buf, e.name.c_str(), nullptr, 0, fuse_fill_dir_flags(0))) break;
  return 0;
}

int op_mkdir(const char* path, mode_t mode) {
  std::lock_guard l(self().lock());
  return ret(self().fs().mkdir(path, mode & 07777), "mkdir");
}

int op_unlink(const char* path) {
  std::lock_guard l(self().lock());
  return ret(self().fs().unlink(path), "unlink");
}

int op_rmdir(const char* path) {
  std::lock_guard l(self().lock());
  return ret(self().fs().rmdir(path), "rmdir");
}

int op_rename(const char* from, const char* to, unsigned int flags) {
  std::lock_guard l(self().lock());
  if (flags & RENAME_EXCHANGE) return -EINVAL;
  ref::Attr a;
  if ((flags & RENAME_NOREPLACE) && self().fs().getattr(to, a).ok()) return -EEXIST;
  return ret(self().fs().rename(from, to), "rename");
}

int op_symlink(const char*, const char*) { return -EPERM; }  // the model has no symbolic links
int op_link(const char*, const char*) { return -EPERM; }     // nor hard links

int op_chmod(const char* path, mode_t mode, fuse_file_info*) {
  std::lock_guard l(self().lock());
  return ret(self().fs().chmod(path, mode & 07777), "chmod");
}

int op_chown(const char*, uid_t uid, gid_t gid, fuse_file_info*) {
  // Everything belongs to the user who mounted; chown to that user is a no-op.
  const bool same = (uid == uid_t(-1) || uid == getuid()) && (gid == gid_t(-1) || gid == getgid());
  return same ? 0 : -EPERM;
}

int op_truncate(const char* path, off_t size, fuse_file_info* fi) {
  std::lock_guard l(self().lock());
  if (size < 0) return -EINVAL;
  return ret(fi ? self().fs().ftruncate(handle(fi), uint64_t(size)) : self().fs().truncate(path, uint64_t(size)),
             "truncate");
}

int op_open(const char* path, fuse_file_info* fi) {
  std::lock_guard l(self().lock());
  ref::Handle h;
  SysResult r = self().fs().open(path, open_flags(fi->flags, false), h);
  if (!r.ok()) return ret(r, "open");
  fi->fh = h.id;
  fi->direct_io = 1;
  return 0;
}

int op_create(const char* path, mode_t mode, fuse_file_info* fi) {
  std::lock_guard l(self().lock());
  ref::Handle h;
  SysResult r = self().fs().open(path, open_flags(fi->flags, true), h, mode & 07777);
  if (!r.ok()) return ret(r, "create");
  fi->fh = h.id;
  fi->direct_io = 1;
  return 0;
}

int op_read(const char*, char* buf, size_t size, off_t off, fuse_file_info* fi) {
  std::lock_guard l(self().lock());
  return ret(self().fs().pread(handle(fi), {reinterpret_cast<std::byte*>(buf), size}, uint64_t(off)), "read");
}

int op_write(const char*, const char* buf, size_t size, off_t off, fuse_file_info* fi) {
  std::lock_guard l(self().lock());
  return ret(self().fs().pwrite(handle(fi), {reinterpret_cast<const std::byte*>(buf), size}, uint64_t(off)),
             "write");
}

int op_statfs(const char*, struct statvfs* st) {
  std::lock_guard l(self().lock());
  std::memset(st, 0, sizeof *st);
  ref::SimDevice& dev = self().fs().device();
  const uint64_t capacity = dev.capacity_blocks().value_or(1ull << 30);
  st->f_bsize = st->f_frsize = 4096;
  st->f_blocks = capacity;
  st->f_bfree = st->f_bavail = capacity > dev.allocated_blocks() ? capacity - dev.allocated_blocks() : 0;
  st->f_files = 1ull << 20;
  st->f_ffree = st->f_favail = 1ull << 20;
  st->f_namemax = 255;
  return 0;
}

int op_flush(const char*, fuse_file_info*) { return 0; }  // close(2) reports no writeback errors

int op_release(const char*, fuse_file_info* fi) {
  std::lock_guard l(self().lock());
  SysResult r = self().fs().close(handle(fi));
  return r.ok() || r.err == EBADF ? 0 : ret(r, "release");  // EBADF: a power cut closed it already
}

int op_fsync(const char*, int datasync, fuse_file_info* fi) {
  std::lock_guard l(self().lock());
  return ret(self().fs().fsync(handle(fi), datasync != 0), "fsync");
}

int op_opendir(const char* path, fuse_file_info* fi) {
  std::lock_guard l(self().lock());
  ref::OpenFlags f;
  f.create = false;
  f.directory = true;
  f.read_only = true;
  ref::Handle h;
  SysResult r = self().fs().open(path, f, h);
  if (!r.ok()) return ret(r, "opendir");
  fi->fh = h.id;
  return 0;
}

int op_releasedir(const char* path, fuse_file_info* fi) { return op_release(path, fi); }

int op_fsyncdir(const char*, int, fuse_file_info* fi) {
  std::lock_guard l(self().lock());
  return ret(self().fs().fsync(handle(fi), false), "fsyncdir");
}

int op_getxattr(const char* path, const char* name, char* value, size_t size) {
  if (std::strcmp(path, "/") != 0 || std::strcmp(name, kControlXattr) != 0) return -ENODATA;
  const std::string& sock = self().control_socket();
  if (size == 0) return int(sock.size());
  if (size < sock.size()) return -ERANGE;
  std::memcpy(value, sock.data(), sock.size());
  return int(sock.size());
}

int op_listxattr(const char* path, char* list, size_t size) {
  if (std::strcmp(path, "/") != 0) return 0;
  const size_t n = sizeof kControlXattr;  // with its NUL
  if (size == 0) return int(n);
  if (size < n) return -ERANGE;
  std::memcpy(list, kControlXattr, n);
  return int(n);
}

int op_utimens(const char* path, const struct timespec tv[2], fuse_file_info*) {
  std::lock_guard l(self().lock());
  auto pick = [](const timespec& t) -> std::optional<timespec> {
    if (t.tv_nsec == UTIME_OMIT) return std::nullopt;
    if (t.tv_nsec == UTIME_NOW) {
      timespec now{};
      clock_gettime(CLOCK_REALTIME, &now);
      return now;
    }
    return t;
  };
  return ret(self().fs().utimens(path, pick(tv[0]), pick(tv[1])), "utimens");
}

int op_access(const char*, int) { return 0; }

fuse_operations make_operations() {
  fuse_operations ops{};
  ops.init = op_init;
  ops.getattr = op_getattr;
  ops.readdir = op_readdir;
  ops.mkdir = op_mkdir;
  ops.unlink = op_unlink;
  ops.rmdir = op_rmdir;
  ops.rename = op_rename;
  ops.symlink = op_symlink;
  ops.link = op_link;
  ops.chmod = op_chmod;
  ops.chown = op_chown;
  ops.truncate = op_truncate;
  ops.open = op_open;
  ops.create = op_create;
  ops.read = op_read;
  ops.write = op_write;
  ops.statfs = op_statfs;
  ops.flush = op_flush;
  ops.release = op_release;
  ops.fsync = op_fsync;
  ops.opendir = op_opendir;
  ops.releasedir = op_releasedir;
  ops.fsyncdir = op_fsyncdir;
  ops.getxattr = op_getxattr;
  ops.listxattr = op_listxattr;
  ops.utimens = op_utimens;
  ops.access = op_access;
  return ops;
}

}  // namespace

const fuse_operations& MountedFs::operations() {
  static const fuse_operations ops = make_operations();
  return ops;
}

MountedFs::MountedFs(std::unique_ptr<ref::Policy> policy, const ref::FileSystem::Options& options,
                     std::string control_socket, std::ostream* log)
    : fs_(std::move(policy), options), control_socket_(std::move(control_socket)), log_(log) {
  // Called with the lock held, from inside the operation that met the fault.
  fs_.device().observe_hits([this](const ref::SimDevice::Hit& h) {
    nlohmann::json e{{"layer", "reference"},
                     {"source", h.layer},
                     {"io", std::string(to_string(h.op))},
                     {"block", h.block},
                     {"mode", std::string(to_string(h.mode))}};
    if (h.mode == FaultMode::error) e["errno"] = errno_name(h.err);
    ++faults_logged_;
    if (log_) *log_ << "syncprobe mount: injected " << e.dump() << std::endl;
    recent_faults_.push_back(std::move(e));
    if (recent_faults_.size() > 32) recent_faults_.pop_front();
  });
}

void MountedFs::note_hung(const char* call) {
  ++hung_calls_;
  if (log_) *log_ << "syncprobe mount: " << call << " did not complete in the model (hang); reported EIO" << std::endl;
}

}  // namespace syncprobe::refmount
