#!/usr/bin/python3
"""Tests of what an operator installs: the systemd unit, the notification protocol, the privilege
drop, the man pages, and the Debian package.

Sections (all but deb and lintian need only the build tree; ctest `packaging` runs them):
  unit       `systemd-analyze verify` on packaging/meridian.service in a root staged with the
             build tree's install rules (`cmake --install`, so the binaries and man pages it names
             exist), and `systemd-analyze security --offline` (its exposure score is printed and
             must stay in the "OK" band, below 2.0)
  notify     meridian with $NOTIFY_SOCKET on a datagram socket the test binds: READY=1 (the port
             answers by then), RELOADING=1 + MONOTONIC_USEC then READY=1 around SIGHUP and
             around `meridianctl reload`, WATCHDOG=1 with $WATCHDOG_USEC, STOPPING=1 at SIGTERM
  privdrop   started as root with server.user = "nobody": every thread's Uid/Gid, Groups,
             CapEff/CapPrm/CapAmb in /proc, answers, a reload of an edited zone, the state
             directory given to nobody; an unknown user or group and a non-root start with another
             user stop start-up with a clear error
  man        every option and command of `meridian --help` / `meridianctl --help` in the (8)
             pages, every configuration key in meridian.toml(5), groff reports no problem
  deb        (--deb) the package's files, conffile, control fields (dependencies from shlibs),
             and dpkg install / upgrade over a previous build (its conffile edited by the admin) /
             remove / purge, chrooted in a throw-away root: an overlay on this machine's / in a
             mount namespace of its own, so nothing reaches the host
  lintian    (--deb) no lintian error; warnings printed

Usage: packaging.py --meridian PATH --meridianctl PATH [--root DIR] [--build DIR] [--deb FILE]
                    [--only SECTION ...] [--verbose] [--keep]
"""

import gzip
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import common  # noqa: E402
from common import BaseCtx, Results, drop_tmp, log, make_tmp, parse_args, pick_port, write  # noqa: E402

SECTIONS = ["unit", "notify", "privdrop", "man", "deb", "lintian"]
ROOT = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
UNIT = os.path.join(ROOT, "packaging", "meridian.service")
WAIT = 20.0  # a guard for something that must happen, not a measurement


class Ctx(BaseCtx):
    def __init__(self, args, tmp, results):
        super().__init__(args, tmp, results)
        self.build = args.build or os.path.dirname(args.meridian)
        self.deb = args.deb


def zone_text(serial):
    return ("$ORIGIN example.com.\n$TTL 300\n"
            f"@ IN SOA ns1 hostmaster {serial} 7200 3600 1209600 60\n"
            "@ IN NS ns1\nns1 IN A 192.0.2.1\n"
            f"www IN A 192.0.2.{serial % 200 + 1}\n")


def soa_serial(addr):
    """The SOA serial of example.com. served at addr, or None."""
    q = common.header(0x5151) + common.question("example.com", 6)
    resp = common.udp_exchange(addr, q)
    if resp is None or len(resp) < 12 or (resp[3] & 0x0F) != 0:
        return None
    # The serial: the first 4 octets after the two names of the SOA RDATA; find it by the pattern
    # of the fixed tail (refresh 7200, retry 3600, expire 1209600, minimum 60).
    tail = (7200).to_bytes(4, "big") + (3600).to_bytes(4, "big") + (1209600).to_bytes(4, "big")
    i = resp.find(tail)
    return int.from_bytes(resp[i - 4:i], "big") if i >= 4 else None


def write_config(d, port, extra=""):
    os.makedirs(d, exist_ok=True)
    write(os.path.join(d, "zones", "example.com.zone"), zone_text(1))
    cfg = os.path.join(d, "meridian.toml")
    write(cfg, f'[server]\nlisten = ["127.0.0.1:{port}"]\nthreads = 2\n\n'
               f'[control]\nsocket = "control.sock"\n{extra}\n'
               '[[zone]]\nname = "example.com"\nfile = "zones/example.com.zone"\n')
    return cfg


# ---------------------------------------------------------------------------
# unit

