#!/usr/bin/python3
"""Control-loop figures during a big reload (or, with --patch, a zone change through the API): how
long the control loop stalls and how many health probes keep their schedule while a zone of
--records records is reloaded (or changed).

Meridian serves bench.test. (bench/gen_zone.py's layout, about --records records) and a steered
service whose one endpoint is health-checked over TCP every --interval-ms against a local backend
that notes the time of each connection. Each round touches the zone file and runs
`meridianctl reload` (whose reply comes once the new zone is published) while a client sends
`status` over the control socket every 20 ms. Per round:

  reload       seconds from sending `reload` until its reply
  probes       connections the backend saw inside that window / how many the schedule asks for
               (window / interval)
  probe gap    the longest time between two probes from the last one before the window to the
               first one after it, minus the interval: how late the control loop ran its timers
  status max   the slowest `status` answer sent during the window or the 0.5 s after it (when the
               replaced zone is freed on the control thread): the control loop's largest stall as
               a control-socket (later HTTP API) client sees it

--patch: instead of the touch and `reload`, each round sends one PATCH (a REPLACE of one A RRset)
to the API, answered once the change is published; `reload s` is then the PATCH's time. The
server gets control.state_dir and an API key; one unmeasured PATCH first opens the zone for
editing (its file loaded again and its journal started).

Give --meridian twice to compare two binaries (e.g. before and after a change); each runs on its
own fresh copy of the configuration. Loopback only, free ports, every process stopped by PID.
Benchmarks measure, they assert nothing.

Usage: bench/control_loop.py [--meridian PATH]... [--meridianctl PATH] [--records 1000000]
                             [--interval-ms 100] [--rounds 3] [--patch]
"""

