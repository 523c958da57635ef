#!/usr/bin/python3
"""kill -9 of the real server while changes stream in over the PowerDNS API loses no
acknowledged change (issue 8, "Persistence and consistency").

A meridian with `control.state_dir`, one read-write key and one zone file.  Each round starts it
on the same state, checks what it serves, lets two client threads PATCH continuously and kills
the server with SIGKILL (by PID) after a random delay; at least 50 rounds.  The changes: a REPLACE
of a new TXT name, a REPLACE of the thread's own TXT name (an update), a DELETE of a name the
thread added before, and PATCHes of three RRsets at once (two new names and the update).  A client
records a change as acknowledged on 204; the request that was in flight when the server died is
"unknown" (either outcome is right, but as a whole).  After each 204 the client queries the name
and the SOA: the answer must already show the change, and the serial seen is durable.

Checked after every restart, before any new change:
  - every acknowledged change is in the zone (GET zones/ZONE: all RRsets), the unknown one fully
    present or fully absent (a multi-RRset PATCH all or nothing), nothing else changed;
  - DNS answers the names touched in the last round (and a sample of older ones) as the zone
    says, and the SOA serial is not older (RFC 1982) than any serial seen before the kill;
  - the zone file parses (dnspython) and holds exactly the RRsets the API shows;
  - the journal (STATE/journal/ZONE.journal, the format of zones/README.md: CRC32C framed
    records, snapshot and diffs) has no torn tail, replays to those same RRsets, and its last
    record carries the SHA-256 of the zone file and the served serial;
  - no temporary file (".NAME.tmp.XXXXXX") is left beside the zone file or the journal;
  - every PATCH was answered 204 (or not at all: the server died); nothing else (409, 500).
At the end: every name of the model queried over DNS, `meridianctl audit verify` of the audit
log, and the logs free of crash reports.

    api_kill9.py --meridian PATH [--meridianctl PATH] [--kills 50] [--seed N] [--keep] [-v]

The seed (random unless given) is printed first; `--seed N` replays the same delays and changes
(the kill points still move with the machine's timing).  One round in seven or so also kills
a start (the recovery itself).  Runs in about a minute here.
"""

import argparse
import hashlib
import os
import random
import signal
import struct
import sys
import threading
import time
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402

import dns.exception  # noqa: E402
import dns.message  # noqa: E402
import dns.name  # noqa: E402
import dns.query  # noqa: E402
import dns.rcode  # noqa: E402
import dns.rdata  # noqa: E402
import dns.rdataclass  # noqa: E402
import dns.rdatatype  # noqa: E402
import dns.zone  # noqa: E402

ORIGIN = "kill.test."
ZONE = f"""$ORIGIN {ORIGIN}
$TTL 300
@ SOA ns1 hostmaster 1 7200 3600 1209600 300
@ NS ns1
ns1 A 192.0.2.1
"""
SECRET = "api-kill9-secret-7c1e"
ZPATH = f"/api/v1/servers/localhost/zones/{ORIGIN}"
THREADS = 2
HTTP_TIMEOUT = 10.0


# ---------------------------------------------------------------------------
# HTTP and DNS


def http(base, method, path, body=None):
    """(status, parsed JSON or text) of one request with the key; OSError when no answer came
    (the server is gone)."""
    return common.api_request(base, SECRET, method, path, body, HTTP_TIMEOUT)


def query(port, name, rtype, timeout=common.TIMEOUT):
    """(rcode, sorted rdata texts) for name/type over UDP."""
    q = dns.message.make_query(name, rtype)
    resp = dns.query.udp(q, "127.0.0.1", port=port, timeout=timeout)
    return resp.rcode(), sorted(rd.to_text() for rr in resp.answer for rd in rr)


def serial_newer_or_equal(a, b):
    """RFC 1982: a >= b."""
    return a == b or (0 < ((a - b) % 2**32) < 2**31)


# ---------------------------------------------------------------------------
# the model: name -> (type, rdata text) of the records the clients own


def txt(value):
    return f'"{value}"'


