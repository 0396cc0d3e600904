"""Devices, telemetry and audit (API.md §4, §5; issue 11) through lighttpd
with a real Redis and SQLite file: v2 and v1 shapes side by side, roles,
validation, tenant isolation, keyset pages while devices are added, events
after the commit, read-your-writes across two processes, the cache's TTLs,
and a Redis outage (reads from the store, writes still accepted, their
events published once Redis is back). Registered by run.py."""

import json
import re
import time

import common
from auth_tests import Client, claims_of, new_tenant, post_json
from bus_tests import _cleanup, _pair
from common import _stack, check, problem, test
from events_tests import STREAM, closing, connected, read_events
from harness import EventStream, RedisServer, request, wait_until

DEVICES = "/api/v2/devices"


def send(c, method, path, body):
    h = c.headers()
    h["Content-Type"] = "application/json"
    return request(c.port, method, path, h, json.dumps(body).encode())


def create(c, name="pump", **fields):
    body = {"name": name}
    body.update(fields)
    r = c.post(DEVICES, body)
    check(r.status == 201, "create: %d %r" % (r.status, r.body[:300]))
    return r.json()


def rfc3339(s):
    return isinstance(s, str) and s.endswith("Z") and "T" in s


def clients(st, roles=("admin", "operator", "viewer")):
    tenant = new_tenant(st)
    return tenant, {r: Client(st.port, tenant, r) for r in roles}


@test
def devices_v2_crud_shapes_roles_and_audit(s):
    _, c = clients(s)
    op, viewer, adm = c["operator"], c["viewer"], c["admin"]
    problem(viewer.post(DEVICES, {"name": "x"}), 403, "auth.forbidden")
    problem(request(s.port, "GET", DEVICES), 401, "auth.missing_token")
    r = op.post(DEVICES, {"name": "Boiler 1", "status": "online", "metadata": {"room": "B2", "floor": 2}})
    check(r.status == 201, "create %d %r" % (r.status, r.body))
    d = r.json()
    check(r.header("Location") == DEVICES + "/" + d["id"], "Location %r" % r.header("Location"))
    check(d["name"] == "Boiler 1" and d["version"] == 1, "created %r" % d)
    check(d["status"] == {"state": "online", "last_seen_at": None}, "nested status %r" % d["status"])
    check(d["metadata"] == {"room": "B2", "floor": 2}, "metadata %r" % d["metadata"])
    check(rfc3339(d["created_at"]) and rfc3339(d["updated_at"]), "v2 times %r" % d)
    ids = [r.header("X-Request-Id")]
    got = viewer.get(DEVICES + "/" + d["id"])
    check(got.status == 200 and got.json() == d, "viewer reads it: %d %r" % (got.status, got.body))
    check(got.header("API-Version") == "2", "API-Version")
    r = send(op, "PATCH", DEVICES + "/" + d["id"], {"name": "Boiler one", "metadata": {}})
    check(r.status == 200, "patch %d %r" % (r.status, r.body))
    p = r.json()
    check(p["name"] == "Boiler one" and p["metadata"] == {} and p["version"] == 2, "patched %r" % p)
    check(p["status"]["state"] == "online", "patch keeps the status")
    ids.append(r.header("X-Request-Id"))
    r = send(op, "PUT", DEVICES + "/" + d["id"] + "/status", {"status": "maintenance"})
    check(r.status == 200 and r.json()["status"]["state"] == "maintenance" and r.json()["version"] == 3,
          "status %d %r" % (r.status, r.body))
    ids.append(r.header("X-Request-Id"))
    check(viewer.get(DEVICES + "/" + d["id"]).json()["version"] == 3, "read after write")
    # validation: precise 400s, nothing changed
    for body, what in (({"name": ""}, "empty name"), ({"name": "a\tb"}, "control character"),
                       ({"name": "x" * 129}, "long name"), ({"colour": "red"}, "unknown field"),
                       ({"status": "broken"}, "bad status"), ({"metadata": [1]}, "metadata array"),
                       ({"metadata": {"a": {"b": {"c": {"d": {"e": 1}}}}}}, "metadata too deep"),
                       ({"metadata": {"k%d" % i: i for i in range(65)}}, "too many members"),
                       ({}, "nothing to change")):
        problem(send(op, "PATCH", DEVICES + "/" + d["id"], body), 400, "request.invalid_field")
    problem(send(op, "PUT", DEVICES + "/" + d["id"] + "/status", {"name": "x"}), 400, "request.invalid_field")
    problem(op.post(DEVICES, {"status": "online"}), 400, "request.invalid_field")
    r = request(s.port, "POST", DEVICES, dict(op.headers(), **{"Content-Type": "text/plain"}), b"{}")
    problem(r, 415, "request.unsupported_media_type")
    r = request(s.port, "POST", DEVICES, dict(op.headers(), **{"Content-Type": "application/json"}),
                b'{"name": "\xff"}')
    problem(r, 400, "request.malformed_json")  # not UTF-8
    check(viewer.get(DEVICES + "/" + d["id"]).json()["version"] == 3, "refused changes changed nothing")
    problem(send(viewer, "PATCH", DEVICES + "/" + d["id"], {"name": "v"}), 403, "auth.forbidden")
    problem(viewer.delete(DEVICES + "/" + d["id"]), 403, "auth.forbidden")
    r = op.delete(DEVICES + "/" + d["id"])
    check(r.status == 204, "delete %d %r" % (r.status, r.body))
    ids.append(r.header("X-Request-Id"))
    problem(viewer.get(DEVICES + "/" + d["id"]), 404, "resource.not_found")
    problem(op.delete(DEVICES + "/" + d["id"]), 404, "resource.not_found")
    problem(send(op, "PATCH", DEVICES + "/" + d["id"], {"name": "ghost"}), 404, "resource.not_found")
    # the audit trail: admins only, newest first, one record per change
    problem(op.get("/api/v2/audit"), 403, "auth.forbidden")
    r = adm.get("/api/v2/audit?limit=10")
    check(r.status == 200, "audit %d %r" % (r.status, r.body))
    items = [i for i in r.json()["items"] if i["target"] == d["id"]]
    check([i["action"] for i in items] == ["device.delete", "device.status", "device.update", "device.create"],
          "audit actions %r" % [i["action"] for i in items])
    check([i["request_id"] for i in items] == ids[::-1], "audit request ids %r vs %r" % (items, ids))
    actor = claims_of(op.token)["sub"]
    check(all(i["actor_id"] == actor and rfc3339(i["at"]) for i in items), "audit actor and time %r" % items)


