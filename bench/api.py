#!/usr/bin/python3
"""Management API benchmark: changes per second beside PowerDNS, and the query path under changes.

Two parts (--parts), each server started by this script with its own configuration in a temporary
directory, on free loopback ports, pinned to CPU 0 (the clients run here, on CPU 1), stopped by PID:

  api    PowerDNS API PATCHes per second against Meridian (control.state_dir: the journal entry
         fdatasync'ed before each 204, the zone file written back) and PowerDNS 4.7 (gsqlite3, WAL,
         synchronous=FULL: a commit is fsync'ed), same zone, same changes, in the same run:
           single   one client, one rrset (one A record) per PATCH
           clients  --clients concurrent clients (own connection each), one rrset per PATCH
           batch    one client, --batch rrsets per PATCH
         After every 204 the changed names are queried over DNS (every --check-every-th change;
         default all) and a change counts only when DNS serves its new address.  Printed: changes/s
         per server and the ratio, PATCH p50/p99 latency, server CPU per change.
  query  Meridian alone (one worker): dnsperf on a zone of --names hosts, CPU µs per query from
         /proc (the worker thread, and the whole process) and lost queries, with no changes, while
         a client PATCHes the queried zone --rate times a second, and while it PATCHes another
         zone; ratios against the run without changes.

Benchmarks measure, they assert nothing about time.  The exit status is 1 when a server failed to
start or answer, or a checked change was not served.  See bench/README.md ("API run").
Standard library and dnspython (Debian's python3-dnspython, run with /usr/bin/python3).
"""

import argparse
import http.client
import ipaddress
import itertools
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.dont_write_bytecode = True  # keep bench/ and tests/ free of __pycache__
sys.path.insert(0, HERE)
import gen_zone  # noqa: E402
import run as bench  # noqa: E402  (Running, free_port, CPU accounting, dnsperf)
# After bench's run.py is imported: tests/integration has a run.py of its own.
sys.path.append(os.path.join(ROOT, "tests", "integration"))
import common  # noqa: E402  (api_config: Meridian's configuration as the API tests write it)
import pdns_api  # noqa: E402  (PdnsInstance: the private pdns_server the replay test starts)

import dns.exception  # noqa: E402
import dns.message  # noqa: E402
import dns.rdatatype  # noqa: E402
import dns.zone  # noqa: E402

ZONE = bench.ZONE                 # the queried and changed zone, gen_zone.py's layout
OTHER = "other.test"              # the same layout under another name (query part)
SECRET = "api-bench-secret-3f9c1e"
ZPATH = "/api/v1/servers/localhost/zones/%s."
# Changed addresses count up from 10.128.0.0; gen_zone.py's hosts have 10.0.0.0/9, so a stale
# answer never carries the address a change set.
CHANGE_BASE = int(ipaddress.IPv4Address("10.128.0.0"))
CHANGE_SPACE = 1 << 23
TTL = 3600
HTTP_TIMEOUT = 30.0
DNS_TIMEOUT = 2.0
# PowerDNS takes request bodies up to 2 MB (webserver-max-bodysize); its zone is loaded in PATCHes
# of this many rrsets (about 60 kB each).
LOAD_CHUNK = 500
WORKER_THREAD = "meridian-udp"    # the name server/server.cc gives each UDP worker thread
API_SERVERS = ["meridian", "pdns"]
MODES = ["single", "clients", "batch"]
CONDITIONS = ["none", "same", "other"]


def log(msg):
    bench.log(msg)


# --------------------------------------------------------------------------- zones

def write_zones(data, names):
    """gen_zone.py's bench.test zone with `names` hosts, its hits.txt, and the same zone as
    other.test.  Returns {zone: file}."""
    queries = max(20000, names * 4)
    gen_zone.generate(data, names=names, queries=queries)
    src = os.path.join(data, ZONE + ".zone")
    with open(src) as f:
        text = f.read()
    other = os.path.join(data, OTHER + ".zone")
    with open(other, "w") as f:
        f.write(text.replace(ZONE + ".", OTHER + "."))
    return {ZONE: src, OTHER: other}


def zone_rrsets(path, origin):
    """The zone file's rrsets as PowerDNS API REPLACE changes (AAAA in RFC 5952 form, which
    PowerDNS wants: dnspython writes 2001:db8::0:0)."""
    z = dns.zone.from_file(path, origin=origin + ".", relativize=False, check_origin=True)
    out = []
    for name, node in z.nodes.items():
        for rds in node.rdatasets:
            texts = [rd.to_text() for rd in rds]
            if rds.rdtype == dns.rdatatype.AAAA:
                texts = [ipaddress.IPv6Address(t).compressed for t in texts]
            out.append({"name": name.to_text(), "type": dns.rdatatype.to_text(rds.rdtype),
                        "ttl": rds.ttl, "changetype": "REPLACE",
                        "records": [{"content": t, "disabled": False} for t in texts]})
    return out