class Client(threading.Thread):
    """One thread of changes.  ops: what it did; acked: its changes answered 204; pending: the
    change whose request was cut off (None when none was)."""

    def __init__(self, t, base, dns_port, rng, model, lock, ids, stop, failures, acks):
        super().__init__(daemon=True)
        self.t = t
        self.base = base
        self.dns_port = dns_port
        self.rng = rng
        self.model = model      # shared: name -> (type, text), acknowledged state
        self.lock = lock
        self.ids = ids          # shared counter (a list of one int)
        self.stop = stop
        self.failures = failures
        self.acks = acks        # shared: [count] under its condition, for a kill after an ack
        self.pending = None     # [(name, type, before, after)] of the cut-off change
        self.acked = 0
        self.max_serial = None  # the newest serial seen after a 204

    def next_id(self):
        with self.lock:
            self.ids[0] += 1
            return self.ids[0]

    def own(self):
        with self.lock:
            return sorted(n for n in self.model if n.startswith(f"a{self.t}-"))

    def change(self):
        """(rrsets of the PATCH, [(name, type, before, after)])."""
        n = self.next_id()
        kind = self.rng.random()
        upd = f"u{self.t}.{ORIGIN}"
        with self.lock:
            before_upd = self.model.get(upd)
        owned = self.own()
        if kind < 0.1 and owned:
            victim = self.rng.choice(owned)
            with self.lock:
                before = self.model[victim]
            return ([{"name": victim, "type": "TXT", "changetype": "DELETE"}],
                    [(victim, "TXT", before, None)])
        if kind < 0.25:
            return ([rrset(upd, "TXT", txt(f"v{n}"))],
                    [(upd, "TXT", before_upd, ("TXT", txt(f"v{n}")))])
        if kind < 0.45:
            x, y = f"m{n}x.{ORIGIN}", f"m{n}y.{ORIGIN}"
            addr = f"10.{(n >> 16) & 255}.{(n >> 8) & 255}.{n & 255}"
            return ([rrset(x, "TXT", txt(f"v{n}")), rrset(y, "A", addr),
                     rrset(upd, "TXT", txt(f"v{n}"))],
                    [(x, "TXT", None, ("TXT", txt(f"v{n}"))), (y, "A", None, ("A", addr)),
                     (upd, "TXT", before_upd, ("TXT", txt(f"v{n}")))])
        name = f"a{self.t}-{n}.{ORIGIN}"
        return [rrset(name, "TXT", txt(f"v{n}"))], [(name, "TXT", None, ("TXT", txt(f"v{n}")))]

    def run(self):
        while not self.stop.is_set():
            rrsets, effects = self.change()
            self.pending = effects
            try:
                status, body = http(self.base, "PATCH", ZPATH, {"rrsets": rrsets})
            except OSError:
                return  # the server died with this request in flight: pending stays
            if status != 204:
                self.pending = None
                self.failures.append(f"thread {self.t}: PATCH {rrsets} answered {status} {body}")
                continue
            with self.lock:
                for name, _, _, after in effects:
                    if after is None:
                        self.model.pop(name, None)
                    else:
                        self.model[name] = after
            self.pending = None
            self.acked += 1
            with self.acks[1]:
                self.acks[0] += 1
                self.acks[1].notify_all()
            # The answer reflects the change before the HTTP response returns.
            name, _, _, after = effects[0]
            got = self.ask(name, after[0] if after else "TXT")
            if got is None:
                return  # killed between the 204 and the query
            rcode, texts = got
            if (texts != [after[1]]) if after else (rcode != dns.rcode.NXDOMAIN):
                self.failures.append(f"thread {self.t}: right after the 204 {name} answered "
                                     f"{dns.rcode.to_text(rcode)} {texts}, not {after}")
            got = self.ask(ORIGIN, "SOA")
            if got is None:
                return
            if got[1]:
                s = int(got[1][0].split()[2])
                if self.max_serial is None or serial_newer_or_equal(s, self.max_serial):
                    self.max_serial = s

    def ask(self, name, rtype):
        """query(), asked again while the server lives (a lost datagram on a busy machine); None
        once it was killed."""
        while not self.stop.is_set():
            try:
                return query(self.dns_port, name, rtype, timeout=0.25)
            except (dns.exception.Timeout, OSError):
                continue
        return None


