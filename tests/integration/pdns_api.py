#!/usr/bin/python3
"""Replays the PowerDNS API request sequences of external-dns, lego, octoDNS and terraform.

The requests the real clients send (read from their public source: external-dns
provider/pdns/pdns.go, lego providers/dns/pdns/internal/client.go, octodns-powerdns
octodns_powerdns/__init__.py, terraform-provider-powerdns powerdns/client.go), each with the
status and the salient body fields PowerDNS 4.7.3 answered (recorded against Debian's pdns_server
with the sqlite3 backend: error bodies verbatim), and after each change a DNS query to the
server's DNS port checking that the change is served.

    --target pdns                     starts a private pdns_server (sqlite3, loopback, free ports,
                                      temp dir; stopped by PID) and replays against it
    --target meridian --url URL --key KEY --dns-port PORT
                                      replays against a running Meridian (its API at URL, e.g.
                                      http://127.0.0.1:8053) that serves no zone yet (the
                                      replay creates its own); every difference is a failure

The steps are data (STEPS below): method, path, body, expected status and a pattern the JSON body
must match.  Patterns: a dict matches when every key matches (the value "$absent": the key must be
missing); a list matches element by element, in order; {"$contains": [...]} each pattern matches a
distinct element of a list, {"$set": [...]} the same, and nothing else is in the list;
"$prefix:TEXT" a string starting with TEXT; "$int",
"$str", "$bool", "$list", "$any" match any value of that kind; other values match exactly.
Standard library for HTTP (http.client); dnspython for the DNS checks.  --record prints each
answer in full (how the expectations were taken).
"""

import argparse
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402

import dns.message  # noqa: E402
import dns.query  # noqa: E402
import dns.rcode  # noqa: E402
import dns.rdatatype  # noqa: E402

Z = "/api/v1/servers/localhost/zones"
KEY = "replay-key"  # the key the pdns instance is started with
HTTP_TIMEOUT = 10.0
DNS_TIMEOUT = 3.0

# ---------------------------------------------------------------------------
# the steps


def step(client, what, method, path, body=None, status=200, json_=None, dns=(), raw=None,
         key="default", headers=None, meridian=None, zone_state=False):
    """One request.  key: "default" (the right key), None (no X-API-Key header) or a string sent
    as the key.  raw: a body sent as is (bytes/str) instead of body's JSON.  dns: checks made after
    the answer: (name, type, [expected rdata texts, any order]) or (name, type, "NXDOMAIN") or
    (name, type, []) for NOERROR without answer records; want may be {"pdns": ..., "meridian":
    ...} where the two differ on purpose.  meridian: {"status": ..., "json": ...} expected from
    Meridian instead (a deliberate difference, listed in docs/api.md).  zone_state: the outcome
    depends on the zone's data, not only on the body (left out of the parser cases)."""
    return {"client": client, "what": what, "method": method, "path": path, "body": body,
            "raw": raw, "status": status, "json": json_, "dns": list(dns), "key": key,
            "headers": headers or {}, "meridian": meridian, "zone_state": zone_state}


def rec(content, disabled=False):
    return {"content": content, "disabled": disabled}


def rrset(name, type_, ttl, contents, changetype="REPLACE", **extra):
    r = {"name": name, "type": type_, "ttl": ttl, "changetype": changetype,
         "records": [rec(c) for c in contents]}
    r.update(extra)
    return r


def delete(name, type_, **extra):
    r = {"name": name, "type": type_, "changetype": "DELETE"}
    r.update(extra)
    return r


def patch(client, what, zone, rrsets, status=204, json_=None, dns=(), path=None, meridian=None,
          zone_state=False):
    return step(client, what, "PATCH", path or f"{Z}/{zone}", {"rrsets": rrsets}, status, json_,
                dns, meridian=meridian, zone_state=zone_state)


def err(text):
    return {"error": text}


def reason_differs(prefix):
    """Meridian's expectation where only the parser's reason after PowerDNS's prefix differs
    (docs/api.md: the zone-file loader's words)."""
    return {"status": 422, "json": err("$prefix:" + prefix)}


def shown(name, type_, ttl, contents, comments=None):
    """An rrset as GET zones/ZONE shows it."""
    return {"name": name, "type": type_, "ttl": ttl,
            "records": {"$set": [rec(c) for c in contents]},
            "comments": comments if comments is not None else []}


# The zone object of a created zone (POST, GET): the fields PowerDNS 4.7 always has.
def zone_object(name, kind, rrsets=None, masters=(), soa_edit_api="DEFAULT"):
    z = {"id": name, "name": name, "type": "$absent", "kind": kind, "url": f"{Z}/{name}",
         "serial": "$int", "notified_serial": "$int", "edited_serial": "$int",
         "masters": list(masters), "dnssec": False, "account": "", "soa_edit_api": soa_edit_api,
         "soa_edit": "", "nsec3param": "", "nsec3narrow": False, "api_rectify": False,
         "last_check": 0, "catalog": ""}
    if rrsets is not None:
        z["rrsets"] = rrsets
    return z


def list_entry(name, kind):
    """A zone in GET zones: no rrsets, no soa_edit_api."""
    return {"id": name, "name": name, "kind": kind, "url": f"{Z}/{name}", "serial": "$int",
            "notified_serial": "$int", "edited_serial": "$int", "masters": [], "dnssec": False,
            "account": "", "rrsets": "$absent", "soa_edit_api": "$absent"}


SOA_DEFAULT = "$any"  # the SOA a zone created without one gets (a.misconfigured.dns.server.invalid.)

# The zones the replay creates.
EXT = "ext.example."         # external-dns (Native, as its docs create it)
ACME = "acme.example."       # lego / cert-manager DNS-01 (Master: lego notifies)
OCTO = "octo.example."       # octoDNS (created by its PATCH-404-then-POST path)
TF = "tf.example."           # terraform
REV = "2.0.192.in-addr.arpa."
CLASSLESS = "0/26.2.0.192.in-addr.arpa."
CLASSLESS_ID = "0=2F26.2.0.192.in-addr.arpa."  # PowerDNS's zone id for it ('/' as =2F)
REV6 = "8.b.d.0.1.0.0.2.ip6.arpa."
INC = "inc.example."         # soa_edit_api INCREASE
SEC = "sec.example."         # a secondary (kind Slave)
PRIMARY = "127.0.0.1:9"      # its primary: loopback, discard port, nothing answers
OFF = "off.example."         # soa_edit_api OFF

HERITAGE = '"heritage=external-dns,external-dns/owner=default,external-dns/resource=service/default/web"'