# --------------------------------------------------------------------------- HTTP and DNS clients

class Api:
    """One client connection to a server's API (HTTP/1.1 keep-alive; http.client opens a new
    connection by itself when the server closed the last one)."""

    def __init__(self, target):
        self.target = target
        self.conn = http.client.HTTPConnection("127.0.0.1", target.api_port, timeout=HTTP_TIMEOUT)

    def request(self, method, path, body=None):
        """(status, body text, seconds)."""
        data = json.dumps(body).encode() if body is not None else None
        headers = {"X-API-Key": self.target.key, "Accept": "application/json"}
        if data is not None:
            headers["Content-Type"] = "application/json"
        t0 = time.perf_counter()
        for attempt in (1, 2):
            try:
                self.conn.request(method, path, body=data, headers=headers)
                resp = self.conn.getresponse()
                text = resp.read().decode("utf-8", "replace")
                return resp.status, text, time.perf_counter() - t0
            except (OSError, http.client.HTTPException) as e:
                # A kept-alive connection the server closed meanwhile: once more on a new one
                # (a REPLACE is idempotent).
                self.conn.close()
                if attempt == 2:
                    return None, repr(e), time.perf_counter() - t0

    def close(self):
        self.conn.close()


def replace_a(zone, name, addr):
    return {"name": "%s.%s." % (name, zone), "type": "A", "ttl": TTL, "changetype": "REPLACE",
            "records": [{"content": addr, "disabled": False}]}


