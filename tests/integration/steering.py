#!/usr/bin/python3
"""Integration test of traffic steering: the real meridian, real backends, real clients.

Starts `meridian` with steering configurations written to a temporary directory (free loopback
ports, the MaxMind GeoIP2-City test database), HTTP and TCP backends in threads of this process
bound to 127.0.0.11, .12, ... (the endpoints the answers name and the health checks probe), and
checks the answers with dig (+subnet) and dnspython (ECS options, raw packets):

  1. geo        GeoIP location by ECS address (continent, country, subdivision, cidr, default;
                the hierarchy with named [lists], equal lists sharing a scope),
                ECS SCOPE = the widest block with the same answer (from source-data/GeoIP2-City-Test.json),
                SOURCE 0, no ECS, malformed ECS (FORMERR), unmapped clients, scope vs nested cidr
  2. answers    first_n = 2, AAAA only IPv6 endpoints, CNAME endpoints, nearest, TTL and AA
  2b. chains    CNAME (same zone, wildcard, another served zone) and DNAME chains into a service end in
                the steered answer with its TTL and ECS scope; types the service does not steer come
                from the zone
  3. trust      geoip.ecs_trusted: ECS from an untrusted source is ignored (scope 0)
  4. health     http/tcp checks: a stopped backend leaves the answers and comes back, overrides
                through meridianctl (address, label, region:NAME, drain, force-up), every
                when_all_down mode (fail-open, nodata, servfail, fallback)
  4b. overrides endpoints without a health check: override region:NAME, pool:SERVICE/REGION, an address
                and a label, kept across a reload that renumbers the slots; the default policy answers
                a region's whole address set; [[region]] coordinates needed only by `nearest`
  5. latency    policy up -> latency -> first_n follows the lowest RTT, also after the delays swap
  6. weighted   3:1 weights over 2000 distinct /24 ECS subnets, stickiness, scope /24
  7. explain    `meridian explain`: location, filters in order, answer and ECS scope, --down
  8. check      `meridian check` on good and broken steering configurations
  9. reload     SIGHUP with a new pool, a broken [[service]] keeps the old steering, a corrupt
                GeoIP file (replaced atomically, then overwritten in place) keeps the old database;
                a 100 ms tcp check keeps probing while a 300k-record zone reloads (parsed off the
                control loop)

Usage: steering.py --meridian PATH --meridianctl PATH --geoip DIR [--verbose] [--only SECTION ...]

DIR holds GeoIP2-City-Test.mmdb, source-data/ and bad-data/ (the MaxMind test data, ../shared/geoip).
Exits 0 when every check passed, 1 otherwise (the failed checks are listed at the end). Uses only
the Python standard library and dnspython (Debian python3-dnspython); dig is used when installed.
"""

import http.server
import ipaddress
import json
import os
import random
import re
import select
import shutil
import signal
import socket
import struct
import sys
import threading
import time
import traceback

import dns.edns
import dns.flags
import dns.message
import dns.rcode
import dns.rdatatype

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))   # common.py, whatever the cwd

import common  # noqa: E402
from common import (  # noqa: E402
    TIMEOUT, BaseCtx, Results, check_log_clean, drop_tmp, require_tools, ecs_data, edns_opt, header, log, make_tmp, opt_rr,
    parse_args, pick_port, question, stop_all, udp_exchange, write,
)

HEALTH_WAIT = 6.0      # upper bound for a verdict change (fall/rise x 200 ms interval + slack)

SECTIONS = ["geo", "answers", "chains", "trust", "health", "overrides", "latency", "weighted", "explain", "check",
            "reload"]

# ---------------------------------------------------------------------------
# bookkeeping (shared: common.py)


def short(x, n=400):
    return common.short(x, n)


def poll(fn, pred, timeout, step=0.05):
    """Calls fn until pred(result) or timeout; returns (ok, last result, seconds)."""
    t0 = time.monotonic()
    got = fn()
    while not pred(got):
        if time.monotonic() - t0 >= timeout:
            return False, got, time.monotonic() - t0
        time.sleep(step)
        got = fn()
    return True, got, time.monotonic() - t0


# ---------------------------------------------------------------------------
# processes and ports


class Ctx(BaseCtx):
    def __init__(self, args, tmp, results):
        super().__init__(args, tmp, results)
        self.geoip = args.geoip
        self.backends = []
        self.have_dig = shutil.which("dig") is not None
        self.city_json = None


def start_server(ctx, label, config, ready_timeout=common.START_TIMEOUT):
    return common.start_server(ctx, label, ["--config", config], check_started=True,
                               ready_timeout=ready_timeout)


def run_tool(argv, timeout=20, cwd=None):
    return common.run_tool(argv, timeout, cwd=cwd)


def ctl(ctx, sock, *args):
    path = sock if os.path.isabs(sock) else os.path.join(ctx.tmp, sock)
    return run_tool([ctx.meridianctl, "--socket", path] + list(args))


# ---------------------------------------------------------------------------
# backends: HTTP (delay, status and body adjustable at run time) and plain TCP


class HttpBackend:
    def __init__(self, ctx, addr, port, delay=0.0):
        self.addr, self.port = addr, port
        self.delay = delay
        self.status = 200
        self.body = b"ok\n"
        self.requests = 0
        self.httpd = None
        self.thread = None
        ctx.backends.append(self)

    def start(self):
        backend = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802
                backend.requests += 1
                if backend.delay:
                    time.sleep(backend.delay)
                body = backend.body
                try:
                    self.send_response(backend.status)
                    self.send_header("Content-Length", str(len(body)))
                    self.send_header("Connection", "close")
                    self.end_headers()
                    self.wfile.write(body)
                except OSError:
                    pass  # the checker gave up (timeout) and closed the connection

            def log_message(self, *a):
                pass

        class Srv(http.server.ThreadingHTTPServer):
            allow_reuse_address = True
            daemon_threads = True

            def handle_error(self, request, client_address):
                pass

        for _ in range(50):
            try:
                self.httpd = Srv((self.addr, self.port), Handler)
                break
            except OSError:
                time.sleep(0.1)
        else:
            raise RuntimeError(f"cannot bind {self.addr}:{self.port}")
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                       daemon=True)
        self.thread.start()

    def stop(self):
        if self.httpd is not None:
            self.httpd.shutdown()
            self.httpd.server_close()
            self.httpd = None
            self.thread.join(2)


class TcpBackend:
    """Accepts connections and closes them: enough for a `tcp` check."""

    def __init__(self, ctx, addr, port):
        self.addr, self.port = addr, port
        self.sock = None
        self.stopping = False
        self.thread = None
        self.times = []  # time.monotonic() of each accepted connection (a probe)
        ctx.backends.append(self)

    def start(self):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((self.addr, self.port))
        s.listen(64)
        self.sock = s
        self.stopping = False
        self.thread = threading.Thread(target=self._loop, args=(s,), daemon=True)
        self.thread.start()

    def _loop(self, s):
        while not self.stopping:
            try:
                ready, _, _ = select.select([s], [], [], 0.05)
                if ready:
                    c, _ = s.accept()
                    self.times.append(time.monotonic())
                    c.close()
            except (OSError, ValueError):
                return

    def stop(self):
        if self.sock is not None:
            self.stopping = True
            self.thread.join(2)
            self.sock.close()
            self.sock = None


# ---------------------------------------------------------------------------
# DNS helpers


def ecs_opt(subnet):
    """dnspython ECS option for "a.b.c.d/n" or "x::/n"."""
    addr, src = subnet.split("/")
    return dns.edns.ECSOption(addr, int(src), 0)


def make_query(name, rdtype="A", subnet=None, edns=None):
    q = dns.message.make_query(name, rdtype)
    q.flags &= ~dns.flags.RD
    if subnet is not None:
        q.use_edns(0, payload=1232, options=[ecs_opt(subnet)])
    elif edns:
        q.use_edns(0, payload=1232)
    return q


class Reply:
    """What the checks look at in a reply (from dnspython or dig)."""

    def __init__(self, rcode=None, aa=False, answer=(), authority=(), ecs=None, has_opt=False, raw=None):
        self.rcode = rcode            # text: NOERROR, FORMERR, ...
        self.aa = aa
        self.answer = list(answer)    # [(type, rdata text, ttl)]
        self.authority = list(authority)
        self.ecs = ecs                # (address, source, scope) or None
        self.has_opt = has_opt
        self.raw = raw

    def addrs(self, rtype=None):
        return sorted(rd for t, rd, _ in self.answer if rtype is None or t == rtype)

    def types(self):
        return sorted({t for t, _, _ in self.answer})

    def scope(self):
        return None if self.ecs is None else self.ecs[2]

    def __repr__(self):
        return (f"<{self.rcode} aa={self.aa} answer={self.answer} authority={self.authority} "
                f"ecs={self.ecs}>")


def from_message(m, raw=None):
    def rrs(section):
        out = []
        for rrset in section:
            for rd in rrset:
                out.append((dns.rdatatype.to_text(rrset.rdtype), rd.to_text().lower(), rrset.ttl))
        return out
    ecs = None
    for o in m.options:
        if int(o.otype) == 8:
            ecs = (str(o.address), int(o.srclen), int(o.scopelen))
    return Reply(dns.rcode.to_text(m.rcode()), bool(m.flags & dns.flags.AA), rrs(m.answer), rrs(m.authority),
                 ecs, m.edns >= 0, raw)


def ask(addr, name, rdtype="A", subnet=None, edns=None):
    """dnspython query over UDP; a Reply, or None on timeout."""
    q = make_query(name, rdtype, subnet, edns)
    w = udp_exchange(addr, q.to_wire())
    if w is None:
        return None
    return from_message(dns.message.from_wire(w), w)


def dig(addr, name, rdtype="A", subnet=None):
    """The same with dig (+subnet); a Reply, or None when dig failed."""
    argv = ["dig", f"@{addr[0]}", "-p", str(addr[1]), "+norecurse", "+tries=1", "+time=3", "+noall",
            "+comments", "+answer", "+authority"]
    if subnet is not None:
        argv.append(f"+subnet={subnet}")
    argv += [name, rdtype]
    rc, out, err = run_tool(argv)
    if rc != 0:
        return None
    st = re.search(r"status: (\w+)", out)
    fl = re.search(r";; flags: ([^;]*);", out)
    ecs = None
    m = re.search(r"; CLIENT-SUBNET: ([0-9a-fA-F.:]+)/(\d+)/(\d+)", out)
    if m:
        ecs = (m.group(1), int(m.group(2)), int(m.group(3)))
    rep = Reply(st.group(1) if st else None, "aa" in (fl.group(1).split() if fl else []), ecs=ecs,
                has_opt="OPT PSEUDOSECTION" in out, raw=out)
    cur = None
    for line in out.splitlines():
        sm = re.match(r";; (\w+) SECTION:", line)
        if sm:
            cur = sm.group(1).lower()
            continue
        if not line.strip() or line.startswith(";"):
            continue
        parts = line.split()
        if len(parts) >= 5 and cur in ("answer", "authority"):
            rec = (parts[3], " ".join(parts[4:]).lower(), int(parts[1]))
            (rep.answer if cur == "answer" else rep.authority).append(rec)
    return rep


def raw_query(name, options=b"", qid=0x4242, rdtype=1):
    """A query with an OPT RR carrying `options` (raw bytes), for malformed ECS."""
    return header(qid, 0, qd=1, ar=1) + question(name, rdtype) + opt_rr(1232, options=options)


def ecs_raw(family, src, scope, addr_bytes):
    return edns_opt(8, ecs_data(family, src, scope, addr_bytes))


# ---------------------------------------------------------------------------
# the GeoIP test data: expectations computed from the JSON the test database was built from


def load_city_json(ctx):
    if ctx.city_json is None:
        path = os.path.join(ctx.geoip, "source-data", "GeoIP2-City-Test.json")
        nets = []
        with open(path) as f:
            for entry in json.load(f):
                for key, rec in entry.items():
                    n = ipaddress.ip_network(key, strict=False)
                    if n.version == 4:  # written at ::a.b.c.d/96+len, like ::a.b.c.d/len keys
                        n = ipaddress.ip_network(f"::{n.network_address}/{96 + n.prefixlen}")
                    nets.append((n, rec))
        ctx.city_json = nets
    return ctx.city_json


def city_lookup(ctx, subnet):
    """(record, prefix in the client's family) of the most specific JSON network holding the ECS
    address (masked to SOURCE), or (None, None). IPv4 networks are written ::a.b.c.d/len."""
    net = ipaddress.ip_network(subnet, strict=False)
    a = net.network_address
    v6 = ipaddress.IPv6Address(int(a)) if a.version == 4 else a
    best = None
    for n, rec in load_city_json(ctx):
        if n.version == 6 and v6 in n and (best is None or n.prefixlen > best[0].prefixlen):
            best = (n, rec)
    if best is None:
        return None, None
    n, rec = best
    return rec, (n.prefixlen - 96 if a.version == 4 else n.prefixlen)