@test
def devices_v1_is_the_older_flat_shape_with_pages(s):
    _, c = clients(s, ("operator",))
    op = c["operator"]
    made = [create(op, "v1-%d" % i, status="online" if i % 2 else "offline") for i in range(5)]
    one = request(s.port, "GET", "/api/v1/devices/" + made[0]["id"], op.headers())
    check(one.status == 200, "v1 get %d %r" % (one.status, one.body))
    for h in ("Deprecation", "Sunset", "Link"):
        check(one.header(h), "v1 header %s missing" % h)
    check(one.header("API-Version") == "1", "API-Version 1")
    o = one.json()
    check(set(o) == {"id", "name", "status", "last_seen", "metadata", "created_at", "updated_at"}, "v1 keys %r" % o)
    check(o["status"] == "offline" and isinstance(o["created_at"], int) and o["last_seen"] is None, "v1 %r" % o)
    check(abs(o["created_at"] - common.unix(made[0]["created_at"])) == 0, "same time in both shapes")
    pages = []
    for page in (1, 2, 3, 4):
        r = request(s.port, "GET", "/api/v1/devices?page=%d&per_page=2" % page, op.headers())
        check(r.status == 200, "v1 list %d %r" % (r.status, r.body))
        body = r.json()
        check(isinstance(body, list), "v1 list is a bare array: %r" % body)
        pages.append([d["id"] for d in body])
    check([len(p) for p in pages] == [2, 2, 1, 0], "v1 page sizes %r" % pages)
    check(sorted(sum(pages, [])) == sorted(d["id"] for d in made), "v1 pages cover every device once")
    r = request(s.port, "GET", "/api/v1/devices?status=online&per_page=100", op.headers())
    check(len(r.json()) == 2, "v1 status filter %r" % r.json())
    # the same data in v2 (also through the unversioned path)
    r = request(s.port, "GET", "/api/devices/" + made[0]["id"], op.headers())
    check(r.json()["status"]["state"] == "offline" and r.header("API-Version") == "2", "unversioned is v2")
    r = request(s.port, "GET", "/api/devices/" + made[0]["id"], dict(op.headers(), **{"API-Version": "1"}))
    check(r.json()["status"] == "offline", "API-Version: 1 selects v1: %r" % r.json())
    # v1 reads only
    r = post_json(s.port, "/api/v1/devices", {"name": "x"}, op.headers())
    problem(r, 405, "route.method_not_allowed")
    for q in ("page=0", "per_page=101", "page=x", "cursor=abc", "status=lost"):
        problem(request(s.port, "GET", "/api/v1/devices?" + q, op.headers()), 400, "request.invalid_query")


