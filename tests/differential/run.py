#!/usr/bin/python3
"""Differential test: Meridian vs Knot DNS vs NSD.

Serves the zones in ./zones with knotd, nsd and (optionally) Meridian on
loopback, sends every query in ./queries.txt to each server and requires
Meridian's rcode, AA, TC, answer, authority and additional sections to
equal those of Knot OR those of NSD.  RRs are compared as sets (owner name
case-insensitive, type, class, TTL, rdata in canonical form); order is not
significant.  OPT (EDNS options) and TSIG are not compared.

Without --meridian (or if the binary is missing, or with --peers-only) only
Knot and NSD are compared and their differences are reported as
informational; the exit status is then 0.

Uses only the Python standard library and dnspython (Debian python3-dnspython).
"""

import argparse
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.opcode
import dns.rcode
import dns.rdataclass
import dns.rdatatype

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_ZONES_DIR = os.path.join(HERE, "zones")
DEFAULT_QUERIES = os.path.join(HERE, "queries.txt")

# zone origin -> file name in the zones directory
ZONES = [
    ("example.com", "example.com.zone"),
    ("child.example.com", "child.example.com.zone"),
    ("example.net", "example.net.zone"),
]

KNOTD = "/usr/sbin/knotd"
NSD = "/usr/sbin/nsd"

STARTUP_TIMEOUT = 10.0
STOP_TIMEOUT = 5.0
QUERY_TIMEOUT = 2.0
QUERY_TRIES = 3


# ---------------------------------------------------------------------------
# helpers

def log(msg):
    print(msg, flush=True)


def pick_port(taken):
    """Find a loopback port that is free for both UDP and TCP."""
    for _ in range(200):
        t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            t.bind(("127.0.0.1", 0))
            port = t.getsockname()[1]
            if port in taken:
                continue
            u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            try:
                u.bind(("127.0.0.1", port))
            except OSError:
                continue
            finally:
                u.close()
            taken.add(port)
            return port
        finally:
            t.close()
    raise RuntimeError("could not find a free loopback port")


class Query:
    def __init__(self, lineno, text, qname, qtype, flags):
        self.lineno = lineno
        self.text = text
        self.qname = qname
        self.qtype = qtype
        self.tcp = "tcp" in flags
        self.rd = "rd" in flags
        self.do = "do" in flags
        self.bufsize = None
        for f in flags:
            if f.startswith("bufsize="):
                self.bufsize = int(f.split("=", 1)[1])
        self.edns = (("edns" in flags or self.do or self.bufsize is not None)
                     and "noedns" not in flags)
        if self.bufsize is None:
            self.bufsize = 1232

    def make_wire(self):
        name = dns.name.from_text(self.qname)
        rdtype = dns.rdatatype.from_text(self.qtype)
        msg = dns.message.make_query(
            name, rdtype,
            use_edns=0 if self.edns else False,
            payload=self.bufsize,
            want_dnssec=self.do if self.edns else False)
        msg.flags = dns.flags.RD if self.rd else 0
        return msg.to_wire()


KNOWN_FLAGS = {"edns", "noedns", "tcp", "do", "rd"}


def load_queries(path):
    queries = []
    with open(path) as fh:
        for lineno, line in enumerate(fh, 1):
            # a token starting with '#' starts a comment
            toks = []
            for tok in line.split():
                if tok.startswith("#"):
                    break
                toks.append(tok)
            if not toks:
                continue
            if len(toks) < 2:
                raise SystemExit(f"{path}:{lineno}: expected 'qname qtype [flags]'")
            flags = toks[2:]
            for f in flags:
                if f not in KNOWN_FLAGS and not f.startswith("bufsize="):
                    raise SystemExit(f"{path}:{lineno}: unknown flag {f!r}")
            queries.append(Query(lineno, " ".join(toks), toks[0], toks[1], flags))
    return queries


# ---------------------------------------------------------------------------
# transport

def _recv_exact(sock, n):
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("connection closed")
        buf += chunk
    return buf