def map_scope(ctx, subnet, gmap, lists=None):
    """The ECS scope gdnsd and Meridian give for a geo-only service: the widest block around the
    ECS address in which every address (in a JSON network or not) gets the same region list
    (equal lists are one answer), at least /1, then lengthened to leave out every cidr entry the
    client is not in."""
    net = ipaddress.ip_network(subnet, strict=False)
    a = net.network_address
    bits = 32 if a.version == 4 else 128
    addr = int(a)
    # JSON networks and the IPv4 aliases of an IPv6 tree (a class of their own), in the client's
    # family: IPv4 networks are ::a.b.c.d/96+len.
    aliases = [ipaddress.ip_network("::ffff:0:0/96"), ipaddress.ip_network("2002::/16")]
    spans = []
    for n, rec in load_city_json(ctx):
        s_, e_ = int(n.network_address), int(n.broadcast_address)
        if bits == 32:
            if s_ >> 32 != 0 or e_ >> 32 != 0:
                continue
        spans.append((s_, e_, n.prefixlen, rec))
    if bits == 128:
        spans += [(int(n.network_address), int(n.broadcast_address), n.prefixlen, "alias") for n in aliases]

    def cls_at(x):
        best = None
        for s_, e_, plen, rec in spans:
            if s_ <= x <= e_ and (best is None or plen > best[0]):
                best = (plen, rec)
        rec = best[1] if best else None
        return "alias" if rec == "alias" else map_list(rec, gmap, lists)[0]

    def uniform(lo, hi):
        points = {lo}
        for s_, e_, _, _ in spans:
            if e_ < lo or s_ > hi:
                continue
            if s_ >= lo:
                points.add(s_)
            if e_ + 1 <= hi:
                points.add(e_ + 1)
        return len({cls_at(x) for x in points}) == 1

    scope = bits
    for p in range(0, bits + 1):
        lo = addr >> (bits - p) << (bits - p)
        if uniform(lo, lo + (1 << (bits - p)) - 1):
            scope = p
            break
    scope = max(scope, 1)
    out = scope
    for c in gmap.get("cidr", {}):
        cn = ipaddress.ip_network(c)
        if cn.version != a.version or cn.prefixlen <= scope:
            continue
        shared = bits - (addr ^ int(cn.network_address)).bit_length()
        if shared >= cn.prefixlen or shared < scope:
            continue
        out = max(out, shared + 1)
    return out


# The geo map of the steered service www.example.com in the geo server (mirrored in geo_expect).
GEO_MAP = {
    "default": ["us"],
    "continent": {"EU": ["eu", "us"], "AS": ["ap"], "NA": ["us"]},
    "country": {"CN": ["eu"], "SE": ["ap"]},
    "subdivision": {"US-WA": ["ap"]},
    "cidr": {"198.51.100.0/24": ["ap"]},
}
REGIONS = [("eu", 50.1, 8.7), ("us", 39.0, -77.5), ("ap", 35.7, 139.7)]
WWW_V4 = {"eu": "127.0.0.11", "us": "127.0.0.12", "ap": "127.0.0.13"}
WWW_V6 = {"eu": "::11", "us": "::12", "ap": "::13"}


def map_list(rec, gmap, lists=None):
    """(region list, why) of a geo map for a JSON record, as the policy does: the record's
    subdivisions (most specific first), country (never registered_country: that needs
    use_registered_country), continent, default. Codes compare case-insensitively; a string value
    names an entry of `lists`."""
    def regions(v):
        return tuple(lists[v] if isinstance(v, str) else v)

    def find(level, code):
        for k, v in gmap.get(level, {}).items():
            if k.upper() == code.upper():
                return regions(v)
        return None

    if rec is not None:
        country = rec.get("country", {}).get("iso_code")
        subs = [s.get("iso_code") for s in rec.get("subdivisions") or []]
        if country:
            for sub in reversed(subs):
                got = find("subdivision", f"{country}-{sub}")
                if got:
                    return got, f"subdivision {country}-{sub}"
            got = find("country", country)
            if got:
                return got, "country " + country
        cont = rec.get("continent", {}).get("code")
        if cont and find("continent", cont):
            return find("continent", cont), "continent " + cont
    return regions(gmap["default"]), "default"


def map_expect(rec, gmap, lists=None):
    """(first region, why) of map_list."""
    got, why = map_list(rec, gmap, lists)
    return got[0], why


def geo_expect(rec):
    """(region, why) per GEO_MAP."""
    return map_expect(rec, GEO_MAP)


# A hierarchical map in mixed case with named lists (service hier.example.com): GB-WBK lies inside
# GB-ENG in the database's subdivisions, unmapped US states fall back to the US entry, unmapped
# EU countries to the EU entry.
HIER_MAP = {
    "default": ["us"],
    "continent": {"eu": ["eu", "us"]},
    "country": {"Gb": ["us"], "us": ["us"]},
    "subdivision": {"gb-eng": ["ap", "eu"], "GB-wbk": ["eu"], "us-ca": ["ap", "eu"]},
}
# The same map with named lists (section check: `meridian check` and `meridian explain`).
LISTS = {"eu-first": ["eu", "us"], "ap-first": ["ap", "eu"]}
HIER_MAP_NAMED = dict(HIER_MAP, continent={"eu": "eu-first"},
                      subdivision={"gb-eng": "ap-first", "GB-wbk": ["eu"], "us-ca": "ap-first"})
HIER_V4 = {"eu": "127.0.0.101", "us": "127.0.0.102", "ap": "127.0.0.103"}
# default [us], EU [eu], RU [us]: RU answers like the unmapped space next to it (service ru).
RU_MAP = {"default": ["us"], "continent": {"EU": ["eu"]}, "country": {"RU": ["us"]}}


def toml_list(xs):
    return "[" + ", ".join(f'"{x}"' for x in xs) + "]"


def toml_value(v):
    return f'"{v}"' if isinstance(v, str) else toml_list(v)


def toml_map(d):
    return "{ " + ", ".join(f'"{k}" = {toml_value(v)}' for k, v in d.items()) + " }"


def regions_toml():
    return "".join(f"[[region]]\nname = \"{n}\"\nlatitude = {lat}\nlongitude = {lon}\n\n" for n, lat, lon in REGIONS)


def zone_text(owners, extra=()):
    lines = ["$ORIGIN example.com.", "$TTL 300", "@ IN SOA ns1 hostmaster 2024010101 7200 3600 1209600 60",
             "@ IN NS ns1", "ns1 IN A 192.0.2.1"]
    lines += [f"{o} IN A 192.0.2.77" for o in owners]
    lines += list(extra)
    return "\n".join(lines) + "\n"


def head_toml(port, sock, geo_db, v6_port=None, trusted=None):
    listen = [f"127.0.0.1:{port}"] + ([f"[::1]:{v6_port}"] if v6_port else [])
    out = f"[server]\nlisten = {toml_list(listen)}\nthreads = 1\n\n[control]\nsocket = \"{sock}\"\n\n"
    if geo_db:
        out += f"[geoip]\ndatabase = \"{geo_db}\"\n"
        if trusted is not None:
            out += f"ecs_trusted = {toml_list(trusted)}\n"
        out += "\n"
    return out + regions_toml()


def zone_toml(zone_file):
    return f"[[zone]]\nname = \"example.com\"\nfile = \"{zone_file}\"\n\n"


def service_toml(name, policy, pools, ttl=20, first_n=1, when=None, check=None, geo=None, extra=""):
    """pools: [(region, [endpoint TOML text, ...])]."""
    out = f"[[service]]\nname = \"{name}\"\nttl = {ttl}\npolicy = {toml_list(policy)}\nfirst_n = {first_n}\n"
    if when:
        out += f"when_all_down = \"{when}\"\n"
    if check:
        out += f"check = \"{check}\"\n"
    out += extra
    if geo:
        out += "[service.geo]\n"
        for k, v in geo.items():
            out += f"{k} = {toml_value(v) if k == 'default' else toml_map(v)}\n"
    for region, eps in pools:
        out += f"[[service.pool]]\nregion = \"{region}\"\nendpoints = [{', '.join(eps)}]\n"
    return out + "\n"


def q(s):
    return f'"{s}"'


# ---------------------------------------------------------------------------
# the geo server (sections geo, answers, explain, check, reload)

GEO_OWNERS = ["www", "multi", "cname", "mixed", "near", "nested", "hier", "ru"]


def geo_config(ctx, port, v6_port, www_eu=("127.0.0.11",), broken=False, named_lists=False):
    text = head_toml(port, "geo.sock", "geo.mmdb", v6_port)
    text += zone_toml("example.com.zone")
    www_pools = [("eu", [q(a) for a in www_eu] + [q(WWW_V6["eu"])]),
                 ("us", [q(WWW_V4["us"]), q(WWW_V6["us"])]),
                 ("ap", [q(WWW_V4["ap"]), q(WWW_V6["ap"])])]
    if broken:
        www_pools.append(("mars", [q("127.0.0.99")]))
    text += service_toml("www.example.com", ["up", "geo", "first_n"], www_pools, geo=GEO_MAP)
    text += service_toml("multi.example.com", ["first_n"], [("eu", [q(a) for a in (
        "127.0.0.51", "127.0.0.52", "127.0.0.53", "::51", "::52", "::53")])], first_n=2)
    text += service_toml("cname.example.com", ["first_n"], [("eu", ['{ cname = "edge.example.net." }'])])
    text += service_toml("mixed.example.com", ["geo", "first_n"],
                         [("eu", ['{ cname = "eu.cdn.example.net." }']), ("us", [q("127.0.0.61")])],
                         first_n=2, geo={"default": ["us"], "continent": {"EU": ["eu"]}})
    text += service_toml("near.example.com", ["nearest", "first_n"],
                         [("eu", [q("127.0.0.71")]), ("us", [q("127.0.0.72")]), ("ap", [q("127.0.0.73")])])
    # Nested CIDR entries, and a /32 entry inside a database network.
    text += service_toml("nested.example.com", ["geo", "first_n"],
                         [("eu", [q("127.0.0.81")]), ("us", [q("127.0.0.82")]), ("ap", [q("127.0.0.83")])],
                         geo={"default": ["us"], "continent": {"EU": ["eu"]},
                              "cidr": {"10.0.0.0/8": ["ap"], "10.1.0.0/16": ["eu"], "81.2.69.143/32": ["ap"]}})
    text += service_toml("hier.example.com", ["geo", "first_n"],
                         [(reg, [q(HIER_V4[reg])]) for reg in ("eu", "us", "ap")],
                         geo=HIER_MAP_NAMED if named_lists else HIER_MAP)
    text += service_toml("ru.example.com", ["geo", "first_n"],
                         [("eu", [q("127.0.0.111")]), ("us", [q("127.0.0.112")])], geo=RU_MAP)
    if named_lists:
        text += "[lists]\n" + "".join(f"{k} = {toml_list(v)}\n" for k, v in LISTS.items()) + "\n"
    return text