@test
def devices_cursor_pages_see_each_device_once_while_devices_are_added(s):
    _, c = clients(s, ("operator",))
    op = c["operator"]
    first = {create(op, "p-%02d" % i)["id"] for i in range(12)}
    seen, cursor, added, pages = [], None, set(), 0
    while True:
        r = op.get(DEVICES + "?limit=5" + ("&cursor=" + cursor if cursor else ""))
        check(r.status == 200, "page %d %r" % (r.status, r.body))
        body = r.json()
        check(set(body) == {"items", "next_cursor"}, "v2 list shape %r" % body)
        seen += [d["id"] for d in body["items"]]
        pages += 1
        if body["next_cursor"] is None:
            break
        cursor = body["next_cursor"]
        added.add(create(op, "late-%d" % pages)["id"])  # while paging
        check(pages < 20, "pages end")
    check(len(seen) == len(set(seen)), "no device twice across pages: %r" % seen)
    check(first <= set(seen), "every device that existed throughout is listed: missing %r" % (first - set(seen)))
    check(set(seen) <= first | added, "nothing foreign listed")
    total = op.get(DEVICES + "/count").json()
    check(total == {"count": len(first) + len(added)}, "count %r" % total)
    check(op.get(DEVICES + "/count?status=online").json() == {"count": 0}, "count by status")
    for q in ("limit=0", "limit=201", "cursor=AAAA", "cursor=" + cursor[:-2], "status=up", "token=x"):
        problem(op.get(DEVICES + "?" + q), 400, "request.invalid_query")
    problem(op.get(DEVICES + "/count?limit=3"), 400, "request.invalid_query")


@test
def devices_of_another_tenant_are_404_on_every_route(s):
    _, a = clients(s, ("operator",))
    _, b = clients(s, ("operator", "admin"))
    d = create(a["operator"], "mine")
    path = DEVICES + "/" + d["id"]
    other = b["operator"]
    problem(other.get(path), 404, "resource.not_found")
    problem(request(s.port, "GET", "/api/v1/devices/" + d["id"], other.headers()), 404, "resource.not_found")
    problem(send(other, "PATCH", path, {"name": "theirs"}), 404, "resource.not_found")
    problem(send(other, "PUT", path + "/status", {"status": "online"}), 404, "resource.not_found")
    problem(other.delete(path), 404, "resource.not_found")
    problem(other.post(path + "/telemetry", {"metrics": {"t": 1}}), 404, "resource.not_found")
    problem(other.get("/api/v2/telemetry/recent?device_id=" + d["id"]), 404, "resource.not_found")
    check(other.get(DEVICES).json()["items"] == [], "another tenant's list is empty")
    check(other.get(DEVICES + "/count").json() == {"count": 0}, "another tenant's count")
    check(all(i["target"] != d["id"] for i in b["admin"].get("/api/v2/audit").json()["items"]),
          "another tenant's audit")
    check(a["operator"].get(path).json()["name"] == "mine", "the owner's device is untouched")


