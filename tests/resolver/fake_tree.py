#!/usr/bin/python3
"""A fake DNS tree on loopback for the resolver's tests and benchmarks (issue 9).

A root, three TLDs and their leaf zones, served by Knot and NSD (started here with their own
configuration files, each instance on its own 127.53.x.y address and port 53, because a delegation
cannot carry a port), plus a few deliberately broken servers written here: a black hole that never
answers, a server that answers every UDP query with TC=1 and nothing else (and properly over TCP),
and one that adds out-of-bailiwick junk to its answers. A recursive resolver pointed at the tree's
root hints (a file written here) must give the answers in QUESTIONS, which are written by hand
from the zone data below.

It checks the tree with Unbound (the reference the resolver is compared against): each question
asked cold and again warm, answers against the expectation. With --meridian, Meridian must give the
same answers twice: as a recursive server (recursion on, iterating from the tree's root hints; the
second round starts from the zone cuts it learned, there is no answer cache yet), and through
`meridian resolve` (cold, one process per question).

    tests/resolver/fake_tree.py [--meridian build/meridian] [--keep] [--verbose]

Exit status: 0 when every check passed, 1 when one failed. Needs root (port 53 on 127.53.0.0/16),
knotd, nsd, unbound and python3-dnspython (scripts/deps.sh installs them). Every process is stopped
by its PID at the end. No traffic leaves the loopback interface.
"""
import argparse
import os
import re
import shutil
import signal
import socket
import socketserver
import struct
import subprocess
import sys
import tempfile
import threading
import time

import dns.flags
import dns.message
import dns.name
import dns.query
import dns.rcode
import dns.rdatatype
import dns.rrset

KNOTD = "/usr/sbin/knotd"
NSD = "/usr/sbin/nsd"
UNBOUND = "/usr/sbin/unbound"
START_TIMEOUT = 20.0
STOP_TIMEOUT = 10.0

SOA = "@ 3600 SOA ns hostmaster 1 7200 3600 1209600 300\n"

# Zone texts by origin. Addresses of the tree's servers are 127.53.x.y; answer data is in the
# documentation ranges (RFC 5737), so a leak would be obvious and harmless.
ZONES = {
    ".": """$TTL 86400
@ SOA a.root-servers.net. hostmaster.root-servers.net. 1 1800 900 604800 86400
@ NS a.root-servers.net.
@ NS b.root-servers.net.
a.root-servers.net. A 127.53.0.1
b.root-servers.net. A 127.53.0.2
com. 172800 NS ns1.nic.com.
com. 172800 NS ns2.nic.com.
ns1.nic.com. 172800 A 127.53.1.1
ns2.nic.com. 172800 A 127.53.1.2
net. 172800 NS a.gtld.net.
a.gtld.net. 172800 A 127.53.2.1
org. 172800 NS ns1.nic.org.
ns1.nic.org. 172800 A 127.53.3.1
""",
    "root-servers.net.": """$TTL 86400
@ SOA a hostmaster 1 1800 900 604800 86400
@ NS a
@ NS b
a A 127.53.0.1
b A 127.53.0.2
""",
    "com.": """$TTL 86400
@ SOA ns1.nic hostmaster.nic 1 1800 900 604800 900
@ NS ns1.nic
@ NS ns2.nic
ns1.nic A 127.53.1.1
ns2.nic A 127.53.1.2
example NS ns1.example
example NS ns2.example
ns1.example A 127.53.10.1
ns2.example A 127.53.10.2
; the first server of lame.com is a black hole; the second answers
lame NS ns1.lame
lame NS ns2.lame
ns1.lame A 127.53.20.1
ns2.lame A 127.53.10.1
; glueless: the only name server is in another TLD
glueless NS ns.example.net.
tc NS ns.tc
ns.tc A 127.53.20.2
junk NS ns.junk
ns.junk A 127.53.20.3
""",
    "net.": """$TTL 86400
@ SOA a.gtld hostmaster.gtld 1 1800 900 604800 900
@ NS a.gtld
a.gtld A 127.53.2.1
root-servers NS a.root-servers
root-servers NS b.root-servers
a.root-servers A 127.53.0.1
b.root-servers A 127.53.0.2
example NS ns.example
ns.example A 127.53.11.1
""",
    "org.": """$TTL 86400
@ SOA ns1.nic hostmaster.nic 1 1800 900 604800 900
@ NS ns1.nic
ns1.nic A 127.53.3.1
example NS ns.example
ns.example A 127.53.12.1
""",
    "example.com.": """$TTL 3600
""" + SOA + """@ NS ns1
@ NS ns2
ns1 A 127.53.10.1
ns2 A 127.53.10.2
ns A 127.53.10.1
@ MX 10 mail
mail A 192.0.2.25
www A 192.0.2.1
www AAAA 2001:db8::1
alias CNAME www
ext CNAME www.example.net.
chain CNAME ext
legacy DNAME example.org.
*.wild A 192.0.2.9
loop1 CNAME loop2
loop2 CNAME loop1
""" + "".join('big TXT "%d%s"\n' % (i, "x" * 249) for i in range(6)) + """sub NS ns.sub
ns.sub A 127.53.10.3
""",
    "sub.example.com.": """$TTL 3600
""" + SOA + """@ NS ns
ns A 127.53.10.3
www A 192.0.2.3
""",
    "lame.com.": """$TTL 3600
""" + SOA + """@ NS ns1
@ NS ns2
ns1 A 127.53.20.1
ns2 A 127.53.10.1
www A 192.0.2.60
""",
    "example.net.": """$TTL 3600
""" + SOA + """@ NS ns
ns A 127.53.11.1
www A 198.51.100.1
""",
    "glueless.com.": """$TTL 3600
""" + SOA + """@ NS ns.example.net.
www A 192.0.2.50
""",
    "example.org.": """$TTL 3600
""" + SOA + """@ NS ns
ns A 127.53.12.1
www A 203.0.113.1
""",
}