def section_geo(ctx, g):
    r, addr = ctx.r, g["addr"]
    cases = ["81.2.69.142/32", "216.160.83.56/32", "149.101.100.0/28", "175.16.199.0/24", "89.160.20.112/28",
             "2001:218::/32", "2001:218::/48"]
    for subnet in cases:
        rec, prefix = city_lookup(ctx, subnet)
        if not r.check(f"{subnet}: found in GeoIP2-City-Test.json", rec is not None):
            continue
        region, why = geo_expect(rec)
        # The database network, or the wider block around it that gets the same region list.
        prefix = map_scope(ctx, subnet, GEO_MAP)
        want_a = WWW_V4[region]
        for label, fn in (("dnspython", ask), ("dig", dig)):
            if label == "dig" and not ctx.have_dig:
                continue
            rep = fn(addr, "www.example.com", "A", subnet)
            if not r.check(f"{label} {subnet} A: answered", rep is not None and rep.rcode == "NOERROR", repr(rep)):
                continue
            r.check(f"{label} {subnet} A ({why}) -> {region} {want_a}", rep.addrs("A") == [want_a], repr(rep))
            r.check(f"{label} {subnet} A: ECS scope /{prefix} (the block with this answer)", rep.scope() == prefix,
                    f"ECS in reply {rep.ecs}")
            if rep.ecs:
                r.check(f"{label} {subnet}: ECS family/address/source echoed",
                        (ipaddress.ip_address(rep.ecs[0]), rep.ecs[1])
                        == (ipaddress.ip_network(subnet, strict=False).network_address, int(subnet.split("/")[1])),
                        f"{rep.ecs}")
        rep = ask(addr, "www.example.com", "AAAA", subnet)
        r.check(f"{subnet} AAAA -> {region} {WWW_V6[region]} (scope /{prefix})",
                rep is not None and rep.addrs("AAAA") == [WWW_V6[region]] and rep.scope() == prefix, repr(rep))

    # country beats continent, subdivision beats country (explicitly, whatever the JSON says)
    rep = ask(addr, "www.example.com", "A", "175.16.199.0/24")
    r.check("CN (continent AS -> ap) is mapped by country CN -> eu", rep and rep.addrs() == [WWW_V4["eu"]], repr(rep))
    rep = ask(addr, "www.example.com", "A", "216.160.83.56/32")
    r.check("US-WA (country US, continent NA -> us) is mapped by subdivision -> ap",
            rep and rep.addrs() == [WWW_V4["ap"]], repr(rep))
    # custom CIDR map
    rep = ask(addr, "www.example.com", "A", "198.51.100.7/32")
    r.check("cidr 198.51.100.0/24 -> ap, scope /24", rep and rep.addrs() == [WWW_V4["ap"]] and rep.scope() == 24,
            repr(rep))

    # unmapped clients: default region, never scope 0 for a location-dependent answer
    for subnet in ("10.0.0.0/8", "10.1.2.0/24", "192.0.2.0/24", "192.0.2.1/32", "81.2.69.0/24"):
        rep = ask(addr, "www.example.com", "A", subnet)
        r.check(f"unmapped {subnet} -> default us", rep and rep.addrs() == [WWW_V4["us"]], repr(rep))
        r.check(f"unmapped {subnet}: scope is not 0", rep and rep.scope() not in (None, 0), repr(rep))

    # SOURCE 0: located by the source address (127.0.0.1, unmapped -> default), scope 0
    for label, fn in (("dnspython", ask), ("dig", dig)):
        if label == "dig" and not ctx.have_dig:
            continue
        rep = fn(addr, "www.example.com", "A", "0.0.0.0/0")
        r.check(f"{label} ECS 0.0.0.0/0: answer by source 127.0.0.1 (default us), scope 0",
                rep and rep.addrs() == [WWW_V4["us"]] and rep.ecs is not None and rep.scope() == 0, repr(rep))
    rep = ask(addr, "www.example.com", "A", "::/0")
    r.check("ECS ::/0: scope 0", rep and rep.ecs is not None and rep.scope() == 0 and rep.addrs() == [WWW_V4["us"]],
            repr(rep))
    # no ECS: none in the reply, client = source address
    rep = ask(addr, "www.example.com", "A", None, edns=True)
    r.check("EDNS without ECS: no ECS in the reply, default region by source 127.0.0.1",
            rep and rep.has_opt and rep.ecs is None and rep.addrs() == [WWW_V4["us"]], repr(rep))
    rep = ask(addr, "www.example.com", "A")
    r.check("no EDNS: no OPT, default region", rep and not rep.has_opt and rep.addrs() == [WWW_V4["us"]], repr(rep))
    if ctx.have_dig:
        rep = dig(addr, "www.example.com", "A")
        r.check("dig without +subnet: no CLIENT-SUBNET in the reply", rep and rep.ecs is None
                and rep.addrs() == [WWW_V4["us"]], short(rep.raw if rep else None))
    if g.get("v6addr"):
        rep = ask(g["v6addr"], "www.example.com", "A")
        r.check("over [::1] without ECS: ::1 unmapped -> default us", rep and rep.addrs() == [WWW_V4["us"]], repr(rep))
    else:
        r.skip("query over [::1]", "::1 cannot be bound")

    # malformed ECS -> FORMERR
    bad = [
        ("non-zero SCOPE in the query", ecs_raw(1, 24, 8, bytes([81, 2, 69]))),
        ("address longer than SOURCE needs (24 with 4 octets)", ecs_raw(1, 24, 0, bytes([81, 2, 69, 0]))),
        ("address shorter than SOURCE needs (32 with 3 octets)", ecs_raw(1, 32, 0, bytes([81, 2, 69]))),
        ("SOURCE 33 for IPv4", ecs_raw(1, 33, 0, bytes([81, 2, 69, 142, 0]))),
        ("unknown FAMILY 3", ecs_raw(3, 8, 0, bytes([81]))),
        ("bits set past SOURCE (/20 with 81.2.79)", ecs_raw(1, 20, 0, bytes([81, 2, 0x4F]))),
        ("option shorter than 4 octets", struct.pack("!HH", 8, 2) + b"\x00\x01"),
        ("two ECS options", ecs_raw(1, 24, 0, bytes([81, 2, 69])) + ecs_raw(1, 24, 0, bytes([81, 2, 69]))),
    ]
    for i, (label, opt) in enumerate(bad):
        w = udp_exchange(addr, raw_query("www.example.com", opt, qid=0x5000 + i))
        r.check(f"malformed ECS ({label}) -> FORMERR", w is not None and (w[3] & 0x0F) == 1,
                "no reply" if w is None else f"rcode {w[3] & 0x0F}")
    rep = ask(addr, "www.example.com", "A", "81.2.69.142/32")
    r.check("still answering after malformed ECS", rep and rep.addrs() == [WWW_V4["eu"]], repr(rep))

    # ECS scope must not claim a network in which a more specific map entry answers differently
    rep = ask(addr, "nested.example.com", "A", "10.1.2.0/24")
    r.check("nested cidr: 10.1.2.0/24 -> 10.1.0.0/16 entry (eu), scope /16",
            rep and rep.addrs() == ["127.0.0.81"] and rep.scope() == 16, repr(rep))
    rep = ask(addr, "nested.example.com", "A", "10.2.0.0/24")
    ok = rep is not None and rep.addrs() == ["127.0.0.83"]
    r.check("nested cidr: 10.2.0.0/24 -> 10.0.0.0/8 entry (ap)", ok, repr(rep))
    r.check("nested cidr: 10.2.0.0/24 reply scope does not cover 10.1.0.0/16 (which answers eu): scope >= 15",
            rep is not None and rep.scope() is not None and rep.scope() >= 15,
            f"scope /{rep.scope() if rep else None}: a resolver caches this ap answer for 10.0.0.0/"
            f"{rep.scope() if rep else None}, so clients in 10.1.0.0/16 get ap instead of eu")
    rep = ask(addr, "nested.example.com", "A", "81.2.69.142/32")
    r.check("cidr 81.2.69.143/32 inside the database network 81.2.69.142/31: 81.2.69.142 -> eu",
            rep and rep.addrs() == ["127.0.0.81"], repr(rep))
    r.check("81.2.69.142/32 reply scope does not cover 81.2.69.143 (cidr -> ap): scope 32",
            rep is not None and rep.scope() == 32,
            f"scope /{rep.scope() if rep else None}: the eu answer would be cached for 81.2.69.143 too")


    # the hierarchical map: codes in any case, named lists, every database subdivision tried
    for subnet in ("2.125.160.216/32", "2.2.3.0/24", "81.2.69.142/32", "216.160.83.56/32", "214.78.120.0/24",
                   "89.160.20.112/28", "149.101.100.0/28", "2001:218::/32", "10.1.2.0/24"):
        rec, _ = city_lookup(ctx, subnet)
        region, why = map_expect(rec, HIER_MAP)
        rep = ask(addr, "hier.example.com", "A", subnet)
        r.check(f"hier {subnet} ({why}) -> {region}", rep and rep.addrs() == [HIER_V4[region]], repr(rep))
    rep = ask(addr, "hier.example.com", "A", "2.125.160.216/32")
    r.check("hier: GB > ENG > WBK is mapped by the deeper GB-wbk entry (eu), not gb-eng (ap)",
            rep and rep.addrs() == [HIER_V4["eu"]], repr(rep))
    # equal lists merge: RU [us] next to unmapped space (default [us]) shares its scope. Figures
    # from gdnsd 3.8's gdnsd_geoip_test on the same map and database.
    for subnet, want, scope in (("2a02:d840::/29", "127.0.0.112", 26), ("2a02:d0c0::/29", "127.0.0.112", 25),
                                ("2a02:de00::/29", "127.0.0.112", 24), ("2a02:d800::/29", "127.0.0.111", None)):
        rep = ask(addr, "ru.example.com", "A", subnet)
        r.check(f"ru {subnet} -> {want}" + (f", scope /{scope} (as gdnsd)" if scope else ""),
                rep and rep.addrs() == [want] and (scope is None or rep.scope() == scope), repr(rep))


def section_answers(ctx, g):
    r, addr = ctx.r, g["addr"]
    rep = ask(addr, "www.example.com", "A", "81.2.69.142/32")
    r.check("steered answer: AA set, TTL = service ttl 20, one A",
            rep and rep.aa and [t for _, _, t in rep.answer] == [20] and rep.types() == ["A"], repr(rep))
    rep = ask(addr, "multi.example.com", "A")
    r.check("first_n = 2: two A records (first two IPv4 endpoints)",
            rep and rep.addrs("A") == ["127.0.0.51", "127.0.0.52"] and rep.types() == ["A"], repr(rep))
    rep = ask(addr, "multi.example.com", "AAAA")
    r.check("first_n = 2, AAAA: two IPv6 endpoints only", rep and rep.types() == ["AAAA"]
            and rep.addrs("AAAA") == ["::51", "::52"], repr(rep))
    if ctx.have_dig:
        rep = dig(addr, "multi.example.com", "AAAA")
        r.check("dig AAAA: IPv6 endpoints only", rep and rep.types() == ["AAAA"] and len(rep.answer) == 2,
                short(rep.raw if rep else None))
    rep = ask(addr, "www.example.com", "AAAA", "2001:218::/32")
    r.check("AAAA www for JP: ::13 only", rep and rep.answer and rep.addrs() == ["::13"], repr(rep))
    for t in ("A", "AAAA"):
        rep = ask(addr, "cname.example.com", t)
        r.check(f"CNAME endpoint, {t} query: one CNAME edge.example.net., nothing else",
                rep and rep.rcode == "NOERROR" and [(a, b) for a, b, _ in rep.answer] == [("CNAME", "edge.example.net.")],
                repr(rep))
    rep = ask(addr, "cname.example.com", "CNAME")
    r.check("CNAME endpoint, CNAME query: the CNAME", rep and rep.addrs("CNAME") == ["edge.example.net."], repr(rep))
    if ctx.have_dig:
        rep = dig(addr, "cname.example.com", "A")
        r.check("dig: CNAME endpoint answered as CNAME", rep and rep.types() == ["CNAME"], short(rep.raw if rep else None))
    rep = ask(addr, "mixed.example.com", "A", "81.2.69.142/32")
    r.check("mixed pools, EU client -> the eu CNAME alone (never beside addresses)",
            rep and [(a, b) for a, b, _ in rep.answer] == [("CNAME", "eu.cdn.example.net.")], repr(rep))
    rep = ask(addr, "mixed.example.com", "A", "216.160.83.56/32")
    r.check("mixed pools, US client -> the us address only", rep and rep.types() == ["A"]
            and rep.addrs() == ["127.0.0.61"], repr(rep))
    rep = ask(addr, "www.example.com", "TXT")
    r.check("non-address type at a service name: the zone data answers (NODATA with SOA)",
            rep and rep.rcode == "NOERROR" and not rep.answer and any(t == "SOA" for t, _, _ in rep.authority),
            repr(rep))
    rep = ask(addr, "multi.example.com", "CNAME")
    r.check("CNAME query at an address-only service: NOERROR, no answer, SOA",
            rep and rep.rcode == "NOERROR" and not rep.answer and any(t == "SOA" for t, _, _ in rep.authority),
            repr(rep))
    # nearest
    for subnet, want in (("81.2.69.142/32", "127.0.0.71"), ("216.160.83.56/32", "127.0.0.72"),
                         ("2001:218::/32", "127.0.0.73"), ("89.160.20.112/28", "127.0.0.71")):
        rec, prefix = city_lookup(ctx, subnet)
        rep = ask(addr, "near.example.com", "A", subnet)
        r.check(f"nearest: {subnet} -> {want}, scope /{prefix}", rep and rep.addrs() == [want] and rep.scope() == prefix,
                repr(rep))
    rep = ask(addr, "near.example.com", "A", "10.1.2.0/24")
    r.check("nearest: client without coordinates keeps all -> first endpoint, scope not 0",
            rep and rep.addrs() == ["127.0.0.71"] and rep.scope() not in (None, 0), repr(rep))


# ---------------------------------------------------------------------------
# chains: a steered name among its neighbours (CNAME/DNAME chains into it, other types at its name)


def section_chains(ctx, geo_db):
    r = ctx.r
    port = pick_port(ctx)
    com = os.path.join(ctx.tmp, "chains.com.zone")
    net = os.path.join(ctx.tmp, "chains.net.zone")
    write(com, zone_text(["www"], extra=[
        "www IN AAAA 2001:db8::77", "www IN TXT \"static\"", "alias 60 IN CNAME www",
        "*.wild IN CNAME www", "dn IN DNAME example.com."]))
    write(net, "\n".join([
        "$ORIGIN example.net.", "$TTL 300", "@ IN SOA ns1.example.com. h.example.com. 1 7200 3600 1209600 60",
        "@ IN NS ns1.example.com.", "cust 120 IN CNAME www.example.com."]) + "\n")
    cfg = os.path.join(ctx.tmp, "chains.toml")
    text = (head_toml(port, "chains.sock", geo_db) + zone_toml(com)
            + f'[[zone]]\nname = "example.net"\nfile = "{net}"\n\n'
            + service_toml("www.example.com", ["geo", "first_n"],
                           [(reg, [q(WWW_V4[reg])]) for reg in ("eu", "us", "ap")], geo=GEO_MAP))
    write(cfg, text)
    srv = start_server(ctx, "chains", cfg)
    if srv is None:
        return
    addr = ("127.0.0.1", port)
    direct = ask(addr, "www.example.com", "A", "81.2.69.142/32")
    r.check("www A +subnet=81.2.69.142/32 -> eu", direct and direct.addrs("A") == [WWW_V4["eu"]], repr(direct))
    want_scope = direct.scope() if direct else None
    for name, first in (("alias.example.com", ("CNAME", "www.example.com.", 60)),
                        ("foo.wild.example.com", ("CNAME", "www.example.com.", 300)),
                        ("cust.example.net", ("CNAME", "www.example.com.", 120)),
                        ("www.dn.example.com", ("CNAME", "www.example.com.", 300))):
        for label, fn in (("dnspython", ask), ("dig", dig)):
            if label == "dig" and not ctx.have_dig:
                continue
            rep = fn(addr, name, "A", "81.2.69.142/32")
            ok = rep is not None and rep.rcode == "NOERROR" and first in rep.answer
            r.check(f"{label} {name} A +subnet=81.2.69.142/32: the chain, then the steered eu A with TTL 20",
                    ok and ("A", WWW_V4["eu"], 20) in rep.answer and len(rep.addrs("A")) == 1, repr(rep))
            r.check(f"{label} {name}: ECS scope is the steered decision's (/{want_scope})",
                    rep is not None and rep.scope() == want_scope and want_scope not in (None, 0), repr(rep))
        rep = ask(addr, name, "A", "216.160.83.56/32")
        r.check(f"{name} A from US-WA -> ap", rep and rep.addrs("A") == [WWW_V4["ap"]], repr(rep))
    rep = ask(addr, "www.example.com", "AAAA", "81.2.69.142/32")
    r.check("www AAAA: the service steers only A, so the zone's AAAA answers (scope 0)",
            rep and rep.answer == [("AAAA", "2001:db8::77", 300)] and rep.scope() == 0, repr(rep))
    rep = ask(addr, "alias.example.com", "AAAA")
    r.check("alias AAAA: CNAME, then the zone's AAAA at www",
            rep and ("AAAA", "2001:db8::77", 300) in rep.answer and len(rep.answer) == 2, repr(rep))
    rep = ask(addr, "www.example.com", "TXT")
    r.check("www TXT: the zone's TXT", rep and rep.answer == [("TXT", '"static"', 300)], repr(rep))
    # meridian explain follows the same chains into the service, and agrees with the server
    for name, hop in (("alias.example.com", "alias.example.com. is a CNAME to www.example.com."),
                      ("cust.example.net", "cust.example.net. is a CNAME to www.example.com.")):
        rc, out, err = explain(ctx, cfg, "81.2.69.142/32", name)
        r.check(f"explain {name}: the CNAME to www.example.com., then the steered answer eu/{WWW_V4['eu']}",
                rc == 0 and hop in out and f"answer: eu/{WWW_V4['eu']}, TTL 20, ECS scope /{want_scope}" in out,
                f"rc={rc}\n{out}{err}")
    srv.stop()