def section_unit(ctx):
    r = ctx.r
    r.begin("unit")
    sa = shutil.which("systemd-analyze")
    if not r.check("systemd-analyze installed (Debian's systemd)", sa is not None):
        return
    stage = os.path.join(ctx.tmp, "stage")
    env = dict(os.environ, DESTDIR=stage)
    code, out, err = common.run_tool(["cmake", "--install", ctx.build, "--prefix", "/usr"], 120,
                                     env=env)
    if not r.check("cmake --install into a staging root", code == 0, err[-2000:]):
        return
    for f in ("usr/sbin/meridian", "usr/bin/meridianctl", "etc/meridian/meridian.toml",
              "lib/systemd/system/meridian.service", "usr/lib/tmpfiles.d/meridian.conf",
              "usr/share/man/man8/meridian.8.gz", "usr/share/man/man8/meridianctl.8.gz",
              "usr/share/man/man5/meridian.toml.5.gz", "usr/share/doc/meridian/copyright",
              "usr/share/doc/meridian/changelog.gz", "var/lib/meridian"):
        r.check(f"install rules put /{f}", os.path.exists(os.path.join(stage, f)))
    # With --root, verify resolves the unit's dependencies (sysinit.target, ...) in that root:
    # the host's own unit files are copied in beside it. --man=no: the Documentation= pages are
    # checked by the man section (man would look in the host's MANPATH, not the staged root).
    units = os.path.join(stage, "lib/systemd/system")
    for name in os.listdir("/lib/systemd/system"):
        src = os.path.join("/lib/systemd/system", name)
        if os.path.isfile(src) and not os.path.exists(os.path.join(units, name)):
            shutil.copyfile(src, os.path.join(units, name))
    unit = os.path.join(units, "meridian.service")
    code, out, err = common.run_tool([sa, "verify", "--man=no", f"--root={stage}", unit], 60)
    r.check("systemd-analyze verify: no complaint", code == 0 and not (out + err).strip(),
            f"exit {code}: {out}{err}")
    # A unit whose commands are missing must fail the same check: proof that verify looks.
    broken = os.path.join(units, "meridian-broken.service")
    write(broken, open(UNIT).read().replace("/usr/sbin/meridian --config", "/usr/sbin/nonexistent --config"))
    code, out, err = common.run_tool([sa, "verify", "--man=no", f"--root={stage}", broken], 60)
    r.check("systemd-analyze verify fails a unit whose ExecStart is missing", code != 0,
            f"exit {code}: {out}{err}")
    code, out, err = common.run_tool([sa, "security", "--offline=yes", f"--root={stage}", unit], 60)
    m = re.search(r"Overall exposure level for \S+: ([0-9.]+) (\w+)", out + err)
    if r.check("systemd-analyze security prints an exposure level", m is not None, (out + err)[-1500:]):
        log(f"   systemd-analyze security: exposure {m.group(1)} {m.group(2)}")
        r.check("exposure below 2.0 (OK)", float(m.group(1)) < 2.0, m.group(0))
    text = open(UNIT).read()
    for line in ("Type=notify", "User=meridian", "AmbientCapabilities=CAP_NET_BIND_SERVICE",
                 "CapabilityBoundingSet=CAP_NET_BIND_SERVICE", "ProtectSystem=strict",
                 "StateDirectory=meridian", "RuntimeDirectory=meridian", "PrivateTmp=yes",
                 "NoNewPrivileges=yes", "SystemCallFilter=@system-service"):
        r.check(f"unit has {line}", re.search(rf"^{re.escape(line)}$", text, re.M) is not None)


# ---------------------------------------------------------------------------
# notify

