/* btrfs_data_probe: what fsync reports on btrfs when only data writes fail.
 * Shares no code with syncprobe: plain syscalls, each result printed with its
 * errno. btrfs-data.sh runs it over faultfs.c with the DATA block groups'
 * device ranges (from btrfs-progs' dump-tree) as the failing ranges.
 *
 * Usage: btrfs_data_probe DIR FAULT_ON_CMD FAULT_OFF_CMD
 *   1. a = open DIR/f; 8 KiB of 'o'; fsync(a)             (must succeed)
 *   2. b = open DIR/f (a second descriptor, open before the error)
 *   3. FAULT_ON; pwrite(a, 4 KiB of 'A', 0); fsync(a) twice; fsync(b) twice
 *   4. c = open DIR/f after the error; fsync(c)
 *   5. while the data fault is on: is the filesystem read-only? (statvfs),
 *      mkdir DIR/d + syncfs (metadata only: must not fail if only data fails)
 *   6. FAULT_OFF; fsync(a); pwrite(a, 'B'); fsync(a); new file g + fsync
 *   7. close all, drop caches, read DIR/f's first byte (the remount is the
 *      script's). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

static long say(const char *what, long r) {
  if (r < 0) printf("%-40s -1 %s\n", what, strerrorname_np(errno));
  else printf("%-40s %ld\n", what, r);
  fflush(stdout);
  return r;
}

static void must(const char *what, long r) {
  if (say(what, r) < 0) exit(1);
}

static void run(const char *cmd) {
  if (system(cmd) != 0) { fprintf(stderr, "failed: %s\n", cmd); exit(1); }
}

static void fill(char *buf, char c, size_t n) { memset(buf, c, n); }

static void read_only(const char *dir) {
  struct statvfs sv;
  if (statvfs(dir, &sv) != 0) { say("statvfs", -1); return; }
  printf("%-40s %s\n", "filesystem read-only (ST_RDONLY)", (sv.f_flag & ST_RDONLY) ? "yes" : "no");
}

int main(int argc, char **argv) {
  if (argc != 4) { fprintf(stderr, "usage: btrfs_data_probe DIR FAULT_ON_CMD FAULT_OFF_CMD\n"); return 2; }
  const char *dir = argv[1];
  char f[4096], d[4096], g[4096];
  snprintf(f, sizeof f, "%s/f", dir);
  snprintf(d, sizeof d, "%s/d", dir);
  snprintf(g, sizeof g, "%s/g", dir);
  static char buf[8192];

  int a = open(f, O_RDWR | O_CREAT | O_TRUNC, 0644);
  must("open a", a);
  fill(buf, 'o', 8192);
  must("pwrite a 8K 'o'", pwrite(a, buf, 8192, 0));
  must("fsync a", fsync(a));
  int b = open(f, O_RDWR);
  must("open b (before the error)", b);

  run(argv[2]);
  fill(buf, 'A', 4096);
  say("pwrite a 4K 'A' @0 (fault on)", pwrite(a, buf, 4096, 0));
  say("fsync a", fsync(a));
  say("fsync a again", fsync(a));
  say("fsync b", fsync(b));
  say("fsync b again", fsync(b));
  int c = say("open c (after the error)", open(f, O_RDWR));
  if (c >= 0) say("fsync c", fsync(c));
  read_only(dir);
  say("mkdir d (fault on)", mkdir(d, 0755));
  int dd = open(dir, O_RDONLY | O_DIRECTORY);
  say("syncfs (fault on)", syncfs(dd));
  read_only(dir);

  run(argv[3]);
  say("fsync a (healed)", fsync(a));
  fill(buf, 'B', 4096);
  say("pwrite a 4K 'B' @4K (healed)", pwrite(a, buf, 4096, 4096));
  say("fsync a (healed, new data)", fsync(a));
  int h = say("open g (healed)", open(g, O_RDWR | O_CREAT, 0644));
  if (h >= 0) {
    say("pwrite g 4K", pwrite(h, buf, 4096, 0));
    say("fsync g", fsync(h));
    close(h);
  }
  read_only(dir);
  close(a);
  close(b);
  if (c >= 0) close(c);
  close(dd);
  int dc = open("/proc/sys/vm/drop_caches", O_WRONLY);
  if (dc < 0 || write(dc, "3", 1) != 1) { perror("drop_caches"); return 1; }
  close(dc);
  int r = open(f, O_RDONLY);
  char first = '?';
  if (r >= 0 && pread(r, &first, 1, 0) == 1) printf("%-40s %c\n", "f[0] after drop_caches", first);
  else say("read f after drop_caches", -1);
  if (r >= 0) close(r);
  return 0;
}
