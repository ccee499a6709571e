#!/usr/bin/env bash
# tools/crash-loop.sh: the long crash loop: the busy-day simulation under
# SIGKILL at seeded moments, ROUNDS kills a day (default 50), 64 KiB WAL
# segments so kills land around roll-overs, for each seed given (default
# three), each day checked against a replay of its WAL and against the same
# day run without kills (equal digests: nothing acknowledged lost or doubled).
#   tools/crash-loop.sh [ROUNDS] [SEED...]
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-50}
shift || true
seeds=("$@")
[ ${#seeds[@]} -gt 0 ] || seeds=(7 31 20261124)
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc)" >/dev/null
for seed in "${seeds[@]}"; do
  /usr/bin/python3 tests/integration/sim.py --build build --seed "$seed" --citizens 3000 \
    --crash-rounds "$rounds" --twin --segment-bytes 65536
done
