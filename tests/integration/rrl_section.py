"""The `rrl` section of run.py: response rate limiting with the real binary on loopback.

A meridian with `[rrl] enabled, responses_per_second = 20, slip = 2` (2 workers) gets 20,000
identical UDP queries from 127.0.0.1 while a client in another /24 (127.0.1.1) asks at a gentle
pace; then the same flood goes to knotd with `mod-rrl` (rate-limit 20, slip 2) and the two splits
(full answers, truncated slips, no reply) are compared as proportions with a generous tolerance:
a behavioural comparison, not a timing threshold.  Expected full answers are bounded from the
measured duration of the flood (burst of rate x window, then the rate).

Also: a slip is TC=1 with the question and no records; 127.0.0.2, in the flooder's /24, shares its
limit; TCP from the flooder is answered; `exempt_clients` are never limited; `meridianctl status`
counts limited/slipped/dropped; a reload turning RRL off lifts the limit; a server without `[rrl]`
is never limited, and turning it on by a reload logs that it takes a restart.

Other /24s on loopback need no set-up on Linux: all of 127.0.0.0/8 is local.
"""

import os
import select
import shutil
import signal
import socket
import struct
import subprocess
import threading
import time

from common import check_log_clean, log, pick_port, run_tool, start_server, write, wire_name

FLOOD = 20000
RATE = 20
SLIP = 2
WINDOW = 4          # meridian's default rrl.window (Knot's fixed bucket is 4 s of rate too)
KNOTD = "/usr/sbin/knotd"

ZONE = """$ORIGIN rrl.test.
$TTL 300
@ SOA ns1 hostmaster 1 7200 3600 1209600 300
@ NS ns1
ns1 A 192.0.2.1
www A 192.0.2.80
"""


def a_query(qid, name="www.rrl.test"):
    return struct.pack("!HHHHHH", qid, 0, 1, 0, 0, 0) + wire_name(name) + struct.pack("!HH", 1, 1)


def flood(server, src, n, batch=100, pace=0.002, sample=None):
    """n identical A queries from src (IDs 0..n-1) in batches, draining replies between batches so
    the client's own socket buffer never overflows.  Returns (full, slipped, silent, seconds).
    sample: a list that receives one slipped reply."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
    s.bind((src, 0))
    s.setblocking(False)
    seen = set()
    counts = {"full": 0, "tc": 0}

    def drain(wait):
        end = time.monotonic() + wait
        while True:
            left = end - time.monotonic()
            if left <= 0:
                return
            ready, _, _ = select.select([s], [], [], left)
            if not ready:
                return
            while True:
                try:
                    d = s.recv(4096)
                except BlockingIOError:
                    break
                if len(d) < 12:
                    continue
                qid, flags, _, an = struct.unpack("!HHHH", d[:8])
                if qid in seen or not flags & 0x8000:
                    continue
                seen.add(qid)
                if flags & 0x0200:
                    counts["tc"] += 1
                    if sample is not None and not sample:
                        sample.append(d)
                elif an > 0:
                    counts["full"] += 1

    t0 = time.monotonic()
    try:
        for i in range(0, n, batch):
            for k in range(i, min(n, i + batch)):
                s.sendto(a_query(k & 0xFFFF), server)
            drain(pace)
        elapsed = time.monotonic() - t0
        drain(0.5)
    finally:
        s.close()
    full, tc = counts["full"], counts["tc"]
    return full, tc, n - full - tc, elapsed


def gentle(server, src, n, gap, out):
    """n queries one at a time from src, each waiting for its reply; appends the count of full
    answers to out."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((src, 0))
    s.settimeout(1.0)
    full = 0
    try:
        for i in range(n):
            s.sendto(a_query(0x8000 + i), server)
            try:
                d = s.recv(4096)
                if struct.unpack("!H", d[2:4])[0] & 0x0200 == 0 and struct.unpack("!H", d[6:8])[0] > 0:
                    full += 1
            except socket.timeout:
                pass
            time.sleep(gap)
    finally:
        s.close()
    out.append(full)


def tcp_answered(server, src):
    s = socket.create_connection(server, timeout=3, source_address=(src, 0))
    try:
        q = a_query(0x4242)
        s.sendall(struct.pack("!H", len(q)) + q)
        data = b""
        while len(data) < 2 or len(data) < 2 + struct.unpack("!H", data[:2])[0]:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
        return len(data) > 14 and struct.unpack("!H", data[8:10])[0] > 0
    finally:
        s.close()


def status_rrl(ctx, sock):
    rc, out, err = run_tool([ctx.meridianctl, "--socket", sock, "status"], timeout=10)
    for line in out.splitlines():
        if line.startswith("rrl:"):
            parts = line.replace(",", "").split()
            return {parts[i]: int(parts[i + 1]) for i in (1, 3, 5)}, out
    return None, out + err