import argparse
import os
import select
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
sys.dont_write_bytecode = True
import gen_zone  # noqa: E402
import zone_load  # noqa: E402  (names_for, soa_serial)


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def free_port(kind=socket.SOCK_STREAM):
    s = socket.socket(socket.AF_INET, kind)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class ProbeBackend:
    """Accepts TCP connections (a `tcp` check's probes), closes them, and notes when each came."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.times = []
        self.stopping = False
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()

    def _loop(self):
        while not self.stopping:
            ready, _, _ = select.select([self.sock], [], [], 0.05)
            if ready:
                c, _ = self.sock.accept()
                self.times.append(time.monotonic())
                c.close()

    def stop(self):
        self.stopping = True
        self.thread.join(2)
        self.sock.close()


def control(path, command, timeout=120):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.connect(path)
    s.sendall(command.encode() + b"\n")
    out = b""
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        out += chunk
    s.close()
    return out.decode(errors="replace")


SECRET = "control-loop-bench-secret"


def patch(api_port, n):
    body = ('{"rrsets": [{"name": "host1.bench.test.", "type": "A", "ttl": 300, '
            '"changetype": "REPLACE", "records": [{"content": "198.51.100.%d", "disabled": false}]}]}'
            % (n % 250 + 1)).encode()
    req = urllib.request.Request(f"http://127.0.0.1:{api_port}/api/v1/servers/localhost/zones/bench.test.",
                                 data=body, method="PATCH",
                                 headers={"X-API-Key": SECRET, "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=300) as resp:
            return "ok" if resp.status == 204 else f"error {resp.status}"
    except urllib.error.HTTPError as e:
        return f"error {e.code} {e.read()[:200]!r}"


def config(tmp, port, backend_port, zonefile, interval_ms, api=None):
    svc = os.path.join(tmp, "svc.test.zone")
    with open(svc, "w") as f:
        f.write("$ORIGIN svc.test.\n$TTL 300\n@ IN SOA ns hostmaster 1 3600 600 86400 300\n"
                "@ IN NS ns\nns IN A 192.0.2.1\nwww IN A 192.0.2.2\n")
    path = os.path.join(tmp, "meridian.toml")
    with open(path, "w") as f:
        f.write(f'[server]\nlisten = ["127.0.0.1:{port}"]\nthreads = 1\n\n'
                f'[control]\nsocket = "{os.path.join(tmp, "ctl.sock")}"\n'
                + (f'state_dir = "{os.path.join(tmp, "state")}"\n\n[api]\nlisten = ["127.0.0.1:{api[0]}"]\n\n'
                   f'[[api.key]]\nname = "bench"\nhash = "{api[1]}"\nscope = "read-write"\n\n'
                   if api else "\n") +
                '[[region]]\nname = "eu"\nlatitude = 50\nlongitude = 8\n\n'
                f'[[check]]\nname = "port"\ntype = "tcp"\nport = {backend_port}\n'
                f'interval_ms = {interval_ms}\ntimeout_ms = {max(10, interval_ms - 10)}\nrise = 1\nfall = 3\n\n'
                f'[[zone]]\nname = "bench.test"\nfile = "{zonefile}"\n\n'
                f'[[zone]]\nname = "svc.test"\nfile = "{svc}"\n\n'
                '[[service]]\nname = "www.svc.test"\npolicy = ["up", "first_n"]\ncheck = "port"\n'
                '[[service.pool]]\nregion = "eu"\nendpoints = ["127.0.0.1"]\n')
    return path


def measure(binary, zonefile, args):
    tmp = tempfile.mkdtemp(prefix="meridian-control-loop-")
    backend = ProbeBackend()
    port = free_port(socket.SOCK_DGRAM)
    api = None
    if args.patch:
        key_hash = subprocess.run([binary, "api", "hash-key", SECRET], capture_output=True, text=True,
                                  check=True).stdout.strip()
        api = (free_port(), key_hash)
    cfg = config(tmp, port, backend.port, zonefile, args.interval_ms, api)
    sock = os.path.join(tmp, "ctl.sock")
    logf = open(os.path.join(tmp, "log.txt"), "w")
    proc = subprocess.Popen([binary, "--config", cfg], stdout=logf, stderr=subprocess.STDOUT)
    rounds = []
    try:
        deadline = time.monotonic() + 120
        while zone_load.soa_serial(port) is None:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{binary} did not start; see {logf.name}")
            time.sleep(0.05)
        while not os.path.exists(sock):
            time.sleep(0.02)
        time.sleep(1.5)  # the first probes (spread over up to 1 s) are under way
        interval = args.interval_ms / 1000.0
        if args.patch:
            log(f"first PATCH (opens the zone for editing): {patch(api[0], 0)}")
        for n in range(args.rounds):
            reply = {}
            if not args.patch:
                now = time.time()
                os.utime(zonefile, (now, now))

            def reload():
                reply["t0"] = time.monotonic()
                reply["text"] = patch(api[0], n + 1) if args.patch else control(sock, "reload")
                reply["t1"] = time.monotonic()

            t = threading.Thread(target=reload)
            t.start()
            asked = []  # (sent, answered) of each status
            # Until the reply, and 0.5 s on: the replaced zone is freed on the control thread once
            # the workers have moved past it (within about 100 ms of the publication).
            while t.is_alive() or time.monotonic() < reply["t1"] + 0.5:
                a = time.monotonic()
                control(sock, "status")
                asked.append((a, time.monotonic()))
                time.sleep(0.02)
            t.join()
            t0, t1 = reply["t0"], reply["t1"]
            # A status sent during the reload (or the 0.5 s after it) counts however late it was
            # answered.
            worst = max((b - a for a, b in asked if t0 <= a < t1 + 0.5), default=0.0)
            time.sleep(3 * interval)  # the first probe after the window has come
            times = list(backend.times)
            inside = [x for x in times if t0 < x < t1]
            before = [x for x in times if x <= t0][-1:]
            after = [x for x in times if x >= t1][:1]
            span = before + inside + after
            gap = max((b - a for a, b in zip(span, span[1:])), default=0.0)
            rounds.append({"reload": t1 - t0, "probes": len(inside), "expected": (t1 - t0) / interval,
                           "gap": max(0.0, gap - interval), "status": worst,
                           "ok": reply["text"].startswith("ok")})
            time.sleep(1.0)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        logf.close()
        backend.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    return rounds


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--meridian", action="append", help="server binary (repeatable; default build/meridian)")
    ap.add_argument("--meridianctl", default=os.path.join(ROOT, "build", "meridianctl"),
                    help="unused (the control socket is spoken to directly); kept for symmetry")
    ap.add_argument("--records", type=int, default=1000000)
    ap.add_argument("--interval-ms", type=int, default=100)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--patch", action="store_true", help="a PATCH through the API instead of a reload")
    args = ap.parse_args()
    binaries = args.meridian or [os.path.join(ROOT, "build", "meridian")]
    data = tempfile.mkdtemp(prefix="meridian-control-loop-zone-")
    try:
        zonefile = os.path.join(data, "bench.test.zone")
        gen_zone.write_zone(zonefile, zone_load.names_for(args.records))
        records = zone_load.count_records(zonefile)
        what = "PATCH" if args.patch else "reload"
        print(f"{what} of a {records}-record zone, tcp check every {args.interval_ms} ms; "
              f"medians (max) over {args.rounds} round(s)")
        print(f"{'binary':40} {'reload s':>10} {'probes/expected':>16} {'probe gap ms':>14} {'status max ms':>14}")
        for binary in binaries:
            log(f"== {binary}")
            rs = measure(binary, zonefile, args)
            med = lambda k: statistics.median(r[k] for r in rs)  # noqa: E731
            top = lambda k: max(r[k] for r in rs)  # noqa: E731
            bad = "" if all(r["ok"] for r in rs) else "  !! a reload failed"
            print(f"{binary[-40:]:40} {med('reload'):10.2f} {med('probes'):7.0f}/{med('expected'):<8.1f} "
                  f"{med('gap') * 1000:7.0f} ({top('gap') * 1000:4.0f}) {med('status') * 1000:7.0f} "
                  f"({top('status') * 1000:4.0f}){bad}")
    finally:
        shutil.rmtree(data, ignore_errors=True)


if __name__ == "__main__":
    main()