STEPS = [
    # --- discovery and version checks --------------------------------------------------------
    step("lego", "API version list (getAPIVersion)", "GET", "/api",
         json_=[{"url": "/api/v1", "version": 1}]),
    step("terraform", "API version detection (detectAPIVersion)", "GET", "/api/v1/servers",
         json_=[{"id": "localhost", "type": "Server", "daemon_type": "authoritative",
                 "url": "/api/v1/servers/localhost", "version": "$str",
                 "zones_url": "/api/v1/servers/localhost/zones{/zone}",
                 "config_url": "/api/v1/servers/localhost/config{/config_setting}"}]),
    step("octodns", "server version (powerdns_version)", "GET", "/api/v1/servers/localhost",
         json_={"id": "localhost", "type": "Server", "daemon_type": "authoritative",
                "version": "$str", "url": "/api/v1/servers/localhost",
                "autoprimaries_url": "/api/v1/servers/localhost/autoprimaries{/autoprimary}",
                "zones_url": "/api/v1/servers/localhost/zones{/zone}",
                "config_url": "/api/v1/servers/localhost/config{/config_setting}"}),
    step("octodns", "config (SUPPORTS_DYNAMIC probe)", "GET", "/api/v1/servers/localhost/config",
         json_="$list"),
    step("external-dns", "zones list, none yet", "GET", Z, json_=[]),

    # --- authentication and routing errors ---------------------------------------------------
    step("errors", "no X-API-Key: 401", "GET", Z, key=None, status=401,
         json_=err("Unauthorized")),
    step("errors", "wrong X-API-Key: 401", "GET", Z, key="wrong-key", status=401,
         json_=err("Unauthorized")),
    step("errors", "wrong key on a change: 401, nothing created", "POST", Z, key="wrong-key",
         body={"name": "unauth.example.", "kind": "Native", "nameservers": ["ns1.unauth.example."]},
         status=401, json_=err("Unauthorized"),
         dns=[("unauth.example.", "SOA", "REFUSED")]),
    step("errors", "unknown zone: 404", "GET", f"{Z}/nowhere.example.", status=404,
         json_=err("Not Found")),
    step("errors", "unknown API path: 404", "GET", "/api/v1/servers/localhost/nothing",
         status=404, json_=err("Not Found")),

    # --- zone creation -------------------------------------------------------------------------
    step("external-dns", "create a Native zone with nameservers", "POST", Z,
         {"name": EXT, "kind": "Native", "nameservers": [f"ns1.{EXT}", "ns2.other.example."]},
         status=201,
         json_=zone_object(EXT, "Native", {"$set": [
             shown(EXT, "SOA", 3600, ["$str"]),
             shown(EXT, "NS", 3600, [f"ns1.{EXT}", "ns2.other.example."])]}),
         dns=[(EXT, "NS", [f"ns1.{EXT}", "ns2.other.example."])]),
    step("errors", "create it again: 409", "POST", Z,
         {"name": EXT, "kind": "Native", "nameservers": [f"ns1.{EXT}"]}, status=409,
         json_=err("Conflict")),
    step("errors", "zone name without the trailing dot: 422", "POST", Z,
         {"name": "nodot.example", "kind": "Native", "nameservers": []}, status=422,
         json_=err("DNS Name 'nodot.example' is not canonical")),
    # PowerDNS 4.7 takes a kind it does not know for Native.
    step("errors", "unknown kind: created as Native", "POST", Z,
         {"name": "kind.example.", "kind": "Weird", "nameservers": ["ns1.kind.example."]},
         status=201, json_={"id": "kind.example.", "kind": "Native"}),
    step("errors", "and deleted again: 204", "DELETE", f"{Z}/kind.example.", status=204,
         dns=[("kind.example.", "SOA", "REFUSED")]),
    step("lego", "create a Master zone with soa_edit_api", "POST", Z,
         {"name": ACME, "kind": "Master", "nameservers": [f"ns1.{ACME}"],
          "soa_edit_api": "INCEPTION-INCREMENT"},
         status=201, json_=zone_object(ACME, "Master", soa_edit_api="INCEPTION-INCREMENT"),
         dns=[(ACME, "NS", [f"ns1.{ACME}"])]),
    step("external-dns", "zones list", "GET", Z,
         json_={"$set": [list_entry(EXT, "Native"), list_entry(ACME, "Master")]}),
    step("external-dns", "zone get (name with trailing dot)", "GET", f"{Z}/{EXT}",
         json_=zone_object(EXT, "Native")),
    step("lego", "zone get without the trailing dot finds it", "GET", f"{Z}/{ACME[:-1]}",
         json_={"id": ACME, "name": ACME, "kind": "Master"}),

    # --- external-dns: Records() then ApplyChanges() -------------------------------------------
    patch("external-dns", "create A + its TXT registry record", EXT, [
        rrset(f"web.{EXT}", "A", 300, ["192.0.2.10", "192.0.2.11"]),
        rrset(f"web.{EXT}", "TXT", 300, [HERITAGE]),
    ], dns=[(f"web.{EXT}", "A", ["192.0.2.10", "192.0.2.11"]),
            (f"web.{EXT}", "TXT", [HERITAGE])]),
    patch("external-dns", "create AAAA and a CNAME (target with trailing dot)", EXT, [
        rrset(f"v6.{EXT}", "AAAA", 300, ["2001:db8::10"]),
        rrset(f"alias.{EXT}", "CNAME", 300, [f"web.{EXT}"]),
    ], dns=[(f"v6.{EXT}", "AAAA", ["2001:db8::10"]), (f"alias.{EXT}", "CNAME", [f"web.{EXT}"])]),
    step("external-dns", "zone get shows the rrsets", "GET", f"{Z}/{EXT}",
         json_={"rrsets": {"$contains": [
             shown(f"web.{EXT}", "A", 300, ["192.0.2.10", "192.0.2.11"]),
             shown(f"web.{EXT}", "TXT", 300, [HERITAGE]),
             shown(f"v6.{EXT}", "AAAA", 300, ["2001:db8::10"]),
             shown(f"alias.{EXT}", "CNAME", 300, [f"web.{EXT}"])]}}),
    patch("external-dns", "update (REPLACE with new targets and TTL)", EXT, [
        rrset(f"web.{EXT}", "A", 60, ["192.0.2.12"]),
    ], dns=[(f"web.{EXT}", "A", ["192.0.2.12"])]),
    patch("external-dns", "delete A and its TXT (DELETE, no ttl)", EXT, [
        delete(f"web.{EXT}", "A"), delete(f"web.{EXT}", "TXT"),
    ], dns=[(f"web.{EXT}", "A", "NXDOMAIN")]),
    patch("external-dns", "DELETE of an rrset that is not there: 204", EXT, [
        delete(f"gone.{EXT}", "A"),
    ], dns=[(f"gone.{EXT}", "A", "NXDOMAIN")]),
    patch("external-dns", "changetype in lower case is accepted", EXT, [
        rrset(f"lower.{EXT}", "A", 300, ["192.0.2.20"], changetype="replace"),
    ], dns=[(f"lower.{EXT}", "A", ["192.0.2.20"])]),

    step("external-dns", "PATCH with an empty rrsets list: 204", "PATCH", f"{Z}/{EXT}",
         {"rrsets": []}, status=204),
    step("zones", "zones list filtered by ?zone=", "GET", f"{Z}?zone={EXT}",
         json_=[list_entry(EXT, "Native")]),
    step("zones", "?zone= of a zone that is not there: empty list", "GET",
         f"{Z}?zone=nothere.example.", json_=[]),
    step("zones", "?zone= without the trailing dot: 422", "GET", f"{Z}?zone={EXT[:-1]}",
         status=422, json_=err(f"DNS Name '{EXT[:-1]}' is not canonical")),
    step("zones", "zone get with ?rrsets=false: no rrsets member", "GET",
         f"{Z}/{EXT}?rrsets=false", json_={"id": EXT, "serial": "$int", "rrsets": "$absent"}),

    # --- lego / cert-manager DNS-01 ------------------------------------------------------------
    step("lego", "zone get (GetHostedZone)", "GET", f"{Z}/{ACME}",
         json_={"id": ACME, "kind": "Master", "rrsets": "$list"}),
    patch("lego", "Present: REPLACE TXT (quoted value, rrset kind and v0 record fields)", ACME, [
        {"name": f"_acme-challenge.{ACME}", "type": "TXT", "kind": "Master",
         "changetype": "REPLACE", "ttl": 120,
         "records": [{"content": '"Sx3vY9-token-one"', "disabled": False,
                      "name": f"_acme-challenge.{ACME}", "type": "TXT", "ttl": 120}]},
    ], dns=[(f"_acme-challenge.{ACME}", "TXT", ['"Sx3vY9-token-one"'])]),
    step("lego", "Notify (zone kind Master)", "PUT", f"{Z}/{ACME}/notify",
         json_={"result": "Notification queued"}),
    patch("lego", "Present again (wildcard + apex): the existing record kept, one appended", ACME, [
        {"name": f"_acme-challenge.{ACME}", "type": "TXT", "kind": "Master",
         "changetype": "REPLACE", "ttl": 120,
         "records": [{"content": '"Sx3vY9-token-one"', "disabled": False,
                      "name": f"_acme-challenge.{ACME}", "type": "TXT", "ttl": 120},
                     {"content": '"token-two"', "disabled": False,
                      "name": f"_acme-challenge.{ACME}", "type": "TXT", "ttl": 120}]},
    ], dns=[(f"_acme-challenge.{ACME}", "TXT", ['"Sx3vY9-token-one"', '"token-two"'])]),
    step("lego", "zone get shows both values, quoted", "GET", f"{Z}/{ACME}",
         json_={"rrsets": {"$contains": [shown(f"_acme-challenge.{ACME}", "TXT", 120,
                                               ['"Sx3vY9-token-one"', '"token-two"'])]}}),
    patch("lego", "CleanUp of one token: REPLACE with the rest", ACME, [
        {"name": f"_acme-challenge.{ACME}", "type": "TXT", "changetype": "REPLACE", "ttl": 120,
         "records": [{"content": '"token-two"', "disabled": False,
                      "name": f"_acme-challenge.{ACME}", "type": "TXT", "ttl": 120}]},
    ], dns=[(f"_acme-challenge.{ACME}", "TXT", ['"token-two"'])]),
    patch("lego", "CleanUp of the last token: DELETE", ACME, [
        {"name": f"_acme-challenge.{ACME}", "type": "TXT", "changetype": "DELETE"},
    ], dns=[(f"_acme-challenge.{ACME}", "TXT", "NXDOMAIN")]),
    step("lego", "Notify again", "PUT", f"{Z}/{ACME}/notify",
         json_={"result": "Notification queued"}),

    # --- TXT quoting as PowerDNS accepts it ------------------------------------------------------
    patch("txt", "several strings, escaped quote, semicolon", EXT, [
        rrset(f"txt.{EXT}", "TXT", 300,
              ['"a" "b c"', '"with \\"quote\\" and ; semicolon"', '"v=spf1 -all"']),
    ], dns=[(f"txt.{EXT}", "TXT",
             ['"a" "b c"', '"with \\"quote\\" and ; semicolon"', '"v=spf1 -all"'])]),
    patch("txt", "a string longer than 255 octets is accepted", EXT, [
        rrset(f"long.{EXT}", "TXT", 300, ['"' + "x" * 300 + '"']),
    ], dns=[(f"long.{EXT}", "TXT", ['"' + "x" * 255 + '" "' + "x" * 45 + '"'])]),
    step("txt", "and shown as one string (Meridian: as the strings it is served as)", "GET",
         f"{Z}/{EXT}",
         json_={"rrsets": {"$contains": [shown(f"long.{EXT}", "TXT", 300,
                                               ['"' + "x" * 300 + '"'])]}},
         meridian={"status": 200, "json": {"rrsets": {"$contains": [shown(
             f"long.{EXT}", "TXT", 300, ['"' + "x" * 255 + '" "' + "x" * 45 + '"'])]}}}),
    patch("txt", "UTF-8 and \\DDD escapes", EXT, [
        rrset(f"utf.{EXT}", "TXT", 300, ['"caf\u00e9 \\010"']),
    ], dns=[(f"utf.{EXT}", "TXT", ['"caf\\195\\169 \\010"'])]),
    patch("errors", "TXT without quotes: 422", EXT, [
        rrset(f"bad.{EXT}", "TXT", 300, ["unquoted text"]),
    ], status=422, json_=err(
        f"Record bad.{EXT}/TXT 'unquoted text': Parsing record content (try 'pdnsutil "
        "check-zone'): Data field in DNS should start with quote (\") at position 0 of "
        "'unquoted text'"), dns=[(f"bad.{EXT}", "TXT", "NXDOMAIN")]),
    patch("errors", "TXT with an unterminated quote: 422", EXT, [
        rrset(f"bad.{EXT}", "TXT", 300, ['"unterminated']),
    ], status=422, json_=err(
        f"Record bad.{EXT}/TXT '\"unterminated': Parsing record content (try 'pdnsutil "
        "check-zone'): Data field in DNS should end on a quote (\") in '\"unterminated'")),
    patch("errors", "TXT strings not separated by a space: 422 (not canonical)", EXT, [
        rrset(f"bad.{EXT}", "TXT", 300, ['"a""b"']),
    ], status=422, json_=err(
        f"Record bad.{EXT}/TXT '\"a\"\"b\"': Not in expected format (parsed as '\"a\" \"b\"')")),

    # --- validation errors ---------------------------------------------------------------------
    patch("errors", "bad A content: 422", EXT, [rrset(f"bad.{EXT}", "A", 300, ["1.2.3"])],
          meridian=reason_differs(f"Record bad.{EXT}/A '1.2.3': Parsing record content (try "
                                  "'pdnsutil check-zone'): "),
          status=422, json_=err(
              f"Record bad.{EXT}/A '1.2.3': Parsing record content (try 'pdnsutil check-zone'): "
              "unable to parse IP address, not enough dots"),
          dns=[(f"bad.{EXT}", "A", "NXDOMAIN")]),
    patch("errors", "rrset name without the trailing dot: 422", EXT,
          [rrset(f"bad.{EXT[:-1]}", "A", 300, ["192.0.2.1"])],
          status=422, json_=err(f"DNS Name 'bad.{EXT[:-1]}' is not canonical")),
    patch("errors", "out-of-zone name: 422", EXT,
          [rrset("bad.elsewhere.example.", "A", 300, ["192.0.2.1"])],
          status=422, json_=err("RRset bad.elsewhere.example. IN A: Name is out of zone")),
    patch("errors", "CNAME target without the trailing dot: 422", EXT,
          [rrset(f"c2.{EXT}", "CNAME", 300, [f"web.{EXT[:-1]}"])],
          status=422, json_=err(
              f"Record c2.{EXT}/CNAME 'web.{EXT[:-1]}': Not in expected format (parsed as "
              f"'web.{EXT}')"), dns=[(f"c2.{EXT}", "CNAME", "NXDOMAIN")]),
    patch("errors", "CNAME beside other data: 422", EXT,
          [rrset(f"lower.{EXT}", "CNAME", 300, [f"web.{EXT}"])],
          status=422, zone_state=True, json_=err(
              f"RRset lower.{EXT} IN CNAME: Conflicts with pre-existing RRset"),
          dns=[(f"lower.{EXT}", "A", ["192.0.2.20"])]),
    patch("errors", "changetype not understood: 422", EXT,
          [rrset(f"x.{EXT}", "A", 300, ["192.0.2.1"], changetype="UPSERT")],
          status=422, json_=err("Changetype not understood")),
    patch("errors", "REPLACE without ttl: 422", EXT,
          [{"name": f"x.{EXT}", "type": "A", "changetype": "REPLACE",
            "records": [rec("192.0.2.1")]}],
          status=422, json_=err("Key 'ttl' not an Integer or not present")),
    step("errors", "PATCH without rrsets: 422", "PATCH", f"{Z}/{EXT}", {}, status=422,
         json_=err("No rrsets given in update request")),
    step("errors", "PATCH with a body that is not JSON: 400", "PATCH", f"{Z}/{EXT}",
         raw="{not json", status=400, json_=err("Bad Request")),
    patch("errors", "PATCH of an unknown zone: 404", "nowhere.example.",
          [rrset("a.nowhere.example.", "A", 300, ["192.0.2.1"])], status=404,
          json_=err("Not Found")),
    step("errors", "wrong method on a zone (POST): 405", "POST", f"{Z}/{EXT}", {}, status=405,
         json_=err("Method Not Allowed")),
    patch("errors", "one bad rrset refuses the whole request", EXT, [
        rrset(f"atomic.{EXT}", "A", 300, ["192.0.2.30"]),
        rrset(f"atomic.{EXT}", "AAAA", 300, ["not-an-address"]),
    ], status=422, json_=err(
        f"Record atomic.{EXT}/AAAA 'not-an-address': Invalid IPv6 address"),
        meridian=reason_differs(f"Record atomic.{EXT}/AAAA 'not-an-address': "),
        dns=[(f"atomic.{EXT}", "A", "NXDOMAIN")]),

    patch("errors", "the same record twice: 422", EXT,
          [rrset(f"dup.{EXT}", "A", 300, ["192.0.2.1", "192.0.2.1"])], status=422,
          json_=err(f'Duplicate record in RRset dup.{EXT} IN A with content "192.0.2.1"')),
    patch("errors", "the same rrset twice in one request: 422", EXT,
          [rrset(f"two.{EXT}", "A", 300, ["192.0.2.1"]),
           rrset(f"two.{EXT}", "A", 300, ["192.0.2.2"])], status=422,
          json_=err(f"Duplicate RRset two.{EXT} IN A with changetype: REPLACE"),
          dns=[(f"two.{EXT}", "A", "NXDOMAIN")]),
    patch("errors", "unknown type: 422", EXT, [rrset(f"ty.{EXT}", "FOO", 300, ["1"])],
          status=422, json_=err(f"RRset ty.{EXT} IN FOO: unknown type given")),
    patch("errors", "MX exchange without the trailing dot: 422", EXT,
          [rrset(f"mx.{EXT}", "MX", 300, ["10 mail.example"])], status=422,
          json_=err(f"Record mx.{EXT}/MX '10 mail.example': Not in expected format (parsed as "
                    "'10 mail.example.')")),
    patch("errors", "SRV target without the trailing dot: 422", EXT,
          [rrset(f"_sip._tcp.{EXT}", "SRV", 300, ["10 20 5060 target"])], status=422,
          json_=err(f"Record _sip._tcp.{EXT}/SRV '10 20 5060 target': Not in expected format "
                    "(parsed as '10 20 5060 target.')")),
    patch("errors", "content with a leading space: 422 (not canonical)", EXT,
          [rrset(f"sp.{EXT}", "A", 300, [" 192.0.2.1"])], status=422,
          json_=err(f"Record sp.{EXT}/A ' 192.0.2.1': Not in expected format (parsed as "
                    "'192.0.2.1')")),
    patch("errors", "empty content: 422", EXT, [rrset(f"em.{EXT}", "A", 300, [""])],
          status=422, json_=err(
              f"Record em.{EXT}/A '': Parsing record content (try 'pdnsutil check-zone'): "
              "missing field at the end of record content ''")),
    patch("errors", "trailing data: 422", EXT, [rrset(f"ptr.{EXT}", "PTR", 300, ["a. b."])],
          meridian=reason_differs(f"Record ptr.{EXT}/PTR 'a. b.': "), status=422, json_=err(
              f"Record ptr.{EXT}/PTR 'a. b.': When parsing PTR trailing data was not parsed: ' b.'")),
    patch("errors", "rrset without name: 422", EXT,
          [{"type": "A", "ttl": 300, "changetype": "REPLACE", "records": [rec("192.0.2.1")]}],
          status=422, json_=err("Key 'name' not present or not a String")),
    patch("errors", "rrset without type: 422", EXT,
          [{"name": f"x.{EXT}", "ttl": 300, "changetype": "REPLACE", "records": [rec("192.0.2.1")]}],
          status=422, json_=err("Key 'type' not present or not a String")),
    patch("errors", "rrset without changetype: 422", EXT,
          [{"name": f"x.{EXT}", "type": "A", "ttl": 300, "records": [rec("192.0.2.1")]}],
          status=422, json_=err("Key 'changetype' not present or not a String")),
    patch("errors", "record without content: 422", EXT,
          [{"name": f"x.{EXT}", "type": "A", "ttl": 300, "changetype": "REPLACE",
            "records": [{"disabled": False}]}],
          status=422, json_=err("Key 'content' not present or not a String")),
    step("errors", "rrsets not a list: 422", "PATCH", f"{Z}/{EXT}", {"rrsets": {}}, status=422,
         json_=err("No rrsets given in update request")),
    step("errors", "wrong method on the zones list (DELETE): 405", "DELETE", Z, status=405,
         json_=err("Method Not Allowed")),
    step("errors", "unknown server id: 404", "GET", "/api/v1/servers/other/zones", status=404,
         json_=err("Not Found")),

    # --- what PowerDNS accepts that Meridian refuses on purpose (docs/api.md) ------------------
    # The replay expects PowerDNS's answer from pdns and Meridian's from Meridian.
    patch("deviations", "DELETE of the apex NS", EXT, [delete(EXT, "NS")], zone_state=True,
          meridian={"status": 422, "json": {"error": "$str"}},
          dns=[(EXT, "NS", {"pdns": [], "meridian": [f"ns1.{EXT}", "ns2.other.example."]})]),
    step("deviations", "(pdns: put it back)", "PATCH", f"{Z}/{EXT}",
         {"rrsets": [rrset(EXT, "NS", 3600, [f"ns1.{EXT}", "ns2.other.example."])]}, status=204,
         dns=[(EXT, "NS", [f"ns1.{EXT}", "ns2.other.example."])]),
    patch("deviations", "a negative TTL", EXT, [rrset(f"neg.{EXT}", "A", -5, ["192.0.2.1"])],
          meridian={"status": 422, "json": err(
              f"RRset neg.{EXT} IN A: Key 'ttl' out of range (0 to 2147483647)")},
          dns=[(f"neg.{EXT}", "A", {"pdns": ["192.0.2.1"], "meridian": "NXDOMAIN"})]),
    patch("deviations", "(pdns: remove it)", EXT, [delete(f"neg.{EXT}", "A")],
          dns=[(f"neg.{EXT}", "A", "NXDOMAIN")]),

    # --- names, types and changetypes as PowerDNS reads them -------------------------------------
    patch("names", "owner in mixed case", EXT, [rrset("Mixed.EXT.example.", "A", 300,
                                                     ["192.0.2.50"])],
          dns=[(f"mixed.{EXT}", "A", ["192.0.2.50"])]),
    step("names", "shown in lower case", "GET", f"{Z}/{EXT}",
         json_={"rrsets": {"$contains": [shown(f"mixed.{EXT}", "A", 300, ["192.0.2.50"])]}}),
    patch("names", "type in lower case", EXT, [rrset(f"lt.{EXT}", "a", 300, ["192.0.2.51"])],
          dns=[(f"lt.{EXT}", "A", ["192.0.2.51"])]),
    patch("names", "changetype in mixed case (Replace, delete)", EXT, [
        rrset(f"cl.{EXT}", "A", 300, ["192.0.2.52"], changetype="Replace"),
        rrset(f"lt.{EXT}", "A", 300, [], changetype="delete"),
    ], dns=[(f"cl.{EXT}", "A", ["192.0.2.52"]), (f"lt.{EXT}", "A", "NXDOMAIN")]),
    patch("names", "REPLACE with an empty records list deletes", EXT,
          [rrset(f"cl.{EXT}", "A", 300, [])], dns=[(f"cl.{EXT}", "A", "NXDOMAIN")]),
    patch("names", "wildcard owner", EXT, [rrset(f"*.wild.{EXT}", "A", 300, ["192.0.2.53"])],
          dns=[(f"anything.wild.{EXT}", "A", ["192.0.2.53"])]),
    patch("names", "delegation with glue", EXT, [
        rrset(f"sub.{EXT}", "NS", 300, [f"ns.sub.{EXT}"]),
        rrset(f"ns.sub.{EXT}", "A", 300, ["192.0.2.54"]),
    ], dns=[(f"sub.{EXT}", "NS", "NOERROR")]),

    # --- comments ------------------------------------------------------------------------------
    patch("comments", "REPLACE with records and a comment", EXT, [
        rrset(f"mail.{EXT}", "MX", 300, [f"10 mx1.{EXT}"],
              comments=[{"content": "primary mail", "account": "ops"}]),
    ], dns=[(f"mail.{EXT}", "MX", [f"10 mx1.{EXT}"])]),
    step("comments", "the comment is shown, with modified_at", "GET", f"{Z}/{EXT}",
         json_={"rrsets": {"$contains": [shown(f"mail.{EXT}", "MX", 300, [f"10 mx1.{EXT}"], [
             {"content": "primary mail", "account": "ops", "modified_at": "$int"}])]}}),
    patch("comments", "REPLACE with comments only keeps the records", EXT, [
        {"name": f"mail.{EXT}", "type": "MX", "changetype": "REPLACE",
         "comments": [{"content": "changed comment", "account": "ops"}]},
    ], dns=[(f"mail.{EXT}", "MX", [f"10 mx1.{EXT}"])]),
    patch("comments", "REPLACE with records only keeps the comments", EXT, [
        rrset(f"mail.{EXT}", "MX", 600, [f"20 mx2.{EXT}"]),
    ], dns=[(f"mail.{EXT}", "MX", [f"20 mx2.{EXT}"])]),
    step("comments", "both changes shown", "GET", f"{Z}/{EXT}",
         json_={"rrsets": {"$contains": [shown(f"mail.{EXT}", "MX", 600, [f"20 mx2.{EXT}"], [
             {"content": "changed comment", "account": "ops", "modified_at": "$int"}])]}}),

    # --- octoDNS: populate (404) -> _apply: PATCH (404) -> POST with the rrsets ----------------
    step("octodns", "populate a zone that does not exist: 404", "GET", f"{Z}/{OCTO}",
         status=404, json_=err("Not Found")),
    patch("octodns", "_apply PATCH of the missing zone: 404", OCTO,
          [rrset(OCTO, "NS", 3600, [f"ns1.{OCTO}", f"ns2.{OCTO}"])], status=404,
          json_=err("Not Found")),
    step("octodns", "_apply creates it with its rrsets (nameservers [], serial 0)", "POST", Z,
         {"name": OCTO, "kind": "Master", "masters": [], "nameservers": [],
          "soa_edit_api": "INCEPTION-INCREMENT", "serial": 0,
          "rrsets": [
              rrset(OCTO, "NS", 3600, [f"ns1.{OCTO}", f"ns2.{OCTO}"]),
              rrset(f"www.{OCTO}", "A", 300, ["192.0.2.40", "192.0.2.41"]),
              rrset(f"txt.{OCTO}", "TXT", 300, ['"v=spf1 include:_spf.example.net ~all"']),
              rrset(f"srv._tcp.{OCTO}", "SRV", 300, [f"10 20 5060 sip.{OCTO}"]),
              rrset(f"caa.{OCTO}", "CAA", 300, ['0 issue "letsencrypt.org"']),
          ]},
         status=201, json_={"id": OCTO, "kind": "Master", "soa_edit_api": "INCEPTION-INCREMENT",
                            "rrsets": {"$contains": [
                                shown(f"www.{OCTO}", "A", 300, ["192.0.2.40", "192.0.2.41"])]}},
         dns=[(OCTO, "NS", [f"ns1.{OCTO}", f"ns2.{OCTO}"]),
              (f"www.{OCTO}", "A", ["192.0.2.40", "192.0.2.41"]),
              (f"srv._tcp.{OCTO}", "SRV", [f"10 20 5060 sip.{OCTO}"]),
              (f"caa.{OCTO}", "CAA", ['0 issue "letsencrypt.org"'])]),
    patch("octodns", "A becomes CNAME in one request (DELETE sorted before REPLACE)", OCTO, [
        {"name": f"www.{OCTO}", "type": "A", "ttl": 300, "changetype": "DELETE",
         "records": [rec("192.0.2.40"), rec("192.0.2.41")]},
        rrset(f"www.{OCTO}", "CNAME", 300, [f"lb.{OCTO}"]),
    ], dns=[(f"www.{OCTO}", "CNAME", [f"lb.{OCTO}"])]),
    step("octodns", "notify (notify: true)", "PUT", f"{Z}/{OCTO}/notify",
         json_={"result": "Notification queued"}),

    # --- terraform-provider-powerdns -----------------------------------------------------------
    step("terraform", "create a Native zone (no soa_edit_api)", "POST", Z,
         {"name": TF, "kind": "Native", "nameservers": [f"ns1.{TF}"], "account": ""},
         status=201, json_=zone_object(TF, "Native"), dns=[(TF, "NS", [f"ns1.{TF}"])]),
    step("terraform", "update the zone (PUT kind/soa_edit_api): 204", "PUT", f"{Z}/{TF}",
         {"name": TF, "kind": "Master", "soa_edit_api": "DEFAULT", "account": ""}, status=204),
    step("terraform", "the kind changed", "GET", f"{Z}/{TF}", json_={"kind": "Master"}),
    patch("terraform", "record create (v0 record fields, set-ptr false)", TF, [
        {"name": f"host.{TF}", "type": "AAAA", "changetype": "REPLACE", "ttl": 60,
         "records": [{"name": f"host.{TF}", "type": "AAAA", "content": "2001:db8::53",
                      "ttl": 60, "disabled": False, "set-ptr": False}]},
    ], dns=[(f"host.{TF}", "AAAA", ["2001:db8::53"])]),
    step("terraform", "record read (zone get)", "GET", f"{Z}/{TF}",
         json_={"rrsets": {"$contains": [shown(f"host.{TF}", "AAAA", 60, ["2001:db8::53"])]}}),
    patch("terraform", "record delete", TF, [
        {"name": f"host.{TF}", "type": "AAAA", "changetype": "DELETE", "ttl": 0},
    ], dns=[(f"host.{TF}", "AAAA", "NXDOMAIN")]),
    step("terraform", "zone delete: 204", "DELETE", f"{Z}/{TF}", status=204,
         dns=[(TF, "SOA", "REFUSED")]),
    step("terraform", "deleted zone: 404", "GET", f"{Z}/{TF}", status=404,
         json_=err("Not Found")),
    step("errors", "delete an unknown zone: 404", "DELETE", f"{Z}/nowhere.example.",
         status=404, json_=err("Not Found")),

    # --- serials: soa_edit_api INCREASE starts at 1 and adds one per change ---------------------
    step("serials", "create with soa_edit_api INCREASE", "POST", Z,
         {"name": INC, "kind": "Native", "nameservers": [f"ns1.{INC}"], "soa_edit_api": "INCREASE"},
         status=201, json_={"serial": 1, "edited_serial": 1, "soa_edit_api": "INCREASE"},
         dns=[(INC, "SOA", [f"a.misconfigured.dns.server.invalid. hostmaster.{INC} 1 10800 3600 "
                            "604800 3600"])]),
    patch("serials", "a change", INC, [rrset(f"a.{INC}", "A", 60, ["192.0.2.60"])],
          dns=[(INC, "SOA", [f"a.misconfigured.dns.server.invalid. hostmaster.{INC} 2 10800 3600 "
                             "604800 3600"])]),
    step("serials", "the serial went up by one", "GET", f"{Z}/{INC}?rrsets=false",
         json_={"serial": 2, "edited_serial": 2}),
    step("serials", "create with soa_edit_api OFF: serial 0", "POST", Z,
         {"name": OFF, "kind": "Native", "nameservers": [f"ns1.{OFF}"], "soa_edit_api": "OFF"},
         status=201, json_={"serial": 0, "soa_edit_api": "OFF"}),
    patch("serials", "a change", OFF, [rrset(f"a.{OFF}", "A", 60, ["192.0.2.61"])],
          dns=[(f"a.{OFF}", "A", ["192.0.2.61"])]),
    step("serials", "PowerDNS leaves the serial (Meridian: see docs/api.md)", "GET",
         f"{Z}/{OFF}?rrsets=false", json_={"serial": 0},
         meridian={"status": 200, "json": {"serial": "$int"}}),

    # --- metadata, rectify, notify, axfr-retrieve ----------------------------------------------
    step("metadata", "PUT zone metadata", "PUT", f"{Z}/{EXT}/metadata/ALLOW-AXFR-FROM",
         {"metadata": ["AUTO-NS"]},
         json_={"kind": "ALLOW-AXFR-FROM", "metadata": ["AUTO-NS"], "type": "Metadata"}),
    step("metadata", "GET it back", "GET", f"{Z}/{EXT}/metadata/ALLOW-AXFR-FROM",
         json_={"kind": "ALLOW-AXFR-FROM", "metadata": ["AUTO-NS"], "type": "Metadata"}),
    step("metadata", "GET all of the zone's metadata", "GET", f"{Z}/{EXT}/metadata",
         json_={"$contains": [{"kind": "ALLOW-AXFR-FROM", "metadata": ["AUTO-NS"],
                               "type": "Metadata"}]}),
    step("metadata", "API-managed kinds are refused: 422", "PUT",
         f"{Z}/{EXT}/metadata/SOA-EDIT-API", {"metadata": ["EPOCH"]}, status=422,
         json_=err("Unsupported metadata kind 'SOA-EDIT-API'")),
    step("metadata", "a custom X- kind", "PUT", f"{Z}/{EXT}/metadata/X-OWNER",
         {"metadata": ["team-a", "team-b"]},
         json_={"kind": "X-OWNER", "metadata": ["team-a", "team-b"], "type": "Metadata"}),
    step("metadata", "POST a kind: 201", "POST", f"{Z}/{EXT}/metadata",
         {"kind": "X-NOTE", "metadata": ["n"]}, status=201,
         json_={"kind": "X-NOTE", "metadata": ["n"], "type": "Metadata"}),
    step("metadata", "POST without kind: 422", "POST", f"{Z}/{EXT}/metadata", {"metadata": ["n"]},
         status=422, json_=err("kind is not specified or not a string")),
    step("metadata", "an unknown kind: 422", "PUT", f"{Z}/{EXT}/metadata/FOO",
         {"metadata": ["a"]}, status=422, json_=err("Unsupported metadata kind 'FOO'")),
    step("metadata", "kinds are case-sensitive: 422", "PUT", f"{Z}/{EXT}/metadata/also-notify",
         {"metadata": ["192.0.2.1"]}, status=422,
         json_=err("Unsupported metadata kind 'also-notify'")),
    step("metadata", "metadata not a list: 422", "PUT", f"{Z}/{EXT}/metadata/ALSO-NOTIFY",
         {"metadata": "192.0.2.1"}, status=422,
         json_=err("metadata is not specified or not an array")),
    step("metadata", "metadata not strings: 422", "PUT", f"{Z}/{EXT}/metadata/ALSO-NOTIFY",
         {"metadata": [1]}, status=422, json_=err("metadata must be strings")),
    step("metadata", "DELETE a kind: 200, empty body", "DELETE", f"{Z}/{EXT}/metadata/X-NOTE"),
    step("metadata", "a kind not set reads as an empty list", "GET",
         f"{Z}/{EXT}/metadata/X-NOTE", json_={"kind": "X-NOTE", "metadata": [], "type": "Metadata"}),
    step("rectify", "rectify", "PUT", f"{Z}/{EXT}/rectify", json_={"result": "Rectified"}),
    step("notify", "notify a Native zone", "PUT", f"{Z}/{EXT}/notify",
         json_={"result": "Notification queued"}),
    step("axfr-retrieve", "axfr-retrieve of a zone that is not a secondary: 422", "PUT",
         f"{Z}/{EXT}/axfr-retrieve", status=422,
         json_=err(f"Domain '{EXT}' is not a slave domain (or has no master defined)")),
    # The primary is a loopback port nothing listens on: the retrieval fails, off this host nothing.
    step("axfr-retrieve", "create a Slave zone with a primary", "POST", Z,
         {"name": SEC, "kind": "Slave", "masters": [PRIMARY], "nameservers": []}, status=201,
         json_=zone_object(SEC, "Slave", [], masters=[PRIMARY]),
         # Meridian has no zone transfers yet (the replication issue): its secondary starts with
         # the default SOA until then.
         meridian={"status": 201, "json": zone_object(SEC, "Slave", "$list", masters=[PRIMARY])}),
    step("axfr-retrieve", "axfr-retrieve of the Slave zone", "PUT", f"{Z}/{SEC}/axfr-retrieve",
         json_={"result": f"Added retrieval request for '{SEC}' from master {PRIMARY}"}),
    step("axfr-retrieve", "the Slave zone is listed with its primary", "GET", f"{Z}?zone={SEC}",
         json_=[{"id": SEC, "kind": "Slave", "masters": [PRIMARY]}]),

    # --- reverse zones and RFC 2317 classless delegation -------------------------------------
    step("reverse", "create the /24 reverse zone", "POST", Z,
         {"name": REV, "kind": "Native", "nameservers": ["ns1.ext.example."]}, status=201,
         json_={"id": REV, "name": REV}),
    patch("reverse", "PTR records and the RFC 2317 delegation of .0/26", REV, [
        rrset(f"200.{REV}", "PTR", 300, ["host200.ext.example."]),
        rrset(f"0/26.{REV}", "NS", 300, ["ns1.ext.example."]),
        rrset(f"1.{REV}", "CNAME", 300, [f"1.0/26.{REV}"]),
        rrset(f"2.{REV}", "CNAME", 300, [f"2.0/26.{REV}"]),
    ], dns=[(f"200.{REV}", "PTR", ["host200.ext.example."]),
            (f"1.{REV}", "CNAME", [f"1.0/26.{REV}"])]),
    step("reverse", "create the classless child zone", "POST", Z,
         {"name": CLASSLESS, "kind": "Native", "nameservers": ["ns1.ext.example."]}, status=201,
         json_={"id": CLASSLESS_ID, "name": CLASSLESS, "url": f"{Z}/{CLASSLESS_ID}"}),
    patch("reverse", "PTRs in the classless zone (its id with =2F)", CLASSLESS, [
        rrset(f"1.{CLASSLESS}", "PTR", 300, ["host1.ext.example."]),
    ], path=f"{Z}/{CLASSLESS_ID}", dns=[(f"1.{CLASSLESS}", "PTR", ["host1.ext.example."])]),
    step("reverse", "the classless zone by its id", "GET", f"{Z}/{CLASSLESS_ID}",
         json_={"id": CLASSLESS_ID, "name": CLASSLESS, "rrsets": {"$contains": [
             shown(f"1.{CLASSLESS}", "PTR", 300, ["host1.ext.example."])]}}),
    step("reverse", "create an ip6.arpa zone", "POST", Z,
         {"name": REV6, "kind": "Native", "nameservers": ["ns1.ext.example."]}, status=201,
         json_={"id": REV6}),
    patch("reverse", "an ip6.arpa PTR", REV6, [
        rrset(f"3.5.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.{REV6}", "PTR", 300,
              ["host.tf.example."]),
    ], dns=[(f"3.5.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.{REV6}", "PTR",
             ["host.tf.example."])]),

    # --- statistics and search ---------------------------------------------------------------
    step("statistics", "statistics", "GET", "/api/v1/servers/localhost/statistics",
         json_={"$contains": [{"name": "uptime", "type": "StatisticItem", "value": "$str"}]}),
    step("search", "search-data for records", "GET",
         "/api/v1/servers/localhost/search-data?q=lower*&max=10",
         json_=[{"content": "192.0.2.20", "disabled": False, "name": f"lower.{EXT}",
                 "object_type": "record", "ttl": 300, "type": "A", "zone": EXT,
                 "zone_id": EXT}]),
    # q is matched against names without their trailing dot ('*' a wildcard).
    step("search", "search-data for a zone and its records", "GET",
         "/api/v1/servers/localhost/search-data?q=acme.example&max=10",
         json_={"$set": [
             {"name": ACME, "object_type": "zone", "zone_id": ACME},
             {"name": ACME, "object_type": "record", "type": "NS", "content": f"ns1.{ACME}",
              "ttl": 3600, "disabled": False, "zone": ACME, "zone_id": ACME},
             {"name": ACME, "object_type": "record", "type": "SOA", "content": "$str",
              "ttl": 3600, "disabled": False, "zone": ACME, "zone_id": ACME}]}),
    step("search", "a q with the trailing dot finds nothing", "GET",
         "/api/v1/servers/localhost/search-data?q=acme.example.&max=10", json_=[]),
    step("search", "contents are searched too", "GET",
         "/api/v1/servers/localhost/search-data?q=192.0.2.20&max=10",
         json_=[{"content": "192.0.2.20", "name": f"lower.{EXT}", "object_type": "record",
                 "type": "A", "zone": EXT}]),
    step("search", "case-insensitive, '?' matches one character", "GET",
         "/api/v1/servers/localhost/search-data?q=LO%3FER*&max=10",
         json_=[{"content": "192.0.2.20", "name": f"lower.{EXT}", "object_type": "record"}]),
    step("search", "comments, and object_type", "GET",
         f"/api/v1/servers/localhost/search-data?q=mail.{EXT[:-1]}&max=10&object_type=comment",
         json_=[{"content": "changed comment", "name": f"mail.{EXT}", "object_type": "comment",
                 "type": "MX", "zone": EXT, "zone_id": EXT}]),
    step("search", "max counts zones, records and comments each", "GET",
         "/api/v1/servers/localhost/search-data?q=*ext*&max=1",
         json_={"$set": [{"object_type": "zone", "name": EXT},
                         {"object_type": "record", "zone": EXT},
                         {"object_type": "comment", "zone": EXT}]}),
    step("search", "an empty q: 422", "GET", "/api/v1/servers/localhost/search-data?q=&max=10",
         status=422, json_=err("Query q can't be blank")),
]