class NotifySocket:
    """A unix datagram socket like systemd's: every message received, with its arrival time."""

    def __init__(self, path):
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(path)
        self.sock.settimeout(0.2)
        self.messages = []  # (monotonic time, {key: value})
        self.lock = threading.Lock()
        self.done = False
        self.on_message = None
        self.thread = threading.Thread(target=self.loop, daemon=True)
        self.thread.start()

    def loop(self):
        while not self.done:
            try:
                data = self.sock.recv(4096)
            except socket.timeout:
                continue
            except OSError:
                return
            fields = dict(line.split("=", 1) for line in data.decode().split("\n") if "=" in line)
            if self.on_message:
                self.on_message(fields)
            with self.lock:
                self.messages.append((time.monotonic(), fields))

    def wait(self, pred, start=0, timeout=WAIT):
        """Index of the first message from `start` on for which pred(fields), or None."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                for i in range(start, len(self.messages)):
                    if pred(self.messages[i][1]):
                        return i
            time.sleep(0.01)
        return None

    def count(self):
        with self.lock:
            return len(self.messages)

    def close(self):
        self.done = True
        self.thread.join()
        self.sock.close()


def section_notify(ctx):
    r = ctx.r
    r.begin("notify")
    d = os.path.join(ctx.tmp, "notify")
    port = pick_port(ctx)
    cfg = write_config(d, port)
    ns = NotifySocket(os.path.join(d, "notify.sock"))
    addr = ("127.0.0.1", port)
    answered_at_ready = []

    # When READY=1 arrives, the port must already answer: asked from the receiving thread, before
    # anything else happens.
    def on_message(fields):
        if fields.get("READY") == "1" and not answered_at_ready:
            answered_at_ready.append(soa_serial(addr))
    ns.on_message = on_message
    env = dict(os.environ, NOTIFY_SOCKET=ns.path, WATCHDOG_USEC="300000")
    env.pop("WATCHDOG_PID", None)
    log_path = os.path.join(ctx.tmp, "notify.log")
    logf = open(log_path, "wb")
    proc = subprocess.Popen([ctx.meridian, "--config", cfg], env=env, stdin=subprocess.DEVNULL,
                            stdout=logf, stderr=subprocess.STDOUT, cwd=d)
    try:
        i = ns.wait(lambda f: f.get("READY") == "1")
        if not r.check("READY=1 arrives", i is not None, open(log_path).read()[-1500:]):
            return
        r.check("the port answers when READY=1 arrives", answered_at_ready == [1],
                f"serial {answered_at_ready}")
        r.check("READY=1 carries a STATUS= line", "STATUS" in ns.messages[i][1], str(ns.messages[i][1]))
        r.check("no RELOADING/STOPPING before READY=1",
                not any("RELOADING" in f or "STOPPING" in f for _, f in ns.messages[:i]))
        w = ns.wait(lambda f: f.get("WATCHDOG") == "1", i)
        w2 = ns.wait(lambda f: f.get("WATCHDOG") == "1", (w or 0) + 1) if w is not None else None
        r.check("WATCHDOG=1 arrives repeatedly with WATCHDOG_USEC set", w is not None and w2 is not None)

        for how in ("SIGHUP", "meridianctl reload"):
            write(os.path.join(d, "zones", "example.com.zone"),
                  zone_text(2 if how == "SIGHUP" else 3))
            start = ns.count()
            if how == "SIGHUP":
                os.kill(proc.pid, signal.SIGHUP)
            else:
                code, out, err = common.run_tool(
                    [ctx.meridianctl, "--socket", os.path.join(d, "control.sock"), "reload"], 30)
                r.check("meridianctl reload answers ok", code == 0, out + err)
            rl = ns.wait(lambda f: f.get("RELOADING") == "1", start)
            r.check(f"{how}: RELOADING=1", rl is not None)
            if rl is None:
                continue
            usec = ns.messages[rl][1].get("MONOTONIC_USEC", "")
            now = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
            r.check(f"{how}: RELOADING=1 with MONOTONIC_USEC (CLOCK_MONOTONIC, µs)",
                    usec.isdigit() and 0 < int(usec) <= now, f"MONOTONIC_USEC={usec!r} now={now}")
            rd = ns.wait(lambda f: f.get("READY") == "1", rl + 1)
            r.check(f"{how}: READY=1 after RELOADING=1", rd is not None)
            r.check(f"{how}: the reloaded zone is served by then",
                    soa_serial(addr) == (2 if how == "SIGHUP" else 3))

        start = ns.count()
        proc.send_signal(signal.SIGTERM)
        st = ns.wait(lambda f: f.get("STOPPING") == "1", start)
        r.check("SIGTERM: STOPPING=1", st is not None)
        try:
            code = proc.wait(WAIT)
        except subprocess.TimeoutExpired:
            code = None
        r.check("SIGTERM: exits 0", code == 0, f"exit {code}")
        after = [f for _, f in ns.messages[st + 1:]] if st is not None else []
        r.check("nothing after STOPPING=1 (the watchdog stops too)", after == [], str(after))
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        logf.close()
        ns.close()

    # Without NOTIFY_SOCKET nothing is sent and the server runs as before (the other suites);
    # with WATCHDOG_PID naming another process, no WATCHDOG=1 (sd_watchdog_enabled(3)).
    d2 = os.path.join(ctx.tmp, "notify-pid")
    port2 = pick_port(ctx)
    cfg2 = write_config(d2, port2)
    ns2 = NotifySocket(os.path.join(d2, "notify.sock"))
    env2 = dict(os.environ, NOTIFY_SOCKET=ns2.path, WATCHDOG_USEC="200000", WATCHDOG_PID="1")
    proc2 = subprocess.Popen([ctx.meridian, "--config", cfg2], env=env2, stdin=subprocess.DEVNULL,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=d2)
    try:
        i = ns2.wait(lambda f: f.get("READY") == "1")
        r.check("WATCHDOG_PID of another process: READY=1 still", i is not None)
        # A reload round trip orders the check after several would-be watchdog periods without
        # timing anything: the reload's READY=1 comes after the start's.
        write(os.path.join(d2, "zones", "example.com.zone"), zone_text(5))
        code, _, _ = common.run_tool([ctx.meridianctl, "--socket", os.path.join(d2, "control.sock"),
                                      "reload"], 30)
        proc2.send_signal(signal.SIGTERM)
        ns2.wait(lambda f: f.get("STOPPING") == "1")
        r.check("WATCHDOG_PID of another process: no WATCHDOG=1",
                not any("WATCHDOG" in f for _, f in ns2.messages), str(ns2.messages))
    finally:
        if proc2.poll() is None:
            proc2.kill()
        proc2.wait()
        ns2.close()


# ---------------------------------------------------------------------------
# privdrop

def proc_status(pid):
    out = {}
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                k, _, v = line.partition(":")
                out[k] = v.split()
    except OSError:
        pass
    return out


def thread_statuses(pid):
    try:
        return [proc_status(f"{pid}/task/{t}") for t in os.listdir(f"/proc/{pid}/task")]
    except OSError:
        return []


def section_privdrop(ctx):
    r = ctx.r
    r.begin("privdrop")
    if not r.check("the test runs as root (it starts meridian as root)", os.geteuid() == 0):
        return
    nobody = pwd.getpwnam("nobody")
    d = os.path.join(ctx.tmp, "privdrop")
    port = pick_port(ctx)
    state = os.path.join(d, "state")
    cfg = write_config(d, port, f'state_dir = "{state}"\n')
    os.makedirs(os.path.join(state, "journal"))
    write(os.path.join(state, "journal", "old.journal"), "")
    # The zone must stay readable by nobody for reloads: directories 0755, file 0644.
    for p in (ctx.tmp, d, os.path.join(d, "zones")):
        os.chmod(p, 0o755)
    srv = common.start_server(ctx, "privdrop", ["--config", cfg, "--set", "server.user=nobody"],
                              cwd=d, check_started=True)
    if srv is None:
        return
    st = proc_status(srv.pid)
    want_uid = [str(nobody.pw_uid)] * 4
    want_gid = [str(nobody.pw_gid)] * 4
    r.check("Uid: real, effective, saved, fs are nobody's", st.get("Uid") == want_uid, str(st.get("Uid")))
    r.check("Gid: nobody's primary group", st.get("Gid") == want_gid, str(st.get("Gid")))
    r.check("Groups: root's groups gone", "0" not in st.get("Groups", []), str(st.get("Groups")))
    for cap in ("CapEff", "CapPrm", "CapAmb", "CapInh"):
        r.check(f"{cap} empty", st.get(cap) == ["0000000000000000"], str(st.get(cap)))
    threads = thread_statuses(srv.pid)
    r.check(f"every thread ({len(threads)}) changed user and lost its capabilities",
            len(threads) > 1 and all(t.get("Uid") == want_uid and t.get("CapEff") == ["0000000000000000"]
                                     for t in threads),
            str([(t.get("Name"), t.get("Uid"), t.get("CapEff")) for t in threads]))
    r.check("the log says who it runs as", "running as user nobody" in srv.log_text(), srv.tail())
    r.check("answers after the switch", soa_serial(("127.0.0.1", port)) == 1)
    r.check("the state directory is nobody's now",
            os.stat(state).st_uid == nobody.pw_uid and
            os.stat(os.path.join(state, "journal", "old.journal")).st_uid == nobody.pw_uid)
    r.check("the control socket is nobody's", os.stat(os.path.join(d, "control.sock")).st_uid == nobody.pw_uid)
    write(os.path.join(d, "zones", "example.com.zone"), zone_text(7))
    os.chmod(os.path.join(d, "zones", "example.com.zone"), 0o644)
    code, out, err = common.run_tool([ctx.meridianctl, "--socket", os.path.join(d, "control.sock"), "reload"], 30)
    r.check("a reload as nobody works", code == 0, out + err)
    r.check("the reloaded zone is served", soa_serial(("127.0.0.1", port)) == 7)
    code, _ = srv.stop()
    r.check("stops cleanly (exit 0)", code == 0, srv.tail())

    # Refusals, each with a clear message and exit 1 before serving.
    for label, sets, env_user, want in (
            ("unknown user", ["server.user=no-such-user-meridian"], None, "no such user 'no-such-user-meridian'"),
            ("unknown group", ["server.user=nobody", "server.group=no-such-group-meridian"], None,
             "no such group 'no-such-group-meridian'"),
            ("not root, another user", ["server.user=daemon"], "nobody", "cannot switch users")):
        prefix = []
        if env_user:
            setpriv = shutil.which("setpriv")
            if not r.check("setpriv installed (util-linux)", setpriv is not None):
                continue
            prefix = [setpriv, f"--reuid={nobody.pw_uid}", f"--regid={nobody.pw_gid}", "--clear-groups"]
        argv = prefix + [ctx.meridian, "--listen", f"127.0.0.1:{pick_port(ctx)}",
                         "--zone", f"example.com={os.path.join(d, 'zones', 'example.com.zone')}"]
        for s in sets:
            argv += ["--set", s]
        code, out, err = common.run_tool(argv, 30, cwd=d)
        r.check(f"{label}: refused with exit 1", code == 1, f"exit {code}: {out}{err}")
        r.check(f"{label}: says why", want in out + err, (out + err)[-800:])
        r.check(f"{label}: never ready", "ready:" not in out + err)
    # The same user as the process (systemd's User=meridian with server.user = "meridian"): fine.
    argv = [shutil.which("setpriv") or "setpriv", f"--reuid={nobody.pw_uid}", f"--regid={nobody.pw_gid}",
            "--clear-groups", ctx.meridian, "--listen", f"127.0.0.1:{pick_port(ctx)}",
            "--zone", f"example.com={os.path.join(d, 'zones', 'example.com.zone')}",
            "--set", "server.user=nobody"]
    p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=d)
    got = b""
    deadline = time.monotonic() + WAIT
    while b"ready:" not in got and time.monotonic() < deadline and p.poll() is None:
        got += p.stdout.read1(4096)
    r.check("not root, server.user is this user: starts", b"ready:" in got, got.decode()[-800:])
    if p.poll() is None:
        p.send_signal(signal.SIGTERM)
    p.wait()


# ---------------------------------------------------------------------------
# man

def help_words(argv):
    code, out, err = common.run_tool(argv, 30)
    text = out + err
    opts = set(re.findall(r"(?<![\w-])(--[a-z][a-z-]+)", text))
    return opts, text


def man_text(path):
    data = open(path, "rb").read()
    if path.endswith(".gz"):
        data = gzip.decompress(data)
    return data.decode()


def plain(roff):
    """The roff source with \\- as '-' and font escapes removed: what a reader sees, roughly."""
    return re.sub(r"\\f[BIRP]", "", roff.replace("\\-", "-").replace("\\&", ""))


def section_man(ctx):
    r = ctx.r
    r.begin("man")
    man_dir = os.path.join(ctx.build, "packaging", "man")
    pages = {p: os.path.join(man_dir, p) for p in ("meridian.8", "meridianctl.8", "meridian.toml.5")}
    for p, path in pages.items():
        r.check(f"{p} built", os.path.exists(path) and os.path.exists(path + ".gz"), path)
    if not all(os.path.exists(p) for p in pages.values()):
        return
    code, out, err = common.run_tool([ctx.meridian, "config-reference", "--format", "man"], 30)
    r.check("meridian.toml.5 is `meridian config-reference --format man`", out == man_text(pages["meridian.toml.5"]))
    code, md, _ = common.run_tool([ctx.meridian, "config-reference"], 30)
    keys = re.findall(r"^\| `([^`]+)` \|", md, re.M)
    toml5 = plain(man_text(pages["meridian.toml.5"]))
    r.check(f"config-reference lists keys ({len(keys)})", len(keys) > 50)
    missing = [k for k in keys if f".B {k}\n" not in toml5]
    r.check("every configuration key has its entry in meridian.toml(5)", not missing, str(missing[:10]))
    r.check("server.user is documented", ".B server.user\n" in toml5)
    for prog, page, extra in ((ctx.meridian, "meridian.8", ("check", "explain", "mmdb build", "config-reference",
                                                             "api hash-key", "SIGHUP", "SIGTERM")),
                              (ctx.meridianctl, "meridianctl.8", ("reload", "status", "metrics", "health",
                                                                  "override", "zones", "explain", "stop",
                                                                  "audit verify", "audit show"))):
        opts, _ = help_words([prog, "--help"])
        text = plain(man_text(pages[page]))
        r.check(f"{page}: `--help` lists options ({len(opts)})", len(opts) >= 4, str(opts))
        missing = sorted(o for o in opts if o not in text)
        r.check(f"{page}: every option of --help is described", not missing, str(missing))
        missing = [w for w in extra if w not in text]
        r.check(f"{page}: every command is described", not missing, str(missing))
        code, out, _ = common.run_tool([prog, "--version"], 10)
        r.check(f"{page}: carries the version `--version` prints",
                out.split()[-1] in man_text(pages[page]).splitlines()[2] if out.split() else False,
                out)
    groff = shutil.which("groff")
    if r.check("groff installed (groff-base, for man)", groff is not None):
        for p, path in pages.items():
            code, out, err = common.run_tool([groff, "-man", "-Tutf8", "-ww", "-z", path], 30)
            r.check(f"{p}: groff -ww reports nothing", code == 0 and not err.strip(), err[-800:])


# ---------------------------------------------------------------------------
# deb

def section_deb(ctx):
    r = ctx.r
    r.begin("deb")
    if not r.check("--deb given and present", bool(ctx.deb) and os.path.exists(ctx.deb), str(ctx.deb)):
        return
    code, version, _ = common.run_tool([ctx.meridian, "--version"], 10)
    version = version.split()[-1]
    arch = subprocess.run(["dpkg", "--print-architecture"], capture_output=True, text=True).stdout.strip()
    r.check("named meridian_<version>_<arch>.deb", os.path.basename(ctx.deb) == f"meridian_{version}_{arch}.deb",
            os.path.basename(ctx.deb))
    code, contents, err = common.run_tool(["dpkg-deb", "--contents", ctx.deb], 30)
    names = {line.split()[-1].lstrip(".") for line in contents.splitlines() if line.split()}
    for f in ("/usr/sbin/meridian", "/usr/bin/meridianctl", "/etc/meridian/meridian.toml",
              "/lib/systemd/system/meridian.service", "/usr/lib/tmpfiles.d/meridian.conf",
              "/var/lib/meridian/", "/usr/share/man/man8/meridian.8.gz", "/usr/share/man/man8/meridianctl.8.gz",
              "/usr/share/man/man5/meridian.toml.5.gz", "/usr/share/doc/meridian/copyright",
              "/usr/share/doc/meridian/changelog.gz", "/usr/share/doc/meridian/README.md",
              "/usr/share/doc/meridian/examples/meridian.toml",
              "/usr/share/doc/meridian/examples/zones/example.com.zone"):
        r.check(f"contains {f}", f in names)
    r.check("owned by root", all(" root/root " in line for line in contents.splitlines()),
            contents[:500])
    code, info, _ = common.run_tool(["dpkg-deb", "--field", ctx.deb, "Version", "Depends", "Architecture"], 30)
    fields = dict(line.split(": ", 1) for line in info.splitlines() if ": " in line)
    r.check("Version is `meridian --version`'s", fields.get("Version") == version, info)
    deps = fields.get("Depends", "")
    for lib in ("libc6", "libldns", "libmaxminddb", "libssl", "libstdc++6"):
        r.check(f"Depends (from shlibs) names {lib}", lib in deps, deps)
    r.check("Depends names adduser (postinst)", "adduser" in deps, deps)
    tmp = os.path.join(ctx.tmp, "control")
    code, _, err = common.run_tool(["dpkg-deb", "--control", ctx.deb, tmp], 30)
    conffiles = open(os.path.join(tmp, "conffiles")).read().split() if os.path.exists(os.path.join(tmp, "conffiles")) else []
    r.check("/etc/meridian/meridian.toml is a conffile", conffiles == ["/etc/meridian/meridian.toml"], str(conffiles))
    for script in ("postinst", "prerm", "postrm"):
        path = os.path.join(tmp, script)
        r.check(f"{script} present and executable", os.access(path, os.X_OK))
        code, _, err = common.run_tool(["sh", "-n", path], 10)
        r.check(f"{script} parses (sh -n)", code == 0, err)
    # The packaged configuration is one the server accepts (checked with the built binary; its
    # paths are the installed ones, so only the syntax and keys are checked here).
    extract = os.path.join(ctx.tmp, "extract")
    common.run_tool(["dpkg-deb", "-x", ctx.deb, extract], 30)
    code, out, err = common.run_tool([ctx.meridian, "check", "--config",
                                      os.path.join(extract, "etc/meridian/meridian.toml")], 30)
    r.check("meridian check accepts the packaged meridian.toml", code == 0, out + err)
    code, out, err = common.run_tool([os.path.join(extract, "usr/sbin/meridian"), "--version"], 10)
    r.check("the packaged binary runs", code == 0 and version in out, out + err)
    dpkg_root_tests(ctx)


class ThrowAwayRoot:
    """This machine's own / seen through an overlay whose upper layer is a temporary directory,
    in a mount namespace of its own (unshare -m): dpkg and the maintainer scripts run chrooted in
    it, and whatever they write (the user in /etc/passwd, /etc/meridian, dpkg's database) lands in
    the upper layer, never on the host. No systemd runs there (no /run/systemd/system), so the
    postinst enables the unit but starts nothing, as on a machine without systemd."""

    def __init__(self, base):
        self.upper = os.path.join(base, "upper")
        self.work = os.path.join(base, "work")
        self.merged = os.path.join(base, "merged")
        for p in (self.upper, self.work, self.merged):
            os.makedirs(p)
        self.drop = os.path.join(self.upper, "packaging-test")  # files handed in: /packaging-test
        os.makedirs(self.drop)

    def run(self, command, timeout=300):
        mount = (f"mount -t overlay overlay -o lowerdir=/,upperdir={self.upper},workdir={self.work} "
                 f"{self.merged} && mount -t proc proc {self.merged}/proc && "
                 f"mount --rbind /dev {self.merged}/dev && "
                 f"exec chroot {self.merged} /bin/sh -c \"$0\"")
        return common.run_tool(["unshare", "--mount", "--propagation", "private", "sh", "-c", mount,
                                command], timeout)

    def left(self):
        """Files, links and whiteouts the root gained: paths relative to /, directories aside."""
        out = []
        for d, dirs, files in os.walk(self.upper):
            rel = os.path.relpath(d, self.upper)
            if rel == "packaging-test" or rel.startswith("packaging-test/"):
                continue
            for f in files:
                out.append("/" + os.path.normpath(os.path.join(rel, f)))
            for x in dirs:
                if os.path.islink(os.path.join(d, x)):
                    out.append("/" + os.path.normpath(os.path.join(rel, x)))
        return sorted(out)


# What purge may leave (Debian policy and practice): the system user and group (and the tools'
# backups of those files), dpkg's own database and logs, the debconf cache, man-db's index (its
# trigger ran on the man pages), adduser's lock in /run, Python caches of the host's tools.
KEPT_AFTER_PURGE = re.compile(r"^/(etc/(passwd|group|shadow|gshadow|subuid|subgid)-?"
                              r"|var/lib/dpkg/.*|var/log/.*|var/cache/debconf/.*|etc/\.pwd\.lock"
                              r"|var/cache/man/.*|run/adduser"
                              r"|.*__pycache__/.*|proc/.*)$")


def dpkg_root_tests(ctx):
    """Install, upgrade over a previous build, remove and purge, in a ThrowAwayRoot."""
    r = ctx.r
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        r.check("dpkg tests: root and unshare (util-linux) available", False)
        return
    root = ThrowAwayRoot(os.path.join(ctx.tmp, "root"))
    code, out, err = root.run("true")
    if not r.check("a throw-away root (overlay on /, in a mount namespace) can be made", code == 0, out + err):
        return
    # The previous build: this package with a lower version (and its own changelog entry), as
    # dpkg sees an older release. Its conffile is the same, so the admin's edit must survive.
    code, version, _ = common.run_tool([ctx.meridian, "--version"], 10)
    version = version.split()[-1]
    prev_dir = os.path.join(ctx.tmp, "prev")
    common.run_tool(["dpkg-deb", "-R", ctx.deb, prev_dir], 60)
    control = os.path.join(prev_dir, "DEBIAN", "control")
    text = open(control).read()
    write(control, re.sub(r"^Version: .*$", f"Version: {version}~prev", text, flags=re.M))
    prev_deb = os.path.join(root.drop, "meridian_prev.deb")
    code, out, err = common.run_tool(["dpkg-deb", "--root-owner-group", "-b", prev_dir, prev_deb], 120)
    if not r.check("the previous build is made (version ~prev)", code == 0, out + err):
        return
    shutil.copyfile(ctx.deb, os.path.join(root.drop, "meridian.deb"))
    sh = root.run

    code, out, err = sh("dpkg -i /packaging-test/meridian_prev.deb")
    r.check("dpkg -i (the previous build) succeeds", code == 0, (out + err)[-1500:])
    code, out, _ = sh("getent passwd meridian")
    fields = out.strip().split(":")
    r.check("postinst made the system user meridian (uid < 1000, no login shell)",
            len(fields) == 7 and int(fields[2]) < 1000 and fields[6].endswith("nologin"), out)
    code, out, _ = sh("stat -c '%U:%G %a' /var/lib/meridian")
    r.check("/var/lib/meridian is meridian's, 0750", out.strip() == "meridian:meridian 750", out)
    code, out, _ = sh("ls /etc/systemd/system/multi-user.target.wants/")
    r.check("the unit is enabled (deb-systemd-helper)", "meridian.service" in out, out)
    code, out, err = sh("meridian check --config /etc/meridian/meridian.toml && meridianctl --version")
    r.check("the installed programs run; the installed configuration checks", code == 0, out + err)
    sh("echo '# edited by the admin' >> /etc/meridian/meridian.toml")
    sh("echo 'state' > /var/lib/meridian/audit.log")

    code, out, err = sh("dpkg -i /packaging-test/meridian.deb")
    r.check("dpkg -i (upgrade to this build) succeeds", code == 0, (out + err)[-1500:])
    code, out, _ = sh("dpkg-query -W -f '${Version} ${Status}' meridian")
    r.check("the upgraded version is installed", out.strip() == f"{version} install ok installed", out)
    code, out, _ = sh("tail -n 1 /etc/meridian/meridian.toml")
    r.check("upgrade: the admin's edit of the conffile is kept", out.strip() == "# edited by the admin", out)
    code, out, _ = sh("cat /var/lib/meridian/audit.log")
    r.check("upgrade: the state is kept", out.strip() == "state", out)

    code, out, err = sh("dpkg -r meridian")
    r.check("dpkg -r succeeds", code == 0, (out + err)[-1500:])
    code, out, _ = sh("ls /usr/sbin/meridian /usr/bin/meridianctl 2>&1; ls /etc/meridian")
    r.check("remove: the programs are gone, the conffile stays",
            "No such file" in out and "meridian.toml" in out, out)
    code, out, err = sh("dpkg -P meridian")
    r.check("dpkg -P succeeds", code == 0, (out + err)[-1500:])
    code, out, _ = sh("ls -d /etc/meridian /var/lib/meridian /run/meridian "
                      "/etc/systemd/system/multi-user.target.wants/meridian.service 2>/dev/null; true")
    r.check("purge: /etc/meridian, /var/lib/meridian, /run/meridian and the enablement are gone",
            out.strip() == "", out)
    code, out, _ = sh("getent passwd meridian")
    r.check("purge: the system user stays (Debian practice)", out.startswith("meridian:"), out)
    left = [p for p in root.left() if not KEPT_AFTER_PURGE.match(p)]
    r.check("purge leaves nothing but the user, dpkg's database and logs", left == [], "\n".join(left[:30]))


# ---------------------------------------------------------------------------
# lintian

def section_lintian(ctx):
    r = ctx.r
    r.begin("lintian")
    lintian = shutil.which("lintian")
    if not r.check("lintian installed (scripts/deps.sh)", lintian is not None):
        return
    if not r.check("--deb given", bool(ctx.deb) and os.path.exists(ctx.deb)):
        return
    code, out, err = common.run_tool([lintian, "--no-tag-display-limit", "-I", ctx.deb], 600)
    tags = [line for line in out.splitlines() if re.match(r"^[EWIXP]: ", line)]
    for line in tags:
        log(f"   lintian: {line}")
    errors = [t for t in tags if t.startswith("E: ")]
    r.check("lintian: no errors", not errors and code in (0, 1) and "E: " not in err,
            "\n".join(errors) + err[-500:])


def main():
    args = parse_args(__doc__, SECTIONS, extra=(
        (("--build",), {"help": "the build tree (default: the directory of --meridian)"}),
        (("--deb",), {"help": "the .deb to test (sections deb, lintian)"}),
    ))
    if args is None:
        return 2
    r = Results(args.verbose)
    tmp = make_tmp("meridian-packaging-")
    ctx = Ctx(args, tmp, r)
    ctx.args = args
    t0 = time.monotonic()
    sections = {"unit": section_unit, "notify": section_notify, "privdrop": section_privdrop,
                "man": section_man, "deb": section_deb, "lintian": section_lintian}
    try:
        for name in args.only or [s for s in SECTIONS if s not in ("deb", "lintian")]:
            sections[name](ctx)
    finally:
        common.stop_all(ctx.servers)
    status = r.finish(t0)
    drop_tmp(tmp, args.keep, r)
    return status


if __name__ == "__main__":
    sys.exit(main())
