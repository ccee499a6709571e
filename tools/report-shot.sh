#!/usr/bin/env bash
# tools/report-shot.sh: renders `hallq report --format html` of a day to a
# PNG with headless Chromium, to look at the charts without a browser.
#
#   tools/report-shot.sh --day YYYY-MM-DD [WAL] OUT.png
#
# WAL as for hallq report (a log dir or a data dir; default ./hallq-data).
# HALLQ names the hallq binary (default build/tools/hallq); CHROMIUM the
# browser (default /usr/bin/chromium: Debian's package `chromium`). The
# page is 1280 px wide; the shot is 1280x2000.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
hallq=${HALLQ:-$here/build/tools/hallq}
chromium=${CHROMIUM:-/usr/bin/chromium}
usage() { echo "usage: $0 --day YYYY-MM-DD [WAL] OUT.png" >&2; exit 2; }
day="" ; args=()
while [ $# -gt 0 ]; do
  case "$1" in
    --day) [ $# -ge 2 ] || usage; day=$2; shift 2 ;;
    *) args+=("$1"); shift ;;
  esac
done
[ -n "$day" ] && [ ${#args[@]} -ge 1 ] && [ ${#args[@]} -le 2 ] || usage
out=${args[${#args[@]}-1]}
wal=()
[ ${#args[@]} -eq 2 ] && wal=("${args[0]}")
[ -x "$chromium" ] || { echo "$0: $chromium is missing (apt-get install chromium)" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$hallq" report --day "$day" "${wal[@]}" --format html --out "$work/report.html"
# Offline and alone: no network, no sync, a throwaway profile.
"$chromium" --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
  --disable-background-networking --disable-component-update --disable-sync \
  --user-data-dir="$work/profile" --hide-scrollbars --screenshot="$work/shot.png" \
  --window-size=1280,2000 "file://$work/report.html" >"$work/chromium.log" 2>&1 || {
  echo "$0: chromium failed:" >&2; tail -20 "$work/chromium.log" >&2; exit 1; }
[ -s "$work/shot.png" ] || { echo "$0: chromium wrote no screenshot" >&2; exit 1; }
mv "$work/shot.png" "$out"
echo "$out"
