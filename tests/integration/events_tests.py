"""Event stream integration tests (API.md §6). Registered by run.py."""

import json
import re
import resource
import secrets
import signal
import socket
import threading
import time
import uuid

from auth_tests import KEYS, Client, claims_of, new_tenant, post_json, sign
from common import SECRET, _stack, check, problem, test, unix
from harness import EventStream, request, wait_until

ID_RE = r"\d+-\d+"
RFC3339_RE = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ"
STREAM = "/api/v2/events/stream"
HDR = {"alg": "HS256", "typ": "JWT", "kid": "it1"}


# ---------------------------------------------------------------- helpers

def publish(port, tenant, type_="task.progress", data=None, topic=None, close=None, headers=None,
            body=None):
    """POST /api/v2/events with the internal secret (unless headers say
    otherwise); returns the Response."""
    if body is None:
        body = {"tenant": tenant, "type": type_, "data": data}
        if topic is not None:
            body["topic"] = topic
        if close is not None:
            body["close"] = close
    h = {"X-Internal-Secret": SECRET} if headers is None else headers
    return post_json(port, "/api/v2/events", body, h)


def published_id(r):
    check(r.status == 202, "publish: %d %r" % (r.status, r.body[:300]))
    eid = r.json()["id"]
    check(re.fullmatch(ID_RE, eid), "event id %r" % eid)
    return eid


def new_session(c):
    r = c.post("/api/v2/events/session")
    check(r.status == 201, "events/session: %d %r" % (r.status, r.body[:300]))
    return r.json()["session_id"]


def session_url(sid, query=""):
    return STREAM + "?session_id=" + sid + ("&" + query if query else "")


def open_session(c, sid, query="", cookie=None):
    """GET the stream with a session id and (by default) the client's cookie."""
    h = {"Cookie": c.cookie if cookie is None else cookie} if cookie != "" else {}
    return EventStream(c.port, session_url(sid, query), h)


def open_bearer(c, query=""):
    return EventStream(c.port, STREAM + ("?" + query if query else ""), c.headers())


def connected(es):
    """Checks a 200 stream's start (retry and `event: connected`); returns
    the connected event."""
    check(es.status == 200, "stream status %d" % es.status)
    got = es.next_event()
    check(got is not None, "EOF before the first event")
    ev = got[1]
    check(es.retry == 2500, "retry: %r" % es.retry)
    check(ev["event"] == "connected", "first event %r" % ev)
    data = json.loads(ev["data"])
    check(data.get("retry_ms") == es.retry and isinstance(data.get("heartbeat_ms"), int) and
          data["heartbeat_ms"] > 0,
          "connected tells the page its retry and heartbeat: %r" % data)
    return ev


def read_events(es, n, timeout=5.0, skip=("ping",)):
    """The next n events whose type is not in skip (stops early at EOF)."""
    out = []
    end = time.monotonic() + timeout
    while len(out) < n and time.monotonic() < end:
        got = es.next_event()
        if got is None:
            break
        if got[1]["event"] not in skip:
            out.append(got[1])
    return out


def read_to_eof(es, timeout=6.0):
    """Every event until EOF; returns (events with arrival times, eof?)."""
    out = []
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        got = es.next_event()
        if got is None:
            return out, True
        out.append(got)
    return out, False


def no_events_for(es, seconds):
    """Reads for `seconds`; returns the non-ping events seen (a stream that
    gets nothing shows only heartbeats)."""
    seen = []
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        got = es.next_event()
        if got is None:
            seen.append({"event": "<EOF>"})
            break
        if got[1]["event"] != "ping":
            seen.append(got[1])
    return seen


def closing(*streams):
    for es in streams:
        if es is not None:
            es.close()


def log_msgs(st):
    out = []
    for line in st.log_lines():
        try:
            out.append(json.loads(line))
        except ValueError:
            pass
    return out


def stream_ends(st, reason=None):
    return [m for m in log_msgs(st) if m.get("msg") == "stream_end" and
            (reason is None or m.get("reason") == reason)]


def fresh_session_id():
    """A well-formed session id (22 base64url chars, last one with its low
    4 bits clear) that was never issued."""
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    return "".join(secrets.choice(alphabet) for _ in range(21)) + secrets.choice("AQgw")


# ---------------------------------------------------------------- sessions

