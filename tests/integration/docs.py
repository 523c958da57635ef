#!/usr/bin/python3
"""Runs the examples of the documentation, so that a doc cannot drift from what Meridian accepts.

For each document (docs/steering.md, docs/mmdb.md, healthcheck/README.md, georoute/README.md) and
examples/meridian.toml, in a directory of its own under a temporary directory:

  - every fenced ```csv block is written to example-N.csv and built with `meridian mmdb build`;
    the document's first CSV block is also saved as networks.csv, the name its commands use;
  - every fenced ```toml block is written to example-N.toml (the first one also as meridian.toml)
    and checked with `meridian check`. Paths are pointed at test fixtures: a [geoip] database or
    asn_database that does not exist there becomes MaxMind's GeoIP2-City / GeoLite2-ASN test
    database, a [[zone]] file that does not exist becomes a generated zone, and a block without
    [[zone]] gets one for the zones of its services (each service owner with an A record);
  - every command line of an indented (4-space) or ```sh block that starts with `meridian`,
    `meridianctl` or `mmdblookup` is run in that directory (mmdblookup only when installed). For
    meridianctl a server is started on the document's meridian.toml (free loopback port, its own
    control socket, which replaces the --socket argument). Lines with placeholders (FILE, IP,
    NAME, `[--opt]`, `...`) are usage synopses and are not run.

A block or command that fails is a failed check (exit 1). So is a document with fewer examples than
it is known to have, so an example cannot disappear unnoticed.

Usage: docs.py --meridian PATH --meridianctl PATH --geoip DIR [--root DIR] [--verbose] [--only DOC ...]
"""

import os
import re
import shlex
import shutil
import sys
import time

try:
    import tomllib
except ImportError:  # Python < 3.11: no service names from TOML, the zone gets www only
    tomllib = None

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import common  # noqa: E402
from common import BaseCtx, Results, drop_tmp, log, make_tmp, parse_args, pick_port, write  # noqa: E402

# Document -> the fewest (toml, csv, commands) examples it has today.
DOCS = {
    "docs/steering.md": (2, 0, 15),
    "docs/mmdb.md": (1, 2, 3),
    "healthcheck/README.md": (1, 0, 0),
    "georoute/README.md": (1, 0, 0),
    "examples/meridian.toml": (1, 0, 0),
}
SECTIONS = ["steering", "mmdb", "healthcheck", "georoute", "example"]
PLACEHOLDER = re.compile(r"\b(FILE|IP|NAME|LABEL|KEY|VALUE|PREFIX|TYPE|NETWORKS|OUT|ADDR|PORT|N)\b|\[--|\.\.\.")
COMMANDS = ("meridian", "meridianctl", "mmdblookup")


def section_of(doc):
    return {"docs/steering.md": "steering", "docs/mmdb.md": "mmdb", "healthcheck/README.md": "healthcheck",
            "georoute/README.md": "georoute", "examples/meridian.toml": "example"}[doc]


def extract(text):
    """[(kind, body, line)] for fenced blocks (kind = the info string) and indented command lines."""
    out = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        m = re.match(r"^(\s*)```(\w*)\s*$", line)
        if m:
            indent, kind, start = m.group(1), m.group(2), i + 1
            body = []
            i += 1
            while i < len(lines) and not re.match(r"^\s*```\s*$", lines[i]):
                body.append(lines[i][len(indent):] if lines[i].startswith(indent) else lines[i].lstrip())
                i += 1
            out.append((kind, "\n".join(body) + "\n", start + 1))
            if kind in ("sh", "shell", "console"):
                for k, b in enumerate(body):
                    if b.strip().split(" ")[0] in COMMANDS:
                        out.append(("command", b.strip(), start + 1 + k))
            i += 1
            continue
        if line.startswith("    ") and line.strip().split(" ")[0] in COMMANDS:
            out.append(("command", line.strip(), i + 1))
        i += 1
    return out


