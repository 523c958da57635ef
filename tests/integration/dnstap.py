#!/usr/bin/python3
"""dnstap round trip: meridian's dnstap output read back with dnstap-read (bind9-dnsutils).

Sections:
  file    meridian with `dnstap.file`; known queries over UDP and TCP from known source ports
          (dnspython); after a stop, `dnstap-read -y FILE` shows for each one an AUTH_QUERY and an
          AUTH_RESPONSE with its name and type, the transport, and the client's address and port,
          with the configured identity.
  socket  the same through a unix socket: `fstrm_capture -t protobuf:dnstap.Dnstap -u SOCK -w FILE`
          started by the test (stopped by PID, after meridian, whose writer then flushes), then
          dnstap-read; then a collector restarted under a running meridian: the queries sent
          after it are in the new collector's file (meridian reconnected).
  slow    a collector that accepts the connection and never reads: meridian answers every query,
          and `meridianctl status` shows dnstap messages dropped (the per-worker queue was full)
          rather than a stalled query path; with no collector at all every query is answered too
          (libfstrm discards what it cannot send, so nothing counts as dropped there).

    tests/integration/dnstap.py --meridian build/meridian --meridianctl build/meridianctl
"""

import os
import re
import signal
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from common import (BaseCtx, Results, check_log_clean, drop_tmp, log, make_tmp, parse_args,  # noqa: E402
                    pick_port, run_tool, start_server, stop_all, write)

import dns.exception  # noqa: E402
import dns.message  # noqa: E402
import dns.query  # noqa: E402
import dns.rcode  # noqa: E402

SECTIONS = ["file", "socket", "slow"]

ZONE = """$ORIGIN dnstap.test.
$TTL 300
@    SOA ns1 hostmaster 1 7200 3600 1209600 300
@    NS  ns1
ns1  A   192.0.2.1
www  A   192.0.2.10
mail AAAA 2001:db8::25
txt  TXT "dnstap"
"""

# (name, type, transport) sent in the file and socket sections.
QUERIES = [("www.dnstap.test.", "A", "UDP"), ("mail.dnstap.test.", "AAAA", "TCP"),
           ("txt.dnstap.test.", "TXT", "UDP"), ("www.dnstap.test.", "A", "TCP"),
           ("nothere.dnstap.test.", "A", "UDP")]


def config(ctx, port, dnstap_lines, control=None):
    zone = os.path.join(ctx.tmp, "dnstap.test.zone")
    write(zone, ZONE)
    text = f'[server]\nlisten = ["127.0.0.1:{port}"]\nthreads = 2\n\n'
    if control:
        text += f'[control]\nsocket = "{control}"\n\n'
    text += "[dnstap]\n" + "".join(line + "\n" for line in dnstap_lines) + "\n"
    text += f'[[zone]]\nname = "dnstap.test."\nfile = "{zone}"\n'
    path = os.path.join(ctx.tmp, f"meridian-{port}.toml")
    write(path, text)
    return path


def free_source_port(kind):
    s = socket.socket(socket.AF_INET, kind)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def ask(port, name, qtype, transport):
    """Sends one query from a known source port; returns (source port, rcode or None)."""
    q = dns.message.make_query(name, qtype)
    for _ in range(5):  # a source port taken in between: try another
        sport = free_source_port(socket.SOCK_DGRAM if transport == "UDP" else socket.SOCK_STREAM)
        try:
            if transport == "UDP":
                a = dns.query.udp(q, "127.0.0.1", port=port, timeout=3, source="127.0.0.1",
                                  source_port=sport)
            else:
                a = dns.query.tcp(q, "127.0.0.1", port=port, timeout=3, source="127.0.0.1",
                                  source_port=sport)
            return sport, a.rcode()
        except OSError:
            continue
        except dns.exception.Timeout:
            return sport, None
    return None, None


def parse_yaml(text):
    """dnstap-read -y output: a list of dicts of the message's scalar keys plus
    query_message/response_message (the text blocks). A small reader for the shape dnstap-read
    prints (documents separated by ---, `key: value`, `key: |` blocks)."""
    docs, cur, block, block_indent = [], {}, None, 0
    for line in text.splitlines():
        if line.strip() == "---":
            if cur:
                docs.append(cur)
            cur, block = {}, None
            continue
        if block is not None:
            indent = len(line) - len(line.lstrip())
            if line.strip() == "" or indent > block_indent:
                cur[block] += line.strip() + "\n"
                continue
            block = None
        m = re.match(r"^(\s*)([A-Za-z_]+):\s*(.*)$", line)
        if not m:
            continue
        key, value = m.group(2), m.group(3).strip('"')
        if value == "|":
            block, block_indent, cur[key] = key, len(m.group(1)), ""
        elif key == "type" and m.group(1) == "":
            cur["dnstap_type"] = value
        else:
            cur[key] = value
    if cur:
        docs.append(cur)
    return docs