def served(port, checks):
    """How many of checks ((fqdn, address), ...) DNS serves as the only A record: the queries go
    out at once on one UDP socket and are matched by ID (a burst, so checking a batch of 100
    costs about one round trip)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(DNS_TIMEOUT)
    want = {}
    try:
        for fqdn, addr in checks:
            q = dns.message.make_query(fqdn, "A")
            q.flags = 0  # RD clear: an authoritative question
            while q.id in want:
                q.id = (q.id + 1) & 0xFFFF
            want[q.id] = addr
            s.sendto(q.to_wire(), ("127.0.0.1", port))
        ok = 0
        deadline = time.monotonic() + DNS_TIMEOUT
        while want and time.monotonic() < deadline:
            try:
                m = dns.message.from_wire(s.recv(4096))
            except socket.timeout:
                break
            except dns.exception.DNSException:
                continue
            addr = want.pop(m.id, None)
            if addr is None:
                continue
            got = [rd.to_text() for rrs in m.answer if rrs.rdtype == dns.rdatatype.A for rd in rrs]
            ok += got == [addr]
        return ok
    finally:
        s.close()


# --------------------------------------------------------------------------- servers

class Target:
    """A started server: its API port and key, DNS port, root PID, stop()."""
    name = "?"

    def __init__(self, api_port, key, dns_port, proc, stop):
        self.api_port, self.key, self.dns_port, self.proc, self._stop = (
            api_port, key, dns_port, proc, stop)
        self.pid = proc.pid

    def alive(self):
        return self.proc.poll() is None

    def stop(self):
        self._stop()


def wait_tcp(port, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return True
        except OSError:
            time.sleep(0.05)
    return False


class MeridianServer:
    """build/meridian with control.state_dir, one read-write key and the zones as configured zone
    files (copied to the work dir: the API writes them back), one worker, pinned by bench.Running."""
    name = "meridian"

    def __init__(self, args):
        self.args = args
        self.binary = os.path.abspath(args.meridian)
        self.key_hash = None

    def available(self):
        if not os.access(self.binary, os.X_OK):
            return "binary not found at %s (build it first, or pass --meridian PATH)" % self.binary
        return None

    def ready(self, port):
        return bench.soa_probe(port)

    def start(self, workdir, zonefiles):
        if self.key_hash is None:
            out = subprocess.run([self.binary, "api", "hash-key", SECRET], capture_output=True,
                                 text=True, timeout=30)
            if out.returncode != 0:
                raise bench.BenchError("meridian api hash-key failed: %s" % out.stderr.strip())
            self.key_hash = out.stdout.strip()
        dns_port = bench.free_port()
        api_port = bench.free_port()
        for zone, src in zonefiles.items():
            shutil.copyfile(src, os.path.join(workdir, zone + ".zone"))
        conf = os.path.join(workdir, "meridian.toml")
        common.write(conf, common.api_config(api_port, "bench", self.key_hash,
                                             [(z, z + ".zone") for z in zonefiles]))
        cmd = [self.binary, "--config", conf, "--listen", "127.0.0.1:%d" % dns_port,
               "--threads", "1"]
        run = bench.Running(self, workdir, dns_port, cmd, self.args.start_timeout)
        if not wait_tcp(api_port, self.args.start_timeout):
            run.stop()
            raise bench.BenchError("meridian's API did not listen on %d\n%s"
                                   % (api_port, run.log_tail()))
        return Target(api_port, SECRET, dns_port, run.proc, run.stop)


class PdnsServer:
    """pdns_server 4.7 with gsqlite3, started by tests/integration/pdns_api.py's PdnsInstance (the
    replay test's setup: Debian's schema, API on loopback, caches off so a query right after a
    change sees it), its threads then pinned to CPU 0; the zones are created through its API."""
    name = "pdns"

    def __init__(self, args):
        self.args = args

    def available(self):
        for tool in ("pdns_server", "sqlite3"):
            if not shutil.which(tool):
                return "%s not found (scripts/deps.sh: pdns-server, pdns-backend-sqlite3, sqlite3)" % tool
        if not os.path.exists("/usr/share/pdns-backend-sqlite3/schema/schema.sqlite3.sql"):
            return "pdns-backend-sqlite3 not installed"
        return None

    def start(self, workdir, zonefiles):
        ctx = type("Ctx", (), {"ports": set()})()
        inst = pdns_api.PdnsInstance(ctx, workdir)
        if not inst.start():
            inst.stop()
            raise bench.BenchError("pdns_server did not start\n%s" % inst.tail())
        target = Target(inst.api_port, pdns_api.KEY, inst.dns_port, inst.proc, inst.stop)
        try:
            pin_threads(inst.proc.pid, bench.SERVER_CPU)
            api = Api(target)
            for zone, path in zonefiles.items():
                rrsets = zone_rrsets(path, zone)
                apex = [r for r in rrsets if r["name"] == zone + "." and r["type"] in ("SOA", "NS")]
                rest = [r for r in rrsets if r not in apex]
                st, text, _ = api.request("POST", "/api/v1/servers/localhost/zones",
                                          {"name": zone + ".", "kind": "Native", "nameservers": [],
                                           "rrsets": [{k: v for k, v in r.items() if k != "changetype"}
                                                      for r in apex]})
                if st != 201:
                    raise bench.BenchError("pdns: POST zone %s: %s %s" % (zone, st, text[:300]))
                for i in range(0, len(rest), LOAD_CHUNK):
                    st, text, _ = api.request("PATCH", ZPATH % zone,
                                              {"rrsets": rest[i:i + LOAD_CHUNK]})
                    if st != 204:
                        raise bench.BenchError("pdns: loading %s: %s %s" % (zone, st, text[:300]))
            api.close()
            if not bench.soa_probe(inst.dns_port, timeout=2):
                raise bench.BenchError("pdns does not answer SOA %s\n%s" % (ZONE, inst.tail()))
            pin_threads(inst.proc.pid, bench.SERVER_CPU)
        except BaseException:
            inst.stop()
            raise
        return target


SERVERS = {"meridian": MeridianServer, "pdns": PdnsServer}


# --------------------------------------------------------------------------- /proc

def pin_threads(pid, cpu):
    """Pins every thread of pid (PdnsInstance starts pdns_server itself, without taskset; threads
    it starts later inherit the pin)."""
    try:
        tids = os.listdir("/proc/%d/task" % pid)
    except OSError:
        return
    for tid in tids:
        try:
            os.sched_setaffinity(int(tid), {int(cpu)})
        except OSError:
            pass


def thread_ticks(pid, comm):
    """(utime, stime) ticks summed over pid's threads named comm."""
    user = system = 0
    try:
        tids = os.listdir("/proc/%d/task" % pid)
    except OSError:
        return 0, 0
    for tid in tids:
        try:
            with open("/proc/%d/task/%s/stat" % (pid, tid)) as f:
                data = f.read()
        except OSError:
            continue
        if data[data.index("(") + 1:data.rindex(")")] != comm:
            continue
        fields = data[data.rindex(")") + 2:].split()
        user += int(fields[11])
        system += int(fields[12])
    return user, system


def tree_cpu_seconds(before, after):
    return sum(bench.cpu_delta_seconds(before, after))


# --------------------------------------------------------------------------- change clients

class Changes:
    """What a set of change clients did: PATCHes by status, changes acknowledged, checked, served,
    per-PATCH latencies.  Counters are updated under a lock (several client threads)."""

    def __init__(self):
        self.lock = threading.Lock()
        self.patches = 0
        self.statuses = {}
        self.acked = 0     # rrsets in PATCHes answered 204
        self.checked = 0   # of those, queried over DNS after the 204
        self.served = 0    # of the checked, DNS served the new address
        self.latencies = []
        self.errors = []
        self.crashed = 0   # client threads that stopped on an exception
        self.refused_served = 0  # changes of PATCHes not answered 204 that DNS serves anyway

    def add(self, status, seconds, text, n, checked, ok):
        with self.lock:
            self.patches += 1
            self.statuses[status] = self.statuses.get(status, 0) + 1
            self.latencies.append(seconds)
            if status == 204:
                self.acked += n
                self.checked += checked
                self.served += ok
                return
            self.refused_served += ok
            if len(self.errors) < 5:
                self.errors.append("%s %s" % (status, (text or "")[:200]))