# ---------------------------------------------------------------------------
# the parser cases: what api/pdns_json must answer to each body alone


def parser_cases():
    """The PATCH and POST zones steps whose outcome depends on the body alone, with the status and
    error Meridian must give (PowerDNS's, or the step's Meridian expectation): the data
    tests/unit/api/pdns_json_test.cc runs through parsePatch / parseZoneCreate."""
    cases = []
    for s in STEPS:
        exp = s["meridian"] or {"status": s["status"], "json": s["json"]}
        if (s["method"] not in ("PATCH", "POST") or s["raw"] is not None or s["zone_state"]
                or s["key"] != "default" or exp["status"] not in (201, 204, 400, 422)
                or (s["method"] == "POST" and s["path"] != Z)):
            continue
        error = exp["json"].get("error") if isinstance(exp.get("json"), dict) else None
        cases.append({"what": s["what"], "method": s["method"],
                      "zone": urllib.parse.unquote(s["path"].rsplit("/", 1)[1]).replace("=2F", "/")
                      if s["method"] == "PATCH" else "",
                      "body": json.dumps(s["body"]), "status": exp["status"], "error": error})
    return cases


CASES_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "unit", "api",
                          "pdns_cases.json")


def check_cases(r):
    """The committed parser cases are the ones the steps give (regenerate with --write-cases)."""
    r.begin("parser cases")
    want = json.dumps(parser_cases(), indent=1, ensure_ascii=False) + "\n"
    try:
        with open(CASES_FILE, encoding="utf-8") as f:
            have = f.read()
    except OSError as e:
        have = repr(e)
    r.check(f"{os.path.relpath(CASES_FILE)} matches STEPS (pdns_api.py --write-cases)",
            have == want, f"{len(parser_cases())} cases expected")


