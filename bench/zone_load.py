#!/usr/bin/python3
"""Zone-load figures: Meridian beside Knot DNS and NSD, same machine, same zone.

A zone of about --records records is written once: with --mix hosts (the default) in
bench/gen_zone.py's bench.test. layout (A for every host, AAAA for every second, MX for every
tenth, TXT for every seventh); with --mix names mostly records whose RDATA is names and strings
(per host: one A, one MX, one TXT of two strings with spaces and a quoted ';', one CNAME alias and
one delegation NS: 4 of every 5 records are MX/TXT/CNAME/NS). Each server is
then started on it, one after another (loopback, own config in a temporary directory, pinned to
CPU 0 as bench/run.py does, stopped by PID), and measured:

  ready        seconds from the start of the process until it answers SOA bench.test.
               authoritatively (NOERROR, AA, one answer); probed every 20 ms
  peak RSS     VmHWM of the server's largest process (/proc/PID/status), MB
  RSS          VmRSS of that process, --settle seconds after it is ready, MB

For Meridian the zone file is then replaced by a small zone (--small-records, newer serial) and
the server is sent SIGHUP: once it serves the new serial, and --settle seconds later, its VmRSS is
reported again, beside the RSS of a fresh Meridian started on that small zone.

Ratios are against Knot. Benchmarks measure, they assert nothing.

Usage: bench/zone_load.py [--meridian PATH] [--servers meridian,knot,nsd] [--records 1000000]
                          [--mix hosts|names] [--small-records 1000] [--settle 2] [--json FILE]
"""

import argparse
import json
import os
import random
import shutil
import signal
import socket
import struct
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
sys.dont_write_bytecode = True
import gen_zone  # noqa: E402
import run as bench  # noqa: E402  (server classes, Running, free_port)

ZONE = bench.ZONE


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def names_for(records, mix="hosts"):
    """The number of hostN names whose records (plus the 7 apex ones) come closest to `records`."""
    if mix == "names":
        return max(1, round((records - 7) / NAMES_PER_HOST))
    per = 0
    for i in range(70):
        per += len(gen_zone.host_types(i))
    return max(1, round((records - 7) * 70 / per))


NAMES_PER_HOST = 5


def write_names_zone(path, n):
    """bench.test. with n hosts of NAMES_PER_HOST records each, 4 of them MX/TXT/CNAME/NS."""
    origin = gen_zone.ORIGIN
    with open(path, "w") as f:
        f.write("$ORIGIN %s\n$TTL 3600\n" % origin)
        f.write("@ IN SOA ns1.%s hostmaster.%s 2024010101 7200 3600 1209600 3600\n"
                % (origin, origin))
        f.write("@ IN NS ns1.%s\n@ IN NS ns2.%s\n" % (origin, origin))
        f.write("ns1 IN A 127.0.0.1\nns2 IN A 127.0.0.2\nmail IN A 192.0.2.25\n")
        out = []
        for i in range(n):
            name = "host%d" % i
            out.append("%s IN A 10.%d.%d.%d\n" % (name, (i >> 16) & 255, (i >> 8) & 255, i & 255))
            out.append("%s IN MX %d mx%d.provider.example.net.\n" % (name, 10 + i % 3, i % 50))
            out.append('%s IN TXT "v=spf1 ip4:10.%d.%d.0/24 include:_spf.example.net ~all" '
                       '"id=%d; tier=%d"\n' % (name, (i >> 16) & 255, (i >> 8) & 255, i, i % 4))
            out.append("www%d IN CNAME %s\n" % (i, name))
            out.append("sub%d IN NS ns%d.dns-host.example.org.\n" % (i, i % 20))
            if len(out) >= 10000:
                f.write("".join(out))
                out = []
        f.write("".join(out))


def count_records(path):
    n = 0
    with open(path) as f:
        for line in f:
            if line and not line.startswith("$"):
                n += 1
    return n