class NameCursor:
    """Client c of n changes hosts c, c+n, c+2n, ... of the zone in turn, so concurrent clients never
    touch the same rrset."""

    def __init__(self, names, client, clients):
        self.hosts = list(range(client, names, clients))
        self.pos = 0

    def take(self, k):
        out = []
        for _ in range(k):
            out.append("host%d" % self.hosts[self.pos])
            self.pos = (self.pos + 1) % len(self.hosts)
        return out


def change_once(api, target, zone, cursor, seq, batch, check_every, result):
    """One PATCH of `batch` A rrsets with fresh addresses; after a 204 the changes picked for
    checking are queried over DNS."""
    hosts = cursor.take(batch)
    changes = []
    for h in hosts:
        n = next(seq)
        changes.append((n, h, str(ipaddress.IPv4Address(CHANGE_BASE + n % CHANGE_SPACE))))
    status, text, secs = api.request("PATCH", ZPATH % zone,
                                     {"rrsets": [replace_a(zone, h, a) for _, h, a in changes]})
    picks = [("%s.%s." % (h, zone), a) for n, h, a in changes if n % check_every == 0]
    # After a refusal too: a change refused but served anyway is a finding of its own.
    ok = served(target.dns_port, picks) if picks and status is not None else 0
    result.add(status, secs, text, batch, len(picks), ok)


class Pacer:
    """Start times one every 1/rate s, shared by the clients of a stream: a client takes the next
    one when it is free, so a slow PATCH does not hold the stream back while another client is
    idle.  Slots missed because every client was busy are dropped, not caught up in a burst."""

    def __init__(self, rate):
        self.interval = 1.0 / rate
        self.next = time.monotonic()
        self.lock = threading.Lock()

    def wait(self):
        with self.lock:
            slot = max(self.next, time.monotonic())
            self.next = slot + self.interval
        delay = slot - time.monotonic()
        if delay > 0:
            time.sleep(delay)


def run_clients(target, zone, names, clients, batch, duration, check_every, seq, rate=None,
                stop=None):
    """clients threads changing the zone for duration seconds (or until stop is set), each in a
    loop, back to back, or (rate) together one PATCH every 1/rate s (the query part's stream).
    Returns (Changes, wall seconds)."""
    result = Changes()
    deadline = time.monotonic() + duration
    pacer = Pacer(rate) if rate else None

    def loop(c):
        api = Api(target)
        cursor = NameCursor(names, c, clients)
        try:
            while time.monotonic() < deadline and not (stop and stop.is_set()):
                if pacer:
                    pacer.wait()
                    if stop and stop.is_set():
                        break
                change_once(api, target, zone, cursor, seq, batch, check_every, result)
        except Exception as e:  # noqa: BLE001 - reported with the figures, not swallowed
            with result.lock:
                result.errors.append("client %d stopped: %r" % (c, e))
                result.crashed += 1
        finally:
            api.close()

    threads = [threading.Thread(target=loop, args=(c,), daemon=True) for c in range(clients)]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return result, time.monotonic() - t0


def percentile(values, p):
    if not values:
        return float("nan")
    v = sorted(values)
    return v[min(len(v) - 1, int(round(p / 100.0 * (len(v) - 1))))]


def change_summary(ch, wall):
    counted = ch.served if ch.checked == ch.acked else ch.acked
    return {"patches": ch.patches, "statuses": {str(k): v for k, v in ch.statuses.items()},
            "acked": ch.acked, "checked": ch.checked, "served": ch.served,
            "not_served": ch.checked - ch.served, "counted": counted, "wall": wall,
            "changes_per_s": counted / wall if wall else 0.0,
            "patches_per_s": ch.patches / wall if wall else 0.0,
            "p50_ms": percentile(ch.latencies, 50) * 1e3, "p99_ms": percentile(ch.latencies, 99) * 1e3,
            "errors": ch.errors, "crashed": ch.crashed, "refused_served": ch.refused_served}


# --------------------------------------------------------------------------- the api part

def mode_shape(args, mode):
    """(clients, rrsets per PATCH) of a mode."""
    return {"single": (1, 1), "clients": (args.clients, 1), "batch": (1, args.batch)}[mode]


