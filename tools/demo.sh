#!/usr/bin/env bash
# tools/demo.sh: installs what is missing, builds, and runs the demo hall
# in the foreground (TCP 127.0.0.1:7420, Unix socket ./hallq-data/hallq.sock,
# HTTP 127.0.0.1:7480), and prints the URLs of the hall's screens with the
# demo hall's tokens in their fragments.
# Extra arguments go to hallqd (e.g. --data DIR, --tcp HOST:PORT, --http HOST:PORT).
set -euo pipefail
cd "$(dirname "$0")/.."
tools/deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc)"
echo "demo hall: try 'build/tools/hallq ticket take A' in another terminal; Ctrl-C stops it."
echo "over HTTP: curl -H 'Authorization: Bearer kiosk-demo' -d '{\"line\": \"A\"}' \\"
echo "             http://127.0.0.1:7480/api/v1/ticket.take ; metrics: http://127.0.0.1:7480/metrics"
http=127.0.0.1:7480
prev=""
for a in "$@"; do
  case "$prev" in --http) http="$a" ;; esac
  case "$a" in --http=*) http="${a#--http=}" ;; esac
  prev="$a"
done
if [ -n "$http" ]; then
  base="http://$http"
  cat <<EOF_URLS
The hall's screens (the token goes in the fragment, after '#'; a browser never sends it):
  display board    $base/board#token=display-demo
  clerk's console  $base/window#token=window-W01     (W02 ... W06 alike)
  ticket kiosk     $base/kiosk#token=kiosk-demo
  dashboard        $base/dashboard#token=admin-demo
EOF_URLS
fi
chmod o-r examples/demo-hall.yaml  # it holds tokens
exec build/daemon/hallqd --config examples/demo-hall.yaml "$@"