# ---------------------------------------------------------------------------
# matching


def match(pat, val, where="$"):
    """None when val matches pat, else a description of the first difference."""
    if isinstance(pat, str) and pat.startswith("$") and pat in ("$int", "$str", "$bool", "$list",
                                                                "$any"):
        ok = {"$int": lambda v: isinstance(v, int) and not isinstance(v, bool),
              "$str": lambda v: isinstance(v, str), "$bool": lambda v: isinstance(v, bool),
              "$list": lambda v: isinstance(v, list), "$any": lambda v: True}[pat](val)
        return None if ok else f"{where}: {pat} expected, got {common.short(val, 200)}"
    if isinstance(pat, str) and pat.startswith("$prefix:"):
        ok = isinstance(val, str) and val.startswith(pat[len("$prefix:"):])
        return None if ok else f"{where}: {common.short(pat, 300)} expected, got {common.short(val, 300)}"
    if isinstance(pat, dict) and len(pat) == 1 and next(iter(pat)) in ("$contains", "$set"):
        op, items = next(iter(pat.items()))
        if not isinstance(val, list):
            return f"{where}: a list expected, got {common.short(val, 200)}"
        if op == "$set" and len(items) != len(val):
            return f"{where}: {len(items)} elements expected, got {len(val)}: {common.short(val, 300)}"
        used = set()
        for i, p in enumerate(items):
            found = next((j for j, v in enumerate(val)
                          if j not in used and match(p, v) is None), None)
            if found is None:
                return f"{where}: no element matches {common.short(p, 300)} in {common.short(val, 600)}"
            used.add(found)
        return None
    if isinstance(pat, dict):
        if not isinstance(val, dict):
            return f"{where}: an object expected, got {common.short(val, 200)}"
        for k, p in pat.items():
            if p == "$absent":
                if k in val:
                    return f"{where}.{k}: must be absent, is {common.short(val[k], 100)}"
                continue
            if k not in val:
                return f"{where}.{k}: missing (keys: {sorted(val)})"
            d = match(p, val[k], f"{where}.{k}")
            if d:
                return d
        return None
    if isinstance(pat, list):
        if not isinstance(val, list) or len(val) != len(pat):
            return f"{where}: {common.short(pat, 200)} expected, got {common.short(val, 300)}"
        for i, (p, v) in enumerate(zip(pat, val)):
            d = match(p, v, f"{where}[{i}]")
            if d:
                return d
        return None
    if pat != val or type(pat) is not type(val):
        return f"{where}: {common.short(pat, 300)} expected, got {common.short(val, 300)}"
    return None