@test
def events_session_is_created_and_stream_starts_with_retry_connected_and_pings(s):
    tenant = new_tenant(s, (("ana", "viewer"),))
    c = Client(s.port, tenant, "ana")
    problem(request(s.port, "POST", "/api/v2/events/session", body=b""), 401, "auth.missing_token")
    t_before = time.time()
    r = c.post("/api/v2/events/session")
    check(r.status == 201, "status %d %r" % (r.status, r.body))
    body = r.json()
    check(set(body) >= {"session_id", "expires_at", "reconnect_until", "single_use"}, "fields %r" % body)
    sid = body["session_id"]
    check(re.fullmatch(r"[A-Za-z0-9_-]{22}", sid), "22 base64url chars: %r" % sid)
    check(body["single_use"] is False, "login tokens have a fingerprint: not single use %r" % body)
    check(re.fullmatch(RFC3339_RE, body["expires_at"]) and re.fullmatch(RFC3339_RE, body["reconnect_until"]),
          "RFC 3339 times %r" % body)
    first = unix(body["expires_at"]) - t_before
    check(25 <= first <= 32, "first-connect deadline about 30 s ahead: %.1f" % first)
    check(unix(body["reconnect_until"]) > unix(body["expires_at"]), "reconnects allowed longer %r" % body)
    check(new_session(c) != sid, "ids are random")

    es = open_session(c, sid)
    try:
        t0 = time.monotonic()
        check(es.status == 200, "status %d" % es.status)
        check(es.header("Content-Type") == "text/event-stream", "content type %r" % es.header("Content-Type"))
        check(es.header("Cache-Control") == "no-cache, no-transform", "cache-control %r" % es.header("Cache-Control"))
        check(es.header("X-Accel-Buffering") == "no", "X-Accel-Buffering %r" % es.header("X-Accel-Buffering"))
        ev = connected(es)
        t_conn = time.monotonic()
        check(t_conn - t0 < 0.8, "connected arrives at once")
        check(ev["id"] is not None and re.fullmatch(ID_RE, ev["id"]), "connected has an id %r" % ev)
        cid = json.loads(ev["data"])["connection_id"]
        check(isinstance(cid, str) and cid, "connection id %r" % cid)
        times, ids = [t_conn], [ev["id"]]
        for _ in range(2):
            t, ev = es.next_event()
            check(ev["event"] == "ping", "heartbeat %r" % ev)
            check(re.fullmatch(RFC3339_RE, json.loads(ev["data"])["time"]), "ping time %r" % ev["data"])
            times.append(t)
            ids.append(ev["id"])
        gaps = [b - a for a, b in zip(times, times[1:])]
        check(all(0.6 < g < 1.6 for g in gaps), "heartbeat gaps %r" % gaps)
        check(all(i == ids[0] for i in ids), "pings repeat the last id %r" % ids)
        # after an event, pings carry its id
        eid = published_id(publish(s.port, tenant, data={"n": 1}))
        got = read_events(es, 1)
        check(got and got[0]["id"] == eid, "event %r, id %s" % (got, eid))
        t, ev = es.next_event()
        check(ev["event"] == "ping" and ev["id"] == eid, "next ping carries the event's id %r" % ev)
    finally:
        es.close()
    # a second connection id differs (one per connection)
    es = open_session(c, sid)
    try:
        cid2 = json.loads(connected(es)["data"])["connection_id"]
        check(cid2 != cid, "a new connection id per connection: %r %r" % (cid, cid2))
    finally:
        es.close()


@test
def events_session_needs_its_cookie_and_live_login(s):
    tenant = new_tenant(s, (("ana", "viewer"),))
    c = Client(s.port, tenant, "ana")
    other = Client(s.port, tenant, "ana")  # same user, another login and cookie
    sid = new_session(c)
    # without the cookie, with a wrong one, with the other login's cookie
    for cookie in ("", "__Host-fgp=" + "A" * 43, other.cookie):
        r = request(s.port, "GET", session_url(sid), {"Cookie": cookie} if cookie else {})
        problem(r, 401, "events.invalid_session")
    # unknown and malformed ids
    # (lighttpd itself refuses encoded control characters in the URL)
    for bad in (fresh_session_id(), "x", sid[:-1], sid + "A", sid[:-1] + "B", "%20" * 22):
        r = request(s.port, "GET", session_url(bad), {"Cookie": c.cookie})
        problem(r, 401, "events.invalid_session")
    # the rightful client still gets in after those attempts
    es = open_session(c, sid)
    try:
        connected(es)
    finally:
        es.close()
    # reconnect after the stream was closed: 200 again
    es = open_session(c, sid)
    try:
        connected(es)
    finally:
        es.close()
    # another login's session id is not usable with our cookie
    problem(request(s.port, "GET", session_url(new_session(other)), {"Cookie": c.cookie}),
            401, "events.invalid_session")
    # logout ends it
    r = c.post("/api/v2/auth/logout")
    check(r.status == 204, "logout %d" % r.status)
    problem(request(s.port, "GET", session_url(sid), {"Cookie": c.cookie}), 401, "events.invalid_session")
    # the other login's sessions are unaffected
    es = open_session(other, new_session(other))
    try:
        connected(es)
    finally:
        es.close()


@test
def events_session_reconnect_replaces_the_open_connection(s):
    tenant = new_tenant(s, (("ana", "viewer"),))
    c = Client(s.port, tenant, "ana")
    sid = new_session(c)
    first = open_session(c, sid)
    second = None
    try:
        first_id = json.loads(connected(first)["data"])["connection_id"]
        second = open_session(c, sid)
        connected(second)
        evs, eof = read_to_eof(first, 5)
        check(eof, "the older connection ends when replaced (got %r)" % [e for _, e in evs])
        # the newer one stays and gets events
        eid = published_id(publish(s.port, tenant, data={"after": "replace"}))
        got = read_events(second, 1)
        check(got and got[0]["id"] == eid, "replacement stream gets events: %r" % got)
        check(not second.closed, "replacement stays open")
        check(wait_until(lambda: [m["request_id"] for m in stream_ends(s, "replaced")].count(first_id) == 1, 3),
              "stream_end with reason replaced logged for %s" % first_id)
    finally:
        closing(first, second)


@test
def events_session_unused_past_first_connect_window_is_401(s, binary):
    st = _stack(binary, {"sse": {"stream_session_connect_s": 1}}, name="connectwin")
    try:
        tenant = new_tenant(st, (("ana", "viewer"),))
        c = Client(st.port, tenant, "ana")
        unused = new_session(c)
        used = new_session(c)
        es = open_session(c, used)
        try:
            connected(es)
        finally:
            es.close()
        time.sleep(2.5)
        problem(request(st.port, "GET", session_url(unused), {"Cookie": c.cookie}),
                401, "events.invalid_session")
        # one used in time serves reconnects of the same client after the window
        es = open_session(c, used)
        try:
            connected(es)
        finally:
            es.close()
    finally:
        st.cleanup()


