#!/usr/bin/env bash
# PostgreSQL under a failing table file or WAL segment, by hand and sharing no
# code with syncprobe: docs/probes/faultfs.c serves a disk image through FUSE
# (writes to a byte range fail with EIO while a control file names it), a
# loop device sits on it with ext4, and Debian's initdb/pg_ctl/psql run a
# private cluster there (Unix socket in the probe's directory, no TCP). The
# byte range is the file's extent as filefrag prints it. Each scenario prints
# what the client saw and what the restarted server returns. Checks the rows
# of docs/apps.md for the app-postgres-* cases.
# Needs root, a C compiler, libfuse3-dev, e2fsprogs, postgresql. Everything
# it makes lives under one mktemp directory and is removed on exit.
#   docs/probes/postgres.sh
set -uo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
bin="$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)"
source "$here/faultdisk.sh"
faultdisk_init pg-probe
chmod 0711 "$work"  # the postgres user reaches its directories under it
data=""
as_pg() { runuser -u postgres -- "$@"; }
stop_pg() { [ -n "$data" ] && as_pg "$bin/pg_ctl" -D "$data" -m immediate -w stop >/dev/null 2>&1; true; }
probe_stop() { stop_pg; }
faultdisk_start 512M
mkfs.ext4 -q "$loop" && mount "$loop" "$work/mnt" || exit 1
echo "== PostgreSQL $("$bin/postgres" -V | awk '{print $3}') on ext4, $(uname -r)"

# scenario NAME RETRY FILE(table|wal) READ_WHILE_RUNNING DROP(yes|no)
scenario() {
  local name=$1 retry=$2 target=$3 running_key=$4 drop=$5 sock="$work/sock-$1"
  data="$work/mnt/$name"
  mkdir "$data" "$sock" && chown postgres: "$data" "$sock" && chmod 0700 "$data"
  as_pg "$bin/initdb" -D "$data" -A trust -U postgres --no-sync >/dev/null
  q() { psql -h "$sock" -U postgres -d postgres -X -At -q -v ON_ERROR_STOP=1 -c "$1" 2>&1 | head -2 | tr '\n' ' '; echo "[exit ${PIPESTATUS[0]}]"; }
  start() { as_pg "$bin/pg_ctl" -D "$data" -l "$sock/log" -w -o "-c listen_addresses='' -c unix_socket_directories='$sock' -c data_sync_retry=$retry -c restart_after_crash=off -c autovacuum=off" start >/dev/null; }
  start
  q "CREATE TABLE kv(k text PRIMARY KEY, v text); INSERT INTO kv VALUES ('k','v1'), ('j','w1')" >/dev/null
  q "SELECT count(*) FROM kv" >/dev/null  # hint bits set before the checkpoint writes the page
  q "CHECKPOINT" >/dev/null
  sync -f "$data" 2>/dev/null  # (EIO here is the previous scenario's error, reported once by syncfs)
  local file
  if [ "$target" = table ]; then file="$data/$(q "SELECT pg_relation_filepath('kv')" | cut -d' ' -f1)"
  else file="$data/pg_wal/$(q "SELECT pg_walfile_name(pg_current_wal_lsn())" | cut -d' ' -f1)"; fi
  filefrag -e -b1 "$file" | awk '$1 ~ /^[0-9]+:$/ {gsub(/\.\./," "); print $4, ($5 + 0) - $4 + 1}' | head -1 > "$work/control"
  echo "-- $name: data_sync_retry=$retry, fault on the $target file (bytes $(cat "$work/control"))"
  echo "   UPDATE k=v2:        $(q "UPDATE kv SET v='v2' WHERE k='k'")"
  [ "$target" = table ] && echo "   CHECKPOINT:         $(q CHECKPOINT)"
  echo "   running, get $running_key:     $(q "SELECT v FROM kv WHERE k='$running_key'")"
  grep -h -m1 -E "(PANIC|ERROR): +could not f(data)?sync" "$sock/log" | sed 's/.*\(PANIC\|ERROR\)/   server log: \1/'
  rm -f "$work/control"
  [ "$retry" = on ] && echo "   healed, CHECKPOINT: $(q CHECKPOINT) $(tail -1 "$sock/log" | grep -o 'wrote [0-9]* buffers')"
  stop_pg
  [ "$drop" = yes ] && { sync; echo 3 > /proc/sys/vm/drop_caches; echo "   page cache evicted"; }
  start
  echo "   restarted, k/j:     $(q "SELECT v FROM kv WHERE k='k'") $(q "SELECT v FROM kv WHERE k='j'")"
  stop_pg
  data=""
}

scenario retry-off off table j no
scenario retry-on-kept on table j no
scenario retry-on-evicted on table j yes
scenario retry-on-reread on table k yes
scenario wal-kept off wal k no
scenario wal-evicted off wal k yes