# ---------------------------------------------------------------------------
# trust


def section_trust(ctx, geo_db, zone_file):
    r = ctx.r
    port = pick_port(ctx)
    cfg = os.path.join(ctx.tmp, "trust.toml")

    def conf(trusted):
        return (head_toml(port, "trust.sock", geo_db, trusted=trusted) + zone_toml(zone_file)
                + service_toml("www.example.com", ["geo", "first_n"],
                               [(reg, [q(WWW_V4[reg])]) for reg in ("eu", "us", "ap")], geo=GEO_MAP))
    write(cfg, conf(["192.0.2.0/24"]))
    srv = start_server(ctx, "trust", cfg)
    if srv is None:
        return
    addr = ("127.0.0.1", port)
    for label, fn in (("dnspython", ask), ("dig", dig)):
        if label == "dig" and not ctx.have_dig:
            continue
        rep = fn(addr, "www.example.com", "A", "81.2.69.142/32")
        r.check(f"{label}: ecs_trusted 192.0.2.0/24, query from 127.0.0.1: ECS ignored (default us), scope 0",
                rep and rep.addrs() == [WWW_V4["us"]] and rep.ecs is not None and rep.scope() == 0, repr(rep))
    write(cfg, conf(["192.0.2.0/24", "127.0.0.0/8"]))
    srv.signal(signal.SIGHUP)
    ok, rep, _ = poll(lambda: ask(addr, "www.example.com", "A", "81.2.69.142/32"),
                      lambda x: x is not None and x.addrs() == [WWW_V4["eu"]], 5)
    r.check("after SIGHUP with 127.0.0.0/8 trusted: ECS used (eu, scope /31)", ok and rep.scope() == 31, repr(rep))
    rep = ask(addr, "www.example.com", "A", "0.0.0.0/0")
    r.check("trusted, SOURCE 0: source address, scope 0", rep and rep.addrs() == [WWW_V4["us"]] and rep.scope() == 0,
            repr(rep))
    srv.stop()


# ---------------------------------------------------------------------------
# health


def health_rows(ctx, sock):
    """{address: {verdict, override, usable, rtt}} from `meridianctl health`."""
    rc, out, _ = ctl(ctx, sock, "health")
    rows = {}
    if rc != 0:
        return rows
    for line in out.splitlines():
        m = re.match(r"\d+\s+(\S+) \((\S+)\)\s+(\S+)\s+(.*?)\s+(up|down)\s+(none|force-up|force-down|drain)\s+(yes|no)\s+(\S+)",
                     line)
        if m:
            rows[m.group(1)] = dict(check=m.group(2), verdict=m.group(5), override=m.group(6), usable=m.group(7),
                                    rtt=m.group(8))
    return rows


def rtt_ms(text):
    return float(text[:-2]) if text and text.endswith("ms") else None


def section_health(ctx, geo_db, zone_file):
    r = ctx.r
    port = pick_port(ctx)
    addrs_http = ["127.0.0.11", "127.0.0.12", "127.0.0.13"]
    addrs_tcp = ["127.0.0.21", "127.0.0.22"]
    hport = pick_port(ctx, addrs_http, udp=False)
    tport = pick_port(ctx, addrs_tcp, udp=False)
    web = {a: HttpBackend(ctx, a, hport) for a in addrs_http}
    tcp = {a: TcpBackend(ctx, a, tport) for a in addrs_tcp}
    for b in list(web.values()) + list(tcp.values()):
        b.start()
    sock = "health.sock"
    cfg = os.path.join(ctx.tmp, "health.toml")
    text = head_toml(port, sock, geo_db) + zone_toml(zone_file)
    text += (f"[[check]]\nname = \"web\"\ntype = \"http\"\nport = {hport}\npath = \"/health\"\n"
             f"expect_status = [200]\nexpect_body = \"ok\"\ninterval_ms = 200\ntimeout_ms = 150\nrise = 2\nfall = 2\n\n")
    text += (f"[[check]]\nname = \"port\"\ntype = \"tcp\"\nport = {tport}\ninterval_ms = 200\ntimeout_ms = 150\n"
             f"rise = 2\nfall = 2\n\n")
    text += service_toml("www.example.com", ["up", "geo", "first_n"],
                         [(reg, [q(WWW_V4[reg])]) for reg in ("eu", "us", "ap")], check="web", geo=GEO_MAP)
    tcp_pools = [("eu", [q(a) for a in addrs_tcp])]
    for name, when in (("open", "fail-open"), ("nodata", "nodata"), ("servfail", "servfail"),
                       ("fallback", "fallback")):
        text += service_toml(f"{name}.example.com", ["up", "first_n"], tcp_pools, first_n=2, when=when, check="port")
    write(cfg, text)
    ctx.health_cfg = cfg
    srv = start_server(ctx, "health", cfg)
    if srv is None:
        return
    addr = ("127.0.0.1", port)
    eu_client, us_client, jp_client = "81.2.69.142/32", "149.101.100.0/28", "2001:218::/32"

    def www(subnet):
        rep = ask(addr, "www.example.com", "A", subnet)
        return rep.addrs() if rep else None

    ok, rows, secs = poll(lambda: health_rows(ctx, sock),
                          lambda x: len(x) == 5 and all(v["verdict"] == "up" and v["rtt"] != "-" for v in x.values()),
                          HEALTH_WAIT)
    r.check("meridianctl health: 5 targets, all up with an RTT", ok, short(rows))
    r.check("all up: EU -> eu, US -> us, JP -> ap",
            (www(eu_client), www(us_client), www(jp_client)) == ([WWW_V4["eu"]], [WWW_V4["us"]], [WWW_V4["ap"]]),
            f"{www(eu_client)} {www(us_client)} {www(jp_client)}")

    # a backend stops: its endpoint leaves the answers (EU falls back to us per its list)
    web["127.0.0.11"].stop()
    ok, got, secs = poll(lambda: www(eu_client), lambda x: x == [WWW_V4["us"]], HEALTH_WAIT)
    r.check(f"eu backend stopped: EU client moves to us within {HEALTH_WAIT:.0f} s (fall 2 x 200 ms)", ok,
            f"last answer {got} after {secs:.1f}s; health {short(health_rows(ctx, sock))}")
    log(f"   .. eu endpoint left the answers after {secs:.2f}s")
    rows = health_rows(ctx, sock)
    r.check("health shows 127.0.0.11 down / not usable",
            rows.get("127.0.0.11", {}).get("verdict") == "down" and rows["127.0.0.11"]["usable"] == "no", short(rows))
    seen = set()
    for subnet in (eu_client, us_client, jp_client, "175.16.199.0/24", "89.160.20.112/28", "10.0.0.0/8",
                   "2.125.160.216/29", "0.0.0.0/0") * 3:
        a = www(subnet)
        seen.update(a or [])
    r.check("while down: 127.0.0.11 is never returned (24 queries, 8 clients)", "127.0.0.11" not in seen, str(seen))
    web["127.0.0.11"].start()
    ok, got, secs = poll(lambda: www(eu_client), lambda x: x == [WWW_V4["eu"]], HEALTH_WAIT)
    r.check(f"eu backend restarted: EU client back on eu within {HEALTH_WAIT:.0f} s (rise 2)", ok,
            f"last answer {got} after {secs:.1f}s")

    # http semantics: a 503 or a body without "ok" is a failure
    web["127.0.0.12"].status = 503
    ok, got, secs = poll(lambda: www(us_client), lambda x: x is not None and x != [WWW_V4["us"]], HEALTH_WAIT)
    r.check("us backend answers 503: US client no longer gets 127.0.0.12", ok, f"{got} after {secs:.1f}s")
    web["127.0.0.12"].status = 200
    ok, got, _ = poll(lambda: www(us_client), lambda x: x == [WWW_V4["us"]], HEALTH_WAIT)
    r.check("us backend 200 again: back", ok, str(got))
    web["127.0.0.12"].body = b"maintenance\n"
    ok, got, secs = poll(lambda: www(us_client), lambda x: x is not None and x != [WWW_V4["us"]], HEALTH_WAIT)
    r.check("us backend body lacks expect_body 'ok': not returned", ok, f"{got} after {secs:.1f}s")
    web["127.0.0.12"].body = b"ok\n"
    ok, got, _ = poll(lambda: www(us_client), lambda x: x == [WWW_V4["us"]], HEALTH_WAIT)
    r.check("us backend body 'ok' again: back", ok, str(got))

    # overrides
    rc, out, err = ctl(ctx, sock, "override", "127.0.0.11", "force-down")
    r.check("override 127.0.0.11 force-down: exit 0", rc == 0, out + err)
    ok, got, _ = poll(lambda: www(eu_client), lambda x: x == [WWW_V4["us"]], 2)
    r.check("force-down healthy 127.0.0.11: EU -> us", ok, str(got))
    rows = health_rows(ctx, sock)
    r.check("health shows override force-down, verdict still up",
            rows.get("127.0.0.11", {}).get("override") == "force-down" and rows["127.0.0.11"]["verdict"] == "up",
            short(rows))
    rc, out, err = ctl(ctx, sock, "override", "127.0.0.11", "none")
    ok, got, _ = poll(lambda: www(eu_client), lambda x: x == [WWW_V4["eu"]], 2)
    r.check("override none: EU back on eu", rc == 0 and ok, f"rc={rc} {out}{err} {got}")
    rc, out, err = ctl(ctx, sock, "override", "127.0.0.11", "drain")
    ok, got, _ = poll(lambda: www(eu_client), lambda x: x == [WWW_V4["us"]], 2)
    r.check("drain 127.0.0.11: not handed out", rc == 0 and ok, f"rc={rc} {out}{err} {got}")
    ctl(ctx, sock, "override", "127.0.0.11", "none")
    label = "127.0.0.11 (web)"
    if label in ctl(ctx, sock, "health")[1]:
        rc, out, err = ctl(ctx, sock, "override", label, "force-down")
        r.check(f"override by target label '{label}' (as `health` lists it): exit 0",
                rc == 0, f"rc={rc} {out.strip()} {err.strip()}: labels contain a space, the server splits the command "
                         "at the first space")
        ok, got, _ = poll(lambda: www(eu_client), lambda x: x == [WWW_V4["us"]], 2)
        r.check("override by label takes effect", ok, str(got))
        ctl(ctx, sock, "override", label, "none")
        ctl(ctx, sock, "override", "127.0.0.11", "none")
    rc, out, err = ctl(ctx, sock, "override", "region:eu", "force-down")
    r.check("override region:eu force-down: exit 0, names 127.0.0.11 and the tcp targets",
            rc == 0 and "127.0.0.11" in out and "127.0.0.21" in out, out + err)
    ok, got, _ = poll(lambda: www(eu_client), lambda x: x == [WWW_V4["us"]], 2)
    r.check("region:eu force-down: EU -> us", ok, str(got))
    rc, out, err = ctl(ctx, sock, "override", "region:eu", "none")
    ok, got, _ = poll(lambda: www(eu_client), lambda x: x == [WWW_V4["eu"]], 2)
    r.check("region:eu none: EU back on eu", rc == 0 and ok, f"{out}{err} {got}")
    rc, out, err = ctl(ctx, sock, "override", "region:nowhere", "force-down")
    r.check("override region:nowhere: exit 1 with an error", rc == 1 and "error" in out, out + err)
    rc, out, err = ctl(ctx, sock, "override", "127.0.0.11", "sideways")
    r.check("override with a bad mode: exit 1", rc == 1 and "error" in out, out + err)
    # force-up a down endpoint
    web["127.0.0.13"].stop()
    ok, got, _ = poll(lambda: www(jp_client), lambda x: x is not None and x != [WWW_V4["ap"]], HEALTH_WAIT)
    r.check("ap backend stopped: JP client moved off 127.0.0.13", ok, str(got))
    rc, out, err = ctl(ctx, sock, "override", "127.0.0.13", "force-up")
    ok, got, _ = poll(lambda: www(jp_client), lambda x: x == [WWW_V4["ap"]], 2)
    r.check("force-up the down 127.0.0.13: JP client gets it again", rc == 0 and ok, f"{out}{err} {got}")
    ctl(ctx, sock, "override", "127.0.0.13", "none")
    ok, got, _ = poll(lambda: www(jp_client), lambda x: x is not None and x != [WWW_V4["ap"]], 2)
    r.check("override none on a down endpoint: gone again", ok, str(got))
    web["127.0.0.13"].start()

    # every endpoint down: when_all_down
    def get(name):
        return ask(addr, f"{name}.example.com", "A")
    for b in tcp.values():
        b.stop()
    ok, rows, secs = poll(lambda: health_rows(ctx, sock),
                          lambda x: all(x.get(a, {}).get("verdict") == "down" for a in addrs_tcp), HEALTH_WAIT)
    r.check("tcp backends stopped: both tcp targets down", ok, short(rows))
    rep = get("open")
    r.check("all down, fail-open: both endpoints still answered",
            rep and rep.rcode == "NOERROR" and rep.addrs() == addrs_tcp, repr(rep))
    rep = get("nodata")
    r.check("all down, nodata: NOERROR, empty answer, SOA in authority",
            rep and rep.rcode == "NOERROR" and not rep.answer and [t for t, _, _ in rep.authority] == ["SOA"],
            repr(rep))
    rep = get("servfail")
    r.check("all down, servfail: SERVFAIL", rep and rep.rcode == "SERVFAIL" and not rep.answer, repr(rep))
    rep = get("fallback")
    r.check("all down, fallback: the zone file's A 192.0.2.77",
            rep and rep.rcode == "NOERROR" and rep.addrs() == ["192.0.2.77"] and rep.aa, repr(rep))
    if ctx.have_dig:
        rep = dig(addr, "fallback.example.com", "A")
        r.check("dig: fallback answer 192.0.2.77", rep and rep.addrs() == ["192.0.2.77"], short(rep.raw if rep else None))
        rep = dig(addr, "servfail.example.com", "A")
        r.check("dig: servfail -> SERVFAIL", rep and rep.rcode == "SERVFAIL", short(rep.raw if rep else None))
    for b in tcp.values():
        b.start()
    ok, rep, secs = poll(lambda: get("nodata"), lambda x: x is not None and x.addrs() == addrs_tcp, HEALTH_WAIT)
    r.check("tcp backends back: nodata service answers its endpoints again", ok, repr(rep))
    rep = get("fallback")
    r.check("tcp backends back: fallback service steers again", rep and rep.addrs() == addrs_tcp, repr(rep))
    # drain with all others up: drain everything -> when_all_down applies
    ctl(ctx, sock, "override", "region:eu", "drain")
    rep = get("servfail")
    r.check("everything drained (region:eu drain): servfail service -> SERVFAIL", rep and rep.rcode == "SERVFAIL",
            repr(rep))
    ctl(ctx, sock, "override", "region:eu", "none")
    # an override survives a reload that changes the set of checked targets (the monitor is rebuilt)
    rc, out, err = ctl(ctx, sock, "override", "127.0.0.12", "force-down")
    r.check("override 127.0.0.12 force-down before the reload: exit 0", rc == 0, out + err)
    changed = text.replace(f"port = {tport}\ninterval_ms = 200", f"port = {tport}\ninterval_ms = 250")
    r.check("test setup: the tcp check's interval changed", changed != text)
    write(cfg, changed)
    rc, out, err = ctl(ctx, sock, "reload")
    r.check("reload with a changed check: exit 0", rc == 0, out + err)
    rows = health_rows(ctx, sock)
    r.check("after the reload: 127.0.0.12 still force-down",
            rows.get("127.0.0.12", {}).get("override") == "force-down", short(rows))
    r.check("after the reload: US client still kept off 127.0.0.12", www(us_client) != [WWW_V4["us"]],
            str(www(us_client)))
    ctl(ctx, sock, "override", "127.0.0.12", "none")
    ok, got, _ = poll(lambda: www(us_client), lambda x: x == [WWW_V4["us"]], HEALTH_WAIT)
    r.check("override none after the reload: US back on us", ok, str(got))
    # a down verdict survives a reload that rebuilds the monitor (matched by target identity): the
    # target stays down until it passes `rise` probes of the new monitor, instead of restarting as up
    web["127.0.0.11"].stop()
    ok, rows, secs = poll(lambda: health_rows(ctx, sock),
                          lambda x: x.get("127.0.0.11", {}).get("verdict") == "down", HEALTH_WAIT)
    r.check("127.0.0.11 stopped before a reload: down", ok, short(rows))
    changed2 = changed.replace(f"port = {tport}\ninterval_ms = 250", f"port = {tport}\ninterval_ms = 300")
    r.check("test setup: the tcp check's interval changed again", changed2 != changed)
    write(cfg, changed2)
    rc, out, err = ctl(ctx, sock, "reload")
    seen = set()
    for _ in range(10):
        seen.update(www(eu_client) or [])
    rows = health_rows(ctx, sock)
    r.check("reload that rebuilds the monitor: 127.0.0.11 is still down (not restarted as up)",
            rc == 0 and rows.get("127.0.0.11", {}).get("verdict") == "down", f"rc={rc} {out}{err} {short(rows)}")
    r.check("... and EU clients are not sent to it right after the reload (10 queries)",
            "127.0.0.11" not in seen, str(seen))
    web["127.0.0.11"].start()
    ok, got, secs = poll(lambda: www(eu_client), lambda x: x == [WWW_V4["eu"]], HEALTH_WAIT)
    r.check("backend back after the reload: up again once the new monitor's rise probes pass", ok,
            f"{got} after {secs:.1f}s")
    r.check("health server still running", srv.alive(), srv.tail())
    verdict_lines = [ln for ln in srv.log_text().splitlines() if " DOWN after " in ln]
    bad = [ln for ln in verdict_lines if re.search(r"DOWN after 1 failure\b", ln)]
    r.check("verdicts honour fall = 2: no 'DOWN after 1 failure' in the log", not bad,
            short("\n".join(bad), 600))
    srv.stop()
    for b in list(web.values()) + list(tcp.values()):
        b.stop()


