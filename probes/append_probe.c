/* append_probe: an append whose writeback fails, then more appends into the
 * same block and the next, fsync'd successfully; what reads back?
 *
 * Usage: append_probe DIR FAULT_ON_CMD FAULT_OFF_CMD
 * Phases (each syscall checked and printed):
 *   1. f = 8 KiB of 'o', fsync                      (must succeed)
 *   2. FAULT_ON; append 2 KiB of 'A' at 8 KiB; fsync (the failure)
 *   3. FAULT_OFF; append 4 KiB of 'B' at 10 KiB (the rest of block 2 and half
 *      of block 3); fsync                           (the claim)
 *   4. read 8..14 KiB through the same descriptor, then close, drop caches,
 *      reopen and read again.
 * Prints what each 1 KiB of 8..14 KiB holds: A, B, o, 0 (zeros) or ?. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *err(long r) { return r < 0 ? strerrorname_np(errno) : "0"; }

static void show(const char *what, const char *buf, size_t len) {
  printf("%-28s", what);
  for (size_t k = 0; k < len; k += 1024) {
    char c = buf[k];
    int same = 1;
    for (size_t i = k; i < k + 1024; i++) same &= buf[i] == c;
    printf(" %c", !same ? '?' : c == 0 ? '0' : c);
  }
  printf("\n");
}

static void drop_caches(void) {
  int fd = open("/proc/sys/vm/drop_caches", O_WRONLY);
  if (fd < 0 || write(fd, "3", 1) != 1) { perror("drop_caches"); exit(1); }
  close(fd);
}

int main(int argc, char **argv) {
  if (argc != 4) { fprintf(stderr, "usage: append_probe DIR FAULT_ON_CMD FAULT_OFF_CMD\n"); return 2; }
  char path[4096];
  snprintf(path, sizeof path, "%s/f", argv[1]);
  char buf[8192];
  int fd = open(path, O_CREAT | O_TRUNC | O_RDWR, 0644);
  if (fd < 0) { perror("open"); return 1; }
  memset(buf, 'o', 8192);
  long r = pwrite(fd, buf, 8192, 0);
  printf("pwrite old 0..8K            %ld %s\n", r, err(r));
  r = fsync(fd);
  printf("fsync                       %ld %s\n", r, err(r));
  if (r) return 1;

  if (system(argv[2]) != 0) { fprintf(stderr, "fault on failed\n"); return 1; }
  memset(buf, 'A', 2048);
  r = pwrite(fd, buf, 2048, 8192);
  printf("pwrite A 8K..10K            %ld %s\n", r, err(r));
  r = fsync(fd);
  printf("fsync (fault on)            %ld %s\n", r, err(r));
  if (system(argv[3]) != 0) { fprintf(stderr, "fault off failed\n"); return 1; }

  memset(buf, 'B', 4096);
  r = pwrite(fd, buf, 4096, 10240);
  printf("pwrite B 10K..14K           %ld %s\n", r, err(r));
  r = fsync(fd);
  printf("fsync (fault off)           %ld %s\n", r, err(r));

  memset(buf, 'x', sizeof buf);
  r = pread(fd, buf, 6144, 8192);
  printf("pread same fd               %ld %s\n", r, err(r));
  show("  8K..14K same fd:", buf, 6144);
  close(fd);
  drop_caches();
  fd = open(path, O_RDONLY);
  memset(buf, 'x', sizeof buf);
  r = pread(fd, buf, 6144, 8192);
  printf("pread after drop_caches     %ld %s\n", r, err(r));
  show("  8K..14K after drop:", buf, 6144);
  close(fd);
  return 0;
}
