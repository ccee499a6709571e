#!/usr/bin/env bash
# tools/deps.sh: installs the Debian 12 packages hallq builds and tests with,
# only those missing (so it is quick when everything is there).
#   tools/deps.sh          what building and testing need
#   tools/deps.sh --fuzz   that, and clang with libFuzzer (tools/fuzz.sh)
#   tools/deps.sh --deb    that, and what the Debian package needs (tools/deb-test.sh)
set -euo pipefail
pkgs=(build-essential cmake pkg-config libuv1-dev liblmdb-dev lmdb-utils libmsgpack-dev
      libcmocka-dev libsodium-dev libyaml-dev libjansson-dev libh2o-dev libsystemd-dev scdoc python3 python3-pytest python3-msgpack
      chromium chromium-driver python3-selenium fonts-noto-cjk  # tests/browser
      nats-server libnats-dev postgresql-15 libpq-dev)  # the city: city/, tests/integration/test_city.py
if [ "${1:-}" = "--fuzz" ]; then
  pkgs+=(clang libclang-rt-14-dev)
elif [ "${1:-}" = "--deb" ]; then
  pkgs+=(debhelper lintian dpkg-dev systemd man-db)
fi
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "deps: installing ${missing[*]}"
  sudo_cmd=""
  [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
  $sudo_cmd apt-get update -q
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -q "${missing[@]}"
fi
