#!/usr/bin/env bash
# bench/compare.sh: durable enqueue on hallqd, Redis and beanstalkd, side by side.
#
# One run, on loopback, one client model (build/tools/hallq-bench: N
# connections, D requests in flight each, every reply checked):
#   hallq      ticket.take {line: A}, hallqd --fsync always (the default),
#              demo hall, fresh data dir
#   redis      RPUSH hallq:A <value>, redis-server --appendonly yes
#              --appendfsync always --save '' (no RDB snapshots), own dir
#   beanstalk  put (tube hallq-A), beanstalkd -b DIR -f 0 (fsync on every
#              binlog write, beanstalkd(1))
# Redis values and beanstalk jobs are as large as hallq-bench's ticket.take
# request (hallq-bench's default --payload). Every setting of COMPARE_CONNS
# x COMPARE_DEPTHS is measured on each server for COMPARE_SECONDS after a
# 1 s warmup; the table gives ops/s and p99 and the ratios hallq / peer
# (ops/s: higher is better for hallq; p99: lower is better for hallq).
#
# Installs redis-server and beanstalkd with apt-get when they are missing.
# Each server gets a free loopback port and a temporary dir; the trap stops
# every server it started, by PID, and removes the dir. Bounded: the
# defaults take about 3.5 minutes (3 servers x 6 cells x ~10 s), and
# each hallq-bench run is killed COMPARE_SECONDS + 40 s after it starts.
#
# Environment:
#   HALLQ_BUILD_DIR   build dir with daemon/hallqd and tools/hallq-bench
#                     (default <repo>/build)
#   COMPARE_SECONDS   measured seconds per cell (default 8)
#   COMPARE_CONNS     connection counts (default "1 50 200")
#   COMPARE_DEPTHS    pipelining depths (default "1 16")
#   COMPARE_SERVERS   which servers (default "hallq redis beanstalk")
#   COMPARE_JSON      a file to which every run's JSON line is appended
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
build=${HALLQ_BUILD_DIR:-$root/build}
hallqd=$build/daemon/hallqd
bench=$build/tools/hallq-bench
secs=${COMPARE_SECONDS:-8}
conns_list=${COMPARE_CONNS:-1 50 200}
depth_list=${COMPARE_DEPTHS:-1 16}
servers=${COMPARE_SERVERS:-hallq redis beanstalk}
json_out=${COMPARE_JSON:-}

die() { echo "compare.sh: $*" >&2; exit 1; }
for bin in "$hallqd" "$bench"; do
  [ -x "$bin" ] || die "$bin not found (build first, or set HALLQ_BUILD_DIR)"
done
[[ $secs =~ ^[0-9]+$ && $secs -ge 1 ]] || die "COMPARE_SECONDS is a whole number >= 1"

