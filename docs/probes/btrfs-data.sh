#!/usr/bin/env bash
# btrfs with a data-only write fault, checked independently of syncprobe:
# faultfs.c serves a disk image through FUSE, a loop device with direct I/O
# sits on it, mkfs.btrfs -K makes a 512 MiB btrfs (as syncprobe does), and
# the failing ranges are the device extents of every DATA chunk as btrfs-progs
# prints them (`btrfs inspect-internal dump-tree -t chunk`; syncprobe reads
# the chunk tree through the ioctl instead). btrfs_data_probe.c makes the
# calls; then the script checks the fault did nothing more than fail data:
# faultfs's log of failed writes (every one inside a DATA chunk), the kernel
# log (no transaction abort, no forced read-only) and a remount.
# With the argument `metadata` the failing ranges are the METADATA and SYSTEM
# chunks and the superblock copies instead (what syncprobe's metadata fault
# fails), for comparison.
# Needs root, a C compiler, libfuse3-dev, btrfs-progs. Everything lives under
# one mktemp directory and is removed on exit.
#   docs/probes/btrfs-data.sh [data|metadata]
set -euo pipefail
kind="${1:-data}"
case "$kind" in data) want="DATA" ;; metadata) want="METADATA SYSTEM" ;;
  *) echo "usage: $0 [data|metadata]" >&2; exit 2 ;; esac
here="$(cd "$(dirname "$0")" && pwd)"
source "$here/faultdisk.sh"
faultdisk_init btrfs-data
cc -O2 -Wall -o "$work/probe" "$here/btrfs_data_probe.c"
faultdisk_start 512M "$work/faultfs.log"
klog_start=$(dmesg | tail -1 | sed -n 's/^\[ *\([0-9.]*\)\].*/\1/p')
mkfs.btrfs -q -f -K "$loop" >/dev/null
mount -t btrfs "$loop" "$work/mnt"
# The chunks of the wanted types: "length L ... type DATA|single" (exact names
# between the bars: METADATA must not match DATA), then "stripe N devid D
# offset O" lines, one per copy.
btrfs inspect-internal dump-tree -t chunk "$loop" |
  awk -v want="$want" '/CHUNK_ITEM/ {hit = 0}
       /length [0-9]+ .*type / {len = $2; n = split($NF, t, "|"); hit = 0
         for (i = 1; i <= n; i++) if ((" " want " ") ~ (" " t[i] " ")) hit = 1}
       hit && /stripe [0-9]+ devid/ {print $6, len}' > "$work/data-ranges"
[ -s "$work/data-ranges" ] || { echo "no $want chunk found" >&2; exit 1; }
if [ "$kind" = metadata ]; then  # the superblock and its first mirror, outside every chunk
  printf '65536 4096\n67108864 4096\n' >> "$work/data-ranges"
fi
echo "== btrfs on $(uname -r), $(btrfs --version), $kind fault"
echo "-- failing while the fault is on (device offset, length; $want chunks):"
cat "$work/data-ranges"
"$work/probe" "$work/mnt" "cp '$work/data-ranges' '$work/control'" "rm -f '$work/control'"
umount "$work/mnt"
mount -t btrfs "$loop" "$work/mnt"
printf '%-40s %s\n' "f[0] after remount" "$(head -c 1 "$work/mnt/f")"
printf '%-40s %s\n' "g after remount (bytes)" "$(stat -c %s "$work/mnt/g" 2>/dev/null || echo missing)"
echo "-- faultfs: $(grep -c 'EIO write' "$work/faultfs.log" || true) failed writes; outside the failing ranges:"
grep 'EIO write' "$work/faultfs.log" | sed 's/.*write \([0-9]*\)+\([0-9]*\)/\1 \2/' |
  awk 'NR == FNR {lo[NR] = $1; n[NR] = $2; k = NR; next}
       {inside = 0; for (i = 1; i <= k; i++) if ($1 >= lo[i] && $1 + $2 <= lo[i] + n[i]) inside = 1
        if (!inside) {print "  " $0; bad++}} END {if (!bad) print "  none"}' "$work/data-ranges" -
echo "-- kernel log for ${loop##*/} (transaction aborts or a forced read-only would show here):"
dmesg | awk -v t="${klog_start:-0}" '{ s = $0; sub(/^\[ */, "", s); if (s + 0 > t + 0) print }' |
  grep -E "${loop##*/}([^0-9]|$)" | grep -vE 'first mount|checking UUID|enabling|using .* checksum|turning on|setting .* feature|disk space caching' || true
