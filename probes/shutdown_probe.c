/* shutdown_probe: take a filesystem down with dirty data in the cache and
 * see what every kind of access does afterwards.
 *
 * Usage: shutdown_probe DIR FLAG     FLAG: 0 default (sync first),
 *                                          1 logflush, 2 nologflush
 * File f, 16 KiB, before the shutdown:
 *   page 0  overwritten with 'B', dirty      page 2  'o' on disk, not cached
 *   page 1  'o' on disk, cached, clean       page 3  appended 'A', dirty
 * Then: ioctl(XFS_IOC_GOINGDOWN == EXT4_IOC_SHUTDOWN, FLAG), fsync, pread of
 * each page through the same descriptor, open of a new descriptor and its
 * pread, and a read of each page through a shared mapping (mincore first;
 * SIGBUS caught and reported). Every call's result is printed. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#define GOINGDOWN _IOR('X', 125, uint32_t) /* XFS_IOC_GOINGDOWN, EXT4_IOC_SHUTDOWN */
#define PG 4096

static sigjmp_buf jump;
static void on_sigbus(int sig) { (void)sig; siglongjmp(jump, 1); }
static const char *err(long r) { return r < 0 ? strerrorname_np(errno) : "0"; }

static char what(const char *p) {
  for (int i = 1; i < PG; i++)
    if (p[i] != p[0]) return '?';
  return p[0] == 0 ? '0' : p[0];
}

static void drop_caches(void) {
  int fd = open("/proc/sys/vm/drop_caches", O_WRONLY);
  if (fd < 0 || write(fd, "3", 1) != 1) { perror("drop_caches"); exit(1); }
  close(fd);
}

static void read_pages(const char *label, int fd) {
  char buf[PG];
  printf("%-24s", label);
  for (int i = 0; i < 4; i++) {
    long r = pread(fd, buf, PG, (off_t)i * PG);
    if (r == PG) printf(" %c", what(buf));
    else printf(" %s", r < 0 ? err(r) : "short");
  }
  printf("\n");
}

int main(int argc, char **argv) {
  if (argc != 3) { fprintf(stderr, "usage: shutdown_probe DIR FLAG\n"); return 2; }
  char path[4096];
  snprintf(path, sizeof path, "%s/f", argv[1]);
  uint32_t flag = (uint32_t)atoi(argv[2]);
  char buf[4 * PG];

  int fd = open(path, O_CREAT | O_TRUNC | O_RDWR, 0644);
  memset(buf, 'o', 3 * PG);
  if (pwrite(fd, buf, 3 * PG, 0) != 3 * PG || fsync(fd)) { perror("setup"); return 1; }
  close(fd);
  drop_caches();
  fd = open(path, O_RDWR);
  if (pread(fd, buf, PG, PG) != PG) { perror("pread page 1"); return 1; }
  memset(buf, 'A', PG);
  if (pwrite(fd, buf, PG, 3 * PG) != PG) { perror("append"); return 1; }
  memset(buf, 'B', PG);
  if (pwrite(fd, buf, PG, 0) != PG) { perror("overwrite"); return 1; }
  printf("before: page 0 B dirty, 1 o cached, 2 o not cached, 3 A appended dirty\n");

  int dirfd = open(argv[1], O_RDONLY | O_DIRECTORY);
  long r = ioctl(dirfd, GOINGDOWN, &flag);
  printf("shutdown ioctl flag %u       %ld %s\n", flag, r, err(r));
  if (r) return 1;

  r = fsync(fd);
  printf("fsync                    %ld %s\n", r, err(r));
  r = fsync(fd);
  printf("fsync again              %ld %s\n", r, err(r));
  read_pages("pread same fd, pages:", fd);
  int fd2 = open(path, O_RDONLY);
  printf("open new fd              %d %s\n", fd2, err(fd2));
  if (fd2 >= 0) read_pages("pread new fd, pages:", fd2);
  struct stat_like { long size; };
  off_t end = lseek(fd, 0, SEEK_END);
  printf("lseek SEEK_END           %ld %s\n", (long)end, err(end));

  void *map = mmap(NULL, 4 * PG, PROT_READ, MAP_SHARED, fd, 0);
  printf("mmap                     %s\n", map == MAP_FAILED ? strerrorname_np(errno) : "0");
  if (map != MAP_FAILED) {
    unsigned char vec[4];
    r = mincore(map, 4 * PG, vec);
    printf("mincore                  %ld %s: %d %d %d %d\n", r, err(r), vec[0] & 1, vec[1] & 1,
           vec[2] & 1, vec[3] & 1);
    struct sigaction sa = {0};
    sa.sa_handler = on_sigbus;
    sigaction(SIGBUS, &sa, NULL);
    printf("%-24s", "mapped read, pages:");
    for (int i = 0; i < 4; i++) {
      if (sigsetjmp(jump, 1) == 0) {
        memcpy(buf, (char *)map + i * PG, PG);
        printf(" %c", what(buf));
      } else {
        printf(" SIGBUS");
      }
    }
    printf("\n");
    munmap(map, 4 * PG);
  }
  close(fd);
  if (fd2 >= 0) close(fd2);
  close(dirfd);
  return 0;
}
