/* fsync_probe: a tiny, independent check of what a guest kernel's fsync
 * reports when the FUSE block device fails writes. Not syncprobe's code:
 * plain syscalls, every result printed, one phase per line.
 *
 *   fsync_probe MOUNTPOINT CONTROL_SOCKET MODE
 *
 * MODE "data": fail writes to the file's blocks only (FIEMAP ranges);
 * MODE "flush": fail the device's cache flushes only;
 * MODE "data+flush": both (what dm-flakey error_writes does).
 * The filesystem on MOUNTPOINT sits on a loop device over the daemon's file;
 * CONTROL_SOCKET is the daemon's control socket (a path). */
#define _GNU_SOURCE
#include <errno.h>
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

static int ctl = -1;

static void command(const char *json) {
  char reply[512];
  if (write(ctl, json, strlen(json)) < 0 || write(ctl, "\n", 1) < 0) { perror("control write"); exit(2); }
  ssize_t n = read(ctl, reply, sizeof reply - 1);
  reply[n > 0 ? n : 0] = 0;
  printf("  control %s -> %s", json, reply);
}

static void result(const char *phase, int r) {
  if (r < 0) printf("%-34s -1 %s\n", phase, strerrorname_np(errno));
  else printf("%-34s %d\n", phase, r);
  fflush(stdout);
}

int main(int argc, char **argv) {
  if (argc != 4) { fprintf(stderr, "usage: fsync_probe MOUNTPOINT CONTROL_SOCKET data|flush|data+flush\n"); return 2; }
  const char *mode = argv[3];
  char path[512];
  snprintf(path, sizeof path, "%s/probe-file", argv[1]);
  struct sockaddr_un sa = {.sun_family = AF_UNIX};
  strncpy(sa.sun_path, argv[2], sizeof sa.sun_path - 1);
  ctl = socket(AF_UNIX, SOCK_STREAM, 0);
  if (connect(ctl, (struct sockaddr *)&sa, sizeof sa) < 0) { perror("connect"); return 2; }

  static char buf[8192];
  memset(buf, 'o', sizeof buf);
  int a = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
  result("open writer", a);
  result("pwrite 8K old", (int)pwrite(a, buf, sizeof buf, 0));
  result("fsync writer (healthy)", fsync(a));

  /* Where the file's data is on the device. */
  struct { struct fiemap f; struct fiemap_extent e[16]; } fm;
  memset(&fm, 0, sizeof fm);
  fm.f.fm_length = ~0ULL;
  fm.f.fm_extent_count = 16;
  result("FIEMAP", ioctl(a, FS_IOC_FIEMAP, &fm.f));
  char cmd[1024];
  int len = snprintf(cmd, sizeof cmd, "{\"cmd\":\"fault\",\"op\":\"write\",\"mode\":\"error\",\"errno\":\"EIO\",\"ranges\":[");
  for (unsigned i = 0; i < fm.f.fm_mapped_extents; i++)
    len += snprintf(cmd + len, sizeof cmd - len, "%s[%llu,%llu]", i ? "," : "",
                    (unsigned long long)fm.e[i].fe_physical, (unsigned long long)fm.e[i].fe_length);
  snprintf(cmd + len, sizeof cmd - len, "]}");
  if (strstr(mode, "data")) command(cmd);
  if (strstr(mode, "flush"))
    command("{\"cmd\":\"fault\",\"op\":\"flush\",\"mode\":\"error\",\"errno\":\"EIO\",\"ranges\":[]}");

  memset(buf, 'A', 4096);
  result("pwrite 4K new", (int)pwrite(a, buf, 4096, 0));
  result("fsync writer (first after fault)", fsync(a));
  result("fsync writer (second)", fsync(a));
  int b = open(path, O_RDWR);
  result("open new descriptor", b);
  result("fsync new descriptor", fsync(b));
  result("fsync writer (third)", fsync(a));
  command("{\"cmd\":\"stats\"}");
  command("{\"cmd\":\"heal\"}");
  result("fsync new descriptor (healed)", fsync(b));
  close(a);
  close(b);
  return 0;
}
