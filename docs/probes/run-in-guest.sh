#!/bin/sh
# Runs append_probe and shutdown_probe (unchanged, statically linked) inside a
# fetched Debian kernel under QEMU, to check issue 16's kernel differences.
#   docs/probes/run-in-guest.sh KERNEL_NAME     (e.g. 5.10, 7.3; `syncprobe vm fetch` first)
# What it shares with syncprobe: the initramfs `syncprobe vm build` makes
# (busybox, mkfs.ext4, debugfs, kernel modules) and the FUSE fault daemon
# syncprobe-blockdev, driven over its control socket by probe_ctl.c. Nothing
# else: no runner, no case files, no GETFSMAP free-space lookup. PROBE_INITRD
# names an initramfs to use instead of building one. QEMU runs with TCG.
#
# append: ext4 (defaults, nodelalloc, data=journal). The fault fails writes
#   (EIO) to the 64 MiB of the device after the file's last extent (FIEMAP
#   of its first 8 KiB), which is where ext4 puts an append; the daemon's log lists every
#   request that failed, and debugfs's icheck names the inode of each block
#   hit, after the run.
# fsmap: the GETFSMAP records around a fresh 8 KiB file (docs/probes/fsmap.c).
# shutdown: ext4 nodelalloc and defaults, flag 1 (LOGFLUSH); no fault rule.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
build=${SYNCPROBE_BUILD:-$here/../../build}
cache=${SYNCPROBE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/syncprobe}
name=$1
kdir=$cache/vm/kernels/$name
initrd=${PROBE_INITRD:-$("$build/bin/syncprobe" vm build "$name" | sed -n 's/^vm [^:]*: \(.*\) (.*/\1/p')}
vmlinuz=$kdir/$(python3 -c "import json,sys;print(json.load(open(sys.argv[1]))['vmlinuz'])" "$kdir/kernel.json")
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/stage/bin"
for p in append_probe shutdown_probe probe_ctl fsmap; do
  gcc -static -O2 -Wall -o "$work/stage/bin/$p" "$here/$p.c"
