"""The `api_meridian` section of run.py: Meridian's own API resources on the real binary, with curl.

A meridian with two steered services (one with unchecked endpoints, one whose endpoint has a TCP
check of a loopback port nothing listens on) and two keys (read-write, read-only): GET
/api/v1/health lists every slot (the checked one goes down: verdict "down", last_error set),
/api/v1/health/{target}; PUT /api/v1/overrides needs a key (401) and a read-write one (403), names a
missing field (422), passes the service's message for a bad mode or target (422), sets the override
(GET /api/v1/overrides lists it, dig answers from the other region, an SSE client gets an
`override` event, and so does one set by `meridianctl override`), DELETE clears it; explain names a
missing parameter (400) and answers as the server does; POST /api/v1/reload answers after the
reload is published (dig sees the edit at once); /metrics is the Prometheus text with the API's
status classes and wants a key; services and regions list the configuration; meridianctl --api
runs health, explain, reload and metrics (401/403 as exit 1, no key exit 2); then a server with
api.metrics_without_key = true answers /metrics without a key (and nothing else).
"""

import json
import os
import subprocess

from api_section import RO_SECRET, RW_SECRET, curl, hash_key, json_or_none, read_events_until
from common import api_keys_toml, check_log_clean, pick_port, run_tool, start_server, steering_toml, write

ZONE = """$ORIGIN steer.test.
$TTL 300
@ SOA ns1 hostmaster {serial} 7200 3600 1209600 300
@ NS ns1
ns1 A 192.0.2.1
www A 192.0.2.99
dead A 192.0.2.98
{extra}
"""


def base_config(port, control, zone_file, rw_hash, ro_hash, extra=""):
    """[api] on port, the [control] line given, the two keys, steer.test and www.steer.test."""
    return f"""[api]
listen = ["127.0.0.1:{port}"]
{extra}
[control]
{control}

{api_keys_toml(rw_hash, ro_hash)}
[[zone]]
name = "steer.test"
file = "{zone_file}"

{steering_toml("www.steer.test")}"""


def config(port, sock, zone_file, rw_hash, ro_hash, dead_port, extra=""):
    return base_config(port, f'socket = "{sock}"', zone_file, rw_hash, ro_hash, extra) + f"""
[[service]]
name = "dead.steer.test"
check = "dead"

[[service.pool]]
region = "eu"
endpoints = ["127.0.0.1"]

[[check]]
name = "dead"
type = "tcp"
port = {dead_port}
interval_ms = 200
timeout_ms = 200
fall = 1
"""


RO = ["-H", f"X-API-Key: {RO_SECRET}"]
RW = ["-H", f"X-API-Key: {RW_SECRET}"]
PUT = ["-X", "PUT", "-H", "Content-Type: application/json", "--data-binary"]