@test
def events_session_of_token_without_fingerprint_is_single_use(s):
    tenant = new_tenant(s, (("ana", "viewer"),))
    c = Client(s.port, tenant, "ana")
    claims = claims_of(c.token)
    claims.pop("fgp")
    claims["jti"] = uuid.uuid4().hex
    token = sign(HDR, claims, KEYS["it1"])
    check(c.get("/api/v2/me", token=token, cookie=False).status == 200, "forged fingerprint-less token works")
    r = request(s.port, "POST", "/api/v2/events/session", {"Authorization": "Bearer " + token}, b"")
    check(r.status == 201, "status %d %r" % (r.status, r.body))
    body = r.json()
    check(body["single_use"] is True, "single use without a fingerprint: %r" % body)
    sid = body["session_id"]
    # a HEAD (a client asking why its stream failed) opens nothing and
    # uses nothing up
    r = request(s.port, "HEAD", session_url(sid))
    check(r.status == 200 and r.header("Content-Type") == "text/event-stream", "HEAD: %d %r" % (r.status, r.headers))
    es = EventStream(s.port, session_url(sid))
    try:
        connected(es)
    finally:
        es.close()
    problem(request(s.port, "GET", session_url(sid)), 401, "events.invalid_session")
    r = request(s.port, "HEAD", session_url(sid))
    check(r.status == 401, "HEAD of the used session: %d" % r.status)
    # with a cookie it is no different
    problem(request(s.port, "GET", session_url(sid), {"Cookie": c.cookie}), 401, "events.invalid_session")


# ---------------------------------------------------------------- bearer and query

@test
def events_bearer_stream_and_query_rules(s):
    tenant = new_tenant(s, (("ana", "viewer"),))
    c = Client(s.port, tenant, "ana")
    es = open_bearer(c)
    try:
        check(es.header("Content-Type") == "text/event-stream", "content type")
        connected(es)
        eid = published_id(publish(s.port, tenant, data={"via": "bearer"}))
        got = read_events(es, 1)
        check(got and got[0]["id"] == eid, "bearer stream gets events %r" % got)
    finally:
        es.close()
    problem(request(s.port, "GET", STREAM), 401, "auth.missing_token")
    problem(request(s.port, "GET", STREAM, c.headers(cookie=False)), 401, "auth.fingerprint_mismatch")
    # tokens are never accepted in the URL, and never echoed
    for q in ("access_token=" + c.token, "token=" + c.token, "events=a&access_token=" + c.token):
        for h in ({}, c.headers()):
            r = request(s.port, "GET", STREAM + "?" + q, h)
            problem(r, 400, "request.invalid_query")
            check(c.token not in r.body.decode() and c.token.split(".")[2] not in r.body.decode(),
                  "the token is not echoed")
    bad_lists = ["", "a,,b", ",a", "a,", "a%20b", "a+b", "a;b", "a%2Cb%2C",
                 ",".join("e%d" % i for i in range(17))]
    for param, too_long in (("events", "x" * 65), ("topics", "t" * 129)):
        for v in bad_lists + [too_long, "ok," + too_long]:
            r = request(s.port, "GET", "%s?%s=%s" % (STREAM, param, v), c.headers())
            try:
                problem(r, 400, "request.invalid_query")
            except AssertionError as e:
                raise AssertionError("%s=%r: %s" % (param, v, e))
    problem(request(s.port, "GET", STREAM + "?nosuch=1", c.headers()), 400, "request.invalid_query")
    # bad lists are refused in the session form too, before the session is used
    sid = new_session(c)
    problem(request(s.port, "GET", session_url(sid, "events=a%20b"), {"Cookie": c.cookie}),
            400, "request.invalid_query")
    # the edges that are fine: 16 items, 64/128 chars, all allowed characters
    for q in ("events=" + ",".join("e%d" % i for i in range(16)), "events=" + "x" * 64,
              "topics=" + "t" * 128, "topics=A-z_0.9:x,task:7f3a"):
        es = open_bearer(c, q)
        try:
            check(es.status == 200, "%s: %d" % (q[:40], es.status))
        finally:
            es.close()


# ---------------------------------------------------------------- publish

@test
def events_publish_auth_and_validation(s):
    tenant = new_tenant(s)
    other = new_tenant(s, (("boss", "admin"),))
    adm, viewer, operator = (Client(s.port, tenant, u) for u in ("admin", "viewer", "operator"))
    other_adm = Client(s.port, other, "boss")
    ok = {"tenant": tenant, "type": "task.progress", "topic": "task:7f3a", "data": {"pct": 10}}
    r = publish(s.port, None, body=ok)
    check(r.status == 202 and r.header("Content-Type") == "application/json",
          "secret publishes: %d %r" % (r.status, r.body))
    published_id(r)
    problem(publish(s.port, None, body=ok, headers={"X-Internal-Secret": SECRET + "x"}), 403, "internal.forbidden")
    problem(publish(s.port, None, body=ok, headers={"X-Internal-Secret": "x" * 2000}), 403, "internal.forbidden")
    r = publish(s.port, None, body=ok, headers={})
    problem(r, 401, "auth.missing_token")
    # an admin of the tenant may publish; others may not
    published_id(publish(s.port, None, body=ok, headers=adm.headers()))
    problem(publish(s.port, None, body=ok, headers=other_adm.headers()), 404, "resource.not_found")
    problem(publish(s.port, None, body=ok, headers=viewer.headers()), 403, "auth.forbidden")
    problem(publish(s.port, None, body=ok, headers=operator.headers()), 403, "auth.forbidden")
    # a wrong secret is refused even with an admin token
    h = dict(adm.headers(), **{"X-Internal-Secret": "nope"})
    problem(publish(s.port, None, body=ok, headers=h), 403, "internal.forbidden")
    for bad_type in ("a\nb", "a b", "", "x" * 65, "évènement", 5, None):
        body = problem(publish(s.port, None, body=dict(ok, type=bad_type)), 400, "request.invalid_field")
        check("type" in body["detail"], "detail names the field: %r" % body["detail"])
    for bad_topic in ("a b", "x\r\ny", "", "t" * 129, ["task:1"]):
        problem(publish(s.port, None, body=dict(ok, topic=bad_topic)), 400, "request.invalid_field")
    problem(publish(s.port, None, body=dict(ok, tenant="no-such-tenant")), 404, "resource.not_found")
    problem(publish(s.port, None, body={"type": "x", "data": 1}), 400, "request.invalid_field")
    b = problem(publish(s.port, None, body={"tenant": tenant, "type": "x", "close": True}), 400,
                "request.invalid_field")
    check("topic" in b["detail"], "close needs a topic: %r" % b["detail"])
    problem(publish(s.port, None, body=dict(ok, close="yes")), 400, "request.invalid_field")
    problem(request(s.port, "POST", "/api/v2/events", {"X-Internal-Secret": SECRET,
                                                      "Content-Type": "application/json"}, b"{nope"),
            400, "request.malformed_json")
    # the error answers never carry the secret
    r = publish(s.port, None, body=ok, headers={"X-Internal-Secret": SECRET + "x"})
    check(SECRET not in r.body.decode(), "secret not echoed")
    # ids increase
    a = published_id(publish(s.port, tenant, data=1))
    b2 = published_id(publish(s.port, tenant, data=2))
    check(tuple(map(int, b2.split("-"))) > tuple(map(int, a.split("-"))), "ids increase %s %s" % (a, b2))