# The authoritative servers: (software, address, zones). One process per address, so each address
# answers only for its own zones and refers for the rest, as a real tree does.
AUTH = [
    ("nsd", "127.53.0.1", [".", "root-servers.net."]),
    ("knot", "127.53.0.2", [".", "root-servers.net."]),
    ("knot", "127.53.1.1", ["com."]),
    ("nsd", "127.53.1.2", ["com."]),
    ("nsd", "127.53.2.1", ["net."]),
    ("knot", "127.53.3.1", ["org."]),
    ("knot", "127.53.10.1", ["example.com.", "lame.com."]),
    ("nsd", "127.53.10.2", ["example.com."]),
    ("nsd", "127.53.10.3", ["sub.example.com."]),
    ("nsd", "127.53.11.1", ["example.net.", "glueless.com."]),
    ("knot", "127.53.12.1", ["example.org."]),
]

BLACKHOLE = "127.53.20.1"   # ns1.lame.com: reads and never answers (UDP and TCP)
TC_ONLY = "127.53.20.2"     # ns.tc.com: TC=1 and no records over UDP; answers over TCP
JUNK = "127.53.20.3"        # ns.junk.com: right answer plus out-of-bailiwick junk

TC_ZONE = dns.name.from_text("tc.com.")
JUNK_ZONE = dns.name.from_text("junk.com.")

ROOT_HINTS = """.                        3600000      NS    A.ROOT-SERVERS.NET.
A.ROOT-SERVERS.NET.      3600000      A     127.53.0.1
.                        3600000      NS    B.ROOT-SERVERS.NET.
B.ROOT-SERVERS.NET.      3600000      A     127.53.0.2
"""

