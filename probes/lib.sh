# Shared set-up for the probe scripts: a scratch directory of the probe's own,
# a sparse image on a small tmpfs of its own, a loop device over it, a
# filesystem mounted from it, and a trap that removes all of it (mount, loop
# device, tmpfs, directory) on exit, error or signal. Touches nothing else.
#
# The image lives on a tmpfs just large enough for what mkfs wrote plus the
# case's own writes, so the probe can make writes to never-written blocks of
# the image fail with ENOSPC by filling the tmpfs (fault_on) and make them work
# again by emptying it (fault_off). Blocks mkfs or the case already wrote stay
# writable: the fault hits exactly the space a new allocation gets.
set -euo pipefail
PROBE_ROOT=$(mktemp -d /tmp/syncprobe-probe.XXXXXX)
LOOP=""
cleanup() {
  set +e
  for m in "$PROBE_ROOT/mnt" "$PROBE_ROOT/tmpfs"; do
    mountpoint -q "$m" && { umount "$m" 2>/dev/null || umount -l "$m"; }
  done
  [ -n "$LOOP" ] && losetup -d "$LOOP" 2>/dev/null
  rm -rf "$PROBE_ROOT"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# make_fs FSTYPE MOUNTOPTS IMAGE_MB: a fresh filesystem mounted on $PROBE_ROOT/mnt.
make_fs() {
  local fstype=$1 opts=$2 mb=$3
  mkdir -p "$PROBE_ROOT/tmpfs" "$PROBE_ROOT/mnt"
  mount -t tmpfs -o size=$((mb + 64))m tmpfs "$PROBE_ROOT/tmpfs"
  truncate -s ${mb}M "$PROBE_ROOT/tmpfs/disk.img"
  LOOP=$(losetup --find --show "$PROBE_ROOT/tmpfs/disk.img")
  case $fstype in
    ext4) mkfs.ext4 -q -F -b 4096 -E lazy_itable_init=0,lazy_journal_init=0,nodiscard "$LOOP" ;;
    xfs) mkfs.xfs -q -f -K "$LOOP" ;;
    btrfs) mkfs.btrfs -q -f -K "$LOOP" ;;
  esac
  mount -t "$fstype" ${opts:+-o "$opts"} "$LOOP" "$PROBE_ROOT/mnt"
}

remount_fs() {
  local fstype=$1 opts=$2
  umount "$PROBE_ROOT/mnt"
  mount -t "$fstype" ${opts:+-o "$opts"} "$LOOP" "$PROBE_ROOT/mnt"
}

# Writes to blocks of the image nobody wrote yet fail (ENOSPC from the
# tmpfs): a filler file takes every free page of it. As commands, for a probe
# program to run between its own steps.
fault_on_cmd() {
  echo "dd if=/dev/zero of='$PROBE_ROOT/tmpfs/filler' bs=4k status=none 2>/dev/null; sync '$PROBE_ROOT/tmpfs/filler'; true"
}
fault_off_cmd() { echo "rm -f '$PROBE_ROOT/tmpfs/filler'"; }
fault_on() { sh -c "$(fault_on_cmd)"; }
fault_off() { sh -c "$(fault_off_cmd)"; }

# The kernel's log lines since the probe began that name its loop device
# (other programs on the machine log too).
# (other programs on the machine log too). The ring buffer may be full, so
# lines are chosen by their timestamp, not their number.
KLOG_START=$(dmesg | tail -1 | sed -n 's/^\[ *\([0-9.]*\)\].*/\1/p')
klog() {
  dmesg | awk -v t="${KLOG_START:-0}" '{ s = $0; sub(/^\[ */, "", s); if (s + 0 > t + 0) print }' |
    grep -E "${LOOP##*/}([^0-9]|$)" || true
}