def measure_api(args, server, rnd, zonefiles, workroot):
    workdir = tempfile.mkdtemp(prefix="api-%s-r%d-" % (server.name, rnd), dir=workroot)
    target = server.start(workdir, {ZONE: zonefiles[ZONE]})
    results = {}
    seq = itertools.count()
    try:
        log("  %-8s up: API 127.0.0.1:%d, DNS %d (pid %d)"
            % (server.name, target.api_port, target.dns_port, target.pid))
        if args.warmup > 0:
            run_clients(target, ZONE, args.names, 1, 1, args.warmup, args.check_every, seq)
        for mode in MODES:
            clients, batch = mode_shape(args, mode)
            pin_threads(target.pid, bench.SERVER_CPU)
            before = bench.tree_cpu(target.pid)
            ch, wall = run_clients(target, ZONE, args.names, clients, batch, args.duration,
                                   args.check_every, seq)
            after = bench.tree_cpu(target.pid)
            r = change_summary(ch, wall)
            r["cpu_us_per_change"] = (tree_cpu_seconds(before, after) * 1e6 / ch.acked
                                      if ch.acked else float("nan"))
            results[mode] = r
            log("    %-7s %8.1f changes/s  %7.1f PATCH/s  p50 %6.2f ms  p99 %7.2f ms  "
                "cpu %7.0f us/change  checked %d, not served %d, statuses %s"
                % (mode, r["changes_per_s"], r["patches_per_s"], r["p50_ms"], r["p99_ms"],
                   r["cpu_us_per_change"], r["checked"], r["not_served"], r["statuses"]))
            if not target.alive():
                raise bench.BenchError("%s died during the run" % server.name)
    finally:
        target.stop()
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    return results


# --------------------------------------------------------------------------- the query part

def measure_query(args, dnsperf_args, server, rnd, zonefiles, data, workroot):
    """One Meridian (one worker) serving both zones; dnsperf hits on bench.test under each
    condition (order alternating by round)."""
    workdir = tempfile.mkdtemp(prefix="query-r%d-" % rnd, dir=workroot)
    target = server.start(workdir, zonefiles)
    qfile = os.path.join(data, "hits.txt")
    order = CONDITIONS if rnd % 2 == 0 else list(reversed(CONDITIONS))
    results = {}
    seq = itertools.count()
    try:
        log("  meridian up: API 127.0.0.1:%d, DNS %d (pid %d); conditions %s"
            % (target.api_port, target.dns_port, target.pid, ", ".join(order)))
        for cond in order:
            if args.warmup > 0:
                bench.run_dnsperf(dnsperf_args, target.dns_port, qfile, args.warmup,
                                  os.path.join(workdir, "warmup-%s.txt" % cond))
            stop = threading.Event()
            box = {}
            changer = None
            if cond != "none":
                zone = ZONE if cond == "same" else OTHER

                def stream(zone=zone):
                    box["changes"] = run_clients(target, zone, args.names, args.stream_clients,
                                                 1, args.duration + 60, 1, seq, rate=args.rate,
                                                 stop=stop)
                changer = threading.Thread(target=stream, daemon=True)
            tree0, worker0 = bench.tree_cpu(target.pid), thread_ticks(target.pid, WORKER_THREAD)
            if changer:
                changer.start()
            try:
                r = bench.run_dnsperf(dnsperf_args, target.dns_port, qfile, args.duration,
                                      os.path.join(workdir, "dnsperf-%s.txt" % cond))
            finally:
                stop.set()
                if changer:
                    changer.join()
            tree1, worker1 = bench.tree_cpu(target.pid), thread_ticks(target.pid, WORKER_THREAD)
            if not target.alive():
                raise bench.BenchError("meridian died during the run")
            per_q = 1e6 / r["completed"] if r["completed"] else float("nan")
            r["worker_us_per_q"] = ((worker1[0] - worker0[0]) + (worker1[1] - worker0[1])) \
                / bench.CLK_TCK * per_q
            r["process_us_per_q"] = tree_cpu_seconds(tree0, tree1) * per_q
            r["problem"] = bench.rcode_problem("hits", r["rcodes"], r["completed"])
            if "changes" in box:
                r["changes"] = change_summary(*box["changes"])
            results[cond] = r
            c = r.get("changes")
            log("    %-5s qps %9.0f  worker %6.2f us/q  process %6.2f us/q  lost %d%s%s"
                % (cond, r["qps"], r["worker_us_per_q"], r["process_us_per_q"], r["lost"],
                   ("  changes %.1f/s, checked %d, not served %d, p50 %.2f ms, p99 %.2f ms"
                    % (c["changes_per_s"], c["checked"], c["not_served"], c["p50_ms"],
                       c["p99_ms"])) if c else "",
                   ("  !! " + r["problem"]) if r["problem"] else ""))
    finally:
        target.stop()
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    return results


# --------------------------------------------------------------------------- report

def med(rows, key):
    vals = [r[key] for r in rows if r.get(key) == r.get(key)]  # drops NaN
    return statistics.median(vals) if vals else float("nan")