# ---------------------------------------------------------------------------
# the two targets


class Target:
    def __init__(self, url, key, dns_addr, dns_port):
        u = urllib.parse.urlsplit(url)
        self.scheme, self.host, self.port = u.scheme, u.hostname, u.port or 80
        self.prefix = u.path.rstrip("/")
        self.key = key
        self.dns = (dns_addr, dns_port)

    def request(self, method, path, body=None, raw=None, key="default", headers=None,
                client=""):
        """(status, parsed JSON or None, raw text, headers)."""
        cls = http.client.HTTPSConnection if self.scheme == "https" else http.client.HTTPConnection
        conn = cls(self.host, self.port, timeout=HTTP_TIMEOUT)
        # Go's net/http (external-dns, lego, terraform) sends header names in canonical form,
        # "X-Api-Key"; octoDNS (python requests) sends "X-API-Key" as written. Both send Accept and,
        # with a body, Content-Type application/json.
        if client == "octodns":
            key_header = "X-API-Key"
            h = {"Accept": "application/json", "User-Agent": "octodns/1.0 octodns-powerdns/1.2.0"}
        else:
            key_header = "X-Api-Key"
            h = {"Accept": "application/json", "User-Agent": "Go-http-client/1.1"}
        if key == "default":
            h[key_header] = self.key
        elif key is not None:
            h[key_header] = key
        data = None
        if raw is not None:
            data = raw.encode() if isinstance(raw, str) else raw
        elif body is not None:
            data = json.dumps(body).encode()
        if data is not None:
            h["Content-Type"] = "application/json"
        h.update(headers or {})
        try:
            conn.request(method, self.prefix + path, body=data, headers=h)
            resp = conn.getresponse()
            text = resp.read().decode("utf-8", "replace")
            status, rh = resp.status, dict(resp.getheaders())
        finally:
            conn.close()
        try:
            parsed = json.loads(text) if text else None
        except ValueError:
            parsed = None
        return status, parsed, text, rh

    def query(self, name, rtype):
        q = dns.message.make_query(name, rtype)
        q.flags &= ~dns.flags.RD
        return dns.query.udp(q, self.dns[0], port=self.dns[1], timeout=DNS_TIMEOUT)