# (name, type, rcode, answer records as "owner TYPE rdata" without TTLs, sorted). The answer
# section must hold exactly these (CNAME/DNAME chains included); None: only the rcode is checked.
QUESTIONS = [
    ("www.example.com.", "A", "NOERROR", ["www.example.com. A 192.0.2.1"]),
    ("www.example.com.", "AAAA", "NOERROR", ["www.example.com. AAAA 2001:db8::1"]),
    ("example.com.", "MX", "NOERROR", ["example.com. MX 10 mail.example.com."]),
    ("alias.example.com.", "A", "NOERROR",
     ["alias.example.com. CNAME www.example.com.", "www.example.com. A 192.0.2.1"]),
    ("chain.example.com.", "A", "NOERROR",
     ["chain.example.com. CNAME ext.example.com.", "ext.example.com. CNAME www.example.net.",
      "www.example.net. A 198.51.100.1"]),
    ("www.legacy.example.com.", "A", "NOERROR",
     ["legacy.example.com. DNAME example.org.", "www.legacy.example.com. CNAME www.example.org.",
      "www.example.org. A 203.0.113.1"]),
    ("host.wild.example.com.", "A", "NOERROR", ["host.wild.example.com. A 192.0.2.9"]),
    ("nx.example.com.", "A", "NXDOMAIN", []),
    ("www.example.com.", "TXT", "NOERROR", []),
    ("big.example.com.", "TXT", "NOERROR", None),   # 1.5 kB: truncated over UDP, then TCP
    ("www.sub.example.com.", "A", "NOERROR", ["www.sub.example.com. A 192.0.2.3"]),
    ("www.glueless.com.", "A", "NOERROR", ["www.glueless.com. A 192.0.2.50"]),
    ("www.lame.com.", "A", "NOERROR", ["www.lame.com. A 192.0.2.60"]),
    ("www.tc.com.", "A", "NOERROR", ["www.tc.com. A 192.0.2.80"]),
    ("www.junk.com.", "A", "NOERROR", ["www.junk.com. A 192.0.2.70"]),
    # After junk.com's server offered a forged www.example.com: the real one still.
    ("www.example.com.", "A", "NOERROR", ["www.example.com. A 192.0.2.1"]),
    ("nx.nosuchtld.", "A", "NXDOMAIN", []),
    ("loop1.example.com.", "A", "SERVFAIL", None),
]


def log(msg):
    print(msg, flush=True)


# --------------------------------------------------------------------------- broken servers

class BrokenServers:
    """The black hole, the TC-only server and the junk server, on threads of this process."""

    def __init__(self):
        self.socks = []
        self.threads = []
        self.stop = threading.Event()

    def start(self):
        for addr, handler in ((BLACKHOLE, None), (TC_ONLY, self._tc), (JUNK, self._junk)):
            u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            u.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            u.bind((addr, 53))
            u.settimeout(0.2)
            t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            t.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            t.bind((addr, 53))
            t.listen(16)
            t.settimeout(0.2)
            self.socks += [u, t]
            self.threads.append(threading.Thread(target=self._udp, args=(u, handler), daemon=True))
            self.threads.append(threading.Thread(target=self._tcp, args=(t, handler), daemon=True))
        for th in self.threads:
            th.start()

    def close(self):
        self.stop.set()
        for th in self.threads:
            th.join(2)
        for s in self.socks:
            s.close()

    def _udp(self, sock, handler):
        while not self.stop.is_set():
            try:
                data, peer = sock.recvfrom(65535)
            except socket.timeout:
                continue
            except OSError:
                return
            if handler is None:
                continue   # the black hole
            reply = handler(data, udp=True)
            if reply:
                sock.sendto(reply, peer)

    def _tcp(self, sock, handler):
        held = []
        while not self.stop.is_set():
            try:
                conn, _ = sock.accept()
            except socket.timeout:
                continue
            except OSError:
                break
            if handler is None:
                held.append(conn)   # accepted and never answered
                continue
            # A thread per connection: a resolver that keeps its connection open (Unbound does)
            # must not hold up the next one.
            th = threading.Thread(target=self._serve_tcp, args=(conn, handler), daemon=True)
            th.start()
            self.threads.append(th)
        for c in held:
            c.close()

    def _serve_tcp(self, conn, handler):
        conn.settimeout(2)
        try:
            while not self.stop.is_set():
                hdr = self._recv_exact(conn, 2)
                if not hdr:
                    break
                data = self._recv_exact(conn, struct.unpack("!H", hdr)[0])
                if data is None:
                    break
                reply = handler(data, udp=False)
                if reply:
                    conn.sendall(struct.pack("!H", len(reply)) + reply)
        except OSError:
            pass
        finally:
            conn.close()

    @staticmethod
    def _recv_exact(conn, n):
        buf = b""
        while len(buf) < n:
            chunk = conn.recv(n - len(buf))
            if not chunk:
                return None
            buf += chunk
        return buf

    @staticmethod
    def _answer(data, zone, records, extra=()):
        """An authoritative answer for a question at or below zone from records
        {(name, type): [rdata text]}; NXDOMAIN/NODATA with the SOA otherwise. extra: (section,
        rrset text) appended as junk."""
        try:
            q = dns.message.from_wire(data)
        except Exception:
            return None
        r = dns.message.make_response(q)
        r.flags |= dns.flags.AA
        if not q.question:
            r.set_rcode(dns.rcode.FORMERR)
            return r.to_wire()
        qn, qt = q.question[0].name, q.question[0].rdtype
        if not qn.is_subdomain(zone):
            r.flags &= ~dns.flags.AA
            r.set_rcode(dns.rcode.REFUSED)
            return r.to_wire()
        key = (qn.to_text().lower(), dns.rdatatype.to_text(qt))
        names = {k[0] for k in records}
        if key in records:
            r.answer.append(dns.rrset.from_text_list(qn, 300, "IN", key[1], records[key]))
        else:
            if key[0] not in names:
                r.set_rcode(dns.rcode.NXDOMAIN)
            r.authority.append(dns.rrset.from_text(zone, 300, "IN", "SOA",
                                                   "ns.%s hostmaster.%s 1 7200 3600 1209600 300"
                                                   % (zone, zone)))
        for section, text in extra:
            getattr(r, section).append(dns.rrset.from_text(*text))
        return r.to_wire()

    def _tc(self, data, udp):
        if udp:
            try:
                q = dns.message.from_wire(data)
            except Exception:
                return None
            r = dns.message.make_response(q)
            r.flags |= dns.flags.AA | dns.flags.TC
            return r.to_wire()
        return self._answer(data, TC_ZONE, {
            ("tc.com.", "NS"): ["ns.tc.com."], ("ns.tc.com.", "A"): ["127.53.20.2"],
            ("www.tc.com.", "A"): ["192.0.2.80"]})

    def _junk(self, data, udp):
        return self._answer(data, JUNK_ZONE, {
            ("junk.com.", "NS"): ["ns.junk.com."], ("ns.junk.com.", "A"): ["127.53.20.3"],
            ("www.junk.com.", "A"): ["192.0.2.70"]},
            extra=(("authority", ("com.", 86400, "IN", "NS", "ns.junk.com.")),
                   ("additional", ("www.example.com.", 86400, "IN", "A", "192.0.2.66")),
                   ("additional", ("ns1.example.com.", 86400, "IN", "A", "127.53.20.3"))))


