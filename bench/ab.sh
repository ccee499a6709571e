#!/usr/bin/env bash
# bench/ab.sh: two builds of hallqd side by side, in one run: "is B no worse
# than A?" (e.g. A = the build before a change, B = after).
#
#   bench/ab.sh BUILD_A BUILD_B
#
# Each build dir holds daemon/hallqd and tools/hallq-bench (build A's
# hallq-bench drives both, so the client is the same). For each cell, A and
# B run in turn (A B A B ...: AB_ROUNDS rounds, default 2), each on a fresh
# data dir (the demo hall of the build's own source tree, --fsync always),
# and the table gives the median
# of each and the ratio B / A:
#   take N   durable ticket.take, N connections, depth 1 (AB_CONNS, default
#            "1 50 200"), AB_SECONDS measured after a 1 s warmup (default 5)
#   mix N    hallq-bench --mix hall with N kiosks, depth 4 (AB_MIX, default
#            "50 200"): kiosks, the 6 windows and the 5 departments
# Every answer is checked by hallq-bench; each run is bounded in time; the
# trap stops every hallqd it started, by PID, and removes the temp dir.
set -euo pipefail

[ $# -eq 2 ] || { echo "usage: bench/ab.sh BUILD_A BUILD_B" >&2; exit 2; }
a=$1 b=$2
secs=${AB_SECONDS:-5}
rounds=${AB_ROUNDS:-2}
conns_list=${AB_CONNS:-1 50 200}
mix_list=${AB_MIX:-50 200}
root=$(cd "$(dirname "$0")/.." && pwd)
bench=$a/tools/hallq-bench
for bin in "$a/daemon/hallqd" "$b/daemon/hallqd" "$bench"; do
  [ -x "$bin" ] || { echo "ab.sh: $bin not found" >&2; exit 1; }
done

tmp=$(mktemp -d "${TMPDIR:-/tmp}/hallq-ab.XXXXXX")
pid=""
stop() {
  [ -n "$pid" ] || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  pid=""
}
trap 'stop; rm -rf "$tmp"' EXIT
trap 'exit 130' INT TERM

# start BUILD: a fresh hallqd; sets tcp and sock.
start() {
  rm -rf "$tmp/data"
  mkdir "$tmp/data"
  sock=$tmp/data/h.sock
  # Each build with its own source tree's demo hall (an older build may not
  # know a newer config key).
  local src
  src=$(sed -n 's/^CMAKE_HOME_DIRECTORY:INTERNAL=//p' "$1/CMakeCache.txt")
  "$1/daemon/hallqd" --config "${src:-$root}/examples/demo-hall.yaml" --data "$tmp/data" \
    --tcp 127.0.0.1:0 --unix "$sock" 2>"$tmp/log" &
  pid=$!
  tcp=""
  for _ in $(seq 100); do
    tcp=$(sed -n 's/^hallqd ready tcp=\([^ ]*\) .*/\1/p' "$tmp/log")
    [ -n "$tcp" ] && return 0
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  echo "ab.sh: hallqd did not get ready:" >&2
  cat "$tmp/log" >&2
  exit 1
}

jget() { sed -n "s/.*\"$1\": *\([0-9.]*\).*/\1/p" <<<"$2" | head -n1; }
median() { tr ' ' '\n' | sed '/^$/d' | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

declare -A ops=() p99=()
run() { # build kind n
  local out
  start "$1"
  if [ "$2" = take ]; then
    out=$(timeout $((secs + 40)) "$bench" --tcp "$tcp" --conns "$3" --depth 1 \
          --duration "$secs" --warmup 1 --json)
  else
    out=$(timeout $((secs + 40)) "$bench" --mix hall --tcp "$tcp" --unix "$sock" --conns "$3" \
          --depth 4 --duration "$secs" --warmup 1 --json)
  fi
  stop
  ops[$1,$2,$3]+=" $(jget ops_per_s "$out")"
  p99[$1,$2,$3]+=" $(jget p99_ms "$out")"
}

cells=()
for n in $conns_list; do cells+=("take $n"); done
for n in $mix_list; do cells+=("mix $n"); done
echo "ab.sh: A=$a B=$b; $rounds rounds of ${secs} s per cell; $(nproc) cores;" \
     "load $(cut -d' ' -f1-3 /proc/loadavg); $(date -u '+%F %H:%M UTC')"
for cell in "${cells[@]}"; do
  read -r kind n <<<"$cell"
  for _ in $(seq "$rounds"); do
    run "$a" "$kind" "$n"
    run "$b" "$kind" "$n"
  done
done
echo
echo "| cell | A ops/s | B ops/s | B/A ops | A p99 ms | B p99 ms | B/A p99 |"
echo "|---|---|---|---|---|---|---|"
for cell in "${cells[@]}"; do
  read -r kind n <<<"$cell"
  ao=$(median <<<"${ops[$a,$kind,$n]}") bo=$(median <<<"${ops[$b,$kind,$n]}")
  ap=$(median <<<"${p99[$a,$kind,$n]}") bp=$(median <<<"${p99[$b,$kind,$n]}")
  awk -v c="$kind $n" -v ao="$ao" -v bo="$bo" -v ap="$ap" -v bp="$bp" 'BEGIN {
    printf "| %s | %.0f | %.0f | %.2f | %.3f | %.3f | %.2f |\n", c, ao, bo, bo / ao, ap, bp, bp / ap }'
done
echo
echo "ab.sh: load now $(cut -d' ' -f1-3 /proc/loadavg)"