# ---------------------------------------------------------------- delivery

@test
def events_reach_only_their_tenant_in_order_with_the_published_ids(s):
    ta = new_tenant(s, (("ana", "viewer"),))
    tb = new_tenant(s, (("ana", "viewer"),))
    ca, cb = Client(s.port, ta, "ana"), Client(s.port, tb, "ana")
    ea = open_session(ca, new_session(ca))
    ea2 = open_bearer(ca)
    eb = open_session(cb, new_session(cb))
    try:
        for es in (ea, ea2, eb):
            connected(es)
        ids = []
        for i in range(8):
            ids.append(published_id(publish(s.port, ta, "task.progress", {"i": i}, topic="task:%d" % i)))
        for es in (ea, ea2):
            got = read_events(es, 8)
            check([e["id"] for e in got] == ids, "ids in order %r vs %r" % ([e["id"] for e in got], ids))
            check([json.loads(e["data"])["i"] for e in got] == list(range(8)), "order kept")
            check(all(e["event"] == "task.progress" for e in got), "event type")
        seen = no_events_for(eb, 1.5)
        check(seen == [], "tenant B sees only pings, got %r" % seen)
        # and the other way round
        idb = published_id(publish(s.port, tb, "device.updated", {"b": True}))
        got = read_events(eb, 1)
        check(got and got[0]["id"] == idb and got[0]["event"] == "device.updated", "B's own event %r" % got)
        check(no_events_for(ea, 1.2) == [], "A does not see B's event")
    finally:
        closing(ea, ea2, eb)


@test
def events_filter_by_type_and_topic(s):
    tenant = new_tenant(s, (("ana", "viewer"),))
    c = Client(s.port, tenant, "ana")
    streams = {
        "all": open_bearer(c),
        "types": open_session(c, new_session(c), "events=a,b"),
        "topics": open_session(c, new_session(c), "topics=x,y"),
        "both": open_bearer(c, "events=b&topics=y"),
        "exact": open_bearer(c, "topics=x"),
    }
    try:
        for es in streams.values():
            connected(es)
        plan = [("a", None), ("b", "x"), ("c", "y"), ("a", "x:1"), ("b", "y"), ("c", None), ("d", "x"),
                ("a", "xy")]
        ids = [published_id(publish(s.port, tenant, t, {"k": k}, topic=tp)) for k, (t, tp) in enumerate(plan)]
        want = {
            "all": list(range(8)),
            "types": [k for k, (t, tp) in enumerate(plan) if t in ("a", "b")],
            "topics": [k for k, (t, tp) in enumerate(plan) if tp in ("x", "y")],
            "both": [k for k, (t, tp) in enumerate(plan) if t == "b" and tp == "y"],
            "exact": [k for k, (t, tp) in enumerate(plan) if tp == "x"],
        }
        # a marker every stream passes closes the sequence
        marker = published_id(publish(s.port, tenant, "b", {"k": "end"}, topic="y"))
        want_marker = {"all": True, "types": True, "topics": True, "both": True, "exact": False}
        for name, es in streams.items():
            n = len(want[name]) + (1 if want_marker[name] else 0)
            got = read_events(es, n)
            ks = [json.loads(e["data"])["k"] for e in got]
            exp = want[name] + (["end"] if want_marker[name] else [])
            check(ks == exp, "%s stream got %r, want %r" % (name, ks, exp))
            check([e["id"] for e in got] == [ids[k] if k != "end" else marker for k in ks], "%s ids" % name)
        check(no_events_for(streams["exact"], 1.2) == [], "topics=x gets nothing more")
    finally:
        closing(*streams.values())