@test
def device_and_telemetry_events_reach_streams_after_the_commit(s):
    _, c = clients(s, ("operator", "viewer"))
    op, viewer = c["operator"], c["viewer"]
    es = EventStream(s.port, STREAM + "?events=device.updated,device.deleted,telemetry", viewer.headers())
    try:
        connected(es)
        d = create(op, "streamed")
        send(op, "PATCH", DEVICES + "/" + d["id"], {"status": "online"})
        r = op.post(DEVICES + "/" + d["id"] + "/telemetry", {"ts": "2026-12-01T10:00:00.250Z",
                                                              "metrics": {"temp": 21.5, "rpm": 900}})
        check(r.status == 202 and set(r.json()) == {"id"}, "telemetry %d %r" % (r.status, r.body))
        point = r.json()["id"]
        check(op.delete(DEVICES + "/" + d["id"]).status == 204, "delete")
        evs = read_events(es, 4)
        check([e["event"] for e in evs] == ["device.updated", "device.updated", "telemetry", "device.deleted"],
              "events %r" % evs)
        data = [json.loads(e["data"]) for e in evs]
        check(data[0]["id"] == d["id"] and data[0]["version"] == 1, "created %r" % data[0])
        check(data[1]["version"] == 2 and data[1]["status"]["state"] == "online", "updated %r" % data[1])
        check(data[2] == {"id": point, "device_id": d["id"], "ts": "2026-12-01T10:00:00.250Z",
                          "metrics": {"temp": 21.5, "rpm": 900}}, "telemetry %r" % data[2])
        check(data[3] == {"id": d["id"]}, "deleted %r" % data[3])
    finally:
        closing(es)
    # a stream for one device's topic only
    d = create(op, "topical")
    other = create(op, "other")
    es = EventStream(s.port, STREAM + "?topics=device:" + d["id"], viewer.headers())
    try:
        connected(es)
        op.post(DEVICES + "/" + other["id"] + "/telemetry", {"metrics": {"t": 0}})
        op.post(DEVICES + "/" + d["id"] + "/telemetry", {"metrics": {"t": 1}})
        evs = read_events(es, 1)
        check(len(evs) == 1 and json.loads(evs[0]["data"])["metrics"] == {"t": 1}, "topic filter %r" % evs)
    finally:
        closing(es)


@test
def telemetry_points_batches_recent_and_refusals(s):
    _, c = clients(s, ("operator", "viewer"))
    op, viewer = c["operator"], c["viewer"]
    d = create(op, "meter")
    tel = DEVICES + "/" + d["id"] + "/telemetry"
    recent = "/api/v2/telemetry/recent?device_id=" + d["id"]
    problem(viewer.post(tel, {"metrics": {"t": 1}}), 403, "auth.forbidden")
    r = op.post(tel, {"points": [{"ts": "2026-12-01T09:00:0%dZ" % i, "metrics": {"n": i}} for i in range(3)]})
    check(r.status == 202 and len(r.json()["ids"]) == 3, "batch %d %r" % (r.status, r.body))
    check(op.post(tel, {"ts": "2026-12-01T09:00:05Z", "metrics": {"n": 5}}).status == 202, "single point")
    got = viewer.get(recent + "&limit=3")
    check(got.status == 200, "recent %d %r" % (got.status, got.body))
    items = got.json()["items"]
    check([i["metrics"]["n"] for i in items] == [5, 2, 1], "newest first, limited: %r" % items)
    check(items[0]["ts"] == "2026-12-01T09:00:05.000Z" and items[0]["device_id"] == d["id"], "point %r" % items[0])
    future = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 3600))
    for body in ({"metrics": {}}, {"metrics": {"t": "warm"}}, {"metrics": {"bad name": 1}},
                 {"ts": "yesterday", "metrics": {"t": 1}}, {"ts": future, "metrics": {"t": 1}},
                 {"metrics": {"t": 1}, "extra": 1}, {"points": []},
                 {"points": [{"metrics": {"t": 1}}, {"metrics": {"t": None}}]}):
        problem(op.post(tel, body), 400, "request.invalid_field")
    check(len(viewer.get(recent + "&limit=1000").json()["items"]) == 4, "refused batches stored nothing")
    for q in ("", "?device_id=", "?device_id=a/b", "?device_id=%s&limit=0" % d["id"],
              "?device_id=%s&since=1" % d["id"]):
        problem(viewer.get("/api/v2/telemetry/recent" + q), 400, "request.invalid_query")
    problem(viewer.get("/api/v2/telemetry/recent?device_id=nosuchdevice"), 404, "resource.not_found")


