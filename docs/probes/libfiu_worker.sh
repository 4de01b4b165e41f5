#!/usr/bin/env bash
# The libfiu contrast rows (cases/libfiu-*.toml) by hand, sharing no code with
# syncprobe: ext4 on a loop device of a sparse image of its own, a python
# program under `fiu-run -x` writes old data and fsyncs it, then fiu-ctrl
# enables the point once (onetime, failinfo=5: EIO) and the program makes the
# calls the case makes; finally the filesystem is remounted and the disk read.
# Prints each call's result, the reads (cached, after drop_caches, on disk)
# and how many I/O errors the kernel logged meanwhile. Checks docs/apps.md,
# "libfiu on syncprobe's own worker". Needs root, fiu-utils, e2fsprogs,
# python3. Everything lives under one mktemp directory, removed on exit.
#   docs/probes/libfiu_worker.sh [posix/io/sync/fsync|posix/io/sync/fdatasync|posix/io/rw/pwrite]
set -euo pipefail
work="$(mktemp -d /tmp/libfiu-worker-probe.XXXXXX)"
cleanup() {
  mountpoint -q "$work/mnt" && umount "$work/mnt"
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

cat > "$work/probe.py" <<'PY'
import os, sys
path, point = sys.argv[1], sys.argv[2]
sync = os.fsync if point.endswith("/fsync") else os.fdatasync
fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
os.pwrite(fd, b"O" * 8192, 0)
os.fsync(fd)
print("ready", os.getpid(), flush=True)
sys.stdin.readline()  # fiu-ctrl enables the point meanwhile
def call(name, f):
    try:
        r = f()
        print(f"  {name} -> {0 if r is None else r}", flush=True)
    except OSError as e:
        print(f"  {name} -> -1 {os.strerror(e.errno)} (errno {e.errno})", flush=True)
if point.endswith("pwrite"):
    call("pwrite A", lambda: os.pwrite(fd, b"A" * 4096, 0))
    print("  read:", os.pread(fd, 1, 0).decode(), flush=True)
    call("fsync", lambda: os.fsync(fd))
    call("pwrite A again", lambda: os.pwrite(fd, b"A" * 4096, 0))
    call("fsync", lambda: os.fsync(fd))
else:
    name = point.rsplit("/", 1)[1]
    os.pwrite(fd, b"A" * 4096, 0)
    call(name, lambda: sync(fd))
    call(name + " again", lambda: sync(fd))
print("  read cached:", os.pread(fd, 1, 0).decode(), flush=True)
with open("/proc/sys/vm/drop_caches", "w") as f:
    f.write("1")
print("  read after drop_caches:", os.pread(fd, 1, 0).decode(), flush=True)
os.close(fd)
PY

points=("$@")
[ ${#points[@]} -gt 0 ] || points=(posix/io/sync/fsync posix/io/sync/fdatasync posix/io/rw/pwrite)
mkdir "$work/mnt"
for point in "${points[@]}"; do
  echo "== $point (onetime, EIO)"
  truncate -s 64M "$work/img"
  mkfs.ext4 -q -F "$work/img"
  mount -o loop "$work/img" "$work/mnt"
  errors_before=$(dmesg | grep -c -E "I/O error|EXT4-fs error" || true)
  coproc PROBE { fiu-run -x -f "$work/fiu" python3 "$work/probe.py" "$work/mnt/f" "$point"; }
  probe_pid=$PROBE_PID  # bash unsets PROBE_PID once the coprocess is done
  read -r line <&"${PROBE[0]}"
  pid=${line#ready }
  fiu-ctrl -f "$work/fiu" -c "enable name=$point,failinfo=5,onetime" "$pid"
  echo >&"${PROBE[1]}"
  cat <&"${PROBE[0]}"
  wait "$probe_pid"
  umount "$work/mnt"
  mount -o loop "$work/img" "$work/mnt"
  echo "  on disk after a remount: $(head -c 1 "$work/mnt/f")"
  umount "$work/mnt"
  echo "  kernel I/O errors logged meanwhile: $(( $(dmesg | grep -c -E "I/O error|EXT4-fs error" || true) - errors_before ))"
  rm -f "$work/img" "$work"/fiu-*
done