def unchecked_rows(ctx, sock):
    """{label: {address, override, usable}} for the unchecked rows of `meridianctl health`."""
    rc, out, _ = ctl(ctx, sock, "health")
    rows = {}
    for line in out.splitlines() if rc == 0 else []:
        m = re.match(r"\d+\s+(\S+)\s+(\S+)\s+unchecked\s+up\s+(none|force-up|force-down|drain)\s+(yes|no)\b", line)
        if m:
            rows[m.group(1)] = dict(address=m.group(2), override=m.group(3), usable=m.group(4))
    return rows


def overrides_config(port, sock, zone_file, extra_us=(), lab_coords=False, lab_policy='["up", "geo"]'):
    """Endpoints without health checks; www has no policy key (the default). `lab_coords`: give the
    lab region latitude/longitude (only a `nearest` filter needs them, and no service here has one)."""
    text = head_toml(port, sock, "geo.mmdb") + zone_toml(zone_file)
    text += '[[region]]\nname = "lab"\n' + ("latitude = 1.0\nlongitude = 2.0\n" if lab_coords else "") + "\n"
    text += ('[[service]]\nname = "www.example.com"\nttl = 20\n'
             '[service.geo]\ndefault = ["us"]\ncontinent = { EU = ["eu", "us"] }\n'
             '[[service.pool]]\nregion = "eu"\nendpoints = ["127.0.0.111", "127.0.0.112"]\n'
             f'[[service.pool]]\nregion = "us"\nendpoints = {toml_list(["127.0.0.113"] + list(extra_us))}\n\n')
    text += ('[[service]]\nname = "lab.example.com"\nttl = 20\npolicy = ' + lab_policy + '\n'
             '[service.geo]\ndefault = ["lab", "us"]\n'
             '[[service.pool]]\nregion = "lab"\nendpoints = ["127.0.0.121"]\n'
             '[[service.pool]]\nregion = "us"\nendpoints = ["127.0.0.122"]\n\n')
    return text


def section_overrides(ctx, zone_file):
    """Overrides for endpoints, regions and pools that have no health check (issue #6)."""
    r = ctx.r
    port = pick_port(ctx)
    sock = "overrides.sock"
    cfg = os.path.join(ctx.tmp, "overrides.toml")
    # Coordinates: required only where a `nearest` filter measures from them.
    text = overrides_config(port, sock, zone_file)
    write(cfg, text)
    rc, out, err = run_tool([ctx.meridian, "check", "--config", cfg], cwd=ctx.tmp)
    r.check("meridian check: a [[region]] without coordinates, no `nearest` in its services: exit 0",
            rc == 0, f"rc={rc}\n{out}{err}")
    bad = os.path.join(ctx.tmp, "overrides-nearest.toml")
    write(bad, overrides_config(port, sock, zone_file, lab_policy='["up", "nearest"]'))
    line = next(i for i, ln in enumerate(open(bad).read().splitlines(), 1) if ln == 'name = "lab"') - 1
    rc, out, err = run_tool([ctx.meridian, "check", "--config", bad], cwd=ctx.tmp)
    r.check(f"meridian check: `nearest` over that region: exit 1 naming overrides-nearest.toml:{line} region 'lab'",
            rc == 1 and f"overrides-nearest.toml:{line}: region 'lab'" in err and "nearest" in err,
            f"rc={rc}\n{out}{err}")
    half = os.path.join(ctx.tmp, "overrides-half.toml")
    write(half, text.replace('name = "lab"\n', 'name = "lab"\nlatitude = 10.5\n'))
    rc, out, err = run_tool([ctx.meridian, "check", "--config", half], cwd=ctx.tmp)
    r.check("meridian check: latitude without longitude: exit 1", rc == 1 and "longitude" in err, f"rc={rc}\n{out}{err}")

    # The server runs with coordinates everywhere, so that what follows does not depend on the above.
    text = overrides_config(port, sock, zone_file, lab_coords=True)
    write(cfg, text)
    srv = start_server(ctx, "overrides", cfg)
    if srv is None:
        return
    addr = ("127.0.0.1", port)
    eu_client, lab_client = "81.2.69.142/32", "10.0.0.0/8"
    both_eu = ["127.0.0.111", "127.0.0.112"]

    def answer(name="www.example.com", subnet=eu_client):
        rep = ask(addr, name, "A", subnet)
        return sorted(rep.addrs()) if rep else None

    r.check("default policy (no policy key): EU client gets both eu addresses", answer() == both_eu, str(answer()))
    rows = unchecked_rows(ctx, sock)
    r.check("meridianctl health lists the unchecked endpoints (label REGION/ADDRESS, 'unchecked')",
            set(rows) >= {"eu/127.0.0.111", "eu/127.0.0.112", "us/127.0.0.113", "lab/127.0.0.121"}, short(rows))

    rc, out, err = ctl(ctx, sock, "status")
    r.check("meridianctl status: 0 health targets, 5 unchecked endpoints",
            rc == 0 and "health targets 0, unchecked endpoints 5" in out, f"rc={rc} {out}{err}")
    rc, out, err = ctl(ctx, sock, "override", "region:eu", "force-down")
    r.check("override region:eu force-down (no checks): exit 0, names both eu endpoints",
            rc == 0 and "eu/127.0.0.111" in out and "eu/127.0.0.112" in out, f"rc={rc} {out}{err}")
    ok, got, _ = poll(answer, lambda x: x == ["127.0.0.113"], 2)
    r.check("unchecked region eu forced down: EU client moves to the next region (us)", ok, str(got))
    rows = unchecked_rows(ctx, sock)
    r.check("health shows eu/127.0.0.111 force-down, not usable",
            rows.get("eu/127.0.0.111", {}).get("override") == "force-down"
            and rows["eu/127.0.0.111"]["usable"] == "no", short(rows))
    rc, out, err = ctl(ctx, sock, "override", "region:eu", "none")
    ok, got, _ = poll(answer, lambda x: x == both_eu, 2)
    r.check("override region:eu none: EU client back on both eu addresses", rc == 0 and ok, f"{out}{err} {got}")

    rc, out, err = ctl(ctx, sock, "override", "127.0.0.111", "drain")
    ok, got, _ = poll(answer, lambda x: x == ["127.0.0.112"], 2)
    r.check("drain one unchecked endpoint by address: only the other eu address", rc == 0 and ok,
            f"rc={rc} {out}{err} {got}")
    rc, out, err = ctl(ctx, sock, "override", "eu/127.0.0.111", "none")
    ok, got, _ = poll(answer, lambda x: x == both_eu, 2)
    r.check("override by label eu/127.0.0.111 none: back", rc == 0 and ok, f"rc={rc} {out}{err} {got}")

    rc, out, err = ctl(ctx, sock, "override", "pool:www.example.com/eu", "force-down")
    ok, got, _ = poll(answer, lambda x: x == ["127.0.0.113"], 2)
    r.check("override pool:www.example.com/eu force-down: EU client -> us", rc == 0 and ok, f"rc={rc} {out}{err} {got}")
    rc, out, err = ctl(ctx, sock, "override", "pool:WWW.example.com./eu", "none")
    ok, got, _ = poll(answer, lambda x: x == both_eu, 2)
    r.check("override pool:WWW.example.com./eu none (any case, trailing dot): back", rc == 0 and ok,
            f"rc={rc} {out}{err} {got}")
    rc, out, err = ctl(ctx, sock, "override", "pool:www.example.com/mars", "drain")
    r.check("override of a pool that does not exist: exit 1, 'nothing matches'", rc == 1 and "nothing matches" in out,
            f"rc={rc} {out}{err}")
    rc, out, err = ctl(ctx, sock, "override", "region:", "force-down")
    r.check("override 'region:' without a name: exit 1, and nothing overridden",
            rc == 1 and all(v["override"] == "none" for v in unchecked_rows(ctx, sock).values()), f"rc={rc} {out}{err}")

    # lab: forced down, across a reload that renumbers the slot table
    r.check("lab.example.com answers from lab",
            answer("lab.example.com", lab_client) == ["127.0.0.121"], str(answer("lab.example.com", lab_client)))
    rc, out, err = ctl(ctx, sock, "override", "region:lab", "force-down")
    ok, got, _ = poll(lambda: answer("lab.example.com", lab_client), lambda x: x == ["127.0.0.122"], 2)
    r.check("region:lab force-down: lab.example.com moves to us", rc == 0 and ok, f"rc={rc} {out}{err} {got}")
    write(cfg, overrides_config(port, sock, zone_file, extra_us=("127.0.0.114",), lab_coords=True))
    rc, out, err = ctl(ctx, sock, "reload")
    r.check("reload adding an endpoint (new slot numbering): exit 0", rc == 0, out + err)
    r.check("after the reload: the new endpoint is answered", answer(subnet="149.101.100.0/28")
            == ["127.0.0.113", "127.0.0.114"], str(answer(subnet="149.101.100.0/28")))
    rows = unchecked_rows(ctx, sock)
    r.check("after the reload: lab/127.0.0.121 still force-down",
            rows.get("lab/127.0.0.121", {}).get("override") == "force-down", short(rows))
    r.check("after the reload: lab.example.com still answered from us",
            answer("lab.example.com", lab_client) == ["127.0.0.122"], str(answer("lab.example.com", lab_client)))
    rc, out, err = ctl(ctx, sock, "override", "region:lab", "none")
    ok, got, _ = poll(lambda: answer("lab.example.com", lab_client), lambda x: x == ["127.0.0.121"], 2)
    r.check("region:lab none after the reload: back on lab", rc == 0 and ok, f"rc={rc} {out}{err} {got}")
    # an IPv6 endpoint written in upper case with zeros: labelled and overridden by its canonical text
    write(cfg, overrides_config(port, sock, zone_file, extra_us=("127.0.0.114", "2001:DB8:0::114"), lab_coords=True))
    rc, out, err = ctl(ctx, sock, "reload")
    rows = unchecked_rows(ctx, sock)
    r.check("reload with endpoint 2001:DB8:0::114: health lists it as us/2001:db8::114",
            rc == 0 and "us/2001:db8::114" in rows, f"rc={rc} {out}{err} {sorted(rows)}")
    rc, out, err = ctl(ctx, sock, "override", "2001:db8::114", "drain")
    r.check("override 2001:db8::114 (as dig prints it) drain: matches that endpoint",
            rc == 0 and "us/2001:db8::114: drain" in out, f"rc={rc} {out}{err}")
    rc, out, err = ctl(ctx, sock, "override", "2001:0db8::0114", "none")
    r.check("override 2001:0db8::0114 (another spelling) none: matches it too",
            rc == 0 and "us/2001:db8::114: none" in out, f"rc={rc} {out}{err}")
    _, status, _ = ctl(ctx, sock, "status")
    m = re.search(r"health targets (\d+), unchecked endpoints (\d+)", status)
    rc, out, err = run_tool([ctx.meridian, "check", "--config", cfg], cwd=ctx.tmp)
    want = f"{m.group(1)} health target(s), {m.group(2)} unchecked endpoint(s)" if m else "?"
    r.check(f"meridian check counts as status does: '{want}'", rc == 0 and m and want in out,
            f"rc={rc} {out}{err} status: {status}")
    r.check("overrides server still running", srv.alive(), srv.tail())
    srv.stop()


