#!/usr/bin/python3
"""Recursion by forwarding (docs/recursion.md): meridian forwards to upstreams on loopback.

Upstreams: knotd serving up.test and its own version of example.com (the whole-server forwarder,
zone "."), and a small Python upstream that counts the queries it gets (per-domain forwarders for
py.test. and deep.up.test.: the longest match wins). Meridian serves example.com itself and allows
recursion to 127.0.0.2/32 only.

Checks: an allowed client gets knotd's answer with RA=1 and our EDNS; 127.0.0.1 gets REFUSED with
EDE 18; example.com is answered AA=1 from Meridian's zone, not knotd's; the longest forward zone
picks the upstream; a dead upstream gives SERVFAIL with EDE 22 or 23; 20 identical concurrent
questions reach the upstream once (with c-ares's random IDs, RFC 5452); TCP pipelining with the
pending answer out of order; a TCP connection closed while its question is pending; a large answer
TC=1 over UDP and whole over TCP; a reload that turns recursion off gives REFUSED.

Run: tests/integration/recursion.py --meridian build/meridian --meridianctl build/meridianctl
Standard library and Debian's python3-dnspython; knotd from Debian's knot.
"""

import os
import signal
import socket
import struct
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import (BaseCtx, Results, check_log_clean, drop_tmp, log, make_tmp, parse_args,  # noqa: E402
                    pick_port, start_server, stop_all, write)

import dns.edns  # noqa: E402
import dns.flags  # noqa: E402
import dns.message  # noqa: E402
import dns.rcode  # noqa: E402
import dns.rdatatype  # noqa: E402
import dns.rrset  # noqa: E402

KNOTD = "/usr/sbin/knotd"
SECTIONS = ["recursion"]
CLIENT = "127.0.0.2"  # the allowed client's source address
TIMEOUT = 5.0

MERIDIAN_ZONE = """$ORIGIN example.com.
$TTL 300
@    SOA ns1 hostmaster 1 3600 600 86400 60
@    NS  ns1
ns1  A   192.0.2.1
www  A   192.0.2.10
"""

KNOT_EXAMPLE = """$ORIGIN example.com.
$TTL 300
@    SOA ns1 hostmaster 99 3600 600 86400 60
@    NS  ns1
ns1  A   203.0.113.1
www  A   203.0.113.10
"""

KNOT_UP = """$ORIGIN up.test.
$TTL 300
@    SOA ns1 hostmaster 1 3600 600 86400 60
@    NS  ns1
ns1  A   198.51.100.1
www  A   198.51.100.80
"""


