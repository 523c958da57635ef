"""The `meridianctl_api` section of run.py: the real meridianctl against the real meridian over the
management API, every command, with dig after each change.

A meridian with control.state_dir, a read-write and a read-only key, the zone ctl.test and one
steered service (two regions, unchecked endpoints). Checked: --version is the server binary's;
`version`; zones list/show (table, zone-file lines, --json parsed); records add (dig sees the
union; adding it again changes nothing; a record that does not parse is exit 2 with record:1:
and nothing is sent; names relative to the zone; TXT with a space), records remove (one record,
then the RRset; removing it again is exit 1); zones import of a changed file (--dry-run lists the
plan and sends nothing; then one PATCH: dig sees the added record and not the deleted one), of a
broken file (exit 2, file:line), of a new zone (created, dig answers it); services list/show,
regions, overrides set/list/clear (dig answers from the other region), a read-only key's
override (exit 1, 403); audit with filters (and --json), a bad --since (exit 2); watch (a
subprocess: an event line within a deadline of a change, --json lines parsed, a reconnection
after the server restarts with the `reset` it gets then, SIGINT exits 0); errors: wrong key
(exit 1, 401), nothing listening (exit 3), usage (exit 2), --key-file and $MERIDIAN_API_KEY;
then TLS with a self-signed certificate made by openssl: --cacert works, without it exit 3 naming
the verification failure.
"""

import json
import os
import re
import signal
import subprocess
import time

from api_section import RO_SECRET, RW_SECRET, hash_key, json_or_none, read_events_until
from common import check_log_clean, pick_port, run_tool, start_server, write

ZONE = """$ORIGIN ctl.test.
$TTL 300
@ SOA ns1 hostmaster 1 7200 3600 1209600 300
@ NS ns1
ns1 A 192.0.2.1
www A 192.0.2.10
old A 192.0.2.30
svc A 192.0.2.99
"""

IMPORT = """$ORIGIN ctl.test.
$TTL 300
@ SOA ns1 hostmaster 1 7200 3600 1209600 300
@ NS ns1
ns1 A 192.0.2.1
www A 192.0.2.10
fresh 600 A 192.0.2.40
svc A 192.0.2.99
"""

NEW_ZONE = """$ORIGIN new.test.
@ 300 SOA ns1 hostmaster 7 7200 3600 1209600 300
@ 300 NS ns1
ns1 300 A 192.0.2.2
app 300 AAAA 2001:db8::5
"""


def config(api_port, zone_file, rw_hash, ro_hash, extra=""):
    return f"""[control]
state_dir = "ctl-state"

[api]
listen = ["127.0.0.1:{api_port}"]
{extra}
[[api.key]]
name = "ops"
hash = "{rw_hash}"
scope = "read-write"

[[api.key]]
name = "viewer"
hash = "{ro_hash}"
scope = "read-only"

[[zone]]
name = "ctl.test"
file = "{zone_file}"

[[region]]
name = "eu"

[[region]]
name = "us"

[[service]]
name = "svc.ctl.test"
policy = ["up", "geo"]

[service.geo]
default = ["eu", "us"]

[[service.pool]]
region = "eu"
endpoints = ["198.51.100.1"]

[[service.pool]]
region = "us"
endpoints = ["198.51.100.3"]
"""


def dig(dns_port, name, rtype="A"):
    rc, out, err = run_tool(["dig", "+short", "+time=2", "+tries=2", "-p", str(dns_port),
                             "@127.0.0.1", name, rtype], 15)
    return sorted(out.split("\n")[:-1]) if rc == 0 else None