def split_text(name, res):
    full, tc, silent, secs = res
    return (f"{name}: {full} full, {tc} truncated ({tc / FLOOD:.1%}), {silent} no reply "
            f"({silent / FLOOD:.1%}) in {secs:.2f}s")


def run_knot(ctx, zone_file):
    """The same flood against knotd with mod-rrl; (full, tc, silent, secs) or None (check failed)."""
    r = ctx.r
    if not r.check("knotd is installed (Debian knot, for the mod-rrl comparison)", os.access(KNOTD, os.X_OK),
                   f"{KNOTD} missing: scripts/deps.sh installs knot"):
        return None
    kdir = os.path.join(ctx.tmp, "rrl-knot")
    os.makedirs(os.path.join(kdir, "storage"), exist_ok=True)
    port = pick_port(ctx)
    conf = os.path.join(kdir, "knot.conf")
    write(conf, f"""server:
    rundir: "{kdir}"
    pidfile: "{kdir}/knot.pid"
    listen: 127.0.0.1@{port}
    udp-workers: 1
    tcp-workers: 1
    background-workers: 1
database:
    storage: "{kdir}/storage"
control:
    listen: "{kdir}/knot.sock"
log:
  - target: stderr
    any: info
mod-rrl:
  - id: rrl
    rate-limit: {RATE}
    slip: {SLIP}
template:
  - id: default
    global-module: mod-rrl/rrl
    zonefile-sync: -1
    zonefile-load: whole
    journal-content: none
    semantic-checks: off
zone:
  - domain: rrl.test
    file: "{zone_file}"
""")
    logf = open(os.path.join(kdir, "knot.log"), "wb")
    proc = subprocess.Popen([KNOTD, "-c", conf], stdin=subprocess.DEVNULL, stdout=logf, stderr=subprocess.STDOUT)
    try:
        # Ready when it answers the zone's SOA (from another /24, so the flood's block starts fresh).
        ready = False
        deadline = time.monotonic() + 10
        probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        probe.bind(("127.0.9.1", 0))
        probe.settimeout(0.2)
        while time.monotonic() < deadline and proc.poll() is None and not ready:
            probe.sendto(struct.pack("!HHHHHH", 7, 0, 1, 0, 0, 0) + wire_name("rrl.test") + struct.pack("!HH", 6, 1),
                         ("127.0.0.1", port))
            try:
                d = probe.recv(4096)
                ready = struct.unpack("!H", d[6:8])[0] > 0
            except socket.timeout:
                pass
        probe.close()
        if not r.check("knotd with mod-rrl starts and serves the zone", ready,
                       open(os.path.join(kdir, "knot.log"), errors="replace").read()[-800:]):
            return None
        return flood(("127.0.0.1", port), "127.0.0.1", FLOOD)
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGTERM)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait()
        logf.close()


