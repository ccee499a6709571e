#!/bin/sh
# tools/powerloss.sh: the power-loss simulation, many rounds (default 200).
#
#   tools/powerloss.sh [ROUNDS] [-- powerloss.py options]
#
# Each round runs hallqd under the disktrace shim with kiosks and windows at
# work, SIGKILLs it at a random moment, and starts hallqd on three images of
# its files as a disk could hold them after a power loss at that moment
# (tests/integration/powerloss.py says how). Every image is tried even after
# a failure; at the end a summary counts rounds, batches in flight, images
# and the failures by kind. Failed rounds stay in the work dir for a look.
#
#   HALLQ_POWERLOSS_SEED   the seed (default: a random one; printed)
#   HALLQ_BUILD_DIR        the build (default: build)
#
# Exit status: 0 when every image started with every acknowledged change.
set -eu
cd "$(dirname "$0")/.."
rounds=${1:-200}
[ $# -gt 0 ] && shift
[ "${1:-}" = "--" ] && shift
export HALLQ_BUILD_DIR="${HALLQ_BUILD_DIR:-$PWD/build}"
export PYTHONDONTWRITEBYTECODE=1
if [ ! -x "$HALLQ_BUILD_DIR/daemon/hallqd" ] || [ ! -f "$HALLQ_BUILD_DIR/tests/faults/libdisktrace.so" ]; then
    echo "powerloss.sh: build first (hallqd and libdisktrace.so in $HALLQ_BUILD_DIR)" >&2
    exit 2
fi
exec /usr/bin/python3 tests/integration/powerloss.py --rounds "$rounds" "$@"
