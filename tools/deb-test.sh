#!/usr/bin/env bash
# tools/deb-test.sh: builds the Debian package (debian/) from a copy of the
# working tree with `dpkg-buildpackage -us -uc -b`, runs lintian on it,
# installs it with `apt-get install ./hallq_*.deb`, checks what it installed
# (the hallq user, the config 0640 root:hallq, /var/lib/hallq 0750, the
# unit, the man pages), runs `hallqd --version` and a short start of the
# demo hall from the installed paths with --data in a temp dir, then purges
# it. Needs root (or sudo) and the build dependencies (debian/control).
# About 2 minutes on the 2-core VM; not part of tools/test.sh (see README).
set -euo pipefail
cd "$(dirname "$0")/.."
sudo_cmd=""
[ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
fail() { echo "deb-test: FAILED: $*" >&2; exit 1; }

tmp=$(mktemp -d /tmp/hallq-deb.XXXXXX)
hallqd_pid=""
cleanup() {
  [ -n "$hallqd_pid" ] && kill "$hallqd_pid" 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT

# A copy of the tree (tracked and new files, not ignored ones): the build
# writes obj-*/ and debian/hallq/ in it, and the .deb beside it.
mkdir "$tmp/src"
git ls-files -z --cached --others --exclude-standard |
  while IFS= read -r -d '' f; do [ -e "$f" ] && printf '%s\0' "$f"; done |
  xargs -0 cp --parents -t "$tmp/src"
version=$(dpkg-parsechangelog -l debian/changelog -S Version)
arch=$(dpkg-architecture -qDEB_HOST_ARCH)
(cd "$tmp/src" && DEB_BUILD_OPTIONS="${DEB_BUILD_OPTIONS:-} parallel=$(nproc)" \
  dpkg-buildpackage -us -uc -b >"$tmp/build.log" 2>&1) || { tail -40 "$tmp/build.log"; fail "dpkg-buildpackage"; }
deb="$tmp/hallq_${version}_${arch}.deb"
[ -f "$deb" ] || fail "no $deb"
echo "deb-test: built $(basename "$deb")"

# lintian: every tag left is explained in debian/hallq.lintian-overrides or
# debian/source/lintian-overrides; any other is a failure.
if command -v lintian >/dev/null; then
  lintian -I --fail-on error,warning "$deb" || fail "lintian"
fi

$sudo_cmd env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$deb" >"$tmp/install.log" 2>&1 ||
  { cat "$tmp/install.log"; fail "apt-get install"; }
installed=1
remove() { $sudo_cmd env DEBIAN_FRONTEND=noninteractive apt-get purge -y -q hallq >/dev/null 2>&1; }
trap 'cleanup; [ -n "${installed:-}" ] && remove' EXIT

v=$(/usr/sbin/hallqd --version)
case "$v" in "hallqd ${version}, rules "*) ;; *) fail "hallqd --version: $v" ;; esac
/usr/bin/hallq --version >/dev/null || fail "hallq --version"
getent passwd hallq >/dev/null || fail "no user hallq"
[ "$(stat -c '%a %U:%G' /etc/hallq/hall.yaml)" = "640 root:hallq" ] ||
  fail "/etc/hallq/hall.yaml is $(stat -c '%a %U:%G' /etc/hallq/hall.yaml)"
[ "$(stat -c '%a %U:%G' /var/lib/hallq)" = "750 hallq:hallq" ] ||
  fail "/var/lib/hallq is $(stat -c '%a %U:%G' /var/lib/hallq)"
unit=$(pkg-config --variable=systemdsystemunitdir systemd)/hallqd.service
grep -q '^ExecStart=/usr/sbin/hallqd --config /etc/hallq/hall.yaml ' "$unit" || fail "$unit"
for page in hallqd.8 hallq.1 hallq.yaml.5; do
  [ -f "/usr/share/man/man${page##*.}/$page.gz" ] || fail "no man page $page"
done
[ -f /usr/share/doc/hallq/OPERATIONS.md ] || fail "no OPERATIONS.md"
# The hallq user reads its config (group), and it checks.
out=$(runuser -u hallq -- /usr/sbin/hallqd --check-config /etc/hallq/hall.yaml) || fail "check-config: $out"

# A short start from the installed paths: --demo alone serves the
# installed demo hall; the data dir is a temp dir.
mkdir "$tmp/run"
/usr/sbin/hallqd --demo --data "$tmp/run/data" --tcp 127.0.0.1:0 --http "" \
  --unix "$tmp/run/s" 2>"$tmp/run/log" &
hallqd_pid=$!
for _ in $(seq 300); do
  grep -q '^hallqd ready ' "$tmp/run/log" && break
  kill -0 "$hallqd_pid" 2>/dev/null || break
  sleep 0.1
done
grep -q '^hallqd ready ' "$tmp/run/log" || { cat "$tmp/run/log"; fail "hallqd did not start"; }
grep -q 'hallq/examples/demo-hall.yaml\|hall demo-city' "$tmp/run/log" || fail "not the demo hall"
/usr/bin/hallq --unix "$tmp/run/s" --via unix --as admin ping >/dev/null || fail "hallq ping"
kill -TERM "$hallqd_pid"
wait "$hallqd_pid" || fail "hallqd exit $?"
hallqd_pid=""

remove
installed=""
[ ! -e /usr/sbin/hallqd ] || fail "purge left /usr/sbin/hallqd"
echo "deb-test: ok ($(basename "$deb") built, lintian clean, installed, started, purged)"
