#!/bin/bash
# Issue 16 §1 on this machine's kernel: append_probe on a filesystem whose
# never-written blocks fail while the fault is on (see lib.sh), then a
# remount and a last read.   probes/append.sh FSTYPE [MOUNT OPTIONS]
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
fstype=$1 opts=${2:-}
gcc -O2 -Wall -o "$PROBE_ROOT/append_probe" "$here/append_probe.c"
make_fs "$fstype" "$opts" $([ "$fstype" = xfs ] && echo 320 || echo 200)
# mkfs.xfs writes the first 128 KiB of each allocation group, and a small new
# file lands in the free blocks there: small spacer files fill them, so that
# the probe's file gets blocks nobody has written.
mkdir "$PROBE_ROOT/mnt/spacers"
for i in $(seq 64); do head -c 4096 /dev/zero > "$PROBE_ROOT/mnt/spacers/$i"; done
sync
echo "== $(uname -r) $fstype ${opts:-(defaults)}"
"$PROBE_ROOT/append_probe" "$PROBE_ROOT/mnt" "$(fault_on_cmd)" "$(fault_off_cmd)"
remount_fs "$fstype" "$opts"
printf '%-28s' "  8K..14K after remount:"
dd if="$PROBE_ROOT/mnt/f" bs=1024 skip=8 count=6 status=none | od -An -c -w1024 -v | awk '{c=$1; same=1; for(i=2;i<=NF;i++) if($i!=c) same=0; printf " %s", same ? (c=="\\0" ? "0" : c) : "?"} END {print ""}'
echo "-- kernel log"
klog