def open_events(base, replay=False):
    """A `curl -N` client of /api/v1/events (read-only key) and what it read up to the comment.
    replay: sent with `Last-Event-ID: 0`, so the events since the server started come first (one
    that fired before curl connected is not missed)."""
    since = ["-H", "Last-Event-ID: 0"] if replay else []
    ev = subprocess.Popen(["curl", "-s", "-N", "--max-time", "60"] + RO + since +
                          [f"{base}/api/v1/events"],
                          stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    return ev, read_events_until(ev, ": meridian events")


def stop_with_events(r, label, srv, ev):
    """Ends the event client (if any), then the server: exit 0 and a clean log."""
    if ev is not None:
        ev.kill()
        ev.wait()
    rc, secs = srv.stop()
    r.check(f"{label} server: SIGTERM -> exit 0", rc == 0, f"rc={rc}")
    check_log_clean(r, f"{label} server", srv.log_text())


def dig(dns_port, name, subnet=None):
    """The A records answered for name (asked with that EDNS Client Subnet, when given)."""
    ecs = [f"+subnet={subnet}"] if subnet else []
    rc, out, err = run_tool(["dig", "+short", "+time=2", "+tries=2", "-p", str(dns_port)] + ecs
                            + ["@127.0.0.1", name, "A"], 15)
    return out.split()


def section_api_meridian(ctx):
    r = ctx.r
    tmp = ctx.tmp
    _, rw_hash, _ = hash_key(ctx, RW_SECRET)
    _, ro_hash, _ = hash_key(ctx, RO_SECRET)
    zone_file = os.path.join(tmp, "steer.test.zone")
    write(zone_file, ZONE.format(serial=1, extra=""))
    port = pick_port(ctx, udp=False)
    dns_port = pick_port(ctx)
    dead_port = pick_port(ctx, udp=False)
    sock = os.path.join(tmp, "api-meridian.sock")
    conf = os.path.join(tmp, "api-meridian.toml")
    write(conf, config(port, sock, zone_file, rw_hash, ro_hash, dead_port))
    srv = start_server(ctx, "api-meridian", ["--config", conf, "--listen", f"127.0.0.1:{dns_port}"],
                       check_started=True)
    if srv is None:
        return
    base = f"http://127.0.0.1:{port}"
    ro, rw, put = RO, RW, PUT
    ev = None
    try:
        # The dead check goes down about 200 ms after the start, perhaps before curl connects.
        ev, events = open_events(base, replay=True)

        # health: the checked slot goes down (a `health` event), every slot is listed.
        if "event: health\n" not in events:
            events += read_events_until(ev, "event: health\n")
        r.check("SSE: the checked endpoint going down is a `health` event",
                "event: health\n" in events and '"verdict":"down"' in events, repr(events))
        rc, status, headers, body = curl(ro + [f"{base}/api/v1/health"])
        eps = (json_or_none(body) or {}).get("endpoints", [])
        by_label = {e.get("label"): e for e in eps}
        dead = by_label.get("127.0.0.1 (dead)", {})
        r.check("GET /api/v1/health: 200, every slot with verdict, usable and where it is used",
                status == 200 and len(eps) == 3
                and by_label.get("eu/198.51.100.1", {}).get("where") == [
                    {"service": "www.steer.test.", "region": "eu"}]
                and dead.get("verdict") == "down" and dead.get("usable") is False
                and dead.get("checked") is True and dead.get("last_error"),
                f"{status} {body}")
        rc, status, _, body = curl(ro + [f"{base}/api/v1/health/us%2F198.51.100.3"])
        r.check("GET /api/v1/health/{label}: the one slot",
                status == 200 and (json_or_none(body) or {}).get("address") == "198.51.100.3",
                f"{status} {body}")
        rc, status, _, body = curl(ro + [f"{base}/api/v1/health/203.0.113.1"])
        r.check("GET /api/v1/health/{unknown}: 404", status == 404, f"{status} {body}")

        # Overrides: auth, validation, then one that takes.
        good = json.dumps({"what": "region:eu", "mode": "force-down"})
        for label, args, want_status, want_error in [
            ("no key", put + [good], 401, "Unauthorized"),
            ("read-only key", ro + put + [good], 403, "API key 'viewer' is read-only"),
            ("no mode", rw + put + ['{"what": "region:eu"}'], 422, "mode: a string is required"),
            ("bad mode", rw + put + ['{"what": "region:eu", "mode": "off"}'], 422,
             "override mode must be force-up, force-down, drain or none"),
            ("unknown target", rw + put + ['{"what": "region:mars", "mode": "drain"}'], 422,
             "nothing matches 'region:mars' (see meridianctl health)"),
            ("not JSON", rw + put + ["{"], 400, "the body must be a JSON object"),
        ]:
            rc, status, _, body = curl(args + [f"{base}/api/v1/overrides"])
            r.check(f"PUT /api/v1/overrides, {label}: {want_status} {want_error!r}",
                    status == want_status and (json_or_none(body) or {}).get("error") == want_error,
                    f"{status} {body}")
        r.check("before the override dig answers from eu", dig(dns_port, "www.steer.test") == ["198.51.100.1"],
                "")
        rc, status, _, body = curl(rw + put + [good] + [f"{base}/api/v1/overrides"])
        res = json_or_none(body) or {}
        r.check("PUT /api/v1/overrides region:eu force-down: 200 with the slot changed",
                status == 200 and res.get("mode") == "force-down"
                and [c.get("label") for c in res.get("changes", [])] == ["eu/198.51.100.1", "127.0.0.1 (dead)"],
                f"{status} {body}")
        r.check("after it dig answers from us", dig(dns_port, "www.steer.test") == ["198.51.100.3"], "")
        rc, status, _, body = curl(ro + [f"{base}/api/v1/overrides"])
        listed = [o.get("label") for o in (json_or_none(body) or {}).get("overrides", [])]
        r.check("GET /api/v1/overrides lists the forced slots", status == 200
                and listed == ["eu/198.51.100.1", "127.0.0.1 (dead)"], f"{status} {body}")
        events += read_events_until(ev, '"override":"force-down"')
        r.check("SSE: the override is an `override` event",
                "event: override\n" in events and '"label":"eu/198.51.100.1"' in events, repr(events))
        rc, out, err = run_tool([ctx.meridianctl, "--socket", sock, "override", "us/198.51.100.3",
                                 "drain"], 15)
        events += read_events_until(ev, '"override":"drain"')
        r.check("SSE: an override by meridianctl (control socket) is an `override` event too",
                rc == 0 and '"label":"us/198.51.100.3"' in events and '"override":"drain"' in events,
                f"rc={rc} {out}{err} {events!r}")
        rc, status, _, body = curl(rw + ["-X", "DELETE", f"{base}/api/v1/overrides/region:eu"])
        rc2, status2, _, body2 = curl(rw + put + ['{"mode": "none"}'] + [f"{base}/api/v1/overrides/us%2F198.51.100.3"])
        rc3, _, _, body3 = curl(ro + [f"{base}/api/v1/overrides"])
        r.check("DELETE /api/v1/overrides/{what} and PUT .../{what} mode none clear them",
                status == 200 and status2 == 200
                and (json_or_none(body3) or {}).get("overrides") == [], f"{status} {status2} {body3}")

        # Explain.
        rc, status, _, body = curl(ro + [f"{base}/api/v1/explain?client=192.0.2.7"])
        r.check("GET /api/v1/explain without name: 400 naming it",
                status == 400 and (json_or_none(body) or {}).get("error") == "name: the query parameter is required",
                f"{status} {body}")
        rc, status, _, body = curl(ro + [f"{base}/api/v1/explain?name=www.steer.test&type=TXT&client=192.0.2.7"])
        r.check("GET /api/v1/explain with type=TXT: 422 naming the type",
                status == 422 and "type" in (json_or_none(body) or {}).get("error", ""), f"{status} {body}")
        rc, status, _, body = curl(ro + [f"{base}/api/v1/explain?name=www.steer.test&client=192.0.2.0/24"])
        e = json_or_none(body) or {}
        r.check("GET /api/v1/explain: steered, geo policy, the eu answer, as ECS",
                status == 200 and e.get("steered") is True and e.get("policy") == ["up", "geo"]
                and e.get("answer") == ["eu/198.51.100.1"] and e.get("from_ecs") is True,
                f"{status} {body}")

        # Reload: answered after publication.
        rc, status, _, body = curl(ro + ["-X", "POST", f"{base}/api/v1/reload"])
        r.check("POST /api/v1/reload with a read-only key: 403", status == 403, f"{status} {body}")
        write(zone_file, ZONE.format(serial=2, extra="new A 192.0.2.55"))
        rc, status, _, body = curl(rw + ["-X", "POST", f"{base}/api/v1/reload"])
        rel = json_or_none(body) or {}
        answered = dig(dns_port, "new.steer.test")
        r.check("POST /api/v1/reload: 200 {loaded 1, failed 0}, and dig sees the edit right after",
                status == 200 and rel.get("loaded") == 1 and rel.get("failed") == 0
                and rel.get("errors") == {} and answered == ["192.0.2.55"], f"{status} {body} {answered}")

        # Services and regions.
        rc, status, _, body = curl(ro + [f"{base}/api/v1/services"])
        svcs = {s.get("name"): s for s in (json_or_none(body) or [])}
        www = svcs.get("www.steer.test.", {})
        r.check("GET /api/v1/services: both services, pools by region with health",
                status == 200 and set(svcs) == {"www.steer.test.", "dead.steer.test."}
                and [p.get("region") for p in www.get("pools", [])] == ["eu", "us"]
                and www["pools"][0]["endpoints"][0].get("health", {}).get("usable") is True,
                f"{status} {body}")
        rc, status, _, body = curl(ro + [f"{base}/api/v1/regions"])
        r.check("GET /api/v1/regions", status == 200 and json_or_none(body) == [
            {"name": "eu", "latitude": 50.1, "longitude": 8.7, "bias_km": 0.0}, {"name": "us"}],
            f"{status} {body}")

        # /metrics.
        rc, status, _, body = curl([f"{base}/metrics"])
        r.check("GET /metrics without a key: 401 by default", status == 401, f"{status}")
        rc, status, headers, body = curl(ro + [f"{base}/metrics"])
        r.check("GET /metrics: Prometheus text 0.0.4 with reloads, health and the API's status classes",
                status == 200 and headers.get("content-type", "").startswith("text/plain; version=0.0.4")
                and "meridian_reloads_total{outcome=\"ok\"}" in body
                and "meridian_api_responses_total{class=\"4xx\"}" in body
                and "meridian_api_responses_total{class=\"2xx\"}" in body, f"{status} {headers} {body[:400]}")

        # meridianctl over the API: the same commands, tables or JSON; errors with exit codes.
        ctl = [ctx.meridianctl, "--api", base]
        rc, out, err = run_tool(ctl + ["--key", RO_SECRET, "health"], 15)
        r.check("meridianctl --api health: a table with every slot",
                rc == 0 and out.startswith("ID") and "us/198.51.100.3" in out
                and "127.0.0.1 (dead)" in out and len(out.splitlines()) == 4, f"rc={rc} {out}{err}")
        rc, out, err = run_tool(ctl + ["--key", RO_SECRET, "--json", "explain", "www.steer.test",
                                       "192.0.2.7"], 15)
        r.check("meridianctl --api --json explain: the API's JSON",
                rc == 0 and (json_or_none(out) or {}).get("answer") == ["eu/198.51.100.1"],
                f"rc={rc} {out}{err}")
        rc, out, err = run_tool(ctl + ["explain", "www.steer.test", "A", "192.0.2.7"], 15,
                                env=dict(os.environ, MERIDIAN_API_KEY=RO_SECRET))
        r.check("meridianctl --api explain (key from $MERIDIAN_API_KEY): the policy and decision",
                rc == 0 and "policy: up -> geo" in out and "decision answer: eu/198.51.100.1" in out,
                f"rc={rc} {out}{err}")
        rc, out, err = run_tool(ctl + ["--key", RO_SECRET, "reload"], 15)
        r.check("meridianctl --api reload with a read-only key: exit 1, the 403 on stderr",
                rc == 1 and "403 API key 'viewer' is read-only" in err, f"rc={rc} {out}{err}")
        rc, out, err = run_tool(ctl + ["--key", RW_SECRET, "reload"], 15)
        r.check("meridianctl --api reload: exit 0, the report",
                rc == 0 and out.startswith("ok ") and "0 failed" in out, f"rc={rc} {out}{err}")
        rc, out, err = run_tool(ctl + ["--key", RO_SECRET, "metrics"], 15)
        r.check("meridianctl --api metrics: the Prometheus text",
                rc == 0 and "meridian_api_requests_total" in out, f"rc={rc} {err}")
        rc, out, err = run_tool(ctl + ["--key", "wrong", "health"], 15)
        r.check("meridianctl --api with a wrong key: exit 1, 401", rc == 1 and "401" in err,
                f"rc={rc} {err}")
        rc, out, err = run_tool([ctx.meridianctl, "--api", base, "health"], 15,
                                env={k: v for k, v in os.environ.items() if k != "MERIDIAN_API_KEY"})
        r.check("meridianctl --api without a key: exit 2 (usage)", rc == 2, f"rc={rc} {err}")
        rc, out, err = run_tool([ctx.meridianctl, "--socket", sock, "health"], 15)
        r.check("meridianctl over the socket still works beside it", rc == 0 and out.startswith("ok"),
                f"rc={rc} {out}{err}")
    finally:
        stop_with_events(r, "api_meridian", srv, ev)

    # api.metrics_without_key = true: /metrics alone answers without a key.
    port = pick_port(ctx, udp=False)
    dns_port = pick_port(ctx)
    conf = os.path.join(tmp, "api-meridian-open.toml")
    write(conf, config(port, sock + "2", zone_file, rw_hash, ro_hash, dead_port,
                       "metrics_without_key = true"))
    srv = start_server(ctx, "api-meridian-open", ["--config", conf, "--listen", f"127.0.0.1:{dns_port}"])
    if srv is None:
        r.check("a server with api.metrics_without_key starts", False)
        return
    try:
        base = f"http://127.0.0.1:{port}"
        rc, status, _, body = curl([f"{base}/metrics"])
        rc2, status2, _, _ = curl([f"{base}/api/v1/health"])
        r.check("api.metrics_without_key = true: /metrics 200 without a key, /api/v1/health still 401",
                status == 200 and "meridian_api_requests_total" in body and status2 == 401,
                f"{status} {status2}")
    finally:
        srv.stop()

    section_api_services(ctx, zone_file, rw_hash, ro_hash)


# new.steer.test: eu for everyone but 10.1.0.0/16 (by ECS), which gets us.
NEW_SERVICE = {
    "ttl": 10, "policy": ["up", "geo"],
    "geo": {"default": ["eu", "us"], "cidr": {"10.1.0.0/16": ["us"]}},
    "pool": [{"region": "eu", "endpoints": ["198.51.100.7"]},
             {"region": "us", "endpoints": ["198.51.100.8"]}],
}


def section_api_services(ctx, zone_file, rw_hash, ro_hash):
    """Services through the API: created, steered by dig (with and without ECS), re-policied,
    refused bodies changing nothing, kept across a restart, deleted (the zone's RRset again)."""
    r = ctx.r
    write(zone_file, ZONE.format(serial=3, extra="new A 192.0.2.50"))
    port = pick_port(ctx, udp=False)
    dns_port = pick_port(ctx)
    state = os.path.join(ctx.tmp, "api-services-state")
    conf = os.path.join(ctx.tmp, "api-services.toml")
    write(conf, base_config(port, f'state_dir = "{state}"', zone_file, rw_hash, ro_hash))
    args = ["--config", conf, "--listen", f"127.0.0.1:{dns_port}"]
    srv = start_server(ctx, "api-services", args, check_started=True)
    if srv is None:
        return
    base = f"http://127.0.0.1:{port}"
    svc_url = f"{base}/api/v1/services/new.steer.test"
    ro, rw, put = RO, RW, PUT
    ev = None
    try:
        ev, events = open_events(base)
        r.check("before the PUT dig answers new.steer.test from the zone file",
                dig(dns_port, "new.steer.test") == ["192.0.2.50"], "")
        body = json.dumps(NEW_SERVICE)
        for label, args_, want in [("no key", put + [body], 401), ("read-only key", ro + put + [body], 403)]:
            rc, status, _, out = curl(args_ + [svc_url])
            r.check(f"PUT /api/v1/services/NAME, {label}: {want}", status == want, f"{status} {out}")
        rc, status, _, out = curl(rw + put + [body] + [svc_url])
        made = json_or_none(out) or {}
        r.check("PUT /api/v1/services/new.steer.test: 201 with the compiled service, source api",
                status == 201 and made.get("name") == "new.steer.test." and made.get("source") == "api",
                f"{status} {out}")
        eu, us = dig(dns_port, "new.steer.test"), dig(dns_port, "new.steer.test", "10.1.2.0/24")
        r.check("dig right after: the geo default (eu) without ECS, us for ECS 10.1.2.0/24",
                eu == ["198.51.100.7"] and us == ["198.51.100.8"], f"{eu} {us}")
        events += read_events_until(ev, '"op":"create"')
        r.check("SSE: the creation is a `service` event",
                'event: service\ndata: {"name":"new.steer.test.","op":"create"}' in events, repr(events))

        rc, status, _, out = curl(rw + put + ['{"geo": {"default": ["us"]}}'] + [svc_url + "/policy"])
        after = dig(dns_port, "new.steer.test")
        r.check("PUT .../policy with a new geo default: 200, dig answers from us",
                status == 200 and after == ["198.51.100.8"], f"{status} {out} {after}")

        for label, url, payload, want_status, want_text in [
            ("a string ttl", svc_url, '{"ttl": "long", "pool": []}', 422,
             "request: service.ttl must be an integer"),
            ("an unknown region", svc_url,
             '{"pool": [{"region": "mars", "endpoints": ["198.51.100.7"]}]}', 422, "mars"),
            ("a name without a fallback RRset", f"{base}/api/v1/services/none.steer.test",
             '{"pool": [{"region": "eu", "endpoints": ["198.51.100.7"]}]}', 422,
             "has no records in zone steer.test."),
            ("not JSON", svc_url, "{", 400, "the body must be a JSON object"),
            ("a policy PUT with ttl", svc_url + "/policy", '{"ttl": 5}', 422,
             "service.ttl is not a policy key"),
            ("the configuration's service", f"{base}/api/v1/services/www.steer.test", body, 409,
             f"is defined in {conf}"),
        ]:
            rc, status, _, out = curl(rw + put + [payload] + [url])
            err = (json_or_none(out) or {}).get("error", "")
            r.check(f"PUT {label}: {want_status} naming it", status == want_status and want_text in err,
                    f"{status} {out}")
        rc, status, _, out = curl(ro + [f"{base}/api/v1/services"])
        names = sorted(s_.get("name") for s_ in (json_or_none(out) or []))
        still = dig(dns_port, "new.steer.test")
        r.check("after the refused requests: the same two services, dig still answers from us",
                names == ["new.steer.test.", "www.steer.test."] and still == ["198.51.100.8"],
                f"{names} {still}")
        stored = open(os.path.join(state, "services.toml")).read()
        r.check("STATE/services.toml holds the service as a [[service]] entry",
                "[[service]]" in stored and "new.steer.test" in stored, stored)
    finally:
        stop_with_events(r, "api-services", srv, ev)

    srv = start_server(ctx, "api-services-2", args, check_started=True)
    if srv is None:
        return
    try:
        kept = dig(dns_port, "new.steer.test")
        r.check("after a restart the API service is steered as before", kept == ["198.51.100.8"],
                f"{kept}")
        rc, status, _, out = curl(rw + ["-X", "DELETE", svc_url])
        gone = dig(dns_port, "new.steer.test")
        r.check("DELETE /api/v1/services/new.steer.test: 204, dig answers the zone's RRset",
                status == 204 and gone == ["192.0.2.50"], f"{status} {out} {gone}")
        rc, status, _, out = curl(rw + ["-X", "DELETE", svc_url])
        r.check("DELETE again: 404", status == 404, f"{status} {out}")
        audit = [json.loads(line) for line in open(os.path.join(state, "audit.log")) if line.strip()]
        ops = [(a.get("operation"), a.get("key")) for a in audit]
        r.check("the audit log has create, policy and delete by key ops",
                ops == [("service-create", "ops"), ("service-policy", "ops"), ("service-delete", "ops")],
                repr(ops))
    finally:
        srv.stop()
        check_log_clean(r, "api-services-2 server", srv.log_text())