def section_rrl(ctx):
    r = ctx.r
    rdir = os.path.join(ctx.tmp, "rrl")
    zone_file = os.path.join(rdir, "rrl.test.zone")
    write(zone_file, ZONE)
    port = pick_port(ctx)
    A = ("127.0.0.1", port)
    sock = os.path.join(rdir, "ctl.sock")
    conf = os.path.join(rdir, "meridian.toml")
    write(conf, f"""[server]
listen = ["127.0.0.1:{port}"]
threads = 2
[control]
socket = "ctl.sock"
[rrl]
enabled = true
responses_per_second = {RATE}
slip = {SLIP}
exempt_clients = ["127.0.3.0/24"]
[[zone]]
name = "rrl.test"
file = "rrl.test.zone"
""")
    srv = start_server(ctx, "rrl", ["--config", conf], cwd=rdir, check_started=True)
    if srv is None:
        return

    # The flood from 127.0.0.1, with a client in another /24 asking meanwhile.
    other = []
    t = threading.Thread(target=gentle, args=(A, "127.0.1.1", 40, 0.02, other))
    t.start()
    sample = []
    m = flood(A, "127.0.0.1", FLOOD, sample=sample)
    t.join()
    full, tc, silent, secs = m
    log("   " + split_text("meridian", m))
    lo = RATE * WINDOW - 5
    hi = RATE * WINDOW + RATE * (secs + 1) + 5
    r.check(f"flood: full answers within the burst plus the rate over {secs:.2f}s ({lo}..{hi:.0f})",
            lo <= full <= hi, split_text("meridian", m))
    limited = FLOOD - full
    r.check("flood: about half the limited responses slip (slip 2)", 0.4 <= tc / max(limited, 1) <= 0.6,
            split_text("meridian", m))
    r.check("flood: the rest get no reply", 0.4 <= silent / max(limited, 1) <= 0.6, split_text("meridian", m))
    ok = bool(sample)
    if ok:
        d = sample[0]
        _, flags, qd, an, ns, ar = struct.unpack("!HHHHHH", d[:12])
        ok = qd == 1 and an == 0 and ns == 0 and ar == 0 and flags & 0x8000 and d[12:].startswith(wire_name("www.rrl.test"))
    r.check("a slip is TC=1 with the question and no records", ok, repr(sample[:1]))
    r.check("another /24 (127.0.1.1) asking during the flood: every answer full",
            other == [40], f"full answers {other} of 40")

    # Right after: the flooder's /24 neighbour shares the limit, TCP is answered, exempt is not limited.
    n2 = flood(A, "127.0.0.2", 400, pace=0.001)
    r.check("127.0.0.2 (the flooder's /24) shares its limit: not every answer is full",
            n2[0] < 400 and n2[1] > 0, split_text("127.0.0.2", n2))
    r.check("TCP from the flooder is answered (TCP is never limited)", tcp_answered(A, "127.0.0.1"))
    n3 = flood(A, "127.0.3.1", 2000)
    r.check("an exempt client (127.0.3.0/24) gets every answer in full", n3[0] == 2000, split_text("127.0.3.1", n3))

    counters, out = status_rrl(ctx, sock)
    ok = counters is not None and counters["limited"] == counters["slipped"] + counters["dropped"]
    # What the clients saw: every truncated reply was a slip; replies lost on the way would only
    # make the client count lower than the server's.
    ok = ok and counters["slipped"] >= tc + n2[1] and counters["limited"] >= limited + (400 - n2[0]) - 5
    r.check("meridianctl status: rrl limited = slipped + dropped, matching what the clients saw", ok,
            f"{counters} vs client {tc}+{n2[1]} truncated; status:\n{out}")

    # Knot's mod-rrl on the same flood.
    k = run_knot(ctx, zone_file)
    if k is not None:
        log("   " + split_text("knotd mod-rrl", k))
        kf, ktc, ksilent, _ = k
        r.check("full answers: meridian within 0.5x..2x of knotd's",
                0.5 * kf <= full <= 2 * kf, f"meridian {full}, knotd {kf}")
        r.check("truncated share: meridian within 10 points of knotd's",
                abs(tc - ktc) / FLOOD <= 0.10, f"meridian {tc / FLOOD:.1%}, knotd {ktc / FLOOD:.1%}")
        r.check("no-reply share: meridian within 10 points of knotd's",
                abs(silent - ksilent) / FLOOD <= 0.10, f"meridian {silent / FLOOD:.1%}, knotd {ksilent / FLOOD:.1%}")

    # Turned off by a reload: the flooder is answered in full again.
    write(conf, open(conf).read().replace("enabled = true", "enabled = false"))
    rc, out, err = run_tool([ctx.meridianctl, "--socket", sock, "reload"], timeout=10)
    n5 = flood(A, "127.0.0.1", 2000)
    r.check("reload with rrl.enabled = false: the flooder gets 2000 of 2000", rc == 0 and n5[0] == 2000,
            f"reload rc={rc} {out}{err}; " + split_text("after reload", n5))
    rc, secs_stop = srv.stop()
    r.check("rrl server: SIGTERM -> exit 0", rc == 0, f"rc={rc}")
    check_log_clean(r, "rrl server", srv.log_text())

    # Without [rrl] nothing is limited; turning it on by a reload says it needs a restart.
    port = pick_port(ctx)
    odir = os.path.join(ctx.tmp, "rrl-off")
    oconf = os.path.join(odir, "meridian.toml")
    write(os.path.join(odir, "rrl.test.zone"), ZONE)
    base = (f'[server]\nlisten = ["127.0.0.1:{port}"]\nthreads = 1\n[control]\nsocket = "ctl.sock"\n'
            '[[zone]]\nname = "rrl.test"\nfile = "rrl.test.zone"\n')
    write(oconf, base)
    plain = start_server(ctx, "rrl-off", ["--config", oconf], cwd=odir)
    if plain is not None:
        n4 = flood(("127.0.0.1", port), "127.0.0.1", 2000)
        r.check("no [rrl]: 2000 queries from one source all answered in full", n4[0] == 2000,
                split_text("rrl off", n4))
        write(oconf, base + "[rrl]\nenabled = true\n")
        rc, out, err = run_tool([ctx.meridianctl, "--socket", os.path.join(odir, "ctl.sock"), "reload"], timeout=10)
        r.check("enabling rrl by a reload logs that it takes a restart",
                rc == 0 and "enabling it takes a restart" in plain.log_text(), f"rc={rc} log:\n{plain.tail()}")
        plain.stop()
