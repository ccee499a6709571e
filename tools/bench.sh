#!/usr/bin/env bash
# tools/bench.sh: durable ticket.take on hallqd at 1, 50 and 200 connections.
#
# Starts hallqd (the demo hall) on a fresh temporary data dir, TCP on
# 127.0.0.1 port 0 (the port is read from the daemon's ready line), runs
# hallq-bench at each connection count (pipelining depth 1, BENCH_SECONDS
# each after a 1 s warmup, every answer checked), prints one table row per
# run, then stops the daemon with SIGTERM and checks it exited 0.
# Everything is bounded in time, and the trap always stops the daemon (by
# its PID) and removes the temporary dir.
#
# Environment:
#   HALLQ_BUILD_DIR  build dir holding daemon/hallqd and tools/hallq-bench
#                    (default: <repo>/build)
#   HALLQ_BENCH      the hallq-bench binary (default: $HALLQ_BUILD_DIR/tools/hallq-bench)
#   BENCH_SECONDS    measured seconds per run (default 10)
#   BENCH_CONNS      connection counts (default "1 50 200")
#   BENCH_FSYNC      "always" (default); "always none" adds a peer run with
#                    --fsync none to show what fsync costs on this disk
#   BENCH_LINE       line to take tickets from (default A; "cycle": A..D)
#   BENCH_HALLQD_ARGS more hallqd options (e.g. "--checkpoint-ms 0")
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
build=${HALLQ_BUILD_DIR:-$root/build}
hallqd=$build/daemon/hallqd
bench=${HALLQ_BENCH:-$build/tools/hallq-bench}
secs=${BENCH_SECONDS:-10}
conns_list=${BENCH_CONNS:-1 50 200}
fsync_list=${BENCH_FSYNC:-always}
line=${BENCH_LINE:-A}

for bin in "$hallqd" "$bench"; do
  [ -x "$bin" ] || { echo "bench.sh: $bin not found (build first, or set HALLQ_BUILD_DIR)" >&2; exit 1; }
done
[[ $secs =~ ^[0-9]+$ && $secs -ge 1 ]] || { echo "bench.sh: BENCH_SECONDS is a whole number >= 1" >&2; exit 1; }

tmp=$(mktemp -d "${TMPDIR:-/tmp}/hallq-bench.XXXXXX")
pid=""

# Stops the daemon by PID: SIGTERM, up to 10 s to finish, then SIGKILL.
# Returns the daemon's exit status (137 when it had to be killed).
stop_daemon() {
  local p=$pid rc=0
  [ -n "$p" ] || return 0
  pid=""
  kill -TERM "$p" 2>/dev/null || true
  for _ in $(seq 100); do
    kill -0 "$p" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$p" 2>/dev/null; then
    echo "bench.sh: hallqd $p did not stop 10 s after SIGTERM; killing it" >&2
    kill -KILL "$p" 2>/dev/null || true
  fi
  wait "$p" 2>/dev/null || rc=$?
  return "$rc"
}

cleanup() {
  stop_daemon || true
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Starts hallqd with --fsync $1 on a fresh data dir; sets $pid and $addr.
start_daemon() {
  rm -rf "$tmp/data" && mkdir "$tmp/data"
  "$hallqd" --config "$root/examples/demo-hall.yaml" --data "$tmp/data" \
    --tcp 127.0.0.1:0 --http 127.0.0.1:0 --unix "$tmp/hallq.sock" --fsync "$1" ${BENCH_HALLQD_ARGS:-} \
    2>"$tmp/hallqd.log" &
  pid=$!
  for _ in $(seq 100); do
    addr=$(sed -n 's/^hallqd ready tcp=\([^ ]*\) unix=.*/\1/p' "$tmp/hallqd.log")
    [ -n "$addr" ] && return 0
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  echo "bench.sh: hallqd did not get ready in 10 s; its log:" >&2
  cat "$tmp/hallqd.log" >&2
  exit 1
}

# Prints field $1 of the JSON line $2 (numbers only).
jget() { sed -n "s/.*\"$1\": *\([0-9.]*\).*/\1/p" <<<"$2"; }

echo "hallq-bench: durable ticket.take, line $line, depth 1, ${secs} s per run after 1 s warmup;" \
     "$(nproc) cores, $(uname -sr), $(date -u +%F)"
printf '%-6s %6s %10s %9s %9s %9s %7s\n' fsync conns ops/s p50_ms p99_ms max_ms errors
for fs in $fsync_list; do
  start_daemon "$fs"
  for c in $conns_list; do
    if ! out=$(timeout $((secs + 60)) "$bench" --tcp "$addr" --conns "$c" --depth 1 \
                 --duration "$secs" --warmup 1 --line "$line" --json 2>"$tmp/bench.err"); then
      echo "bench.sh: hallq-bench failed at $c connections (fsync $fs):" >&2
      cat "$tmp/bench.err" >&2
      echo "hallqd log:" >&2
      tail -n 20 "$tmp/hallqd.log" >&2
      exit 1
    fi
    printf '%-6s %6d %10.0f %9s %9s %9s %7s\n' "$fs" "$c" "$(jget ops_per_s "$out")" \
      "$(jget p50_ms "$out")" "$(jget p99_ms "$out")" "$(jget max_ms "$out")" "$(jget errors "$out")"
  done
  rc=0
  stop_daemon || rc=$?
  if [ "$rc" -ne 0 ]; then
    echo "bench.sh: hallqd exited $rc after SIGTERM (want 0); its log:" >&2
    tail -n 20 "$tmp/hallqd.log" >&2
    exit 1
  fi
done
