#!/usr/bin/env bash
# tools/demo.sh: installs what is missing, builds, and runs the demo hall
# in the foreground (TCP 127.0.0.1:7420, Unix socket ./hallq-data/hallq.sock,
# HTTP 127.0.0.1:7480).
# Extra arguments go to hallqd (e.g. --data DIR, --tcp HOST:PORT).
set -euo pipefail
cd "$(dirname "$0")/.."
tools/deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc)"
echo "demo hall: try 'build/tools/hallq ticket take A' in another terminal; Ctrl-C stops it."
echo "over HTTP: curl -H 'Authorization: Bearer kiosk-demo' -d '{\"line\": \"A\"}' \\"
echo "             http://127.0.0.1:7480/api/v1/ticket.take ; metrics: http://127.0.0.1:7480/metrics"
chmod o-r examples/demo-hall.yaml  # it holds tokens
exec build/daemon/hallqd --config examples/demo-hall.yaml "$@"
