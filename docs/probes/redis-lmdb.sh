#!/usr/bin/env bash
# Redis (AOF) and LMDB under a failing data file, by hand and sharing no code
# with syncprobe: docs/probes/faultfs.c serves a disk image through FUSE
# (writes to a byte range fail with EIO while a control file names it, each
# failed write logged), a loop device sits on it with ext4, and Debian's
# redis-server/redis-cli and mdb_load/mdb_dump run there (redis on a Unix
# socket in the probe's directory, --port 0: no TCP, no configuration file).
# The byte range is the file's extent as filefrag prints it. Each scenario
# prints what the client saw and what comes back after the heal. Checks the
# rows of docs/apps.md for the app-redis-* and app-lmdb-* cases.
# Needs root, a C compiler, libfuse3-dev, e2fsprogs, redis-server,
# redis-tools, lmdb-utils. Everything it makes lives under one mktemp
# directory and is removed on exit.
#   docs/probes/redis-lmdb.sh
set -uo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
source "$here/faultdisk.sh"
faultdisk_init redis-lmdb-probe
redis=""
stop_redis() { [ -n "$redis" ] && kill -9 "$redis" 2>/dev/null && wait "$redis" 2>/dev/null; redis=""; true; }
probe_stop() { stop_redis; }
faultdisk_start 256M "$work/faults.log"
mkfs.ext4 -q "$loop" && mount "$loop" "$work/mnt" || exit 1
echo "== $(redis-server --version | cut -d' ' -f1-3), lmdb-utils $(dpkg-query -W -f '${Version}' lmdb-utils) on ext4, $(uname -r)"

# fault_on FILE: writes to FILE's extents fail (each "OFFSET LENGTH", bytes on the disk).
fault_on() {
  filefrag -e -b1 "$1" | awk '$1 ~ /^[0-9]+:$/ {gsub(/\.\./," "); print $4, ($5 + 0) - $4 + 1}' > "$work/control"
  echo "   fault on $(basename "$1"): bytes $(tr '\n' ' ' < "$work/control")(size $(stat -c %s "$1"))"
  : > "$work/faults.log"
}
heal() {
  echo "   healed; failed writes wholly inside the range: $(inside)"
  rm -f "$work/control"
}
# How many of the writes faultfs failed lie wholly inside the range (a
# write reaching outside it would fail more than the file's blocks).
inside() {
  awk 'NR == FNR { lo[NR] = $1; n[NR] = $2; c = NR; next }
       { split($4, w, "+"); ok = 0
         for (i = 1; i <= c; i++) if (w[1] >= lo[i] && w[1] + w[2] <= lo[i] + n[i]) ok = 1
         tot++; if (ok) in_++ }
       END { printf "%d of %d", in_, tot }' "$work/control" "$work/faults.log"
}
drop() { sync; echo 3 > /proc/sys/vm/drop_caches; echo "   page cache evicted"; }