class PyUpstream:
    """A UDP+TCP DNS server on loopback that counts queries by name. Answers A 192.0.2.99 to any
    name; names starting with "slow" after 1 s, with "count" after 0.5 s; names starting with
    "big" get 100 A records (TC=1 over UDP when larger than the query's EDNS size)."""

    def __init__(self, port):
        self.port = port
        self.counts = {}
        self.ids = []
        self.lock = threading.Lock()
        self.stop = False
        self.udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.udp.bind(("127.0.0.1", port))
        self.udp.settimeout(0.2)
        self.tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.tcp.bind(("127.0.0.1", port))
        self.tcp.listen(16)
        self.tcp.settimeout(0.2)
        self.threads = [threading.Thread(target=self.serve_udp, daemon=True),
                        threading.Thread(target=self.serve_tcp, daemon=True)]
        for t in self.threads:
            t.start()

    def answer(self, wire, udp):
        q = dns.message.from_wire(wire)
        name = q.question[0].name.to_text().lower()
        with self.lock:
            self.counts[name] = self.counts.get(name, 0) + 1
            self.ids.append(q.id)
        first = name.split(".")[0]
        if first.startswith("slow"):
            time.sleep(1.0)
        elif first.startswith("count"):
            time.sleep(0.5)
        r = dns.message.make_response(q)
        n = 100 if first.startswith("big") else 1
        rr = dns.rrset.from_text(q.question[0].name, 300, "IN", "A",
                                 *[f"192.0.2.{(i % 250) + 1}" if n > 1 else "192.0.2.99" for i in range(n)])
        r.answer.append(rr)
        out = r.to_wire(max_size=65535)
        limit = q.payload if q.edns >= 0 else 512
        if udp and len(out) > limit:
            r.answer = []
            r.flags |= dns.flags.TC
            out = r.to_wire(max_size=65535)
        return out

    def serve_udp(self):
        while not self.stop:
            try:
                data, peer = self.udp.recvfrom(65535)
            except (socket.timeout, OSError):
                continue

            def reply(d=data, p=peer):
                try:
                    self.udp.sendto(self.answer(d, True), p)
                except Exception:  # noqa: BLE001 (a test upstream: a bad query is no reply)
                    pass
            threading.Thread(target=reply, daemon=True).start()

    def serve_tcp(self):
        while not self.stop:
            try:
                conn, _ = self.tcp.accept()
            except (socket.timeout, OSError):
                continue

            def handle(c=conn):
                try:
                    c.settimeout(5)
                    while True:
                        hdr = recv_exact(c, 2)
                        if not hdr:
                            return
                        msg = recv_exact(c, struct.unpack("!H", hdr)[0])
                        out = self.answer(msg, False)
                        c.sendall(struct.pack("!H", len(out)) + out)
                except Exception:  # noqa: BLE001
                    pass
                finally:
                    c.close()
            threading.Thread(target=handle, daemon=True).start()

    def count(self, name):
        with self.lock:
            return self.counts.get(name.lower(), 0)

    def close(self):
        self.stop = True
        for t in self.threads:
            t.join(2)
        self.udp.close()
        self.tcp.close()


def recv_exact(s, n):
    buf = b""
    while len(buf) < n:
        chunk = s.recv(n - len(buf))
        if not chunk:
            return None
        buf += chunk
    return buf


def query(name, qtype="A", rd=True, payload=1232, qid=None):
    q = dns.message.make_query(name, qtype, use_edns=0, payload=payload)
    if not rd:
        q.flags &= ~dns.flags.RD
    if qid is not None:
        q.id = qid
    return q


def udp_ask(addr, q, source=CLIENT, timeout=TIMEOUT):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.bind((source, 0))
        s.settimeout(timeout)
        s.sendto(q.to_wire(), addr)
        while True:
            data = s.recv(65535)
            r = dns.message.from_wire(data)
            if r.id == q.id:
                return r
    except socket.timeout:
        return None
    finally:
        s.close()


def tcp_connect(addr, source=CLIENT):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind((source, 0))
    s.settimeout(TIMEOUT)
    s.connect(addr)
    return s


def tcp_send(s, q):
    w = q.to_wire()
    s.sendall(struct.pack("!H", len(w)) + w)


def tcp_read(s):
    hdr = recv_exact(s, 2)
    if not hdr:
        return None
    return dns.message.from_wire(recv_exact(s, struct.unpack("!H", hdr)[0]))


def tcp_ask(addr, q):
    s = tcp_connect(addr)
    try:
        tcp_send(s, q)
        return tcp_read(s)
    except (socket.timeout, OSError):
        return None
    finally:
        s.close()


def ede_codes(r):
    return [o.code for o in (r.options if r is not None else []) if o.otype == dns.edns.EDE]


def a_values(r):
    return sorted(rd.address for rrset in r.answer for rd in rrset if rrset.rdtype == dns.rdatatype.A)


def describe(r):
    return "no reply" if r is None else r.to_text()[:600]


def start_knot(ctx, port):
    kdir = os.path.join(ctx.tmp, "knot")
    os.makedirs(os.path.join(kdir, "storage"), exist_ok=True)
    write(os.path.join(kdir, "example.com.zone"), KNOT_EXAMPLE)
    write(os.path.join(kdir, "up.test.zone"), KNOT_UP)
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
template:
  - id: default
    zonefile-sync: -1
    zonefile-load: whole
    journal-content: none
    semantic-checks: off
zone:
  - domain: example.com
    file: "{kdir}/example.com.zone"
  - domain: up.test
    file: "{kdir}/up.test.zone"
