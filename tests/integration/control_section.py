"""The `audit` and `metrics` sections of run.py.

audit: an audit log written here by the format docs/operations.md describes (JSON lines, SHA-256
chain, FILE.head), so the documented format itself is checked; `meridianctl audit verify` passes
it (exit 0) and catches tampered copies (exit 1, naming the first bad line): an edited entry,
two entries swapped, one removed from the middle, the last one removed, the last line truncated,
an entry inserted; a missing file or bad usage exits 2. `meridianctl audit show` filters by zone,
key, time range and limit.

metrics: a meridian with two workers and two zones gets a known set of queries (dnspython over
UDP and TCP, and dig); `meridianctl metrics` must count them exactly by transport, qtype, zone and
rcode, and the UDP latency histogram must hold one observation per UDP answer. A reload that adds
a zone keeps the counts and counts as a reload with outcome ok; a reload with a broken zone file
counts as failed.
"""

import hashlib
import json
import os
import re
import shutil
import subprocess

import dns.message
import dns.query
import dns.rcode

import common
from common import pick_port, start_server, write

GENESIS = "0" * 64


def run_tool(argv, timeout=15):
    return common.run_tool(argv, timeout)


def entry_line(seq, time, key, zone, prev, removed=(), added=(), operation="patch"):
    """One log line and its hash, as control/audit.cc writes it."""
    obj = {"seq": seq, "time": time, "key": key, "source": "127.0.0.1", "operation": operation,
           "zone": zone, "old_serial": seq, "new_serial": seq + 1, "removed": list(removed),
           "added": list(added), "detail": "", "prev": prev}
    body = json.dumps(obj, separators=(",", ":"), ensure_ascii=False)[:-1]
    h = hashlib.sha256(body.encode()).hexdigest()
    return body + ',"hash":"' + h + '"}', h


def write_log(path, lines):
    data = "".join(line + "\n" for line in lines)
    write(path, data)
    last = lines[-1]
    h = last[-66:-2]
    write(path + ".head", f"meridian-audit-head-1\ncount {len(lines)}\nhash {h}\nsize {len(data.encode())}\n")


def make_entries():
    lines, prev = [], GENESIS
    for i in range(6):
        zone = "example.com." if i % 2 == 0 else "example.org."
        key = "ops" if i < 4 else "ci"
        line, prev = entry_line(i, f"2026-12-01T1{i}:00:00.000Z", key, zone, prev,
                                removed=[f"www.{zone} 300 IN A 192.0.2.{i}"],
                                added=[f"www.{zone} 300 IN A 192.0.2.{i + 1}",
                                       f'txt.{zone} 300 IN TXT "a \\"quoted\\" word"'])
        lines.append(line)
    return lines