def soa_serial(port, timeout=0.3):
    """The serial of an authoritative SOA bench.test answer from 127.0.0.1:port, or None."""
    qid = random.randrange(65536)
    q = struct.pack(">HHHHHH", qid, 0, 1, 0, 0, 0)
    for label in ZONE.split("."):
        q += bytes([len(label)]) + label.encode()
    q += b"\x00" + struct.pack(">HH", 6, 1)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.settimeout(timeout)
        s.sendto(q, ("127.0.0.1", port))
        data = s.recv(4096)
    except OSError:
        return None
    finally:
        s.close()
    if len(data) < 12:
        return None
    rid, flags, qd, an, _, _ = struct.unpack(">HHHHHH", data[:12])
    if rid != qid or (flags & 0x000F) != 0 or not flags & 0x0400 or an < 1:
        return None
    # Question: skip the name and 4 octets; answer: owner is a pointer (2), then 10, then RDATA.
    pos = 12
    while data[pos] != 0:
        pos += 1 + data[pos]
    pos += 5
    pos += 2 if data[pos] & 0xC0 == 0xC0 else 0
    pos += 10
    for _ in range(2):  # MNAME, RNAME
        while True:
            b = data[pos]
            if b & 0xC0 == 0xC0:
                pos += 2
                break
            pos += 1 + b
            if b == 0:
                break
    return struct.unpack(">I", data[pos:pos + 4])[0]


class Running(bench.Running):
    """bench.Running with a 20 ms readiness probe (its own polls every 100 ms)."""

    def _wait_ready(self, start_timeout):
        self._remember()
        t0 = time.monotonic()
        while True:
            self._remember()
            if self.proc.poll() is not None:
                raise bench.BenchError("%s exited with status %s during startup\n%s"
                                       % (self.server.name, self.proc.returncode,
                                          self.log_tail()))
            if bench.soa_probe(self.port, timeout=0.05):
                break
            if time.monotonic() - t0 > start_timeout:
                raise bench.BenchError("%s did not answer SOA within %ds\n%s"
                                       % (self.server.name, start_timeout, self.log_tail()))
            time.sleep(0.02)
        self.startup_s = time.monotonic() - t0
        self._remember()


def memory(running):
    """(VmHWM, VmRSS) in MB of the largest process of the server's tree."""
    best = (0, 0)
    for pid in bench.process_tree(running.proc.pid):
        fields = {}
        try:
            with open("/proc/%d/status" % pid) as f:
                for line in f:
                    k, _, v = line.partition(":")
                    if k in ("VmHWM", "VmRSS"):
                        fields[k] = int(v.split()[0])
        except OSError:
            continue
        cur = (fields.get("VmHWM", 0), fields.get("VmRSS", 0))
        if cur[1] > best[1]:
            best = cur
    return best[0] / 1024.0, best[1] / 1024.0


def measure(args, cls, zonefile, small, workroot):
    server = cls(args)
    why = server.available()
    if why:
        return {"skipped": why}
    workdir = tempfile.mkdtemp(prefix=server.name + "-", dir=workroot)
    # Meridian reads the zone through a link that the reload step points at the small zone.
    link = os.path.join(workdir, "zone.db")
    os.symlink(zonefile, link)
    port = bench.free_port()
    log("%s: starting on %s" % (server.name, zonefile))
    r = Running(server, workdir, port, server.command(workdir, port, link), args.timeout)
    out = {}
    try:
        out["ready_s"] = r.startup_s
        time.sleep(args.settle)
        out["peak_mb"], out["rss_mb"] = memory(r)
        if server.name == "meridian":
            tmp = link + ".new"
            os.symlink(small, tmp)
            os.replace(tmp, link)
            t0 = time.monotonic()
            os.kill(r.proc.pid, signal.SIGHUP)
            while soa_serial(port) != SMALL_SERIAL:
                if time.monotonic() - t0 > args.timeout:
                    raise bench.BenchError("meridian did not serve the small zone after SIGHUP")
                time.sleep(0.02)
            out["reload_small_s"] = time.monotonic() - t0
            time.sleep(args.settle)
            _, out["rss_after_small_mb"] = memory(r)
    finally:
        r.stop()
    if server.name == "meridian":
        port = bench.free_port()
        r = Running(server, workdir, port, server.command(workdir, port, small), args.timeout)
        try:
            time.sleep(args.settle)
            _, out["rss_small_fresh_mb"] = memory(r)
        finally:
            r.stop()
    return out