def dnstap_read(r, path):
    rc, out, err = run_tool(["dnstap-read", "-y", path], timeout=30)
    r.check(f"dnstap-read -y {os.path.basename(path)} exits 0", rc == 0, f"rc={rc} err={err[-400:]}")
    return parse_yaml(out)


def question_in(block, name, qtype):
    # dnstap-read prints the question as ";www.dnstap.test.\t\tIN\tA"
    return re.search(r";" + re.escape(name) + r"\s+IN\s+" + qtype + r"\b", block or "") is not None


def check_pairs(r, label, docs, sent, identity):
    """For each (name, type, transport, source port) sent: one AUTH_QUERY and one AUTH_RESPONSE."""
    r.check(f"{label}: every message has the identity '{identity}'",
            bool(docs) and all(d.get("identity") == identity for d in docs),
            f"identities={sorted(set(d.get('identity') for d in docs))}")
    r.check(f"{label}: every message is a MESSAGE", all(d.get("dnstap_type") == "MESSAGE" for d in docs))
    for name, qtype, transport, sport in sent:
        for kind, block in (("AUTH_QUERY", "query_message"), ("AUTH_RESPONSE", "response_message")):
            found = [d for d in docs if d.get("type") == kind and d.get("query_port") == str(sport)]
            ok = (len(found) == 1 and found[0].get("socket_protocol") == transport
                  and found[0].get("socket_family") == "INET"
                  and found[0].get("query_address") == "127.0.0.1"
                  and question_in(found[0].get(block), name, qtype))
            r.check(f"{label}: {kind} for {name} {qtype} over {transport} from 127.0.0.1:{sport}", ok,
                    f"found={found!r:.600}")


def send_all(r, label, port):
    sent = []
    for name, qtype, transport in QUERIES:
        sport, rcode = ask(port, name, qtype, transport)
        want = dns.rcode.NXDOMAIN if name.startswith("nothere") else dns.rcode.NOERROR
        r.check(f"{label}: {name} {qtype} over {transport} answered", rcode == want, f"rcode={rcode}")
        sent.append((name, qtype, transport, sport))
    return sent


def section_file(ctx):
    r = ctx.r
    port = pick_port(ctx)
    tap = os.path.join(ctx.tmp, "tap.fstrm")
    cfg = config(ctx, port, [f'file = "{tap}"', 'identity = "itest-file"'])
    srv = start_server(ctx, "dnstap-file", ["--config", cfg], check_started=True)
    if srv is None:
        return
    sent = send_all(r, "file", port)
    code, _ = srv.stop()
    r.check("file: meridian stops cleanly (the stream is finished)", code == 0, f"exit={code}")
    check_log_clean(r, "dnstap-file", srv.log_text())
    docs = dnstap_read(r, tap)
    r.check("file: two messages per query", len(docs) == 2 * len(sent), f"{len(docs)} messages")
    check_pairs(r, "file", docs, sent, "itest-file")
    # Reading the schema: the responder is the listen address, the version the default.
    resp = [d for d in docs if d.get("type") == "AUTH_RESPONSE"]
    r.check("file: the responder is the listen address and port",
            bool(resp) and all(d.get("response_address") == "127.0.0.1" and
                               d.get("response_port") == str(port) for d in resp),
            f"{resp[:1]!r:.400}")
    r.check("file: version defaults to 'meridian <version>'",
            bool(docs) and docs[0].get("version", "").startswith("meridian "), f"{docs[:1]!r:.300}")