def section_meridianctl_api(ctx):
    r = ctx.r
    tmp = os.path.join(ctx.tmp, "ctlapi")
    os.makedirs(tmp, exist_ok=True)
    _, rw_hash, _ = hash_key(ctx, RW_SECRET)
    _, ro_hash, _ = hash_key(ctx, RO_SECRET)
    zone_file = os.path.join(tmp, "ctl.test.zone")
    write(zone_file, ZONE)
    api_port = pick_port(ctx, udp=False)
    dns_port = pick_port(ctx)
    conf = os.path.join(tmp, "ctl.toml")
    write(conf, config(api_port, zone_file, rw_hash, ro_hash))
    args = ["--config", conf, "--listen", f"127.0.0.1:{dns_port}"]
    srv = start_server(ctx, "ctlapi", args, cwd=tmp, check_started=True)
    if srv is None:
        return
    base = f"http://127.0.0.1:{api_port}"
    env = {k: v for k, v in os.environ.items()
           if k not in ("MERIDIAN_API_KEY", "MERIDIAN_API_URL", "MERIDIAN_SOCKET")}

    def ctl(*words, key=RW_SECRET, api=base, extra=(), timeout=30):
        argv = [ctx.meridianctl]
        if api is not None:
            argv += ["--api", api]
        if key is not None:
            argv += ["--key", key]
        return run_tool(argv + list(extra) + list(words), timeout, env=env)

    watchers = []
    try:
        # --version and version.
        rc, out, err = run_tool([ctx.meridianctl, "--version"], 10)
        rc2, out2, _ = run_tool([ctx.meridian, "--version"], 10)
        r.check("meridianctl --version prints the version meridian --version prints",
                rc == 0 and rc2 == 0 and out.split()[-1] == out2.split()[-1], f"{out!r} {out2!r}")
        rc, out, err = ctl("version", key=RO_SECRET)
        r.check("version: meridianctl's and the server's", rc == 0 and
                f"server meridian {out2.split()[-1]} (PowerDNS API 4.7.0)" in out, f"rc={rc} {out}{err}")

        # zones list / show.
        rc, out, err = ctl("zones", key=RO_SECRET)
        r.check("zones: a table with ctl.test. and its serial",
                rc == 0 and out.startswith("NAME") and any(
                    line.split()[:3] == ["ctl.test.", "Native", "1"] for line in out.splitlines()),
                f"rc={rc} {out}{err}")
        rc, out, err = ctl("--json", "zones", "list", key=RO_SECRET)
        zl = json_or_none(out) or []
        r.check("zones list --json: the API's list, parsed",
                rc == 0 and [z.get("name") for z in zl] == ["ctl.test."], f"rc={rc} {out}{err}")
        rc, out, err = ctl("zones", "show", "ctl.test", key=RO_SECRET)
        rows = [line.split() for line in out.splitlines()]
        r.check("zones show: one row per record (NAME TTL TYPE CONTENT)",
                rc == 0 and rows[0] == ["NAME", "TTL", "TYPE", "CONTENT"]
                and ["www.ctl.test.", "300", "A", "192.0.2.10"] in rows and len(rows) == 7,
                f"rc={rc} {out}{err}")
        rc, out, err = ctl("zones", "show", "ctl.test.", "--zone-file", key=RO_SECRET)
        r.check("zones show --zone-file: zone-file lines",
                rc == 0 and "www.ctl.test. 300 IN A 192.0.2.10" in out.splitlines(), f"rc={rc} {out}{err}")
        rc, out, err = ctl("--json", "zones", "show", "ctl.test", key=RO_SECRET)
        z = json_or_none(out) or {}
        r.check("zones show --json: the zone object with its rrsets",
                rc == 0 and z.get("name") == "ctl.test." and len(z.get("rrsets", [])) == 6,
                f"rc={rc} {out[:300]}{err}")
        rc, out, err = ctl("zones", "show", "nope.test", key=RO_SECRET)
        r.check("zones show of an unknown zone: exit 1, 404 on stderr",
                rc == 1 and "404 Not Found" in err, f"rc={rc} {out}{err}")

        # watch: started now, so that it sees the changes below.
        w = subprocess.Popen([ctx.meridianctl, "--api", base, "--key", RO_SECRET, "watch"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
        wj = subprocess.Popen([ctx.meridianctl, "--api", base, "--key", RO_SECRET, "--json", "watch"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
        watchers += [w, wj]
        # Both say on stderr when the stream is open, before the first change is made.
        notes = [read_events_until_err(p, "following") for p in (w, wj)]
        r.check("watch notes on stderr that it follows the stream",
                all("following" in n for n in notes), repr(notes))

        # records add / remove.
        rc, out, err = ctl("records", "add", "ctl.test", "www", "A", "300", "192.0.2.11")
        m = re.search(r"serial (\d+) -> (\d+)", out)
        new_serial = int(m.group(2)) if m else -1
        r.check("records add: exit 0, says what it did and the serial it moved to",
                rc == 0 and "added www.ctl.test. 300 A 192.0.2.11" in out and m is not None
                and int(m.group(1)) == 1 and new_serial > 1, f"rc={rc} {out}{err}")
        r.check("records add: dig sees both records of the RRset",
                dig(dns_port, "www.ctl.test") == ["192.0.2.10", "192.0.2.11"], "")
        seen = read_events_until(w, f"zone ctl.test. serial {new_serial}")
        r.check("watch prints the zone event of the change as a line",
                f"zone ctl.test. serial {new_serial}\n" in seen, repr(seen))
        seen_j = read_events_until(wj, f'"serial":{new_serial}')
        lines = [json_or_none(line) for line in seen_j.splitlines()]
        r.check("watch --json: one JSON object per line, the zone event parsed",
                any(isinstance(j, dict) and j.get("event") == "zone" and j.get("id")
                    and j.get("data") == {"name": "ctl.test.", "serial": new_serial} for j in lines),
                repr(seen_j))
        rc, out, err = ctl("records", "add", "ctl.test", "www.ctl.test.", "A", "300", "192.0.2.11")
        r.check("records add of a record already there: exit 0, nothing changed",
                rc == 0 and "already there; nothing changed" in out, f"rc={rc} {out}{err}")
        rc, out, err = ctl("records", "add", "ctl.test", "bad", "A", "300", "1.2.3")
        r.check("records add of content that does not parse: exit 2, record:1: message, not sent",
                rc == 2 and "record:1:" in err and "nothing was sent" in err
                and dig(dns_port, "bad.ctl.test") == [], f"rc={rc} {out}{err}")
        rc, out, err = ctl("--json", "records", "add", "ctl.test", "txt", "TXT", "1h", '"hello world"', "more")
        j = json_or_none(out) or {}
        r.check("records add --json: TXT with a space, TTL 1h, the RRset as JSON",
                rc == 0 and j.get("ttl") == 3600 and [x.get("content") for x in j.get("records", [])]
                == ['"hello world" "more"'] and dig(dns_port, "txt.ctl.test", "TXT") == ['"hello world" "more"'],
                f"rc={rc} {out}{err}")
        rc, out, err = ctl("records", "add", "ctl.test", "alias", "CNAME", "300", "www")
        r.check("records add: a relative name in the content is relative to the zone",
                rc == 0 and dig(dns_port, "alias.ctl.test", "CNAME") == ["www.ctl.test."], f"rc={rc} {out}{err}")
        rc, out, err = ctl("records", "add", "ctl.test", "www", "CNAME", "300", "alias")
        r.check("records add refused by the server (CNAME beside an A): exit 1, its 422 error",
                rc == 1 and err.startswith("meridianctl: 422 ") and "Conflicts" in err, f"rc={rc} {out}{err}")
        rc, out, err = ctl("records", "remove", "ctl.test", "www", "A", "192.0.2.10")
        r.check("records remove of one record: dig sees the rest",
                rc == 0 and "1 left" in out and dig(dns_port, "www.ctl.test") == ["192.0.2.11"],
                f"rc={rc} {out}{err}")
        rc, out, err = ctl("records", "remove", "ctl.test", "alias", "CNAME")
        r.check("records remove of the RRset: dig finds nothing",
                rc == 0 and dig(dns_port, "alias.ctl.test", "CNAME") == [], f"rc={rc} {out}{err}")
        rc, out, err = ctl("records", "remove", "ctl.test", "alias", "CNAME")
        r.check("records remove of an RRset that is not there: exit 1", rc == 1 and "has no" in err,
                f"rc={rc} {out}{err}")
        rc, out, err = ctl("records", "add", "ctl.test", "www", "A", "300", "192.0.2.12", key=RO_SECRET)
        r.check("records add with a read-only key: exit 1, the 403", rc == 1 and "403" in err,
                f"rc={rc} {out}{err}")

        # zones import.
        imp = os.path.join(tmp, "import.zone")
        write(imp, IMPORT)
        rc, out, err = ctl("zones", "import", "ctl.test", imp, "--dry-run")
        r.check("zones import --dry-run: the plan, nothing sent",
                rc == 0 and "delete  old.ctl.test. A" in out and "replace fresh.ctl.test. A" in out
                and "replace www.ctl.test. A" in out and "delete  txt.ctl.test. TXT" in out
                and "nothing sent" in out and dig(dns_port, "old.ctl.test") == ["192.0.2.30"],
                f"rc={rc} {out}{err}")
        rc, out, err = ctl("zones", "import", "ctl.test", imp)
        r.check("zones import: one PATCH; dig sees the file's records and not the deleted ones",
                rc == 0 and "2 RRsets replaced, 2 deleted, 4 unchanged" in out
                and dig(dns_port, "fresh.ctl.test") == ["192.0.2.40"]
                and dig(dns_port, "old.ctl.test") == [] and dig(dns_port, "www.ctl.test") == ["192.0.2.10"],
                f"rc={rc} {out}{err}")
        rc, out, err = ctl("zones", "import", "ctl.test", imp)
        r.check("zones import of the same file again: nothing changed",
                rc == 0 and "nothing changed" in out, f"rc={rc} {out}{err}")
        broken = os.path.join(tmp, "broken.zone")
        write(broken, IMPORT + "bad A 999.1.1.1\n")
        rc, out, err = ctl("zones", "import", "ctl.test", broken)
        r.check("zones import of a broken file: exit 2, FILE:LINE, nothing sent",
                rc == 2 and f"{broken}:9:" in err and dig(dns_port, "fresh.ctl.test") == ["192.0.2.40"],
                f"rc={rc} {out}{err}")
        newf = os.path.join(tmp, "new.zone")
        write(newf, NEW_ZONE)
        rc, out, err = ctl("zones", "import", "new.test", newf)
        r.check("zones import of a zone the server does not have: created, dig answers it",
                rc == 0 and out.startswith("created new.test.")
                and dig(dns_port, "app.new.test", "AAAA") == ["2001:db8::5"], f"rc={rc} {out}{err}")

        # services, regions, overrides.
        rc, out, err = ctl("services", key=RO_SECRET)
        r.check("services: a table with the service, its policy and regions",
                rc == 0 and any(line.split()[:6] == ["svc.ctl.test.", "ctl.test.", "30", "up", "->", "geo"]
                                for line in out.splitlines()) and "eu,us" in out, f"rc={rc} {out}{err}")
        rc, out, err = ctl("--json", "services", "show", "svc.ctl.test", key=RO_SECRET)
        s = json_or_none(out) or {}
        r.check("services show --json: the service object",
                rc == 0 and s.get("name") == "svc.ctl.test." and len(s.get("pools", [])) == 2, f"rc={rc} {out}{err}")
        rc, out, err = ctl("services", "show", "svc.ctl.test.", key=RO_SECRET)
        r.check("services show: endpoints by region with their health",
                rc == 0 and "eu/198.51.100.1" in out and "us/198.51.100.3" in out, f"rc={rc} {out}{err}")
        rc, out, err = ctl("services", "show", "nope.ctl.test", key=RO_SECRET)
        r.check("services show of an unknown service: exit 1", rc == 1, f"rc={rc} {out}{err}")
        rc, out, err = ctl("regions", key=RO_SECRET)
        r.check("regions: a table", rc == 0 and out.split()[4:] == ["eu", "-", "-", "-", "us", "-", "-", "-"],
                f"rc={rc} {out}{err}")
        r.check("before the override dig answers from eu", dig(dns_port, "svc.ctl.test") == ["198.51.100.1"], "")
        rc, out, err = ctl("overrides", "set", "region:eu", "force-down")
        r.check("overrides set: exit 0, the slot changed; dig answers from us",
                rc == 0 and "eu/198.51.100.1: force-down" in out
                and dig(dns_port, "svc.ctl.test") == ["198.51.100.3"], f"rc={rc} {out}{err}")
        rc, out, err = ctl("overrides", key=RO_SECRET)
        rc2, out2, _ = ctl("--json", "overrides", "list", key=RO_SECRET)
        r.check("overrides (list): the table and --json",
                rc == 0 and "eu/198.51.100.1" in out and "force-down" in out
                and [o.get("label") for o in (json_or_none(out2) or {}).get("overrides", [])] == ["eu/198.51.100.1"],
                f"rc={rc} {out}{out2}{err}")
        seen = read_events_until(w, "override eu/198.51.100.1")
        r.check("watch prints the override event", "override eu/198.51.100.1 verdict up, override force-down" in seen,
                repr(seen))
        rc, out, err = ctl("overrides", "set", "region:us", "drain", key=RO_SECRET)
        r.check("overrides set with a read-only key: exit 1, 403", rc == 1 and "403" in err, f"rc={rc} {err}")
        rc, out, err = ctl("overrides", "set", "region:mars", "drain")
        r.check("overrides set of nothing: exit 1, the server's 422", rc == 1 and "422" in err, f"rc={rc} {err}")
        rc, out, err = ctl("overrides", "clear", "region:eu")
        r.check("overrides clear: dig answers from eu again",
                rc == 0 and dig(dns_port, "svc.ctl.test") == ["198.51.100.1"], f"rc={rc} {out}{err}")

        # health, explain, reload, metrics (the table and text forms are checked in api_meridian).
        rc, out, err = ctl("health", key=RO_SECRET)
        rc2, out2, err2 = ctl("explain", "svc.ctl.test", "192.0.2.7", key=RO_SECRET)
        rc3, out3, err3 = ctl("reload")
        rc4, out4, err4 = ctl("metrics", key=RO_SECRET)
        r.check("health, explain, reload, metrics over the API: exit 0",
                (rc, rc2, rc3, rc4) == (0, 0, 0, 0) and "eu/198.51.100.1" in out
                and "decision answer" in out2 and out3.startswith("ok ")
                and "meridian_api_requests_total" in out4, f"{rc} {rc2} {rc3} {rc4} {err}{err2}{err3}{err4}")

        # audit.
        rc, out, err = ctl("audit", "--zone", "ctl.test", "--key", "ops", key=RO_SECRET)
        r.check("audit --zone --key: the patches, with their diffs",
                rc == 0 and "key=ops" in out and f"patch ctl.test. serial 1 -> {new_serial}" in out
                and re.search(r"^  \+ \s*300\s+IN\s+A\s+192\.0\.2\.11$", out, re.M), f"rc={rc} {out}{err}")
        rc, out, err = ctl("--json", "audit", "--limit", "2", "--since", "2000-01-01", key=RO_SECRET)
        entries = json_or_none(out)
        r.check("audit --json --limit 2: the API's entries, parsed",
                rc == 0 and isinstance(entries, list) and len(entries) == 2, f"rc={rc} {out}{err}")
        rc, out, err = ctl("audit", key=RO_SECRET)
        r.check("audit without filters: every entry (the override's among them)",
                rc == 0 and " override " in out and "patch ctl.test." in out, f"rc={rc} {out[-400:]}{err}")
        rc, out, err = ctl("audit", "--since", "yesterday", key=RO_SECRET)
        r.check("audit --since not a time: exit 2", rc == 2, f"rc={rc} {err}")

        # Errors and keys.
        rc, out, err = ctl("zones", key="wrong")
        r.check("a wrong key: exit 1, 401 on stderr", rc == 1 and "401 Unauthorized" in err, f"rc={rc} {err}")
        dead = pick_port(ctx, udp=False)
        rc, out, err = ctl("zones", api=f"http://127.0.0.1:{dead}")
        r.check("nothing listening: exit 3, cannot connect", rc == 3 and "cannot connect" in err,
                f"rc={rc} {err}")
        rc, out, err = run_tool([ctx.meridianctl, "--socket", os.path.join(tmp, "none.sock"), "status"], 10,
                                env=env)
        r.check("control socket not there: exit 3 too", rc == 3, f"rc={rc} {err}")
        for label, words in [("unknown command", ["frobnicate"]),
                             ("records add without content", ["records", "add", "ctl.test", "x", "A", "300"]),
                             ("zones import without a file", ["zones", "import", "ctl.test"])]:
            rc, out, err = ctl(*words)
            r.check(f"usage error ({label}): exit 2", rc == 2, f"rc={rc} {err}")
        rc, out, err = ctl("records", "add", "ctl.test", "x", "A", "300", "192.0.2.9", key=None, api=None)
        r.check("records without --api: exit 2 naming --api",
                run_tool([ctx.meridianctl, "records", "list"], 10, env=env)[0] == 2 and rc == 2,
                f"rc={rc} {err}")
        key_file = os.path.join(tmp, "key")
        write(key_file, RO_SECRET + "\n")
        rc, out, err = ctl("zones", key=None, extra=["--key-file", key_file])
        rc2, out2, err2 = run_tool([ctx.meridianctl, "zones"], 15,
                                   env=dict(env, MERIDIAN_API_URL=base, MERIDIAN_API_KEY=RO_SECRET))
        r.check("--key-file, and $MERIDIAN_API_URL with $MERIDIAN_API_KEY",
                rc == 0 and "ctl.test." in out and rc2 == 0 and "ctl.test." in out2, f"{rc} {err} {rc2} {err2}")

        # watch reconnects after the server restarts (ids restart: it gets a reset first).
        rc, secs = srv.stop()
        r.check("ctlapi server: SIGTERM -> exit 0", rc == 0, f"rc={rc}")
        check_log_clean(r, "ctlapi server", srv.log_text())
        srv = start_server(ctx, "ctlapi-2", args, cwd=tmp)
        if srv is not None:
            noted = read_events_until_err(w, "reconnecting")
            noted += read_events_until_err(w, "from event")
            r.check("watch: a dropped connection is noted on stderr, and the reconnection",
                    "reconnecting" in noted and "from event" in noted, repr(noted))
            # Keep changing until the reconnected stream shows one (the retry pause is not asserted).
            seen, serial = "", 100
            deadline = time.monotonic() + 30
            while "zone ctl.test." not in seen.split(" reset ", 1)[-1] and time.monotonic() < deadline:
                ctl("records", "add", "ctl.test", "again", "A", "300", f"192.0.2.{serial % 250}")
                serial += 1
                seen += read_events_until(w, "zone ctl.test.", 2)
            r.check("watch: after the restart it resumes (a reset, then the new zone event)",
                    " reset " in seen and "zone ctl.test." in seen.split(" reset ", 1)[-1], repr(seen))
        w.send_signal(signal.SIGINT)
        try:
            rc = w.wait(15)
        except subprocess.TimeoutExpired:
            rc = None
        r.check("watch: SIGINT ends it with exit 0", rc == 0, f"rc={rc}")
    finally:
        for p in watchers:
            if p.poll() is None:
                p.kill()
            p.wait()
        if srv is not None:
            srv.stop()

    section_meridianctl_tls(ctx, tmp, rw_hash, ro_hash, env)


def read_events_until_err(proc, want, limit_s=15):
    """Like read_events_until, on stderr."""

    class Swap:
        stdout = proc.stderr

        @staticmethod
        def poll():
            return proc.poll()

    return read_events_until(Swap, want, limit_s)


def section_meridianctl_tls(ctx, tmp, rw_hash, ro_hash, env):
    r = ctx.r
    cert = os.path.join(tmp, "cert.pem")
    key = os.path.join(tmp, "key.pem")
    rc, out, err = run_tool(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                             "-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
                             "-keyout", key, "-out", cert], 60)
    if not r.check("openssl makes a self-signed certificate", rc == 0, err):
        return
    zone_file = os.path.join(tmp, "tls.ctl.test.zone")
    write(zone_file, ZONE)
    api_port = pick_port(ctx, udp=False)
    dns_port = pick_port(ctx)
    conf = os.path.join(tmp, "ctl-tls.toml")
    write(conf, config(api_port, zone_file, rw_hash, ro_hash,
                       f'tls_certificate = "{cert}"\ntls_key = "{key}"').replace("ctl-state", "ctl-tls-state"))
    srv = start_server(ctx, "ctlapi-tls", ["--config", conf, "--listen", f"127.0.0.1:{dns_port}"], cwd=tmp,
                       check_started=True)
    if srv is None:
        return
    try:
        url = f"https://127.0.0.1:{api_port}"
        rc, out, err = run_tool([ctx.meridianctl, "--api", url, "--key", RO_SECRET, "--cacert", cert, "zones"],
                                30, env=env)
        r.check("TLS: --cacert with the self-signed certificate: zones lists", rc == 0 and "ctl.test." in out,
                f"rc={rc} {out}{err}")
        rc, out, err = run_tool([ctx.meridianctl, "--api", f"https://localhost:{api_port}", "--key", RW_SECRET,
                                 "--cacert", cert, "records", "add", "ctl.test", "tls", "A", "300", "192.0.2.77"],
                                30, env=env)
        r.check("TLS by host name: records add, dig sees it",
                rc == 0 and dig(dns_port, "tls.ctl.test") == ["192.0.2.77"], f"rc={rc} {out}{err}")
        rc, out, err = run_tool([ctx.meridianctl, "--api", url, "--key", RO_SECRET, "zones"], 30, env=env)
        r.check("TLS without --cacert (system roots): exit 3, the verification failure named",
                rc == 3 and "certificate verify failed" in err and "self-signed" in err, f"rc={rc} {err}")
        rc, out, err = run_tool([ctx.meridianctl, "--api", f"http://127.0.0.1:{api_port}", "--key", RO_SECRET,
                                 "zones"], 30, env=env)
        r.check("plain http to the TLS port: exit 3", rc == 3, f"rc={rc} {err}")
        w = subprocess.Popen([ctx.meridianctl, "--api", url, "--key", RO_SECRET, "--cacert", cert, "watch",
                              "--count", "1"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
        try:
            read_events_until_err(w, "following")
            run_tool([ctx.meridianctl, "--api", url, "--key", RW_SECRET, "--cacert", cert, "records", "add",
                      "ctl.test", "tls2", "A", "300", "192.0.2.78"], 30, env=env)
            seen = read_events_until(w, "zone ctl.test.")
            rc = w.wait(15)
        finally:
            if w.poll() is None:
                w.kill()
                w.wait()
        r.check("TLS: watch --count 1 gets the zone event and exits 0",
                rc == 0 and "zone ctl.test. serial" in seen, f"rc={rc} {seen!r}")
    finally:
        rc, _ = srv.stop()
        r.check("ctlapi-tls server: SIGTERM -> exit 0", rc == 0, f"rc={rc}")