def zone_text(origin, owners):
    lines = [f"$ORIGIN {origin}.", "$TTL 300", "@ IN SOA ns1 hostmaster 2024010101 7200 3600 1209600 60",
             "@ IN NS ns1", "ns1 IN A 192.0.2.1"]
    for o in sorted(set(owners)):
        lines.append(f"{o} IN A 192.0.2.77")
    return "\n".join(lines) + "\n"


def services_of(text):
    if tomllib is None:
        return ["www.example.com"]
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError:
        return []
    return [s.get("name", "") for s in data.get("service", []) if isinstance(s, dict)]


def zone_of(name):
    labels = name.rstrip(".").split(".")
    return ".".join(labels[-2:]), ".".join(labels[:-2]) or "@"


def prepare_toml(ctx, text, d):
    """The block with fixture paths, and a [[zone]] when it has none."""
    city = os.path.join(ctx.geoip, "GeoIP2-City-Test.mmdb")
    asn = os.path.join(ctx.geoip, "GeoLite2-ASN-Test.mmdb")

    def geo(m):
        key, path = m.group(1), m.group(2)
        if os.path.exists(os.path.join(d, path)):
            return m.group(0)
        return f'{key} = "{asn if key == "asn_database" else city}"'
    text = re.sub(r'^(database|asn_database)\s*=\s*"([^"]*)"', geo, text, flags=re.M)
    zones = {}
    for svc in services_of(text):
        if svc:
            origin, owner = zone_of(svc)
            zones.setdefault(origin, []).append(owner)
    zones.setdefault("example.com", []).append("www")

    def zone_file(m):
        path = m.group(1)
        if os.path.exists(os.path.join(d, path)):
            return m.group(0)
        fixture = os.path.join(d, "fixture-zones", "zone.zone")
        write(fixture, zone_text("example.com", zones.get("example.com", ["www"])))
        return f'file = "{fixture}"'
    text = re.sub(r'^file\s*=\s*"([^"]*)"', zone_file, text, flags=re.M)
    if not re.search(r"^\[\[zone\]\]", text, flags=re.M):
        for origin, owners in zones.items():
            path = os.path.join(d, "fixture-zones", f"{origin}.zone")
            write(path, zone_text(origin, owners))
            text += f'\n[[zone]]\nname = "{origin}"\nfile = "{path}"\n'
    return text


class DocServer:
    """meridian on the document's meridian.toml, for its meridianctl commands."""

    def __init__(self, ctx, d, label):
        self.sock = os.path.join(d, "control.sock")
        port = pick_port(ctx)
        self.srv = common.start_server(ctx, label, ["--config", os.path.join(d, "meridian.toml"),
                                                    "--listen", f"127.0.0.1:{port}",
                                                    "--set", f'control.socket="{self.sock}"'], cwd=d)

    def stop(self):
        if self.srv is not None:
            self.srv.stop()


def run_command(ctx, line, d, server):
    argv = shlex.split(line)
    if argv[0] == "mmdblookup":
        if shutil.which("mmdblookup") is None:
            return "skip", "mmdblookup not installed"
    elif argv[0] == "meridian":
        argv[0] = ctx.meridian
    elif argv[0] == "meridianctl":
        argv[0] = ctx.meridianctl
        if "--socket" in argv:
            argv[argv.index("--socket") + 1] = server.sock
    rc, out, err = common.run_tool(argv, 30, cwd=d)
    return ("ok" if rc == 0 else "fail"), f"rc={rc}\n{out}{err}"