# --------------------------------------------------------------------------- Knot and NSD

def zone_file(tmp, origin):
    fname = "root.zone" if origin == "." else origin.rstrip(".") + ".zone"
    path = os.path.join(tmp, "zones", fname)
    if not os.path.exists(path):
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            f.write("$ORIGIN %s\n" % origin + ZONES[origin])
    return path


def knot_conf(tmp, addr, zones):
    d = os.path.join(tmp, "knot-" + addr)
    os.makedirs(os.path.join(d, "storage"))
    zl = "".join('  - domain: "%s"\n    file: "%s"\n' % (z, zone_file(tmp, z)) for z in zones)
    conf = f'''server:
    rundir: "{d}"
    pidfile: "{d}/knot.pid"
    listen: {addr}@53
    udp-workers: 1
    tcp-workers: 1
    background-workers: 1
database:
    storage: "{d}/storage"
control:
    listen: "{d}/knot.sock"
log:
  - target: stderr
    any: warning
template:
  - id: default
    zonefile-sync: -1
    zonefile-load: whole
    journal-content: none
    semantic-checks: off
zone:
{zl}'''
    path = os.path.join(d, "knot.conf")
    with open(path, "w") as f:
        f.write(conf)
    return [KNOTD, "-c", path]


def nsd_conf(tmp, addr, zones):
    d = os.path.join(tmp, "nsd-" + addr)
    os.makedirs(d)
    zl = "".join('zone:\n    name: "%s"\n    zonefile: "%s"\n\n' % (z, zone_file(tmp, z))
                 for z in zones)
    conf = f'''server:
    ip-address: {addr}
    port: 53
    do-ip4: yes
    do-ip6: no
    username: ""
    chroot: ""
    database: ""
    pidfile: "{d}/nsd.pid"
    xfrdfile: "{d}/xfrd.state"
    xfrdir: "{d}"
    zonelistfile: "{d}/zone.list"
    server-count: 1
    verbosity: 1
    hide-version: yes
    rrl-ratelimit: 0
remote-control:
    control-enable: no

{zl}'''
    path = os.path.join(d, "nsd.conf")
    with open(path, "w") as f:
        f.write(conf)
    return [NSD, "-d", "-c", path]


