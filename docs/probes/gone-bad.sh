#!/usr/bin/env bash
# An independent check of Linux's answer to gone-bad-after-eviction (R3),
# sharing no code with syncprobe: docs/probes/faultfs.c serves a disk image
# through FUSE (writes to a byte range fail with EIO while a control file
# names it; flushes never fail), a loop device with direct I/O sits on it,
# and docs/probes/gone-bad.c makes the calls and prints each result. After
# the run the filesystem is mounted again and the file's first byte says
# what stable storage holds.
# Needs root, a C compiler, libfuse3-dev and mkfs.<fs>. Everything it makes
# lives under one mktemp directory and is removed on exit.
#   docs/probes/gone-bad.sh [ext4|xfs|btrfs]
set -euo pipefail
fs="${1:-ext4}"
here="$(cd "$(dirname "$0")" && pwd)"
source "$here/faultdisk.sh"
faultdisk_init gone-bad
cc -O2 -Wall -o "$work/gone-bad" "$here/gone-bad.c"
faultdisk_start 512M
mkfs."$fs" -q "$loop" >/dev/null 2>&1 || mkfs."$fs" -f "$loop" >/dev/null
mount "$loop" "$work/mnt"
printf '#!/bin/sh\necho "$1 $2" > %s\n' "$work/control" > "$work/fault"
printf '#!/bin/sh\nrm -f %s\n' "$work/control" > "$work/heal"
chmod +x "$work/fault" "$work/heal"
echo "== $fs on $(uname -r)"
"$work/gone-bad" "$work/mnt/f" "$work/fault" "$work/heal"
umount "$work/mnt"
mount "$loop" "$work/mnt"
first=$(head -c 1 "$work/mnt/f")
echo "disk after remount: $( [ "$first" = A ] && echo A || { [ "$first" = o ] && echo old || echo other; } )"
