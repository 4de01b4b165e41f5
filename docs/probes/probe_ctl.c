/* probe_ctl: talks to syncprobe-blockdev's control socket for the guest probes
 * (docs/probes/run-in-guest.sh). Plain syscalls, no syncprobe code.
 *
 *   probe_ctl SOCKET 'JSON'          send one command, print it and the reply
 *   probe_ctl SOCKET after FILE LEN  fail writes (EIO) to the LEN bytes of the
 *                                    device that follow FILE's last extent
 *                                    (FIEMAP): where an append to FILE goes
 *                                    while FILE's own blocks stay writable.
 *   probe_ctl - map FILE             print FILE's extents (FIEMAP), flags named */
#define _GNU_SOURCE
#include <fcntl.h>
#include <linux/fiemap.h>
#include <linux/fs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

static int send_command(const char *sock, const char *json) {
  struct sockaddr_un sa = {.sun_family = AF_UNIX};
  strncpy(sa.sun_path, sock, sizeof sa.sun_path - 1);
  int s = socket(AF_UNIX, SOCK_STREAM, 0);
  if (s < 0 || connect(s, (struct sockaddr *)&sa, sizeof sa) < 0) { perror("probe_ctl: connect"); return 2; }
  char reply[1024];
  if (write(s, json, strlen(json)) < 0 || write(s, "\n", 1) < 0) { perror("probe_ctl: write"); return 2; }
  ssize_t n = read(s, reply, sizeof reply - 1);
  reply[n > 0 ? n : 0] = 0;
  printf("  control %s -> %s%s", json, reply, n > 0 && reply[n - 1] == '\n' ? "" : "\n");
  fflush(stdout);
  close(s);
  return strstr(reply, "\"ok\":true") ? 0 : 1;
}

static int fiemap(const char *path, struct fiemap *f, unsigned count) {
  int fd = open(path, O_RDONLY);
  f->fm_length = ~0ULL;
  f->fm_extent_count = count;
  int r = fd < 0 ? -1 : ioctl(fd, FS_IOC_FIEMAP, f);
  if (r < 0) perror("probe_ctl: FIEMAP");
  if (fd >= 0) close(fd);
  return r;
}

static int print_map(const char *path) {
  struct { struct fiemap f; struct fiemap_extent e[32]; } fm;
  memset(&fm, 0, sizeof fm);
  if (fiemap(path, &fm.f, 32) < 0) return 2;
  for (unsigned i = 0; i < fm.f.fm_mapped_extents; i++) {
    struct fiemap_extent *e = &fm.e[i];
    printf("  extent file %lluK..%lluK  device block %llu..%llu%s%s%s\n",
           (unsigned long long)e->fe_logical / 1024, (unsigned long long)(e->fe_logical + e->fe_length) / 1024,
           (unsigned long long)e->fe_physical / 4096,
           (unsigned long long)(e->fe_physical + e->fe_length) / 4096 - 1,
           e->fe_flags & FIEMAP_EXTENT_UNWRITTEN ? " UNWRITTEN" : "",
           e->fe_flags & FIEMAP_EXTENT_DELALLOC ? " DELALLOC" : "",
           e->fe_flags & FIEMAP_EXTENT_LAST ? " last" : "");
  }
  return 0;
}

int main(int argc, char **argv) {
  if (argc == 3) return send_command(argv[1], argv[2]);
  if (argc == 4 && strcmp(argv[2], "map") == 0) return print_map(argv[3]);
  if (argc != 5 || strcmp(argv[2], "after") != 0) {
    fprintf(stderr, "usage: probe_ctl SOCKET JSON | probe_ctl SOCKET after FILE LEN | probe_ctl - map FILE\n");
    return 2;
  }
  struct { struct fiemap f; struct fiemap_extent e[32]; } fm;
  memset(&fm, 0, sizeof fm);
  if (fiemap(argv[3], &fm.f, 32) < 0 || fm.f.fm_mapped_extents == 0) {
    fprintf(stderr, "probe_ctl: %s has no extents\n", argv[3]);
    return 2;
  }
  unsigned long long end = 0;
  for (unsigned i = 0; i < fm.f.fm_mapped_extents; i++)
    if (fm.e[i].fe_physical + fm.e[i].fe_length > end) end = fm.e[i].fe_physical + fm.e[i].fe_length;
  char json[512];
  snprintf(json, sizeof json,
           "{\"cmd\":\"fault\",\"op\":\"write\",\"mode\":\"error\",\"errno\":\"EIO\",\"ranges\":[[%llu,%s]]}", end,
           argv[4]);
  return send_command(argv[1], json);
}