def send_query(port, wire, tcp, timeout=QUERY_TIMEOUT, tries=QUERY_TRIES):
    """Return raw response wire, or raise on failure."""
    qid = wire[:2]
    last_err = None
    for _ in range(tries):
        try:
            if tcp:
                with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
                    s.settimeout(timeout)
                    s.sendall(struct.pack("!H", len(wire)) + wire)
                    (ln,) = struct.unpack("!H", _recv_exact(s, 2))
                    resp = _recv_exact(s, ln)
                    if resp[:2] == qid:
                        return resp
                    last_err = "TCP response with wrong ID"
            else:
                with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                    s.settimeout(timeout)
                    s.connect(("127.0.0.1", port))
                    s.send(wire)
                    deadline = time.monotonic() + timeout
                    while True:
                        s.settimeout(max(0.01, deadline - time.monotonic()))
                        resp = s.recv(65535)
                        if resp[:2] == qid:
                            return resp
        except (socket.timeout, OSError, ConnectionError) as e:
            last_err = str(e) or e.__class__.__name__
    raise RuntimeError(f"no response ({last_err})")


# ---------------------------------------------------------------------------
# result normalisation

def rr_key(name, rdclass, rdtype, ttl, rdata):
    """Canonical, hashable representation of a single RR."""
    try:
        canon = rdata.to_digestable()
    except Exception:  # pragma: no cover - defensive
        canon = rdata.to_text().lower().encode()
    return (name.canonicalize().to_text(), int(rdclass), int(rdtype), int(ttl), canon)


def rr_text(name, rdclass, rdtype, ttl, rdata):
    return "%s %d %s %s %s" % (name.to_text(), ttl, dns.rdataclass.to_text(rdclass),
                               dns.rdatatype.to_text(rdtype), rdata.to_text())


class Result:
    """What we compare for one server's answer to one query."""

    def __init__(self, error=None, msg=None, size=0):
        self.error = error
        self.size = size
        self.rcode = self.aa = self.tc = None
        self.answer = {}
        self.authority = {}
        self.additional = {}
        if msg is not None:
            self.rcode = msg.rcode()
            self.aa = bool(msg.flags & dns.flags.AA)
            self.tc = bool(msg.flags & dns.flags.TC)
            self.answer = self._section(msg.answer)
            self.authority = self._section(msg.authority)
            # dnspython keeps OPT and TSIG out of msg.additional.
            self.additional = self._section(msg.additional)

    @staticmethod
    def _section(rrsets):
        out = {}
        for rrset in rrsets:
            for rd in rrset:
                key = rr_key(rrset.name, rrset.rdclass, rrset.rdtype, rrset.ttl, rd)
                out[key] = rr_text(rrset.name, rrset.rdclass, rrset.rdtype, rrset.ttl, rd)
        return out

    def comparable(self):
        if self.error:
            return ("error", self.error)
        return (self.rcode, self.aa, self.tc,
                frozenset(self.answer), frozenset(self.authority), frozenset(self.additional))

    def header(self):
        if self.error:
            return "ERROR: " + self.error
        flags = []
        if self.aa:
            flags.append("aa")
        if self.tc:
            flags.append("tc")
        return "rcode=%s flags=[%s] answer=%d authority=%d additional=%d (%d bytes)" % (
            dns.rcode.to_text(self.rcode), " ".join(flags), len(self.answer),
            len(self.authority), len(self.additional), self.size)

    def dump(self, indent="      "):
        lines = [self.header()]
        if not self.error:
            for title, sec in (("ANSWER", self.answer), ("AUTHORITY", self.authority),
                               ("ADDITIONAL", self.additional)):
                if sec:
                    lines.append(indent[:-2] + title + ":")
                    for t in sorted(sec.values(), key=str.lower):
                        lines.append(indent + t)
        return lines


def differences(a, b, a_name, b_name):
    """Human readable list of differences between two Results."""
    if a.error or b.error:
        return ["%s: %s / %s: %s" % (a_name, a.error or "response",
                                       b_name, b.error or "response")]
    out = []
    if a.rcode != b.rcode:
        out.append("rcode %s vs %s" % (dns.rcode.to_text(a.rcode), dns.rcode.to_text(b.rcode)))
    if a.aa != b.aa:
        out.append("AA %d vs %d" % (a.aa, b.aa))
    if a.tc != b.tc:
        out.append("TC %d vs %d" % (a.tc, b.tc))
    for title, sa, sb in (("answer", a.answer, b.answer),
                          ("authority", a.authority, b.authority),
                          ("additional", a.additional, b.additional)):
        only_a = [sa[k] for k in sa if k not in sb]
        only_b = [sb[k] for k in sb if k not in sa]
        if only_a or only_b:
            out.append("%s section differs:" % title)
            for t in sorted(only_a, key=str.lower):
                out.append("  only %-10s %s" % (a_name + ":", t))
            for t in sorted(only_b, key=str.lower):
                out.append("  only %-10s %s" % (b_name + ":", t))
    return out