def ratio(a, b):
    return "%.2fx" % (a / b) if a == a and b == b and b else "n/a"


def report_api(args, names, api_results):
    out = ["", "== API changes (PATCH of zone %s., %d hosts; Meridian with control.state_dir, PowerDNS "
               "gsqlite3; servers on CPU %s, clients on CPU %s) ==" % (ZONE, args.names,
                                                                         bench.SERVER_CPU,
                                                                         bench.CLIENT_CPU),
           "changes/s: rrsets changed and served by DNS per second (median of %d round(s) x %ds); "
           "ratio = meridian / peer (>1: Meridian is faster)" % (args.rounds, args.duration)]
    hdr = "%-27s %-9s %10s %7s %8s %8s %8s %11s %9s %8s  %s" % (
        "mode", "server", "changes/s", "ratio", "PATCH/s", "p50 ms", "p99 ms", "cpu us/chg",
        "checked", "unserved", "notes")
    out += [hdr, "-" * len(hdr)]
    summary = {}
    titles = {"single": "1 client, 1 rrset/PATCH", "clients": "%d clients, 1 rrset/PATCH" % args.clients,
              "batch": "1 client, %d rrsets/PATCH" % args.batch}
    for mode in MODES:
        summary[mode] = {}
        for n in names:
            rows = [r[mode] for r in api_results.get(n, []) if mode in r]
            if rows:
                summary[mode][n] = {
                    "changes_per_s": med(rows, "changes_per_s"), "patches_per_s": med(rows, "patches_per_s"),
                    "p50_ms": med(rows, "p50_ms"), "p99_ms": med(rows, "p99_ms"),
                    "cpu_us_per_change": med(rows, "cpu_us_per_change"),
                    "checked": sum(r["checked"] for r in rows),
                    "acked": sum(r["acked"] for r in rows),
                    "not_served": sum(r["not_served"] for r in rows),
                    "failed_patches": sum(v for r in rows for k, v in r["statuses"].items()
                                          if k != "204"),
                    "crashed": sum(r["crashed"] for r in rows),
                    "refused_served": sum(r["refused_served"] for r in rows),
                    "errors": sorted({e for r in rows for e in r["errors"]})[:3]}
        base = summary[mode].get("meridian")
        for n in names:
            m = summary[mode].get(n)
            if not m:
                continue
            notes = []
            if m["not_served"]:
                notes.append("!! %d checked changes not served" % m["not_served"])
            if m["failed_patches"] or m["crashed"]:
                notes.append("!! %d PATCHes not 204 (their changes served anyway: %d), %d "
                             "clients stopped: %s" % (m["failed_patches"], m["refused_served"],
                                                      m["crashed"], "; ".join(m["errors"])))
            if m["checked"] < m["acked"]:
                notes.append("sampled: changes/s counts 204s")
            out.append("%-27s %-9s %10.1f %7s %8.1f %8.2f %8.2f %11.0f %9d %8d  %s" % (
                titles[mode], n, m["changes_per_s"],
                ratio(base["changes_per_s"], m["changes_per_s"]) if base else "n/a",
                m["patches_per_s"], m["p50_ms"], m["p99_ms"], m["cpu_us_per_change"],
                m["checked"], m["not_served"], "; ".join(notes)))
    return out, summary