SMALL_SERIAL = 2024010199


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--meridian", default=os.path.join(ROOT, "build", "meridian"))
    ap.add_argument("--meridian-arg", action="append", default=[])
    ap.add_argument("--servers", default="meridian,knot,nsd")
    ap.add_argument("--records", type=int, default=1000000)
    ap.add_argument("--mix", choices=("hosts", "names"), default="hosts",
                    help="hosts: gen_zone.py's A/AAAA-heavy zone; names: mostly MX/TXT/CNAME/NS")
    ap.add_argument("--small-records", type=int, default=1000)
    ap.add_argument("--settle", type=float, default=2.0, help="seconds before reading RSS")
    ap.add_argument("--timeout", type=int, default=300)
    ap.add_argument("--json")
    args = ap.parse_args()

    workroot = tempfile.mkdtemp(prefix="meridian-zoneload-")
    try:
        zonefile = os.path.join(workroot, "big.zone")
        small = os.path.join(workroot, "small.zone")
        write = write_names_zone if args.mix == "names" else gen_zone.write_zone
        write(zonefile, names_for(args.records, args.mix))
        write(small, names_for(args.small_records, args.mix))
        with open(small) as f:
            text = f.read().replace("2024010101", str(SMALL_SERIAL), 1)
        with open(small, "w") as f:
            f.write(text)
        records = count_records(zonefile)
        log("zone: %d records (%.0f MB file)" % (records, os.path.getsize(zonefile) / 1e6))
        results = {}
        for name in args.servers.split(","):
            try:
                results[name] = measure(args, bench.SERVER_CLASSES[name], zonefile, small, workroot)
            except bench.BenchError as e:
                log("%s: %s" % (name, e))
                results[name] = {"failed": str(e)}
    finally:
        shutil.rmtree(workroot, ignore_errors=True)

    knot = results.get("knot", {})

    def ratio(name, key):
        a, b = results[name].get(key), knot.get(key)
        return "%.2fx" % (a / b) if a and b else "-"

    print("zone-load: %d records (--mix %s), ready = first authoritative SOA answer; RSS of the "
          "largest process, %.0f s after ready" % (records, args.mix, args.settle))
    print("%-9s %8s %8s %9s %8s %9s %9s" % ("server", "ready s", "vs knot", "peak MB", "RSS MB",
                                           "vs knot", "peak/knot"))
    for name, r in results.items():
        if "ready_s" not in r:
            print("%-9s %s" % (name, r.get("skipped") or r.get("failed", "-").splitlines()[0]))
            continue
        print("%-9s %8.2f %8s %9.0f %8.0f %9s %9s" % (name, r["ready_s"], ratio(name, "ready_s"),
                                                      r["peak_mb"], r["rss_mb"],
                                                      ratio(name, "rss_mb"),
                                                      ratio(name, "peak_mb")))
    m = results.get("meridian", {})
    if "rss_after_small_mb" in m:
        print("meridian after SIGHUP to a %d-record zone: serving it after %.2f s, RSS %.0f MB "
              "(a fresh start on that zone: %.0f MB)"
              % (args.small_records, m["reload_small_s"], m["rss_after_small_mb"],
                 m["rss_small_fresh_mb"]))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"records": records, "mix": args.mix, "results": results}, f, indent=1)


if __name__ == "__main__":
    main()