class PdnsInstance:
    """A private pdns_server: sqlite3 database from Debian's schema, API and DNS on loopback
    free ports, no caches (a DNS check right after a change must see it), stopped by PID."""

    def __init__(self, ctx, tmp):
        self.tmp = tmp
        self.api_port = common.pick_port(ctx, udp=False)
        self.dns_port = common.pick_port(ctx)
        self.proc = None
        self.log_path = os.path.join(tmp, "pdns.log")

    def start(self):
        db = os.path.join(self.tmp, "pdns.sqlite3")
        schema = "/usr/share/pdns-backend-sqlite3/schema/schema.sqlite3.sql"
        with open(schema) as f:
            subprocess.run(["sqlite3", db], stdin=f, check=True)
        argv = ["pdns_server", "--no-config", "--launch=gsqlite3", f"--gsqlite3-database={db}",
                "--api=yes", f"--api-key={KEY}", "--webserver=yes",
                f"--webserver-port={self.api_port}", "--webserver-address=127.0.0.1",
                "--webserver-allow-from=127.0.0.1", "--local-address=127.0.0.1",
                f"--local-port={self.dns_port}", f"--socket-dir={self.tmp}", "--guardian=no",
                "--daemon=no", "--disable-syslog", "--cache-ttl=0", "--query-cache-ttl=0",
                "--negquery-cache-ttl=0", "--zone-cache-refresh-interval=0",
                "--security-poll-suffix=", "--only-notify=127.0.0.1/32", "--loglevel=4"]
        self.logf = open(self.log_path, "wb")
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=self.logf,
                                     stderr=subprocess.STDOUT, cwd=self.tmp)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            try:
                socket.create_connection(("127.0.0.1", self.api_port), timeout=0.5).close()
                return True
            except OSError:
                time.sleep(0.1)
        return False

    def stop(self):
        if self.proc and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        if self.proc:
            self.logf.close()

    def tail(self):
        with open(self.log_path, "rb") as f:
            return "\n".join(f.read().decode("utf-8", "replace").splitlines()[-15:])