def what_differs(a, b):
    """Short list of the compared components that differ."""
    if a.error or b.error:
        return ["error"]
    out = []
    for label, x, y in (("rcode", a.rcode, b.rcode), ("AA", a.aa, b.aa), ("TC", a.tc, b.tc),
                        ("answer", set(a.answer), set(b.answer)),
                        ("authority", set(a.authority), set(b.authority)),
                        ("additional", set(a.additional), set(b.additional))):
        if x != y:
            out.append(label)
    return out


def ask(server, query):
    if server.proc.poll() is not None:
        return Result(error="server not running (exited with status %s)"
                      % server.proc.returncode)
    port = server.port
    try:
        wire = send_query(port, query.make_wire(), query.tcp)
    except Exception as e:
        return Result(error=str(e))
    try:
        msg = dns.message.from_wire(wire, one_rr_per_rrset=True,
                                    ignore_trailing=True)
    except Exception as e:
        return Result(error="unparseable response (%d bytes): %s" % (len(wire), e))
    # RFC 6891 6.2.5: EDNS payload values below 512 are treated as 512.
    limit = max(512, query.bufsize) if query.edns else 512
    if not query.tcp and len(wire) > limit:
        # Oversized UDP response: flag it as an error so it never matches.
        return Result(error="UDP response of %d bytes exceeds the client's limit %d"
                      % (len(wire), limit))
    return Result(msg=msg, size=len(wire))


# ---------------------------------------------------------------------------
# servers

