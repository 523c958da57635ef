"""The `zones` section of run.py: a change through the API survives a restart, and a hand edit
the server has not reloaded is never overwritten.

A meridian with `control.state_dir`, one read-write key and one zone file: a PATCH (REPLACE of an
A RRset) answers 204 and the very next query sees the new address and serial; the zone file holds
the record (written back) and STATE/journal/ZONE.journal exists; after SIGTERM and a new start the
change is still served. Then the file is edited by hand (no reload): the next PATCH is 409 and the
file keeps the hand edit; after SIGHUP the edit is served and a PATCH goes through on top of it
(serial + 1). GET /api/v1/audit lists the two patches and the reload, by key and operation.
Serial policies: a second zone with `serial_policy = "date"` shows soa_edit_api DEFAULT and its
PATCH gets YYYYMMDD00 of the UTC day; zed.test (increment) shows INCREASE, after `PUT
soa_edit_api EPOCH` its PATCH gets the time as serial, and after OFF (no policy) +1 again.
Before the restart the zone also gets PowerDNS attributes (kind, account, masters through PUT, a
metadata kind, an RRset comment); after it GET shows the same, kept in STATE/meta/zed.test.json. A
corrupt attributes file at the next start is reported in the log and the zone still serves.
"""

import os
import signal
import time

import dns.message
import dns.query
import dns.rdatatype

from common import api_config, api_request, pick_port, run_tool, start_server, write

ZONE = """$ORIGIN zed.test.
$TTL 300
@ SOA ns1 hostmaster {serial} 7200 3600 1209600 300
@ NS ns1
ns1 A 192.0.2.1
www A {www}
"""
SECRET = "zones-section-secret-41d2"


def http(base, method, path, body=None):
    """(status, parsed JSON or None) of one request with the key."""
    return api_request(base, SECRET, method, path, body)


def answer(port, name, rtype):
    """The rdata texts and the SOA serial seen for name/type."""
    q = dns.message.make_query(name, rtype)
    resp = dns.query.udp(q, "127.0.0.1", port=port, timeout=3)
    texts = sorted(rd.to_text() for rr in resp.answer for rd in rr)
    return texts


def serial(port):
    texts = answer(port, "zed.test.", "SOA")
    return int(texts[0].split()[2]) if texts else None


def www_patch(address):
    return {"rrsets": [{"name": "www.zed.test.", "type": "A", "ttl": 300, "changetype": "REPLACE",
                        "records": [{"content": address, "disabled": False}]}]}


