#!/bin/sh
# Drives docs/probes/fuse-requests.c: builds it in a fresh directory, mounts
# it, makes each call from Python (ctypes for the calls Python lacks) and
# prints the client's and the daemon's lines merged in time order. Leaves
# nothing behind. usage: sh docs/probes/fuse-requests.sh
set -eu
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
trap 'fusermount3 -u "$work/m" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"' EXIT INT TERM
cc -O2 -Wall -o "$work/fs" "$here/fuse-requests.c" $(pkg-config --cflags --libs fuse3)
mkdir "$work/m"
"$work/fs" "$work/m" 2>"$work/daemon.log" &
while ! grep -q " $work/m " /proc/self/mountinfo; do sleep 0.05; done
python3 - "$work/m/f" >"$work/client.log" <<'PY'
import ctypes, mmap, os, sys, time
libc = ctypes.CDLL(None, use_errno=True)
def say(what, r):
    print(f"{time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000} client {what} -> {r}", flush=True)
def call(what, f):
    try:
        say(what, f())
    except OSError as e:
        say(what, f"-1 {os.strerror(e.errno)}")
def c(what, fn):
    r = fn()
    say(what, f"{r} {os.strerror(ctypes.get_errno()) if r < 0 else ''}")
fd = os.open(sys.argv[1], os.O_RDWR)
call("pwrite 4096", lambda: os.pwrite(fd, b"x" * 4096, 0))
call("fsync", lambda: os.fsync(fd))
call("fdatasync", lambda: os.fdatasync(fd))
c("sync_file_range(WAIT_BEFORE|WRITE|WAIT_AFTER)", lambda: libc.sync_file_range(fd, ctypes.c_longlong(0), ctypes.c_longlong(0), 7))
c("syncfs", lambda: libc.syncfs(fd))
call("mmap MAP_SHARED", lambda: mmap.mmap(fd, 4096, mmap.MAP_SHARED) and "mapped")
say("close begins", "")
os.close(fd)
say("close returned", 0)
time.sleep(0.5)
PY
sort -n "$work/client.log" "$work/daemon.log" | grep -v "^$"
