#!/usr/bin/env bash
# tools/screens.sh: remakes docs/screens/*.png, the hall's four screens at
# 1920x1080 in headless Chromium against the demo hall (the browser test
# test_each_screen_at_1920x1080 with HALLQ_SCREENS set). Look at them
# before committing: Chinese must render (fonts-noto-cjk).
set -euo pipefail
cd "$(dirname "$0")/.."
build=${HALLQ_BUILD_DIR:-build}
cmake --build "$build" -j2 >/dev/null
HALLQ_BUILD_DIR="$PWD/$build" HALLQ_SCREENS="$PWD/docs/screens" \
  /usr/bin/python3 -m pytest -q -p no:cacheprovider tests/browser/test_pages.py -k 1920
ls -l docs/screens