def unbound_conf(tmp, port):
    d = os.path.join(tmp, "unbound")
    os.makedirs(d)
    hints = os.path.join(d, "root.hints")
    with open(hints, "w") as f:
        f.write(ROOT_HINTS)
    conf = f'''server:
    interface: 127.0.0.1@{port}
    port: {port}
    do-daemonize: no
    username: ""
    chroot: ""
    directory: "{d}"
    pidfile: "{d}/unbound.pid"
    use-syslog: no
    logfile: ""
    verbosity: 1
    num-threads: 1
    do-ip6: no
    root-hints: "{hints}"
    do-not-query-localhost: no
    access-control: 127.0.0.0/8 allow
    module-config: "iterator"
    qname-minimisation: yes
    minimal-responses: yes
remote-control:
    control-enable: no
'''
    path = os.path.join(d, "unbound.conf")
    with open(path, "w") as f:
        f.write(conf)
    return [UNBOUND, "-d", "-c", path]


class Proc:
    def __init__(self, label, argv, tmp):
        self.label = label
        self.argv = argv
        self.log_path = os.path.join(tmp, label + ".log")
        self.logf = open(self.log_path, "wb")
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=self.logf,
                                     stderr=subprocess.STDOUT, cwd=tmp)

    def stop(self):
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.logf.close()

    def tail(self, n=10):
        try:
            with open(self.log_path, errors="replace") as f:
                return "".join(f.readlines()[-n:])
        except OSError:
            return ""


def ask(addr, port, name, rdtype, timeout=2.0, tcp=False):
    """One question; RD=1 to a resolver, RD=0 to the tree's own servers (port 53)."""
    q = dns.message.make_query(name, rdtype, want_dnssec=False)
    if port == 53:
        q.flags &= ~dns.flags.RD
    if tcp:
        return dns.query.tcp(q, addr, port=port, timeout=timeout)
    return dns.query.udp(q, addr, port=port, timeout=timeout)


def wait_serving(addr, zone, deadline):
    """True once addr:53 answers SOA zone authoritatively."""
    while time.monotonic() < deadline:
        try:
            r = ask(addr, 53, zone, "SOA", timeout=0.3)
            if r.rcode() == dns.rcode.NOERROR and r.flags & dns.flags.AA and r.answer:
                return True
        except Exception:
            pass
        time.sleep(0.05)
    return False


class Tree:
    """Starts the tree (authoritative servers and the broken ones); stop() stops all by PID."""

    def __init__(self, tmp):
        self.tmp = tmp
        self.procs = []
        self.broken = BrokenServers()

    def start(self):
        for addr in [a for _, a, _ in AUTH] + [BLACKHOLE, TC_ONLY, JUNK]:
            for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
                s = socket.socket(socket.AF_INET, kind)
                try:
                    s.bind((addr, 53))
                except OSError as e:
                    raise RuntimeError("cannot bind %s:53 (%s): the tree needs root and a free "
                                       "127.53.0.0/16" % (addr, e))
                finally:
                    s.close()
        self.broken.start()
        for soft, addr, zones in AUTH:
            argv = (knot_conf if soft == "knot" else nsd_conf)(self.tmp, addr, zones)
            self.procs.append(Proc("%s-%s" % (soft, addr), argv, self.tmp))
        deadline = time.monotonic() + START_TIMEOUT
        for (soft, addr, zones), p in zip(AUTH, self.procs):
            for z in zones:
                if not wait_serving(addr, z, deadline):
                    raise RuntimeError("%s on %s does not serve %s:\n%s"
                                       % (soft, addr, z, p.tail()))

    def stop(self):
        for p in self.procs:
            p.stop()
        self.broken.close()


