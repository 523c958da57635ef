#!/usr/bin/python3
"""Meridian benchmark: throughput and CPU cost per query against peer servers, same run.

For every round and every server (order alternates between rounds), the server is
started on a free loopback port, pinned to CPU 0 with one worker thread, and loaded
by dnsperf pinned to CPU 1.  The server's CPU time (utime+stime of its whole process
tree, all threads) is read from /proc before and after each measured dnsperf run.

Printed per query set: median QPS, median server CPU microseconds per answered
query, lost queries, and ratios against the baseline (Meridian by default).
`--queries geo` (or `all`) adds steered answers: Meridian, gdnsd and PowerDNS started with geo
configurations written from one generated network map (geo_gen.py), answers checked against that
map (geo_verify.py), then `geo` and `static` measured with per-query ECS (dnsperf -B).
See bench/README.md.  Standard library only.
"""

import argparse
import json
import os
import random
import re
import shutil
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
sys.dont_write_bytecode = True  # keep bench/ free of __pycache__
import gen_zone  # noqa: E402
import geo_gen  # noqa: E402
import geo_verify  # noqa: E402

ZONE = "bench.test"
ALL_SERVERS = ["floor", "meridian", "meridian-before", "knot", "nsd", "gdnsd", "pdns"]
# Query set -> (file in the data dir, setup).  A setup is one server configuration: "plain" is the
# 100k-name zone (gen_zone.py), "geo" the steered service over the generated map (geo_gen.py).
# .bin files are dnsperf -B wire-format queries (each carries its own ECS option).
QUERY_SETS = {"hits": ("hits.txt", "plain"), "mix": ("mix.txt", "plain"),
              "geo": ("geo/geo.bin", "geo"), "static": ("geo/static.bin", "geo")}
QUERY_CHOICES = {"hits": ["hits"], "mix": ["mix"], "both": ["hits", "mix"], "geo": ["geo", "static"],
                 "all": ["hits", "mix", "geo", "static"]}
QUERY_TITLES = {
    "hits": "existing name+type",
    "mix": "70% hit / 20% NXDOMAIN / 10% NODATA",
    "geo": "geo.bench.test A, steered by continent, one ECS /24 per query",
    "static": "static.bench.test A, same ECS options, same geo configuration",
}
# Expected NXDOMAIN share per query set (everything else must be NOERROR).
EXPECTED_NXDOMAIN = {"hits": 0.0, "mix": 0.20, "geo": 0.0, "static": 0.0}
SERVER_CPU = "0"
CLIENT_CPU = "1"
CLK_TCK = os.sysconf("SC_CLK_TCK")


class BenchError(Exception):
    pass


class Interrupted(Exception):
    pass


