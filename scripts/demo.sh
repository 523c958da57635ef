#!/usr/bin/env bash
# `make demo`: starts Meridian in the background on 127.0.0.1:5300 (and [::1]:5300 when IPv6 loopback
# exists) with the example zones, waits until it answers, and prints queries to try.
#
# The steered service's three HTTP backends listen on these addresses (environment or make
# variables, e.g. `make demo DEMO_BACKEND_PORT=18080`); with other values than the defaults the
# demo serves demo-run/meridian.toml, a copy of examples/meridian.toml pointing at them.
#   DEMO_BACKEND_EU=127.0.0.21 DEMO_BACKEND_US=127.0.0.22 DEMO_BACKEND_AP=127.0.0.23 DEMO_BACKEND_PORT=8080
set -euo pipefail
BUILD=${1:-build}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
RUN="$ROOT/demo-run"
mkdir -p "$RUN"
EU=${DEMO_BACKEND_EU:-127.0.0.21}
US=${DEMO_BACKEND_US:-127.0.0.22}
AP=${DEMO_BACKEND_AP:-127.0.0.23}
PORT=${DEMO_BACKEND_PORT:-8080}

if [ -f "$RUN/meridian.pid" ] && kill -0 "$(cat "$RUN/meridian.pid")" 2>/dev/null; then
  echo "demo: stopping the previous demo server (pid $(cat "$RUN/meridian.pid"))"
  kill "$(cat "$RUN/meridian.pid")"
  for _ in $(seq 50); do kill -0 "$(cat "$RUN/meridian.pid")" 2>/dev/null || break; sleep 0.1; done
fi

# Backends for the steered service www.example.com: one per region, health-checked by Meridian.
for pidfile in "$RUN"/backend-*.pid; do
  [ -f "$pidfile" ] && kill "$(cat "$pidfile")" 2>/dev/null || true
  rm -f "$pidfile"
done
declare -A BACKEND=([eu]=$EU [us]=$US [ap]=$AP)
for region in eu us ap; do
  /usr/bin/python3 "$ROOT/scripts/demo_backend.py" "${BACKEND[$region]}" "$PORT" \
    >"$RUN/backend-$region.log" 2>&1 &
  echo $! >"$RUN/backend-$region.pid"
done

CONFIG="$ROOT/examples/meridian.toml"
if [ "$EU $US $AP $PORT" != "127.0.0.21 127.0.0.22 127.0.0.23 8080" ]; then
  # The same configuration with the backends moved; its relative paths made absolute.
  CONFIG="$RUN/meridian.toml"
  sed -e "s|endpoints = \[\"127.0.0.21\"\]|endpoints = [\"$EU\"]|" \
      -e "s|endpoints = \[\"127.0.0.22\"\]|endpoints = [\"$US\"]|" \
      -e "s|endpoints = \[\"127.0.0.23\"\]|endpoints = [\"$AP\"]|" \
      -e "s|^port = 8080|port = $PORT|" \
      -e "s|file = \"zones/|file = \"$ROOT/examples/zones/|" \
      -e "s|socket = \"../demo-run/|socket = \"$RUN/|" \
      -e "s|database = \"../../shared/|database = \"$ROOT/../shared/|" \
      "$ROOT/examples/meridian.toml" >"$CONFIG"
fi
args=(--config "$CONFIG")
if ! ip -6 addr show dev lo 2>/dev/null | grep -q '::1'; then
  args+=(--set 'server.listen=["127.0.0.1:5300"]')
fi
"$ROOT/$BUILD/meridian" "${args[@]}" >"$RUN/meridian.log" 2>&1 &
echo $! >"$RUN/meridian.pid"

for _ in $(seq 50); do
  if dig +short +time=1 +tries=1 @127.0.0.1 -p 5300 example.com SOA >/dev/null 2>&1 &&
     [ -n "$(dig +short +time=1 +tries=1 @127.0.0.1 -p 5300 example.com SOA)" ]; then
    break
  fi
  if ! kill -0 "$(cat "$RUN/meridian.pid")" 2>/dev/null; then
    echo "demo: meridian exited; its log:" >&2
    cat "$RUN/meridian.log" >&2
    exit 1
  fi
  sleep 0.1
done
for region in eu us ap; do
  if ! kill -0 "$(cat "$RUN/backend-$region.pid")" 2>/dev/null; then
    echo "demo: the $region backend on ${BACKEND[$region]}:$PORT did not start (set DEMO_BACKEND_${region^^} or DEMO_BACKEND_PORT?):" >&2
    cat "$RUN/backend-$region.log" >&2
  fi
done
CONF_SHOWN=${CONFIG#"$ROOT/"}

cat <<EOT
Meridian is running (pid $(cat "$RUN/meridian.pid")), serving example.com and example.net on 127.0.0.1:5300.
Log: $RUN/meridian.log

Try:
  dig @127.0.0.1 -p 5300 www.example.com A
  dig @127.0.0.1 -p 5300 api.example.com A            # CNAME chain inside the zone
  dig @127.0.0.1 -p 5300 foo.apps.example.com A       # wildcard
  dig @127.0.0.1 -p 5300 example.com MX               # MX with address records in ADDITIONAL
  dig @127.0.0.1 -p 5300 nothing.example.com A        # NXDOMAIN with the SOA (TTL 300)
  dig @127.0.0.1 -p 5300 host.lab.example.com A       # referral (no AA) with glue
  dig @127.0.0.1 -p 5300 www.example.org A            # REFUSED: not our zone
  dig @127.0.0.1 -p 5300 example.com SOA +nsid        # NSID "meridian-demo"
  dig @127.0.0.1 -p 5300 example.com ANY +tcp         # full ANY over TCP (one RRset over UDP)

Traffic steering (www.example.com; GeoIP from MaxMind's test database, health checks on local backends):
  dig @127.0.0.1 -p 5300 www.example.com A +subnet=81.2.69.142/32     # GB/EU   -> $EU (eu)
  dig @127.0.0.1 -p 5300 www.example.com A +subnet=216.160.83.56/32   # US/NA   -> $US (us)
  dig @127.0.0.1 -p 5300 www.example.com A +subnet=2001:218::/32      # JP/AS   -> $AP (ap)
  dig @127.0.0.1 -p 5300 www.example.com A                            # no ECS: located by 127.0.0.1 (default: us)
  build/meridian explain --config $CONF_SHOWN --client 81.2.69.142 www.example.com A
  build/meridianctl --socket demo-run/meridian.sock health
  kill \$(cat demo-run/backend-eu.pid)     # eu goes down: GB clients move to us within ~2 s
  build/meridianctl --socket demo-run/meridian.sock override $US force-down

Edit examples/zones/example.com.zone (raise the serial), then reload:
  build/meridianctl --socket demo-run/meridian.sock reload     # or: kill -HUP \$(cat demo-run/meridian.pid)
  build/meridianctl --socket demo-run/meridian.sock status
Stop it (and the backends):
  build/meridianctl --socket demo-run/meridian.sock stop; kill \$(cat demo-run/backend-*.pid)
EOT
