#!/usr/bin/env bash
# bench/replay.sh: WAL replay speed and hallqd's start-up recovery time.
#
# For each N in REPLAY_RECORDS (default "1000000 10000000"): hallq-walgen
# writes a WAL of N real records of a busy demo hall (DIR/wal only, no
# state); then
#   replay    `hallq wal replay DIR --into OUT`: verify and replay every
#             record into a fresh state (one pass), records/s;
#   recovery  `hallqd --data DIR2` on a copy of the WAL with an empty state:
#             seconds from exec to the ready line (verify the whole log,
#             replay every record, open the listeners);
#   restart   `hallqd` again on that data dir after its clean stop: the
#             start-up of a hall whose state is up to date (verify the
#             whole log, replay nothing). After a crash it also replays what
#             came after the last checkpoint: at most --checkpoint-ms (1 s)
#             or 50,000 records, whichever is less.
# Targets (issue 6): replay >= 1,000,000 records/s; recovery of 10 M < 15 s.
# The page cache is warm (the WAL was just written): this measures the
# CPU path, not the disk. About 250 bytes of WAL per record: 10 M records
# take 2.6 GB in a temporary dir (TMPDIR), removed at the end; the 10 M
# run takes several minutes on 2 cores.
#
# Environment: HALLQ_BUILD_DIR (default <repo>/build), REPLAY_RECORDS.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
build=${HALLQ_BUILD_DIR:-$root/build}
counts=${REPLAY_RECORDS:-1000000 10000000}
for bin in daemon/hallqd tools/hallq tools/hallq-walgen; do
  [ -x "$build/$bin" ] || { echo "replay.sh: $build/$bin not found (build first)" >&2; exit 1; }
done

tmp=$(mktemp -d "${TMPDIR:-/tmp}/hallq-replay.XXXXXX")
pid=""
cleanup() {
  if [ -n "$pid" ]; then
    kill -TERM "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  fi
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

now() { date +%s.%N; }

# hallqd on $tmp/data-$1 until its ready line; sets $pid.
start_until_ready() {
  : >"$tmp/hallqd.log"
  "$build/daemon/hallqd" --config "$root/examples/demo-hall.yaml" --data "$tmp/data-$1" \
    --tcp 127.0.0.1:0 --http 127.0.0.1:0 --unix "$tmp/hallq.sock" 2>"$tmp/hallqd.log" &
  pid=$!
  while ! grep -q '^hallqd ready' "$tmp/hallqd.log"; do
    kill -0 "$pid" 2>/dev/null || { echo "replay.sh: hallqd exited:" >&2; cat "$tmp/hallqd.log" >&2; exit 1; }
    sleep 0.02
  done
}

stop_clean() {
  kill -TERM "$pid"
  local rc=0
  wait "$pid" || rc=$?
  pid=""
  [ "$rc" -eq 0 ] || { echo "replay.sh: hallqd exited $rc after SIGTERM" >&2; tail "$tmp/hallqd.log" >&2; exit 1; }
}
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }

echo "replay.sh: $(nproc) cores, $(free -g | awk '/^Mem:/ {print $2}') GiB, $(uname -sr)," \
     "$(date -u '+%F %H:%M UTC'), load $(cut -d' ' -f1-3 /proc/loadavg)"
printf '| records | WAL MB (64 MiB segments) | walgen s | replay s | replay records/s | recovery s | recovery records/s | restart s |\n'
printf '|---|---|---|---|---|---|---|---|\n'
for n in $counts; do
  gen=$tmp/gen-$n
  t0=$(now)
  "$build/tools/hallq-walgen" --out "$gen" --records "$n" >"$tmp/walgen.log" 2>&1 ||
    { cat "$tmp/walgen.log" >&2; exit 1; }
  t1=$(now)
  mb=$(du -sm "$gen/wal" | cut -f1)

  t2=$(now)
  "$build/tools/hallq" wal replay "$gen" --into "$tmp/into-$n" >"$tmp/replay.log" 2>&1 ||
    { cat "$tmp/replay.log" >&2; exit 1; }
  t3=$(now)
  rm -rf "$tmp/into-$n"

  # Recovery: the same WAL, an empty state.
  mkdir "$tmp/data-$n"
  mv "$gen/wal" "$tmp/data-$n/wal"
  rm -rf "$gen"
  t4=$(now)
  start_until_ready "$n"
  t5=$(now)
  stop_clean
  grep -q "replayed WAL records 1\.\.$n" "$tmp/hallqd.log" ||
    { echo "replay.sh: hallqd did not replay records 1..$n:" >&2; cat "$tmp/hallqd.log" >&2; exit 1; }
  # Restart: the state is up to date.
  t6=$(now)
  start_until_ready "$n"
  t7=$(now)
  stop_clean
  if grep -q "replayed WAL records" "$tmp/hallqd.log"; then
    echo "replay.sh: the restart replayed records:" >&2; cat "$tmp/hallqd.log" >&2; exit 1
  fi
  rm -rf "$tmp/data-$n"

  rs=$(secs "$t2" "$t3") vs=$(secs "$t4" "$t5")
  printf '| %d | %d | %s | %s | %.0f | %s | %.0f | %s |\n' "$n" "$mb" "$(secs "$t0" "$t1")" \
    "$rs" "$(awk -v n="$n" -v s="$rs" 'BEGIN { print n / s }')" "$vs" \
    "$(awk -v n="$n" -v s="$vs" 'BEGIN { print n / s }')" "$(secs "$t6" "$t7")"
done