@test
def events_data_round_trips_and_cannot_inject_lines(s):
    tenant = new_tenant(s, (("ana", "viewer"),))
    c = Client(s.port, tenant, "ana")
    es = EventStream(c.port, STREAM, c.headers())
    payloads = [
        {"text": "line1\nline2"},
        "a string\nwith\r\nall\rkinds of newlines",
        "\nevent: evil\ndata: injected\n\nid: 999\n",
        {"k": "value: with colon", "e": "event: evil", "u": "h\u00e9llo \u2603 \U0001F600 \u2028\u2029",
         "n": [1, 2.5, None, True, False], "nested": {"a": {"b": ["c"]}}},
        "\r\n\r\nretry: 1\r\n: comment\r\n",
        "",
        0,
        None,
        [],
        "trailing backslash \\ and quote \" and tab \t and nul-ish \\u0000",
        "\u0001\u001f control",
        ":leading colon",
    ]
    try:
        connected(es)
        ids = [published_id(publish(s.port, tenant, "msg", p)) for p in payloads]
        got = read_events(es, len(payloads))
        check(len(got) == len(payloads), "all events arrive: %d" % len(got))
        for p, e, eid in zip(payloads, got, ids):
            check(e["event"] == "msg" and e["id"] == eid, "event %r" % e)
            check(json.loads(e["data"]) == p, "round trip: %r -> %r" % (p, e["data"]))
        # a publish without data delivers null
        eid = published_id(publish(s.port, None, body={"tenant": tenant, "type": "msg"}))
        got = read_events(es, 1)
        check(got and got[0]["id"] == eid and json.loads(got[0]["data"]) is None, "no data: null %r" % got)
    finally:
        es.close()
    # read the raw bytes of another stream: no injected line ever starts a line
    raw = _raw_stream_bytes(c, lambda: [publish(s.port, tenant, "msg", p) for p in payloads])
    check(raw.startswith(b"retry: 2500\n\nid: "), "the body starts with retry, then an event: %r" % raw[:40])
    check(raw.split(b"\n\n")[1].split(b"\n")[1] == b"event: connected", "connected first %r" % raw[:80])
    lines = raw.split(b"\n")
    for bad in (b"event: evil", b"data: injected", b"id: 999", b"retry: 1", b": comment"):
        check(not any(l.lstrip(b"\r").startswith(bad) for l in lines), "raw line %r in the stream" % bad)
    check(b"\r" not in raw, "no raw CR in the stream")
    text = raw.decode("utf-8")
    check("\u2603" in text and "\U0001F600" in text, "unicode sent as UTF-8")
    # every line of the body is a field we expect or blank
    for l in lines:
        check(l == b"" or re.match(rb"(retry|id|event|data): ", l), "unexpected line %r" % l[:80])


def _raw_stream_bytes(c, then, settle=1.5, query=""):
    """Opens a raw stream, runs then(), and returns the body bytes read
    within `settle` seconds after that."""
    sock = socket.create_connection(("127.0.0.1", c.port), timeout=5)
    try:
        hdr = "".join("%s: %s\r\n" % kv for kv in c.headers().items())
        path = STREAM + ("?" + query if query else "")
        sock.sendall(("GET %s HTTP/1.0\r\nHost: 127.0.0.1\r\n%s\r\n" % (path, hdr)).encode())
        buf = b""
        while b"\r\n\r\n" not in buf:
            chunk = sock.recv(4096)
            check(chunk, "EOF in the head")
            buf += chunk
        check(buf.startswith(b"HTTP/1.0 200"), "raw stream status %r" % buf[:40])
        then()
        end = time.monotonic() + settle
        sock.settimeout(0.3)
        while time.monotonic() < end:
            try:
                chunk = sock.recv(65536)
            except socket.timeout:
                continue
            if not chunk:
                break
            buf += chunk
        return buf.split(b"\r\n\r\n", 1)[1]
    finally:
        sock.close()


# ---------------------------------------------------------------- close

@test
def events_close_ends_topic_streams_and_their_sessions(s):
    tenant = new_tenant(s, (("ana", "viewer"),))
    c = Client(s.port, tenant, "ana")
    sid1, sid2, sid3 = new_session(c), new_session(c), new_session(c)
    on_topic = open_session(c, sid1, "topics=task:7f3a")
    in_list = open_session(c, sid2, "topics=task:other,task:7f3a")
    bearer_topic = open_bearer(c, "topics=task:7f3a")
    untopic = open_session(c, sid3)
    other_topic = open_bearer(c, "topics=task:other")
    all_streams = (on_topic, in_list, bearer_topic, untopic, other_topic)
    try:
        conn = [json.loads(connected(es)["data"])["connection_id"] for es in all_streams]
        p1 = published_id(publish(s.port, tenant, "task.progress", {"pct": 50}, topic="task:7f3a"))
        fin = published_id(publish(s.port, tenant, "task.done", {"pct": 100}, topic="task:7f3a", close=True))
        for name, es in (("on_topic", on_topic), ("in_list", in_list), ("bearer", bearer_topic)):
            evs, eof = read_to_eof(es, 5)
            names = [e["event"] for _, e in evs if e["event"] != "ping"]
            check(names == ["task.progress", "task.done", "close"], "%s: events %r" % (name, names))
            done = [e for _, e in evs if e["event"] == "task.done"][0]
            check(done["id"] == fin and json.loads(done["data"]) == {"pct": 100}, "%s: final event %r" % (name, done))
            check(evs[-1][1]["event"] == "close", "%s: close is last %r" % (name, evs[-1]))
            check(eof, "%s: EOF after close" % name)
        # a stream without topics= gets the event and stays open
        got = read_events(untopic, 2)
        check([e["id"] for e in got] == [p1, fin], "untopic stream gets both %r" % got)
        check(no_events_for(untopic, 1.2) == [] and not untopic.closed, "untopic stream stays open")
        check(no_events_for(other_topic, 1.2) == [] and not other_topic.closed, "other topic stays open")
        # finished sessions: reconnect gets 204 No Content
        for sid, q in ((sid1, "topics=task:7f3a"), (sid2, "topics=task:other,task:7f3a")):
            r = request(s.port, "GET", session_url(sid, q), {"Cookie": c.cookie})
            check(r.status == 204, "reconnect of a finished stream session: %d %r" % (r.status, r.body[:200]))
            check(r.body == b"", "204 without a body")
        # the session without topics is not finished
        es = open_session(c, sid3)
        try:
            connected(es)
        finally:
            es.close()
        check(wait_until(lambda: set(conn[:3]) <= {m["request_id"] for m in stream_ends(s, "closed_by_publisher")},
                         3), "stream_end closed_by_publisher logged for the three")
        ends = {m["request_id"]: m["reason"] for m in stream_ends(s)}
        # untopic was replaced by the reconnect of its session above
        check(ends.get(conn[3]) == "replaced" and conn[4] not in ends, "the others were not closed: %r" %
              [ends.get(x) for x in conn])
    finally:
        closing(*all_streams)


