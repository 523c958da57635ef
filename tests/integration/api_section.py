"""The `api` section of run.py: the management HTTP API of the real binary, driven with curl.

`meridian api hash-key` makes the stored form of two keys (one read-write, one read-only limited
to a zone); a meridian with `[api]` on a free loopback port and those `[[api.key]]` entries answers
`GET /api/v1/servers` and `/api/v1/servers/localhost` in PowerDNS's shape (version 4.7.0), 401
{"error": "Unauthorized"} without a key or with a wrong one, 404 {"error": "Not Found"} for an
unknown path or server, 405 for a wrong method, 413 for a body over api.body_limit_bytes, keeps a
connection alive across requests (curl reuses it), and streams `GET /api/v1/events`: a reload after
a zone edit arrives as a `reload` event with the zone's new serial, and a reconnect with
Last-Event-ID replays it; a reload that drops a key refuses its secret from then on. Then: over TLS (a certificate made by `openssl req`, verified by curl);
without any key the API does not start (logged, nothing listens); a malformed key hash is a
start-up error naming the key.
"""

import json
import os
import re
import shutil
import signal
import subprocess
import time

from common import api_keys_toml, check_log_clean, pick_port, run_tool, start_server, write

ZONE = """$ORIGIN api.test.
$TTL 300
@ SOA ns1 hostmaster {serial} 7200 3600 1209600 300
@ NS ns1
ns1 A 192.0.2.1
"""

RW_SECRET = "it-rw-secret-5c1f0e"
RO_SECRET = "it-ro-secret-77a9d2"


def curl(args, timeout=15):
    """(exit code, status, headers dict (lower-case), body) of one curl call (-i output)."""
    rc, out, err = run_tool(["curl", "-s", "-i", "--max-time", "10"] + args, timeout)
    status, headers, body = None, {}, ""
    if rc == 0:
        # With several responses (keep-alive), the last one.
        parts = re.split(r"\r?\n\r?\n", out)
        head_idx = max(i for i, p in enumerate(parts) if p.startswith("HTTP/"))
        head = parts[head_idx].splitlines()
        status = int(head[0].split()[1])
        for line in head[1:]:
            k, _, v = line.partition(":")
            headers[k.strip().lower()] = v.strip()
        body = "\n\n".join(parts[head_idx + 1:])
    return rc, status, headers, body


def json_or_none(text):
    try:
        return json.loads(text)
    except ValueError:
        return None


def hash_key(ctx, secret):
    rc, out, err = run_tool([ctx.meridian, "api", "hash-key", secret], 10)
    return rc, out.strip(), err


def api_config(tmp, port, zone_file, rw_hash, ro_hash, extra=""):
    return f"""[api]
listen = ["127.0.0.1:{port}"]
body_limit_bytes = 4096
{extra}
{api_keys_toml(rw_hash, ro_hash, ["api.test"])}
[[zone]]
name = "api.test"
file = "{zone_file}"
"""


def read_events_until(proc, want, limit_s=15):
    """Lines of a `curl -N` event stream until one containing `want` (or the limit)."""
    deadline = time.monotonic() + limit_s
    os.set_blocking(proc.stdout.fileno(), False)
    buf = b""
    while time.monotonic() < deadline:
        try:
            chunk = proc.stdout.read()
        except (BlockingIOError, OSError):
            chunk = None
        if chunk:
            buf += chunk
            if want.encode() in buf:
                break
        elif proc.poll() is not None:
            break
        time.sleep(0.05)
    return buf.decode("utf-8", "replace")