# ---- the peers, from Debian packages ----
need=()
command -v redis-server >/dev/null || need+=(redis-server)
command -v beanstalkd >/dev/null || need+=(beanstalkd)
if [ ${#need[@]} -gt 0 ]; then
  echo "compare.sh: installing ${need[*]}" >&2
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${need[@]}" \
    >/dev/null || die "apt-get install ${need[*]} failed"
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/hallq-compare.XXXXXX")
declare -A pids=()

# Stops server $1 by its PID: SIGTERM, up to 10 s, then SIGKILL.
stop_server() {
  local name=$1 p=${pids[$1]:-}
  [ -n "$p" ] || return 0
  unset "pids[$name]"
  kill -TERM "$p" 2>/dev/null || true
  for _ in $(seq 100); do
    kill -0 "$p" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$p" 2>/dev/null; then
    echo "compare.sh: $name ($p) still running 10 s after SIGTERM; killing it" >&2
    kill -KILL "$p" 2>/dev/null || true
  fi
  wait "$p" 2>/dev/null || true
}

cleanup() {
  for name in "${!pids[@]}"; do stop_server "$name"; done
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# A free TCP port on loopback (the kernel picks it; it is free when read).
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# Waits until 127.0.0.1:$2 accepts, or server $1 died, for 10 s.
wait_port() {
  for _ in $(seq 100); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$2") 2>/dev/null; then return 0; fi
    kill -0 "${pids[$1]}" 2>/dev/null || break
    sleep 0.1
  done
  echo "compare.sh: $1 did not listen on port $2 in 10 s; its log:" >&2
  cat "$tmp/$1.log" >&2 || true
  exit 1
}

declare -A addr=()
start_hallq() {
  mkdir "$tmp/hallq"
  "$hallqd" --config "$root/examples/demo-hall.yaml" --data "$tmp/hallq" \
    --tcp 127.0.0.1:0 --http 127.0.0.1:0 --unix "$tmp/hallq.sock" --fsync always 2>"$tmp/hallq.log" &
  pids[hallq]=$!
  for _ in $(seq 100); do
    addr[hallq]=$(sed -n 's/^hallqd ready tcp=\([^ ]*\) unix=.*/\1/p' "$tmp/hallq.log")
    [ -n "${addr[hallq]}" ] && return 0
    kill -0 "${pids[hallq]}" 2>/dev/null || break
    sleep 0.1
  done
  echo "compare.sh: hallqd did not get ready in 10 s; its log:" >&2
  cat "$tmp/hallq.log" >&2
  exit 1
}

start_redis() {
  local port
  port=$(free_port)
  mkdir "$tmp/redis"
  redis-server --bind 127.0.0.1 --port "$port" --dir "$tmp/redis" --daemonize no \
    --appendonly yes --appendfsync always --save '' --maxclients 1000 \
    --logfile "$tmp/redis.log" &
  pids[redis]=$!
  wait_port redis "$port"
  addr[redis]=127.0.0.1:$port
}

start_beanstalk() {
  local port
  port=$(free_port)
  mkdir "$tmp/beanstalk"
  beanstalkd -l 127.0.0.1 -p "$port" -b "$tmp/beanstalk" -f 0 2>"$tmp/beanstalk.log" &
  pids[beanstalk]=$!
  wait_port beanstalk "$port"
  addr[beanstalk]=127.0.0.1:$port
}

# Prints field $1 of the JSON line $2 (numbers only).
jget() { sed -n "s/.*\"$1\": *\([0-9.]*\).*/\1/p" <<<"$2" | head -n1; }

declare -A ops=() p99=() fpo=()
# The server's fsync + fdatasync calls while hallq-bench measures, counted
# in the kernel on the syscall tracepoints (perf stat; no ptrace), per
# request measured: from 1 s (the warmup) for COMPARE_SECONDS.
perf_ok=false
if command -v perf >/dev/null &&
   perf stat -e 'syscalls:sys_enter_fdatasync' -x, -o /dev/null -- true 2>/dev/null; then
  perf_ok=true
fi
run_cell() { # server conns depth
  local s=$1 c=$2 d=$3 proto out bpid ppid syncs
  case $s in hallq) proto=hallq ;; redis) proto=resp ;; beanstalk) proto=beanstalk ;; esac
  timeout $((secs + 40)) "$bench" --proto "$proto" --tcp "${addr[$s]}" --conns "$c" \
    --depth "$d" --duration "$secs" --warmup 1 --line A --json >"$tmp/bench.out" 2>"$tmp/bench.err" &
  bpid=$!
  ppid=""
  if $perf_ok; then
    sleep 1
    perf stat -p "${pids[$s]}" -x, -o "$tmp/perf.out" \
      -e 'syscalls:sys_enter_fsync,syscalls:sys_enter_fdatasync' -- sleep "$secs" 2>/dev/null &
    ppid=$!
  fi
  if ! wait "$bpid"; then
    echo "compare.sh: hallq-bench failed on $s at $c connections, depth $d:" >&2
    cat "$tmp/bench.err" >&2
    echo "$s log:" >&2
    tail -n 20 "$tmp/$s.log" >&2 || true
    exit 1
  fi
  out=$(cat "$tmp/bench.out")
  [ -z "$json_out" ] || echo "{\"server\": \"$s\", \"run\": $out}" >>"$json_out"
  ops[$s,$c,$d]=$(jget ops_per_s "$out")
  p99[$s,$c,$d]=$(jget p99_ms "$out")
  if [ -n "$ppid" ]; then
    wait "$ppid" || true
    syncs=$(awk -F, '/sys_enter_f/ { n += $1 } END { print n + 0 }' "$tmp/perf.out")
    fpo[$s,$c,$d]=$(awk -v n="$syncs" -v o="${ops[$s,$c,$d]}" -v t="$secs" \
      'BEGIN { if (o + 0 > 0) printf "%.4f", n / (o * t); else print "-" }')
  fi
}

