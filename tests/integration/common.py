"""Helpers shared by the integration tests run.py and steering.py.

Bookkeeping (Results, log, short), the command line and the final summary, free loopback ports,
the temporary directory, meridian processes started and stopped by PID, external tools, and the
raw DNS packet helpers both scripts build queries with.  The scripts are run as scripts from any
working directory; they put their own directory on sys.path before importing this module.

Standard library only.
"""

import argparse
import json
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

TIMEOUT = 3.0          # per query (generous: the machine may be busy compiling)
START_TIMEOUT = 10.0   # until the "ready:" log line
STOP_TIMEOUT = 5.0     # SIGTERM -> exit

# ---------------------------------------------------------------------------
# bookkeeping


class Results:
    def __init__(self, verbose):
        self.verbose = verbose
        self.section = "-"
        self.total = 0
        self.failed = []
        self.skipped = []
        self.per_section = {}

    def begin(self, name):
        self.section = name
        self.per_section.setdefault(name, [0, 0])
        log(f"== {name}")

    def check(self, name, cond, detail=""):
        self.total += 1
        stats = self.per_section.setdefault(self.section, [0, 0])
        stats[0] += 1
        if cond:
            if self.verbose:
                log(f"   ok   {name}")
            return True
        stats[1] += 1
        self.failed.append((self.section, name, detail))
        log(f"   FAIL {name}" + (f": {detail}" if detail else ""))
        return False

    def skip(self, name, why):
        self.skipped.append((self.section, name, why))
        log(f"   SKIP {name}: {why}")

    def finish(self, t_start):
        """Prints the summary and the failed checks; returns the exit status (0 or 1)."""
        log("")
        log("summary: " + ", ".join(f"{k} {v[0] - v[1]}/{v[0]}" for k, v in self.per_section.items()))
        if self.skipped:
            log(f"skipped: {', '.join(f'{s}: {n} ({w})' for s, n, w in self.skipped)}")
        elapsed = time.monotonic() - t_start
        if self.failed:
            log(f"FAILED: {len(self.failed)} of {self.total} checks failed ({elapsed:.1f}s):")
            for sec, name, detail in self.failed:
                log(f"  [{sec}] {name}" + (f"\n      {detail}" if detail else ""))
            return 1
        log(f"PASSED: all {self.total} checks ({elapsed:.1f}s)")
        return 0


def log(msg):
    print(msg, flush=True)


def short(x, n):
    """x (repr unless a string) cut to n characters."""
    s = x if isinstance(x, str) else repr(x)
    return s if len(s) <= n else s[:n] + "..."


def write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)


def api_config(api_port, key_name, key_hash, zones=()):
    """A meridian configuration as the API tests (and bench/api.py) run it: control.state_dir
    "state" (relative to the file), the API on 127.0.0.1:api_port with one read-write key, and
    zones ((name, file) or (name, file, more TOML lines for that entry), ...) as [[zone]] entries."""
    text = f"""[control]
state_dir = "state"

[api]
listen = ["127.0.0.1:{api_port}"]

[[api.key]]
name = "{key_name}"
hash = "{key_hash.strip()}"
scope = "read-write"
"""
    for name, file, *more in zones:
        text += f'\n[[zone]]\nname = "{name}"\nfile = "{file}"\n' + "".join(line + "\n" for line in more)
    return text


def api_request(base, key, method, path, body=None, timeout=10.0):
    """(status, parsed JSON, or the text when it is not JSON, or None when empty) of one request
    to Meridian's management API at base ("http://127.0.0.1:PORT") with X-API-Key `key` and
    `body` sent as JSON; OSError when no answer came (the server is gone, or the timeout)."""
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(base + path, data=data, method=method,
                                 headers={"X-API-Key": key, "Content-Type": "application/json"})

    def parsed(text):
        try:
            return json.loads(text) if text else None
        except ValueError:
            return text

    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, parsed(resp.read().decode())
    except urllib.error.HTTPError as e:
        return e.code, parsed(e.read().decode())
    except urllib.error.URLError as e:
        raise OSError(str(e.reason)) from e


# ---------------------------------------------------------------------------
# configuration blocks several sections share


def api_keys_toml(rw_hash, ro_hash, ro_zones=()):
    """The API sections' two [[api.key]] entries: "ops" (read-write) and "viewer" (read-only,
    limited to ro_zones when given)."""
    text = (f'[[api.key]]\nname = "ops"\nhash = "{rw_hash}"\nscope = "read-write"\n\n'
            f'[[api.key]]\nname = "viewer"\nhash = "{ro_hash}"\nscope = "read-only"\n')
    if ro_zones:
        text += "zones = [" + ", ".join(f'"{z}"' for z in ro_zones) + "]\n"
    return text