def report_query(args, query_results):
    rows = {c: [r[c] for r in query_results if c in r] for c in CONDITIONS}
    titles = {"none": "no changes", "same": "%g PATCH/s offered, %s" % (args.rate, ZONE),
              "other": "%g PATCH/s offered, %s" % (args.rate, OTHER)}
    out = ["", "== query path while changes stream (Meridian, 1 worker on CPU %s; dnsperf hits on %s, "
               "-c %d -q %d on CPU %s; median of %d round(s) x %ds) =="
           % (bench.SERVER_CPU, ZONE, args.clients_dnsperf, args.outstanding, bench.CLIENT_CPU,
              args.rounds, args.duration),
           "worker us/q: CPU of the UDP worker thread per answered query; process us/q: the whole "
           "process (control thread included); ratio = with changes / without (1.00x: unnoticed)"]
    hdr = "%-32s %10s %10s %7s %11s %7s %7s %9s %8s %8s %9s  %s" % (
        "changes", "QPS", "worker us/q", "ratio", "process us/q", "ratio", "lost", "changes/s",
        "p50 ms", "p99 ms", "unserved", "notes")
    out += [hdr, "-" * len(hdr)]
    summary = {}
    for c in CONDITIONS:
        rs = rows[c]
        if not rs:
            continue
        m = {"qps": med(rs, "qps"), "worker_us_per_q": med(rs, "worker_us_per_q"),
             "process_us_per_q": med(rs, "process_us_per_q"), "lost": sum(r["lost"] for r in rs),
             "problems": sorted({r["problem"] for r in rs if r["problem"]})}
        chs = [r["changes"] for r in rs if "changes" in r]
        if chs:
            m.update({"changes_per_s": med(chs, "changes_per_s"), "p50_ms": med(chs, "p50_ms"),
                      "p99_ms": med(chs, "p99_ms"), "checked": sum(x["checked"] for x in chs),
                      "not_served": sum(x["not_served"] for x in chs),
                      "crashed": sum(x["crashed"] for x in chs),
                      "errors": sorted({e for x in chs for e in x["errors"]})[:3],
                      "failed_patches": sum(v for x in chs for k, v in x["statuses"].items()
                                            if k != "204")})
        summary[c] = m
    base = summary.get("none")
    for c in CONDITIONS:
        m = summary.get(c)
        if not m:
            continue
        notes = ["!! " + p for p in m["problems"]]
        if m.get("not_served"):
            notes.append("!! %d checked changes not served" % m["not_served"])
        if m.get("failed_patches") or m.get("crashed"):
            notes.append("!! %d PATCHes not 204, %d clients stopped: %s"
                         % (m["failed_patches"], m["crashed"], "; ".join(m["errors"])))
        has = "changes_per_s" in m
        out.append("%-32s %10.0f %10.2f %7s %11.2f %7s %7d %9s %8s %8s %9s  %s" % (
            titles[c], m["qps"], m["worker_us_per_q"],
            ratio(m["worker_us_per_q"], base["worker_us_per_q"]) if base else "n/a",
            m["process_us_per_q"],
            ratio(m["process_us_per_q"], base["process_us_per_q"]) if base else "n/a",
            m["lost"], "%.1f" % m["changes_per_s"] if has else "-",
            "%.2f" % m["p50_ms"] if has else "-", "%.2f" % m["p99_ms"] if has else "-",
            "%d/%d" % (m["not_served"], m["checked"]) if has else "-", "; ".join(notes)))
    return out, summary


