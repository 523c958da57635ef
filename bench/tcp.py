#!/usr/bin/python3
"""TCP figures: Meridian beside Knot DNS, same machine, same zone, one worker each.

For each server (one worker pinned to CPU 0, as bench/run.py does; the client runs here):

  idle memory   server RSS growth per idle connection, over N idle connections (each answered
                once, then left open; the server's idle timeout and connection limit set high)
  connections/s new connection + one query + close, one client in a loop for --duration
                seconds; also the server CPU time per connection (utime+stime of its tree)
  slow readers  50 clients that send 4000 queries each and never read, with the server's
                connection limit at 50 and its I/O timeout at its default (Knot 500 ms,
                Meridian 5000 ms) or --io-timeout-ms: seconds until the server has closed all 50,
                and whether a fresh query is then answered
  at the limit  N idle connections against a limit of N/2: is a fresh query answered?

Benchmarks measure, they assert nothing: a server that fails a figure gets "no" or "-".

Usage: bench/tcp.py [--meridian PATH] [--servers meridian,knot] [--connections 2000]
                    [--duration 5] [--io-timeout-ms MS] [--json FILE]
"""

import argparse
import json
import os
import resource
import select
import shutil
import socket
import struct
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
sys.dont_write_bytecode = True
import run as bench  # noqa: E402  (server classes, Running, free_port, CPU accounting)

ZONE = bench.ZONE
ZONE_TEXT = "\n".join(
    [f"$ORIGIN {ZONE}.", "$TTL 300", "@ SOA ns1 hostmaster 1 7200 3600 1209600 300", "@ NS ns1",
     "ns1 A 192.0.2.1", "www A 192.0.2.2"]
    + [f'huge TXT "huge-record-{i:02d}-padding-padding-padding-padding"' for i in range(60)]) + "\n"


def log(msg):
    print(msg, file=sys.stderr, flush=True)


class TcpMeridian(bench.Meridian):
    def tcp_command(self, workdir, port, zonefile, max_clients, io_timeout_ms):
        cmd = self.command(workdir, port, zonefile) + [
            "--set", "server.tcp_idle_timeout_ms=600000",
            "--set", f"server.tcp_max_connections={max_clients}"]
        if io_timeout_ms is not None:
            cmd += ["--set", f"server.tcp_io_timeout_ms={io_timeout_ms}"]
        return cmd


class TcpKnot(bench.Knot):
    def tcp_command(self, workdir, port, zonefile, max_clients, io_timeout_ms):
        cmd = self.command(workdir, port, zonefile)
        conf = cmd[-1]
        with open(conf) as f:
            text = f.read()
        extra = f"    tcp-max-clients: {max_clients}\n    tcp-idle-timeout: 600\n"
        if io_timeout_ms is not None:
            extra += f"    tcp-io-timeout: {io_timeout_ms}\n"
        text = text.replace("    tcp-workers: 1\n", "    tcp-workers: 1\n" + extra)
        with open(conf, "w") as f:
            f.write(text)
        return cmd


SERVERS = {"meridian": TcpMeridian, "knot": TcpKnot}


def wire_query(qid, name, qtype):
    q = struct.pack(">HHHHHH", qid, 0, 1, 0, 0, 0)
    for label in name.split("."):
        q += bytes([len(label)]) + label.encode()
    return q + b"\x00" + struct.pack(">HH", qtype, 1)


def frame(m):
    return struct.pack(">H", len(m)) + m


def recv_exact(s, n):
    buf = b""
    while len(buf) < n:
        chunk = s.recv(n - len(buf))
        if not chunk:
            return None
        buf += chunk
    return buf


def exchange(port, s=None, qid=0x4242):
    """One query on s (or a fresh connection): True when answered with the same ID."""
    own = s is None
    try:
        if own:
            s = socket.create_connection(("127.0.0.1", port), timeout=3)
        s.sendall(frame(wire_query(qid, "www." + ZONE, 1)))
        ln = recv_exact(s, 2)
        if ln is None:
            return False
        m = recv_exact(s, struct.unpack(">H", ln)[0])
        return m is not None and m[:2] == struct.pack(">H", qid)
    except OSError:
        return False
    finally:
        if own and s is not None:
            s.close()


def rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def open_idle(port, n):
    """n connections, each answered once and left open; stops after 5 unanswered."""
    socks, answered = [], 0
    for i in range(n):
        if i - answered >= 5:
            break
        try:
            s = socket.create_connection(("127.0.0.1", port), timeout=3)
        except OSError:
            continue
        socks.append(s)
        answered += exchange(port, s, qid=i & 0xFFFF)
    return socks, answered


def closed_by_peer(socks, limit, pending):
    """Seconds until the peer closed every socket (None if not all within limit), pumping
    `pending` octets into each whenever it is writable; the replies are never read."""
    mask = select.POLLRDHUP | select.POLLHUP | select.POLLERR
    p = select.poll()
    by_fd = {}
    for i, s in enumerate(socks):
        p.register(s.fileno(), mask | select.POLLOUT)
        by_fd[s.fileno()] = i
    closed = set()
    t0 = time.monotonic()
    while len(closed) < len(socks) and time.monotonic() - t0 < limit:
        for fd, ev in p.poll(100):
            i = by_fd[fd]
            if not ev & mask and ev & select.POLLOUT:
                try:
                    pending[i] = pending[i][socks[i].send(pending[i][:65536]):]
                except BlockingIOError:
                    pass
                except OSError:
                    ev |= select.POLLERR
                if not pending[i] and not ev & mask:
                    p.modify(fd, mask)
            if ev & mask:
                closed.add(i)
                p.unregister(fd)
    return (time.monotonic() - t0) if len(closed) == len(socks) else None, len(closed)


def start(args, server, workroot, max_clients, io_timeout_ms=None):
    workdir = tempfile.mkdtemp(prefix=f"{server.name}-tcp-", dir=workroot)
    zonefile = os.path.join(workdir, "bench.test.zone")
    with open(zonefile, "w") as f:
        f.write(ZONE_TEXT)
    port = bench.free_port()
    cmd = server.tcp_command(workdir, port, zonefile, max_clients, io_timeout_ms)
    return bench.Running(server, workdir, port, cmd, 30), port


