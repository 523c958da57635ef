#!/usr/bin/python3
"""Where a server's CPU goes per query: system calls, user vs kernel time, user-space instructions.

For each server (the same set-up as bench/run.py: pinned to CPU 0, one worker, dnsperf on CPU 1)
and each query set:

  cpu      a plain dnsperf run; utime and stime of the server's process tree from /proc, per
           answered query (user and system microseconds), and voluntary context switches per
           query ("wakes": how often a thread blocked and was woken; undisturbed by tracing).
  syscalls the same load with `strace -c -f -p PID` attached; system calls per answered query, by
           name (counts only: strace slows the server, so its times mean nothing, and the slower
           server sees fuller batches, so the counts are a lower bound for the batch-driven ones).
  Ir       the server started under `valgrind --tool=callgrind --instr-atstart=no`, instrumentation
           switched on with callgrind_control for a rate-limited dnsperf run (-Q, so nothing is
           lost to valgrind's slowness), then off; instructions executed in user space per
           answered query, and the top functions by inclusive cost.

perf counters are not available on the VMs this runs on; callgrind's Ir is exact and does not
depend on how loaded the machine is, so it is the figure to decide by.  Standard library only;
needs strace, valgrind and callgrind_annotate.  See bench/README.md, "Profile".
"""

import argparse
import os
import re
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.dont_write_bytecode = True
import gen_zone  # noqa: E402
import run  # noqa: E402

STRACE_LINE = re.compile(r"^\s*[\d.]+\s+[\d.]+\s+\d+\s+(\d+)\s+(?:(\d+)\s+)?(\w+)\s*$")


def strace_counts(path):
    """{syscall: calls} from an `strace -c` summary."""
    counts = {}
    with open(path) as f:
        for line in f:
            m = STRACE_LINE.match(line)
            if m and m.group(3) != "total":
                counts[m.group(3)] = int(m.group(1))
    return counts


def context_switches(root):
    """Voluntary context switches of every thread in the tree: each one is a thread that blocked
    (in recvmmsg, epoll_wait, ...) and was woken again; strace does not disturb this count."""
    total = 0
    for pid in run.process_tree(root):
        try:
            tids = os.listdir("/proc/%d/task" % pid)
        except OSError:
            continue
        for tid in tids:
            try:
                with open("/proc/%d/task/%s/status" % (pid, tid)) as f:
                    for line in f:
                        if line.startswith("voluntary_ctxt_switches:"):
                            total += int(line.split()[1])
            except OSError:
                pass
    return total


def measure_cpu(args, srv, qfile, workdir):
    before, sw_before = srv.cpu(), context_switches(srv.proc.pid)
    r = run.run_dnsperf(args, srv.port, qfile, args.duration, os.path.join(workdir, "cpu.txt"))
    user, system = run.cpu_delta_seconds(before, srv.cpu())
    switches = context_switches(srv.proc.pid) - sw_before
    n = max(r["completed"], 1)
    return {"qps": r["qps"], "lost": r["lost"], "us": (user + system) * 1e6 / n,
            "user": user * 1e6 / n, "sys": system * 1e6 / n, "wakes": switches / n}


