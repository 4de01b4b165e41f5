#!/bin/bash
# A file created and written, then the filesystem shut down with LOGFLUSH
# (xfs_io -x -c "shutdown -f", XFS_IOC_GOINGDOWN / EXT4_IOC_SHUTDOWN flag 1):
# does the remounted filesystem have the name, and what size?
#   probes/logflush_create.sh FSTYPE
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
fs=$1
make_fs "$fs" "" $([ "$fs" = xfs ] && echo 320 || echo 200)
sync
head -c 4096 /dev/zero | tr '\0' G > "$PROBE_ROOT/mnt/g"
xfs_io -x -c "shutdown -f" "$PROBE_ROOT/mnt"
umount "$PROBE_ROOT/mnt"
mount -t "$fs" "$LOOP" "$PROBE_ROOT/mnt"
echo "$(uname -r) $fs: g after remount: $(stat -c 'size %s' "$PROBE_ROOT/mnt/g" 2>&1)"