def log(msg):
    print(msg, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- servers

class Server:
    name = "?"
    binary = None
    checks_answers = True  # geo answers are compared with the map (geo_verify.py)

    def __init__(self, args):
        self.args = args

    def available(self, setup="plain"):
        """Return None if usable for the setup, else a reason string."""
        if not self.binary or not os.access(self.binary, os.X_OK):
            return "binary not found: %s" % self.binary
        if setup == "geo" and type(self).geo_command is Server.geo_command:
            return "not part of the geo comparison (meridian, gdnsd and pdns are)"
        return None

    def command(self, workdir, port, zonefile):
        raise NotImplementedError

    def geo_command(self, workdir, port, geodir):
        """Command line for the geo setup (files from geo_gen.py in geodir)."""
        raise NotImplementedError

    def ready(self, port):
        """True once the server answers on port."""
        return soa_probe(port)

    def answer_problem(self, qset, rcodes, completed):
        """What is wrong with the answers of a run (None: nothing)."""
        return rcode_problem(qset, rcodes, completed)


class Floor(Server):
    """The UDP floor: bench/udp_floor.cc echoes each query back as its reply (QR and AA set)
    with blocking recvmmsg/sendmmsg batches of 32 on one thread, doing no DNS work.  Its CPU
    time per query is what the kernel and the batching cost any server here; a DNS server's
    figure above it is its own work.  It runs in both setups (the queries differ, the work
    does not)."""
    name = "floor"
    checks_answers = False  # an echo has no answers to check

    def __init__(self, args):
        super().__init__(args)
        self.binary = os.path.abspath(args.floor)

    def available(self, setup="plain"):
        if not os.access(self.binary, os.X_OK):
            return "binary not found at %s (cmake --build build --target udp_floor)" % self.binary
        return None

    def command(self, workdir, port, zonefile):
        return [self.binary, "127.0.0.1", str(port)]

    def geo_command(self, workdir, port, geodir):
        return self.command(workdir, port, None)

    def ready(self, port):
        return echo_probe(port)

    def answer_problem(self, qset, rcodes, completed):
        return None if completed else "no answers"  # echoes carry the query's rcode, 0


class Meridian(Server):
    name = "meridian"

    def __init__(self, args):
        super().__init__(args)
        self.binary = os.path.abspath(args.meridian)

    def available(self, setup="plain"):
        if not os.access(self.binary, os.X_OK):
            return "binary not found at %s (build it first, or pass --meridian PATH)" % self.binary
        return None

    def command(self, workdir, port, zonefile):
        return [self.binary, "--listen", "127.0.0.1:%d" % port, "--threads", "1",
                "--zone", "%s=%s" % (ZONE, zonefile)] + list(self.args.meridian_arg)

    def geo_command(self, workdir, port, geodir):
        # Zone, [geoip], regions and the service come from the generated file; flags win over it.
        return [self.binary, "--config", os.path.join(geodir, "meridian-geo.toml"),
                "--listen", "127.0.0.1:%d" % port, "--threads", "1"] + list(self.args.meridian_arg)


class MeridianBefore(Meridian):
    """A second Meridian binary (--meridian-before), e.g. an older commit, measured in the same run."""
    name = "meridian-before"

    def __init__(self, args):
        Server.__init__(self, args)
        self.binary = os.path.abspath(args.meridian_before) if args.meridian_before else ""

    def available(self, setup="plain"):
        if not self.binary:
            return "no --meridian-before binary given"
        return super().available(setup)


class Knot(Server):
    name = "knot"
    binary = "/usr/sbin/knotd"

    def command(self, workdir, port, zonefile):
        conf = os.path.join(workdir, "knot.conf")
        with open(conf, "w") as f:
            f.write(f"""server:
    rundir: "{workdir}"
    pidfile: "{workdir}/knot.pid"
    listen: 127.0.0.1@{port}
    background-workers: 1
    udp-workers: 1
    tcp-workers: 1
database:
    storage: "{workdir}"
log:
  - target: stderr
    any: warning
template:
  - id: default
    storage: "{workdir}"
    zonefile-sync: -1
    zonefile-load: whole
    journal-content: none
    semantic-checks: off
zone:
  - domain: {ZONE}
    file: "{zonefile}"
""")
        return [self.binary, "-c", conf]


class Nsd(Server):
    name = "nsd"
    binary = "/usr/sbin/nsd"

    def command(self, workdir, port, zonefile):
        conf = os.path.join(workdir, "nsd.conf")
        with open(conf, "w") as f:
            f.write(f"""server:
    ip-address: 127.0.0.1@{port}
    port: {port}
    do-ip4: yes
    do-ip6: no
    server-count: 1
    username: ""
    chroot: ""
    zonesdir: "{workdir}"
    database: ""
    zonelistfile: "{workdir}/zone.list"
    xfrdfile: "{workdir}/xfrd.state"
    xfrdir: "{workdir}"
    pidfile: "{workdir}/nsd.pid"
    logfile: "{workdir}/nsd.log"
    verbosity: 1
    rrl-ratelimit: 0
    minimal-responses: yes
    hide-version: yes
remote-control:
    control-enable: no
zone:
    name: {ZONE}
    zonefile: "{zonefile}"
""")
        # -d: stay in the foreground.  NSD still forks: the started PID becomes xfrd,
        # its child is the main process, whose child serves queries (all are measured).
        return [self.binary, "-d", "-c", conf]


class Gdnsd(Server):
    name = "gdnsd"
    binary = "/usr/sbin/gdnsd"

    def command(self, workdir, port, zonefile, options="", plugins=""):
        cdir = os.path.join(workdir, "gdnsd")
        for sub in ("zones", "run", "state"):
            os.makedirs(os.path.join(cdir, sub), exist_ok=True)
        shutil.copyfile(zonefile, os.path.join(cdir, "zones", ZONE))
        with open(os.path.join(cdir, "config"), "w") as f:
            f.write(f"""options => {{
  listen => [ 127.0.0.1:{port} ]
  udp_threads => 1
  tcp_threads => 1
{options}  run_dir => {cdir}/run
  state_dir => {cdir}/state
}}
""" + plugins)
        # gdnsd 3.x: "start" runs as a regular foreground process.
        return [self.binary, "-c", cdir, "start"]

    def geo_command(self, workdir, port, geodir):
        # edns_client_subnet defaults to true in gdnsd 3.x; set explicitly.  The geoip plugin reads
        # the same .mmdb and maps continent -> datacenter (geo_gen.gdnsd_plugin_config).
        return self.command(workdir, port, os.path.join(geodir, "gdnsd-zone"),
                            options="  edns_client_subnet => true\n",
                            plugins=geo_gen.gdnsd_plugin_config(os.path.join(geodir, "geo.mmdb")))


class Pdns(Server):
    name = "pdns"
    binary = "/usr/sbin/pdns_server"

    def available(self, setup="plain"):
        r = super().available(setup)
        if r:
            return r
        try:
            out = subprocess.run([self.binary, "--list-modules"], capture_output=True,
                                 text=True, timeout=20).stdout
        except (OSError, subprocess.SubprocessError) as e:
            return "cannot run %s: %s" % (self.binary, e)
        module, package = ("geoip", "pdns-backend-geoip") if setup == "geo" else ("bind", "pdns-backend-bind")
        if not re.search(r"^%s$" % module, out, re.M):
            return "%s backend missing (apt-get install %s)" % (module, package)
        return None

    def command(self, workdir, port, zonefile):
        with open(os.path.join(workdir, "named.conf"), "w") as f:
            f.write('zone "%s" { type master; file "%s"; };\n' % (ZONE, zonefile))
        return self._command(workdir, port, f"""launch=bind
bind-config={workdir}/named.conf
""")

    def geo_command(self, workdir, port, geodir):
        # The geoip backend serves the YAML zone; services expand %cn (continent) from the same
        # .mmdb.  ECS is only used with edns-subnet-processing=yes.
        return self._command(workdir, port, f"""launch=geoip
geoip-database-files=mmdb:{geodir}/geo.mmdb
geoip-zones-file={geodir}/pdns-zones.yaml
edns-subnet-processing=yes
""")

    def _command(self, workdir, port, backend):
        with open(os.path.join(workdir, "pdns.conf"), "w") as f:
            # Caches are left at their defaults (packet cache and query cache on).
            f.write(backend + f"""local-address=127.0.0.1
local-port={port}
receiver-threads=1
distributor-threads=1
socket-dir={workdir}
guardian=no
daemon=no
disable-syslog=yes
loglevel=4
security-poll-suffix=
webserver=no
api=no
""")
        return [self.binary, "--config-dir=%s" % workdir, "--daemon=no", "--guardian=no",
                "--socket-dir=%s" % workdir]


SERVER_CLASSES = {c.name: c for c in (Floor, Meridian, MeridianBefore, Knot, Nsd, Gdnsd, Pdns)}


# --------------------------------------------------------------------------- /proc helpers

def proc_stat(pid):
    """(ppid, starttime, (utime, stime) ticks, state) of a process, or None if gone."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            data = f.read()
    except OSError:
        return None
    fields = data[data.rindex(")") + 2:].split()
    # fields[0] is field 3 (state); utime/stime are fields 14/15; starttime is field 22.
    return int(fields[1]), int(fields[19]), (int(fields[11]), int(fields[12])), fields[0]


def process_tree(root):
    """PIDs of root and all its live descendants."""
    children = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        st = proc_stat(int(entry))
        if st:
            children.setdefault(st[0], []).append(int(entry))
    out, todo = [], [root]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, []))
    return out


def tree_cpu(root):
    """{(pid, starttime): (utime, stime) ticks} for the whole tree.  /proc/PID/stat sums all
    threads."""
    snap = {}
    for p in process_tree(root):
        st = proc_stat(p)
        if st:
            snap[(p, st[1])] = st[2]
    return snap


def tree_switches(root):
    """{(pid, tid): voluntary context switches} of every thread of the tree.  A voluntary switch
    is a thread going to sleep (a blocking recvmmsg with nothing queued, an epoll_wait): per
    answered query it says how often the server slept and was woken."""
    snap = {}
    for p in process_tree(root):
        try:
            tids = os.listdir("/proc/%d/task" % p)
        except OSError:
            continue
        for t in tids:
            try:
                with open("/proc/%d/task/%s/status" % (p, t)) as f:
                    for line in f:
                        if line.startswith("voluntary_ctxt_switches:"):
                            snap[(p, t)] = int(line.split()[1])
                            break
            except OSError:
                pass
    return snap


def switches_delta(before, after):
    return sum(v - before.get(k, 0) for k, v in after.items())


def cpu_delta_seconds(before, after):
    """(user, system) CPU seconds the tree used between the two snapshots."""
    user = sum(t[0] - before.get(k, (0, 0))[0] for k, t in after.items())
    system = sum(t[1] - before.get(k, (0, 0))[1] for k, t in after.items())
    return user / CLK_TCK, system / CLK_TCK


# --------------------------------------------------------------------------- DNS probe

def soa_probe(port, timeout=0.3):
    """True if 127.0.0.1:port answers SOA bench.test authoritatively with NOERROR."""
    qid = random.randrange(65536)
    q = struct.pack(">HHHHHH", qid, 0x0000, 1, 0, 0, 0)
    for label in ZONE.split("."):
        q += bytes([len(label)]) + label.encode()
    q += b"\x00" + struct.pack(">HH", 6, 1)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.settimeout(timeout)
        s.sendto(q, ("127.0.0.1", port))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            data = s.recv(4096)
            if len(data) < 12:
                continue
            rid, flags, _, ancount, _, _ = struct.unpack(">HHHHHH", data[:12])
            if rid != qid or not flags & 0x8000:
                continue
            return (flags & 0x000F) == 0 and bool(flags & 0x0400) and ancount >= 1
    except OSError:
        return False
    finally:
        s.close()
    return False


def echo_probe(port, timeout=0.3):
    """True if 127.0.0.1:port sends back a reply with our ID (the floor's echo)."""
    qid = random.randrange(65536)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.settimeout(timeout)
        s.sendto(struct.pack(">HHHHHH", qid, 0, 0, 0, 0, 0), ("127.0.0.1", port))
        data = s.recv(4096)
        return len(data) >= 12 and struct.unpack(">H", data[:2])[0] == qid and bool(data[2] & 0x80)
    except OSError:
        return False
    finally:
        s.close()


def free_port():
    """A port free for both UDP and TCP on 127.0.0.1."""
    for _ in range(100):
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        u.bind(("127.0.0.1", 0))
        port = u.getsockname()[1]
        t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            t.bind(("127.0.0.1", port))
            return port
        except OSError:
            continue
        finally:
            t.close()
            u.close()
    raise BenchError("no free loopback port found")


# --------------------------------------------------------------------------- running

class Running:
    """A started server process; stop() ends it and every descendant, by PID."""

    def __init__(self, server, workdir, port, command, start_timeout):
        self.server = server
        self.port = port
        self.logpath = os.path.join(workdir, "server.log")
        argv = ["taskset", "-c", SERVER_CPU] + command
        self.argv = argv
        self.logf = open(self.logpath, "w")
        # taskset execs the server, so proc.pid is the server's PID.  A new session keeps
        # a terminal's Ctrl-C away from it; we stop it ourselves.
        self.proc = subprocess.Popen(argv, stdout=self.logf, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, cwd=workdir,
                                     start_new_session=True)
        self.known = {}  # pid -> starttime of every process seen in the tree
        try:
            self._wait_ready(start_timeout)
        except BaseException:
            self.stop()
            raise

    def _wait_ready(self, start_timeout):
        server, port = self.server, self.port
        self._remember()
        t0 = time.monotonic()
        while True:
            self._remember()
            if self.proc.poll() is not None:
                raise BenchError("%s exited with status %s during startup\n%s"
                                 % (server.name, self.proc.returncode, self.log_tail()))
            if server.ready(port):
                break
            if time.monotonic() - t0 > start_timeout:
                raise BenchError("%s did not answer SOA %s on port %d within %ds\n%s"
                                 % (server.name, ZONE, port, start_timeout, self.log_tail()))
            time.sleep(0.1)
        self.startup_s = time.monotonic() - t0
        self._remember()

    def _remember(self):
        for p in process_tree(self.proc.pid):
            st = proc_stat(p)
            if st:
                self.known.setdefault(p, st[1])

    def cpu(self):
        self._remember()
        return tree_cpu(self.proc.pid)

    def log_tail(self, n=15):
        try:
            self.logf.flush()
            with open(self.logpath, errors="replace") as f:
                lines = f.readlines()
            return "".join("    | " + l for l in lines[-n:])
        except OSError:
            return ""

    def _alive(self, pid):
        st = proc_stat(pid)
        return st is not None and st[1] == self.known[pid] and st[3] not in ("Z", "X")

    def stop(self):
        self._remember()
        if self.proc.poll() is None:
            try:
                self.proc.send_signal(signal.SIGTERM)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            self.proc.poll()
            if not any(self._alive(p) for p in self.known):
                break
            time.sleep(0.05)
        for p in list(self.known):
            if self._alive(p):
                log("  %s: pid %d still running after SIGTERM, sending SIGKILL" % (self.server.name, p))
                try:
                    os.kill(p, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
        self.logf.close()


DNSPERF_RE = {
    "sent": re.compile(r"Queries sent:\s+(\d+)"),
    "completed": re.compile(r"Queries completed:\s+(\d+)"),
    "lost": re.compile(r"Queries lost:\s+(\d+)"),
    "runtime": re.compile(r"Run time \(s\):\s+([\d.]+)"),
    "qps": re.compile(r"Queries per second:\s+([\d.]+)"),
    "latency": re.compile(r"Average Latency \(s\):\s+([\d.]+)"),
}


def parse_dnsperf(out):
    r = {}
    for k, rx in DNSPERF_RE.items():
        m = rx.search(out)
        if not m:
            raise BenchError("could not parse dnsperf output (%s missing):\n%s" % (k, out[-2000:]))
        r[k] = float(m.group(1)) if k in ("runtime", "qps", "latency") else int(m.group(1))
    rcodes = {}
    m = re.search(r"Response codes:\s+(.*)", out)
    if m:
        for name, count in re.findall(r"([A-Z]+) (\d+)", m.group(1)):
            rcodes[name] = int(count)
    r["rcodes"] = rcodes
    m = re.search(r"Average packet size:\s+request (\d+), response (\d+)", out)
    r["resp_size"] = int(m.group(2)) if m else 0
    return r


def run_dnsperf(args, port, qfile, duration, outpath, extra=()):
    argv = ["taskset", "-c", CLIENT_CPU, "dnsperf", "-s", "127.0.0.1", "-p", str(port),
            "-d", qfile, "-l", str(duration), "-c", str(args.clients), "-q", str(args.outstanding),
            "-t", str(args.timeout)] + list(extra)
    if qfile.endswith(".bin"):
        argv.append("-B")  # wire-format queries with their own EDNS/ECS (geo_gen.py)
    with open(outpath, "w") as f:
        p = subprocess.Popen(argv, stdout=f, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        try:
            rc = p.wait(timeout=duration + args.timeout + 60)
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
    with open(outpath, errors="replace") as f:
        out = f.read()
    if rc != 0:
        raise BenchError("dnsperf exited with %d:\n%s" % (rc, out[-2000:]))
    return parse_dnsperf(out)


def rcode_problem(qset, rcodes, completed):
    if completed == 0:
        return "no answers"
    other = {k: v for k, v in rcodes.items() if k not in ("NOERROR", "NXDOMAIN")}
    if sum(other.values()) > completed * 0.001:
        return "unexpected rcodes %s" % other
    nx = rcodes.get("NXDOMAIN", 0) / completed
    if abs(nx - EXPECTED_NXDOMAIN[qset]) > 0.02:
        return "NXDOMAIN share %.1f%%, expected %.0f%%" % (nx * 100, EXPECTED_NXDOMAIN[qset] * 100)
    return None


def verify_geo(server, port, geodir):
    """Checks the steered answers for the sample subnets against the map; returns the summary
    that goes into the results (and the problem string, or None)."""
    v = geo_verify.verify(port, geodir)
    problem = None
    if v["ok"] != v["checked"]:
        problem = "%d/%d sample answers differ from the map" % (v["checked"] - v["ok"], v["checked"])
        for subnet, expected, got in v["mismatches"][:5]:
            log("    %s: ECS %s: expected %s, got %s" % (server.name, subnet, expected, got))
    return {"ok": v["ok"], "checked": v["checked"], "scopes": v["scopes"],
            "mismatches": v["mismatches"][:20]}, problem


def measure_server(args, server, round_no, setup, qsets, data, workroot):
    """Starts the server once in the given setup and measures each of its query sets."""
    workdir = tempfile.mkdtemp(prefix="%s-%s-r%d-" % (server.name, setup, round_no), dir=workroot)
    port = free_port()
    geodir = os.path.join(data, "geo")
    if setup == "geo":
        command = server.geo_command(workdir, port, geodir)
    else:
        command = server.command(workdir, port, os.path.join(data, "bench.test.zone"))
    results = {}
    run = Running(server, workdir, port, command, args.start_timeout)
    try:
        log("  %-8s %s up on 127.0.0.1:%d (pid %d, %.1fs to answer)"
            % (server.name, setup, port, run.proc.pid, run.startup_s))
        verify_before = None
        if setup == "geo" and server.checks_answers:
            verify_before = verify_geo(server, port, geodir)
            log("    geo answers: %d/%d as the map says, ECS scopes %s"
                % (verify_before[0]["ok"], verify_before[0]["checked"], verify_before[0]["scopes"]))
        for qs in qsets:
            qfile = os.path.join(data, QUERY_SETS[qs][0])
            if args.warmup > 0:
                run_dnsperf(args, port, qfile, args.warmup, os.path.join(workdir, "warmup-%s.txt" % qs))
            before = run.cpu()
            sw_before = tree_switches(run.proc.pid)
            t0 = time.monotonic()
            r = run_dnsperf(args, port, qfile, args.duration, os.path.join(workdir, "dnsperf-%s.txt" % qs))
            wall = time.monotonic() - t0
            after = run.cpu()
            sw_after = tree_switches(run.proc.pid)
            if run.proc.poll() is not None:
                raise BenchError("%s died during the run\n%s" % (server.name, run.log_tail()))
            user_s, sys_s = cpu_delta_seconds(before, after)
            cpu_s = user_s + sys_s
            r["cpu_s"] = cpu_s
            r["cpu_util"] = cpu_s / r["runtime"] if r["runtime"] else 0.0
            per_q = (1e6 / r["completed"]) if r["completed"] else float("inf")
            r["us_per_q"] = cpu_s * per_q
            r["user_us_per_q"] = user_s * per_q
            r["sys_us_per_q"] = sys_s * per_q
            r["wakes_per_q"] = (switches_delta(sw_before, sw_after) / r["completed"]
                                if r["completed"] else 0.0)
            r["wall"] = wall
            r["problem"] = server.answer_problem(qs, r["rcodes"], r["completed"])
            results[qs] = r
            log("    %-6s qps %10.0f  cpu %5.1f%%  %6.2f us/q (user %.2f, sys %.2f)  "
                "wakes/q %.3f  lost %d%s"
                % (qs, r["qps"], r["cpu_util"] * 100, r["us_per_q"], r["user_us_per_q"],
                   r["sys_us_per_q"], r["wakes_per_q"], r["lost"], ("  !! " + r["problem"]) if r["problem"] else ""))
        if verify_before and "geo" in results:
            # Checked again with warm caches: a cache that ignored ECS would show here.
            verify_after = verify_geo(server, port, geodir)
            r = results["geo"]
            r["verify"] = {"before": verify_before[0], "after": verify_after[0]}
            problems = [p for p in (r["problem"], verify_before[1], verify_after[1] and
                                    "after the runs: " + verify_after[1]) if p]
            r["problem"] = "; ".join(problems) if problems else None
            if verify_before[1] or verify_after[1]:
                log("    !! %s" % r["problem"])
    finally:
        run.stop()
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    return results


# --------------------------------------------------------------------------- report

def fmt_ratio(x):
    return "%.2fx" % x if x is not None else "n/a"


def report(args, names, qsets, results, skipped, failed):
    out = []
    out.append("")
    out.append("Meridian benchmark: %d round(s) x %ds, dnsperf -c %d -q %d on CPU %s, "
               "server (1 worker) on CPU %s, %d clock ticks/s"
               % (args.rounds, args.duration, args.clients, args.outstanding,
                  CLIENT_CPU, SERVER_CPU, CLK_TCK))
    out.append("Ratios vs %s: 'us/q ratio' = peer us/query / %s us/query, "
               "'QPS ratio' = %s QPS / peer QPS (>1 means %s is better)."
               % (args.baseline, args.baseline, args.baseline, args.baseline))
    for name, why in skipped:
        out.append("SKIPPED %s: %s" % (name, why))
    for name, why in failed:
        out.append("FAILED  %s: %s" % (name, why.splitlines()[0]))
    summary = {}
    for qs in qsets:
        out.append("")
        out.append("== %s (%s) ==" % (qs, QUERY_TITLES[qs]))
        hdr = "%-9s %11s %9s %8s %6s %6s %9s %7s %7s %10s %6s  %s" % (
            "server", "QPS", "QPS ratio", "us/q", "user", "sys", "us/q ratio", "srvCPU", "wakes/q",
            "lost", "resp", "notes")
        out.append(hdr)
        out.append("-" * len(hdr))
        med = {}
        for n in names:
            rs = [r[qs] for r in results.get(n, []) if qs in r]
            if not rs:
                continue
            med[n] = {
                "qps": statistics.median(r["qps"] for r in rs),
                "us_per_q": statistics.median(r["us_per_q"] for r in rs),
                "user_us_per_q": statistics.median(r["user_us_per_q"] for r in rs),
                "sys_us_per_q": statistics.median(r["sys_us_per_q"] for r in rs),
                "cpu_util": statistics.median(r["cpu_util"] for r in rs),
                "wakes_per_q": statistics.median(r.get("wakes_per_q", 0.0) for r in rs),
                "lost": sum(r["lost"] for r in rs),
                "sent": sum(r["sent"] for r in rs),
                "resp_size": statistics.median(r["resp_size"] for r in rs),
                "rounds": len(rs),
                "problems": sorted({r["problem"] for r in rs if r["problem"]}),
            }
        base = med.get(args.baseline)
        for n in names:
            if n not in med:
                continue
            m = med[n]
            qr = ur = None
            if base and n != args.baseline:
                qr = base["qps"] / m["qps"] if m["qps"] else None
                ur = m["us_per_q"] / base["us_per_q"] if base["us_per_q"] else None
            elif base:
                qr = ur = 1.0
            m["qps_ratio"], m["us_ratio"] = qr, ur
            notes = []
            if m["cpu_util"] < 0.90:
                notes.append("server not saturated (client-bound)")
            notes.extend("!! " + p for p in m["problems"])
            if m["rounds"] < args.rounds:
                notes.append("%d/%d rounds" % (m["rounds"], args.rounds))
            out.append("%-9s %11.0f %9s %8.2f %6.2f %6.2f %10s %6.0f%% %7.3f %10s %5dB  %s" % (
                n, m["qps"], fmt_ratio(qr), m["us_per_q"], m["user_us_per_q"], m["sys_us_per_q"],
                fmt_ratio(ur), m["cpu_util"] * 100, m["wakes_per_q"],
                "%d" % m["lost"], m["resp_size"], "; ".join(notes)))
        if not base:
            out.append("(no ratios: baseline '%s' was not measured)" % args.baseline)
        summary[qs] = med
        if qs == "static" and "geo" in summary:
            out.extend(geo_lines(names, summary, results))
    print("\n".join(out), flush=True)
    return summary


def geo_lines(names, summary, results):
    """Geo/static cost per server, and the answer check against the map."""
    mu = "\u00b5"
    try:
        mu.encode(sys.stdout.encoding or "ascii")
    except (UnicodeEncodeError, LookupError):
        mu = "u"
    out = [""]
    for n in names:
        g, st = summary["geo"].get(n), summary["static"].get(n)
        if g and st and st["us_per_q"]:
            out.append("%s geo vs static: %.2fx %ss/query (geo %.2f, static %.2f)"
                       % (n, g["us_per_q"] / st["us_per_q"], mu, g["us_per_q"], st["us_per_q"]))
    checks, scopes = [], []
    for n in names:
        vs = [r["geo"]["verify"] for r in results.get(n, []) if "geo" in r and "verify" in r["geo"]]
        if not vs:
            continue
        ok = sum(v[p]["ok"] for v in vs for p in ("before", "after"))
        checked = sum(v[p]["checked"] for v in vs for p in ("before", "after"))
        checks.append("%s %d/%d%s" % (n, ok, checked, "" if ok == checked else " !!"))
        sc = {}
        for v in vs:
            for k, c in v["before"]["scopes"].items():
                sc[k] = sc.get(k, 0) + c
        scopes.append("%s %s" % (n, " ".join("%s:%d" % kv for kv in
                                             sorted(sc.items(), key=lambda kv: -kv[1]))))
    if checks:
        out.append("geo answers vs the map (sample subnets, before and after each server's runs): "
                   + ", ".join(checks))
        out.append("ECS scope returned for the sample: " + "; ".join(scopes))
    return out


# --------------------------------------------------------------------------- main

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--duration", type=int, default=20, help="seconds per measured dnsperf run (default 20)")
    ap.add_argument("--rounds", type=int, default=3, help="rounds; medians are reported (default 3)")
    ap.add_argument("--servers", default=",".join(ALL_SERVERS),
                    help="comma list from %s (default: all available)" % ",".join(ALL_SERVERS))
    ap.add_argument("--queries", choices=tuple(QUERY_CHOICES), default="both",
                    help="hits, mix, both (hits+mix, the default), geo (geo+static, ECS-steered "
                         "answers, meridian/gdnsd/pdns only) or all")
    ap.add_argument("--meridian", default=os.path.join(ROOT, "build", "meridian"),
                    help="Meridian binary (default: build/meridian in the repo root)")
    ap.add_argument("--floor", default=os.path.join(ROOT, "build", "udp_floor"),
                    help="the UDP floor (echo) binary (default: build/udp_floor in the repo root)")
    ap.add_argument("--meridian-before", default="",
                    help="a second Meridian binary (an older build) measured as server meridian-before")
    ap.add_argument("--meridian-arg", action="append", default=[],
                    help="extra argument for Meridian (repeatable)")
    ap.add_argument("--baseline", default="meridian", help="server the ratios are against (default meridian)")
    ap.add_argument("--warmup", type=int, default=2, help="unmeasured dnsperf seconds before each run (default 2)")
    ap.add_argument("--clients", type=int, default=4, help="dnsperf -c (default 4)")
    ap.add_argument("--outstanding", type=int, default=200,
                    help="dnsperf -q, max queries in flight (default 200; 500 overflows loopback socket buffers here)")
    ap.add_argument("--timeout", type=int, default=2, help="dnsperf -t query timeout seconds (default 2)")
    ap.add_argument("--start-timeout", type=int, default=60, help="seconds for a server to answer (default 60)")
    ap.add_argument("--data", help="directory with bench.test.zone/hits.txt/mix.txt and geo/ "
                                   "(generated there if missing; default: a fresh temp dir)")
    ap.add_argument("--json", help="write raw and median results to this file")
    ap.add_argument("--keep", action="store_true", help="keep the temp dir (configs, logs, dnsperf output)")
    args = ap.parse_args()

    names = [s.strip() for s in args.servers.split(",") if s.strip()]
    bad = [n for n in names if n not in SERVER_CLASSES]
    if bad:
        ap.error("unknown server(s): %s (choose from %s)" % (",".join(bad), ",".join(ALL_SERVERS)))
    if args.duration < 1 or args.rounds < 1:
        ap.error("--duration and --rounds must be >= 1")
    qsets = QUERY_CHOICES[args.queries]
    setups = []
    for q in qsets:
        if QUERY_SETS[q][1] not in setups:
            setups.append(QUERY_SETS[q][1])
    for tool in ("dnsperf", "taskset"):
        if not shutil.which(tool):
            sys.exit("bench: %s not found in PATH" % tool)
    if os.cpu_count() and os.cpu_count() < 2:
        sys.exit("bench: needs at least 2 CPUs (server on CPU 0, dnsperf on CPU 1)")

    def label(name, setup):
        return name if setup == "plain" else "%s (%s)" % (name, setup)

    # runnable: (server, setup) pairs in measuring order.
    servers, runnable, skipped = [], [], []
    for n in names:
        s = SERVER_CLASSES[n](args)
        ok = False
        for setup in setups:
            why = s.available(setup)
            if why:
                skipped.append((label(n, setup), why))
                log("bench: skipping %s: %s" % (label(n, setup), why))
            else:
                runnable.append((s, setup))
                ok = True
        if ok:
            servers.append(s)
    if not servers:
        sys.exit("bench: no server available to measure")

    def on_term(signum, frame):
        raise Interrupted()
    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGHUP, on_term)

    workroot = tempfile.mkdtemp(prefix="meridian-bench-")
    results, failed = {}, []
    rc = 0
    try:
        data = args.data or os.path.join(workroot, "data")
        if "plain" in setups and not all(os.path.exists(os.path.join(data, f)) for f in
                                         ("bench.test.zone", "hits.txt", "mix.txt")):
            log("bench: generating zone and query files in %s" % data)
            gen_zone.generate(data)
        data = os.path.abspath(data)
        if "geo" in setups:
            geodir = os.path.join(data, "geo")
            if not all(os.path.exists(os.path.join(geodir, f)) for f in geo_gen.FILES):
                meridian = os.path.abspath(args.meridian)
                why = None
                if not os.access(meridian, os.X_OK):
                    # The map is built with `meridian mmdb build`.
                    why = "no geo data in %s and no Meridian binary to build it" % geodir
                else:
                    log("bench: generating the geo map, .mmdb, configs and queries in %s" % geodir)
                    try:
                        log("bench: geo map: %d networks" % geo_gen.generate(geodir, meridian))
                    except (RuntimeError, OSError) as e:
                        why = "generating the geo data failed: %s" % e
                if why:
                    log("bench: skipping the geo sets: %s" % why)
                    skipped.extend((label(s.name, "geo"), why) for s, st in runnable if st == "geo")
                    runnable = [(s, st) for s, st in runnable if st != "geo"]
        for rnd in range(args.rounds):
            order = servers if rnd % 2 == 0 else list(reversed(servers))
            log("bench: round %d/%d: %s" % (rnd + 1, args.rounds, ", ".join(s.name for s in order)))
            for s in order:
                round_results = {}
                for setup in setups:
                    if (s, setup) not in runnable or any(f[0] == label(s.name, setup) for f in failed):
                        continue
                    try:
                        round_results.update(measure_server(
                            args, s, rnd, setup, [q for q in qsets if QUERY_SETS[q][1] == setup],
                            data, workroot))
                    except BenchError as e:
                        log("bench: %s failed: %s" % (label(s.name, setup), e))
                        failed.append((label(s.name, setup), str(e)))
                        rc = 1
                if round_results:
                    results.setdefault(s.name, []).append(round_results)
        summary = report(args, [s.name for s in servers], qsets, results, skipped, failed)
        if args.json:
            with open(args.json, "w") as f:
                json.dump({"args": vars(args), "raw": results, "median": summary,
                           "skipped": skipped, "failed": failed}, f, indent=1, default=str)
    except (KeyboardInterrupt, Interrupted):
        log("bench: interrupted")
        rc = 130
    finally:
        if args.keep:
            log("bench: kept %s" % workroot)
        else:
            shutil.rmtree(workroot, ignore_errors=True)
    return rc


if __name__ == "__main__":
    sys.exit(main())