""")
    logf = open(os.path.join(kdir, "knot.log"), "wb")
    import subprocess
    proc = subprocess.Popen([KNOTD, "-c", conf], stdin=subprocess.DEVNULL, stdout=logf,
                            stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and proc.poll() is None:
        r = udp_ask(("127.0.0.1", port), query("up.test.", "SOA"), source="127.0.0.1", timeout=0.3)
        if r is not None and r.answer:
            return proc, logf
    return proc, logf


def meridian_config(path, port, knot_port, py_port, dead_port, enabled=True):
    write(path, f"""[server]
listen = ["127.0.0.1:{port}", "{CLIENT}:{port}"]
threads = 1

[recursion]
enabled = {"true" if enabled else "false"}
allow = ["{CLIENT}/32"]

[[recursion.forward]]
zone = "."
servers = ["127.0.0.1:{knot_port}"]

[[recursion.forward]]
zone = "py.test."
servers = ["127.0.0.1:{py_port}"]

[[recursion.forward]]
zone = "deep.up.test."
servers = ["127.0.0.1:{py_port}"]

[[recursion.forward]]
zone = "dead.test."
servers = ["127.0.0.1:{dead_port}"]

[[zone]]
name = "example.com"
file = "example.com.zone"
""")


def section_recursion(ctx):
    r = ctx.r
    r.begin("recursion")
    if not r.check("knotd is installed (Debian knot)", os.access(KNOTD, os.X_OK)):
        return
    knot_port, py_port, dead_port = pick_port(ctx), pick_port(ctx), pick_port(ctx)
    port = pick_port(ctx, hosts=("127.0.0.1", CLIENT))
    knot, knot_log = start_knot(ctx, knot_port)
    py = PyUpstream(py_port)
    srv = None
    try:
        if not r.check("knotd starts and serves up.test", knot.poll() is None):
            return
        write(os.path.join(ctx.tmp, "example.com.zone"), MERIDIAN_ZONE)
        conf = os.path.join(ctx.tmp, "meridian.toml")
        meridian_config(conf, port, knot_port, py_port, dead_port)
        srv = start_server(ctx, "recursion", ["--config", conf], check_started=True)
        if srv is None:
            return
        A = ("127.0.0.1", port)
        B = (CLIENT, port)

        resp = udp_ask(B, query("www.up.test."))
        r.check("allowed client: knotd's answer via the forwarder, RA=1, not AA",
                resp is not None and resp.rcode() == 0 and a_values(resp) == ["198.51.100.80"]
                and resp.flags & dns.flags.RA and not resp.flags & dns.flags.AA, describe(resp))
        r.check("allowed client: our EDNS (payload 1232), no upstream OPT leaked",
                resp is not None and resp.edns == 0 and resp.payload == 1232, describe(resp))

        resp = udp_ask(A, query("www.up.test."), source="127.0.0.1")
        r.check("client outside allow: REFUSED with EDE 18 (Prohibited), no RA",
                resp is not None and resp.rcode() == dns.rcode.REFUSED and ede_codes(resp) == [18]
                and not resp.flags & dns.flags.RA, describe(resp))

        resp = udp_ask(B, query("www.example.com."))
        r.check("served zone: answered AA=1 from Meridian's example.com, not knotd's",
                resp is not None and resp.flags & dns.flags.AA and a_values(resp) == ["192.0.2.10"]
                and resp.flags & dns.flags.RA, describe(resp))

        resp = udp_ask(B, query("x.py.test."))
        r.check("per-domain forwarder py.test. answers x.py.test", resp is not None and
                a_values(resp) == ["192.0.2.99"] and py.count("x.py.test.") == 1, describe(resp))
        resp = udp_ask(B, query("www.deep.up.test."))
        r.check("longest match: deep.up.test. goes to the Python upstream, not knotd",
                resp is not None and a_values(resp) == ["192.0.2.99"], describe(resp))

        resp = udp_ask(B, query("www.dead.test."), timeout=15)
        r.check("dead upstream: SERVFAIL with EDE 22 or 23",
                resp is not None and resp.rcode() == dns.rcode.SERVFAIL and
                ede_codes(resp) in ([22], [23]), describe(resp))

        resp = udp_ask(B, query("www.up.test.", rd=False))
        r.check("RD=0 for a name not served here: REFUSED with EDE 20 (no cache yet)",
                resp is not None and resp.rcode() == dns.rcode.REFUSED and ede_codes(resp) == [20],
                describe(resp))

        # 20 identical questions at once: one upstream query.
        results = [None] * 20

        def ask(i):
            results[i] = udp_ask(B, query("count.py.test."))
        threads = [threading.Thread(target=ask, args=(i,)) for i in range(20)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        answered = sum(1 for x in results if x is not None and a_values(x) == ["192.0.2.99"])
        r.check("20 identical concurrent questions: all 20 answered", answered == 20, f"{answered}")
        r.check("20 identical concurrent questions: the upstream got one query",
                py.count("count.py.test.") == 1, f"{py.count('count.py.test.')} queries")
        r.check("upstream query IDs are random and distinct (RFC 5452 9.2)",
                len(py.ids) >= 2 and len(set(py.ids)) == len(py.ids) and 0 not in py.ids, f"{py.ids}")

        # TCP: a pending question, then one answered at once; the second comes back first.
        s = tcp_connect(B)
        try:
            tcp_send(s, query("slow1.py.test.", qid=1001))
            tcp_send(s, query("www.example.com.", qid=1002))
            first, second = tcp_read(s), tcp_read(s)
            r.check("TCP pipelining: the zone answer first, the pending one after (RFC 7766 6.2.1.1)",
                    first is not None and second is not None and first.id == 1002 and
                    second.id == 1001 and a_values(second) == ["192.0.2.99"],
                    f"{describe(first)} / {describe(second)}")
        finally:
            s.close()
        # A connection closed while its question is pending: the reply is dropped, the server lives.
        s = tcp_connect(B)
        tcp_send(s, query("slow2.py.test.", qid=1003))
        s.close()
        time.sleep(1.5)
        resp = tcp_ask(B, query("www.example.com."))
        r.check("TCP closed while pending: the server still answers afterwards",
                srv.alive() and resp is not None and resp.rcode() == 0, describe(resp))

        resp = udp_ask(B, query("big.py.test."))
        r.check("large answer over UDP: TC=1", resp is not None and resp.flags & dns.flags.TC,
                describe(resp))
        resp = tcp_ask(B, query("big.py.test."))
        r.check("large answer over TCP: all 100 records", resp is not None and
                len(a_values(resp)) == 100 and not resp.flags & dns.flags.TC, describe(resp))

        # A reload that turns recursion off.
        meridian_config(conf, port, knot_port, py_port, dead_port, enabled=False)
        srv.signal(signal.SIGHUP)
        deadline = time.monotonic() + 5
        resp = None
        while time.monotonic() < deadline:
            resp = udp_ask(B, query("www.up.test."))
            if resp is not None and resp.rcode() == dns.rcode.REFUSED:
                break
            time.sleep(0.1)
        r.check("reload with recursion off: REFUSED, no RA", resp is not None and
                resp.rcode() == dns.rcode.REFUSED and not resp.flags & dns.flags.RA, describe(resp))
        code, _ = srv.stop()
        r.check("meridian stops cleanly (exit 0)", code == 0, f"exit {code}")
        check_log_clean(r, "recursion", srv.log_text())
    finally:
        py.close()
        if knot.poll() is None:
            os.kill(knot.pid, signal.SIGTERM)
            try:
                knot.wait(10)
            except Exception:  # noqa: BLE001
                os.kill(knot.pid, signal.SIGKILL)
                knot.wait()
        knot_log.close()


def main():
    args = parse_args(__doc__, SECTIONS)
    if args is None:
        return 2
    tmp = make_tmp("meridian-recursion-")
    r = Results(args.verbose)
    ctx = BaseCtx(args, tmp, r)
    t0 = time.monotonic()
    try:
        section_recursion(ctx)
    finally:
        stop_all(ctx.servers)
    status = r.finish(t0)
    drop_tmp(tmp, args.keep, r)
    return status


if __name__ == "__main__":
    sys.exit(main())
