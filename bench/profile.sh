#!/usr/bin/env bash
# bench/profile.sh: instructions per request on hallqd's hot path, by callgrind.
#
# Starts hallqd under `valgrind --tool=callgrind` (--fsync none: the count
# is of instructions, and an fsync costs time, not instructions), drives it
# with hallq-bench (PROFILE_CONNS connections, depth PROFILE_DEPTH,
# ticket.take or --mix hall), zeroes the counters after a warmup of
# PROFILE_WARM requests, counts PROFILE_COUNT requests, dumps, and prints
# instructions per request (total Ir of the dump / requests answered) and
# the functions with the most inclusive and self instructions. Instruction
# counts do not depend on the machine's load, unlike wall-clock figures.
#
# Environment:
#   HALLQ_BUILD_DIR  build dir (default <repo>/build; RelWithDebInfo)
#   PROFILE_MODE     take (default) or mix
#   PROFILE_CONNS    connections (default 50); PROFILE_DEPTH (default 1)
#   PROFILE_WARM     requests before counting (default 2000)
#   PROFILE_COUNT    requests counted (default 20000)
#   PROFILE_OUT      keep the callgrind output here (default: a temp dir)
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
build=${HALLQ_BUILD_DIR:-$root/build}
hallqd=$build/daemon/hallqd
bench=$build/tools/hallq-bench
mode=${PROFILE_MODE:-take}
conns=${PROFILE_CONNS:-50}
depth=${PROFILE_DEPTH:-1}
warm=${PROFILE_WARM:-2000}
count=${PROFILE_COUNT:-20000}

for t in valgrind callgrind_control callgrind_annotate; do
  command -v "$t" >/dev/null || { echo "profile.sh: $t not found (apt-get install valgrind)" >&2; exit 1; }
done
tmp=$(mktemp -d "${TMPDIR:-/tmp}/hallq-profile.XXXXXX")
out=${PROFILE_OUT:-$tmp}
mkdir -p "$out"
pid=""
cleanup() {
  if [ -n "$pid" ]; then
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 300); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -rf "$tmp/data"
  [ "$out" = "$tmp" ] || rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

valgrind --tool=callgrind --callgrind-out-file="$out/callgrind.out.%p" \
  "$hallqd" --config "$root/examples/demo-hall.yaml" --data "$tmp/data" --tcp 127.0.0.1:0 --http 127.0.0.1:0 \
  --unix "$tmp/hallq.sock" --fsync none 2>"$out/hallqd.log" &
pid=$!
addr=""
for _ in $(seq 600); do
  addr=$(sed -n 's/^hallqd ready tcp=\([^ ]*\) unix=.*/\1/p' "$out/hallqd.log")
  [ -n "$addr" ] && break
  kill -0 "$pid" 2>/dev/null || break
  sleep 0.1
done
[ -n "$addr" ] || { echo "profile.sh: hallqd did not get ready; its log:" >&2; cat "$out/hallqd.log" >&2; exit 1; }

drive() { # count
  if [ "$mode" = mix ]; then
    timeout 900 "$bench" --mix hall --tcp "$addr" --unix "$tmp/hallq.sock" --conns "$conns" \
      --depth "$depth" --count "$1" --warmup 0 --json
  else
    timeout 900 "$bench" --tcp "$addr" --conns "$conns" --depth "$depth" --count "$1" \
      --warmup 0 --json
  fi
}
drive "$warm" >/dev/null
callgrind_control -z "$pid" >/dev/null 2>&1
res=$(drive "$count")
callgrind_control -d "$pid" >/dev/null 2>&1
sleep 1
# The requests answered in the counted window: the bench's own count (it
# waits for every answer before it stops).
ops=$(sed -n 's/.*"ops": *\([0-9]*\).*/\1/p' <<<"$res")
# The dump asked for (callgrind.out.PID.1), not the one written at exit.
dump=$(ls "$out"/callgrind.out."$pid".* | head -n1)
total=$(callgrind_annotate "$dump" 2>/dev/null | sed -n 's/^ *\([0-9,]*\) .*PROGRAM TOTALS.*/\1/p' | tr -d ,)
echo "profile.sh: $mode, $conns conns, depth $depth: $ops requests, $total instructions," \
     "$(( total / ops )) instructions per request (hallqd --fsync none under callgrind)"
echo "bench: $res"
# Per request: each function's instructions / requests (head closes the
# pipes early, so no pipefail here).
set +o pipefail
per_req() { awk -v n="$ops" 'NR > 2 && $1 ~ /^[0-9,]+$/ {ir=$1; gsub(",","",ir); $1=""; printf "%9.0f %s\n", ir/n, $0}' | cut -c1-160; }
echo
echo "== inclusive (instructions per request, function) =="
callgrind_annotate --auto=no --inclusive=yes --threshold=99 "$dump" 2>/dev/null \
  | sed -n '/file:function/,$p' | per_req | head -n 60
echo
echo "== self (instructions per request, function) =="
callgrind_annotate --auto=no --threshold=99 "$dump" 2>/dev/null \
  | sed -n '/file:function/,$p' | per_req | head -n 40
set -o pipefail
echo "profile.sh: callgrind output in $dump"