def rrset(name, type_, content):
    return {"name": name, "type": type_, "ttl": 300, "changetype": "REPLACE",
            "records": [{"content": content, "disabled": False}]}


# ---------------------------------------------------------------------------
# the zone as the API, the file and the journal hold it: {(owner lowercase, type): (ttl, rdatas)}
# with each RDATA in uncompressed wire form, sorted


def rdata_wire(type_, text):
    rd = dns.rdata.from_text(dns.rdataclass.IN, dns.rdatatype.from_text(type_), text,
                             origin=dns.name.root, relativize=False)
    return rd.to_wire()


def api_rrsets(body):
    out = {}
    for rs in body.get("rrsets", []):
        key = (rs["name"].lower(), rs["type"])
        out[key] = (rs["ttl"], sorted(rdata_wire(rs["type"], r["content"])
                                      for r in rs["records"] if not r.get("disabled")))
    return out


def file_rrsets(path):
    z = dns.zone.from_file(path, origin=ORIGIN, relativize=False, check_origin=True)
    out = {}
    for name, node in z.nodes.items():
        for rds in node.rdatasets:
            key = (name.to_text().lower(), dns.rdatatype.to_text(rds.rdtype))
            out[key] = (rds.ttl, sorted(rd.to_wire() for rd in rds))
    return out


def crc32c_table():
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return table


CRC_TABLE = crc32c_table()