# ---------------------------------------------------------------------------
# the replay


def dns_check(r, t, label, name, rtype, want):
    try:
        resp = t.query(name, rtype)
    except Exception as e:  # noqa: BLE001 - a timeout or a refused socket is a failed check
        r.check(f"{label}: dig {name} {rtype}", False, f"no answer: {e!r}")
        return
    rcode = dns.rcode.to_text(resp.rcode())
    if isinstance(want, str):
        r.check(f"{label}: dig {name} {rtype} -> {want}", rcode == want,
                f"rcode {rcode}, answer {[str(a) for a in resp.answer]}")
        return
    got = sorted(rd.to_text() for rrs in resp.answer
                 if rrs.rdtype == dns.rdatatype.from_text(rtype) for rd in rrs)
    r.check(f"{label}: dig {name} {rtype} -> {want or 'NODATA'}",
            rcode == "NOERROR" and got == sorted(want), f"rcode {rcode}, got {got}")


def replay(r, t, record, target):
    section = None
    for i, s in enumerate(STEPS, 1):
        if target == "meridian" and s["meridian"]:
            s = dict(s, status=s["meridian"]["status"], json=s["meridian"].get("json"))
        if s["client"] != section:
            section = s["client"]
            r.begin(section)
        label = f"#{i} {s['what']}"
        try:
            status, parsed, text, headers = t.request(s["method"], s["path"], s["body"], s["raw"],
                                                      s["key"], s["headers"], s["client"])
        except (OSError, http.client.HTTPException) as e:
            r.check(f"{label}: {s['method']} {s['path']}", False, f"no HTTP answer: {e!r}")
            continue
        if record:
            common.log(f"   {s['method']} {s['path']} -> {status} {text}")
        detail = f"{s['method']} {s['path']} -> {status} {common.short(text, 800)}"
        r.check(f"{label}: {s['method']} {s['path']} -> {s['status']}", status == s["status"],
                detail)
        if text:
            ctype = headers.get("Content-Type", "")
            r.check(f"{label}: Content-Type application/json", ctype == "application/json",
                    f"Content-Type {ctype!r}")
        if s["json"] is not None:
            if parsed is None:
                r.check(f"{label}: JSON body", False, detail)
            else:
                d = match(s["json"], parsed)
                r.check(f"{label}: body", d is None, d or "")
        elif s["status"] == 204:
            r.check(f"{label}: empty body", text == "", detail)
        for name, rtype, want in s["dns"]:
            dns_check(r, t, label, name, rtype, want[target] if isinstance(want, dict) else want)