def run_doc(ctx, doc):
    r = ctx.r
    path = os.path.join(ctx.root, doc)
    d = os.path.join(ctx.tmp, section_of(doc))
    os.makedirs(d, exist_ok=True)
    text = open(path).read()
    if doc.endswith(".toml"):
        blocks = [("toml", text, 1)]
        # The example's relative paths: its zones next to it.
        src_zones = os.path.join(os.path.dirname(path), "zones")
        if os.path.isdir(src_zones):
            shutil.copytree(src_zones, os.path.join(d, "zones"), dirs_exist_ok=True)
    else:
        blocks = extract(text)
    tomls = [b for b in blocks if b[0] == "toml"]
    csvs = [b for b in blocks if b[0] == "csv"]
    commands = [b for b in blocks if b[0] == "command"]
    want = DOCS[doc]
    found = (len(tomls), len(csvs), len(commands))
    r.check(f"{doc}: at least {want[0]} TOML, {want[1]} CSV examples and {want[2]} commands",
            all(f >= w for f, w in zip(found, want)), f"found {found[0]} TOML, {found[1]} CSV, {found[2]} commands")

    for n, (_, body, line) in enumerate(csvs, 1):
        csv = os.path.join(d, f"example-{n}.csv")
        write(csv, body)
        if n == 1:
            write(os.path.join(d, "networks.csv"), body)
        rc, out, err = common.run_tool([ctx.meridian, "mmdb", "build", csv, os.path.join(d, f"example-{n}.mmdb")], 30)
        r.check(f"{doc}:{line}: CSV example builds with `meridian mmdb build`", rc == 0 and "wrote" in out,
                f"rc={rc}\n{out}{err}\n--- the example:\n{body}")

    # Commands that make files the TOML examples read (mmdb build) run first, in document order.
    done = set()
    for _, cmd, line in commands:
        if cmd.startswith("meridian mmdb ") and not PLACEHOLDER.search(cmd):
            status, detail = run_command(ctx, cmd, d, None)
            r.check(f"{doc}:{line}: `{cmd}`", status == "ok", detail)
            done.add(line)

    for n, (_, body, line) in enumerate(tomls, 1):
        prepared = prepare_toml(ctx, body, d)
        cfg = os.path.join(d, f"example-{n}.toml")
        write(cfg, prepared)
        if n == 1:
            write(os.path.join(d, "meridian.toml"), prepared)
        rc, out, err = common.run_tool([ctx.meridian, "check", "--config", cfg], 30, cwd=d)
        r.check(f"{doc}:{line}: TOML example passes `meridian check`", rc == 0 and "OK" in out,
                f"rc={rc}\n{out}{err}\n--- as checked:\n{prepared}")

    server = None
    try:
        for _, cmd, line in commands:
            if line in done:
                continue
            if PLACEHOLDER.search(cmd.replace("--socket PATH", "--socket sock")):
                log(f"   (synopsis, not run) {doc}:{line}: {cmd}")
                continue
            if cmd.startswith("meridianctl") and server is None:
                server = DocServer(ctx, d, section_of(doc))
                if server.srv is None:
                    r.check(f"{doc}: a server on its meridian.toml starts for the meridianctl examples", False)
                    return
            status, detail = run_command(ctx, cmd, d, server)
            if status == "skip":
                r.skip(f"{doc}:{line}: `{cmd}`", detail)
            else:
                r.check(f"{doc}:{line}: `{cmd}`", status == "ok", detail)
    finally:
        if server is not None:
            server.stop()


def main():
    args = parse_args(__doc__, SECTIONS, extra=[
        (("--geoip",), dict(required=True, help="directory of the MaxMind test databases (../shared/geoip)")),
        (("--root",), dict(default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."),
                           help="the source tree (default: this script's ../..)"))])
    if args is None:
        return 2
    t_start = time.monotonic()
    r = Results(args.verbose)
    tmp = make_tmp("meridian-docs-")
    ctx = BaseCtx(args, tmp, r)
    ctx.geoip = os.path.abspath(args.geoip)
    ctx.root = os.path.abspath(args.root)
    try:
        for doc in DOCS:
            if args.only and section_of(doc) not in args.only:
                continue
            r.begin(section_of(doc))
            run_doc(ctx, doc)
    finally:
        common.stop_all(ctx.servers)
        drop_tmp(tmp, args.keep, r)
    return r.finish(t_start)


if __name__ == "__main__":
    sys.exit(main())
