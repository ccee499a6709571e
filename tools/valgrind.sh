#!/usr/bin/env bash
# tools/valgrind.sh: the integration suite with every hallqd under
# valgrind --leak-check=full. A definite or indirect leak, or any memory
# error, makes valgrind exit 99 instead of 0, which fails the test that
# stopped that daemon. Extra arguments go to pytest (e.g. -k tickets).
# Slow (valgrind runs the daemon ~30x slower): not part of .ci/run.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/deps.sh
command -v valgrind >/dev/null || { echo "valgrind: apt-get install valgrind"; exit 1; }
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc)" >/dev/null
export HALLQ_BUILD_DIR="$PWD/build" PYTHONDONTWRITEBYTECODE=1
export HALLQ_WRAPPER="valgrind -q --leak-check=full --show-leak-kinds=definite,indirect
  --errors-for-leak-kinds=definite,indirect --error-exitcode=99"
export HALLQ_START_TIMEOUT=120 HALLQ_STOP_TIMEOUT=120
# The timing-bound tests (10,000 connections, timeouts of a second, the
# crash rounds, the fault shim, which valgrind's own preload conflicts
# with) are left out; everything else runs.
exec /usr/bin/python3 -m pytest -q -p no:cacheprovider tests/integration \
  -k "not ten_thousand and not stalled and not no_hello and not crash and not sigkill \
      and not faults and not simulation" "$@"
