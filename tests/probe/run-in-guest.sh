#!/bin/sh
# Boots a fetched kernel with syncprobe's initramfs plus the independent
# fsync_probe, and prints what the probe saw for each fault mode on ext4 and
# xfs. The probe replaces /init (a second cpio appended to the first wins).
#   tests/probe/run-in-guest.sh KERNEL_NAME      (e.g. 6.1; needs `syncprobe vm fetch`)
# Used to check docs/vm.md's statements; not part of the test suite.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
build=${SYNCPROBE_BUILD:-$here/../../build}
cache=${SYNCPROBE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/syncprobe}
name=$1
kdir=$cache/vm/kernels/$name
initrd=$("$build/bin/syncprobe" vm build "$name" | sed -n 's/^vm [^:]*: \(.*\) (.*/\1/p')
vmlinuz=$kdir/$(python3 -c "import json,sys;print(json.load(open(sys.argv[1]))['vmlinuz'])" "$kdir/kernel.json")
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/stage/bin"
gcc -static -O2 -o "$work/stage/bin/fsync_probe" "$here/fsync_probe.c"
cat > "$work/stage/init" <<'INIT'
#!/bin/sh
/bin/busybox --install -s
mount -t proc proc /proc; mount -t sysfs sysfs /sys; mount -t devtmpfs devtmpfs /dev
for m in $(cat /etc/modules.load); do modprobe -q "$m" 2>/dev/null; done
export PATH=/usr/sbin:/usr/bin:/sbin:/bin
mkdir -p /w && mount -t tmpfs -o size=80% tmpfs /w
echo "probe: kernel $(uname -r)"
for fs in ext4 xfs; do
  for mode in data flush data+flush; do
    rm -f /w/img; truncate -s 512M /w/img
    if [ $fs = ext4 ]; then mkfs.ext4 -q -F -b 4096 -E lazy_itable_init=0,lazy_journal_init=0 /w/img; else mkfs.xfs -q -f /w/img; fi
    mkdir -p /w/fuse /w/mnt
    rm -f /w/ready /w/ctl
    syncprobe-blockdev --image /w/img --size 536870912 --mountpoint /w/fuse --control /w/ctl > /w/ready 2>/w/daemon.log &
    daemon=$!
    while ! grep -q ready /w/ready; do sleep 0.1; done
    losetup /dev/loop0 /w/fuse/dev
    mount -t $fs /dev/loop0 /w/mnt
    echo "== $fs, fault: $mode"
    fsync_probe /w/mnt /w/ctl $mode
    umount /w/mnt 2>/dev/null || umount -l /w/mnt
    losetup -d /dev/loop0
    kill $daemon; wait $daemon
  done
done
poweroff -f
INIT
chmod +x "$work/stage/init"
(cd "$work/stage" && find . | cpio -o -H newc --quiet | gzip -1) > "$work/probe.cpio.gz"
cat "$initrd" "$work/probe.cpio.gz" > "$work/initrd"
qemu-system-x86_64 -nodefaults -no-reboot -display none -m 1024 -accel tcg -serial stdio \
  -kernel "$vmlinuz" -initrd "$work/initrd" -append "console=ttyS0 panic=-1 rdinit=/init loglevel=1" -nic none \
  | grep -v '^\[' | tr -d '\r'
