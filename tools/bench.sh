#!/usr/bin/env bash
# tools/bench.sh: durable ticket.take throughput and latency of hallqd at 1,
# 50 and 200 connections (pipelining depth 1), plus the same with
# --fsync none as a peer run to show what fsync costs on this machine.
# Usage: tools/bench.sh   (BENCH_SECONDS=10 by default; build/ must exist)
set -euo pipefail
cd "$(dirname "$0")/.."
build=${HALLQ_BUILD_DIR:-build}
secs=${BENCH_SECONDS:-10}
tmp=$(mktemp -d /tmp/hallq-bench-XXXXXX)
pid=""
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT

start() { # start FSYNC: runs hallqd on a fresh data dir, sets $addr
  rm -rf "$tmp/data"; mkdir -p "$tmp/data"
  "$build/daemon/hallqd" --config examples/demo-hall.yaml --data "$tmp/data" \
    --tcp 127.0.0.1:0 --unix "$tmp/h.sock" --fsync "$1" 2>"$tmp/log" &
  pid=$!
  for _ in $(seq 100); do
    addr=$(grep -o 'tcp=[0-9.:]*' "$tmp/log" | cut -d= -f2) && [ -n "$addr" ] && return 0
    sleep 0.1
  done
  echo "hallqd did not start:"; cat "$tmp/log"; exit 1
}
stop() { kill "$pid"; wait "$pid" || true; pid=""; }

echo "hallq-bench: durable ticket.take, ${secs}s per run, $(nproc) cores, $(date -u +%F)"
printf '%-8s %-6s %-6s %10s %9s %9s %9s\n' fsync conns depth ops/s p50_ms p99_ms max_ms
for fs in always none; do
  for c in 1 50 200; do
    start "$fs"
    out=$("$build/tools/hallq-bench" --tcp "$addr" --conns "$c" --depth 1 \
          --duration "$secs" --warmup 1 --line cycle --json)
    stop
    /usr/bin/python3 -c "import json,sys; r=json.loads(sys.argv[1]); print('%-8s %-6d %-6d %10.0f %9.3f %9.3f %9.3f' % (sys.argv[2], r['conns'], r['depth'], r['ops_per_s'], r['p50_ms'], r['p99_ms'], r['max_ms']))" "$out" "$fs"
  done
done
