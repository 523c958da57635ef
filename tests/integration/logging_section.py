"""The `logging` section of run.py: where the real binary's log lines go and what they look like.

- journald: meridian started with JOURNAL_STREAM set to the device:inode of its own stderr file
  (what systemd does for a unit whose output is the journal) writes `<6>info: ...` and
  `<3>error: ...` lines (sd-daemon(3) priority prefixes) without timestamps; with JOURNAL_STREAM
  naming another file, or `target = "stderr"`, the lines are plain and stamped.
- `format = "json"`: every line parses with json.loads and carries ts, level and msg; a reload
  back to text applies at once.
- `target = "syslog"`: syslog(3) writes to /dev/log, so meridian runs in its own mount namespace
  (unshare -m; private propagation, nothing outside changes) where a unix datagram socket this
  script bound is mounted on /dev/log; the datagrams carry `<PRI>` = facility * 8 + level and
  `meridian[PID]:`. Skipped when the namespace cannot be made (not root).
- `target = "file"` (or a bad facility) stops start-up naming FILE:LINE and the allowed values.
"""

import json
import os
import re
import signal
import socket
import subprocess
import time

from common import START_TIMEOUT, Server, check_log_clean, pick_port, run_tool, write

STAMP_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ meridian\[(debug|info|warning|error)\]: ")

ZONE = """$ORIGIN log.test.
$TTL 300
@ SOA ns1 hostmaster 1 7200 3600 1209600 300
@ NS ns1
ns1 A 192.0.2.1
"""


class EnvServer(Server):
    """A Server (stopped by PID with the others) started with extra environment variables, made by
    env_of(path of its log file) once that file exists, so they may name the file itself."""

    def __init__(self, ctx, label, args, env_of=lambda path: {}, prefix=()):  # noqa: B008
        self.ctx = ctx
        self.label = label
        self.log_path = os.path.join(ctx.tmp, "logging", f"{label}.log")
        self.logf = open(self.log_path, "wb")
        env = dict(os.environ)
        env.pop("JOURNAL_STREAM", None)
        env.update(env_of(self.log_path))
        self.argv = list(prefix) + [ctx.meridian] + list(args)
        self.proc = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL, stdout=self.logf,
                                     stderr=subprocess.STDOUT, cwd=ctx.tmp, env=env)
        self.pid = self.proc.pid
        ctx.servers.append(self)


def dev_ino(path):
    st = os.stat(path)
    return f"{st.st_dev}:{st.st_ino}"


def conf(d, name, port, log_keys, zones=(("log.test", "log.zone"),)):
    path = os.path.join(d, name)
    text = f"[server]\nlisten = [\"127.0.0.1:{port}\"]\nthreads = 1\n[log]\n{log_keys}"
    for origin, file in zones:
        text += f"[[zone]]\nname = \"{origin}\"\nfile = \"{file}\"\n"
    write(path, text)
    return path


def wait_for(fn, timeout=START_TIMEOUT):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = fn()
        if v:
            return v
        time.sleep(0.05)
    return fn()