# --------------------------------------------------------------------------- main

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--duration", type=int, help="seconds per measured run (default 10; --quick 2)")
    ap.add_argument("--rounds", type=int, help="rounds; medians are reported (default 3; --quick 1)")
    ap.add_argument("--servers", default=",".join(API_SERVERS),
                    help="API part: comma list from %s (default both; the query part needs meridian)"
                         % ",".join(API_SERVERS))
    ap.add_argument("--parts", default="api,query", help="api, query or api,query (default)")
    ap.add_argument("--meridian", default=os.path.join(ROOT, "build", "meridian"),
                    help="Meridian binary (default: build/meridian in the repo root)")
    ap.add_argument("--quick", action="store_true",
                    help="a short smoke run: --duration 2 --rounds 1 --names 500 --warmup 1 unless given")
    ap.add_argument("--names", type=int, help="hosts in the zone (default 5000; --quick 500)")
    ap.add_argument("--clients", type=int, default=4, help="concurrent API clients (default 4)")
    ap.add_argument("--batch", type=int, default=100, help="rrsets per PATCH in the batch mode (default 100)")
    ap.add_argument("--rate", type=float, default=100.0,
                    help="PATCHes per second while dnsperf runs (query part, default 100)")
    ap.add_argument("--stream-clients", type=int, default=4,
                    help="query part: clients sharing the --rate stream, so a slow PATCH does not "
                         "stall it (default 4)")
    ap.add_argument("--check-every", type=int, default=1,
                    help="query every Nth change over DNS after its 204 (default 1: every change)")
    ap.add_argument("--warmup", type=int, help="unmeasured seconds before the runs (default 2; --quick 1)")
    ap.add_argument("--dnsperf-clients", dest="clients_dnsperf", type=int, default=4,
                    help="dnsperf -c (default 4, as bench/run.py)")
    ap.add_argument("--outstanding", type=int, default=200, help="dnsperf -q (default 200, as bench/run.py)")
    ap.add_argument("--timeout", type=int, default=2, help="dnsperf -t (default 2)")
    ap.add_argument("--start-timeout", type=int, default=60, help="seconds for a server to answer (default 60)")
    ap.add_argument("--json", help="write raw and median results to this file")
    ap.add_argument("--keep", action="store_true", help="keep the temp dir (configs, logs, state)")
    args = ap.parse_args()
    quick = {"duration": (10, 2), "rounds": (3, 1), "names": (5000, 500), "warmup": (2, 1)}
    for key, (full, short) in quick.items():
        if getattr(args, key) is None:
            setattr(args, key, short if args.quick else full)
    parts = [p.strip() for p in args.parts.split(",") if p.strip()]
    names = [s.strip() for s in args.servers.split(",") if s.strip()]
    if set(parts) - {"api", "query"}:
        ap.error("--parts: api, query or both")
    if set(names) - set(SERVERS):
        ap.error("--servers: choose from %s" % ",".join(API_SERVERS))
    if min(args.duration, args.rounds, args.clients, args.stream_clients, args.check_every) < 1:
        ap.error("--duration, --rounds, --clients, --stream-clients and --check-every must be >= 1")
    if args.rate <= 0:
        ap.error("--rate must be > 0")
    if args.names < args.clients * args.batch or args.names < 10:
        ap.error("--names must be at least --clients x --batch (each client changes its own hosts)")
    # dnsperf reads args.clients as its -c (bench.run_dnsperf); the API clients are ours.
    dnsperf_args = argparse.Namespace(clients=args.clients_dnsperf, outstanding=args.outstanding,
                                      timeout=args.timeout)
    for tool in ("dnsperf", "taskset") if "query" in parts else ("taskset",):
        if not shutil.which(tool):
            sys.exit("bench/api: %s not found in PATH" % tool)
    if (os.cpu_count() or 1) < 2:
        sys.exit("bench/api: needs at least 2 CPUs (servers on CPU 0, clients on CPU 1)")
    # The clients (this process, its threads, dnsperf) run on CPU 1; taskset puts servers on CPU 0.
    os.sched_setaffinity(0, {int(bench.CLIENT_CPU)})

    servers, skipped = [], []
    for n in names:
        s = SERVERS[n](args)
        why = s.available()
        if why:
            skipped.append((n, why))
            log("bench/api: skipping %s: %s" % (n, why))
        else:
            servers.append(s)
    meridian = next((s for s in servers if s.name == "meridian"), None)
    if "query" in parts and meridian is None:
        if not any(n == "meridian" for n, _ in skipped):
            meridian = MeridianServer(args)
            why = meridian.available()
            if why:
                skipped.append(("meridian (query part)", why))
                meridian = None
    def on_term(signum, frame):
        raise bench.Interrupted()
    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGHUP, on_term)

    workroot = tempfile.mkdtemp(prefix="meridian-apibench-")
    api_results, query_results, failed = {}, [], []
    rc = 0
    try:
        data = os.path.join(workroot, "data")
        log("bench/api: generating zones (%d hosts) in %s" % (args.names, data))
        zonefiles = write_zones(data, args.names)
        for rnd in range(args.rounds):
            if "api" in parts:
                order = servers if rnd % 2 == 0 else list(reversed(servers))
                log("bench/api: round %d/%d, API changes: %s"
                    % (rnd + 1, args.rounds, ", ".join(s.name for s in order)))
                for s in order:
                    if any(f[0] == s.name for f in failed):
                        continue
                    try:
                        api_results.setdefault(s.name, []).append(
                            measure_api(args, s, rnd, zonefiles, workroot))
                    except bench.BenchError as e:
                        log("bench/api: %s failed: %s" % (s.name, e))
                        failed.append((s.name, str(e)))
            if "query" in parts and meridian and not any(f[0] == "query" for f in failed):
                log("bench/api: round %d/%d, query path under changes" % (rnd + 1, args.rounds))
                try:
                    query_results.append(measure_query(args, dnsperf_args, meridian, rnd,
                                                       zonefiles, data, workroot))
                except bench.BenchError as e:
                    log("bench/api: query part failed: %s" % e)
                    failed.append(("query", str(e)))
        out = ["", "Meridian API benchmark: %d round(s) x %ds, %d hosts per zone" %
               (args.rounds, args.duration, args.names)]
        for n, why in skipped:
            out.append("SKIPPED %s: %s" % (n, why))
        for n, why in failed:
            out.append("FAILED  %s: %s" % (n, why.splitlines()[0]))
        summary = {}
        if api_results:
            lines, summary["api"] = report_api(args, [s.name for s in servers], api_results)
            out += lines
        if query_results:
            lines, summary["query"] = report_query(args, query_results)
            out += lines
        print("\n".join(out), flush=True)
        # Wrong answers or broken clients are failures; the figures themselves never are.
        bad = sum(m["not_served"] + m["crashed"] for mode in summary.get("api", {}).values()
                  for m in mode.values())
        bad += sum(m.get("not_served", 0) + m.get("crashed", 0)
                   for m in summary.get("query", {}).values())
        if failed or bad:
            rc = 1
        if args.json:
            with open(args.json, "w") as f:
                json.dump({"args": vars(args), "api": api_results, "query": query_results,
                           "median": summary, "skipped": skipped, "failed": failed}, f, indent=1,
                          default=str)
    except (KeyboardInterrupt, bench.Interrupted):
        log("bench/api: interrupted")
        rc = 130
    finally:
        if args.keep:
            log("bench/api: kept %s" % workroot)
        else:
            shutil.rmtree(workroot, ignore_errors=True)
    return rc


if __name__ == "__main__":
    sys.exit(main())