def steering_toml(service, eu_endpoints=("198.51.100.1",), us_endpoints=("198.51.100.3",),
                  policy=("up", "geo"), eu_position="latitude = 50.1\nlongitude = 8.7\n"):
    """Regions eu (with eu_position's coordinates) and us, and `service` with the policy, a geo
    map defaulting to ["eu", "us"] and a pool in each region."""
    def toml_list(items):
        return "[" + ", ".join(f'"{i}"' for i in items) + "]"
    return f"""[[region]]
name = "eu"
{eu_position}
[[region]]
name = "us"

[[service]]
name = "{service}"
policy = {toml_list(policy)}

[service.geo]
default = ["eu", "us"]

[[service.pool]]
region = "eu"
endpoints = {toml_list(eu_endpoints)}

[[service.pool]]
region = "us"
endpoints = {toml_list(us_endpoints)}
"""


# ---------------------------------------------------------------------------
# command line and the temporary directory


def parse_args(doc, sections, extra=()):
    """The common command line: --meridian, --meridianctl, then extra ((flags, kwargs), ...),
    --verbose, --only SECTION ..., --keep.  Returns the arguments with the binaries' paths made
    absolute, or None when a binary is not executable (reported on stderr: the script exits 2)."""
    ap = argparse.ArgumentParser(description=doc.splitlines()[0])
    ap.add_argument("--meridian", required=True)
    ap.add_argument("--meridianctl", required=True)
    for flags, kw in extra:
        ap.add_argument(*flags, **kw)
    ap.add_argument("--verbose", "-v", action="store_true", help="print passing checks too")
    ap.add_argument("--only", nargs="*", choices=sections, help="run only these sections")
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = ap.parse_args()
    for p in (args.meridian, args.meridianctl):
        if not os.access(p, os.X_OK):
            print(f"not executable: {p}", file=sys.stderr)
            return None
    args.meridian = os.path.abspath(args.meridian)
    args.meridianctl = os.path.abspath(args.meridianctl)
    return args


def make_tmp(prefix):
    return tempfile.mkdtemp(prefix=prefix)


def drop_tmp(tmp, keep, r):
    """Removes the temporary directory, unless asked to keep it or a check failed."""
    if keep or r.failed:
        log(f"logs and files kept in {tmp}")
    else:
        shutil.rmtree(tmp, ignore_errors=True)


# ---------------------------------------------------------------------------
# processes and ports


class BaseCtx:
    def __init__(self, args, tmp, results):
        self.meridian = args.meridian
        self.meridianctl = args.meridianctl
        self.tmp = tmp
        self.r = results
        self.servers = []
        self.ports = set()
        self.have_v6 = v6_available()


def v6_available():
    if not socket.has_ipv6:
        return False
    try:
        s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
        try:
            s.bind(("::1", 0))
        finally:
            s.close()
        return True
    except OSError:
        return False


def fam_of(addr):
    return socket.AF_INET6 if ":" in addr[0] else socket.AF_INET


def port_free(host, port, udp=True):
    kinds = (socket.SOCK_STREAM, socket.SOCK_DGRAM) if udp else (socket.SOCK_STREAM,)
    for kind in kinds:
        s = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, kind)
        try:
            s.bind((host, port))
        except OSError:
            return False
        finally:
            s.close()
    return True


def pick_port(ctx, hosts=("127.0.0.1",), udp=True):
    """A port free (TCP, and UDP if asked) on every host in hosts, not handed out before."""
    for _ in range(200):
        t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            t.bind(("127.0.0.1", 0))
            port = t.getsockname()[1]
        finally:
            t.close()
        if port in ctx.ports:
            continue
        if all(port_free(h, port, udp) for h in hosts):
            ctx.ports.add(port)
            return port
    raise RuntimeError("no free port")