@test
def devices_read_your_writes_across_processes_and_cache_ttls(s, binary):
    a = b = None
    try:
        a, b = _pair(binary, name="devryw")
        tenant = new_tenant(a, (("op", "operator"),))
        ca, cb = Client(a.port, tenant, "op"), Client(b.port, tenant, "op")
        d = create(ca, "shared")
        path = DEVICES + "/" + d["id"]
        check(cb.get(path).json()["version"] == 1, "B reads A's create at once")
        tid = claims_of(ca.token)["tid"]
        check(cb.get(DEVICES + "/count").json() == {"count": 1}, "B counts it")
        check([x["id"] for x in cb.get(DEVICES).json()["items"]] == [d["id"]], "B lists it")
        vttl = common.REDIS.command("PTTL", "devl:%s:*:count" % tid)
        check(30000 * 0.9 - 1000 <= vttl <= 30000 * 1.1, "count view TTL %r within 30 s ± 10%%" % vttl)
        # a change on A drops B's cached views at once: B sees it in the list and the count
        other = create(ca, "second")
        check(cb.get(DEVICES + "/count").json() == {"count": 2}, "B's count after A's create")
        check(other["id"] in [x["id"] for x in cb.get(DEVICES).json()["items"]], "B's list after A's create")
        check(cb.get(DEVICES + "/count?status=online").json() == {"count": 0}, "B's online count")
        check(send(ca, "PUT", DEVICES + "/" + other["id"] + "/status", {"status": "online"}).status == 200, "status")
        check(cb.get(DEVICES + "/count?status=online").json() == {"count": 1}, "B's online count after A's change")
        # recent points: cached on B, dropped by a POST on A
        recent = "/api/v2/telemetry/recent?device_id=" + other["id"]
        check(cb.get(recent).json() == {"items": []}, "no points yet")
        rttl = common.REDIS.command("PTTL", "telr:%s:%s" % (tid, other["id"]))
        check(5000 * 0.9 - 1000 <= rttl <= 5000 * 1.1, "recent view TTL %r within 5 s ± 10%%" % rttl)
        check(ca.post(DEVICES + "/" + other["id"] + "/telemetry", {"metrics": {"t": 3}}).status == 202, "point on A")
        got = cb.get(recent).json()["items"]
        check([x["metrics"] for x in got] == [{"t": 3}], "B sees A's point at once: %r" % got)
        check(cb.delete(DEVICES + "/" + other["id"]).status == 204, "delete on B")
        check(ca.get(DEVICES + "/count").json() == {"count": 1}, "A's count after B's delete")
        key = "dev:%s:%s" % (claims_of(ca.token)["tid"], d["id"])
        ttl = common.REDIS.command("PTTL", key)
        check(45000 * 0.9 - 1000 <= ttl <= 45000 * 1.1, "device TTL %r within 45 s ± 10%%" % ttl)
        for i in range(2, 6):
            r = send(ca if i % 2 else cb, "PATCH", path, {"name": "shared-%d" % i})
            check(r.status == 200, "patch %d" % r.status)
            for reader in (ca, cb):
                got = reader.get(path).json()
                check(got["name"] == "shared-%d" % i and got["version"] == i,
                      "read after write %d on %s: %r" % (i, reader.port, got))
        check(send(cb, "PUT", path + "/status", {"status": "online"}).status == 200, "status on B")
        check(ca.get(path).json()["status"]["state"] == "online", "A reads B's status change")
        check(cb.delete(path).status == 204, "delete on B")
        problem(ca.get(path), 404, "resource.not_found")
        check(common.REDIS.command("GET", key) is not None, "a tombstone, not a hole, after the delete")
        m = request(b.port, "GET", "/metrics").body.decode()
        hits = re.search(r'fcgi_sse_cache_requests_total\{cache="device",result="hit"\} (\d+)', m)
        ratio = re.search(r'fcgi_sse_cache_hit_ratio\{cache="device"\} ([0-9.]+)', m)
        check(hits and int(hits.group(1)) >= 1 and ratio and 0 < float(ratio.group(1)) <= 1,
              "device cache hits and ratio in /metrics: %r" % [l for l in m.splitlines() if "cache" in l])
    finally:
        _cleanup(*(x for x in (a, b) if x is not None))


