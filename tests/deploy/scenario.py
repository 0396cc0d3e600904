"""What every deployment must do for a user, through its front server:
API versions and their headers, a login and an authenticated call (the
Authorization header reaches fcgi_sse), an SSE stream whose events arrive
within 50 ms of their publish (nothing buffers them), Last-Event-ID replay,
a stream its client closes freed long before the next heartbeat, and a
graceful restart during a stream after which the client resumes with
no event lost."""

import json
import os
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
from common import SECRET, check  # noqa: E402
from harness import wait_until  # noqa: E402

from clients import H1  # noqa: E402

TENANT, USER, PASSWORD = "deploy", "op", "deploy-password-1"
CLOSER = "deploy-closer"  # a tenant of its own: its streams are counted alone
STREAM = "/api/v2/events/stream"


def prepare(setup):
    """The tenant and user, made with the admin command before the start."""
    for args, stdin in ((("create-tenant", TENANT), None),
                        (("create-user", "--tenant", TENANT, "--username", USER, "--role", "operator"),
                         PASSWORD + "\n"),
                        (("create-tenant", CLOSER), None),
                        (("create-user", "--tenant", CLOSER, "--username", USER, "--role", "operator"),
                         PASSWORD + "\n")):
        rc, out, err = setup.admin(*args, stdin=stdin)
        check(rc == 0, "admin %s: %d %s %s" % (args[0], rc, out, err))


def versions(c):
    r = c.request("GET", "/api/v2/version")
    check(r.status == 200 and r.header("API-Version") == "2", "v2 version: %d %r" % (r.status, r.headers))
    r = c.request("GET", "/api/version")
    check(r.status == 200 and r.header("API-Version") == "2", "unversioned = v2: %d" % r.status)
    r = c.request("GET", "/api/v1/version")
    check(r.status == 200 and r.header("API-Version") == "1", "v1 version: %d" % r.status)
    for h in ("Deprecation", "Sunset", "Link"):
        check(r.header(h), "v1 answer without %s: %r" % (h, r.headers))


class Login:
    def __init__(self, c, tenant=TENANT):
        r = c.request("POST", "/api/v2/auth/login", {"Content-Type": "application/json"},
                      json.dumps({"tenant": tenant, "username": USER, "password": PASSWORD}).encode())
        check(r.status == 200, "login: %d %r" % (r.status, r.body[:300]))
        self.token = r.json()["access_token"]
        self.tenant_id = r.json()["user"]["tenant"]["id"]
        cookies = [v.split(";")[0] for v in r.all("Set-Cookie") if v.startswith("__Host-fgp=")]
        check(cookies, "login without the fingerprint cookie: %r" % r.headers)
        self.cookie = cookies[0]

    def headers(self, extra=None):
        h = {"Authorization": "Bearer " + self.token, "Cookie": self.cookie}
        h.update(extra or {})
        return h


def authenticated(c, login):
    r = c.request("GET", "/api/v2/me", login.headers())
    check(r.status == 200, "GET /me with the token (Authorization through the front server?): %d %r"
          % (r.status, r.body[:200]))
    r = c.request("GET", "/api/v2/me")
    check(r.status == 401, "GET /me without a token: %d" % r.status)


def publish(c, n, refusals=None):
    """POST /api/v2/events (internal); returns the id, or None when refused
    (counted in refusals by status, or by the error, when given)."""
    body = json.dumps({"tenant": TENANT, "type": "deploy.test", "data": {"n": n}}).encode()
    try:
        r = c.request("POST", "/api/v2/events", {"X-Internal-Secret": SECRET,
                                                 "Content-Type": "application/json"}, body, timeout=5)
    except (OSError, AssertionError) as e:
        why = type(e).__name__
    else:
        if r.status == 202:
            return r.json()["id"]
        why = str(r.status)
    if refusals is not None:
        refusals[why] = refusals.get(why, 0) + 1
    return None


def open_stream(c, login, last_id=None):
    h = {"Last-Event-ID": last_id} if last_id else {}
    es = c.stream(STREAM + "?events=deploy.test", login.headers(h))
    check(es.status == 200, "stream: %d" % es.status)
    check("text/event-stream" in (es.header("Content-Type") or ""), "stream type %r" % es.header("Content-Type"))
    got = es.next_event()
    check(got and got[1]["event"] == "connected", "stream starts with connected: %r" % (got,))
    return es


def next_deploy_event(es):
    while True:
        got = es.next_event()
        if got is None or got[1]["event"] == "deploy.test":
            return got


def unbuffered(c, pub, login):
    """Three events, each timed from just before its publish to its arrival:
    buffering anywhere on the way would hold every one of them."""
    es = open_stream(c, login)
    try:
        check(es.retry is not None, "the stream's retry field")
        delays = []
        for n in range(3):
            t0 = time.monotonic()
            eid = publish(pub, n)
            check(eid, "publish %d refused" % n)
            got = next_deploy_event(es)
            check(got and got[1]["id"] == eid, "event %d: %r, want id %s" % (n, got, eid))
            delays.append((got[0] - t0) * 1000)
            time.sleep(0.05)
        check(min(delays) <= 50, "events arrive %s ms after their publish (want <= 50)"
              % ", ".join("%.0f" % d for d in delays))
        return eid, delays
    finally:
        es.close()


