#!/usr/bin/env bash
# Installs Meridian's build and test dependencies from Debian's packages.
# Idempotent: installs only what is missing and runs `apt-get update` only when something is.
# Peer servers (Knot, NSD, gdnsd, PowerDNS, Unbound) are installed as programs for tests and benchmarks;
# a policy-rc.d keeps apt from starting them as system services, and a daemon that a package's
# postinst starts anyway is stopped by PID. Peer servers that were already running before the
# install (an operator's production knotd, say) are never touched.
#
# The functions below can be used without installing anything, for the test of that rule
# (tests/integration/run.py, section startup):
#   MERIDIAN_DEPS_LIB=1 source scripts/deps.sh; before=$(peer_daemon_pids); ...; stop_new_peer_daemons "$before"
set -euo pipefail

PKGS=(
  build-essential cmake ninja-build ccache pkg-config clang clang-tidy clang-format
  libboost1.81-all-dev libboost-json1.81-dev libldns-dev libmaxminddb-dev libc-ares-dev catch2 libtomlplusplus-dev
  knot knot-dnsutils nsd gdnsd bind9-dnsutils python3-dnspython dnsperf
  pdns-server pdns-backend-bind pdns-backend-geoip pdns-backend-sqlite3 sqlite3 unbound
  mmdb-bin util-linux procps libssl-dev iproute2
  dpkg-dev lintian systemd man-db adduser
  libfstrm-dev libprotobuf-c-dev protobuf-c-compiler fstrm-bin pdns-recursor dns-root-data
)

# Process names (as `pgrep -x` matches them) of the peer daemons the packages above may start.
# MERIDIAN_PEER_DAEMONS narrows the list (the test uses it so it cannot touch a real daemon that
# another program starts while it runs).
read -r -a PEER_DAEMONS <<<"${MERIDIAN_PEER_DAEMONS:-knotd nsd gdnsd pdns_server pdns_recursor unbound}"

# PIDs of every running peer daemon, one per line, sorted.
peer_daemon_pids() {
  local d
  for d in "${PEER_DAEMONS[@]}"; do
    pgrep -x "$d" || true
  done | sort -n
}

# Stops (SIGTERM, by PID) the peer daemons that are running now but were not in $1, the output
# of peer_daemon_pids taken before the install: only what the install itself started.
stop_new_peer_daemons() {
  local before="$1" pid
  for pid in $(peer_daemon_pids); do
    if ! grep -qx "$pid" <<<"$before"; then
      echo "deps: stopping $(ps -o comm= -p "$pid" 2>/dev/null || echo '?') (pid $pid), started by the install"
      ${SUDO:-} kill "$pid" 2>/dev/null || true
    fi
  done
}

main() {
  local missing=() p
  for p in "${PKGS[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
      missing+=("$p")
    fi
  done

  if [ ${#missing[@]} -eq 0 ]; then
    return 0
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

  local before
  before=$(peer_daemon_pids)
  export DEBIAN_FRONTEND=noninteractive
  if ! $SUDO apt-get install -y --no-install-recommends "${missing[@]}"; then
    $SUDO apt-get update
    $SUDO apt-get install -y --no-install-recommends "${missing[@]}"
  fi
  # Some packages start their daemon from postinst regardless of policy-rc.d on systems without
  # systemd; stop those (only those) so they do not hold port 53 or distort benchmarks.
  stop_new_peer_daemons "$before"
}

if [ -z "${MERIDIAN_DEPS_LIB:-}" ]; then
  main "$@"
fi