class Server:
    def __init__(self, name, port, argv, logpath, cwd, strict_ready=True):
        # strict_ready: only a NOERROR answer to the SOA probe counts as ready
        # (Knot may SERVFAIL until its zones are loaded); otherwise any
        # response does, so a wrong SOA answer shows up as a test failure.
        self.strict_ready = strict_ready
        self.name = name
        self.port = port
        self.argv = argv
        self.logpath = logpath
        self.cwd = cwd
        self.proc = None
        self.logfh = None

    def start(self):
        self.logfh = open(self.logpath, "wb")
        self.proc = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL,
                                     stdout=self.logfh, stderr=subprocess.STDOUT,
                                     cwd=self.cwd)

    def log_tail(self, n=40):
        try:
            with open(self.logpath, "rb") as fh:
                lines = fh.read().decode("utf-8", "replace").splitlines()
            return "\n".join("    | " + l for l in lines[-n:])
        except OSError:
            return "    | (no log)"

    def wait_ready(self, timeout=STARTUP_TIMEOUT):
        wire = dns.message.make_query("example.com.", "SOA", use_edns=False)
        wire.flags = 0
        wire = wire.to_wire()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("%s exited with status %s during startup\n%s"
                                   % (self.name, self.proc.returncode, self.log_tail()))
            try:
                resp = send_query(self.port, wire, False, timeout=0.2, tries=1)
                msg = dns.message.from_wire(resp)
                if not self.strict_ready or (msg.rcode() == dns.rcode.NOERROR
                                             and msg.answer):
                    return
            except Exception:
                pass
            time.sleep(0.1)
        raise RuntimeError("%s did not answer a SOA query within %.0f s\n%s"
                           % (self.name, timeout, self.log_tail()))

    def stop(self):
        if self.proc is None:
            return
        try:
            if self.proc.poll() is None:
                try:
                    os.kill(self.proc.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
                try:
                    self.proc.wait(STOP_TIMEOUT)
                except subprocess.TimeoutExpired:
                    log("warning: %s (pid %d) did not exit after SIGTERM, killing"
                        % (self.name, self.proc.pid))
                    try:
                        os.kill(self.proc.pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
                    self.proc.wait(STOP_TIMEOUT)
        finally:
            if self.logfh:
                self.logfh.close()
                self.logfh = None


def write_knot_conf(tmp, port, zonesdir):
    rundir = os.path.join(tmp, "knot-run")
    storage = os.path.join(tmp, "knot-storage")
    os.makedirs(rundir)
    os.makedirs(storage)
    zones = "".join('  - domain: %s\n    file: "%s"\n' % (z, os.path.join(zonesdir, f))
                    for z, f in ZONES)
    conf = f'''server:
    rundir: "{rundir}"
    pidfile: "{os.path.join(rundir, 'knot.pid')}"
    listen: 127.0.0.1@{port}
    udp-workers: 1
    tcp-workers: 1
    background-workers: 1

database:
    storage: "{storage}"

control:
    listen: "{os.path.join(rundir, 'knot.sock')}"

log:
  - target: stderr
    any: info

template:
  - id: default
    storage: "{zonesdir}"
    zonefile-sync: -1
    zonefile-load: whole
    journal-content: none
    semantic-checks: off

zone:
{zones}'''
    path = os.path.join(tmp, "knot.conf")
    with open(path, "w") as fh:
        fh.write(conf)
    return path


def write_nsd_conf(tmp, port, zonesdir):
    nsddir = os.path.join(tmp, "nsd")
    os.makedirs(nsddir)
    zones = "".join('zone:\n    name: "%s"\n    zonefile: "%s"\n\n' % (z, f)
                    for z, f in ZONES)
    conf = f'''server:
    ip-address: 127.0.0.1@{port}
    port: {port}
    do-ip4: yes
    do-ip6: no
    username: ""
    chroot: ""
    zonesdir: "{zonesdir}"
    database: ""
    pidfile: "{os.path.join(nsddir, 'nsd.pid')}"
    xfrdfile: "{os.path.join(nsddir, 'xfrd.state')}"
    xfrdir: "{nsddir}"
    zonelistfile: "{os.path.join(nsddir, 'zone.list')}"
    server-count: 1
    verbosity: 1
    hide-version: yes
    rrl-ratelimit: 0

remote-control:
    control-enable: no

{zones}'''
    path = os.path.join(tmp, "nsd.conf")
    with open(path, "w") as fh:
        fh.write(conf)
    return path


# ---------------------------------------------------------------------------
# main

def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--meridian", metavar="PATH", help="Meridian server binary")
    ap.add_argument("--peers-only", action="store_true",
                    help="only compare Knot and NSD (informational, exit 0)")
    ap.add_argument("--verbose", action="store_true",
                    help="print every query and every server's answer")
    ap.add_argument("--queries", default=DEFAULT_QUERIES, help=argparse.SUPPRESS)
    ap.add_argument("--zones", default=DEFAULT_ZONES_DIR, help=argparse.SUPPRESS)
    ap.add_argument("--keep-tmp", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()

    queries = load_queries(args.queries)

    use_meridian = bool(args.meridian) and not args.peers_only
    if use_meridian and not (os.path.isfile(args.meridian)
                             and os.access(args.meridian, os.X_OK)):
        log("Meridian binary %r not found or not executable: "
            "comparing Knot vs NSD only" % args.meridian)
        use_meridian = False
    if not use_meridian:
        log("peers-only mode: Knot vs NSD differences are informational")

    for b in (KNOTD, NSD):
        if not os.access(b, os.X_OK):
            log("error: %s not found" % b)
            return 2

    tmp = tempfile.mkdtemp(prefix="meridian-diff-")
    servers = []
    try:
        zonesdir = os.path.join(tmp, "zones")
        shutil.copytree(args.zones, zonesdir)
        taken = set()
        knot_port = pick_port(taken)
        nsd_port = pick_port(taken)
        mer_port = pick_port(taken) if use_meridian else None

        knot_conf = write_knot_conf(tmp, knot_port, zonesdir)
        nsd_conf = write_nsd_conf(tmp, nsd_port, zonesdir)
        servers.append(Server("knot", knot_port, [KNOTD, "-c", knot_conf],
                              os.path.join(tmp, "knot.log"), tmp))
        servers.append(Server("nsd", nsd_port, [NSD, "-d", "-c", nsd_conf],
                              os.path.join(tmp, "nsd.log"), tmp))
        if use_meridian:
            argv = [os.path.abspath(args.meridian), "--listen", "127.0.0.1:%d" % mer_port,
                    "--threads", "1"]
            for z, f in ZONES:
                argv += ["--zone", "%s=%s" % (z, os.path.join(zonesdir, f))]
            servers.append(Server("meridian", mer_port, argv,
                                  os.path.join(tmp, "meridian.log"), tmp,
                                  strict_ready=False))

        for s in servers:
            if args.verbose:
                log("starting %s on 127.0.0.1:%d: %s" % (s.name, s.port, " ".join(s.argv)))
            s.start()
        for s in servers:
            s.wait_ready()
        if args.verbose:
            log("all servers ready")

        failures = 0
        peer_diffs = 0
        fail_list = []   # (label, {peer: [components that differ]})
        diff_list = []   # (label, [components where knot and nsd differ])
        matched = {"knot": 0, "nsd": 0, "both": 0}
        for i, q in enumerate(queries, 1):
            res = {s.name: ask(s, q) for s in servers}
            knot, nsd = res["knot"], res["nsd"]
            peers_agree = knot.comparable() == nsd.comparable()
            label = "#%d (line %d): %s" % (i, q.lineno, q.text)
            if not peers_agree:
                peer_diffs += 1
                diff_list.append((label, what_differs(knot, nsd)))

            if use_meridian:
                mer = res["meridian"]
                mk = mer.comparable() == knot.comparable() and not knot.error
                mn = mer.comparable() == nsd.comparable() and not nsd.error
                if mk and mn:
                    matched["both"] += 1
                elif mk:
                    matched["knot"] += 1
                elif mn:
                    matched["nsd"] += 1
                ok = mk or mn
                if not ok:
                    failures += 1
                    fail_list.append((label, {p: what_differs(mer, res[p])
                                              for p in ("knot", "nsd")}))
                if not ok or args.verbose:
                    log("%s %s" % ("FAIL" if not ok else "ok  ", label))
                    for name in ("meridian", "knot", "nsd"):
                        lines = res[name].dump()
                        log("  %-9s %s" % (name + ":", lines[0]))
                        for l in lines[1:]:
                            log("    " + l)
                    if not ok:
                        for peer in ("knot", "nsd"):
                            log("  meridian vs %s:" % peer)
                            for d in differences(mer, res[peer], "meridian", peer):
                                log("    " + d)
                    log("")
            else:
                if not peers_agree or args.verbose:
                    log("%s %s" % ("DIFF" if not peers_agree else "same", label))
                    for name in ("knot", "nsd"):
                        lines = res[name].dump()
                        log("  %-6s %s" % (name + ":", lines[0]))
                        for l in lines[1:]:
                            log("    " + l)
                    if not peers_agree:
                        log("  knot vs nsd:")
                        for d in differences(knot, nsd, "knot", "nsd"):
                            log("    " + d)
                    log("")
                # peer errors are real problems even in informational mode
                for name in ("knot", "nsd"):
                    if res[name].error:
                        log("warning: %s: %s: %s" % (label, name, res[name].error))

        for s in servers:
            if s.proc.poll() is not None:
                log("warning: %s exited during the test (status %s)\n%s"
                    % (s.name, s.proc.returncode, s.log_tail()))
                if s.name == "meridian":
                    failures = failures or 1

        if use_meridian and failures:
            log("last lines of the meridian log:")
            log(servers[-1].log_tail(20))
        log("=" * 72)
        if diff_list and (not use_meridian or args.verbose):
            log("Knot vs NSD differences (informational):")
            for label, what in diff_list:
                log("  %s  [%s]" % (label, ", ".join(what)))
        if fail_list:
            log("FAILED queries (what differs from knot / from nsd):")
            for label, what in fail_list:
                log("  %s  [knot: %s] [nsd: %s]" % (label, ", ".join(what["knot"]),
                                                    ", ".join(what["nsd"])))
        log("%d queries; Knot and NSD differ on %d" % (len(queries), peer_diffs))
        if use_meridian:
            log("Meridian: %d passed (%d match both peers, %d only Knot, %d only NSD), "
                "%d FAILED" % (len(queries) - failures, matched["both"], matched["knot"],
                               matched["nsd"], failures))
            return 1 if failures else 0
        return 0
    except RuntimeError as e:
        log("error: %s" % e)
        return 2
    finally:
        for s in reversed(servers):
            try:
                s.stop()
            except Exception as e:  # keep stopping the others
                log("warning: stopping %s: %s" % (s.name, e))
        if args.keep_tmp:
            log("temp dir kept: %s" % tmp)
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
