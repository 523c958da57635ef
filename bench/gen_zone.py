#!/usr/bin/python3
"""Generate the benchmark zone and dnsperf query files.

Writes into OUTDIR (default: bench/data):
  bench.test.zone  -- zone `bench.test.` with SOA, NS (+glue) and N hosts
  hits.txt         -- queries for existing name+type pairs (all NOERROR with answers)
  mix.txt          -- 70% hits, 20% NXDOMAIN, 10% NODATA (NOERROR, empty answer)

Zone content for host i (i = 0 .. N-1), name host{i}.bench.test.:
  A     always
  AAAA  when i % 2 == 0
  MX    when i % 10 == 0   (points at mail.bench.test.)
  TXT   when i % 7 == 0

Everything is deterministic for a given --seed, so runs are comparable.
Standard library only.
"""

import argparse
import os
import random
import sys

ORIGIN = "bench.test."


def host_types(i):
    types = ["A"]
    if i % 2 == 0:
        types.append("AAAA")
    if i % 10 == 0:
        types.append("MX")
    if i % 7 == 0:
        types.append("TXT")
    return types


def nodata_type(i):
    """A type host{i} does not have (so the answer is NODATA)."""
    if i % 2 == 1:
        return "AAAA"
    if i % 10 != 0:
        return "MX"
    if i % 7 != 0:
        return "TXT"
    return "SRV"


def write_zone(path, n):
    with open(path, "w") as f:
        f.write("$ORIGIN %s\n$TTL 3600\n" % ORIGIN)
        f.write("@ IN SOA ns1.%s hostmaster.%s 2024010101 7200 3600 1209600 3600\n"
                % (ORIGIN, ORIGIN))
        f.write("@ IN NS ns1.%s\n" % ORIGIN)
        f.write("@ IN NS ns2.%s\n" % ORIGIN)
        f.write("ns1 IN A 127.0.0.1\n")
        f.write("ns2 IN A 127.0.0.2\n")
        f.write("mail IN A 192.0.2.25\n")
        out = []
        for i in range(n):
            name = "host%d" % i
            out.append("%s IN A 10.%d.%d.%d\n" % (name, (i >> 16) & 255, (i >> 8) & 255, i & 255))
            if i % 2 == 0:
                out.append("%s IN AAAA 2001:db8::%x:%x\n" % (name, (i >> 16) & 0xffff, i & 0xffff))
            if i % 10 == 0:
                out.append("%s IN MX 10 mail.%s\n" % (name, ORIGIN))
            if i % 7 == 0:
                out.append('%s IN TXT "v=bench1 host=%d"\n' % (name, i))
            if len(out) >= 10000:
                f.write("".join(out))
                out = []
        f.write("".join(out))


def hit(rng, n):
    i = rng.randrange(n)
    return "host%d.%s %s\n" % (i, ORIGIN, rng.choice(host_types(i)))


def nxdomain(rng, n):
    # Names that do not exist anywhere in the zone (no wildcard, no empty non-terminals).
    i = rng.randrange(n * 10)
    return "nx%d.%s %s\n" % (i, ORIGIN, rng.choice(("A", "A", "AAAA", "MX")))


def nodata(rng, n):
    i = rng.randrange(n)
    return "host%d.%s %s\n" % (i, ORIGIN, nodata_type(i))


def write_queries(path, lines):
    with open(path, "w") as f:
        f.write("".join(lines))


def generate(outdir, names=100000, queries=200000, seed=1):
    os.makedirs(outdir, exist_ok=True)
    write_zone(os.path.join(outdir, "bench.test.zone"), names)

    rng = random.Random(seed)
    hits = [hit(rng, names) for _ in range(queries)]
    rng.shuffle(hits)
    write_queries(os.path.join(outdir, "hits.txt"), hits)

    n_hit = queries * 70 // 100
    n_nx = queries * 20 // 100
    n_nodata = queries - n_hit - n_nx
    mix = ([hit(rng, names) for _ in range(n_hit)]
           + [nxdomain(rng, names) for _ in range(n_nx)]
           + [nodata(rng, names) for _ in range(n_nodata)])
    rng.shuffle(mix)
    write_queries(os.path.join(outdir, "mix.txt"), mix)


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=os.path.join(here, "data"), help="output directory")
    ap.add_argument("--names", type=int, default=100000, help="number of hostN names")
    ap.add_argument("--queries", type=int, default=200000, help="lines per query file")
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    if args.names < 10 or args.queries < 10:
        sys.exit("gen_zone: --names and --queries must be >= 10")
    generate(args.out, args.names, args.queries, args.seed)
    print("gen_zone: wrote %s/{bench.test.zone,hits.txt,mix.txt}" % args.out)


if __name__ == "__main__":
    main()
