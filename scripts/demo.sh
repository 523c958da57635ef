#!/usr/bin/env bash
# `make demo`: starts Meridian in the background on 127.0.0.1:5300 (and [::1]:5300 when IPv6 loopback
# exists) with the example zones, waits until it answers, and prints queries to try.
set -euo pipefail
BUILD=${1:-build}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
RUN="$ROOT/demo-run"
mkdir -p "$RUN"

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
for n in 21 22 23; do
  /usr/bin/python3 "$ROOT/scripts/demo_backend.py" "127.0.0.$n" 8080 >/dev/null 2>&1 &
  echo $! >"$RUN/backend-$n.pid"
done

args=(--config "$ROOT/examples/meridian.toml")
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
  dig @127.0.0.1 -p 5300 www.example.com A +subnet=81.2.69.142/32     # GB/EU   -> 127.0.0.21 (eu)
  dig @127.0.0.1 -p 5300 www.example.com A +subnet=216.160.83.56/32   # US/NA   -> 127.0.0.22 (us)
  dig @127.0.0.1 -p 5300 www.example.com A +subnet=2001:218::/32      # JP/AS   -> 127.0.0.23 (ap)
  dig @127.0.0.1 -p 5300 www.example.com A                            # no ECS: located by 127.0.0.1 (default: us)
  build/meridian explain --config examples/meridian.toml --client 81.2.69.142 www.example.com A
  build/meridianctl --socket demo-run/meridian.sock health
  kill \$(cat demo-run/backend-21.pid)     # eu goes down: GB clients move to us within ~2 s
  build/meridianctl --socket demo-run/meridian.sock override 127.0.0.22 force-down

Edit examples/zones/example.com.zone (raise the serial), then reload:
  build/meridianctl --socket demo-run/meridian.sock reload     # or: kill -HUP \$(cat demo-run/meridian.pid)
  build/meridianctl --socket demo-run/meridian.sock status
Stop it (and the backends):
  build/meridianctl --socket demo-run/meridian.sock stop; kill \$(cat demo-run/backend-*.pid)
EOT