def rrset_lines(section):
    out = []
    for rrset in section:
        for rd in rrset:
            out.append("%s %s %s" % (rrset.name.to_text().lower(),
                                     dns.rdatatype.to_text(rrset.rdtype), rd.to_text()))
    return sorted(out)


def check_answers(label, addr, port, results, verbose=False):
    """Asks every question (UDP, then TCP when truncated); appends (ok, text) to results."""
    for name, rdtype, rcode, expected in QUESTIONS:
        what = "%s: %s %s" % (label, name, rdtype)
        # As a stub does (dig: 3 tries of 5 s): a resolver that is still working through a black
        # hole (Unbound tries it over TCP too) answers the retry.
        r = None
        err = None
        for _ in range(3):
            try:
                r = ask(addr, port, name, rdtype, timeout=5.0)
                if r.flags & dns.flags.TC:
                    r = ask(addr, port, name, rdtype, timeout=5.0, tcp=True)
                break
            except Exception as e:  # noqa: BLE001
                err = e
        if r is None:
            results.append((False, "%s: no answer in 3 tries of 5 s (%s)" % (what, err)))
            continue
        got_rcode = dns.rcode.to_text(r.rcode())
        got = rrset_lines(r.answer)
        ok = got_rcode == rcode and (expected is None or got == sorted(expected))
        if rdtype == "TXT" and name.startswith("big.") and ok:
            ok = len(got) == 6
        shown = str(got) if verbose or not ok else ""
        if len(shown) > 200:
            shown = shown[:200] + "..."
        results.append((ok, "%s -> %s %s%s" % (what, got_rcode, shown,
                                              "" if ok else "  expected %s %s" % (rcode, expected))))


def meridian_resolve(meridian, hints, name, rdtype):
    """`meridian resolve` of one question: (rcode text, answer lines as rrset_lines gives them,
    the whole output)."""
    p = subprocess.run([meridian, "resolve", "--root-hints", hints, name, rdtype],
                       capture_output=True, text=True, timeout=60)
    out = p.stdout
    lines = out.splitlines()
    if not lines or not lines[0].startswith(";; "):
        return None, [], out + p.stderr
    rcode = lines[0][3:].split(",")[0]
    answer = []
    for line in lines[1:]:
        if line.startswith(";;"):
            break
        owner, ttl, rclass, rtype, rdata = line.split("\t", 4)
        rrset = dns.rrset.from_text(owner, int(ttl), rclass, rtype, rdata)
        answer.extend(rrset_lines([rrset]))
    return rcode, sorted(answer), out + p.stderr


def check_meridian(meridian, tmp, results, verbose=False):
    """Every question through `meridian resolve` (the iterator, cold, a process per question)."""
    hints = os.path.join(tmp, "meridian-root.hints")
    with open(hints, "w") as f:
        f.write(ROOT_HINTS)
    for name, rdtype, rcode, expected in QUESTIONS:
        what = "meridian resolve: %s %s" % (name, rdtype)
        try:
            got_rcode, got, out = meridian_resolve(meridian, hints, name, rdtype)
        except subprocess.TimeoutExpired:
            results.append((False, "%s: no result within 60 s" % what))
            continue
        ok = got_rcode == rcode and (expected is None or got == sorted(expected))
        if rdtype == "TXT" and name.startswith("big.") and ok:
            ok = len(got) == 6
        shown = str(got) if verbose or not ok else ""
        if len(shown) > 200:
            shown = shown[:200] + "..."
        detail = "" if ok else "  expected %s %s\n%s" % (rcode, expected, out)
        results.append((ok, "%s -> %s %s%s" % (what, got_rcode, shown, detail)))