class Capture:
    """fstrm_capture on a unix socket writing a file; stopped by PID."""

    def __init__(self, ctx, sock, out):
        self.log = open(os.path.join(ctx.tmp, os.path.basename(out) + ".log"), "wb")
        self.proc = subprocess.Popen(["fstrm_capture", "-t", "protobuf:dnstap.Dnstap", "-u", sock,
                                      "-w", out], stdin=subprocess.DEVNULL, stdout=self.log,
                                     stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 10
        while not os.path.exists(sock) and time.monotonic() < deadline and self.proc.poll() is None:
            time.sleep(0.05)
        self.ready = os.path.exists(sock)

    def stop(self):
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.log.close()


def section_socket(ctx):
    r = ctx.r
    sock = os.path.join(ctx.tmp, "tap.sock")
    outs = [os.path.join(ctx.tmp, f"capture{i}.fstrm") for i in (1, 2, 3)]
    cap = Capture(ctx, sock, outs[0])
    if not r.check("socket: fstrm_capture listens", cap.ready):
        cap.stop()
        return
    port = pick_port(ctx)
    cfg = config(ctx, port, [f'socket = "{sock}"', 'identity = "itest-socket"'])
    srv = start_server(ctx, "dnstap-socket", ["--config", cfg], check_started=True)
    if srv is None:
        cap.stop()
        return
    sent = send_all(r, "socket", port)
    # meridian stops first: its writer flushes and ends the stream, then the collector stops.
    code, _ = srv.stop()
    r.check("socket: meridian stops cleanly", code == 0, f"exit={code}")
    check_log_clean(r, "dnstap-socket", srv.log_text())
    cap.stop()
    check_pairs(r, "socket", dnstap_read(r, outs[0]), sent, "itest-socket")

    # The collector restarts under a running meridian: it reconnects (libfstrm retries every
    # 2 s) and the queries sent after that reach the new collector. Queries go on for 8 s: a
    # guard, not a measurement.
    cap = Capture(ctx, sock, outs[1])
    port = pick_port(ctx)
    cfg = config(ctx, port, [f'socket = "{sock}"', 'identity = "itest-restart"'])
    srv = start_server(ctx, "dnstap-restart", ["--config", cfg], check_started=True)
    if srv is None:
        cap.stop()
        return
    cap.stop()
    if os.path.exists(sock):
        os.unlink(sock)
    cap = Capture(ctx, sock, outs[2])
    r.check("socket: a new fstrm_capture listens", cap.ready)
    late = []
    deadline = time.monotonic() + 8
    while time.monotonic() < deadline:
        name = f"late{len(late)}.dnstap.test."
        ask(port, name, "A", "UDP")
        late.append(name)
        time.sleep(0.1)
    code, _ = srv.stop()
    r.check("socket: meridian stops cleanly after the collector restarted", code == 0, f"exit={code}")
    cap.stop()
    docs = dnstap_read(r, outs[2])
    got = [n for n in late if any(question_in(d.get("query_message"), n, "A") for d in docs)]
    r.check("socket: after the collector restarted, later queries reach the new one",
            len(got) > 0, f"{len(docs)} messages in the new capture, {len(late)} queries sent")


def status(ctx, sock):
    rc, out, err = run_tool([ctx.meridianctl, "--socket", sock, "status"], timeout=10)
    m = re.search(r"dnstap: queued (\d+), dropped (\d+)", out)
    return (int(m.group(1)), int(m.group(2))) if m else None, out + err


def flood(port, n):
    """n UDP queries, one at a time; returns how many were answered."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(3)
    answered = 0
    for i in range(n):
        q = dns.message.make_query(f"www.dnstap.test.", "A", id=i & 0xffff)
        s.sendto(q.to_wire(), ("127.0.0.1", port))
        try:
            s.recvfrom(4096)
            answered += 1
        except socket.timeout:
            pass
    s.close()
    return answered


def section_slow(ctx):
    r = ctx.r
    n = 2000
    # A collector that accepts (the kernel completes the connection) and never reads or answers
    # the Frame Streams handshake: fstrm's I/O thread waits on it, the workers' queues fill.
    sock = os.path.join(ctx.tmp, "slow.sock")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(sock)
    listener.listen(16)
    for label, path in (("slow", sock), ("absent", os.path.join(ctx.tmp, "nobody.sock"))):
        port = pick_port(ctx)
        control = os.path.join(ctx.tmp, f"{label}-ctl.sock")
        cfg = config(ctx, port, [f'socket = "{path}"', "queue_size = 16"], control=control)
        srv = start_server(ctx, f"dnstap-{label}", ["--config", cfg], check_started=True)
        if srv is None:
            continue
        answered = flood(port, n)
        r.check(f"{label} collector: every one of {n} queries answered", answered == n,
                f"{answered} answered")
        counts, text = status(ctx, control)
        r.check(f"{label} collector: meridianctl status counts every message, queued or dropped",
                counts is not None and counts[0] + counts[1] == 2 * n,
                f"counts={counts} status:\n{text[-600:]}")
        if label == "slow":
            # The I/O thread waits on the collector: the queues fill and the rest is dropped.
            # (With no collector at all libfstrm takes the messages and discards them itself.)
            r.check("slow collector: messages dropped (the queues were full)",
                    counts is not None and counts[1] > 0, f"counts={counts}")
        if label == "slow":
            listener.close()  # the collector goes away: the I/O thread's wait ends
        code, _ = srv.stop(timeout=15)
        r.check(f"{label} collector: meridian stops cleanly", code == 0, f"exit={code}")
        check_log_clean(r, f"dnstap-{label}", srv.log_text())


def main():
    args = parse_args(__doc__, SECTIONS)
    if args is None:
        return 2
    r = Results(args.verbose)
    tmp = make_tmp("meridian-dnstap-")
    ctx = BaseCtx(args, tmp, r)
    t0 = time.monotonic()
    try:
        r.begin("tools")
        for tool in ("dnstap-read", "fstrm_capture"):
            r.check(f"{tool} installed (scripts/deps.sh)", subprocess.run(
                ["which", tool], capture_output=True).returncode == 0)
        for name in args.only or SECTIONS:
            r.begin(name)
            {"file": section_file, "socket": section_socket, "slow": section_slow}[name](ctx)
    finally:
        stop_all(ctx.servers)
    drop_tmp(tmp, args.keep, r)
    return r.finish(t0)


if __name__ == "__main__":
    sys.exit(main())
