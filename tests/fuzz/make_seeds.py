#!/usr/bin/python3
"""Writes the query seeds of fuzz_steered (steered_corpus/) and fuzz_edns (edns_corpus/), and the
response seeds of fuzz_response (response_corpus/), with dnspython, so each seed is a readable line
here rather than an opaque file:

    /usr/bin/python3 tests/fuzz/make_seeds.py tests/fuzz [CORPUS...]

(only the named corpora when some are given: the TSIG seeds carry the time, so each run changes them)

fuzz_steered seeds are whole queries for the steered names, chains, DNAMEs, wildcards and the
delegation of its zones, with ECS, cookies (client only, and with a server cookie), NSID, DO and a
TSIG signature. fuzz_edns seeds are what its input is: one octet of ARCOUNT, then the additional
section of a query for example.com. A (OPT with every option we parse, TSIG, both, malformed ones).
"""
import os
import struct
import sys

import dns.edns
import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdatatype
import dns.rrset
import dns.tsig
import dns.tsigkeyring

CLIENT = bytes.fromhex("2464c4abcf10c957")
SERVER = bytes.fromhex("010000005cf79f111f8130c3eee29480")  # RFC 9018 A.1
KEYRING = dns.tsigkeyring.from_text({"key.example.": "c2VjcmV0c2VjcmV0c2VjcmV0"})


def cookie(data):
    return dns.edns.GenericOption(dns.edns.COOKIE, data)


def ecs(address, prefix):
    return dns.edns.ECSOption(address, prefix)


def query(name, rdtype="A", options=None, edns=True, dnssec=False, tsig=False, tcp_id=0x4d52):
    q = dns.message.make_query(name, rdtype, use_edns=0 if edns else False, payload=1232,
                               options=options or [], want_dnssec=dnssec)
    q.id = tcp_id
    if tsig:
        q.use_tsig(KEYRING, keyname="key.example.")
    return q.to_wire()


STEERED = {
    "www-a-ecs-cookie": query("www.example.com.", options=[ecs("192.0.2.0", 24), cookie(CLIENT)]),
    "www-aaaa-ecs6": query("www.example.com.", "AAAA", options=[ecs("2001:db8:1::", 48)]),
    "www-txt": query("www.example.com.", "TXT"),
    "alias2-cname-chain": query("alias2.example.com.", options=[cookie(CLIENT + SERVER)]),
    "wild-cname": query("a.b.wild.example.com.", options=[ecs("198.51.100.0", 24)]),
    "w8-weighted": query("w8.example.com.", options=[ecs("203.0.113.0", 24)]),
    "near-nearest-aaaa": query("near.example.com.", "AAAA", options=[ecs("100.64.0.0", 10)]),
    "lat-latency": query("lat.example.com.", dnssec=True),
    "geo-wildcard-service": query("x.geo.example.com.", options=[ecs("192.0.2.128", 25)]),
    "togeo-cname-to-wildcard": query("togeo.example.com."),
    "dgeo-dname": query("a.dgeo.example.com.", options=[cookie(CLIENT)]),
    "dsub-dname-to-child": query("www.dsub.example.com."),
    "tosub-cname-to-child": query("tosub.example.com.", "CNAME"),
    "sub-referral": query("host.sub.example.com."),
    "child-service": query("www.sub.example.com.", options=[ecs("2001:db8::", 32)]),
    "loop": query("loop1.example.com."),
    "net-cname-into-service": query("cust.example.net.", options=[ecs("192.0.2.0", 24),
                                                                  dns.edns.GenericOption(dns.edns.NSID, b"")]),
    "org-dname-into-service": query("www.x.example.org."),
    "net-dname-chain": query("www.x.dorg.example.net."),
    "wildcard-mx": query("nothing.example.com.", "MX"),
    "nxdomain": query("no.such.example.org.", "AAAA"),
    "tsig-signed": query("www.example.com.", tsig=True),
    "no-edns": query("near.example.com.", edns=False),
    "any": query("www.example.com.", "ANY"),
}


def additional(wire):
    """ARCOUNT and the additional section of a query for example.com. A."""
    qlen = len(dns.name.from_text("example.com.").to_wire()) + 4
    arcount = struct.unpack("!H", wire[10:12])[0]
    return bytes([arcount]) + wire[12 + qlen:]


def opt_rr(rdata, payload=1232, ttl=0):
    return b"\x00" + struct.pack("!HHIH", 41, payload, ttl, len(rdata)) + rdata


def option(code, data):
    return struct.pack("!HH", code, len(data)) + data


EDNS = {
    "opt-empty": additional(query("example.com.")),
    "opt-all-options": additional(query("example.com.", options=[
        dns.edns.GenericOption(dns.edns.NSID, b""), ecs("192.0.2.0", 24), cookie(CLIENT + SERVER),
        dns.edns.GenericOption(12, b"\x00" * 8)], dnssec=True)),
    "opt-ecs6-odd-prefix": additional(query("example.com.", options=[ecs("2001:db8:80::", 41)])),
    "opt-ecs-zero-source": additional(query("example.com.", options=[ecs("0.0.0.0", 0)])),
    "opt-cookie-client": additional(query("example.com.", options=[cookie(CLIENT)])),
    "opt-cookie-40": additional(query("example.com.", options=[cookie(CLIENT + b"\x01" * 32)])),
    "opt-cookie-bad-length": bytes([1]) + opt_rr(option(10, b"\x01" * 12)),
    "opt-ecs-bad-family": bytes([1]) + opt_rr(option(8, b"\x00\x03\x18\x00\xc0\x00\x02")),
    "opt-two-cookies": bytes([1]) + opt_rr(option(10, CLIENT) + option(10, CLIENT)),
    "opt-version1-do": bytes([1]) + opt_rr(b"", ttl=0x00018000),
    "tsig-only": additional(query("example.com.", edns=False, tsig=True)),
    "opt-and-tsig": additional(query("example.com.", options=[cookie(CLIENT)], tsig=True)),
    "two-opts": bytes([2]) + opt_rr(b"") + opt_rr(b""),
}