def crc32c(data):
    c = 0xFFFFFFFF
    for b in data:
        c = CRC_TABLE[(c ^ b) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF


def wire_to_text(wire):
    labels, i = [], 0
    while wire[i]:
        n = wire[i]
        labels.append(wire[i + 1:i + 1 + n].decode("ascii"))
        i += 1 + n
    return ".".join(labels) + "."


def read_rrsets(p, at):
    """The RRset list at p[at:]: ({key: (ttl, rdatas)} as a list of pairs, next offset)."""
    (count,) = struct.unpack_from("!I", p, at)
    at += 4
    out = []
    for _ in range(count):
        olen = p[at]
        owner = wire_to_text(p[at + 1:at + 1 + olen]).lower()
        at += 1 + olen
        rtype, ttl, nrec, plen = struct.unpack_from("!HIHI", p, at)
        at += 12
        packed, at = p[at:at + plen], at + plen
        rdatas, j = [], 0
        for _ in range(nrec):
            (rlen,) = struct.unpack_from("!H", packed, j)
            rdatas.append(bytes(packed[j + 2:j + 2 + rlen]))
            j += 2 + rlen
        out.append(((owner, dns.rdatatype.to_text(rtype)), (ttl, sorted(rdatas))))
    return out, at


def read_journal(path):
    """(content, last serial, last file SHA-256, problems): the journal replayed as zones/README.md
    describes it; problems lists what is wrong (a torn tail included)."""
    with open(path, "rb") as f:
        data = f.read()
    problems = []
    if data[:8] != b"MRDNJRN1":
        return None, None, None, ["no MRDNJRN1 magic"]
    alen = data[8]
    head_end = 9 + alen
    (hcrc,) = struct.unpack_from("!I", data, head_end)
    if hcrc != crc32c(data[:head_end]):
        problems.append("header CRC32C does not match")
    at = head_end + 4
    content, serial, file_hash = None, None, None
    while at < len(data):
        if len(data) - at < 8:
            problems.append(f"torn tail: {len(data) - at} octets at {at}")
            break
        length, crc = struct.unpack_from("!II", data, at)
        if len(data) - at - 8 < length:
            problems.append(f"torn tail: a record of {length} octets at {at} is cut short")
            break
        payload = data[at + 8:at + 8 + length]
        if crc != crc32c(data[at:at + 4] + payload):
            problems.append(f"record at {at}: CRC32C does not match")
            break
        at += 8 + length
        kind, old, new = payload[0], *struct.unpack_from("!II", payload, 1)
        file_hash = bytes(payload[25:57])
        body = 57
        if kind == 2:
            rrsets, _ = read_rrsets(payload, body)
            content = dict(rrsets)
        elif kind == 1:
            if content is None or serial != old:
                problems.append(f"diff {old} -> {new} does not follow serial {serial}")
            removed, body = read_rrsets(payload, body)
            added, _ = read_rrsets(payload, body)
            for key, value in removed:
                if content is not None and content.get(key) != value:
                    problems.append(f"diff {old} -> {new} removes {key} that is not as recorded")
                if content is not None:
                    content.pop(key, None)
            for key, value in added:
                if content is not None:
                    content[key] = value
        else:
            problems.append(f"record kind {kind}")
            break
        serial = new
    return content, serial, file_hash, problems


def describe_difference(a, b, na, nb):
    keys = sorted(set(a) | set(b))
    diffs = [f"{k}: {na} {a.get(k)} / {nb} {b.get(k)}" for k in keys if a.get(k) != b.get(k)]
    return "; ".join(diffs[:5]) + (f" (+{len(diffs) - 5} more)" if len(diffs) > 5 else "")


def model_rrsets(model):
    """The RRsets the clients' names should have (the base zone's are left out)."""
    return {(n.lower(), t): (300, [rdata_wire(t, v)]) for n, (t, v) in model.items()}


def client_part(rrsets):
    base = {(ORIGIN, "SOA"), (ORIGIN, "NS"), (f"ns1.{ORIGIN}", "A")}
    return {k: v for k, v in rrsets.items() if k not in base}


# ---------------------------------------------------------------------------
# the run


class Run:
    def __init__(self, args):
        self.args = args
        self.tmp = common.make_tmp("meridian-kill9-")
        self.r = common.Results(args.verbose)
        self.ctx = common.BaseCtx(args, self.tmp, self.r)
        self.zone_dir = os.path.join(self.tmp, "zones")
        self.zone_file = os.path.join(self.zone_dir, "kill.test.zone")
        self.state = os.path.join(self.tmp, "state")
        self.journal = os.path.join(self.state, "journal", "kill.test.journal")
        self.model = {}
        self.max_serial = 1
        self.touched = set()  # names touched by the last round's changes
        self.logs = []

    def configure(self):
        rc, key_hash, err = common.run_tool([self.args.meridian, "api", "hash-key", SECRET], 10)
        if not self.r.check("api hash-key", rc == 0, err):
            return None
        common.write(self.zone_file, ZONE)
        self.api_port = common.pick_port(self.ctx, udp=False)
        self.dns_port = common.pick_port(self.ctx)
        conf = os.path.join(self.tmp, "kill9.toml")
        common.write(conf, common.api_config(self.api_port, "kill9", key_hash,
                                             [(ORIGIN, "zones/kill.test.zone")]))
        self.base = f"http://127.0.0.1:{self.api_port}"
        return ["--config", conf, "--listen", f"127.0.0.1:{self.dns_port}", "--threads", "1"]

    def check_state(self, rnd, unknown):
        """The checks after a restart. unknown: the cut-off changes ([effects] per thread)."""
        r = self.r
        status, body = http(self.base, "GET", ZPATH)
        if not r.check(f"round {rnd}: GET zone answers 200", status == 200, f"{status} {body}"):
            return False
        served = api_rrsets(body)
        clients = client_part(served)
        # The unknown changes: all of each present or all absent; then the model takes the outcome.
        for effects in unknown:
            present = [model_rrsets({n: a}) == {k: v for k, v in clients.items() if k[0] == n.lower()}
                       if a else all(k[0] != n.lower() for k in clients)
                       for n, _, _, a in effects]
            before = [model_rrsets({n: b}) == {k: v for k, v in clients.items() if k[0] == n.lower()}
                      if b else all(k[0] != n.lower() for k in clients)
                      for n, _, b, _ in effects]
            whole = all(present) or all(before)
            r.check(f"round {rnd}: the change cut off by the kill is all or nothing", whole,
                    f"{effects}: present {present}, as before {before}")
            if all(present) and not all(before):
                for n, _, _, a in effects:
                    if a is None:
                        self.model.pop(n, None)
                    else:
                        self.model[n] = a
            self.touched.update(n for n, _, _, _ in effects)
        expected = model_rrsets(self.model)
        r.check(f"round {rnd}: every acknowledged change is in the zone, nothing else changed",
                clients == expected, describe_difference(expected, clients, "acked", "served"))

        # DNS: the last round's names, a sample of older ones, the serial.
        names = sorted(self.touched)
        rng = random.Random(rnd)
        older = sorted(set(self.model) - self.touched)
        names += rng.sample(older, min(10, len(older)))
        wrong = []
        for n in names:
            want = self.model.get(n)
            rcode, texts = query(self.dns_port, n, want[0] if want else "TXT")
            if (texts != [want[1]]) if want else (rcode != dns.rcode.NXDOMAIN):
                wrong.append(f"{n} {dns.rcode.to_text(rcode)} {texts} (want {want})")
        r.check(f"round {rnd}: DNS answers the {len(names)} names as acknowledged", not wrong,
                "; ".join(wrong[:5]))
        _, soa = query(self.dns_port, ORIGIN, "SOA")
        serial = int(soa[0].split()[2]) if soa else None
        r.check(f"round {rnd}: the SOA serial is not older than any seen before the kill",
                serial is not None and serial_newer_or_equal(serial, self.max_serial),
                f"served {serial}, seen {self.max_serial}")
        if serial is not None:
            self.max_serial = serial

        # The zone file: parses, the same RRsets as served.
        try:
            on_disk = file_rrsets(self.zone_file)
            r.check(f"round {rnd}: the zone file holds what is served", on_disk == served,
                    describe_difference(served, on_disk, "served", "file"))
        except Exception as e:  # noqa: BLE001 - a file that does not parse is the failure
            r.check(f"round {rnd}: the zone file parses", False, repr(e))
        # The journal: replays to the same RRsets, its last record is this file.
        if os.path.exists(self.journal):
            content, jserial, jhash, problems = read_journal(self.journal)
            r.check(f"round {rnd}: the journal reads without a problem", not problems,
                    "; ".join(problems[:5]))
            r.check(f"round {rnd}: the journal replays to what is served", content == served,
                    describe_difference(served, content or {}, "served", "journal"))
            with open(self.zone_file, "rb") as f:
                digest = hashlib.sha256(f.read()).digest()
            r.check(f"round {rnd}: the journal's last record is the zone file at the served serial",
                    jhash == digest and jserial == serial,
                    f"journal serial {jserial} hash {jhash.hex() if jhash else None}, "
                    f"file {digest.hex()} serial {serial}")
        else:
            r.check(f"round {rnd}: the journal exists once a change was acknowledged",
                    self.acked == 0, self.journal)
        temps = [os.path.join(d, f) for d in (self.zone_dir, os.path.dirname(self.journal))
                 if os.path.isdir(d) for f in os.listdir(d) if ".tmp." in f]
        r.check(f"round {rnd}: no temporary files left", not temps, str(temps))
        self.touched = set()
        return True

    def round(self, rnd, argv, rng):
        if rnd > 0 and rng.random() < 0.15:
            # Killed again while it starts: during the recovery of what the last kill left.
            early = common.Server(self.ctx, f"kill9-{rnd:02d}-start", argv)
            time.sleep(rng.uniform(0, 0.05))
            os.kill(early.pid, signal.SIGKILL)
            early.proc.wait()
            early.logf.close()
            self.logs.append(early)
            self.early_kills += 1
        srv = common.start_server(self.ctx, f"kill9-{rnd:02d}", argv)
        if srv is None:
            return False
        self.logs.append(srv)
        if not self.check_state(rnd, self.unknown):
            return False
        acked_before = dict(self.model)
        stop = threading.Event()
        failures = []
        lock = threading.Lock()
        acks = [0, threading.Condition()]
        clients = [Client(t, self.base, self.dns_port, random.Random(rng.random()), self.model,
                          lock, self.ids, stop, failures, acks) for t in range(THREADS)]
        # When: within 2 ms of the k-th acknowledgement (what was just acknowledged must be
        # durable already), after a random delay within the stream of changes, or right after
        # the start.
        mode = rng.random()
        after_ack = rng.randint(1, 15) if mode < 0.4 else None
        delay = (rng.uniform(0, 0.002) if after_ack else
                 rng.uniform(0, 0.03) if mode < 0.55 else rng.uniform(0.03, 0.6))
        for c in clients:
            c.start()
        if after_ack:
            with acks[1]:
                acks[1].wait_for(lambda: acks[0] >= after_ack or failures, timeout=30)
        time.sleep(delay)
        os.kill(srv.pid, signal.SIGKILL)
        srv.proc.wait()
        stop.set()
        for c in clients:
            c.join(HTTP_TIMEOUT + common.TIMEOUT * 2)
        srv.logf.close()
        self.r.check(f"round {rnd}: every PATCH answered 204 until the kill", not failures,
                     "; ".join(failures[:3]))
        self.unknown = [c.pending for c in clients if c.pending]
        for c in clients:
            self.acked += c.acked
            if c.max_serial is not None and serial_newer_or_equal(c.max_serial, self.max_serial):
                self.max_serial = c.max_serial
        # The names this round changed are queried over DNS after the restart (check_state adds
        # those of the cut-off changes).
        self.touched = {n for n in set(acked_before) | set(self.model)
                        if acked_before.get(n) != self.model.get(n)}
        if self.args.verbose:
            common.log(f"   round {rnd}: killed {delay * 1000:.1f} ms after "
                       f"{f'acknowledgement {after_ack}' if after_ack else 'the start'}, "
                       f"{sum(c.acked for c in clients)} acknowledged, "
                       f"{len(self.unknown)} cut off")
        return True

    def main(self):
        seed = self.args.seed if self.args.seed is not None else random.SystemRandom().randrange(2**32)
        common.log(f"api_kill9: seed {seed} (replay with --seed {seed}), {self.args.kills} kills")
        rng = random.Random(seed)
        t0 = time.monotonic()
        self.r.begin("kill9")
        argv = self.configure()
        self.ids = [0]
        self.acked = 0
        self.early_kills = 0
        self.unknown = []
        try:
            if argv is not None:
                self.rounds(argv, rng)
            for s in self.logs:
                common.check_log_clean(self.r, s.label, s.log_text())
            common.log(f"   {self.acked} changes acknowledged over {self.args.kills} kills "
                       f"(and {self.early_kills} more during a start)")
        except Exception:  # noqa: BLE001 - a query that timed out, a file that cannot be read
            self.r.check("the run went through without an exception", False,
                         traceback.format_exc())
        finally:
            common.stop_all(self.ctx.servers)
        rc = self.r.finish(t0)
        if rc:
            common.log(f"seed {seed}")
        common.drop_tmp(self.tmp, self.args.keep, self.r)
        return rc

    def rounds(self, argv, rng):
        for rnd in range(self.args.kills):
            if not self.round(rnd, argv, rng):
                return
        srv = common.start_server(self.ctx, "kill9-final", argv)
        if srv is None:
            return
        self.logs.append(srv)
        self.check_state(self.args.kills, self.unknown)
        self.final_checks()
        code, _ = srv.stop()
        self.r.check("final server: SIGTERM exits 0", code == 0, srv.tail())

    def final_checks(self):
        r = self.r
        wrong = []
        for n, (t, v) in sorted(self.model.items()):
            _, texts = query(self.dns_port, n, t)
            if texts != [v]:
                wrong.append(f"{n} {t} {texts} (want {v})")
        r.check(f"all {len(self.model)} acknowledged names answered over DNS", not wrong,
                "; ".join(wrong[:5]))
        r.check("the run acknowledged changes (the test exercised something)",
                self.acked >= self.args.kills, f"{self.acked} acknowledged")
        if self.args.meridianctl:
            rc, out, err = common.run_tool(
                [self.args.meridianctl, "audit", "verify", os.path.join(self.state, "audit.log")], 30)
            r.check("meridianctl audit verify: the audit log's chain holds", rc == 0,
                    (out + err)[-600:])


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--meridian", required=True)
    ap.add_argument("--meridianctl", help="for `audit verify` of the audit log at the end")
    ap.add_argument("--kills", type=int, default=50)
    ap.add_argument("--seed", type=int)
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory")
    ap.add_argument("--verbose", "-v", action="store_true")
    args = ap.parse_args()
    args.meridian = os.path.abspath(args.meridian)
    if args.meridianctl:
        args.meridianctl = os.path.abspath(args.meridianctl)
    return Run(args).main()


if __name__ == "__main__":
    sys.exit(main())