# ---------------------------------------------------------------------------
# latency


def section_latency(ctx, zone_file):
    r = ctx.r
    port = pick_port(ctx)
    addrs = {"eu": "127.0.0.31", "us": "127.0.0.32", "ap": "127.0.0.33"}
    hport = pick_port(ctx, list(addrs.values()), udp=False)
    delays = {"eu": 0.150, "us": 0.060, "ap": 0.005}
    web = {reg: HttpBackend(ctx, a, hport, delays[reg]) for reg, a in addrs.items()}
    for b in web.values():
        b.start()
    sock = "lat.sock"
    cfg = os.path.join(ctx.tmp, "latency.toml")
    text = head_toml(port, sock, None) + zone_toml(zone_file)
    text += (f"[[check]]\nname = \"web\"\ntype = \"http\"\nport = {hport}\npath = \"/\"\ninterval_ms = 250\n"
             f"timeout_ms = 240\nrise = 1\nfall = 3\n\n")
    text += service_toml("lat.example.com", ["up", "latency", "first_n"],
                         [(reg, [q(a)]) for reg, a in addrs.items()], check="web")
    write(cfg, text)
    srv = start_server(ctx, "latency", cfg)
    if srv is None:
        return
    addr = ("127.0.0.1", port)

    def answer():
        rep = ask(addr, "lat.example.com", "A")
        return rep.addrs() if rep else None

    ok, rows, secs = poll(lambda: health_rows(ctx, sock),
                          lambda x: len(x) == 3 and all(v["rtt"] != "-" for v in x.values()), 6)
    r.check("latency: every target has an RTT", ok, short(rows))
    ok, got, secs = poll(answer, lambda x: x == [addrs["ap"]], 6)
    rows = health_rows(ctx, sock)
    rtts = {a: rtt_ms(v["rtt"]) for a, v in rows.items()}
    r.check("delays eu 150 / us 60 / ap 5 ms: lowest RTT (ap 127.0.0.33) wins", ok, f"{got}; rtts {rtts}")
    log(f"   .. rtts {rtts}")
    web["eu"].delay, web["ap"].delay = 0.005, 0.150
    ok, got, secs = poll(answer, lambda x: x == [addrs["eu"]], 8)
    rows = health_rows(ctx, sock)
    rtts = {a: rtt_ms(v["rtt"]) for a, v in rows.items()}
    r.check("delays swapped (eu 5 / ap 150 ms): the answer follows to eu 127.0.0.31", ok,
            f"{got} after {secs:.1f}s; rtts {rtts}")
    log(f"   .. followed after {secs:.2f}s, rtts {rtts}")
    web["eu"].stop()
    ok, got, secs = poll(answer, lambda x: x == [addrs["us"]], HEALTH_WAIT + 2)
    r.check("fastest backend stopped: `up` runs before `latency`, next fastest (us) wins", ok, f"{got} after {secs:.1f}s")
    srv.stop()
    for b in web.values():
        b.stop()


# ---------------------------------------------------------------------------
# weighted


def bulk(addr, msgs, batch=64):
    """Sends dnspython queries over one UDP socket in batches; {id: Reply}."""
    out = {}
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.connect(addr)
    try:
        for i in range(0, len(msgs), batch):
            chunk = msgs[i:i + batch]
            pending = {m.id for m in chunk}
            for attempt in range(3):
                for m in chunk:
                    if m.id in pending:
                        s.send(m.to_wire())
                deadline = time.monotonic() + TIMEOUT
                while pending and time.monotonic() < deadline:
                    s.settimeout(max(0.01, deadline - time.monotonic()))
                    try:
                        w = s.recv(65535)
                    except socket.timeout:
                        break
                    m = dns.message.from_wire(w)
                    if m.id in pending:
                        pending.discard(m.id)
                        out[m.id] = from_message(m)
                if not pending:
                    break
    finally:
        s.close()
    return out


def section_weighted(ctx, zone_file):
    r = ctx.r
    port = pick_port(ctx)
    cfg = os.path.join(ctx.tmp, "weighted.toml")
    text = head_toml(port, "w.sock", None) + zone_toml(zone_file)
    text += service_toml("w.example.com", ["weighted", "first_n"],
                         [("eu", ['{ address = "127.0.0.41", weight = 3 }', '{ address = "127.0.0.42", weight = 1 }'])])
    write(cfg, text)
    srv = start_server(ctx, "weighted", cfg)
    if srv is None:
        return
    addr = ("127.0.0.1", port)
    rnd = random.Random(7871)
    nets = rnd.sample(range(1 << 24), 2000)
    subnets = [f"{n >> 16}.{(n >> 8) & 255}.{n & 255}.0/24" for n in nets]
    msgs = []
    for rep_no in range(2):
        for i, sn in enumerate(subnets):
            m = make_query("w.example.com", "A", sn)
            m.id = rep_no * 2000 + i + 1
            msgs.append(m)
    t0 = time.monotonic()
    replies = bulk(addr, msgs)
    log(f"   .. {len(msgs)} queries in {time.monotonic() - t0:.1f}s")
    r.check("4000 weighted queries answered", len(replies) == 4000, f"{len(replies)} answered")
    first, second = {}, {}
    scopes, counts, bad = set(), {}, []
    for i, sn in enumerate(subnets):
        a, b = replies.get(i + 1), replies.get(2000 + i + 1)
        if a is None or b is None:
            continue
        first[sn], second[sn] = a.addrs(), b.addrs()
        scopes.add(a.scope())
        if len(a.addrs()) != 1:
            bad.append((sn, a.addrs()))
        else:
            counts[a.addrs()[0]] = counts.get(a.addrs()[0], 0) + 1
    r.check("each weighted answer is one A record", not bad, short(bad))
    total = sum(counts.values())
    share = counts.get("127.0.0.41", 0) / total if total else 0
    log(f"   .. split {counts} -> {share * 100:.1f}% for weight 3")
    r.check("weights 3:1 over 2000 /24s: 75% +- 5 points for 127.0.0.41", abs(share - 0.75) <= 0.05,
            f"{counts} ({share * 100:.1f}%)")
    r.check("only the two endpoints appear", set(counts) <= {"127.0.0.41", "127.0.0.42"}, str(counts))
    diff = [sn for sn in first if first[sn] != second[sn]]
    r.check("the same /24 asked twice gets the same answer", not diff, short(diff))
    r.check("every weighted reply has ECS scope /24", scopes == {24}, str(scopes))
    # the hash prefix: /32 and /25 in the same /24 agree with the /24; /16 -> scope 16
    sn = subnets[0]
    base = sn.rsplit(".", 1)[0]
    for other in (f"{base}.200/32", f"{base}.128/25"):
        rep = ask(addr, "w.example.com", "A", other)
        r.check(f"{other} is in {sn}: same answer, scope 24", rep and rep.addrs() == first[sn] and rep.scope() == 24,
                repr(rep))
    rep = ask(addr, "w.example.com", "A", f"{base.rsplit('.', 1)[0]}.0.0/16")
    r.check("ECS /16: scope 16 (hash over what the client revealed)", rep and rep.scope() == 16, repr(rep))
    rep = ask(addr, "w.example.com", "A")
    r.check("no ECS: answered by source address", rep and rep.rcode == "NOERROR" and len(rep.answer) == 1, repr(rep))
    srv.stop()


# ---------------------------------------------------------------------------
# explain


def explain(ctx, cfg, client, name="www.example.com", rtype="A", down=()):
    argv = [ctx.meridian, "explain", "--config", cfg, "--client", client, name, rtype]
    for d in down:
        argv += ["--down", d]
    return run_tool(argv, cwd=ctx.tmp)