def section_zones(ctx):
    r = ctx.r
    tmp = os.path.join(ctx.tmp, "zones")
    os.makedirs(tmp, exist_ok=True)
    rc, key_hash, err = run_tool([ctx.meridian, "api", "hash-key", SECRET], 10)
    if not r.check("api hash-key", rc == 0, err):
        return
    zone_file = os.path.join(tmp, "zed.test.zone")
    write(zone_file, ZONE.format(serial=1, www="192.0.2.10"))
    write(os.path.join(tmp, "dated.test.zone"),
          ZONE.replace("zed.test.", "dated.test.").format(serial=7, www="192.0.2.7"))
    api_port = pick_port(ctx, udp=False)
    dns_port = pick_port(ctx)
    conf = os.path.join(tmp, "zones.toml")
    write(conf, api_config(api_port, "ops", key_hash, [("zed.test", "zed.test.zone"),
                                                       ("dated.test", "dated.test.zone",
                                                        'serial_policy = "date"')]))
    argv = ["--config", conf, "--listen", f"127.0.0.1:{dns_port}"]
    base = f"http://127.0.0.1:{api_port}"
    zpath = "/api/v1/servers/localhost/zones/zed.test."
    srv = start_server(ctx, "zones", argv, check_started=True)
    if srv is None:
        return
    try:
        status, body = http(base, "PATCH", zpath, www_patch("192.0.2.20"))
        r.check("PATCH: 204", status == 204, f"{status} {body}")
        r.check("the query right after the 204 sees the change",
                answer(dns_port, "www.zed.test.", "A") == ["192.0.2.20"] and serial(dns_port) == 2,
                f"{answer(dns_port, 'www.zed.test.', 'A')} serial {serial(dns_port)}")
        with open(zone_file) as f:
            text = f.read()
        r.check("the zone file is written back", "192.0.2.20" in text and "192.0.2.10" not in text,
                text)
        journal = os.path.join(tmp, "state", "journal", "zed.test.journal")
        r.check("the journal is in the state directory", os.path.exists(journal),
                str(os.listdir(tmp)))
        # PowerDNS attributes: kept across the restart below.
        status, body = http(base, "PUT", zpath, {"kind": "Master", "account": "team-a",
                                                 "masters": ["192.0.2.53"]})
        r.check("PUT zone kind/account/masters: 204", status == 204, f"{status} {body}")
        status, body = http(base, "PUT", zpath + "/metadata/ALLOW-AXFR-FROM",
                            {"metadata": ["192.0.2.0/24"]})
        r.check("PUT metadata: 200", status == 200, f"{status} {body}")
        status, body = http(base, "PATCH", zpath, {"rrsets": [
            {"name": "www.zed.test.", "type": "A", "changetype": "REPLACE",
             "comments": [{"content": "the web front", "account": "ops", "modified_at": 1700000000}]}]})
        r.check("PATCH of a comment alone: 204", status == 204, f"{status} {body}")

        def attributes():
            status, z = http(base, "GET", zpath)
            _, md = http(base, "GET", zpath + "/metadata/ALLOW-AXFR-FROM")
            if status != 200:
                return status, z
            www = [rr for rr in z["rrsets"] if rr["name"] == "www.zed.test." and rr["type"] == "A"]
            return (z["kind"], z["account"], z["masters"],
                    www[0]["comments"] if www else None, md.get("metadata") if isinstance(md, dict) else md)
        before_restart = attributes()
        expected = ("Master", "team-a", ["192.0.2.53"],
                    [{"content": "the web front", "account": "ops", "modified_at": 1700000000}],
                    ["192.0.2.0/24"])
        r.check("the attributes are shown", before_restart == expected, str(before_restart))
        meta_file = os.path.join(tmp, "state", "meta", "zed.test.json")
        r.check("the attributes file is in the state directory", os.path.exists(meta_file),
                str(os.listdir(os.path.join(tmp, "state"))))
        srv.stop()
        srv = start_server(ctx, "zones-restarted", argv, check_started=True)
        if srv is None:
            return
        r.check("after a restart the change is still served",
                answer(dns_port, "www.zed.test.", "A") == ["192.0.2.20"] and serial(dns_port) == 2,
                f"{answer(dns_port, 'www.zed.test.', 'A')} serial {serial(dns_port)}")
        after_restart = attributes()
        r.check("after a restart kind, account, masters, metadata and the comment are the same",
                after_restart == expected, str(after_restart))

        # A hand edit the server has not reloaded: the API refuses to overwrite it.
        hand = ZONE.format(serial=10, www="192.0.2.99")
        write(zone_file, hand)
        status, body = http(base, "PATCH", zpath, www_patch("192.0.2.30"))
        r.check("PATCH racing a hand edit: 409 with a message to reload",
                status == 409 and isinstance(body, dict) and "reload" in body.get("error", ""),
                f"{status} {body}")
        with open(zone_file) as f:
            r.check("the hand edit stays in the file", f.read() == hand)
        r.check("the served version is unchanged by the refused PATCH",
                answer(dns_port, "www.zed.test.", "A") == ["192.0.2.20"])
        srv.signal(signal.SIGHUP)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and serial(dns_port) != 10:
            time.sleep(0.05)
        r.check("after SIGHUP the hand edit is served", serial(dns_port) == 10)
        status, body = http(base, "PATCH", zpath, www_patch("192.0.2.30"))
        r.check("then the PATCH goes through on top of it (serial 11)",
                status == 204 and serial(dns_port) == 11
                and answer(dns_port, "www.zed.test.", "A") == ["192.0.2.30"], f"{status} {body}")
        status, entries = http(base, "GET", "/api/v1/audit?zone=zed.test")
        ops = [(e["operation"], e["key"], e["old_serial"], e["new_serial"])
               for e in entries] if status == 200 else entries
        r.check("GET /api/v1/audit: the patches and the reload, in order",
                ops == [("patch", "ops", 1, 2), ("reload", "reload", 2, 10),
                        ("patch", "ops", 10, 11)], f"{status} {ops}")
        status, entries = http(base, "GET", "/api/v1/audit?zone=zed.test&limit=1")
        r.check("GET /api/v1/audit?limit=1: the last one",
                status == 200 and len(entries) == 1 and entries[0]["new_serial"] == 11,
                f"{status} {entries}")

        # A corrupt attributes file: reported, and the zone serves all the same.
        srv.stop()
        write(meta_file, '{"format": 1, "kind": ')
        srv = start_server(ctx, "zones-corrupt-meta", argv, check_started=True)
        if srv is None:
            return
        r.check("a corrupt attributes file is reported in the log",
                "attributes file" in srv.log_text() and "unreadable" in srv.log_text(), srv.tail())
        status, z = http(base, "GET", zpath)
        r.check("the zone still serves, without its attributes",
                serial(dns_port) == 11 and status == 200 and z.get("kind") == "Native",
                f"serial {serial(dns_port)} {status} {z if status != 200 else z.get('kind')}")
        serial_policies(r, base, dns_port, zpath)
    finally:
        srv.stop()