@test
def events_close_event_has_an_id_line(s):
    """API.md §6: every event has `id:`, `event:` and `data:` lines."""
    tenant = new_tenant(s, (("ana", "viewer"),))
    c = Client(s.port, tenant, "ana")
    raw = _raw_stream_bytes(c, lambda: publish(s.port, tenant, "job.done", {"ok": 1}, topic="job:1", close=True),
                            settle=2.0, query="topics=job:1")
    blocks = [b for b in raw.decode().split("\n\n") if b.strip()]
    close = [b for b in blocks if "event: close" in b.split("\n")]
    check(close, "a close event in %r" % raw)
    check(any(l.startswith("id: ") for l in close[0].split("\n")), "close event has an id line: %r" % close[0])
    check(all(any(l.startswith("id: ") for l in b.split("\n")) for b in blocks if "event:" in b),
          "every event has an id line: %r" % blocks)


@test
def events_finished_session_still_needs_its_cookie_and_login(s):
    """API.md §6: a session id presented without its cookie or after
    revocation gets 401 events.invalid_session; 204 is for a reconnect of
    the same client to a finished stream session."""
    tenant = new_tenant(s, (("ana", "viewer"),))
    c = Client(s.port, tenant, "ana")
    sid = new_session(c)
    es = open_session(c, sid, "topics=job:9")
    try:
        connected(es)
        published_id(publish(s.port, tenant, "job.done", {"ok": 1}, topic="job:9", close=True))
        evs, eof = read_to_eof(es, 5)
        check(eof and evs[-1][1]["event"] == "close", "stream closed by the publisher %r" % evs[-1:])
    finally:
        es.close()
    r = request(s.port, "GET", session_url(sid, "topics=job:9"), {"Cookie": c.cookie})
    check(r.status == 204, "the same client gets 204: %d" % r.status)
    problem(request(s.port, "GET", session_url(sid, "topics=job:9")), 401, "events.invalid_session")
    problem(request(s.port, "GET", session_url(sid, "topics=job:9"), {"Cookie": "__Host-fgp=" + "A" * 43}),
            401, "events.invalid_session")
    check(c.post("/api/v2/auth/logout").status == 204, "logout")
    problem(request(s.port, "GET", session_url(sid, "topics=job:9"), {"Cookie": c.cookie}),
            401, "events.invalid_session")


# ---------------------------------------------------------------- slow clients

@test
def events_slow_client_is_dropped_and_others_keep_up(s, binary):
    st = _stack(binary, {"sse": {"max_buffer_bytes": 131072}, "http": {"max_body_bytes": 65536}}, name="slow")
    slow = fast = None
    try:
        tenant = new_tenant(st, (("ana", "viewer"),))
        c = Client(st.port, tenant, "ana")
        slow = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1024)
        slow.settimeout(5)
        slow.connect(("127.0.0.1", st.port))
        hdr = "".join("%s: %s\r\n" % kv for kv in c.headers().items())
        slow.sendall(("GET %s HTTP/1.0\r\nHost: 127.0.0.1\r\n%s\r\n" % (STREAM, hdr)).encode())
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = slow.recv(1)
            check(chunk, "slow stream: EOF in the head")
            head += chunk
        check(head.startswith(b"HTTP/1.0 200"), "slow stream opened: %r" % head[:40])
        fast = open_bearer(c)
        fast_id = json.loads(connected(fast)["data"])["connection_id"]
        got, errors = [], []
        # lighttpd's socket to the client autotunes its send buffer to
        # megabytes: the slow client must be owed more than that before
        # lighttpd stops reading from fcgi_sse and the hub's buffer fills
        N, pad, window = 300, "x" * 24000, 4

        def reader():
            end = time.monotonic() + 30
            try:
                while len(got) < N and time.monotonic() < end:
                    ev = fast.next_event()
                    if ev is None:
                        break
                    if ev[1]["event"] == "bulk":
                        got.append(ev[1])
            except Exception as e:  # reported below
                errors.append(e)

        t = threading.Thread(target=reader)
        t.start()
        ids = []
        t0 = time.monotonic()
        for i in range(N):
            # a reader that keeps up: a few events in flight at most (a
            # 2048-byte buffer cannot absorb a single event of the normal
            # stream if lighttpd falls behind for a moment)
            wait_until(lambda: len(got) >= i - window or not t.is_alive(), 5, 0.001)
            ids.append(published_id(publish(st.port, tenant, "bulk", {"i": i, "pad": pad})))
        t_pub = time.monotonic() - t0
        t.join(20)
        lag = time.monotonic() - t0 - t_pub
        ends = stream_ends(st)
        check(not t.is_alive(), "normal reader finished")
        check(not errors, "normal reader: %r" % errors)
        check(len(got) == N, "normal stream got %d of %d events (stream ends: %r, normal stream %s)" %
              (len(got), N, ends, fast_id))
        check([e["id"] for e in got] == ids, "in order, with the published ids")
        check(all(json.loads(e["data"])["i"] == i for i, e in enumerate(got)), "payloads")
        check(lag < 3 and t_pub < 15, "normal stream kept up (published in %.2fs, %.2fs behind)" % (t_pub, lag))
        check(wait_until(lambda: len(stream_ends(st, "dropped_slow")) >= 1, 5),
              "slow client dropped (stream_end reasons: %r)" % [m.get("reason") for m in stream_ends(st)])
        ends = stream_ends(st)
        check(len(ends) == 1 and ends[0]["reason"] == "dropped_slow" and ends[0]["request_id"] != fast_id,
              "only the slow one was dropped: %r (normal stream %s)" % (ends, fast_id))
        check(ends[0]["bytes"] > 2048, "bytes counted %r" % ends[0])
        check(not fast.closed, "normal stream still open")
        t, ev = fast.next_event()
        check(ev["event"] == "ping" and ev["id"] == ids[-1], "normal stream goes on: %r" % ev)
    finally:
        if slow is not None:
            slow.close()
        closing(fast)
        st.cleanup()


# ---------------------------------------------------------------- many streams

