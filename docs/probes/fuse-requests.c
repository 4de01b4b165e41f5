/*
 * fuse-requests.c: which of a program's calls reach a FUSE daemon, checked
 * independently of syncprobe (docs/refmount.md). It shares no code with
 * syncprobe: one in-memory file, /f, opened with direct I/O as syncprobe's
 * mount does; every request it receives is printed with a monotonic time in
 * microseconds. RELEASE takes 200 ms, so a close(2) that returns before the
 * release ends shows that release is asynchronous.
 *
 * usage: fuse-requests MOUNTPOINT   (foreground, single-threaded; fuse-requests.sh drives it)
 * build: cc -O2 -o fuse-requests fuse-requests.c $(pkg-config --cflags --libs fuse3)
 *
 * Output on this machine (kernel 6.18, libfuse 3.14, 2026-11-25), from
 * fuse-requests.sh, times in microseconds:
 *   13111480267 WRITE 4096@0
 *   13111480281 client pwrite 4096 -> 4096
 *   13111480336 FSYNC datasync=0
 *   13111480340 client fsync -> None
 *   13111480350 FSYNC datasync=1
 *   13111480353 client fdatasync -> None
 *   13111480402 client sync_file_range(WAIT_BEFORE|WRITE|WAIT_AFTER) -> 0
 *   13111480412 client syncfs -> 0
 *   13111480440 FLUSH                      (Python's mmap closes a dup of the fd)
 *   13111480459 client mmap MAP_SHARED -> -1 No such device
 *   13111480468 FLUSH
 *   13111480475 RELEASE begins
 *   13111480482 client close returned -> 0
 *   13111680581 RELEASE ends
 * So: sync_file_range(2) and syncfs(2) return 0 and send no request; a
 * shared mapping of a direct-I/O file is refused (ENODEV); close(2) waits
 * for FLUSH but not for RELEASE, which ends 200 ms after close returned.
 */
#define FUSE_USE_VERSION 31
#include <errno.h>
#include <fuse.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static char data[65536];
static size_t size;

static long long now_us(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1000000LL + t.tv_nsec / 1000;
}
#define LOG(...) (fprintf(stderr, "%lld ", now_us()), fprintf(stderr, __VA_ARGS__), fputc('\n', stderr))

static int fs_getattr(const char *path, struct stat *st, struct fuse_file_info *fi) {
  (void)fi;
  memset(st, 0, sizeof *st);
  if (!strcmp(path, "/")) { st->st_mode = S_IFDIR | 0755; st->st_nlink = 2; return 0; }
  if (strcmp(path, "/f")) return -ENOENT;
  st->st_mode = S_IFREG | 0644; st->st_nlink = 1; st->st_size = (off_t)size;
  return 0;
}
static int fs_open(const char *path, struct fuse_file_info *fi) {
  if (strcmp(path, "/f")) return -ENOENT;
  fi->direct_io = 1;
  LOG("OPEN");
  return 0;
}
static int fs_read(const char *path, char *buf, size_t n, off_t off, struct fuse_file_info *fi) {
  (void)path; (void)fi;
  if ((size_t)off >= size) return 0;
  if (n > size - (size_t)off) n = size - (size_t)off;
  memcpy(buf, data + off, n);
  LOG("READ %zu@%lld", n, (long long)off);
  return (int)n;
}
static int fs_write(const char *path, const char *buf, size_t n, off_t off, struct fuse_file_info *fi) {
  (void)path; (void)fi;
  if ((size_t)off + n > sizeof data) return -EFBIG;
  memcpy(data + off, buf, n);
  if ((size_t)off + n > size) size = (size_t)off + n;
  LOG("WRITE %zu@%lld", n, (long long)off);
  return (int)n;
}
static int fs_fsync(const char *path, int datasync, struct fuse_file_info *fi) {
  (void)path; (void)fi;
  LOG("FSYNC datasync=%d", datasync);
  return 0;
}
static int fs_flush(const char *path, struct fuse_file_info *fi) {
  (void)path; (void)fi;
  LOG("FLUSH");
  return 0;
}
static int fs_release(const char *path, struct fuse_file_info *fi) {
  (void)path; (void)fi;
  LOG("RELEASE begins");
  usleep(200000);
  LOG("RELEASE ends");
  return 0;
}
static int fs_readdir(const char *path, void *buf, fuse_fill_dir_t fill, off_t off, struct fuse_file_info *fi,
                      enum fuse_readdir_flags flags) {
  (void)off; (void)fi; (void)flags;
  if (strcmp(path, "/")) return -ENOENT;
  fill(buf, ".", NULL, 0, 0); fill(buf, "..", NULL, 0, 0); fill(buf, "f", NULL, 0, 0);
  return 0;
}
static void *fs_init(struct fuse_conn_info *conn, struct fuse_config *cfg) {
  (void)conn;
  cfg->direct_io = 1;
  cfg->attr_timeout = cfg->entry_timeout = 0;
  return NULL;
}

int main(int argc, char **argv) {
  static const struct fuse_operations ops = {
      .getattr = fs_getattr, .open = fs_open, .read = fs_read, .write = fs_write, .fsync = fs_fsync,
      .flush = fs_flush, .release = fs_release, .readdir = fs_readdir, .init = fs_init};
  if (argc != 2) { fprintf(stderr, "usage: %s MOUNTPOINT\n", argv[0]); return 2; }
  setvbuf(stderr, NULL, _IOLBF, 0);
  char *args[] = {argv[0], "-f", "-s", argv[1], NULL};
  return fuse_main(4, args, &ops, NULL);
}