def run_meridian(r, args, t0):
    """The replay against a meridian started here: no zones configured, one read-write key, the
    state directory (API-created zones, journals, audit log) in a temporary directory."""
    r.begin("meridian")
    tmp = tempfile.mkdtemp(prefix="meridian-replay-")
    args.meridian = os.path.abspath(args.meridian)
    ctx = type("Ctx", (), {"ports": set(), "tmp": tmp, "servers": [], "meridian": args.meridian,
                           "r": r})()
    rc, out, err = common.run_tool([args.meridian, "api", "hash-key", KEY], 10)
    if not r.check("meridian api hash-key", rc == 0, err):
        return r.finish(t0)
    api_port = common.pick_port(ctx, udp=False)
    dns_port = common.pick_port(ctx)
    conf = os.path.join(tmp, "meridian.toml")
    common.write(conf, common.api_config(api_port, "replay", out))
    srv = common.start_server(ctx, "meridian", ["--config", conf, "--listen",
                                                f"127.0.0.1:{dns_port}"])
    try:
        if srv is None:
            return r.finish(t0)
        replay(r, Target(f"http://127.0.0.1:{api_port}", KEY, "127.0.0.1", dns_port),
               args.record, "meridian")
    finally:
        common.stop_all(ctx.servers)
        if args.keep or r.failed:
            common.log(f"meridian log and state kept in {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    return r.finish(t0)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--target", choices=("pdns", "meridian"), required=True)
    ap.add_argument("--url", help="meridian: the API's base URL, e.g. http://127.0.0.1:8053")
    ap.add_argument("--key", help="meridian: an X-API-Key with read-write scope")
    ap.add_argument("--dns-port", type=int, help="meridian: its DNS port on --dns-address")
    ap.add_argument("--dns-address", default="127.0.0.1")
    ap.add_argument("--meridian", help="meridian: start this binary (API key, state directory, "
                    "loopback ports) instead of --url/--key/--dns-port")
    ap.add_argument("--record", action="store_true", help="print every answer in full")
    ap.add_argument("--write-cases", action="store_true",
                    help="write tests/unit/api/pdns_cases.json from STEPS and exit")
    ap.add_argument("--verbose", "-v", action="store_true", help="print passing checks too")
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = ap.parse_args()
    r = common.Results(args.verbose or args.record)
    t0 = time.monotonic()
    if args.write_cases:
        with open(CASES_FILE, "w", encoding="utf-8") as f:
            f.write(json.dumps(parser_cases(), indent=1, ensure_ascii=False) + "\n")
        return 0
    check_cases(r)
    if args.target == "meridian" and args.meridian:
        return run_meridian(r, args, t0)
    if args.target == "meridian":
        if not (args.url and args.key and args.dns_port):
            ap.error("--target meridian needs --url, --key and --dns-port")
        replay(r, Target(args.url, args.key, args.dns_address, args.dns_port), args.record,
               "meridian")
        return r.finish(t0)

    r.begin("pdns")
    if not r.check("pdns_server and sqlite3 installed (scripts/deps.sh: pdns-server, "
                   "pdns-backend-sqlite3, sqlite3)",
                   shutil.which("pdns_server") and shutil.which("sqlite3")):
        return r.finish(t0)
    tmp = tempfile.mkdtemp(prefix="meridian-pdns-")
    ctx = type("Ctx", (), {"ports": set()})()
    pdns = PdnsInstance(ctx, tmp)
    try:
        if not r.check("pdns_server starts", pdns.start(), pdns.tail()):
            return r.finish(t0)
        replay(r, Target(f"http://127.0.0.1:{pdns.api_port}", KEY, "127.0.0.1", pdns.dns_port),
               args.record, "pdns")
    finally:
        pdns.stop()
        if args.keep or r.failed:
            common.log(f"pdns log and database kept in {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    return r.finish(t0)


if __name__ == "__main__":
    sys.exit(main())