def section_explain(ctx, g):
    r = ctx.r
    cfg = g["cfg"]
    rc, out, err = explain(ctx, cfg, "81.2.69.142/32")
    r.check("explain 81.2.69.142/32: exit 0", rc == 0, out + err)
    r.check("explain names the country GB and continent EU", "country GB" in out and "continent EU" in out, out)
    r.check("explain lists the policy in order: up -> geo -> first_n", "policy: up -> geo -> first_n" in out, out)
    lines = out.splitlines()

    def idx(prefix):
        for i, ln in enumerate(lines):
            if ln.strip().startswith(prefix):
                return i
        return -1
    order = [idx("location:"), idx("geo:"), idx("first_n"), idx("answer:")]
    r.check("explain steps in order: location, geo, first_n, answer", -1 not in order and order == sorted(order),
            f"{order}\n{out}")
    r.check("explain: geo step names the continent rule and region eu", "geo: continent EU -> region eu" in out, out)
    r.check("explain: final answer eu/127.0.0.11 with 'ECS scope /31'",
            re.search(r"answer: eu/127\.0\.0\.11, TTL 20, ECS scope /31", out) is not None, out)
    # explain agrees with the server, case by case
    for subnet in ("175.16.199.0/24", "216.160.83.56/32", "2001:218::/32", "10.1.2.0/24", "89.160.20.112/28"):
        rc, out, err = explain(ctx, cfg, subnet)
        m = re.search(r"answer: \w+/(\S+), TTL \d+, ECS scope /(\d+)", out)
        rep = ask(g["addr"], "www.example.com", "A", subnet)
        ok = m is not None and rep is not None and rep.addrs() == [m.group(1)] and rep.scope() == int(m.group(2))
        r.check(f"explain {subnet} matches the server's answer and scope", ok,
                f"explain: {m.groups() if m else out + err}; server: {rep!r}")
    rc, out, _ = explain(ctx, cfg, "175.16.199.0/24")
    r.check("explain CN: 'country CN -> region eu'", "geo: country CN -> region eu" in out, out)
    rc, out, _ = explain(ctx, cfg, "216.160.83.56/32")
    r.check("explain US-WA: 'subdivision US-WA -> region ap'", "geo: subdivision US-WA -> region ap" in out, out)
    rc, out, _ = explain(ctx, cfg, "10.1.2.0/24")
    r.check("explain unmapped: 'not in the database' and 'default'", "not in the database" in out
            and "geo: default -> region us" in out, out)
    rc, out, _ = explain(ctx, cfg, "81.2.69.142")
    r.check("explain without a prefix: no-ECS note", "no ECS" in out, out)
    rc, out, _ = explain(ctx, cfg, "81.2.69.142/32", "near.example.com")
    r.check("explain nearest: 'nearest: region eu at N km'", re.search(r"nearest: region eu at \d+ km", out) is not None,
            out)
    rc, out, _ = explain(ctx, cfg, "81.2.69.142/32", "www.example.com", "AAAA")
    r.check("explain AAAA: candidates are the IPv6 endpoints, answer eu/::11", "answer: eu/::11" in out, out)
    rc, out, _ = explain(ctx, cfg, "81.2.69.142/32", "ns1.example.com")
    r.check("explain a name that is not a service: says so", rc == 0 and "not a steered service" in out, out)
    rc, out, err = explain(ctx, cfg, "not-an-ip/24")
    r.check("explain with a bad --client: exit 2", rc == 2, out + err)
    hcfg = getattr(ctx, "health_cfg", None)
    if hcfg and os.path.exists(hcfg):
        rc, out, err = explain(ctx, hcfg, "81.2.69.142/32", down=["127.0.0.11"])
        r.check("explain --down 127.0.0.11 (health config): answer us/127.0.0.12",
                re.search(r"answer: us/127\.0\.0\.12,", out) is not None, out + err)
        r.check("explain --down: the `up` step is shown (what it removed)",
                any(ln.strip().startswith("up") for ln in out.splitlines()[2:]),
                "no line for the `up` filter; the trace goes from candidates to geo without saying eu/127.0.0.11 "
                "was removed as down:\n" + out)
        rc, out, err = explain(ctx, hcfg, "81.2.69.142/32", "servfail.example.com",
                               down=["127.0.0.21", "127.0.0.22"])
        r.check("explain all down with servfail: 'answering SERVFAIL', exit 1", rc == 1 and "SERVFAIL" in out,
                f"rc={rc}\n{out}{err}")
    else:
        r.skip("explain --down", "health section did not run")


# ---------------------------------------------------------------------------
# meridian check


def section_check(ctx, g):
    r = ctx.r
    rc, out, err = run_tool([ctx.meridian, "check", "--config", g["cfg"]], cwd=ctx.tmp)
    r.check("meridian check on the geo config: exit 0, steering OK", rc == 0 and "steering:" in out and "OK" in out,
            out + err)
    base = open(g["cfg"]).read()
    variants = {
        "unknown region in a pool": (base.replace('region = "ap"\nendpoints = ["127.0.0.73"]',
                                                  'region = "mars"\nendpoints = ["127.0.0.73"]'), "unknown region 'mars'"),
        "unknown region in the geo map": (base.replace('"SE" = ["ap"]', '"SE" = ["atlantis"]'), "unknown region 'atlantis'"),
        "unknown check": (base.replace('policy = ["first_n"]\nfirst_n = 2\n', 'policy = ["first_n"]\nfirst_n = 2\n'
                                       'check = "nope"\n', 1), "unknown check 'nope'"),
        "unknown policy filter": (base.replace('["nearest", "first_n"]', '["nearest", "fastest"]'), "fastest"),
        "service outside every zone": (base.replace('name = "near.example.com"', 'name = "near.example.org"'),
                                       "not inside any served zone"),
        "bad when_all_down": (base.replace('name = "near.example.com"', 'name = "near.example.com"\nwhen_all_down = "panic"'),
                              "when_all_down"),
        "bad endpoint address": (base.replace('"127.0.0.73"', '"127.0.0.300"'), "not an IP address"),
        "first_n = 0": (base.replace("first_n = 2", "first_n = 0", 1), "first_n"),
        "unknown [[service]] key": (base.replace('name = "near.example.com"', 'name = "near.example.com"\nspeed = 3'),
                                    "unknown key"),
        "bad ecs_trusted CIDR": (base.replace('database = "geo.mmdb"', 'database = "geo.mmdb"\necs_trusted = ["10.0.0.0/33"]'),
                                 "ecs_trusted"),
    }
    for label, (text, want) in variants.items():
        if text == base:
            r.check(f"check variant '{label}' could be built", False, "replacement did not apply")
            continue
        path = os.path.join(ctx.tmp, "check-bad.toml")
        write(path, text)
        rc, out, err = run_tool([ctx.meridian, "check", "--config", path], cwd=ctx.tmp)
        r.check(f"meridian check, {label}: exit 1 mentioning {want!r} and the file",
                rc == 1 and want in err and "check-bad.toml" in (out + err), f"rc={rc}\n{out}{err}")
    # unknown codes and malformed keys load, with a warning naming the file and line
    text = base.replace('"SE" = ["ap"]', '"SE" = ["ap"], "UK" = ["eu"]', 1)
    text = text.replace('"US-WA" = ["ap"]', '"US-WA" = ["ap"], "USCA" = ["ap"]', 1)
    lines = text.split("\n")
    line_uk = next((i + 1 for i, l in enumerate(lines) if '"UK" = ["eu"]' in l), None)
    line_sub = next((i + 1 for i, l in enumerate(lines) if '"USCA" = ["ap"]' in l), None)
    path = os.path.join(ctx.tmp, "check-warn.toml")
    write(path, text)
    rc, out, err = run_tool([ctx.meridian, "check", "--config", path], cwd=ctx.tmp)
    r.check("meridian check, country 'UK': exit 0 with a warning at its file:line",
            rc == 0 and line_uk and f"warning: {path}:{line_uk}: service.geo.country.UK" in err, f"rc={rc}\n{out}{err}")
    r.check("meridian check, subdivision 'USCA': warned at its file:line as not a subdivision key",
            line_sub and f"warning: {path}:{line_sub}: service.geo.subdivision.USCA" in err, f"rc={rc}\n{out}{err}")
    rc, out, err = explain(ctx, path, "81.2.69.142/32")
    r.check("meridian explain on that config: the same warning for country 'UK' on stderr",
            rc == 0 and line_uk and f"warning: {path}:{line_uk}: service.geo.country.UK" in err, f"rc={rc}\n{out}{err}")
    # named [lists]: the hier service written with list names answers as with the arrays
    path = os.path.join(ctx.tmp, "check-lists.toml")
    write(path, geo_config(ctx, g["port"], g.get("v6port"), named_lists=True))
    rc, out, err = run_tool([ctx.meridian, "check", "--config", path], cwd=ctx.tmp)
    r.check("meridian check with [lists] and list names in a geo map: exit 0, no warning",
            rc == 0 and "warning" not in err, f"rc={rc}\n{out}{err}")
    for client in ("81.2.69.142/32", "89.160.20.112/28", "214.78.120.0/24", "2.125.160.216/32"):
        rec, _ = city_lookup(ctx, client)
        region, why = map_expect(rec, HIER_MAP_NAMED, LISTS)
        rc, out, err = explain(ctx, path, client, "hier.example.com")
        r.check(f"explain hier {client} with named lists: {why} -> region {region}",
                rc == 0 and f"geo: {why} -> region {region}" in out,
                f"rc={rc}\n{out}{err}")
    # a named list that does not exist
    path = os.path.join(ctx.tmp, "check-bad.toml")
    text = base.replace('"SE" = ["ap"]', '"SE" = "asia-first"', 1)
    line = next((i + 1 for i, l in enumerate(text.split("\n")) if '"SE" = "asia-first"' in l), None)
    write(path, text)
    rc, out, err = run_tool([ctx.meridian, "check", "--config", path], cwd=ctx.tmp)
    r.check("meridian check, unknown list name: exit 1 with file:line",
            rc == 1 and f"{path}:{line}: service.geo.country.SE: unknown list 'asia-first'" in err,
            f"rc={rc}\n{out}{err}")
    for bad in ("invalid-data-record-offset.mmdb", "unexpected-bytes.mmdb"):
        shutil.copyfile(os.path.join(ctx.geoip, "bad-data", bad), os.path.join(ctx.tmp, "bad.mmdb"))
        path = os.path.join(ctx.tmp, "check-bad.toml")
        write(path, base.replace('database = "geo.mmdb"', 'database = "bad.mmdb"'))
        rc, out, err = run_tool([ctx.meridian, "check", "--config", path], cwd=ctx.tmp)
        r.check(f"meridian check with a corrupt GeoIP database ({bad}): exit 1 naming the file",
                rc == 1 and "bad.mmdb" in err, f"rc={rc}\n{out}{err}")
    # a service whose owner is absent from the zone file: refused, or served consistently
    path = os.path.join(ctx.tmp, "check-bad.toml")
    write(path, base + service_toml("ghost.example.com", ["first_n"], [("eu", [q("127.0.0.91")])]))
    rc, out, err = run_tool([ctx.meridian, "check", "--config", path], cwd=ctx.tmp)
    g["ghost_accepted"] = rc == 0


# ---------------------------------------------------------------------------
# reload


def reload_retire(ctx):
    """Issue #7: with two workers, one of them idle, reloads leave no old snapshot behind: status's
    `waiting` returns to 0 (each old zone set freed on the control thread) and `retired` counts them."""
    r = ctx.r
    port = pick_port(ctx)
    cfg = os.path.join(ctx.tmp, "retire.toml")
    write(cfg, head_toml(port, "retire.sock", "geo.mmdb").replace("threads = 1", "threads = 2")
          + zone_toml("example.com.zone")
          + service_toml("www.example.com", ["first_n"], [("eu", [q("127.0.0.11")])]))
    srv2 = start_server(ctx, "retire", cfg)
    if srv2 is None:
        return

    def counts():
        rc, out, _ = ctl(ctx, "retire.sock", "status")
        m = re.search(r"snapshots retired (\d+), waiting (\d+)", out) if rc == 0 else None
        return (int(m.group(1)), int(m.group(2))) if m else None

    before = counts()
    # one client socket: the kernel hashes it to one worker; the other stays idle throughout
    for _ in range(5):
        ask(("127.0.0.1", port), "www.example.com", "A")
        ctl(ctx, "retire.sock", "reload")
    ok, got, secs = poll(counts, lambda x: x is not None and before is not None and x[1] == 0
                         and x[0] >= before[0] + 5, 5)
    r.check("5 reloads with 2 workers (one idle): every old snapshot retired, none waiting",
            ok, f"before {before}, after {got} ({secs:.2f}s)")
    rep = ask(("127.0.0.1", port), "www.example.com", "A")
    r.check("... and the server answers from the newest one", rep is not None and rep.addrs() == ["127.0.0.11"],
            repr(rep))
    srv2.stop()


def reload_probes_kept(ctx):
    """Issue #7: zone parsing runs on the work pool, not on the control loop that runs the health
    probes. While a 300,000-record zone reloads, a tcp check every 100 ms keeps probing its
    backend. Counted, not timed: over reloads adding up to at least 1.5 s, the backend must see at
    least a third of the probes the schedule asks for between each `reload` and its reply (which
    comes once the zone is published). A server that parses on the control loop lets through at
    most the one probe already under way per reload."""
    r = ctx.r
    port = pick_port(ctx)
    bport = pick_port(ctx, ["127.0.0.51"], udp=False)
    backend = TcpBackend(ctx, "127.0.0.51", bport)
    backend.start()
    zone = os.path.join(ctx.tmp, "probes.example.com.zone")
    write(zone, zone_text(["www"]))
    big = os.path.join(ctx.tmp, "big.test.zone")
    with open(big, "w") as f:
        f.write("$ORIGIN big.test.\n$TTL 300\n@ IN SOA ns hostmaster 1 3600 600 86400 300\n@ IN NS ns\n"
                "ns IN A 192.0.2.1\n")
        for i in range(150000):
            f.write(f"h{i} IN A 10.{(i >> 16) & 255}.{(i >> 8) & 255}.{i & 255}\nh{i} IN TXT \"probe-{i}\"\n")
    cfg = os.path.join(ctx.tmp, "probes.toml")
    write(cfg, head_toml(port, "probes.sock", None) + zone_toml(zone)
          + f"[[zone]]\nname = \"big.test\"\nfile = \"{big}\"\n\n"
          + f"[[check]]\nname = \"port\"\ntype = \"tcp\"\nport = {bport}\ninterval_ms = 100\n"
            "timeout_ms = 90\nrise = 1\nfall = 3\n\n"
          + service_toml("www.example.com", ["up", "first_n"], [("eu", [q("127.0.0.51")])], check="port"))
    # Loads the 300,000-record zone first: under ASan on a busy 2-core machine that took more than
    # the default 10 s guard (CI run of 2026-12-01 night).
    srv2 = start_server(ctx, "probes", cfg, ready_timeout=120)
    if srv2 is None:
        backend.stop()
        return
    try:
        ok, _, _ = poll(lambda: len(backend.times), lambda n: n >= 3, 10)
        r.check("probes: the 100 ms tcp check reaches its backend", ok, f"{len(backend.times)} probes")
        window, inside, reloads, replies = 0.0, 0, 0, []
        while window < 1.5 and reloads < 8:
            now = time.time() + reloads + 1
            os.utime(big, (now, now))
            t0 = time.monotonic()
            rc, out, err = ctl(ctx, "probes.sock", "reload")
            t1 = time.monotonic()
            replies.append((rc, out.strip()))
            window += t1 - t0
            inside += sum(1 for x in list(backend.times) if t0 < x < t1)
            reloads += 1
        scheduled = window / 0.1
        r.check("reload of a 300k-record zone: each reply 'ok 1 zone(s) loaded'",
                all(rc == 0 and out.startswith("ok 1 zone(s) loaded") for rc, out in replies), str(replies))
        r.check("... and the health check kept probing during the reloads (>= a third of its schedule)",
                inside >= max(3, scheduled / 3),
                f"{inside} probes in {reloads} reload(s) lasting {window:.2f}s together "
                f"(the schedule asks for {scheduled:.0f})")
    finally:
        srv2.stop()
        backend.stop()


