/* fsmap: print the FS_IOC_GETFSMAP records of a mounted filesystem.
 * Usage: fsmap <path on the filesystem>
 * One line per record: physical byte offset, length, owner, flags. */
#include <errno.h>
#include <fcntl.h>
#include <linux/fsmap.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

/* Special owners: the generic two (linux/fsmap.h), XFS's ('X', n), which
 * ext4 reuses for fs/log/inodes, and ext4's own ('f', n). */
static const char *owner(unsigned long long o) {
  if (o == FMR_OWN_FREE) return "free";
  if (o == FMR_OWN_UNKNOWN) return "unknown";
  static const char *x[] = {"?", "fs", "log", "ag", "inobt", "inodes", "refcount", "cow", "defective"};
  static const char *f[] = {"?", "gdt", "resv_gdt", "block_bitmap", "inode_bitmap"};
  unsigned type = (unsigned)(o >> 32), code = (unsigned)o;
  if (type == 'X' && code < 9) return x[code];
  if (type == 'f' && code < 5) return f[code];
  return "special?";
}

int main(int argc, char **argv) {
  if (argc != 2) { fprintf(stderr, "usage: fsmap PATH\n"); return 2; }
  int fd = open(argv[1], O_RDONLY);
  if (fd < 0) { fprintf(stderr, "open %s: %s\n", argv[1], strerror(errno)); return 1; }
  enum { N = 128 };
  struct fsmap_head *h = calloc(1, fsmap_sizeof(N));
  h->fmh_count = N;
  h->fmh_keys[1].fmr_device = ~0U;
  h->fmh_keys[1].fmr_physical = ~0ULL;
  h->fmh_keys[1].fmr_owner = ~0ULL;
  h->fmh_keys[1].fmr_offset = ~0ULL;
  h->fmh_keys[1].fmr_flags = ~0U;
  for (;;) {
    if (ioctl(fd, FS_IOC_GETFSMAP, h) < 0) { fprintf(stderr, "FS_IOC_GETFSMAP: %s\n", strerror(errno)); return 1; }
    if (h->fmh_entries == 0) break;
    for (unsigned i = 0; i < h->fmh_entries; i++) {
      struct fsmap *r = &h->fmh_recs[i];
      const char *o = (r->fmr_flags & FMR_OF_SPECIAL_OWNER) ? owner(r->fmr_owner) : NULL;
      if (o) printf("%llu %llu %s 0x%x\n", (unsigned long long)r->fmr_physical, (unsigned long long)r->fmr_length, o, r->fmr_flags);
      else printf("%llu %llu inode:%llu 0x%x\n", (unsigned long long)r->fmr_physical, (unsigned long long)r->fmr_length, (unsigned long long)r->fmr_owner, r->fmr_flags);
    }
    if (h->fmh_recs[h->fmh_entries - 1].fmr_flags & FMR_OF_LAST) break;
    fsmap_advance(h);
  }
  return 0;
}
