#!/bin/bash
# Issue 16 §2 on this machine's kernel: shutdown_probe, then a remount and
# what the disk holds.   probes/shutdown.sh FSTYPE FLAG [MOUNT OPTIONS]   (FLAG: 0, 1, 2)
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
fstype=$1 flag=$2 opts=${3:-}
gcc -O2 -Wall -o "$PROBE_ROOT/shutdown_probe" "$here/shutdown_probe.c"
make_fs "$fstype" "$opts" $([ "$fstype" = xfs ] && echo 320 || echo 200)
names=(default logflush nologflush)
echo "== $(uname -r) $fstype ${opts:-(defaults)}, shutdown flag $flag (${names[$flag]})"
"$PROBE_ROOT/shutdown_probe" "$PROBE_ROOT/mnt" "$flag" || true
if umount "$PROBE_ROOT/mnt"; then echo "umount                   0"; else echo "umount failed"; fi
if mount -t "$fstype" ${opts:+-o "$opts"} "$LOOP" "$PROBE_ROOT/mnt"; then
  echo "mount                    0"
  printf '%-24s %s\n' "size after remount:" "$(stat -c %s "$PROBE_ROOT/mnt/f" 2>&1)"
  printf '%-24s' "disk, pages:"
  for i in 0 1 2 3; do
    c=$(dd if="$PROBE_ROOT/mnt/f" bs=4096 skip=$i count=1 status=none | od -An -c -v | tr -s ' \n' '\n' | sort -u | { grep -v '^$' || true; } | tr -d '\n')
    case "$c" in "") c="(eof)";; '\0') c=0;; ??*) c='?';; esac
    printf ' %s' "$c"
  done
  echo
else
  echo "mount failed"
fi
echo "-- kernel log"
klog