ratio() { # a b: a / b, or "-" when either is missing or b is 0
  awk -v a="${1:-}" -v b="${2:-}" 'BEGIN { if (a == "" || b == "" || b + 0 == 0) print "-"; else printf "%.2f", a / b }'
}

started=$(date +%s)
echo "compare.sh: durable enqueue, ${secs} s per cell after 1 s warmup, loopback;" \
     "$(nproc) cores, $(free -g | awk '/^Mem:/ {print $2}') GiB, $(uname -sr), $(date -u '+%F %H:%M UTC')" \
     "load $(cut -d' ' -f1-3 /proc/loadavg)"
for s in $servers; do
  "start_$s"
  for c in $conns_list; do
    for d in $depth_list; do
      run_cell "$s" "$c" "$d"
      printf 'compare.sh: %-9s conns %3d depth %2d: %9.0f ops/s  p99 %s ms  fsyncs/op %s\n' \
        "$s" "$c" "$d" "${ops[$s,$c,$d]}" "${p99[$s,$c,$d]}" "${fpo[$s,$c,$d]:--}" >&2
    done
  done
  stop_server "$s"
done

echo
printf '| conns | depth | hallq ops/s | hallq p99 ms | redis ops/s | redis p99 ms | beanstalk ops/s | beanstalk p99 ms | ops hallq/redis | p99 hallq/redis | ops hallq/beanstalk | p99 hallq/beanstalk |\n'
printf '|---|---|---|---|---|---|---|---|---|---|---|---|\n'
for c in $conns_list; do
  for d in $depth_list; do
    h=${ops[hallq,$c,$d]:-} hp=${p99[hallq,$c,$d]:-}
    r=${ops[redis,$c,$d]:-} rp=${p99[redis,$c,$d]:-}
    b=${ops[beanstalk,$c,$d]:-} bp=${p99[beanstalk,$c,$d]:-}
    printf '| %d | %d | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n' "$c" "$d" \
      "${h:--}" "${hp:--}" "${r:--}" "${rp:--}" "${b:--}" "${bp:--}" \
      "$(ratio "$h" "$r")" "$(ratio "$hp" "$rp")" "$(ratio "$h" "$b")" "$(ratio "$hp" "$bp")"
  done
done
if $perf_ok; then
  echo
  echo "fsync + fdatasync calls of the server per request (perf stat, syscall tracepoints); ideal 1/conns at depth 1"
  echo
  printf '| conns | depth | hallq | redis | beanstalk | hallq/redis | hallq x conns |\n'
  printf '|---|---|---|---|---|---|---|\n'
  for c in $conns_list; do
    for d in $depth_list; do
      h=${fpo[hallq,$c,$d]:-} r=${fpo[redis,$c,$d]:-} b=${fpo[beanstalk,$c,$d]:-}
      printf '| %d | %d | %s | %s | %s | %s | %s |\n' "$c" "$d" "${h:--}" "${r:--}" "${b:--}" \
        "$(ratio "$h" "$r")" "$(awk -v h="$h" -v c="$c" 'BEGIN { if (h == "" || h == "-") print "-"; else printf "%.2f", h * c }')"
    done
  done
else
  echo
  echo "compare.sh: perf cannot count syscalls here (install linux-perf; root or kernel.perf_event_paranoid <= -1): no fsyncs per request"
fi
echo
echo "compare.sh: done in $(( $(date +%s) - started )) s; load now $(cut -d' ' -f1-3 /proc/loadavg)"
