#!/usr/bin/python3
"""Recursive resolvers on the fake DNS tree: cache-hit cost and cold-resolution throughput.

The tree is tests/resolver/fake_tree.py's (Knot and NSD on 127.53.x.y:53). Each resolver is
started with one thread, pinned to CPU 0; dnsperf and the tree's servers run on CPU 1. Two
measurements per resolver and round:

  hits  a few names that are in the cache after a warm-up, asked over and over: QPS, the
        resolver's CPU microseconds per answer (user/sys) and wake-ups per answer, as
        bench/run.py measures an authoritative server;
  cold  distinct names under a wildcard (n<N>.wild.example.com), each one a cache miss that
        takes one question to example.com's servers: names resolved per second and the
        resolver's CPU per name.

Resolvers: unbound and pdns_recursor (Debian's), and Meridian once its resolver exists (issue 9:
today Meridian has no iterator; --servers meridian says so and skips). Medians over rounds;
ratios against the first resolver named. Needs root (port 53 on 127.53.0.0/16). Every process
is stopped by its PID. Standard library and dnspython only.

    bench/resolver.py [--servers unbound,pdns_recursor] [--duration 8] [--rounds 3]
"""
import argparse
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "tests", "resolver"))
import fake_tree  # noqa: E402
import run as benchrun  # noqa: E402

PDNS_RECURSOR = "/usr/sbin/pdns_recursor"
HIT_NAMES = [("www.example.com", "A"), ("www.example.com", "AAAA"), ("example.com", "MX"),
             ("alias.example.com", "A"), ("www.example.net", "A"), ("www.example.org", "A"),
             ("www.sub.example.com", "A"), ("host.wild.example.com", "A")]
COLD_NAMES = 600000


def log(msg):
    print(msg, flush=True)


def pin(pid, cpu):
    for p in benchrun.process_tree(pid):
        try:
            for tid in os.listdir("/proc/%d/task" % p):
                os.sched_setaffinity(int(tid), {int(cpu)})
        except OSError:
            pass


def pdns_recursor_argv(tmp, port):
    d = os.path.join(tmp, "pdns-recursor")
    os.makedirs(d)
    hints = os.path.join(d, "root.hints")
    with open(hints, "w") as f:
        f.write(fake_tree.ROOT_HINTS)
    with open(os.path.join(d, "recursor.conf"), "w") as f:
        f.write(f"""local-address=127.0.0.1
local-port={port}
allow-from=127.0.0.0/8
hint-file={hints}
dont-query=
threads=1
pdns-distributes-queries=no
daemon=no
write-pid=no
socket-dir={d}
disable-syslog=yes
loglevel=3
qname-minimization=yes
dnssec=off
""")
    return [PDNS_RECURSOR, "--config-dir=" + d]


def unbound_argv(tmp, port):
    return fake_tree.unbound_conf(tmp, port)


RESOLVERS = {"unbound": (fake_tree.UNBOUND, unbound_argv),
             "pdns_recursor": (PDNS_RECURSOR, pdns_recursor_argv)}


class Args:
    clients = 4
    outstanding = 200
    timeout = 2