# redis_scenario NAME FSYNC DROP(yes|no)
redis_scenario() {
  local name=$1 fsync=$2 dropit=$3 dir="$work/mnt/$1" sock="$work/$1.sock"
  mkdir "$dir"
  start() {
    redis-server --port 0 --bind 127.0.0.1 --unixsocket "$sock" --unixsocketperm 700 --daemonize no \
      --logfile "$work/$name.log" --dir "$dir" --appendonly yes --appendfsync "$fsync" --save '' \
      --auto-aof-rewrite-percentage 0 &
    redis=$!
    for _ in $(seq 100); do
      [ "$(redis-cli -s "$sock" PING 2>/dev/null)" = PONG ] && return 0
      kill -0 "$redis" 2>/dev/null || { wait "$redis"; echo "   redis-server exited $? while starting"; redis=""; return 1; }
      sleep 0.1
    done
  }
  c() { redis-cli -s "$sock" -e --raw "$@" 2>&1 | head -2 | tr '\n' ' '; echo "[exit ${PIPESTATUS[0]}]"; }
  echo "-- redis $name: appendfsync=$fsync"
  start
  c SET k v1 >/dev/null; c SET j w1 >/dev/null
  sleep 3  # everysec: the background fsync has run
  sync -f "$dir"
  fault_on "$dir/appendonlydir/appendonly.aof.1.incr.aof"
  echo "   SET k v2:           $(c SET k v2)"
  sleep 3
  echo "   aof status:         $(redis-cli -s "$sock" INFO persistence 2>&1 | tr -d '\r' | grep aof_last_write_status)"
  echo "   SET j w2 (faulty):  $(c SET j w2)"
  echo "   running, GET k:     $(c GET k)"
  grep -h -E "(persist AOF|fsync error|Exiting|MISCONF|Background AOF fsync)" "$work/$name.log" | head -2 | sed 's/^/   server log: /'
  heal
  if [ "$fsync" = everysec ]; then
    sleep 3
    echo "   healed, SET j w3:   $(c SET j w3)"
  fi
  stop_redis
  [ "$dropit" = yes ] && drop
  echo "   AOF tail:           $(tail -c 40 "$dir/appendonlydir/appendonly.aof.1.incr.aof" | od -An -c | tr -s ' ' | tr '\n' ' ')"
  if start; then
    echo "   restarted, GET k/j: $(c GET k) $(c GET j)"
    stop_redis
  fi
  grep -h -E "(Bad file format|Unexpected end|truncated|corrupt)" "$work/$name.log" | tail -2 | sed 's/^/   server log: /'
  local checked status
  checked="$(redis-check-aof "$dir/appendonlydir/appendonly.aof.manifest" 2>&1)"; status=$?
  echo "   redis-check-aof:    $(tail -1 <<<"$checked") [exit $status]"
  if [ "$dropit" = yes ]; then  # what an administrator's repair brings back
    echo "   redis-check-aof --fix: $(echo y | redis-check-aof --fix "$dir/appendonlydir/appendonly.aof.manifest" 2>&1 | tail -1)"
    if start; then
      echo "   repaired, GET k/j:  $(c GET k) $(c GET j)"
      stop_redis
    fi
  fi
}

# lmdb_scenario NAME DROP(yes|no)
lmdb_scenario() {
  local name=$1 dropit=$2 env="$work/mnt/$1"
  mkdir "$env"
  load() { printf '%s\n%s\n' "$1" "$2" > "$work/in"; mdb_load -T -f "$work/in" "$env" 2>&1 | head -1 | tr '\n' ' '; echo "[exit ${PIPESTATUS[0]}]"; }
  dump() { mdb_dump -p "$env" 2>&1 | awk '/HEADER=END/ {d = 1; next} /DATA=END/ {d = 0} d' | tr -d ' ' | paste -sd' '; }
  echo "-- lmdb $name"
  load k v1 >/dev/null; load j w1 >/dev/null
  sync -f "$env"
  fault_on "$env/data.mdb"
  echo "   load k v2:          $(load k v2)"
  # The same failing commit once more under strace: which call failed, and
  # whether the meta page (offset 0 or 4096, written O_DSYNC) was reached.
  printf 'k\nv2\n' > "$work/in"
  strace -e trace=pwrite64,pwritev,writev,fdatasync,fsync -o "$work/strace" mdb_load -T -f "$work/in" "$env" >/dev/null 2>&1
  grep -E '^(pwrite|writev|fdatasync|fsync)' "$work/strace" | cut -c1-90 | sed 's/^/   strace: /'
  echo "   faulty, dump:       $(dump)"
  heal
  [ "$dropit" = yes ] && drop
  echo "   healed, dump:       $(dump)"
}

redis_scenario always-kept always no
redis_scenario always-evicted always yes
redis_scenario everysec-kept everysec no
redis_scenario everysec-evicted everysec yes
lmdb_scenario lmdb-kept no
lmdb_scenario lmdb-evicted yes
