#!/usr/bin/python3
"""Meridian benchmark: throughput and CPU cost per query against peer servers, same run.

For every round and every server (order alternates between rounds), the server is
started on a free loopback port, pinned to CPU 0 with one worker thread, and loaded
by dnsperf pinned to CPU 1.  The server's CPU time (utime+stime of its whole process
tree, all threads) is read from /proc before and after each measured dnsperf run.

Printed per query set: median QPS, median server CPU microseconds per answered
query, lost queries, and ratios against the baseline (Meridian by default).
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

ZONE = "bench.test"
ALL_SERVERS = ["meridian", "knot", "nsd", "gdnsd", "pdns"]
QUERY_SETS = {"hits": "hits.txt", "mix": "mix.txt"}
# Expected NXDOMAIN share per query set (everything else must be NOERROR).
EXPECTED_NXDOMAIN = {"hits": 0.0, "mix": 0.20}
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

    def __init__(self, args):
        self.args = args

    def available(self):
        """Return None if usable, else a reason string."""
        if not self.binary or not os.access(self.binary, os.X_OK):
            return "binary not found: %s" % self.binary
        return None

    def command(self, workdir, port, zonefile):
        raise NotImplementedError


class Meridian(Server):
    name = "meridian"

    def __init__(self, args):
        super().__init__(args)
        self.binary = os.path.abspath(args.meridian)

    def available(self):
        if not os.access(self.binary, os.X_OK):
            return "binary not found at %s (build it first, or pass --meridian PATH)" % self.binary
        return None

    def command(self, workdir, port, zonefile):
        return [self.binary, "--listen", "127.0.0.1:%d" % port, "--threads", "1",
                "--zone", "%s=%s" % (ZONE, zonefile)] + list(self.args.meridian_arg)


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

    def command(self, workdir, port, zonefile):
        cdir = os.path.join(workdir, "gdnsd")
        for sub in ("zones", "run", "state"):
            os.makedirs(os.path.join(cdir, sub), exist_ok=True)
        shutil.copyfile(zonefile, os.path.join(cdir, "zones", ZONE))
        with open(os.path.join(cdir, "config"), "w") as f:
            f.write(f"""options => {{
  listen => [ 127.0.0.1:{port} ]
  udp_threads => 1
  tcp_threads => 1
  run_dir => {cdir}/run
  state_dir => {cdir}/state
}}
""")
        # gdnsd 3.x: "start" runs as a regular foreground process.
        return [self.binary, "-c", cdir, "start"]


class Pdns(Server):
    name = "pdns"
    binary = "/usr/sbin/pdns_server"

    def available(self):
        r = super().available()
        if r:
            return r
        try:
            out = subprocess.run([self.binary, "--list-modules"], capture_output=True,
                                 text=True, timeout=20).stdout
        except (OSError, subprocess.SubprocessError) as e:
            return "cannot run %s: %s" % (self.binary, e)
        if not re.search(r"^bind$", out, re.M):
            return "bind backend missing (apt-get install pdns-backend-bind)"
        return None

    def command(self, workdir, port, zonefile):
        with open(os.path.join(workdir, "named.conf"), "w") as f:
            f.write('zone "%s" { type master; file "%s"; };\n' % (ZONE, zonefile))
        with open(os.path.join(workdir, "pdns.conf"), "w") as f:
            # Caches are left at their defaults (packet cache and query cache on).
            f.write(f"""launch=bind
bind-config={workdir}/named.conf
local-address=127.0.0.1
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


SERVER_CLASSES = {c.name: c for c in (Meridian, Knot, Nsd, Gdnsd, Pdns)}


# --------------------------------------------------------------------------- /proc helpers