def measure(name, tmp, data, duration, round_no):
    binary, make_argv = RESOLVERS[name]
    port = benchrun.free_port()
    wd = os.path.join(tmp, "%s-r%d" % (name, round_no))
    os.makedirs(wd)
    argv = ["taskset", "-c", benchrun.SERVER_CPU] + make_argv(wd, port)
    proc = fake_tree.Proc("%s-r%d" % (name, round_no), argv, wd)
    try:
        deadline = time.monotonic() + fake_tree.START_TIMEOUT
        up = False
        while time.monotonic() < deadline and not up:
            try:
                r = fake_tree.ask("127.0.0.1", port, "www.example.com.", "A", timeout=1.0)
                up = bool(r.answer)
            except Exception:
                if proc.proc.poll() is not None:
                    break
                time.sleep(0.1)
        if not up:
            raise benchrun.BenchError("%s does not answer:\n%s" % (name, proc.tail()))
        out = {}
        for what, qfile, warm in (("hits", data["hits"], 2), ("cold", data["cold"], 0)):
            if warm:
                benchrun.run_dnsperf(Args, port, qfile, warm, os.path.join(wd, "warm.txt"))
            before = benchrun.tree_cpu(proc.proc.pid)
            sw = benchrun.tree_switches(proc.proc.pid)
            r = benchrun.run_dnsperf(Args, port, qfile, duration,
                                     os.path.join(wd, "dnsperf-%s.txt" % what),
                                     extra=("-n", "1") if what == "cold" else ())
            user_s, sys_s = benchrun.cpu_delta_seconds(before, benchrun.tree_cpu(proc.proc.pid))
            wakes = benchrun.switches_delta(sw, benchrun.tree_switches(proc.proc.pid))
            done = r["completed"] or 1
            r.update(us_per_q=(user_s + sys_s) * 1e6 / done, user=user_s * 1e6 / done,
                     sys=sys_s * 1e6 / done, wakes=wakes / done, cpu=(user_s + sys_s) / r["runtime"])
            bad = {k: v for k, v in r["rcodes"].items() if k != "NOERROR"}
            r["problem"] = ("rcodes %s" % bad) if sum(bad.values()) > done * 0.001 else None
            out[what] = r
            log("    %-6s qps %8.0f  cpu %5.1f%%  %6.2f us/q (user %.2f, sys %.2f)  wakes/q %.3f"
                "  lost %d%s" % (what, r["qps"], r["cpu"] * 100, r["us_per_q"], r["user"], r["sys"],
                                 r["wakes"], r["lost"], ("  !! " + r["problem"]) if r["problem"] else ""))
        return out
    finally:
        proc.stop()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--servers", default="unbound,pdns_recursor")
    ap.add_argument("--duration", type=float, default=8)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--keep", action="store_true")
    args = ap.parse_args()
    names = [n.strip() for n in args.servers.split(",") if n.strip()]
    skipped = []
    if "meridian" in names:
        names.remove("meridian")
        skipped.append(("meridian", "no iterative resolver yet (issue 9): nothing to measure"))
    for n in list(names):
        if n not in RESOLVERS:
            ap.error("unknown resolver %s (known: %s)" % (n, ", ".join(RESOLVERS)))
        if not os.access(RESOLVERS[n][0], os.X_OK):
            names.remove(n)
            skipped.append((n, "%s not installed" % RESOLVERS[n][0]))
    tmp = tempfile.mkdtemp(prefix="meridian-rbench-")
    tree = fake_tree.Tree(os.path.join(tmp, "tree"))
    os.makedirs(tree.tmp)
    results = {n: [] for n in names}
    try:
        data = {"hits": os.path.join(tmp, "hits.txt"), "cold": os.path.join(tmp, "cold.txt")}
        with open(data["hits"], "w") as f:
            f.write("".join("%s %s\n" % q for q in HIT_NAMES))
        with open(data["cold"], "w") as f:
            f.write("".join("n%d.wild.example.com A\n" % i for i in range(COLD_NAMES)))
        tree.start()
        for p in tree.procs:
            pin(p.proc.pid, benchrun.CLIENT_CPU)
        os.sched_setaffinity(0, {int(benchrun.CLIENT_CPU)})  # the broken servers' threads too
        for rnd in range(1, args.rounds + 1):
            order = names if rnd % 2 else list(reversed(names))
            log("bench: round %d/%d: %s" % (rnd, args.rounds, ", ".join(order)))
            for n in order:
                log("  %s" % n)
                results[n].append(measure(n, tmp, data, args.duration, rnd))
    finally:
        tree.stop()
        if args.keep:
            log("kept %s" % tmp)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    log("")
    log("Resolvers on the fake tree: %d round(s) x %gs, dnsperf -c %d -q %d and the tree on CPU %s, "
        "resolver (1 thread) on CPU %s" % (args.rounds, args.duration, Args.clients,
                                           Args.outstanding, benchrun.CLIENT_CPU,
                                           benchrun.SERVER_CPU))
    for n, why in skipped:
        log("SKIPPED %s: %s" % (n, why))
    base = names[0] if names else None
    for what, title in (("hits", "cache hits"), ("cold", "cold: distinct names, one miss each")):
        log("")
        log("== %s (%s) ==" % (what, title))
        hdr = "%-14s %9s %8s %6s %6s %8s %7s %8s %6s  %s" % (
            "resolver", "QPS", "us/q", "user", "sys", "ratio", "srvCPU", "wakes/q", "lost", "notes")
        log(hdr)
        log("-" * len(hdr))
        med = {}
        for n in names:
            rs = [r[what] for r in results[n] if what in r]
            if rs:
                med[n] = {k: statistics.median(r[k] for r in rs)
                          for k in ("qps", "us_per_q", "user", "sys", "cpu", "wakes")}
                med[n]["lost"] = sum(r["lost"] for r in rs)
                med[n]["problems"] = sorted({r["problem"] for r in rs if r["problem"]})
        for n, m in med.items():
            ratio = m["us_per_q"] / med[base]["us_per_q"] if base in med else None
            log("%-14s %9.0f %8.2f %6.2f %6.2f %8s %6.0f%% %8.3f %6d  %s" % (
                n, m["qps"], m["us_per_q"], m["user"], m["sys"],
                "%.2fx" % ratio if ratio else "n/a", m["cpu"] * 100, m["wakes"], m["lost"],
                "; ".join(m["problems"])))
    log("")
    log("ratio = resolver us/q / %s us/q (<1: cheaper than %s). cold QPS = names resolved per second."
        % (base, base))
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except benchrun.BenchError as e:
        log("bench: %s" % e)
        sys.exit(1)