def section_api(ctx):
    r = ctx.r
    tmp = ctx.tmp
    if not r.check("curl installed", shutil.which("curl") is not None):
        return

    # meridian api hash-key: argument and stdin forms; the stored form matches the secret only.
    rc, rw_hash, err = hash_key(ctx, RW_SECRET)
    r.check("api hash-key SECRET prints sha256$SALT$DIGEST",
            rc == 0 and re.fullmatch(r"sha256\$[0-9a-f]{32}\$[0-9a-f]{64}", rw_hash) is not None,
            f"rc={rc} out={rw_hash!r} err={err!r}")
    p = subprocess.run([ctx.meridian, "api", "hash-key"], input=RO_SECRET.encode() + b"\n",
                       capture_output=True, timeout=10)
    ro_hash = p.stdout.decode().strip()
    r.check("api hash-key reads the secret from stdin",
            p.returncode == 0 and ro_hash.startswith("sha256$") and ro_hash != rw_hash,
            f"rc={p.returncode} out={ro_hash!r}")

    zone_file = os.path.join(tmp, "api.test.zone")
    write(zone_file, ZONE.format(serial=1))
    port = pick_port(ctx, udp=False)
    dns_port = pick_port(ctx)
    conf = os.path.join(tmp, "api.toml")
    write(conf, api_config(tmp, port, zone_file, rw_hash, ro_hash))
    rc, out, err = run_tool([ctx.meridian, "check", "--config", conf], 20)
    r.check("meridian check accepts [api] with two keys", rc == 0, out + err)
    srv = start_server(ctx, "api", ["--config", conf, "--listen", f"127.0.0.1:{dns_port}"],
                       check_started=True)
    if srv is None:
        return
    try:
        base = f"http://127.0.0.1:{port}"
        r.check("log names the API's address and key count",
                f"api: listening on 127.0.0.1:{port} with 2 key(s)" in srv.log_text(), srv.tail())

        rc, status, headers, body = curl(["-H", f"X-API-Key: {RO_SECRET}", f"{base}/api/v1/servers"])
        servers = json_or_none(body)
        r.check("GET /api/v1/servers: 200, JSON list with the localhost server",
                status == 200 and headers.get("content-type") == "application/json"
                and isinstance(servers, list) and len(servers) == 1
                and servers[0].get("id") == "localhost", f"rc={rc} {status} {headers} {body}")
        rc, status, headers, body = curl(["-H", f"X-API-Key: {RW_SECRET}",
                                          f"{base}/api/v1/servers/localhost"])
        srv_obj = json_or_none(body) or {}
        want = {"type": "Server", "id": "localhost", "daemon_type": "authoritative",
                "version": "4.7.0", "url": "/api/v1/servers/localhost",
                "config_url": "/api/v1/servers/localhost/config{/config_setting}",
                "zones_url": "/api/v1/servers/localhost/zones{/zone}"}
        r.check("GET /api/v1/servers/localhost: PowerDNS's server object, version 4.7.0",
                status == 200 and all(srv_obj.get(k) == v for k, v in want.items())
                and "meridian_version" in srv_obj, f"{status} {body}")

        for label, args, want_status, want_error in [
            ("no key", [f"{base}/api/v1/servers"], 401, "Unauthorized"),
            ("wrong key", ["-H", "X-API-Key: nope", f"{base}/api/v1/servers"], 401, "Unauthorized"),
            ("unknown path", ["-H", f"X-API-Key: {RW_SECRET}", f"{base}/api/v1/nothing"], 404,
             "Not Found"),
            ("unknown path without a key", [f"{base}/nothing"], 404, "Not Found"),
            ("unknown server id", ["-H", f"X-API-Key: {RW_SECRET}", f"{base}/api/v1/servers/other"],
             404, "Not Found"),
            ("wrong method", ["-X", "DELETE", "-H", f"X-API-Key: {RW_SECRET}",
                              f"{base}/api/v1/servers"], 405, "Method Not Allowed"),
            ("body over body_limit_bytes", ["-X", "POST", "-H", f"X-API-Key: {RW_SECRET}",
                                            "--data-binary", "x" * 5000, f"{base}/api/v1/servers"],
             413, "Request Entity Too Large"),
        ]:
            rc, status, headers, body = curl(args)
            r.check(f"{label}: {want_status} {{\"error\": \"{want_error}\"}} as JSON",
                    status == want_status and headers.get("content-type") == "application/json"
                    and (json_or_none(body) or {}).get("error") == want_error,
                    f"rc={rc} {status} {headers} {body!r}")

        # Keep-alive: curl with two URLs reuses the connection (-w num_connects is 0 the 2nd time).
        rc, out, err = run_tool(["curl", "-s", "-o", "/dev/null", "-o", "/dev/null", "-w", "%{num_connects} ",
                                 "-H", f"X-API-Key: {RO_SECRET}", f"{base}/api/v1/servers",
                                 f"{base}/api/v1/servers/localhost"], 15)
        r.check("keep-alive: curl's second request reuses the connection", out.split() == ["1", "0"],
                f"rc={rc} out={out!r} err={err!r}")

        # SSE: a reload after a zone edit arrives as a `reload` event with the new serial.
        m = None
        ev = subprocess.Popen(["curl", "-s", "-N", "--max-time", "30", "-H",
                               f"X-API-Key: {RO_SECRET}", f"{base}/api/v1/events"],
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        try:
            first = read_events_until(ev, ": meridian events")
            r.check("GET /api/v1/events opens a text/event-stream", ": meridian events" in first,
                    repr(first))
            write(zone_file, ZONE.format(serial=2))
            srv.signal(signal.SIGHUP)
            got = first + read_events_until(ev, '"serial":2')
            m = re.search(r"id: (\d+)\nevent: reload\ndata: (.*)\n", got)
            data = json_or_none(m.group(2)) if m else None
            zones = {z["name"]: z["serial"] for z in (data or {}).get("zones", [])}
            r.check("a reload after a zone edit is a `reload` event with the zone's new serial",
                    zones.get("api.test.") == 2, repr(got))
        finally:
            ev.kill()
            ev.wait()
        if m:
            last = int(m.group(1))
            ev2 = subprocess.Popen(["curl", "-s", "-N", "--max-time", "30", "-H",
                                    f"X-API-Key: {RO_SECRET}", "-H", f"Last-Event-ID: {last - 1}",
                                    f"{base}/api/v1/events"],
                                   stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
            try:
                again = read_events_until(ev2, '"serial":2')
                r.check("a reconnect with Last-Event-ID replays the event after it",
                        f"id: {last}\nevent: reload\n" in again, repr(again))
            finally:
                ev2.kill()
                ev2.wait()

        # A reload applies a changed key set: the viewer key removed is refused from then on.
        write(conf, api_config(tmp, port, zone_file, rw_hash, ro_hash).split("[[api.key]]\nname = \"viewer\"")[0]
              + f'[[zone]]\nname = "api.test"\nfile = "{zone_file}"\n')
        srv.signal(signal.SIGHUP)
        deadline = time.monotonic() + 10
        status = None
        while time.monotonic() < deadline:
            rc, status, headers, body = curl(["-H", f"X-API-Key: {RO_SECRET}", f"{base}/api/v1/servers"])
            if status == 401:
                break
            time.sleep(0.1)
        rc2, status2, _, _ = curl(["-H", f"X-API-Key: {RW_SECRET}", f"{base}/api/v1/servers"])
        r.check("a reload without the viewer key: its secret gets 401, the other key still 200",
                status == 401 and status2 == 200, f"viewer {status}, ops {status2}\n{srv.tail()}")
    finally:
        rc, secs = srv.stop()
        r.check("api server: SIGTERM -> exit 0", rc == 0, f"rc={rc}")
        check_log_clean(r, "api server", srv.log_text())

    section_api_tls(ctx, zone_file, rw_hash, ro_hash)
    section_api_off(ctx, zone_file, rw_hash)


def section_api_tls(ctx, zone_file, rw_hash, ro_hash):
    r = ctx.r
    cert = os.path.join(ctx.tmp, "api-cert.pem")
    key = os.path.join(ctx.tmp, "api-key.pem")
    rc, out, err = run_tool(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days",
                             "1", "-subj", "/CN=localhost", "-addext",
                             "subjectAltName=IP:127.0.0.1", "-keyout", key, "-out", cert], 60)
    if not r.check("openssl makes a self-signed certificate", rc == 0, err):
        return
    port = pick_port(ctx, udp=False)
    dns_port = pick_port(ctx)
    conf = os.path.join(ctx.tmp, "api-tls.toml")
    write(conf, api_config(ctx.tmp, port, zone_file, rw_hash, ro_hash,
                           f'tls_certificate = "{cert}"\ntls_key = "{key}"'))
    srv = start_server(ctx, "api-tls", ["--config", conf, "--listen", f"127.0.0.1:{dns_port}"],
                       check_started=True)
    if srv is None:
        return
    try:
        rc, status, headers, body = curl(["--cacert", cert, "-H", f"X-API-Key: {RO_SECRET}",
                                          f"https://127.0.0.1:{port}/api/v1/servers/localhost"])
        r.check("TLS: curl verifies the certificate and gets the server object",
                status == 200 and (json_or_none(body) or {}).get("id") == "localhost",
                f"rc={rc} {status} {body}")
        rc, status, headers, body = curl([f"http://127.0.0.1:{port}/api/v1/servers"])
        r.check("TLS: plain HTTP to the TLS port gets no HTTP answer", status is None,
                f"rc={rc} {status}")
    finally:
        srv.stop()


def section_api_off(ctx, zone_file, rw_hash):
    r = ctx.r
    port = pick_port(ctx, udp=False)
    dns_port = pick_port(ctx)
    conf = os.path.join(ctx.tmp, "api-off.toml")
    write(conf, f'[api]\nlisten = ["127.0.0.1:{port}"]\n\n[[zone]]\nname = "api.test"\n'
                f'file = "{zone_file}"\n')
    srv = start_server(ctx, "api-off", ["--config", conf, "--listen", f"127.0.0.1:{dns_port}"],
                       check_started=True)
    if srv is not None:
        try:
            r.check("no [[api.key]]: the log says the API is off",
                    "api: no [[api.key]] configured; the HTTP API is off" in srv.log_text(),
                    srv.tail())
            rc, status, headers, body = curl([f"http://127.0.0.1:{port}/api/v1/servers"])
            r.check("no [[api.key]]: nothing listens on api.listen", rc == 7, f"rc={rc} {status}")
            # Keys added by a reload wait for a restart, and the log says so.
            write(conf, f'[api]\nlisten = ["127.0.0.1:{port}"]\n\n[[api.key]]\nname = "ops"\n'
                        f'hash = "{rw_hash}"\n\n[[zone]]\nname = "api.test"\nfile = "{zone_file}"\n')
            srv.signal(signal.SIGHUP)
            deadline = time.monotonic() + 10
            want = "the API was off at start-up; it starts at the next restart"
            while time.monotonic() < deadline and want not in srv.log_text():
                time.sleep(0.05)
            r.check("keys added by a reload: logged as waiting for a restart", want in srv.log_text(),
                    srv.tail())
        finally:
            srv.stop()

    bad = os.path.join(ctx.tmp, "api-bad.toml")
    write(bad, f'[api]\nlisten = ["127.0.0.1:{port}"]\n\n[[api.key]]\nname = "ops"\n'
               f'hash = "{RW_SECRET}"\nscope = "read-write"\n')
    rc, out, err = run_tool([ctx.meridian, "--config", bad, "--listen", f"127.0.0.1:{dns_port}"], 20)
    r.check("a key configured with its secret instead of the hash is a start-up error naming it",
            rc == 1 and "key 'ops': hash must be sha256$SALT$DIGEST" in out + err
            and re.search(r"api-bad\.toml:\d+: api\.key", out + err) is not None,
            f"rc={rc} {out}{err}")
