#!/usr/bin/python3
"""Check a running server's steered answers against the generated map (bench/geo_gen.py).

For every line of OUTDIR/sample.txt ("subnet expected-address region"), asks
`geo.bench.test A` with that subnet as the EDNS Client Subnet option and compares the A
records with the expected address.  Used by bench/run.py before each geo measurement; usable by
hand against any server:

    /usr/bin/python3 bench/geo_verify.py --port 5300 --data DIR

Standard library only.
"""

import argparse
import collections
import ipaddress
import os
import random
import socket
import struct
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.dont_write_bytecode = True
import geo_gen  # noqa: E402


def skip_name(msg, off):
    while True:
        n = msg[off]
        if n == 0:
            return off + 1
        if n & 0xC0 == 0xC0:
            return off + 2
        off += 1 + n


def parse_response(msg, qid):
    """(rcode, [A addresses in the answer], ECS scope or None, [other answer types])."""
    rid, flags, qd, an, ns, ar = struct.unpack(">HHHHHH", msg[:12])
    if rid != qid or not flags & 0x8000:
        raise ValueError("not our response")
    off = 12
    for _ in range(qd):
        off = skip_name(msg, off) + 4
    addrs, other, scope = [], [], None
    for section, count in (("an", an), ("ns", ns), ("ar", ar)):
        for _ in range(count):
            off = skip_name(msg, off)
            rtype, _cls, _ttl, rdlen = struct.unpack(">HHIH", msg[off:off + 10])
            off += 10
            rdata = msg[off:off + rdlen]
            off += rdlen
            if section == "an":
                if rtype == 1 and rdlen == 4:
                    addrs.append(socket.inet_ntoa(rdata))
                else:
                    other.append(rtype)
            elif rtype == 41:
                o = 0
                while o + 4 <= len(rdata):
                    code, olen = struct.unpack(">HH", rdata[o:o + 4])
                    if code == 8 and olen >= 4:
                        scope = rdata[o + 7]
                    o += 4 + olen
    return flags & 0x000F, sorted(addrs), scope, other


def ask(port, qname, subnet, timeout=1.0, tries=3):
    net = ipaddress.IPv4Network(subnet)
    for _ in range(tries):
        qid = random.randrange(65536)
        q = geo_gen.query(qname, ecs=(str(net.network_address), net.prefixlen), qid=qid)
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            s.settimeout(timeout)
            s.sendto(q, ("127.0.0.1", port))
            while True:
                data = s.recv(4096)
                try:
                    return parse_response(data, qid)
                except (ValueError, struct.error, IndexError):
                    continue
        except socket.timeout:
            continue
        finally:
            s.close()
    return None


def verify(port, datadir, qname=geo_gen.GEO_NAME):
    """Returns {"checked", "ok", "mismatches": [(subnet, expected, got)], "scopes": {scope: n},
    "answers": {subnet: "addr,addr" or "rcode N"}}."""
    res = {"checked": 0, "ok": 0, "mismatches": [], "scopes": collections.Counter(), "answers": {}}
    for subnet, expected, region in geo_gen.read_sample(datadir):
        r = ask(port, qname, subnet)
        res["checked"] += 1
        if r is None:
            got = "timeout"
        else:
            rcode, addrs, scope, other = r
            got = ",".join(addrs) if rcode == 0 and addrs else "rcode %d, %d A%s" % (
                rcode, len(addrs), ", other types %s" % other if other else "")
            if other:
                got += " (+types %s)" % other
            res["scopes"]["none" if scope is None else "/%d" % scope] += 1
        res["answers"][subnet] = got
        if got == expected:
            res["ok"] += 1
        else:
            res["mismatches"].append((subnet, "%s (%s)" % (expected, region), got))
    res["scopes"] = dict(res["scopes"])
    return res


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--data", default=os.path.join(HERE, "data", "geo"), help="geo_gen.py output directory")
    args = ap.parse_args()
    r = verify(args.port, args.data)
    print("%d/%d answers as the map says; ECS scopes returned: %s" % (r["ok"], r["checked"], r["scopes"]))
    for m in r["mismatches"][:20]:
        print("  %s: expected %s, got %s" % m)
    return 0 if r["ok"] == r["checked"] else 1


if __name__ == "__main__":
    sys.exit(main())