def replay(c, pub, login, last_id):
    """Events published while the client was away come first on a
    reconnect with Last-Event-ID, in order."""
    missed = [publish(pub, 100 + n) for n in range(2)]
    check(all(missed), "publishes while away: %r" % missed)
    es = open_stream(c, login, last_id)
    try:
        got = [next_deploy_event(es) for _ in missed]
        check([g[1]["id"] for g in got if g] == missed, "replayed %r, want %r" % (got, missed))
    finally:
        es.close()
    return missed[-1]


def open_streams(redis, tenant_id):
    """A tenant's open streams in every process, as their stream quota
    counts them in Redis (each process reports its own every second)."""
    v = redis.command("HGETALL", "fcgi_sse:sqt:{%s}" % tenant_id) or []
    return sum(int(v[i + 1]) for i in range(0, len(v), 2))


def closed_stream_freed(c, redis, bound):
    """A client that reads its stream and closes it (a FIN: lighttpd and
    Apache take it for a half-close and would notice only at the next
    heartbeat, 20 s here) loses its place within about a second: fcgi_sse
    finds the connection in CLOSE_WAIT (sse.peer_check_ms). bound: the
    seconds the setup may take (where nothing can tell, the heartbeat's).
    Returns the seconds from the close until the count in Redis dropped
    (reported once a second, so up to ~1 s above the truth)."""
    login = Login(c, CLOSER)
    es = open_stream(c, login)
    try:
        check(wait_until(lambda: open_streams(redis, login.tenant_id) == 1, 5),
              "the open stream is not counted: %d" % open_streams(redis, login.tenant_id))
    finally:
        t0 = time.monotonic()
        es.close_cleanly()
    check(wait_until(lambda: open_streams(redis, login.tenant_id) == 0, bound, 0.05),
          "a closed stream still held its place after %d s" % bound)
    return time.monotonic() - t0


def restart_during_stream(c, pub, login, setup, last_id):
    """Events are published every 50 ms while the front server or the
    children restart gracefully; the client reads, and on the stream's end
    reconnects with the last id it saw, as EventSource does. Every event
    accepted (202) must reach it, once, in order."""
    accepted, refused, stop = [], {}, threading.Event()

    def publisher():
        n = 0
        while not stop.is_set():
            eid = publish(pub, 1000 + n, refused)
            if eid:
                accepted.append(eid)
            n += 1
            time.sleep(0.05)

    seen, reconnects = [], 0
    es = open_stream(c, login, last_id)
    t = threading.Thread(target=publisher)
    t.start()
    try:
        deadline = time.monotonic() + 1.0
        while time.monotonic() < deadline:
            got = next_deploy_event(es)
            check(got, "the stream ended before the restart")
            seen.append(got[1]["id"])
        setup.restart()
        end = time.monotonic() + 3.0  # publishing goes on after the restart
        while True:
            if time.monotonic() > end and not stop.is_set():
                stop.set()
                t.join()  # every publish answered: `accepted` is final
            if stop.is_set() and set(accepted) <= set(seen):
                break
            check(time.monotonic() < end + 20, "not every accepted event arrived: %d accepted, %d seen"
                  % (len(accepted), len(seen)))
            try:
                got = next_deploy_event(es)
            except (OSError, TimeoutError):
                got = None
            if got is not None:
                seen.append(got[1]["id"])
                continue
            es.close()
            es = None
            while es is None:  # the server may be coming back up
                check(time.monotonic() < end + 20, "could not reconnect after the restart")
                try:
                    es = open_stream(c, login, seen[-1] if seen else last_id)
                    reconnects += 1
                except (OSError, AssertionError, TimeoutError):
                    es = None
                    time.sleep(0.2)
    finally:
        stop.set()
        t.join()
        if es is not None:
            es.close()
    check(len(seen) == len(set(seen)), "an event twice: %r" % seen)
    order = [e for e in seen if e in set(accepted)]
    check(order == accepted, "accepted events out of order or missing")
    return {"accepted": len(accepted), "refused": refused, "reconnects": reconnects}


def run(setup, client):
    """The whole scenario; returns a short summary of what was measured.
    Events are published over HTTP/1.0 (by a backend service, not the
    user's client), so that their timing is the stream's alone."""
    pub = H1(setup.port)
    versions(client)
    login = Login(client)
    authenticated(client, login)
    if hasattr(setup, "checks"):
        setup.checks(client, login)  # what only this setup has
    last, delays = unbuffered(client, pub, login)
    last = replay(client, pub, login, last)
    freed = closed_stream_freed(client, setup.redis, getattr(setup, "closed_stream_bound", 5))
    r = restart_during_stream(client, pub, login, setup, last)
    if hasattr(setup, "restarted"):
        setup.restarted()
    return "delays %s ms; closed stream freed in %.1f s; restart: %d accepted, refused %s, %d reconnects" % (
        "/".join("%.0f" % d for d in delays), freed, r["accepted"], r["refused"] or "none", r["reconnects"])
