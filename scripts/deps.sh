#!/usr/bin/env bash
# Installs Meridian's build and test dependencies from Debian's packages.
# Idempotent: installs only what is missing and runs `apt-get update` only when something is.
# Peer servers (Knot, NSD, gdnsd, PowerDNS, Unbound) are installed as programs for tests and benchmarks;
# a policy-rc.d keeps apt from starting them as system services.
set -euo pipefail

PKGS=(
  build-essential cmake ninja-build ccache pkg-config clang clang-tidy clang-format
  libboost1.81-all-dev libldns-dev libmaxminddb-dev libc-ares-dev catch2 libtomlplusplus-dev
  knot knot-dnsutils nsd gdnsd bind9-dnsutils python3-dnspython dnsperf
  pdns-server pdns-backend-bind pdns-backend-geoip unbound
  mmdb-bin util-linux procps libssl-dev
)

missing=()
for p in "${PKGS[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

echo "deps: installing ${missing[*]}"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

# Keep apt from starting the peer daemons as services (exit 101 = action forbidden).
policy=/usr/sbin/policy-rc.d
created_policy=0
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$policy" >/dev/null
  $SUDO chmod 755 "$policy"
  created_policy=1
fi
cleanup() { if [ "$created_policy" = 1 ]; then $SUDO rm -f "$policy"; fi; }
trap cleanup EXIT

export DEBIAN_FRONTEND=noninteractive
if ! $SUDO apt-get install -y --no-install-recommends "${missing[@]}"; then
  $SUDO apt-get update
  $SUDO apt-get install -y --no-install-recommends "${missing[@]}"
fi
# Some packages start their daemon from postinst regardless of policy-rc.d on systems without
# systemd; stop any that did so they do not hold port 53 or distort benchmarks.
for d in knotd nsd gdnsd pdns_server unbound; do
  pkill -x "$d" 2>/dev/null || true
done
