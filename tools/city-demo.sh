#!/usr/bin/env bash
# tools/city-demo.sh: a small city on this machine (docs/CITY.md): a local
# nats-server with JetStream (store in a temp dir), a throwaway PostgreSQL 15
# cluster (initdb, as the postgres user when run as root), three demo halls
# with different hall.id (city-centre, county-01, town-007; TCP 7421-7423,
# HTTP 7481-7483), a hallq-ship beside each and one hallq-centre. Prints
# where to look and runs until Ctrl-C, then stops what it started and
# removes the temp dir (HALLQ_CITY_KEEP=1 keeps it).
#   tools/city-demo.sh [--no-build]
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
if [ "${1:-}" != "--no-build" ]; then
  tools/deps.sh
  cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
  cmake --build build -j"$(nproc)"
fi
pgbin=/usr/lib/postgresql/15/bin
nats_port=${NATS_PORT:-4222}
pg_port=${PG_PORT:-5499}
tmp=$(mktemp -d /tmp/hallq-city.XXXXXX)
chmod 755 "$tmp"
pids=()
as_pg=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  [ -d "$tmp/pg/data" ] && "${as_pg[@]}" "$pgbin/pg_ctl" -D "$tmp/pg/data" -m fast stop >/dev/null 2>&1 || true
  [ "${HALLQ_CITY_KEEP:-}" = 1 ] && echo "kept $tmp" || rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

nats-server -js -sd "$tmp/nats" -a 127.0.0.1 -p "$nats_port" >"$tmp/nats.log" 2>&1 &
pids+=($!)
mkdir "$tmp/pg"
if [ "$(id -u)" -eq 0 ]; then
  chown postgres:postgres "$tmp/pg"
  as_pg=(runuser -u postgres --)
fi
"${as_pg[@]}" "$pgbin/initdb" -D "$tmp/pg/data" -A trust -U postgres >"$tmp/initdb.log" 2>&1
"${as_pg[@]}" "$pgbin/pg_ctl" -D "$tmp/pg/data" -l "$tmp/pg/log" -w \
  -o "-p $pg_port -k $tmp/pg -c listen_addresses=''" start >/dev/null
pg="host=$tmp/pg port=$pg_port user=postgres dbname=postgres"
nats="nats://127.0.0.1:$nats_port"

i=0
for hall in city-centre county-01 town-007; do
  i=$((i + 1))
  sed "0,/id: demo-city/s//id: $hall/" examples/demo-hall.yaml >"$tmp/$hall.yaml"
  chmod 600 "$tmp/$hall.yaml"  # it holds tokens
  build/daemon/hallqd --config "$tmp/$hall.yaml" --data "$tmp/$hall" --tcp "127.0.0.1:742$i" \
    --unix "$tmp/$hall.sock" --http "127.0.0.1:748$i" --checkpoint-ms 1000 >"$tmp/$hall.log" 2>&1 &
  pids+=($!)
done
for hall in city-centre county-01 town-007; do
  for _ in $(seq 100); do [ -e "$tmp/$hall/LOCK" ] && break; sleep 0.1; done
  build/city/hallq-ship --data "$tmp/$hall" --nats "$nats" >"$tmp/ship-$hall.log" 2>&1 &
  pids+=($!)
done
build/city/hallq-centre --nats "$nats" --pg "$pg" >"$tmp/centre.log" 2>&1 &
pids+=($!)

cat <<EOF_WHERE
A city of three halls, everything in $tmp:
  NATS JetStream  $nats          (stream HALLQ_WAL, subjects hallq.wal.<hall>)
  PostgreSQL      psql "$pg"
  halls           city-centre  TCP 127.0.0.1:7421  HTTP http://127.0.0.1:7481/board#token=display-demo
                  county-01    TCP 127.0.0.1:7422  HTTP http://127.0.0.1:7482/board#token=display-demo
                  town-007     TCP 127.0.0.1:7423  HTTP http://127.0.0.1:7483/board#token=display-demo
  logs            $tmp/*.log
Take a ticket at a hall:   $repo/build/tools/hallq --tcp 127.0.0.1:7422 ticket take A
Then see it at the centre: it ships once a checkpoint after the one that wrote it has
committed something (daemon/safe_lsn.h), so a quiet hall's newest batch waits for its next one:
  psql "$pg" -c "SELECT hall_id, last_lsn, state FROM hallq.hall"
  psql "$pg" -c "SELECT hall_id, lsn, at, op, actor_role FROM hallq.record ORDER BY at DESC LIMIT 10"
Ctrl-C stops it all.
EOF_WHERE
wait "${pids[0]}"