def logging_journal(ctx, d):
    r = ctx.r
    # One good zone and one whose file is missing: an info and an error line.
    both = (("log.test", "log.zone"), ("missing.test", "missing.zone"))
    path = conf(d, "journal.toml", pick_port(ctx), "", both)
    srv = EnvServer(ctx, "journal", ["--config", path], lambda p: {"JOURNAL_STREAM": dev_ino(p)})
    ok = srv.wait_ready()
    lines = srv.log_text().splitlines()
    r.check("JOURNAL_STREAM = its stderr's dev:ino: starts", ok, srv.tail())
    r.check("... the ready line is '<6>info: ready: ...'", any(ln.startswith("<6>info: ready: ") for ln in lines),
            "\n".join(lines[-10:]))
    r.check("... the missing zone is a '<3>error: zone missing.test.: ...' line",
            any(ln.startswith("<3>error: zone missing.test.") for ln in lines), "\n".join(lines[-10:]))
    r.check("... every line starts with a priority <3>..<7> and none has a timestamp",
            bool(lines) and all(re.match(r"^<[3-7]>(debug|info|warning|error): ", ln) for ln in lines),
            "\n".join(ln for ln in lines if not re.match(r"^<[3-7]>", ln))[:600])
    srv.stop()
    check_log_clean(r, "journal", srv.log_text())

    # JOURNAL_STREAM naming another file (a child of a unit whose output is not ours), and
    # target = "stderr" under the journal: plain stamped lines
    other = os.path.join(d, "other")
    write(other, "")
    stderr_conf = conf(d, "stderr.toml", pick_port(ctx), "target = \"stderr\"\n")
    for n, (label, cfg, stream_of) in enumerate((("JOURNAL_STREAM naming another file", path, lambda p: dev_ino(other)),
                                  ("target = \"stderr\" with JOURNAL_STREAM matching", stderr_conf, dev_ino))):
        srv = EnvServer(ctx, f"plain{n}", ["--config", cfg], lambda p, f=stream_of: {"JOURNAL_STREAM": f(p)})
        ok = srv.wait_ready()
        lines = srv.log_text().splitlines()
        r.check(f"{label}: plain stamped lines, no prefix",
                ok and bool(lines) and all(STAMP_RE.match(ln) for ln in lines), "\n".join(lines[-5:]))
        srv.stop()


def json_lines(text):
    """(objects, lines that are not one JSON object with ts, level and msg)."""
    objs, bad = [], []
    for ln in text.splitlines():
        try:
            o = json.loads(ln)
            if isinstance(o, dict) and {"ts", "level", "msg"} <= o.keys():
                objs.append(o)
                continue
        except ValueError:
            pass
        bad.append(ln)
    return objs, bad