def start_meridian_server(meridian, tmp):
    """Meridian as a recursive server on a free loopback port, iterating from the tree's root
    hints (loopback clients may recurse: the default allow). Returns (Proc, port) or (Proc, None)
    when it does not become ready."""
    hints = os.path.join(tmp, "meridian-server-root.hints")
    with open(hints, "w") as f:
        f.write(ROOT_HINTS)
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    proc = Proc("meridian-server", [meridian, "--listen", "127.0.0.1:%d" % port, "--threads", "1",
                                    "--set", "recursion.enabled=true",
                                    "--set", "recursion.root_hints=" + hints], tmp)
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if "ready:" in open(proc.log_path, errors="replace").read():
            return proc, port
        if proc.proc.poll() is not None:
            break
        time.sleep(0.05)
    return proc, None


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--resolver", default="unbound", choices=["unbound"],
                    help="the resolver pointed at the tree (default unbound)")
    ap.add_argument("--meridian", metavar="PATH",
                    help="also resolve every question with `PATH resolve` (Meridian's iterator)")
    ap.add_argument("--keep", action="store_true", help="keep the temp dir")
    ap.add_argument("--verbose", action="store_true")
    args = ap.parse_args()
    if args.meridian:
        args.meridian = os.path.abspath(args.meridian)
    for b in (KNOTD, NSD, UNBOUND):
        if not os.access(b, os.X_OK):
            log("FAIL: %s not installed (scripts/deps.sh installs it)" % b)
            return 1
    tmp = tempfile.mkdtemp(prefix="meridian-tree-")
    tree = Tree(tmp)
    results = []
    resolver = None
    try:
        t0 = time.monotonic()
        tree.start()
        log("tree: %d authoritative servers and 3 broken ones up in %.1f s"
            % (len(AUTH), time.monotonic() - t0))
        # The tree itself: each root server refers com. to its TLD servers.
        for addr in ("127.53.0.1", "127.53.0.2"):
            r = ask(addr, 53, "www.example.com.", "A")
            ok = (not r.answer and not r.flags & dns.flags.AA and
                  any(rs.rdtype == dns.rdatatype.NS and rs.name.to_text() == "com."
                      for rs in r.authority))
            results.append((ok, "tree: root %s refers www.example.com to com." % addr))
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        s.close()
        resolver = Proc("unbound", unbound_conf(tmp, port), tmp)
        deadline = time.monotonic() + START_TIMEOUT
        up = False
        while time.monotonic() < deadline and not up:
            try:
                ask("127.0.0.1", port, "example.com.", "SOA", timeout=1.0)
                up = True
            except Exception:
                if resolver.proc.poll() is not None:
                    break
                time.sleep(0.1)
        results.append((up, "unbound answers on 127.0.0.1:%d" % port))
        if up:
            t1 = time.monotonic()
            check_answers("unbound cold", "127.0.0.1", port, results, args.verbose)
            t2 = time.monotonic()
            check_answers("unbound warm", "127.0.0.1", port, results, args.verbose)
            t3 = time.monotonic()
            log("unbound: %d questions cold in %.2f s, warm in %.3f s"
                % (len(QUESTIONS), t2 - t1, t3 - t2))
        if args.meridian:
            mproc, mport = start_meridian_server(args.meridian, tmp)
            try:
                results.append((mport is not None, "meridian (recursion on, iterating from the "
                                "tree's root hints) starts:\n" + mproc.tail()))
                if mport is not None:
                    t5 = time.monotonic()
                    check_answers("meridian server first", "127.0.0.1", mport, results,
                                  args.verbose)
                    t6 = time.monotonic()
                    check_answers("meridian server again", "127.0.0.1", mport, results,
                                  args.verbose)
                    log("meridian server: %d questions first in %.2f s, again in %.3f s"
                        % (len(QUESTIONS), t6 - t5, time.monotonic() - t6))
                    crash = re.search(r"AddressSanitizer|runtime error:|Segmentation",
                                      open(mproc.log_path, errors="replace").read())
                    results.append((not crash, "meridian server log: no crash report"))
            finally:
                mproc.stop()
                results.append((mproc.proc.returncode == 0,
                                "meridian server stops cleanly (exit %s)" % mproc.proc.returncode))
            t4 = time.monotonic()
            check_meridian(args.meridian, tmp, results, args.verbose)
            log("meridian resolve: %d questions, each cold in its own process, in %.2f s"
                % (len(QUESTIONS), time.monotonic() - t4))
    except RuntimeError as e:
        results.append((False, str(e)))
    finally:
        if resolver:
            resolver.stop()
        tree.stop()
        if args.keep:
            log("kept %s" % tmp)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    failed = [t for ok, t in results if not ok]
    for ok, text in results:
        if not ok or args.verbose:
            log("%s %s" % ("ok  " if ok else "FAIL", text))
    log("%d/%d checks passed" % (len(results) - len(failed), len(results)))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