def section_reload(ctx, g, srv):
    r, addr, cfg = ctx.r, g["addr"], g["cfg"]
    reload_retire(ctx)
    reload_probes_kept(ctx)
    sock = os.path.join(ctx.tmp, "geo.sock")
    eu = "81.2.69.142/32"

    def www(subnet=eu):
        return ask(addr, "www.example.com", "A", subnet)

    # a service whose owner is not in the zone file (if the configuration accepts it)
    if g.get("ghost_accepted"):
        write(cfg, geo_config(ctx, g["port"], g.get("v6port"))
              + service_toml("ghost.example.com", ["first_n"], [("eu", [q("127.0.0.91")])]))
        rc, out, err = ctl(ctx, sock, "reload")
        rep_a = ask(addr, "ghost.example.com", "A")
        rep_t = ask(addr, "ghost.example.com", "TXT")
        r.check("service without an owner in the zone file (accepted by check): A answered",
                rc == 0 and rep_a and rep_a.addrs() == ["127.0.0.91"], f"{out}{err} {rep_a!r}")
        r.check("... and TXT at that name is NODATA, not NXDOMAIN (the name exists: it has an A)",
                rep_t is not None and rep_t.rcode == "NOERROR", f"{rep_t!r}: `meridian check` accepts the service, "
                "the A query is answered, but other types say the name does not exist")

    # a new pool through SIGHUP
    write(cfg, geo_config(ctx, g["port"], g.get("v6port"), www_eu=("127.0.0.14",)))
    srv.signal(signal.SIGHUP)
    ok, rep, secs = poll(www, lambda x: x is not None and x.addrs() == ["127.0.0.14"], 5)
    r.check("SIGHUP with eu pool 127.0.0.14: EU client gets the new endpoint", ok, repr(rep))
    # a broken [[service]]: reload fails, the old steering answers
    write(cfg, geo_config(ctx, g["port"], g.get("v6port"), www_eu=("127.0.0.15",), broken=True))
    rc, out, err = ctl(ctx, sock, "reload")
    r.check("meridianctl reload with an unknown region: exit 1 with the error",
            rc == 1 and "unknown region 'mars'" in out, f"rc={rc}\n{out}{err}")
    rep = www()
    r.check("after the failed reload the previous steering answers (127.0.0.14, scope /31)",
            rep and rep.addrs() == ["127.0.0.14"] and rep.scope() == 31, repr(rep))
    rc, out, _ = ctl(ctx, sock, "status")
    r.check("status reports the steering error", "error steering" in out and "mars" in out, out)
    r.check("server log has the steering error", "unknown region 'mars'" in srv.log_text(), srv.tail())
    write(cfg, geo_config(ctx, g["port"], g.get("v6port"), www_eu=("127.0.0.14",)))
    rc, out, err = ctl(ctx, sock, "reload")
    r.check("fixed config: meridianctl reload exit 0", rc == 0, out + err)
    # a geo map key that never matches: the reload works and the server logs the warning
    write(cfg, geo_config(ctx, g["port"], g.get("v6port"), www_eu=("127.0.0.14",)).replace(
        '"SE" = ["ap"]', '"SE" = ["ap"], "UK" = ["eu"]', 1))
    rc, out, err = ctl(ctx, sock, "reload")
    r.check("reload with geo.country.UK: exit 0, and the log warns with file:line",
            rc == 0 and re.search(r"steering: .*geo\.toml:\d+: service\.geo\.country\.UK", srv.log_text()),
            f"rc={rc} {out}{err}\n{srv.tail()}")
    write(cfg, geo_config(ctx, g["port"], g.get("v6port"), www_eu=("127.0.0.14",)))
    rc, out, err = ctl(ctx, sock, "reload")

    # a corrupt GeoIP database, replaced atomically (as geoipupdate does): the old one keeps serving
    geo = os.path.join(ctx.tmp, "geo.mmdb")
    good = os.path.join(ctx.tmp, "geo-good.mmdb")
    shutil.copyfile(geo, good)
    ref = {sn: ask(addr, "www.example.com", "A", sn) for sn in (eu, "2001:218::/32", "175.16.199.0/24")}
    errors_before = srv.log_text().count("geoip:") - srv.log_text().count("geoip: loaded")
    tmpf = geo + ".new"
    shutil.copyfile(os.path.join(ctx.geoip, "bad-data", "invalid-data-record-offset.mmdb"), tmpf)
    os.replace(tmpf, geo)

    def geo_errors():
        t = srv.log_text()
        return t.count("geoip:") - t.count("geoip: loaded")
    ok, _, secs = poll(geo_errors, lambda n: n > errors_before, 8, step=0.2)
    r.check("corrupt GeoIP file (atomic replace): error logged within 8 s (5 s re-check)", ok, srv.tail())
    log(f"   .. geoip error logged after {secs:.1f}s")
    for sn, before in ref.items():
        rep = ask(addr, "www.example.com", "A", sn)
        r.check(f"after the corrupt file: {sn} unchanged ({before.addrs() if before else None}, "
                f"scope {before.scope() if before else None})",
                rep is not None and before is not None and (rep.addrs(), rep.scope()) == (before.addrs(), before.scope()),
                f"{rep!r} vs {before!r}")
    rc, out, _ = ctl(ctx, sock, "status")
    r.check("status reports the GeoIP error", "error geoip" in out, out)
    tmpf = geo + ".new"
    shutil.copyfile(good, tmpf)
    os.replace(tmpf, geo)
    loaded_before = srv.log_text().count("geoip: loaded")
    rc, out, err = ctl(ctx, sock, "reload")
    r.check("good file back + reload: 'geoip: loaded' again", srv.log_text().count("geoip: loaded") > loaded_before,
            srv.tail())
    rep = www()
    r.check("good file back: EU -> 127.0.0.14, scope /31", rep and rep.addrs() == ["127.0.0.14"] and rep.scope() == 31,
            repr(rep))

    # the same corrupt file copied over the configured path in place (cp): the old database must still serve
    errors_before = geo_errors()
    shutil.copyfile(os.path.join(ctx.geoip, "bad-data", "invalid-data-record-offset.mmdb"), geo)
    rep = www()
    r.check("corrupt file copied in place (same inode): answers unchanged right away",
            rep is not None and (rep.addrs(), rep.scope()) == (["127.0.0.14"], 31),
            f"{rep!r}: the running database is mmap()ed from the same file, so overwriting it in place changes "
            f"lookups before (and regardless of) the re-check that refuses the file")
    ok, _, secs = poll(geo_errors, lambda n: n > errors_before, 8, step=0.2)
    r.check("corrupt file in place: error logged within 8 s", ok, srv.tail())
    alive = srv.alive()
    r.check("corrupt file in place: server still running", alive, srv.tail())
    if alive:
        got = {sn: ask(addr, "www.example.com", "A", sn) for sn in ref}
        same = all(got[sn] is not None and ref[sn] is not None and got[sn].addrs() == (["127.0.0.14"] if sn == eu
                   else ref[sn].addrs()) and got[sn].scope() == ref[sn].scope() for sn in ref)
        r.check("corrupt file in place: answers unchanged after the re-check ('keeping' the old database)", same,
                short({sn: repr(v) for sn, v in got.items()}, 800))
    shutil.copyfile(good, geo + ".new")
    os.replace(geo + ".new", geo)

    # cp truncates the destination before writing: a query in between must not kill the server
    # (own server and database copy, so that the geo server's checks stay independent)
    port = pick_port(ctx)
    tcfg = os.path.join(ctx.tmp, "trunc.toml")
    tdb = os.path.join(ctx.tmp, "trunc.mmdb")
    shutil.copyfile(good, tdb)
    write(tcfg, geo_config(ctx, port, None).replace('database = "geo.mmdb"', 'database = "trunc.mmdb"')
          .replace('socket = "geo.sock"', 'socket = "trunc.sock"'))
    tsrv = start_server(ctx, "trunc", tcfg)
    if tsrv is not None:
        taddr = ("127.0.0.1", port)
        rep = ask(taddr, "www.example.com", "A", eu)
        r.check("trunc server: EU -> eu", rep and rep.addrs() == [WWW_V4["eu"]], repr(rep))
        with open(tdb, "wb"):
            pass  # truncated to 0 octets in place, as `cp new.mmdb trunc.mmdb` does first
        ask(taddr, "www.example.com", "A", eu)
        time.sleep(0.3)
        rc = tsrv.proc.poll()
        r.check("GeoIP file truncated in place (as cp does before writing): the server survives a query",
                rc is None, f"meridian exited with {rc} ({'SIGBUS' if rc == -signal.SIGBUS else 'exit/signal'}): "
                "lookups read the mmap()ed file, and pages past the new end of file fault")
        shutil.copyfile(good, tdb + ".new")
        os.replace(tdb + ".new", tdb)


# ---------------------------------------------------------------------------


def main():
    args = parse_args(__doc__, SECTIONS, extra=[
        (("--geoip",), dict(required=True, help="directory of the MaxMind test databases (../shared/geoip)"))])
    if args is None:
        return 2
    city = os.path.join(args.geoip, "GeoIP2-City-Test.mmdb")
    if not os.path.exists(city):
        print(f"missing {city}", file=sys.stderr)
        return 2
    args.geoip = os.path.abspath(args.geoip)

    t_start = time.monotonic()
    r = Results(args.verbose)
    tmp = make_tmp("meridian-steer-")
    ctx = Ctx(args, tmp, r)
    sections = args.only or SECTIONS
    require_tools(r, ("dig",))  # a missing dig is a failed check, not a skip
    try:
        geo_db = os.path.join(tmp, "geo.mmdb")
        shutil.copyfile(city, geo_db)
        os.chmod(geo_db, 0o644)
        zone_file = os.path.join(tmp, "example.com.zone")
        owners = GEO_OWNERS + ["open", "nodata", "servfail", "fallback", "lat", "w", "lab"]
        write(zone_file, zone_text(owners))
        g = None
        geo_srv = None
        if any(s in sections for s in ("geo", "answers", "explain", "check", "reload")):
            port = pick_port(ctx)
            v6port = pick_port(ctx, ("::1",)) if ctx.have_v6 else None
            g = {"port": port, "v6port": v6port, "addr": ("127.0.0.1", port),
                 "v6addr": ("::1", v6port) if v6port else None, "cfg": os.path.join(tmp, "geo.toml")}
            write(g["cfg"], geo_config(ctx, port, v6port))
            r.begin("startup")
            geo_srv = start_server(ctx, "geo", g["cfg"])
        for name in SECTIONS:
            if name not in sections:
                continue
            r.begin(name)
            uses_geo = name in ("geo", "answers", "reload")
            if uses_geo and geo_srv is None:
                r.check(f"{name}: geo server running", False, "did not start")
                continue
            try:
                if name == "geo":
                    section_geo(ctx, g)
                elif name == "answers":
                    section_answers(ctx, g)
                elif name == "chains":
                    section_chains(ctx, geo_db)
                elif name == "trust":
                    section_trust(ctx, geo_db, zone_file)
                elif name == "health":
                    section_health(ctx, geo_db, zone_file)
                elif name == "overrides":
                    section_overrides(ctx, zone_file)
                elif name == "latency":
                    section_latency(ctx, zone_file)
                elif name == "weighted":
                    section_weighted(ctx, zone_file)
                elif name == "explain":
                    section_explain(ctx, g)
                elif name == "check":
                    section_check(ctx, g)
                elif name == "reload":
                    section_reload(ctx, g, geo_srv)
            except Exception:  # noqa: BLE001
                r.check(f"{name}: ran to completion", False, traceback.format_exc())
            if uses_geo and not r.check(f"{name}: geo server still running", geo_srv.alive(), geo_srv.tail()):
                geo_srv = None
        r.begin("shutdown")
        for srv in ctx.servers:
            if srv.alive():
                srv.stop()
                rc = srv.proc.returncode   # the raw status: -9 if it had to be killed
                r.check(f"{srv.label}: SIGTERM -> exit 0", rc == 0, f"rc={rc}")
            check_log_clean(r, srv.label, srv.log_text())
    finally:
        stop_all(ctx.servers)
        for b in ctx.backends:
            try:
                b.stop()
            except Exception:  # noqa: BLE001
                pass
        drop_tmp(tmp, args.keep, r)

    return r.finish(t_start)


if __name__ == "__main__":
    sys.exit(main())
