# Shared set-up for the probes that fail byte ranges of a disk:
# docs/probes/faultfs.c, built here, serves a sparse image through
# FUSE (writes to the byte ranges listed in $work/control fail with EIO, each
# failed write logged on its stderr), and a loop device with direct I/O sits
# on it for the probe's filesystem. Everything lives under one mktemp
# directory ($work), removed on exit, error or signal once nothing is
# mounted below it; a mount that will not go is reported and its directory
# left alone. Touches nothing else.
#
#   here=...; source "$here/faultdisk.sh"
#   faultdisk_init NAME           $work = /tmp/NAME.XXXXXX, cleanup trap set
#   probe_stop() { ...; }         optional: stops the probe's own programs first
#   faultdisk_start SIZE [LOG]    faultfs over a SIZE image (its log to LOG,
#                                 default stderr); $loop is the loop device,
#                                 $work/mnt an empty directory to mount on
work="" loop="" daemon=""
probe_stop() { :; }
faultdisk_cleanup() {
  set +e
  probe_stop
  [ -n "$work" ] || return
  mountpoint -q "$work/mnt" && umount "$work/mnt"
  [ -n "$loop" ] && losetup -d "$loop" 2>/dev/null
  mountpoint -q "$work/fuse" && umount "$work/fuse"
  [ -n "$daemon" ] && kill "$daemon" 2>/dev/null && wait "$daemon" 2>/dev/null
  if mountpoint -q "$work/mnt" || mountpoint -q "$work/fuse"; then
    echo "probe: $work still has a mount; left in place" >&2
  else
    rm -rf "$work"
  fi
}
faultdisk_init() {
  work="$(mktemp -d "/tmp/$1.XXXXXX")"
  trap faultdisk_cleanup EXIT
  trap 'exit 130' INT TERM
}
faultdisk_start() {
  local size=$1 log=${2:-/dev/stderr}
  cc -O2 -Wall -o "$work/faultfs" "$here/faultfs.c" $(pkg-config --cflags --libs fuse3) || exit 1
  truncate -s "$size" "$work/disk.img"
  mkdir "$work/fuse" "$work/mnt"
  "$work/faultfs" "$work/disk.img" "$work/control" "$work/fuse" 2>"$log" &
  daemon=$!
  for _ in $(seq 50); do [ -e "$work/fuse/disk" ] && break; sleep 0.1; done
  loop="$(losetup --direct-io=on --find --show "$work/fuse/disk")"
}
