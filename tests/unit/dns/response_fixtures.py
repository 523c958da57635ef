#!/usr/bin/python3
"""Prints the dnspython-written responses that tests/unit/dns/response_test.cc holds as hex
(Debian 12's python3-dnspython 2.3): /usr/bin/python3 tests/unit/dns/response_fixtures.py
The responses are made by tests/fuzz/make_seeds.py's response(). The order of records within an
RRset may differ from run to run (dnspython keeps them in sets)."""
import os
import sys

import dns.edns
import dns.flags
import dns.rcode

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "fuzz"))
from make_seeds import response  # noqa: E402

FIXTURES = {
    "referral": response(
        "www.example.com.", "A", flags=0, edns=False,
        authority=[("example.com.", 172800, "IN", "NS", "a.iana-servers.net.",
                    "b.iana-servers.net.")],
        additional=[("a.iana-servers.net.", 172800, "IN", "A", "199.43.135.53"),
                    ("a.iana-servers.net.", 172800, "IN", "AAAA", "2001:500:8f::53")]),
    "nxdomain": response(
        "nope.example.com.", "A", rcode=dns.rcode.NXDOMAIN, flags=dns.flags.AA, edns=False,
        authority=[("example.com.", 3600, "IN", "SOA",
                    "ns.icann.org. noc.dns.icann.org. 2024081412 7200 3600 1209600 3600")]),
    "cname_mx_ede": response(
        "Mail.Example.COM.", "MX", flags=0,
        options=[dns.edns.EDEOption(dns.edns.EDECode.STALE_ANSWER, "served stale")],
        answer=[("mail.example.com.", 300, "IN", "CNAME", "mx.example.com."),
                ("mx.example.com.", 300, "IN", "MX", "10 mx1.example.com.", "20 mx2.example.com."),
                ("mx.example.com.", 300, "IN", "RRSIG",
                 "MX 13 3 300 20250101000000 20241201000000 12345 example.com. "
                 "dGVzdHNpZ25hdHVyZQ==")]),
}

if __name__ == "__main__":
    for name, wire in FIXTURES.items():
        print(f"// {name}")
        hexed = wire.hex()
        for i in range(0, len(hexed), 88):
            print(f'        "{hexed[i:i + 88]}"')
