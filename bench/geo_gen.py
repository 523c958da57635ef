#!/usr/bin/python3
"""Generate the data for the geo benchmark: one synthetic network map, shared by every server.

Writes into OUTDIR (default: bench/data/geo):
  networks.csv        -- the map: network,region,country,continent,latitude,longitude,asn
                         (random non-overlapping IPv4 /20s and /24s, fixed seed)
  geo.mmdb            -- built from networks.csv by `meridian mmdb build` (GeoIP2 layout plus
                         "meridian_region"); Meridian, gdnsd and PowerDNS all read this file
  bench.test.zone     -- Meridian's zone: SOA, NS (+glue), static.bench.test A, geo.bench.test A (fallback)
  meridian-geo.toml   -- Meridian's configuration (zone, [geoip], regions, service geo.bench.test)
  gdnsd-zone          -- gdnsd's zone (same records, geo.bench.test as DYNA geoip!geo)
  pdns-zones.yaml     -- PowerDNS geoip backend zone (same records, service by %cn)
  geo.bin             -- dnsperf -B query file: geo.bench.test A, each query with its own ECS option
  static.bin          -- the same queries (same ECS options) for static.bench.test A
  sample.txt          -- verification sample: "subnet expected-address region" per line

The mapping is decided by continent for every server, from the single table CONTINENT_REGION
below: EU -> eu, NA -> us, AS and OC -> ap, SA -> sa; an address outside the map gets `us`
(DEFAULT_REGION).  Every network's region column agrees with its continent, so Meridian's own
"meridian_region" rule and the continent rule give the same answer.

Everything is deterministic for a given --seed.  Standard library only (plus the Meridian binary
for the .mmdb).
"""

import argparse
import ipaddress
import os
import random
import struct
import subprocess
import sys

ZONE = "bench.test"
GEO_NAME = "geo.bench.test"
STATIC_NAME = "static.bench.test"
STATIC_ADDR = "192.0.2.100"
TTL = 30

# Region -> the one address its endpoint answers with, in every server's configuration.
REGION_ADDR = {"eu": "192.0.2.1", "us": "192.0.2.2", "ap": "192.0.2.3", "sa": "192.0.2.4"}
REGION_COORDS = {"eu": (50.11, 8.68), "us": (39.04, -77.49), "ap": (1.35, 103.82), "sa": (-23.55, -46.63)}
# Continent code (GeoIP2 continent.code) -> region.  The single source of the mapping.
CONTINENT_REGION = {"EU": "eu", "NA": "us", "AS": "ap", "OC": "ap", "SA": "sa"}
DEFAULT_REGION = "us"       # for addresses the map doesn't cover
REGION_ORDER = ["us", "eu", "ap", "sa"]  # gdnsd's datacenter list: its first entry is its default

# Countries per continent, with a rough centre and a share of the networks.
COUNTRIES = [
    # (continent, country, lat, lon, weight)
    ("EU", "DE", 51.2, 10.4, 8), ("EU", "FR", 46.6, 2.2, 6), ("EU", "GB", 54.0, -2.0, 6),
    ("EU", "NL", 52.1, 5.3, 4), ("EU", "SE", 62.0, 15.0, 2), ("EU", "IT", 42.8, 12.6, 3),
    ("EU", "ES", 40.2, -3.7, 3), ("EU", "PL", 52.1, 19.4, 3),
    ("NA", "US", 39.8, -98.6, 28), ("NA", "CA", 56.1, -106.3, 5), ("NA", "MX", 23.6, -102.5, 2),
    ("AS", "JP", 36.2, 138.3, 7), ("AS", "SG", 1.35, 103.8, 3), ("AS", "IN", 21.0, 78.0, 5),
    ("AS", "KR", 36.5, 127.9, 3), ("AS", "CN", 35.9, 104.2, 4),
    ("OC", "AU", -25.3, 133.8, 3), ("OC", "NZ", -41.0, 174.0, 1),
    ("SA", "BR", -14.2, -51.9, 6), ("SA", "AR", -38.4, -63.6, 2), ("SA", "CL", -35.7, -71.5, 1),
    ("SA", "CO", 4.6, -74.3, 1),
]