def proc_stat(pid):
    """(ppid, starttime, utime+stime ticks, state) of a process, or None if gone."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            data = f.read()
    except OSError:
        return None
    fields = data[data.rindex(")") + 2:].split()
    # fields[0] is field 3 (state); utime/stime are fields 14/15; starttime is field 22.
    return int(fields[1]), int(fields[19]), int(fields[11]) + int(fields[12]), fields[0]


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
    """{(pid, starttime): ticks} for the whole tree.  /proc/PID/stat sums all threads."""
    snap = {}
    for p in process_tree(root):
        st = proc_stat(p)
        if st:
            snap[(p, st[1])] = st[2]
    return snap


def cpu_delta_seconds(before, after):
    ticks = sum(t - before.get(k, 0) for k, t in after.items())
    return ticks / CLK_TCK


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

    def __init__(self, server, workdir, port, zonefile, start_timeout):
        self.server = server
        self.port = port
        self.logpath = os.path.join(workdir, "server.log")
        argv = ["taskset", "-c", SERVER_CPU] + server.command(workdir, port, zonefile)
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
            if soa_probe(port):
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


def run_dnsperf(args, port, qfile, duration, outpath):
    argv = ["taskset", "-c", CLIENT_CPU, "dnsperf", "-s", "127.0.0.1", "-p", str(port),
            "-d", qfile, "-l", str(duration), "-c", str(args.clients), "-q", str(args.outstanding),
            "-t", str(args.timeout)]
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


def measure_server(args, server, round_no, qsets, data, workroot):
    workdir = tempfile.mkdtemp(prefix="%s-r%d-" % (server.name, round_no), dir=workroot)
    port = free_port()
    zonefile = os.path.join(data, "bench.test.zone")
    results = {}
    run = Running(server, workdir, port, zonefile, args.start_timeout)
    try:
        log("  %-8s up on 127.0.0.1:%d (pid %d, %.1fs to answer)"
            % (server.name, port, run.proc.pid, run.startup_s))
        for qs in qsets:
            qfile = os.path.join(data, QUERY_SETS[qs])
            if args.warmup > 0:
                run_dnsperf(args, port, qfile, args.warmup, os.path.join(workdir, "warmup-%s.txt" % qs))
            before = run.cpu()
            t0 = time.monotonic()
            r = run_dnsperf(args, port, qfile, args.duration, os.path.join(workdir, "dnsperf-%s.txt" % qs))
            wall = time.monotonic() - t0
            after = run.cpu()
            if run.proc.poll() is not None:
                raise BenchError("%s died during the run\n%s" % (server.name, run.log_tail()))
            cpu_s = cpu_delta_seconds(before, after)
            r["cpu_s"] = cpu_s
            r["cpu_util"] = cpu_s / r["runtime"] if r["runtime"] else 0.0
            r["us_per_q"] = cpu_s * 1e6 / r["completed"] if r["completed"] else float("inf")
            r["wall"] = wall
            r["problem"] = rcode_problem(qs, r["rcodes"], r["completed"])
            results[qs] = r
            log("    %-4s qps %10.0f  cpu %5.1f%%  %6.2f us/q  lost %d%s"
                % (qs, r["qps"], r["cpu_util"] * 100, r["us_per_q"], r["lost"],
                   ("  !! " + r["problem"]) if r["problem"] else ""))
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
        out.append("== %s (%s) ==" % (qs, "existing name+type" if qs == "hits"
                                       else "70% hit / 20% NXDOMAIN / 10% NODATA"))
        hdr = "%-9s %11s %9s %8s %9s %7s %10s %6s  %s" % (
            "server", "QPS", "QPS ratio", "us/q", "us/q ratio", "srvCPU", "lost", "resp", "notes")
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
                "cpu_util": statistics.median(r["cpu_util"] for r in rs),
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
            out.append("%-9s %11.0f %9s %8.2f %10s %6.0f%% %10s %5dB  %s" % (
                n, m["qps"], fmt_ratio(qr), m["us_per_q"], fmt_ratio(ur), m["cpu_util"] * 100,
                "%d" % m["lost"], m["resp_size"], "; ".join(notes)))
        if not base:
            out.append("(no ratios: baseline '%s' was not measured)" % args.baseline)
        summary[qs] = med
    print("\n".join(out), flush=True)
    return summary


# --------------------------------------------------------------------------- main

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--duration", type=int, default=20, help="seconds per measured dnsperf run (default 20)")
    ap.add_argument("--rounds", type=int, default=3, help="rounds; medians are reported (default 3)")
    ap.add_argument("--servers", default=",".join(ALL_SERVERS),
                    help="comma list from %s (default: all available)" % ",".join(ALL_SERVERS))
    ap.add_argument("--queries", choices=("hits", "mix", "both"), default="both")
    ap.add_argument("--meridian", default=os.path.join(ROOT, "build", "meridian"),
                    help="Meridian binary (default: build/meridian in the repo root)")
    ap.add_argument("--meridian-arg", action="append", default=[],
                    help="extra argument for Meridian (repeatable)")
    ap.add_argument("--baseline", default="meridian", help="server the ratios are against (default meridian)")
    ap.add_argument("--warmup", type=int, default=2, help="unmeasured dnsperf seconds before each run (default 2)")
    ap.add_argument("--clients", type=int, default=4, help="dnsperf -c (default 4)")
    ap.add_argument("--outstanding", type=int, default=200,
                    help="dnsperf -q, max queries in flight (default 200; 500 overflows loopback socket buffers here)")
    ap.add_argument("--timeout", type=int, default=2, help="dnsperf -t query timeout seconds (default 2)")
    ap.add_argument("--start-timeout", type=int, default=60, help="seconds for a server to answer (default 60)")
    ap.add_argument("--data", help="directory with bench.test.zone/hits.txt/mix.txt "
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
    qsets = ["hits", "mix"] if args.queries == "both" else [args.queries]
    for tool in ("dnsperf", "taskset"):
        if not shutil.which(tool):
            sys.exit("bench: %s not found in PATH" % tool)
    if os.cpu_count() and os.cpu_count() < 2:
        sys.exit("bench: needs at least 2 CPUs (server on CPU 0, dnsperf on CPU 1)")

    servers, skipped = [], []
    for n in names:
        s = SERVER_CLASSES[n](args)
        why = s.available()
        if why:
            skipped.append((n, why))
            log("bench: skipping %s: %s" % (n, why))
        else:
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
        if not all(os.path.exists(os.path.join(data, f)) for f in
                   ("bench.test.zone", "hits.txt", "mix.txt")):
            log("bench: generating zone and query files in %s" % data)
            gen_zone.generate(data)
        data = os.path.abspath(data)
        for rnd in range(args.rounds):
            order = servers if rnd % 2 == 0 else list(reversed(servers))
            log("bench: round %d/%d: %s" % (rnd + 1, args.rounds, ", ".join(s.name for s in order)))
            for s in order:
                if any(f[0] == s.name for f in failed):
                    continue
                try:
                    results.setdefault(s.name, []).append(
                        measure_server(args, s, rnd, qsets, data, workroot))
                except BenchError as e:
                    log("bench: %s failed: %s" % (s.name, e))
                    failed.append((s.name, str(e)))
                    rc = 1
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