@test
def devices_survive_a_redis_outage_and_late_events_are_published(s, binary):
    redis = RedisServer(persist=True).start()
    st = None
    es = None
    try:
        st = _stack(binary, {"redis": {"host": "127.0.0.1", "port": redis.port, "backoff_max_ms": 500,
                                       "connect_timeout_ms": 200, "command_timeout_ms": 200}},
                    name="devoutage")
        tenant = new_tenant(st, (("op", "operator"), ("ana", "viewer")))
        op, ana = Client(st.port, tenant, "op"), Client(st.port, tenant, "ana")
        d = create(op, "before")
        es = EventStream(st.port, STREAM + "?events=device.updated,telemetry", ana.headers())
        connected(es)
        redis.stop()
        # writes are accepted (the store is the truth), reads come from the store
        r = send(op, "PATCH", DEVICES + "/" + d["id"], {"name": "during"})
        check(r.status == 200 and r.json()["version"] == 2, "patch while Redis is down: %d %r" % (r.status, r.body))
        made = create(op, "new-during")
        r = op.post(DEVICES + "/" + d["id"] + "/telemetry", {"metrics": {"t": 7}})
        check(r.status == 202, "telemetry while Redis is down: %d" % r.status)
        check(op.get(DEVICES + "/" + made["id"]).status == 200, "a read while Redis is down")
        check(op.get(DEVICES + "/" + d["id"]).json()["name"] == "during", "the read is the store's")
        redis.start_on_same_port()
        evs = read_events(es, 3, timeout=10)
        got = sorted((e["event"], json.loads(e["data"]).get("name") or json.loads(e["data"]).get("metrics", {}).get("t"))
                     for e in evs)
        check(got == sorted([("device.updated", "during"), ("device.updated", "new-during"), ("telemetry", 7)]),
              "the three accepted changes' events arrive after Redis returns: %r" % evs)
        check(wait_until(lambda: "outbox_drained" in open(st.backend_log).read(), 5), "the drain logged it")
    finally:
        closing(es)
        if st is not None:
            st.cleanup()
        redis.cleanup()


@test
def audit_first_page_cache_when_turned_on_shows_every_write_at_once(s, binary):
    st = None
    try:
        st = _stack(binary, {"cache": {"audit_first_page_ttl_s": 20}}, name="auditcache")
        tenant = new_tenant(st, (("boss", "admin"), ("op", "operator")))
        boss, op = Client(st.port, tenant, "boss"), Client(st.port, tenant, "op")
        first = boss.get("/api/v2/audit").json()["items"]
        key = "audp:" + claims_of(boss.token)["tid"]
        ttl = common.REDIS.command("PTTL", key)
        check(20000 * 0.9 - 1000 <= ttl <= 20000 * 1.1, "audit page TTL %r within 20 s ± 10%%" % ttl)
        d = create(op, "audited")
        items = boss.get("/api/v2/audit").json()["items"]
        check(items[0]["action"] == "device.create" and items[0]["target"] == d["id"],
              "the device change is on the cached first page at once: %r" % items[:2])
        check(len(items) == len(first) + 1, "one record more: %d then %d" % (len(first), len(items)))
        check(op.delete(DEVICES + "/" + d["id"]).status == 204, "delete")
        check(boss.get("/api/v2/audit").json()["items"][0]["action"] == "device.delete", "and the delete")
        m = request(st.port, "GET", "/metrics").body.decode()
        check('cache="audit"' in m, "the audit cache is in /metrics")
    finally:
        if st is not None:
            st.cleanup()
