/*
 * faultfs.c: the smallest faulty disk for docs/probes/gone-bad.sh, sharing
 * no code with syncprobe's own FUSE device. It serves one file, /disk,
 * backed by an image; while the control file holds "OFFSET LENGTH" lines,
 * writes that touch one of those byte ranges fail with EIO (each is logged
 * on stderr). Reads and flushes never fail.
 *
 * usage: faultfs IMAGE CONTROL MOUNTPOINT   (runs in the foreground)
 */
#define FUSE_USE_VERSION 31
#include <errno.h>
#include <fcntl.h>
#include <fuse.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int image = -1;
static const char *control;

/* True when [off, off+len) touches a range the control file names: one
 * "OFFSET LENGTH" per line. */
static int failing(off_t off, size_t len) {
  FILE *f = fopen(control, "r");
  if (!f) return 0;
  unsigned long long lo = 0, n = 0;
  int hit = 0;
  while (!hit && fscanf(f, "%llu %llu", &lo, &n) == 2)
    hit = (unsigned long long)off < lo + n && (unsigned long long)off + len > lo;
  fclose(f);
  return hit;
}

static int fs_getattr(const char *path, struct stat *st, struct fuse_file_info *fi) {
  (void)fi;
  memset(st, 0, sizeof *st);
  if (strcmp(path, "/") == 0) {
    st->st_mode = S_IFDIR | 0755;
    st->st_nlink = 2;
    return 0;
  }
  if (strcmp(path, "/disk") != 0) return -ENOENT;
  struct stat img;
  if (fstat(image, &img) < 0) return -errno;
  st->st_mode = S_IFREG | 0600;
  st->st_nlink = 1;
  st->st_size = img.st_size;
  return 0;
}

static int fs_readdir(const char *path, void *buf, fuse_fill_dir_t fill, off_t off, struct fuse_file_info *fi,
                      enum fuse_readdir_flags flags) {
  (void)off, (void)fi, (void)flags;
  if (strcmp(path, "/") != 0) return -ENOENT;
  fill(buf, ".", NULL, 0, 0);
  fill(buf, "..", NULL, 0, 0);
  fill(buf, "disk", NULL, 0, 0);
  return 0;
}

static int fs_open(const char *path, struct fuse_file_info *fi) {
  if (strcmp(path, "/disk") != 0) return -ENOENT;
  fi->direct_io = 1;  /* every write reaches write() below, none waits in a cache */
  return 0;
}

static int fs_read(const char *path, char *buf, size_t n, off_t off, struct fuse_file_info *fi) {
  (void)path, (void)fi;
  ssize_t r = pread(image, buf, n, off);
  return r < 0 ? -errno : (int)r;
}

static int fs_write(const char *path, const char *buf, size_t n, off_t off, struct fuse_file_info *fi) {
  (void)path, (void)fi;
  if (failing(off, n)) {
    /* every failed write, so a probe can check the fault hit only what it names */
    fprintf(stderr, "faultfs: EIO write %lld+%zu\n", (long long)off, n);
    return -EIO;
  }
  ssize_t r = pwrite(image, buf, n, off);
  return r < 0 ? -errno : (int)r;
}

static int fs_fsync(const char *path, int datasync, struct fuse_file_info *fi) {
  (void)path, (void)fi;
  return (datasync ? fdatasync(image) : fsync(image)) < 0 ? -errno : 0;
}

static const struct fuse_operations ops = {
    .getattr = fs_getattr, .readdir = fs_readdir, .open = fs_open,
    .read = fs_read,       .write = fs_write,     .fsync = fs_fsync,
};

int main(int argc, char **argv) {
  if (argc != 4) {
    fprintf(stderr, "usage: faultfs IMAGE CONTROL MOUNTPOINT\n");
    return 2;
  }
  image = open(argv[1], O_RDWR);
  if (image < 0) { perror(argv[1]); return 1; }
  control = argv[2];
  char *fargv[] = {argv[0], "-f", "-s", argv[3], NULL};
  return fuse_main(4, fargv, &ops, NULL);
}