def measure(args, server, workroot):
    r = {}
    n = args.connections
    # idle memory
    run, port = start(args, server, workroot, max_clients=2 * n + 100)
    try:
        warm, _ = open_idle(port, 20)
        for s in warm:
            s.close()
        time.sleep(0.3)
        before = rss_kb(run.proc.pid)
        socks, answered = open_idle(port, n)
        after = rss_kb(run.proc.pid)
        r["idle_answered"] = answered
        r["idle_kb_per_conn"] = (after - before) / max(1, len(socks))
        log(f"  {server.name:8} idle: {answered}/{n} answered, RSS {before} -> {after} kB, "
            f"{r['idle_kb_per_conn']:.1f} kB per connection")
        for s in socks:
            s.close()
        time.sleep(0.3)
        # connections per second
        cpu0 = run.cpu()
        t0 = time.monotonic()
        count = ok = 0
        while time.monotonic() - t0 < args.duration:
            ok += exchange(port, qid=count & 0xFFFF)
            count += 1
        wall = time.monotonic() - t0
        cpu_s = bench.cpu_delta_seconds(cpu0, run.cpu())
        r["conn_per_s"] = ok / wall
        r["us_per_conn"] = cpu_s * 1e6 / max(1, ok)
        log(f"  {server.name:8} connections: {ok}/{count} answered, {r['conn_per_s']:.0f}/s, "
            f"server CPU {r['us_per_conn']:.1f} us per connection")
    finally:
        run.stop()

    # slow readers
    run, port = start(args, server, workroot, max_clients=50, io_timeout_ms=args.io_timeout_ms)
    slow = []
    try:
        stream = b"".join(frame(wire_query(i & 0xFFFF, "huge." + ZONE, 16)) for i in range(4000))
        for _ in range(50):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            s.settimeout(3)
            s.connect(("127.0.0.1", port))
            s.setblocking(False)
            slow.append(s)
        secs, closed = closed_by_peer(slow, args.slow_limit, [stream] * 50)
        r["slow_closed"] = closed
        r["slow_s"] = secs
        r["slow_fresh"] = exchange(port)
        log(f"  {server.name:8} slow readers: {closed}/50 closed"
            + (f" after {secs:.2f}s" if secs is not None else f" within {args.slow_limit}s")
            + f", fresh query answered: {r['slow_fresh']}")
    finally:
        for s in slow:
            s.close()
        run.stop()

    # at the limit
    run, port = start(args, server, workroot, max_clients=n // 2)
    try:
        socks, answered = open_idle(port, n)
        r["limit_answered"] = answered
        r["limit_fresh"] = exchange(port)
        log(f"  {server.name:8} at the limit ({n} idle, limit {n // 2}): {answered}/{n} answered, "
            f"fresh query answered: {r['limit_fresh']}")
        for s in socks:
            s.close()
    finally:
        run.stop()
    return r


def report(args, results):
    names = list(results)
    rows = [
        ("idle memory per connection (kB RSS)", lambda r: f"{r['idle_kb_per_conn']:.1f}"),
        (f"idle connections answered (of {args.connections})", lambda r: str(r["idle_answered"])),
        ("connections/s (connect, 1 query, close)", lambda r: f"{r['conn_per_s']:.0f}"),
        ("server CPU per connection (us)", lambda r: f"{r['us_per_conn']:.1f}"),
        ("slow readers closed (of 50)", lambda r: str(r["slow_closed"])),
        ("  ... all closed after (s)", lambda r: "-" if r["slow_s"] is None else f"{r['slow_s']:.2f}"),
        ("  ... then a fresh query answered", lambda r: "yes" if r["slow_fresh"] else "no"),
        (f"{args.connections} idle vs limit {args.connections // 2}: fresh query answered",
         lambda r: "yes" if r["limit_fresh"] else "no"),
    ]
    io = f"{args.io_timeout_ms} ms" if args.io_timeout_ms is not None else "defaults (Knot 500 ms, Meridian 5000 ms)"
    print(f"\nTCP, one worker each; I/O timeout: {io}")
    width = max(len(t) for t, _ in rows)
    print("  " + " " * width + "".join(f"{n:>12}" for n in names))
    for title, fmt in rows:
        cells = []
        for n in names:
            try:
                cells.append(fmt(results[n]))
            except (KeyError, TypeError):
                cells.append("-")
        print("  " + title.ljust(width) + "".join(f"{c:>12}" for c in cells))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--meridian", default=os.path.join(ROOT, "build", "meridian"))
    ap.add_argument("--meridian-arg", action="append", default=[])
    ap.add_argument("--servers", default="meridian,knot")
    ap.add_argument("--connections", type=int, default=2000)
    ap.add_argument("--duration", type=float, default=5, help="seconds of the connections/s loop")
    ap.add_argument("--io-timeout-ms", type=int, help="I/O timeout for both (default: each one's own)")
    ap.add_argument("--slow-limit", type=float, default=30, help="seconds to wait for the slow readers")
    ap.add_argument("--json")
    args = ap.parse_args()

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = 2 * args.connections + 200
    if soft < need:
        if hard != resource.RLIM_INFINITY and hard < need:
            log(f"RLIMIT_NOFILE hard limit {hard} < {need}: lower --connections")
            return 2
        resource.setrlimit(resource.RLIMIT_NOFILE, (need, hard))
    results = {}
    workroot = tempfile.mkdtemp(prefix="meridian-bench-tcp-")
    try:
        for name in args.servers.split(","):
            server = SERVERS[name](args)
            why = server.available()
            if why:
                log(f"  {name}: skipped ({why})")
                continue
            try:
                results[name] = measure(args, server, workroot)
            except bench.BenchError as e:
                log(f"  {name}: failed: {e}")
    finally:
        shutil.rmtree(workroot, ignore_errors=True)
    report(args, results)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