def _raise_nofile(want):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < want:
        new = want if hard == resource.RLIM_INFINITY else min(want, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (new, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def _rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS for %d" % pid)


@test
def events_hundreds_of_streams_get_every_event_and_leave_memory_where_it_was(s, binary):
    n = 300
    limit = _raise_nofile(4096)
    check(limit >= 3 * n + 100, "open-file limit %d too low for %d streams" % (limit, n))
    st = _stack(binary, {"sse": {"max_streams": 400}}, name="many")
    try:
        tenant = new_tenant(st, (("ana", "viewer"),))
        c = Client(st.port, tenant, "ana")
        rss = []
        for rnd in range(2):
            ended_before = len(stream_ends(st))
            streams = []
            try:
                for i in range(n):
                    es = open_bearer(c)
                    streams.append(es)
                    check(es.status == 200, "round %d stream %d: %d" % (rnd, i, es.status))
                ids = [published_id(publish(st.port, tenant, "bulk", {"r": rnd, "i": i})) for i in range(5)]
                for i, es in enumerate(streams):
                    got = read_events(es, 5, skip=("ping", "connected"))
                    check([e["id"] for e in got] == ids, "round %d stream %d got %r" % (rnd, i, got))
            finally:
                closing(*streams)
            check(wait_until(lambda: len(stream_ends(st)) - ended_before >= n, 10, 0.1),
                  "round %d: %d of %d streams ended" % (rnd, len(stream_ends(st)) - ended_before, n))
            time.sleep(0.3)
            rss.append(_rss_kb(st.backend.pid))
        growth = rss[1] - rss[0]
        check(growth < 2048, "RSS after round 1 %d kB, after round 2 %d kB (+%d kB)" % (rss[0], rss[1], growth))
        check(st.get("/api/v2/health").status == 200, "still serving")
        es = open_bearer(c)
        try:
            connected(es)
        finally:
            es.close()
    finally:
        st.cleanup()


# ---------------------------------------------------------------- shutdown and lifetime

@test
def events_sigterm_sends_shutdown_to_every_stream(s, binary):
    st = _stack(binary, name="evshutdown")
    streams = []
    try:
        tenant = new_tenant(st, (("ana", "viewer"),))
        c = Client(st.port, tenant, "ana")
        streams = [open_bearer(c), open_session(c, new_session(c)), open_bearer(c, "topics=t:1")]
        for es in streams:
            connected(es)
        eid = published_id(publish(st.port, tenant, "x", {"before": "shutdown"}))
        st.backend.send_signal(signal.SIGTERM)
        for i, es in enumerate(streams):
            evs, eof = read_to_eof(es, 8)
            names = [e["event"] for _, e in evs if e["event"] != "ping"]
            check(eof, "stream %d ended" % i)
            check(evs and evs[-1][1]["event"] == "shutdown", "stream %d: last event %r" % (i, evs[-1:]))
            last = evs[-1][1]
            check(re.fullmatch(RFC3339_RE, json.loads(last["data"])["time"]), "shutdown data %r" % last)
            want_before = [] if i == 2 else ["x"]
            check(names == want_before + ["shutdown"], "stream %d events %r" % (i, names))
            # the stream's place in the tenant's events: stream 2 did not get
            # x (filtered) but is past it, so resuming from here loses nothing
            check(last["id"] == eid, "stream %d: shutdown id %r, want %r" % (i, last["id"], eid))
        rc = st.backend.wait(10)
        check(rc == 0, "exit status %r" % rc)
        check(len(stream_ends(st, "shutdown")) == 3, "stream_end shutdown logged %r" %
              [m.get("reason") for m in stream_ends(st)])
    finally:
        closing(*streams)
        st.cleanup()


@test
def events_stream_ends_after_its_lifetime_and_session_reconnects(s, binary):
    st = _stack(binary, {"sse": {"max_lifetime_ms": 1500, "lifetime_jitter_pct": 0}}, name="lifetime")
    try:
        tenant = new_tenant(st, (("ana", "viewer"),))
        c = Client(st.port, tenant, "ana")
        sid = new_session(c)
        for attempt in range(2):
            es = open_session(c, sid)
            try:
                t0 = time.monotonic()
                connected(es)
                evs, eof = read_to_eof(es, 6)
                took = time.monotonic() - t0
                check(eof, "attempt %d: stream ended by itself" % attempt)
                check(1.3 <= took <= 2.5, "attempt %d: ended after %.2fs" % (attempt, took))
                check([e["event"] for _, e in evs] == ["ping", "lifetime"],
                      "a ping within 1.5 s at a 1 s heartbeat, then `lifetime`, then EOF: %r" % evs)
            finally:
                es.close()
        # (the log line follows the close of the connection by a moment)
        check(wait_until(lambda: len(stream_ends(st, "lifetime")) == 2, 3),
              "stream_end lifetime logged: %r" % [m.get("reason") for m in stream_ends(st)])
    finally:
        st.cleanup()


@test
def events_ids_of_other_tenants_are_not_shown(s):
    """connected and ping carry the stream's own tenant's last event id,
    never another tenant's (it would leak their activity)."""
    a, b = new_tenant(s, (("ana", "admin"),)), new_tenant(s, (("bo", "viewer"),))
    published_id(publish(s.port, a, data={"x": 1}))
    cb = Client(s.port, b, "bo")
    es = open_bearer(cb)
    try:
        ev = connected(es)
        check(ev["id"] == "0-0", "a quiet tenant starts at 0-0, got %r" % ev["id"])
        t, ping = es.next_event()
        check(ping["event"] == "ping" and ping["id"] == "0-0", "ping id %r" % ping)
        eid = published_id(publish(s.port, b, data={"y": 2}))
        ca = Client(s.port, a, "ana")
        es2 = open_bearer(ca)
        try:
            check(connected(es2)["id"] != eid, "tenant A does not see B's id")
        finally:
            es2.close()
    finally:
        es.close()


@test
def events_data_over_a_quarter_of_the_buffer_is_413(s, binary):
    st = _stack(binary, {"sse": {"max_buffer_bytes": 4096}, "http": {"max_body_bytes": 65536}},
                name="bigevent")
    try:
        tenant = new_tenant(st, (("ana", "viewer"),))
        b = problem(publish(st.port, tenant, data="x" * 2000), 413, "request.too_large")
        check("1024" in b["detail"], "detail names the limit: %r" % b["detail"])
        published_id(publish(st.port, tenant, data="x" * 900))
    finally:
        st.cleanup()


@test
def events_logout_and_revoke_all_end_open_streams(s):
    """An open stream must not outlive its credentials (in this process;
    across processes is issue #5)."""
    tenant = new_tenant(s, (("boss", "admin"), ("ana", "viewer")))
    ana = Client(s.port, tenant, "ana")
    es = open_bearer(ana)
    es2 = open_session(ana, new_session(ana))
    try:
        connected(es)
        connected(es2)
        check(ana.post("/api/v2/auth/logout").status == 204, "logout")
        for stream in (es, es2):
            got, eof = read_to_eof(stream)
            events = [ev["event"] for _, ev in got]
            check(eof and events and events[-1] == "revoked", "stream ended with revoked: %r" % events)
    finally:
        es.close()
        es2.close()
    boss, ana2 = Client(s.port, tenant, "boss"), Client(s.port, tenant, "ana")
    es = open_bearer(ana2)
    try:
        connected(es)
        uid = claims_of(ana2.token)["sub"]
        check(boss.delete("/api/v2/users/%s/sessions" % uid).status == 204, "revoke all")
        got, eof = read_to_eof(es)
        events = [ev["event"] for _, ev in got]
        check(eof and events and events[-1] == "revoked", "revoke-all ended the stream: %r" % events)
    finally:
        es.close()


def _metric(text, name):
    for line in text.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            return float(line.rsplit(" ", 1)[1])
    return None


@test
def metrics_for_loopback_or_the_secret(s, binary):
    from harness import fcgi_request, free_port, port_open
    import os
    import subprocess
    import tempfile
    tenant = new_tenant(s, (("ana", "viewer"),))
    before = request(s.port, "GET", "/metrics")
    check(before.status == 200, "loopback gets /metrics: %d" % before.status)
    check(before.header("Content-Type").startswith("text/plain; version=0.0.4"), "Prometheus type")
    published_id(publish(s.port, tenant, data={"m": 1}))
    after = request(s.port, "GET", "/metrics").body.decode()
    p0 = _metric(before.body.decode(), "fcgi_sse_events_published_total")
    p1 = _metric(after, "fcgi_sse_events_published_total")
    check(p0 is not None and p1 == p0 + 1, "published counter %r -> %r" % (p0, p1))
    check(_metric(after, 'fcgi_sse_http_responses_total{code="202"}') >= 1, "202 counted")
    check("fcgi_sse_streams_open" in after and 'cache="session"' in after, "stream and cache metrics")
    check(SECRET not in after, "no secret in metrics")
    problem(request(s.port, "POST", "/metrics", body=b""), 405, "route.method_not_allowed")
    # a non-loopback caller (raw FastCGI, so REMOTE_ADDR can be set)
    port = free_port()
    tmp = tempfile.mkdtemp(prefix="fcgi_sse_it_metrics_")
    env = {k: v for k, v in os.environ.items() if not k.startswith("FCGI_SSE_")}
    env.update(FCGI_SSE_STORE_PATH=os.path.join(tmp, "db"), FCGI_SSE_AUTH_PBKDF2_ITERATIONS="1000",
               FCGI_SSE_SECURITY_INTERNAL_SECRET=SECRET)
    p = subprocess.Popen([binary, "--listen", "127.0.0.1:%d" % port], env=env,
                         stdin=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        check(wait_until(lambda: port_open(port), 5), "listening")
        base = {"REQUEST_METHOD": "GET", "REQUEST_URI": "/metrics", "REMOTE_ADDR": "203.0.113.9"}
        out, _ = fcgi_request(("127.0.0.1", port), base)
        check(out.startswith(b"Status: 403") and b"internal.forbidden" in out, "remote: %r" % out[:60])
        out, _ = fcgi_request(("127.0.0.1", port), dict(base, HTTP_X_INTERNAL_SECRET="wrong"))
        check(out.startswith(b"Status: 403"), "wrong secret: %r" % out[:40])
        out, _ = fcgi_request(("127.0.0.1", port), dict(base, HTTP_X_INTERNAL_SECRET=SECRET))
        check(out.startswith(b"Status: 200") and b"fcgi_sse_streams_open" in out, "secret: %r" % out[:40])
    finally:
        p.terminate()
        p.wait(10)
        import shutil
        shutil.rmtree(tmp, ignore_errors=True)



@test
def each_stream_gets_a_retry_with_jitter(s, binary):
    """sse.retry_jitter_pct: every stream's retry is retry_ms plus up to
    that percent, at random, so that after a restart the reconnects spread
    over the span instead of arriving together."""
    st = _stack(binary, {"sse": {"retry_ms": 2000, "retry_jitter_pct": 50}}, name="retry-jitter")
    try:
        seen = []
        for _ in range(30):
            es = EventStream(st.port, "/api/v2/version/stream")
            try:
                check(es.status == 200, "stream status %d" % es.status)
                check(es.next_event() is not None, "the version_info event")
                seen.append(es.retry)
            finally:
                es.close()
        check(all(r is not None and 2000 <= r <= 3000 for r in seen), "retry within 2000..3000: %r" % seen)
        # 30 draws from 1,001 values: fewer than 10 distinct would be a
        # fixed or barely random retry (odds of chance below 1e-20)
        check(len(set(seen)) >= 10, "retry values spread: %r" % sorted(seen))
        check(max(seen) - min(seen) >= 500, "over at least half the span: %r" % sorted(seen))
    finally:
        st.cleanup()