def measure_syscalls(args, srv, qfile, workdir):
    out = os.path.join(workdir, "strace.txt")
    st = subprocess.Popen(["strace", "-c", "-f", "-p", str(srv.proc.pid), "-o", out],
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(1.0)  # attached to every thread
        r = run.run_dnsperf(args, srv.port, qfile, args.duration, os.path.join(workdir, "strace-dnsperf.txt"))
    finally:
        st.send_signal(signal.SIGINT)
        st.wait(timeout=30)
    n = max(r["completed"], 1)
    counts = strace_counts(out)
    return {"per_query": sum(counts.values()) / n, "lost": r["lost"],
            "by_call": {k: v / n for k, v in sorted(counts.items(), key=lambda kv: -kv[1])}}


def measure_ir(args, server, qfile, data, workdir, setup):
    port = run.free_port()
    outfile = os.path.join(workdir, "callgrind.out")
    geodir = os.path.join(data, "geo")
    base = (server.geo_command(workdir, port, geodir) if setup == "geo"
            else server.command(workdir, port, os.path.join(data, "bench.test.zone")))
    sim = (["--cache-sim=yes", "--branch-sim=yes", "--I1=32768,8,64", "--D1=32768,8,64",
            "--LL=%d,16,64" % args.ll_bytes]
           if args.cache_sim else [])
    command = ["valgrind", "--tool=callgrind", "--instr-atstart=no",
               "--callgrind-out-file=" + outfile] + sim + base
    srv = run.Running(server, workdir, port, command, args.start_timeout)
    try:
        # Warm (caches, first-touch pages), unmeasured.
        run.run_dnsperf(args, port, qfile, 2, os.path.join(workdir, "ir-warm.txt"), ["-Q", str(args.rate)])
        subprocess.run(["callgrind_control", "-i", "on", str(srv.proc.pid)], check=True,
                       stdout=subprocess.DEVNULL, timeout=60)
        r = run.run_dnsperf(args, port, qfile, args.ir_duration, os.path.join(workdir, "ir-dnsperf.txt"),
                            ["-Q", str(args.rate)])
        subprocess.run(["callgrind_control", "-i", "off", str(srv.proc.pid)], check=True,
                       stdout=subprocess.DEVNULL, timeout=60)
    finally:
        srv.stop()  # callgrind writes its file at exit
    files = [os.path.join(workdir, f) for f in os.listdir(workdir) if f.startswith("callgrind.out")]
    total = 0
    misses = {}
    for path in files:
        events = []
        with open(path) as f:
            for line in f:
                if line.startswith("events:"):
                    events = line.split()[1:]
                if line.startswith("totals:") or line.startswith("summary:"):
                    values = dict(zip(events, (int(v) for v in line.split()[1:])))
                    if values.get("Ir", 0) > total:
                        total = values["Ir"]
                        # D1 and last-level data misses (reads + writes), when simulated.
                        misses = {"D1": values.get("D1mr", 0) + values.get("D1mw", 0),
                                  "LL": values.get("DLmr", 0) + values.get("DLmw", 0),
                                  "I1": values.get("I1mr", 0),
                                  "branch": values.get("Bcm", 0) + values.get("Bim", 0)} \
                            if "D1mr" in values else {}
    ann = subprocess.run(["callgrind_annotate", "--inclusive=yes", "--threshold=99"] + files[:1],
                         capture_output=True, text=True).stdout
    n = max(r["completed"], 1)
    top = []
    for line in ann.splitlines():
        m = re.match(r"^\s*([\d,]+)\s+\(\s*[\d.]+%\)\s+(.*)$", line)
        if m:
            top.append((int(m.group(1).replace(",", "")) / n, m.group(2)))
    return {"ir": total / n, "misses": {k: v / n for k, v in misses.items()}, "lost": r["lost"], "completed": r["completed"], "top": top[: args.top],
            "files": files}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--servers", default="meridian,gdnsd", help="comma list (names as in run.py)")
    ap.add_argument("--queries", default="hits,mix", help="comma list of query sets (hits,mix,geo,static)")
    ap.add_argument("--what", default="cpu,syscalls,ir", help="comma list from cpu,syscalls,ir")
    ap.add_argument("--duration", type=int, default=10, help="seconds of the cpu and strace runs")
    ap.add_argument("--ir-duration", type=int, default=10, help="seconds of the callgrind run")
    ap.add_argument("--rate", type=int, default=3000, help="dnsperf -Q under callgrind (queries/s)")
    ap.add_argument("--cache-sim", action="store_true",
                    help="Ir runs also simulate the caches (I1 and D1 32 KiB; last level --ll-bytes) and the "
                         "branch predictor, and print data, instruction and branch misses per query")
    ap.add_argument("--ll-bytes", type=int, default=512 * 1024, help="simulated last-level cache size")
    ap.add_argument("--top", type=int, default=25, help="functions listed per callgrind run")
    ap.add_argument("--meridian", default=os.path.join(run.ROOT, "build", "meridian"))
    ap.add_argument("--floor", default=os.path.join(run.ROOT, "build", "udp_floor"))
    ap.add_argument("--meridian-arg", action="append", default=[])
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--outstanding", type=int, default=200)
    ap.add_argument("--timeout", type=int, default=2)
    ap.add_argument("--start-timeout", type=int, default=300)
    ap.add_argument("--data", help="bench data directory (as run.py --data)")
    ap.add_argument("--keep", help="keep the callgrind and strace files in this directory")
    args = ap.parse_args()

    what = set(args.what.split(","))
    qsets = args.queries.split(",")
    data = os.path.abspath(args.data or tempfile.mkdtemp(prefix="meridian-profile-data-"))
    if not os.path.exists(os.path.join(data, "hits.txt")):
        gen_zone.generate(data)
    if any(run.QUERY_SETS[q][1] == "geo" for q in qsets) and not os.path.exists(os.path.join(data, "geo")):
        run.geo_gen.generate(os.path.join(data, "geo"), os.path.abspath(args.meridian))
    keep = args.keep or tempfile.mkdtemp(prefix="meridian-profile-")
    os.makedirs(keep, exist_ok=True)
    for name in args.servers.split(","):
        server = run.SERVER_CLASSES[name](args)
        for qs in qsets:
            qfile, setup = run.QUERY_SETS[qs]
            qfile = os.path.join(data, qfile)
            why = server.available(setup)
            if why:
                print("%s %s: skipped (%s)" % (name, qs, why))
                continue
            workdir = tempfile.mkdtemp(prefix="%s-%s-" % (name, qs), dir=keep)
            line = ["%-8s %-6s" % (name, qs)]
            if what & {"cpu", "syscalls"}:
                port = run.free_port()
                command = (server.geo_command(workdir, port, os.path.join(data, "geo")) if setup == "geo"
                           else server.command(workdir, port, os.path.join(data, "bench.test.zone")))
                srv = run.Running(server, workdir, port, command, args.start_timeout)
                try:
                    run.run_dnsperf(args, port, qfile, 2, os.path.join(workdir, "warm.txt"))
                    if "cpu" in what:
                        c = measure_cpu(args, srv, qfile, workdir)
                        line.append("cpu %.2f us/q (user %.2f, sys %.2f) wakes %.3f/q qps %.0f lost %d"
                                    % (c["us"], c["user"], c["sys"], c["wakes"], c["qps"], c["lost"]))
                    if "syscalls" in what:
                        s = measure_syscalls(args, srv, qfile, workdir)
                        line.append("syscalls %.3f/q [%s]" % (s["per_query"], ", ".join(
                            "%s %.3f" % kv for kv in list(s["by_call"].items())[:6])))
                finally:
                    srv.stop()
            if "ir" in what:
                ir = measure_ir(args, server, qfile, data, workdir, setup)
                line.append("Ir %.0f/q (%d answered, %d lost)" % (ir["ir"], ir["completed"], ir["lost"]))
                if ir["misses"]:
                    line.append("misses per query: D1 %.2f, LL %.2f, I1 %.2f, branch %.2f"
                                % tuple(ir["misses"][k] for k in ("D1", "LL", "I1", "branch")))
                print("  ".join(line), flush=True)
                for cost, fn in ir["top"]:
                    print("      %10.0f  %s" % (cost, fn))
            else:
                print("  ".join(line), flush=True)
    print("files kept in %s" % keep)


if __name__ == "__main__":
    sys.exit(main())