def logging_json(ctx, d):
    r = ctx.r
    port = pick_port(ctx)
    both = (("log.test", "log.zone"), ("missing.test", "missing.zone"))
    path = conf(d, "json.toml", port, "format = \"json\"\nlevel = \"debug\"\n", both)
    srv = EnvServer(ctx, "json", ["--config", path])
    ok = srv.wait_ready()
    r.check("format = \"json\": starts", ok, srv.tail())
    objs, bad = json_lines(srv.log_text())
    r.check("... every line parses with json.loads, with ts, level and msg", bool(objs) and not bad,
            "\n".join(bad[:5]))
    r.check("... ts is RFC 3339 UTC with milliseconds",
            bool(objs) and all(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", o["ts"]) for o in objs),
            str([o["ts"] for o in objs][:3]))
    r.check("... the ready line is level info, the missing zone level error",
            any(o["level"] == "info" and o["msg"].startswith("ready: ") for o in objs)
            and any(o["level"] == "error" and o["msg"].startswith("zone missing.test.") for o in objs),
            str(objs[-4:]))
    # A reload applies log.format at once: its own closing line is text already.
    conf(d, "json.toml", port, "format = \"text\"\n", both)
    before = len(srv.log_text().splitlines())
    srv.signal(signal.SIGHUP)
    wait_for(lambda: any("zone(s) loaded" in ln for ln in srv.log_text().splitlines()[before:]))
    after = srv.log_text().splitlines()[before:]
    done = [i for i, ln in enumerate(after) if "zone(s) loaded" in ln]
    r.check("a reload to format = \"text\": from its 'reload: ... zone(s) loaded' line on, text lines",
            bool(done) and all(STAMP_RE.match(ln) for ln in after[done[0]:]), "\n".join(after[:8]))
    srv.stop()
    check_log_clean(r, "json", srv.log_text())


def logging_syslog(ctx, d):
    r = ctx.r
    sock_path = os.path.join(d, "dev-log")
    rx = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    rx.bind(sock_path)
    rx.settimeout(0.2)
    try:
        # In a mount namespace of its own: a tmpfs on /dev holding null, zero, urandom and random
        # from the real /dev, and our socket as /dev/log. Propagation is private (unshare's
        # default), so the host's /dev is untouched.
        old = os.path.join(d, "olddev")
        os.makedirs(old, exist_ok=True)
        script = (f"set -e; mount --bind /dev {old}; mount -t tmpfs none /dev; "
                  f"for n in null zero urandom random; do touch /dev/$n; mount --bind {old}/$n /dev/$n; done; "
                  f"touch /dev/log; mount --bind {sock_path} /dev/log; umount {old}; exec \"$@\"")
        rc, _, err = run_tool(["unshare", "-m", "sh", "-c", script, "sh", "/bin/true"], timeout=10)
        if rc != 0:
            r.skip("target = \"syslog\" reaches /dev/log", f"no private mount namespace here: {err.strip()[:200]}")
            return
        both = (("log.test", "log.zone"), ("missing.test", "missing.zone"))
        path = conf(d, "syslog.toml", pick_port(ctx), "target = \"syslog\"\nfacility = \"local3\"\n", both)
        srv = EnvServer(ctx, "syslog", ["--config", path], prefix=["unshare", "-m", "sh", "-c", script, "sh"])
        got = []

        def ready():
            try:
                while True:
                    got.append(rx.recv(65536).decode("utf-8", "replace"))
            except socket.timeout:
                pass
            return any("ready: " in g for g in got) or not srv.alive()
        wait_for(ready)
        # RFC 3164 framing from syslog(3): <PRI>TIMESTAMP meridian[PID]: LEVEL: message
        pid_re = re.compile(r"^<(\d+)>.*?meridian\[(\d+)\]: (\w+): (.*)$", re.S)
        parsed = [m.groups() for m in map(pid_re.match, got) if m]
        r.check("target = \"syslog\": datagrams on /dev/log, ident meridian with the server's PID",
                bool(parsed) and len(parsed) == len(got) and all(int(p[1]) == srv.pid for p in parsed),
                f"pid={srv.pid} {got[:3]}")
        local3 = 19 * 8
        r.check("... the ready line at local3.info (<158>)",
                any(p[0] == str(local3 + 6) and p[2] == "info" and p[3].startswith("ready: ") for p in parsed),
                str(got[-3:]))
        r.check("... the missing zone at local3.err (<155>)",
                any(p[0] == str(local3 + 3) and p[3].startswith("zone missing.test.") for p in parsed), str(got))
        r.check("... every priority matches its level word",
                all(int(p[0]) - local3 == {"debug": 7, "info": 6, "warning": 4, "error": 3}[p[2]] for p in parsed),
                str(parsed[:5]))
        text = srv.log_text()
        srv.stop()
        r.check("... and nothing on stderr", text.strip() == "", text[:400])
    finally:
        rx.close()


def logging_bad_values(ctx, d):
    r = ctx.r
    for key, value, want in (("target", "file", ["auto", "stderr", "syslog"]),
                             ("format", "xml", ["text", "json"]),
                             ("facility", "kern", ["daemon", "local7"])):
        path = conf(d, f"bad-{key}.toml", pick_port(ctx), f"{key} = \"{value}\"\n")
        for argv, who in (([ctx.meridian, "--config", path], "meridian"),
                          ([ctx.meridian, "check", "--config", path], "meridian check")):
            rc, out, err = run_tool(argv, timeout=10)
            text = out + err
            need = [f"bad-{key}.toml:5", f"log.{key}"] + want
            missing = [w for w in need if w not in text]
            r.check(f"{who}: log.{key} = \"{value}\" exits 1 naming file:line and the allowed values",
                    rc == 1 and not missing, f"rc={rc} missing={missing} {text[:300]}")


def section_logging(ctx):
    d = os.path.join(ctx.tmp, "logging")
    os.makedirs(d, exist_ok=True)
    write(os.path.join(d, "log.zone"), ZONE)
    for part in (logging_journal, logging_json, logging_syslog, logging_bad_values):
        try:
            part(ctx, d)
        except Exception:  # noqa: BLE001
            import traceback
            ctx.r.check(f"logging: {part.__name__} ran to completion", False, traceback.format_exc())