class Server:
    """One meridian process; stdout+stderr go to a log file in the temp dir."""

    def __init__(self, ctx, label, args, cwd=None, prefix=()):
        self.ctx = ctx
        self.label = label
        self.log_path = os.path.join(ctx.tmp, f"{label}.log")
        self.logf = open(self.log_path, "wb")
        self.argv = list(prefix) + [ctx.meridian] + list(args)
        self.proc = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL, stdout=self.logf,
                                     stderr=subprocess.STDOUT, cwd=cwd or ctx.tmp)
        self.pid = self.proc.pid
        ctx.servers.append(self)

    def log_text(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def wait_ready(self, timeout=START_TIMEOUT):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if "ready:" in self.log_text():
                return True
            if self.proc.poll() is not None:
                return False
            time.sleep(0.02)
        return False

    def ready_line(self):
        for line in self.log_text().splitlines():
            if "ready:" in line:
                return line
        return ""

    def alive(self):
        return self.proc.poll() is None

    def signal(self, sig):
        if self.alive():
            os.kill(self.pid, sig)

    def stop(self, timeout=STOP_TIMEOUT):
        """SIGTERM by PID (SIGKILL after timeout); returns (exit code, or None if it had to be
        killed, seconds).  proc.returncode keeps the raw status (-9 when killed)."""
        t0 = time.monotonic()
        killed = False
        if self.proc.poll() is None:
            os.kill(self.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.kill(self.pid, signal.SIGKILL)
                self.proc.wait()
                killed = True
        if not self.logf.closed:
            self.logf.close()
        return (None if killed else self.proc.returncode), time.monotonic() - t0

    def tail(self, n=15):
        return "\n".join(self.log_text().splitlines()[-n:])


def start_server(ctx, label, args, cwd=None, prefix=(), check_started=False,
                 ready_timeout=START_TIMEOUT):
    """A started Server, or None (a failed check) when it exits or logs no 'ready:' in time.
    check_started: count a passing check for a successful start too. ready_timeout: a guard, not a
    measurement (a start that loads a large zone under the sanitizers needs more)."""
    srv = Server(ctx, label, args, cwd=cwd, prefix=prefix)
    ok = srv.wait_ready(ready_timeout)
    if check_started or not ok:
        ctx.r.check(f"{label}: starts and logs 'ready:'", ok,
                    f"argv={srv.argv} exit={srv.proc.poll()} log:\n{srv.tail()}")
    return srv if ok else None


def stop_all(servers):
    """The final clean-up: every server still running gets SIGTERM by PID, SIGKILL after
    STOP_TIMEOUT; every log file is closed."""
    for srv in servers:
        if srv.proc.poll() is None:
            try:
                os.kill(srv.pid, signal.SIGTERM)
                srv.proc.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                os.kill(srv.pid, signal.SIGKILL)
                srv.proc.wait()
            except ProcessLookupError:
                pass
        if not srv.logf.closed:
            srv.logf.close()


# The external DNS tools the checks query with, and the Debian package scripts/deps.sh installs
# each from.  A missing tool is a failed check, never a skip: a CI machine without kdig would
# otherwise pass while running none of the kdig checks.
TOOLS = {"dig": "bind9-dnsutils", "kdig": "knot-dnsutils"}


def require_tools(r, tools=tuple(TOOLS)):
    """One check per tool: installed on PATH.  Returns True when all are."""
    r.begin("tools")
    ok = True
    for tool in tools:
        ok &= r.check(f"{tool} installed (scripts/deps.sh installs {TOOLS[tool]})",
                      shutil.which(tool) is not None, f"{tool} not found on PATH={os.environ.get('PATH', '')}")
    return ok


CRASH_RE = r"AddressSanitizer|runtime error:|Segmentation|terminate called"


def check_log_clean(r, who, text):
    """A check that a server log holds no crash or sanitizer report."""
    return r.check(f"{who} log: no crash/sanitizer report", not re.search(CRASH_RE, text),
                   short(text[-800:], 800))


def run_tool(argv, timeout, **kw):
    """(exit code or None on timeout, stdout, stderr) of an external program."""
    try:
        p = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout, **kw)
        return p.returncode, p.stdout.decode("utf-8", "replace"), p.stderr.decode("utf-8", "replace")
    except subprocess.TimeoutExpired as e:
        return None, (e.stdout or b"").decode("utf-8", "replace"), "TIMEOUT"


# ---------------------------------------------------------------------------
# DNS packets by hand


def wire_name(name):
    """Uncompressed wire form of a dotted name, letter case preserved."""
    out = b""
    for label in name.rstrip(".").split("."):
        if label:
            b = label.encode()
            out += bytes([len(b)]) + b
    return out + b"\x00"


def header(qid, flags=0x0000, qd=1, an=0, ns=0, ar=0):
    return struct.pack("!HHHHHH", qid, flags, qd, an, ns, ar)


def question(name, qtype=1, qclass=1):
    return wire_name(name) + struct.pack("!HH", qtype, qclass)


def edns_opt(code, data):
    return struct.pack("!HH", code, len(data)) + data


def opt_rr(payload=1232, ext_rcode=0, version=0, flags=0, options=b"", owner=b"\x00", rdlen=None):
    if rdlen is None:
        rdlen = len(options)
    return owner + struct.pack("!HHBBHH", 41, payload, ext_rcode, version, flags, rdlen) + options


def ecs_data(family, src, scope, addr):
    return struct.pack("!HBB", family, src, scope) + addr


def udp_exchange(addr, pkt, timeout=TIMEOUT, tries=2):
    """Send pkt, return the first datagram whose ID matches (or None)."""
    for _ in range(tries):
        s = socket.socket(fam_of(addr), socket.SOCK_DGRAM)
        try:
            s.connect(addr)
            s.send(pkt)
            deadline = time.monotonic() + timeout
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                s.settimeout(left)
                try:
                    data = s.recv(65535)
                except socket.timeout:
                    break
                except ConnectionRefusedError:
                    return None
                if len(pkt) >= 2 and data[:2] == pkt[:2]:
                    return data
        finally:
            s.close()
    return None