def section_audit(ctx):
    r = ctx.r
    adir = os.path.join(ctx.tmp, "audit")
    os.makedirs(adir, exist_ok=True)
    ctl = ctx.meridianctl
    good = make_entries()
    path = os.path.join(adir, "audit.log")
    write_log(path, good)

    rc, out, err = run_tool([ctl, "audit", "verify", path])
    r.check("audit verify: an untouched log -> exit 0, 6 entries", rc == 0 and "6 entries" in out,
            f"rc={rc} out={out!r} err={err!r}")

    def tampered(label, lines, bad_line, word, raw=None):
        p = os.path.join(adir, label.replace(" ", "_") + ".log")
        write_log(p, good)  # the head of the untouched log
        if raw is not None:
            write(p, raw)
        else:
            write(p, "".join(x + "\n" for x in lines))
        rc, out, err = run_tool([ctl, "audit", "verify", p])
        r.check(f"audit verify: {label} -> exit 1, line {bad_line} named",
                rc == 1 and f"line {bad_line}:" in out and word in out,
                f"rc={rc} out={out!r} err={err!r}")

    edited = list(good)
    edited[2] = edited[2].replace("192.0.2.3", "192.0.2.66")
    tampered("an edited entry", edited, 3, "edited")
    swapped = list(good)
    swapped[1], swapped[2] = swapped[2], swapped[1]
    tampered("two entries swapped", swapped, 2, "reordered")
    tampered("an entry removed from the middle", good[:3] + good[4:], 4, "removed")
    tampered("the last entry removed", good[:-1], 6, "removed from the end")
    data = "".join(x + "\n" for x in good)
    tampered("the last line truncated", None, 6, "truncated", raw=data[:-20])
    forged, _ = entry_line(2, "2026-12-01T11:30:00.000Z", "eve", "example.com.", good[1][-66:-2])
    tampered("an entry inserted", good[:2] + [forged] + good[2:], 4, "inserted")

    rc, out, err = run_tool([ctl, "audit", "verify", os.path.join(adir, "missing.log")])
    r.check("audit verify: no such log (nor head) -> exit 2", rc == 2 and "cannot read" in err,
            f"rc={rc} out={out!r} err={err!r}")
    os.remove(os.path.join(adir, "an_edited_entry.log"))  # the log gone, its head left
    rc, out, err = run_tool([ctl, "audit", "verify", os.path.join(adir, "an_edited_entry.log")])
    r.check("audit verify: the log deleted, its head left -> exit 1", rc == 1 and "TAMPERED" in out,
            f"rc={rc} out={out!r} err={err!r}")
    os.makedirs(os.path.join(adir, "unreadable.log"), exist_ok=True)   # a directory: an I/O error
    rc, out, err = run_tool([ctl, "audit", "verify", os.path.join(adir, "unreadable.log")])
    r.check("audit verify: an unreadable log -> exit 2", rc == 2, f"rc={rc} out={out!r} err={err!r}")
    rc, out, err = run_tool([ctl, "audit", "verify"])
    r.check("audit verify without FILE -> exit 2 with usage", rc == 2 and "usage" in err, f"rc={rc} err={err!r}")

    def show(*args):
        rc, out, err = run_tool([ctl, "audit", "show", path, *args])
        seqs = [int(m.group(1)) for m in re.finditer(r"^(\d+) 2026", out, re.M)]
        return rc, seqs, out, err

    for args, want in ((("--zone", "example.com"), [0, 2, 4]),
                       (("--zone", "EXAMPLE.org.", "--key", "ops"), [1, 3]),
                       (("--since", "2026-12-01T11:00:00Z", "--until", "2026-12-01T13:00:00Z"), [1, 2, 3]),
                       (("--key", "ops", "--limit", "2"), [2, 3])):
        rc, seqs, out, err = show(*args)
        r.check(f"audit show {' '.join(args)} -> entries {want}", rc == 0 and seqs == want,
                f"rc={rc} seqs={seqs} out={out!r} err={err!r}")
    rc, seqs, out, err = show("--zone", "example.org", "--json")
    lines = out.splitlines()
    r.check("audit show --json prints the log's own lines", rc == 0 and lines == [good[1], good[3], good[5]],
            f"rc={rc} out={out!r}")
    rc, seqs, out, err = show("--since", "yesterday")
    r.check("audit show --since with a bad time -> exit 2", rc == 2 and "not a time" in err, f"rc={rc} err={err!r}")


# ---------------------------------------------------------------------------


def zone_text(origin):
    return (f"$ORIGIN {origin}.\n$TTL 300\n@ SOA ns1 hostmaster 1 7200 3600 1209600 300\n@ NS ns1\n"
            f"ns1 A 192.0.2.1\nwww A 192.0.2.2\nwww TXT \"hello\"\n")


