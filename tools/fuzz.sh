#!/usr/bin/env bash
# tools/fuzz.sh [SECONDS]: builds the libFuzzer harnesses (clang, ASan +
# UBSan, build-fuzz/) and runs each for SECONDS (default 60) on the
# committed seed corpus plus a scratch corpus outside the repo
# ($HALLQ_FUZZ_WORK, default /tmp/hallq-fuzz), one after the other. Fails
# on any crash, leak, timeout or broken invariant; the input is saved in
# the scratch dir as <name>-crash-... (keep it under tests/fuzz/regress/<name>/
# and fix the bug: tests/unit/test_fuzz_regress replays it).
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-60}
tools/deps.sh --fuzz
work=${HALLQ_FUZZ_WORK:-/tmp/hallq-fuzz}
cmake -S . -B build-fuzz -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DHALLQ_FUZZ=ON >/dev/null
cmake --build build-fuzz -j"$(nproc)" --target fuzz_frame fuzz_request fuzz_config fuzz_exec
# Inputs larger than the default 4096 bytes: the demo hall is 5 KiB, and
# frames past the framer's first allocation need more than 4 KiB.
declare -A max_len=([frame]=12000 [request]=4096 [config]=16384 [exec]=4096)
status=0
for name in frame request config exec; do
  mkdir -p "$work/$name"
  echo "fuzz: $name for ${secs}s"
  # malloc_limit_mb: no single allocation may be large (a declared count
  # must never reach msgpack-c's allocator).
  if ! build-fuzz/tests/fuzz/fuzz_$name -max_total_time="$secs" -max_len="${max_len[$name]}" \
      -malloc_limit_mb=64 -rss_limit_mb=1024 -timeout=10 -print_final_stats=1 \
      -artifact_prefix="$work/$name-" "$work/$name" "tests/fuzz/corpus/$name" \
      2>"$work/$name.log"; then
    echo "fuzz: $name FAILED; see $work/$name.log" >&2
    grep -E "ERROR|invariant|SUMMARY|artifact" "$work/$name.log" >&2 || true
    status=1
  fi
  grep -E "^#[0-9]+[[:space:]]+DONE|stat::number_of_executed_units" "$work/$name.log" || true
done
exit $status
