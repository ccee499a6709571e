#!/usr/bin/env bash
# tools/test.sh: builds and runs every test (cmocka units, the Python
# integration and crash tests against the real hallqd, the screens in
# headless Chromium).
#   tools/test.sh             normal build in build/
#   tools/test.sh --sanitize  ASan + UBSan build in build-san/
set -euo pipefail
cd "$(dirname "$0")/.."
tools/deps.sh
dir=build; flags=(-DCMAKE_BUILD_TYPE=RelWithDebInfo)
if [ "${1:-}" = "--sanitize" ]; then
  dir=build-san; flags=(-DCMAKE_BUILD_TYPE=Debug -DHALLQ_SANITIZE=ON)
fi
cmake -S . -B "$dir" "${flags[@]}" >/dev/null
cmake --build "$dir" -j"$(nproc)"
ctest --test-dir "$dir" --output-on-failure -j2