def serial_policies(r, base, dns_port, zpath):
    """[[zone]] serial_policy and the API's soa_edit_api (docs/api.md): one setting."""
    status, body = http(base, "GET", zpath + "?rrsets=false")
    r.check("zed.test (serial_policy increment, the default) shows soa_edit_api INCREASE",
            status == 200 and body.get("soa_edit_api") == "INCREASE", f"{status} {body}")
    dpath = "/api/v1/servers/localhost/zones/dated.test."
    status, body = http(base, "GET", dpath + "?rrsets=false")
    r.check("dated.test (serial_policy date) shows soa_edit_api DEFAULT",
            status == 200 and body.get("soa_edit_api") == "DEFAULT", f"{status} {body}")
    days = {time.strftime("%Y%m%d", time.gmtime())}
    patch = www_patch("192.0.2.8")
    patch["rrsets"][0]["name"] = "www.dated.test."
    status, body = http(base, "PATCH", dpath, patch)
    days.add(time.strftime("%Y%m%d", time.gmtime()))
    got = answer(dns_port, "dated.test.", "SOA")
    got = int(got[0].split()[2]) if got else None
    r.check("a PATCH of dated.test: serial YYYYMMDD00 of the UTC day (7 before)",
            status == 204 and got in {int(d + "00") for d in days}, f"{status} {body} {got}")
    # soa_edit_api EPOCH through the API: zed.test's next change takes the time as its serial.
    status, body = http(base, "PUT", zpath, {"soa_edit_api": "EPOCH"})
    r.check("PUT soa_edit_api EPOCH: 204", status == 204, f"{status} {body}")
    status, body = http(base, "GET", zpath + "?rrsets=false")
    r.check("GET shows soa_edit_api EPOCH", status == 200 and body.get("soa_edit_api") == "EPOCH",
            f"{status} {body}")
    t0 = int(time.time())
    status, body = http(base, "PATCH", zpath, www_patch("192.0.2.31"))
    t1 = int(time.time())
    r.check("then a PATCH's serial is the time (unixtime)",
            status == 204 and t0 <= (serial(dns_port) or 0) <= t1,
            f"{status} {body} serial {serial(dns_port)} time {t0}..{t1}")
    # OFF names no policy: the zone's serial_policy (increment) again, +1.
    before = serial(dns_port)
    status, _ = http(base, "PUT", zpath, {"soa_edit_api": "OFF"})
    status2, body = http(base, "PATCH", zpath, www_patch("192.0.2.32"))
    r.check("soa_edit_api OFF: the zone's serial_policy (increment) moves it by one",
            status == 204 and status2 == 204 and serial(dns_port) == before + 1,
            f"{status} {status2} {body} {before} -> {serial(dns_port)}")

