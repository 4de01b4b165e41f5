/*
 * gone-bad.c: an independent check of what syncprobe's case
 * gone-bad-after-eviction reports for Linux (docs/classifier.md, Changes).
 * It shares no code with syncprobe: plain syscalls, a device-mapper `error`
 * segment over the file's blocks (set up by gone-bad.sh), every result
 * printed with its errno.
 *
 * usage: gone-bad FILE FAULT-CMD HEAL-CMD
 * FAULT-CMD is run through system() with the file's first physical byte
 * offset and length appended; HEAL-CMD restores the device.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/fiemap.h>
#include <linux/fs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

static void say(const char *what, long r) {
  if (r < 0) printf("%-34s -1 %s\n", what, strerrorname_np(errno));
  else printf("%-34s %ld\n", what, r);
  fflush(stdout);
}

static int run(const char *cmd) {
  int r = system(cmd);
  if (r != 0) fprintf(stderr, "gone-bad: '%s' failed (%d)\n", cmd, r);
  return r;
}

int main(int argc, char **argv) {
  if (argc != 4) {
    fprintf(stderr, "usage: gone-bad FILE FAULT-CMD HEAL-CMD\n");
    return 2;
  }
  char old[8192], a[4096], back[4096], cmd[512];
  memset(old, 'o', sizeof old);
  memset(a, 'A', sizeof a);
  int fd = open(argv[1], O_RDWR | O_CREAT | O_TRUNC, 0644);
  if (fd < 0) { perror("open"); return 1; }
  say("pwrite old 8K", pwrite(fd, old, sizeof old, 0));
  say("fsync (old data on disk)", fsync(fd));

  struct { struct fiemap f; struct fiemap_extent e[1]; } fm;
  memset(&fm, 0, sizeof fm);
  fm.f.fm_length = ~0ULL;
  fm.f.fm_flags = FIEMAP_FLAG_SYNC;
  fm.f.fm_extent_count = 1;
  if (ioctl(fd, FS_IOC_FIEMAP, &fm) < 0 || fm.f.fm_mapped_extents < 1) { perror("FIEMAP"); return 1; }
  snprintf(cmd, sizeof cmd, "%s %llu %llu", argv[2], (unsigned long long)fm.e[0].fe_physical,
           (unsigned long long)fm.e[0].fe_length);
  if (run(cmd)) return 1;

  say("pwrite A 4K", pwrite(fd, a, sizeof a, 0));
  say("fsync (device fails)", fsync(fd));
  int dc = open("/proc/sys/vm/drop_caches", O_WRONLY);
  say("drop_caches", dc < 0 ? -1 : write(dc, "3\n", 2));
  if (dc >= 0) close(dc);
  long n = pread(fd, back, sizeof back, 0);
  printf("%-34s %ld bytes, %s\n", "pread after drop_caches", n, n > 0 && back[0] == 'A' ? "A" : n > 0 && back[0] == 'o' ? "old" : "other");
  say("fsync after eviction", fsync(fd));
  if (run(argv[3])) return 1;
  say("fsync after repair", fsync(fd));
  say("close", close(fd));
  return 0;
}
