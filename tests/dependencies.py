#!/usr/bin/python3
"""The dependency rules of the layout (DESIGN.md, "Planes and modules"), checked on the tree and on
the built libraries: each module folder includes only the modules below it, toml++ stays in app/,
the steering compile is georoute's (not app's), and the data-plane libraries carry no tool code
(the mmdb writer is in meridian_tools). Run by ctest (`dependencies`); prints each violation and
exits 1 when there is one.

    tests/dependencies.py --root SRC --lib georoute=libmeridian_georoute.a --lib server=... --lib app=...
"""
import argparse
import pathlib
import re
import subprocess
import sys

# What each module's files may include (besides system and third-party headers); the CMake link
# lines say the same (CMakeLists.txt).
ALLOWED = {
    "core": {"core"},
    "dns": {"core", "dns"},
    "zones": {"core", "dns", "zones"},
    "healthcheck": {"core", "dns", "healthcheck"},
    "georoute": {"core", "dns", "healthcheck", "georoute"},  # DESIGN.md: dns, healthcheck
    "control": {"core", "dns", "healthcheck", "georoute", "control"},  # DESIGN.md: dns, georoute
    "resolver": {"core", "dns", "resolver"},  # DESIGN.md: dns (c-ares below it)
    "dnstap": {"core", "dnstap"},  # dnstap/README.md: libfstrm below it; server/ feeds it
    "server": {"core", "dns", "zones", "healthcheck", "georoute", "resolver", "dnstap",
               "server"},
    "tools": {"core", "tools"},
    "api": {"core", "dns", "zones", "healthcheck", "georoute", "control", "resolver", "dnstap",
            "server", "api"},  # not app/
    "app": {"core", "dns", "zones", "healthcheck", "georoute", "control", "resolver", "dnstap",
            "server", "tools", "api", "app"},
}
INCLUDE = re.compile(r'^\s*#\s*include\s*[<"]([^">]+)[">]', re.M)


def check_includes(root):
    problems = []
    for module, allowed in ALLOWED.items():
        for path in sorted((root / module).glob("*")):
            if path.suffix not in (".h", ".cc"):
                continue
            for target in INCLUDE.findall(path.read_text()):
                top = target.split("/")[0]
                if top.startswith("toml++") and module != "app":
                    problems.append(f"{path.relative_to(root)}: includes {target} (toml++ is app's)")
                elif top in ALLOWED and top not in allowed:
                    problems.append(f"{path.relative_to(root)}: includes {target} ({module}/ may "
                                    f"include {', '.join(sorted(allowed))})")
    return problems


def defined(lib):
    out = subprocess.run(["nm", "-C", "--defined-only", lib], check=True, capture_output=True,
                         text=True).stdout
    # Only the functions and data a library defines itself (T/D/B/R), not inline template copies.
    return [line.split(" ", 2)[2] for line in out.splitlines()
            if len(line.split(" ", 2)) == 3 and line.split(" ", 2)[1] in "TDBR"]


def check_libraries(libs):
    problems = []
    for name in ("georoute", "server"):
        if name in libs:
            tool = [s for s in defined(libs[name])
                    if "meridian::tools::" in s or "MmdbWriter" in s or "buildMmdbFromCsv" in s]
            if tool:
                problems.append(f"meridian_{name} defines tool code: {tool[0]}")
    if "georoute" in libs and not any(s.startswith("meridian::georoute::compileSteering(")
                                      for s in defined(libs["georoute"])):
        problems.append("meridian_georoute does not define georoute::compileSteering")
    if "app" in libs:
        compile_in_app = [s for s in defined(libs["app"]) if "compileSteering(" in s]
        if compile_in_app:
            problems.append(f"meridian_app defines the steering compile: {compile_in_app[0]}")
    return problems


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--root", required=True, type=pathlib.Path)
    ap.add_argument("--lib", action="append", default=[], help="NAME=PATH of a built library")
    args = ap.parse_args()
    libs = dict(item.split("=", 1) for item in args.lib)
    problems = check_includes(args.root) + check_libraries(libs)
    for p in problems:
        print(p)
    print(f"dependencies: {len(problems)} problem(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
