#!/usr/bin/env bash
# SQLite (rollback journal, synchronous=FULL) when the device runs out of
# space for new blocks during a commit and gets it back, by hand: lib.sh's
# image on a small tmpfs is filled (fault_on: writes to never-written blocks
# of the image fail, as in a full thin pool) and emptied (fault_off: the pool
# grown). Checks the row of docs/apps.md for app-sqlite-rollback-thin-pool-full.
# strace -y shows which file's write or sync failed.
#   docs/probes/sqlite-thin.sh
here="$(cd "$(dirname "$0")" && pwd)"
. "$here/lib.sh"
make_fs ext4 "" 64
db="$PROBE_ROOT/mnt/app"
q() { sqlite3 -bail -batch "$db" "PRAGMA synchronous=FULL; $1" 2>&1 | tr '\n' ' '; echo "[exit ${PIPESTATUS[0]}]"; }
echo "== sqlite3 $(sqlite3 -version | cut -d' ' -f1), ext4 on a loop device over tmpfs, $(uname -r)"
q "PRAGMA journal_mode=DELETE; CREATE TABLE kv(k TEXT PRIMARY KEY, v TEXT);" >/dev/null
q "INSERT OR REPLACE INTO kv VALUES('k','v1');" >/dev/null
sync
fault_on
echo "   space gone; put k=v2: $(strace -f -y -o "$PROBE_ROOT/strace" -e trace=pwrite64,write,fsync,fdatasync,unlink sqlite3 -bail -batch "$db" "PRAGMA synchronous=FULL; INSERT OR REPLACE INTO kv VALUES('k','v2');" 2>&1 | tr '\n' ' ')"
grep -E '= -1' "$PROBE_ROOT/strace" | cut -c1-110 | sed 's/^/   strace: /'
echo "   still full, get k:    $(q "SELECT v FROM kv WHERE k='k';")"
fault_off
echo "   space back, put k=v3: $(q "INSERT OR REPLACE INTO kv VALUES('k','v3');")"
sync; echo 3 > /proc/sys/vm/drop_caches
echo "   evicted, get k:       $(q "SELECT v FROM kv WHERE k='k';")"
echo "   integrity_check:      $(q "PRAGMA integrity_check;")"
klog | grep -m3 -iE 'error|space' | sed 's/^/   kernel: /'