def metrics_of(ctx, sock):
    """{(name, frozenset(labels)): value} from `meridianctl metrics`, and the raw text."""
    rc, out, err = run_tool([ctx.meridianctl, "--socket", sock, "metrics"])
    values = {}
    if rc != 0 or not out.startswith("ok\n"):
        return None, out + err
    for line in out.splitlines()[1:]:
        if not line or line.startswith("#"):
            continue
        m = re.match(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$', line)
        if not m:
            return None, f"unparsable line {line!r}"
        labels = frozenset(re.findall(r'([a-zA-Z_]+)="((?:[^"\\]|\\.)*)"', m.group(2) or ""))
        values[(m.group(1), labels)] = float(m.group(3))
    return values, out


def get(values, name, **labels):
    return values.get((name, frozenset(labels.items())))


def section_metrics(ctx):
    r = ctx.r
    mdir = os.path.join(ctx.tmp, "metrics")
    os.makedirs(mdir, exist_ok=True)
    for origin in ("m1.test", "m2.test", "m3.test"):
        write(os.path.join(mdir, origin + ".zone"), zone_text(origin))
    port = pick_port(ctx)
    A = ("127.0.0.1", port)
    sock = os.path.join(mdir, "ctl.sock")
    conf = os.path.join(mdir, "meridian.toml")
    base = (f'[server]\nlisten = ["127.0.0.1:{port}"]\nthreads = 2\n[control]\nsocket = "ctl.sock"\n'
            '[[zone]]\nname = "m1.test"\nfile = "m1.test.zone"\n[[zone]]\nname = "m2.test"\nfile = "m2.test.zone"\n')
    write(conf, base)
    srv = start_server(ctx, "metrics", ["--config", conf], cwd=mdir, check_started=True)
    if srv is None:
        return

    want_rc = {"NOERROR": 0, "NXDOMAIN": 0, "REFUSED": 0}
    sent = {"udp": 0, "tcp": 0}

    def ask(name, rdtype, tcp=False):
        q = dns.message.make_query(name, rdtype)
        reply = dns.query.tcp(q, A[0], port=A[1], timeout=3) if tcp else dns.query.udp(q, A[0], port=A[1], timeout=3)
        sent["tcp" if tcp else "udp"] += 1
        want_rc[dns.rcode.to_text(reply.rcode())] += 1

    for _ in range(7):
        ask("www.m1.test.", "A")
    for _ in range(3):
        ask("www.m1.test.", "TXT", tcp=True)
    for _ in range(4):
        ask("nope.m2.test.", "AAAA")
    ask("www.m2.test.", "CAA")
    ask("www.elsewhere.test.", "A")  # not served: REFUSED, in no zone
    ask("www.m2.test.", "NAPTR")
    dig = shutil.which("dig")
    if dig:
        out = subprocess.run([dig, "@127.0.0.1", "-p", str(port), "+tries=1", "+time=3", "www.m2.test", "MX"],
                             capture_output=True, text=True, timeout=10).stdout
        if "status: NOERROR" in out:
            sent["udp"] += 1
            want_rc["NOERROR"] += 1
        r.check("metrics: dig gets an answer", "status: NOERROR" in out, out[-300:])

    values, text = metrics_of(ctx, sock)
    r.check("metrics: meridianctl metrics prints Prometheus text", values is not None
            and "# TYPE meridian_queries_total counter" in text, text[:500])
    if values is None:
        srv.stop()
        return
    checks = [
        ("meridian_queries_total", {"transport": "udp"}, sent["udp"]),
        ("meridian_queries_total", {"transport": "tcp"}, sent["tcp"]),
        ("meridian_query_types_total", {"qtype": "A"}, 8),
        ("meridian_query_types_total", {"qtype": "TXT"}, 3),
        ("meridian_query_types_total", {"qtype": "AAAA"}, 4),
        ("meridian_query_types_total", {"qtype": "CAA"}, 1),
        ("meridian_query_types_total", {"qtype": "NAPTR"}, 1),
        ("meridian_query_types_total", {"qtype": "MX"}, 1 if dig else 0),
        ("meridian_zone_queries_total", {"zone": "m1.test."}, 10),
        ("meridian_zone_queries_total", {"zone": "m2.test."}, 6 + (1 if dig else 0)),
        ("meridian_responses_total", {"rcode": "NOERROR"}, want_rc["NOERROR"]),
        ("meridian_responses_total", {"rcode": "NXDOMAIN"}, want_rc["NXDOMAIN"]),
        ("meridian_responses_total", {"rcode": "REFUSED"}, want_rc["REFUSED"]),
        ("meridian_udp_answer_latency_seconds_count", {}, sent["udp"]),
        ("meridian_reloads_total", {"outcome": "ok"}, 1),   # the start-up load
        ("meridian_zone_serial", {"zone": "m1.test."}, 1),
    ]
    for name, labels, want in checks:
        got = get(values, name, **labels)
        r.check(f"metrics: {name}{labels} == {want}", got == want, f"got {got}")
    r.check("metrics: the rcodes add up to the queries answered",
            sum(want_rc.values()) == sent["udp"] + sent["tcp"], f"{want_rc} {sent}")

    # A reload that adds m3.test: m1's and m2's counts stay, m3 starts at 0, reload ok.
    write(conf, base + '[[zone]]\nname = "m3.test"\nfile = "m3.test.zone"\n')
    rc, out, err = run_tool([ctx.meridianctl, "--socket", sock, "reload"], timeout=10)
    r.check("metrics: reload adding a zone -> ok", rc == 0, f"rc={rc} out={out!r} err={err!r}")
    ask("www.m3.test.", "A")
    ask("www.m1.test.", "A")
    values, text = metrics_of(ctx, sock)
    values = values or {}
    for name, labels, want in (("meridian_zone_queries_total", {"zone": "m1.test."}, 11),
                               ("meridian_zone_queries_total", {"zone": "m2.test."}, 6 + (1 if dig else 0)),
                               ("meridian_zone_queries_total", {"zone": "m3.test."}, 1),
                               ("meridian_reloads_total", {"outcome": "ok"}, 2),
                               ("meridian_reloads_total", {"outcome": "failed"}, 0)):
        got = get(values, name, **labels)
        r.check(f"metrics after reload: {name}{labels} == {want}", got == want, f"got {got}")

    # A reload with a broken zone file: counted as failed, the zone keeps serving and counting.
    write(os.path.join(mdir, "m3.test.zone"), zone_text("m3.test") + "bad line here\n")
    rc, out, err = run_tool([ctx.meridianctl, "--socket", sock, "reload"], timeout=10)
    ask("www.m3.test.", "A")
    values, text = metrics_of(ctx, sock)
    values = values or {}
    for name, labels, want in (("meridian_reloads_total", {"outcome": "failed"}, 1),
                               ("meridian_zone_queries_total", {"zone": "m3.test."}, 2)):
        got = get(values, name, **labels)
        r.check(f"metrics after a failed reload: {name}{labels} == {want}", got == want, f"got {got}")
    rc, secs = srv.stop()
    r.check("metrics: server stops with exit 0", rc == 0, f"rc={rc}")