# Unicast IPv4 /8s the generator draws from (no 0, 10, 100, 127, 169, 172, 192, 198, 203, 224+):
# the loopback resolver (127.0.0.1) and the documentation ranges stay outside the map.
FIRST_OCTETS = [o for o in range(1, 224) if o not in (10, 100, 127, 169, 172, 192, 198, 203)]
# Addresses the map never covers (to check every server's default answer).
UNMAPPED = ["198.18.%d.0/24" % i for i in range(0, 250, 25)]


def region_of(continent):
    return CONTINENT_REGION.get(continent, DEFAULT_REGION)


def make_networks(rng, n20, n24_slots, per_slot_max):
    """Non-overlapping networks: n20 whole /20s, plus 1..per_slot_max /24s in each of n24_slots
    other /20 slots.  Returns sorted [(network_int, prefix, continent, country, lat, lon, asn)]."""
    slots_per_octet = 1 << 12  # /20s in a /8
    total_slots = len(FIRST_OCTETS) * slots_per_octet
    slots = rng.sample(range(total_slots), n20 + n24_slots)
    weights = [c[4] for c in COUNTRIES]
    nets = []

    def slot_base(s):
        return (FIRST_OCTETS[s // slots_per_octet] << 24) | ((s % slots_per_octet) << 12)

    def record(base, prefix):
        cont, cc, lat, lon, _ = rng.choices(COUNTRIES, weights)[0]
        lat = max(-89.9, min(89.9, lat + rng.uniform(-4, 4)))
        lon = max(-179.9, min(179.9, lon + rng.uniform(-6, 6)))
        return (base, prefix, cont, cc, round(lat, 4), round(lon, 4), rng.randrange(1, 400000))

    for s in slots[:n20]:
        nets.append(record(slot_base(s), 20))
    for s in slots[n20:]:
        base = slot_base(s)
        for sub in rng.sample(range(16), rng.randint(1, per_slot_max)):
            nets.append(record(base | (sub << 8), 24))
    nets.sort()
    return nets


def write_csv(path, nets):
    with open(path, "w") as f:
        f.write("network,region,country,continent,latitude,longitude,asn\n")
        out = []
        for base, prefix, cont, cc, lat, lon, asn in nets:
            out.append("%s/%d,%s,%s,%s,%s,%s,AS%d\n" % (ipaddress.IPv4Address(base), prefix,
                                                         region_of(cont), cc, cont, lat, lon, asn))
        f.write("".join(out))


def build_mmdb(meridian, csv_path, mmdb_path):
    r = subprocess.run([meridian, "mmdb", "build", csv_path, mmdb_path], capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError("meridian mmdb build failed (%d): %s%s" % (r.returncode, r.stdout, r.stderr))
    return r.stdout.strip()


# --------------------------------------------------------------------------- server configs

SOA = "ns1.%s. hostmaster.%s. 2024010101 7200 3600 1209600 3600" % (ZONE, ZONE)


def write_meridian(outdir, mmdb):
    """Zone file and configuration; the listen address and threads come from the command line."""
    with open(os.path.join(outdir, "bench.test.zone"), "w") as f:
        f.write("$ORIGIN %s.\n$TTL 3600\n" % ZONE)
        f.write("@ IN SOA %s\n@ IN NS ns1.%s.\n@ IN NS ns2.%s.\n" % (SOA, ZONE, ZONE))
        f.write("ns1 IN A 127.0.0.1\nns2 IN A 127.0.0.2\n")
        f.write("static %d IN A %s\n" % (TTL, STATIC_ADDR))
        # The steered name's static RRset: its fallback, and what secondaries serve.
        f.write("geo %d IN A %s\n" % (TTL, STATIC_ADDR))
    lines = ["# Generated by bench/geo_gen.py.  Run with --listen ... --threads 1.",
             "[[zone]]", 'name = "%s"' % ZONE, 'file = "bench.test.zone"', "",
             "[geoip]", 'database = "%s"' % os.path.basename(mmdb), ""]
    for r in REGION_ORDER:
        lat, lon = REGION_COORDS[r]
        lines += ["[[region]]", 'name = "%s"' % r, "latitude = %s" % lat, "longitude = %s" % lon, ""]
    lines += ["[[service]]", 'name = "%s"' % GEO_NAME, "ttl = %d" % TTL, 'policy = ["geo", "first_n"]',
              "first_n = 1", "", "[service.geo]", 'default = ["%s"]' % DEFAULT_REGION,
              "continent = { %s }" % ", ".join('%s = ["%s"]' % (c, r) for c, r in CONTINENT_REGION.items()),
              ""]
    for r in REGION_ORDER:
        lines += ["[[service.pool]]", 'region = "%s"' % r, 'endpoints = ["%s"]' % REGION_ADDR[r], ""]
    with open(os.path.join(outdir, "meridian-geo.toml"), "w") as f:
        f.write("\n".join(lines))


def write_gdnsd_zone(outdir):
    with open(os.path.join(outdir, "gdnsd-zone"), "w") as f:
        f.write("$TTL 3600\n@ SOA %s\n@ NS ns1\n@ NS ns2\nns1 A 127.0.0.1\nns2 A 127.0.0.2\n" % SOA)
        f.write("static %d A %s\n" % (TTL, STATIC_ADDR))
        f.write("geo %d DYNA geoip!geo\n" % TTL)


def gdnsd_plugin_config(mmdb):
    """The `plugins => { geoip => ... }` stanza: a continent map over the same .mmdb.  The first
    datacenter of `datacenters` is the default for unmapped addresses."""
    cmap = ", ".join("%s => [ %s ]" % (c, r) for c, r in CONTINENT_REGION.items())
    dcmap = ", ".join("%s => %s" % (r, REGION_ADDR[r]) for r in REGION_ORDER)
    assert REGION_ORDER[0] == DEFAULT_REGION
    return """plugins => {
  geoip => {
    maps => {
      geomap => {
        geoip2_db => %s
        datacenters => [ %s ]
        map => { %s }
      }
    }
    resources => {
      geo => { map => geomap, dcmap => { %s } }
    }
  }
}
""" % (mmdb, ", ".join(REGION_ORDER), cmap, dcmap)


def write_pdns_zones(outdir):
    """PowerDNS geoip backend: geo.bench.test is a service expanding to %cn.geo.bench.test (the
    lower-cased continent code); those names carry the region addresses.  `unknown` is what %cn
    expands to when the address isn't in the database."""
    lines = ["domains:", "- domain: %s" % ZONE, "  ttl: %d" % TTL, "  records:",
             "    %s:" % ZONE, "      - soa: %s" % SOA.replace(". ", " ").rstrip("."),
             "      - ns: ns1.%s" % ZONE, "      - ns: ns2.%s" % ZONE,
             "    ns1.%s:" % ZONE, "      - a: 127.0.0.1", "    ns2.%s:" % ZONE, "      - a: 127.0.0.2",
             "    %s:" % STATIC_NAME, "      - a: %s" % STATIC_ADDR]
    for c, r in list(CONTINENT_REGION.items()) + [("unknown", DEFAULT_REGION)]:
        lines += ["    %s.%s:" % (c.lower(), GEO_NAME), "      - a: %s" % REGION_ADDR[r]]
    lines += ["  services:", "    %s: '%%cn.%s'" % (GEO_NAME, GEO_NAME), ""]
    with open(os.path.join(outdir, "pdns-zones.yaml"), "w") as f:
        f.write("\n".join(lines))


# --------------------------------------------------------------------------- queries

def encode_name(name):
    out = b""
    for label in name.rstrip(".").split("."):
        out += bytes([len(label)]) + label.encode()
    return out + b"\x00"


def ecs_option(address, prefix):
    """EDNS Client Subnet option (RFC 7871) for an IPv4 source: address truncated to prefix bits."""
    nbytes = (prefix + 7) // 8
    addr = ipaddress.IPv4Address(address).packed[:nbytes]
    body = struct.pack(">HBB", 1, prefix, 0) + addr
    return struct.pack(">HH", 8, len(body)) + body


def query(qname, qtype=1, ecs=None, qid=0, payload=1232):
    """A DNS query (RD clear) with an OPT record, and the ECS option when ecs=(address, prefix)."""
    msg = struct.pack(">HHHHHH", qid, 0x0000, 1, 0, 0, 1)
    msg += encode_name(qname) + struct.pack(">HH", qtype, 1)
    opt = ecs_option(*ecs) if ecs else b""
    msg += b"\x00" + struct.pack(">HHIH", 41, payload, 0, len(opt)) + opt
    return msg


def client_subnet(rng, net):
    """A /24 client subnet inside the network (the network itself for a /24)."""
    base, prefix = net[0], net[1]
    if prefix == 24:
        return base
    return base | (rng.randrange(1 << (24 - prefix)) << 8)


def write_queries(outdir, rng, nets, count):
    subnets = [client_subnet(rng, nets[rng.randrange(len(nets))]) for _ in range(count)]
    for fname, qname in (("geo.bin", GEO_NAME), ("static.bin", STATIC_NAME)):
        with open(os.path.join(outdir, fname), "wb") as f:
            out = []
            for s in subnets:
                q = query(qname, ecs=(str(ipaddress.IPv4Address(s)), 24))
                out.append(struct.pack(">H", len(q)) + q)
            f.write(b"".join(out))


def write_sample(outdir, rng, nets, count):
    lines = []
    for net in rng.sample(nets, count):
        s = client_subnet(rng, net)
        r = region_of(net[2])
        lines.append("%s/24 %s %s\n" % (ipaddress.IPv4Address(s), REGION_ADDR[r], r))
    for u in UNMAPPED:
        lines.append("%s %s %s\n" % (u, REGION_ADDR[DEFAULT_REGION], DEFAULT_REGION + "(default)"))
    with open(os.path.join(outdir, "sample.txt"), "w") as f:
        f.write("".join(lines))


def read_sample(outdir):
    out = []
    with open(os.path.join(outdir, "sample.txt")) as f:
        for line in f:
            subnet, addr, region = line.split()
            out.append((subnet, addr, region))
    return out


FILES = ("networks.csv", "geo.mmdb", "bench.test.zone", "meridian-geo.toml", "gdnsd-zone",
         "pdns-zones.yaml", "geo.bin", "static.bin", "sample.txt")


def generate(outdir, meridian, n20=25000, n24_slots=60000, per_slot_max=5, queries=200000,
             sample=200, seed=1):
    """Returns the number of networks in the map."""
    os.makedirs(outdir, exist_ok=True)
    rng = random.Random(seed)
    nets = make_networks(rng, n20, n24_slots, per_slot_max)
    csv_path = os.path.join(outdir, "networks.csv")
    write_csv(csv_path, nets)
    mmdb = os.path.join(outdir, "geo.mmdb")
    build_mmdb(meridian, csv_path, mmdb)
    write_meridian(outdir, mmdb)
    write_gdnsd_zone(outdir)
    write_pdns_zones(outdir)
    write_queries(outdir, random.Random(seed + 1), nets, queries)
    write_sample(outdir, random.Random(seed + 2), nets, sample)
    return len(nets)


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=os.path.join(here, "data", "geo"), help="output directory")
    ap.add_argument("--meridian", default=os.path.join(os.path.dirname(here), "build", "meridian"),
                    help="Meridian binary, for `meridian mmdb build` (default: build/meridian)")
    ap.add_argument("--queries", type=int, default=200000, help="queries per query file")
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    if not os.access(args.meridian, os.X_OK):
        sys.exit("geo_gen: %s not found (build Meridian, or pass --meridian PATH)" % args.meridian)
    n = generate(args.out, args.meridian, queries=args.queries, seed=args.seed)
    print("geo_gen: %d networks; wrote %s/{%s}" % (n, args.out, ",".join(FILES)))


if __name__ == "__main__":
    main()