done
cat > "$work/stage/init" <<'INIT'
#!/bin/sh
/bin/busybox --install -s
mount -t proc proc /proc; mount -t sysfs sysfs /sys; mount -t devtmpfs devtmpfs /dev
for m in $(cat /etc/modules.load); do modprobe -q "$m" 2>/dev/null; done
export PATH=/usr/sbin:/usr/bin:/sbin:/bin
mkdir -p /w && mount -t tmpfs -o size=80% tmpfs /w
echo "probe: kernel $(uname -r)"
up() { # up MOUNT_OPTIONS: a fresh ext4 on loop0 over the daemon's file
  rm -f /w/img /w/ready /w/ctl; truncate -s 512M /w/img
  mkfs.ext4 -q -F -b 4096 -E lazy_itable_init=0,lazy_journal_init=0,nodiscard /w/img
  mkdir -p /w/fuse /w/mnt
  syncprobe-blockdev --image /w/img --size 536870912 --mountpoint /w/fuse --control /w/ctl > /w/ready 2>/w/daemon.log &
  daemon=$!
  while ! grep -qs ready /w/ready; do sleep 0.1; done
  losetup /dev/loop0 /w/fuse/dev
  mount -t ext4 ${1:+-o $1} /dev/loop0 /w/mnt
  dmesg -c > /dev/null
}
down() {
  umount /w/mnt 2>/dev/null || umount -l /w/mnt
  losetup -d /dev/loop0
  kill $daemon; wait $daemon || true
}
pages() { # pages FILE BS SKIP COUNT: one letter per block (0 = zeros, ? = mixed)
  i=0
  while [ $i -lt $4 ]; do
    c=$(dd if=$1 bs=$2 skip=$(($3 + i)) count=1 2>/dev/null | od -An -c -v | tr -s ' \n' '\n' | sort -u | grep -v '^$' | tr -d '\n')
    case "$c" in "") c="(eof)";; '\0') c=0;; ??*) c='?';; esac
    printf ' %s' "$c"; i=$((i + 1))
  done; echo
}
evidence() { # the daemon's log, the kernel's log, who owns each block that failed
  echo "-- daemon log (every fault the device injected)"; sed 's/^/  /' /w/daemon.log
  echo "-- kernel log"; dmesg | sed 's/^\[ *[0-9.]*\] /  /'
  echo "-- extents on disk (debugfs ex /f)"; debugfs -R "ex /f" /w/img 2>/dev/null | sed 's/^/  /'
  for b in $(sed -n 's/.*write \[\([0-9]*\), +\([0-9]*\)) fails.*/\1:\2/p' /w/daemon.log); do
    first=$((${b%:*} / 4096)); last=$(((${b%:*} + ${b#*:} - 1) / 4096))
    echo "  failed write: blocks $first..$last, owner: $(debugfs -R "icheck $first $last" /w/img 2>/dev/null | tail -n +2 | tr '\n\t' '; ')"
  done
  echo "  inode of /f: $(debugfs -R 'stat /f' /w/img 2>/dev/null | sed -n 's/^Inode: *\([0-9]*\).*/\1/p')"
}
for opts in "" nodelalloc data=journal; do
  up "$opts"
  echo "== append, ext4 ${opts:-(defaults)}"
  append_probe /w/mnt "probe_ctl /w/ctl after /w/mnt/f 67108864" "probe_ctl /w/ctl '{\"cmd\":\"heal\"}'"
  probe_ctl - map /w/mnt/f
  probe_ctl /w/ctl '{"cmd":"stats"}'
  umount /w/mnt; mount -t ext4 ${opts:+-o $opts} /dev/loop0 /w/mnt
  printf '%-28s' "  8K..14K after remount:"; pages /w/mnt/f 1024 8 6
  echo "  size after remount: $(stat -c %s /w/mnt/f)"
  down; evidence
done
# What GETFSMAP (syncprobe's `range = "free"`) calls free once an 8 KiB file
# is fsync'd and still open for writing (as in syncprobe's case), and after
# it is closed: the records of block group 1, beside the file's FIEMAP.
show_fsmap() {
  fsmap /w/mnt | awk '$1 >= 134217728 && $1 < 268435456 { printf "  fsmap blocks %d..%d %s\n", $1 / 4096, ($1 + $2) / 4096 - 1, $3 }'
}
up ""
echo "== fsmap around an 8 KiB file, ext4 (defaults)"
exec 3>/w/mnt/f
head -c 8192 /dev/zero >&3; sync /w/mnt/f
probe_ctl - map /w/mnt/f
echo "  writer open, after fsync:"; show_fsmap
exec 3>&-
echo "  writer closed:"; show_fsmap
down
for opts in nodelalloc ""; do
  up "$opts"
  echo "== shutdown flag 1 (LOGFLUSH), ext4 ${opts:-(defaults)}"
  shutdown_probe /w/mnt 1 || true
  probe_ctl /w/ctl '{"cmd":"stats"}'
  umount /w/mnt && echo "umount 0"
  mount -t ext4 ${opts:+-o $opts} /dev/loop0 /w/mnt && echo "mount 0"
  echo "  size after remount: $(stat -c %s /w/mnt/f)"
  printf '%-28s' "  pages after remount:"; pages /w/mnt/f 4096 0 4
  down; evidence
done
echo "probe: done"
poweroff -f
INIT
chmod +x "$work/stage/init"
(cd "$work/stage" && find . | cpio -o -H newc --quiet | gzip -1) > "$work/probe.cpio.gz"
cat "$initrd" "$work/probe.cpio.gz" > "$work/initrd"
timeout 1500 qemu-system-x86_64 -nodefaults -no-reboot -display none -m 1024 -accel tcg -serial stdio \
  -kernel "$vmlinuz" -initrd "$work/initrd" -append "console=ttyS0 panic=-1 rdinit=/init loglevel=1" -nic none \
  | grep -v '^\[' | tr -d '\r'