def response(qname, rdtype="A", answer=(), authority=(), additional=(), edns=True, options=(),
             rcode=0, flags=dns.flags.AA, tsig=False):
    """A response as an authoritative server or resolver sends it; sections as from_text tuples."""
    q = dns.message.make_query(qname, rdtype, use_edns=0 if edns else False, want_dnssec=edns)
    q.id = 0x5151
    r = dns.message.make_response(q)
    r.flags |= flags
    r.set_rcode(rcode)
    for section, rrsets in ((r.answer, answer), (r.authority, authority),
                            (r.additional, additional)):
        for t in rrsets:
            section.append(dns.rrset.from_text(*t))
    if edns:
        r.use_edns(0, payload=1232, options=list(options))
    if tsig:
        r.use_tsig(KEYRING, keyname="key.example.")
    return r.to_wire()


SOA = ("example.com.", 3600, "IN", "SOA", "ns1.example.com. hostmaster.example.com. 1 7200 3600 "
       "1209600 300")
RRSIG = ("www.example.com.", 300, "IN", "RRSIG", "A 13 3 300 20250101000000 20241201000000 12345 "
         "example.com. dGVzdHNpZ25hdHVyZQ==")
RESPONSES = {
    "answer-a": response("www.example.com.", answer=[("www.example.com.", 300, "IN", "A",
                                                       "192.0.2.1", "192.0.2.2"), RRSIG]),
    "referral-glue": response(
        "www.example.com.", flags=0, edns=False,
        authority=[("example.com.", 172800, "IN", "NS", "ns1.example.com.", "ns.other.net.")],
        additional=[("ns1.example.com.", 172800, "IN", "A", "192.0.2.53"),
                    ("ns1.example.com.", 172800, "IN", "AAAA", "2001:db8::53")]),
    "cname-chain": response("a.example.com.", answer=[
        ("a.example.com.", 60, "IN", "CNAME", "b.example.com."),
        ("b.example.com.", 60, "IN", "DNAME", "example.net."),
        ("b.example.com.", 60, "IN", "CNAME", "c.example.net."),
        ("c.example.net.", 60, "IN", "A", "198.51.100.1")]),
    "nxdomain-soa": response("no.example.com.", rcode=dns.rcode.NXDOMAIN, authority=[SOA]),
    "mx-srv-naptr": response("example.com.", "ANY", answer=[
        ("example.com.", 300, "IN", "MX", "10 mail.example.com."),
        ("_sip._udp.example.com.", 300, "IN", "SRV", "1 2 5060 sip.example.com."),
        ("example.com.", 300, "IN", "NAPTR", '100 10 "S" "SIP+D2U" "" _sip._udp.example.com.'),
        ("example.com.", 300, "IN", "RP", "admin.example.com. txt.example.com."),
        ("example.com.", 300, "IN", "TXT", '"v=spf1 -all"'),
        ("example.com.", 300, "IN", "TYPE65280", r"\# 3 c00cff"), SOA]),
    "edns-options": response("www.example.com.", rcode=dns.rcode.SERVFAIL, options=[
        ecs("192.0.2.0", 24), cookie(CLIENT + SERVER),
        dns.edns.EDEOption(dns.edns.EDECode.NO_REACHABLE_AUTHORITY, "no reachable authority"),
        dns.edns.EDEOption(dns.edns.EDECode.NETWORK_ERROR)]),
    "badvers": response("www.example.com.", rcode=dns.rcode.BADVERS),
    "tsig-signed": response("www.example.com.", answer=[("www.example.com.", 300, "IN", "A",
                                                          "192.0.2.1")], tsig=True),
    "formerr-no-question": bytes.fromhex("515181010000000000000000"),
    "pointer-loop": bytes.fromhex("5151810000000001000000000000c01b00010001000000000004c0000201"
                                  "c01b"),
    "forward-pointer": bytes.fromhex("51518100000000010000000000c01c000100010000003c000400000000"
                                     "0178000000"),
}


def main():
    base = sys.argv[1] if len(sys.argv) > 1 else os.path.dirname(os.path.abspath(__file__))
    only = set(sys.argv[2:])
    for corpus, seeds in (("steered_corpus", STEERED), ("edns_corpus", EDNS),
                          ("response_corpus", RESPONSES)):
        if only and corpus not in only:
            continue
        d = os.path.join(base, corpus)
        os.makedirs(d, exist_ok=True)
        for name, data in seeds.items():
            with open(os.path.join(d, name + ".bin"), "wb") as f:
                f.write(data)
        print(f"{d}: {len(seeds)} seeds")


if __name__ == "__main__":
    main()
