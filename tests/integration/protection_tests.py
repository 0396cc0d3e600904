"""Protection integration tests (issue #12, API.md §7): login limits per
client address and per (tenant, username), shared by processes through
Redis and kept per process while Redis is down, and the cap on password
checks that keeps the service responsive under a brute force."""

import json
import socket
import struct
import threading
import time

from auth_tests import PASSWORD, new_tenant, post_json
from common import _stack, check, outage_redis, problem, test
from harness import RedisServer, request

LOGIN = "/api/v2/auth/login"


def attempt(port, tenant, user, password, addr=None):
    h = {"X-Forwarded-For": addr} if addr else {}
    return post_json(port, LOGIN, {"tenant": tenant, "username": user, "password": password}, h)


def limited(r):
    body = problem(r, 429, "rate.limited")
    retry = r.header("Retry-After")
    check(retry is not None and int(retry) >= 1, "Retry-After: %r" % retry)
    check(r.all("RateLimit-Policy") and r.all("RateLimit"), "RateLimit headers on the 429")
    return body


@test
def login_limits_per_user_and_per_address(s, binary):
    """A user's failures lock it out (its right password too, the same
    429); an address's attempts are limited whatever it tries; answers
    under the limits carry the policy and what is left of it."""
    st = _stack(binary, {"auth": {"login_attempts_per_address": 12, "login_failures_per_user": 3,
                                  "login_failure_window_s": 600},
                         "http": {"trusted_proxies": "127.0.0.1"}}, name="login-limits")
    try:
        tenant = new_tenant(st, (("ana", "viewer"), ("bo", "viewer")))
        ok = attempt(st.port, tenant, "ana", PASSWORD, "192.0.2.1")
        check(ok.status == 200, "login: %d %r" % (ok.status, ok.body[:200]))
        check('"login-address";q=12;w=60' in ok.all("RateLimit-Policy"),
              "policy: %r" % ok.all("RateLimit-Policy"))
        check('"login-address";r=11;t=' in ",".join(ok.all("RateLimit")), "state: %r" % ok.all("RateLimit"))
        for i in range(3):
            problem(attempt(st.port, tenant, "ana", "wrong", "192.0.2.1"), 401, "auth.invalid_credentials")
        # locked out: right and wrong passwords get the same answer
        right, wrong = (attempt(st.port, tenant, "ana", p, "192.0.2.2") for p in (PASSWORD, "wrong"))
        a, b = limited(right), limited(wrong)
        check(a["detail"] == b["detail"] and right.status == wrong.status, "same refusal")
        check(int(right.header("Retry-After")) > 60, "locked for the failure window: %r" % right.header("Retry-After"))
        # another user and another address are untouched
        check(attempt(st.port, tenant, "bo", PASSWORD, "192.0.2.2").status == 200, "bo logs in")
        # the address 192.0.2.1 has used 4 of its 12; 8 more, then 429
        for i in range(8):
            r = attempt(st.port, tenant, "nobody-%d" % i, "x", "192.0.2.1")
            check(r.status == 401, "attempt %d: %d" % (i, r.status))
        limited(attempt(st.port, tenant, "bo", PASSWORD, "192.0.2.1"))
        m = request(st.port, "GET", "/metrics").body.decode()
        for want in ('fcgi_sse_rate_limited_total{policy="login-user"} 2',
                     'fcgi_sse_rate_limited_total{policy="login-address"} 1',
                     'fcgi_sse_errors_total{code="auth.invalid_credentials"} 11'):
            check(want in m, "%r in /metrics: %r" % (want, [l for l in m.splitlines() if "limit" in l or "errors" in l]))
        # without a trusted proxy in between, X-Forwarded-For is ignored
    finally:
        st.cleanup()
    st = _stack(binary, {"auth": {"login_attempts_per_address": 2}}, name="login-xff-untrusted")
    try:
        tenant = new_tenant(st, (("ana", "viewer"),))
        for addr in ("198.51.100.1", "198.51.100.2"):
            check(attempt(st.port, tenant, "ana", PASSWORD, addr).status == 200, "under the limit")
        limited(attempt(st.port, tenant, "ana", PASSWORD, "198.51.100.3"))
    finally:
        st.cleanup()


@test
def login_limits_are_shared_by_two_processes(s, binary):
    a = _stack(binary, {"auth": {"login_failures_per_user": 4}}, name="shared-a")
    b = _stack(binary, json.loads(json.dumps(a.config)), name="shared-b")
    try:
        tenant = new_tenant(a, (("ana", "viewer"),))
        for st in (a, b, a, b):
            problem(attempt(st.port, tenant, "ana", "wrong"), 401, "auth.invalid_credentials")
        limited(attempt(a.port, tenant, "ana", PASSWORD))
        limited(attempt(b.port, tenant, "ana", PASSWORD))
    finally:
        a.cleanup()
        b.cleanup()


@test
def login_limits_hold_per_process_while_redis_is_down(s, binary):
    redis = RedisServer().start()
    st = _stack(binary, {"redis": outage_redis(redis),
                         "auth": {"login_attempts_per_address": 5}}, name="limits-no-redis")
    try:
        tenant = new_tenant(st, (("ana", "viewer"),))
        redis.stop()
        for i in range(5):
            r = attempt(st.port, tenant, "ana", PASSWORD)
            check(r.status == 200, "attempt %d with Redis down: %d %r" % (i, r.status, r.body[:200]))
        limited(attempt(st.port, tenant, "ana", PASSWORD))
    finally:
        st.cleanup()
        redis.stop()


@test
def brute_force_from_many_addresses_leaves_the_service_responsive(s, binary):
    """Eight attackers, each from its own address (so no address limit
    stops them) and each on its own user, with real password hashing (100k
    PBKDF2 iterations): at most one check runs at a time, the rest get 503
    server.busy or 401 (or 429 from their addresses' limits), and a health
    check answers within 100 ms throughout."""
    users = tuple(("u%d" % i, "viewer") for i in range(8))
    st = _stack(binary, {"auth": {"pbkdf2_iterations": 100000, "max_concurrent_hashes": 1,
                                  "login_attempts_per_address": 1000, "login_failures_per_user": 1000},
                         "http": {"trusted_proxies": "127.0.0.1"}}, name="brute-force")
    try:
        tenant = new_tenant(st, users)
        stop = time.monotonic() + 3.0
        counts = {}
        lock = threading.Lock()

        def attacker(i):
            while time.monotonic() < stop:
                r = attempt(st.port, tenant, "u%d" % i, "guess-%d" % time.monotonic_ns(), "203.0.113.%d" % (i + 1))
                with lock:
                    counts[r.status] = counts.get(r.status, 0) + 1

        threads = [threading.Thread(target=attacker, args=(i,)) for i in range(8)]
        for t in threads:
            t.start()
        worst = 0.0
        probes = 0
        while time.monotonic() < stop - 0.2:
            t0 = time.monotonic()
            r = request(st.port, "GET", "/api/v2/health")
            took = time.monotonic() - t0
            check(r.status == 200, "health during the attack: %d" % r.status)
            worst = max(worst, took)
            probes += 1
            time.sleep(0.05)
        for t in threads:
            t.join()
        check(probes >= 20, "probes: %d" % probes)
        check(counts.get(503, 0) > 0 and counts.get(401, 0) > 0, "busy and refused: %r" % counts)
        # (fast 503s let each attacker make thousands of tries: its address
        # limit answers 429 once they pass 1000 a minute)
        check(set(counts) <= {401, 429, 503}, "only 401, 429 and 503: %r" % counts)
        check(worst < 0.1, "slowest health check during the attack: %.1f ms" % (worst * 1000))
        # the slots are all given back: a real login works at once
        check(attempt(st.port, tenant, "u0", PASSWORD, "203.0.113.99").status == 200, "login after")
    finally:
        st.cleanup()


@test
def route_limits_per_tenant_and_version_shared_by_two_processes(s, binary):
    """reads_per_min 6: six reads of a tenant through two processes, then
    429 on both; v1 has its own bucket, another tenant its own, writes
    theirs; every limited answer names its policy."""
    from auth_tests import Client
    a = _stack(binary, {"ratelimit": {"reads_per_min": 6, "writes_per_min": 3}}, name="routes-a")
    b = _stack(binary, json.loads(json.dumps(a.config)), name="routes-b")
    try:
        tenant = new_tenant(a, (("op", "operator"),))
        other = new_tenant(a, (("op", "operator"),))
        c, d = Client(a.port, tenant, "op"), Client(a.port, other, "op")
        for i in range(6):
            r = request((a, b)[i % 2].port, "GET", "/api/v2/devices", c.headers())
            check(r.status == 200, "read %d: %d %r" % (i, r.status, r.body[:200]))
            check('"reads";q=6;w=60' in r.all("RateLimit-Policy"), "policy: %r" % r.all("RateLimit-Policy"))
        for st in (a, b):
            limited(request(st.port, "GET", "/api/v2/devices", c.headers()))
        check(request(a.port, "GET", "/api/v1/devices", c.headers()).status == 200, "v1: its own bucket")
        check(request(b.port, "GET", "/api/v2/devices", d.headers()).status == 200, "other tenant")
        created = [post_json(a.port, "/api/v2/devices", {"name": "d%d" % i}, c.headers()) for i in range(4)]
        check([r.status for r in created] == [201, 201, 201, 429], "writes: %r" % [r.status for r in created])
        limited(created[3])
        check(request(a.port, "GET", "/api/v2/health").status == 200, "health is not limited")
        m = request(a.port, "GET", "/metrics").body.decode()
        for want in ('fcgi_sse_rate_limited_total{policy="reads"} 1', 'fcgi_sse_rate_limited_total{policy="writes"} 1',
                     'fcgi_sse_errors_total{code="rate.limited"} 2', "fcgi_sse_ratelimit_redis_calls_total ",
                     'fcgi_sse_http_requests_total{route="/devices",version="2",status="4xx"} 2',
                     'fcgi_sse_http_request_duration_seconds_bucket{route="/devices",version="2",le="+Inf"} ',
                     'fcgi_sse_http_request_duration_seconds_count{route="/devices",version="1"} 1'):
            check(want in m, "%r in /metrics: %r" % (want, [l for l in m.splitlines() if "limit" in l]))
        procs = {l.split()[0]: float(l.split()[1]) for l in m.splitlines() if l.startswith("process_")}
        check(procs.get("process_resident_memory_bytes", 0) > 1e6 and procs.get("process_open_fds", 0) > 3 and
              procs.get("process_threads", 0) >= 6 and
              abs(procs.get("process_start_time_seconds", 0) - time.time()) < 3600,
              "process metrics: %r" % procs)
    finally:
        a.cleanup()
        b.cleanup()


@test
def ready_proves_delivery_and_flips_when_redis_stops_answering(s, binary):
    """ready is 200 once this process's probe has come back through the
    bus; Redis paused (SIGSTOP) makes it 503 within the configured age,
    naming delivery; resumed (SIGCONT), it is 200 again."""
    import os
    import signal
    from harness import wait_until
    redis = RedisServer().start()
    st = _stack(binary, {"redis": outage_redis(redis),
                         "sse": {"ready_probe_max_age_ms": 2500}}, name="ready")

    def ready():
        r = request(st.port, "GET", "/api/v2/ready", timeout=5)
        return r.status, r.json()

    try:
        check(wait_until(lambda: ready()[0] == 200, timeout=10), "ready after start: %r" % (ready(),))
        status, body = ready()
        check(body["store"] == "ok" and body["bus"] == "up" and body["delivery"]["ok"] is True,
              "ready body: %r" % body)
        check(0 <= body["delivery"]["last_probe_ms_ago"] <= 2500, "probe age: %r" % body)
        os.kill(redis.proc.pid, signal.SIGSTOP)
        try:
            check(wait_until(lambda: ready()[0] == 503, timeout=10), "503 with Redis paused: %r" % (ready(),))
            status, body = ready()
            check(body["status"] == "not_ready" and body["delivery"]["ok"] is False, "body: %r" % body)
            check(body["store"] == "ok", "the store still answers: %r" % body)
        finally:
            os.kill(redis.proc.pid, signal.SIGCONT)
        check(wait_until(lambda: ready()[0] == 200, timeout=15), "ready again: %r" % (ready(),))
        check(request(st.port, "GET", "/api/v2/health").status == 200, "health throughout")
    finally:
        st.cleanup()
        redis.stop()


@test
def a_stream_that_ends_between_two_quota_reports_gives_its_place_back(s, binary):
    """Regression: quota_open counts a stream in Redis at once, and each
    second a process reports its true counts; a stream that opened and
    ended between two reports was in neither, so its +1 stayed in Redis
    for as long as the process lived and the user could not open another.
    Now the next report zeroes it. One stream per user: open, end within
    the same second (a reset, which lighttpd passes on at once), and the
    next open must succeed within a few reports."""
    from auth_tests import Client
    from events_tests import connected, open_bearer
    from harness import wait_until
    st = _stack(binary, {"sse": {"max_streams_per_user": 1}}, name="quota-short")
    held = []
    try:
        tenant = new_tenant(st, (("cy", "viewer"),))
        cy = Client(st.port, tenant, "cy")
        def opens():
            es = open_bearer(cy)
            if es.status == 200:
                held.append(es)
                return True
            es.close()
            return False
        for _ in range(4):
            check(wait_until(opens, timeout=5, step=0.2), "the short stream's place was never given back")
            es = held.pop()
            connected(es)
            es.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            es.close()  # a reset, well within the second
        check(wait_until(opens, timeout=5, step=0.2), "the short stream's place was never given back")
    finally:
        for es in held:
            es.close()
        st.cleanup()


@test
def stream_quotas_hold_across_processes_and_free_a_killed_ones_share(s, binary):
    """Two processes, at most 2 streams per user and 3 per tenant: the
    third stream of a user is 429 on either process; a closed stream frees
    its place within a sync; a SIGKILLed process's streams stop counting
    once its lease (2 s) runs out."""
    import os
    import signal
    from auth_tests import Client
    from events_tests import connected, open_bearer
    from harness import wait_until
    cfg = {"sse": {"max_streams_per_tenant": 3, "max_streams_per_user": 2, "stream_quota_lease_ms": 2000}}
    a = _stack(binary, cfg, name="quota-a")
    b = _stack(binary, json.loads(json.dumps(a.config)), name="quota-b")
    streams = []
    try:
        tenant = new_tenant(a, (("ana", "viewer"), ("bo", "viewer")))
        ana_a, ana_b = Client(a.port, tenant, "ana"), Client(b.port, tenant, "ana")
        bo_b = Client(b.port, tenant, "bo")
        for c in (ana_a, ana_b):
            streams.append(open_bearer(c))
            connected(streams[-1])
        for c in (ana_a, ana_b):  # ana's third, on either process
            limited_stream = open_bearer(c)
            check(limited_stream.status == 429, "third stream of a user: %d" % limited_stream.status)
            limited_stream.close()
        streams.append(open_bearer(bo_b))  # the tenant's third: bo's first
        connected(streams[-1])
        extra = open_bearer(bo_b)
        check(extra.status == 429, "fourth stream of the tenant: %d" % extra.status)
        extra.close()
        streams.pop(0).close()  # ana's stream on A ends
        def opens(c):
            es = open_bearer(c)
            ok = es.status == 200
            if ok:
                streams.append(es)
            else:
                es.close()
            return ok
        check(wait_until(lambda: opens(ana_a), timeout=5, step=0.3), "a closed stream frees its place")
        # B dies with two streams (ana's and bo's): after the lease they stop counting
        os.kill(b.backend.pid, signal.SIGKILL)
        check(wait_until(lambda: opens(ana_a), timeout=8, step=0.3), "the killed process's share is freed")
        m = request(a.port, "GET", "/metrics").body.decode()
        check('fcgi_sse_rate_limited_total{policy="streams-open"}' in m, "quota refusals in /metrics")
    finally:
        for es in streams:
            es.close()
        a.cleanup()
        b.cleanup()


@test
def redis_breaker_opens_half_opens_and_closes(s, binary):
    """Redis stopped: after 3 failed calls the breaker is open (reads go
    to the store at once, answers stay 200); Redis back: after open_ms a
    trial call goes through and closes it."""
    from auth_tests import Client
    from harness import wait_until
    redis = RedisServer().start()
    st = _stack(binary, {"redis": outage_redis(redis),
                         "resilience": {"breaker_failures": 3, "breaker_open_ms": 1000}}, name="breaker")

    def breaker():
        return request(st.port, "GET", "/api/v2/ready").json()["breakers"]["redis"]

    try:
        tenant = new_tenant(st, (("ana", "viewer"),))
        c = Client(st.port, tenant, "ana")
        check(breaker() == "closed", "closed at first: %r" % breaker())
        redis.stop()
        for i in range(6):
            r = c.get("/api/v2/me")
            check(r.status == 200, "me with Redis down (%d): %d" % (i, r.status))
        check(breaker() == "open", "open after the failures: %r" % breaker())
        m = request(st.port, "GET", "/metrics").body.decode()
        check('fcgi_sse_breaker_state{dependency="redis"} 1' in m, "state in /metrics")
        check('fcgi_sse_breaker_opened_total{dependency="redis"} 1' in m, "opened once")
        redis.start_on_same_port()
        check(wait_until(lambda: breaker() == "half_open", timeout=5, step=0.1), "half-open after open_ms")
        check(wait_until(lambda: c.get("/api/v2/me").status == 200 and breaker() == "closed", timeout=5, step=0.2),
              "closed after a trial: %r" % breaker())
    finally:
        st.cleanup()
        redis.stop()


@test
def bus_breaker_refuses_publishes_at_once_and_closes_when_redis_returns(s, binary):
    """Redis stopped: publishes are refused (503, nothing accepted) until
    the bus's breaker opens, then at once without touching Redis; Redis
    back: after open_ms a trial publish goes through and closes it."""
    from events_tests import publish
    from harness import wait_until
    redis = RedisServer().start()
    st = _stack(binary, {"redis": {"host": "127.0.0.1", "port": redis.port, "backoff_max_ms": 200},
                         "resilience": {"breaker_failures": 3, "breaker_open_ms": 1000}}, name="bus-breaker")

    def breakers():
        return request(st.port, "GET", "/api/v2/ready").json()["breakers"]

    try:
        tenant = new_tenant(st, (("ana", "viewer"),))
        check(publish(st.port, tenant).status == 202, "published with Redis up")
        check(breakers()["bus"] == "closed", "closed at first: %r" % breakers())
        redis.stop()
        for i in range(5):
            r = publish(st.port, tenant)
            problem(r, 503, "dependency.unavailable")
            check(r.header("Retry-After") is not None, "Retry-After on the refusal")
        check(breakers()["bus"] == "open", "open after the failures: %r" % breakers())
        check("circuit breaker open" in "\n".join(st.log_lines()), "the log names the open breaker")
        m = request(st.port, "GET", "/metrics").body.decode()
        check('fcgi_sse_breaker_state{dependency="bus"} 1' in m, "bus state in /metrics")
        check('fcgi_sse_breaker_opened_total{dependency="bus"} 1' in m, "bus opened once")
        redis.start_on_same_port()
        check(wait_until(lambda: breakers()["bus"] == "half_open", timeout=5, step=0.1), "half-open after open_ms")
        check(wait_until(lambda: publish(st.port, tenant).status == 202, timeout=5, step=0.2),
              "a publish goes through once Redis is back")
        check(breakers()["bus"] == "closed", "closed by the trial: %r" % breakers())
    finally:
        st.cleanup()
        redis.stop()


@test
def store_writes_breaker_opens_on_a_locked_store_while_reads_go_on(s, binary):
    """Another process holds the store's write lock: writes fail after the
    busy timeout (503, nothing applied) until the store_writes breaker
    opens; ready is 503 ("writes_failing"); reads keep answering. The lock
    gone and open_ms past, ready is 200 again and a write closes it."""
    import sqlite3
    import harness
    from auth_tests import Client
    from devices_tests import DEVICES
    from harness import wait_until
    # PostgreSQL: another session's lock on the devices table, and writes
    # that wait for it until the statement timeout
    st = _stack(binary, {"store": {"busy_timeout_ms": 50, "statement_timeout_ms": 100},
                         "resilience": {"breaker_failures": 3, "breaker_open_ms": 500}}, name="store-breaker")
    lock = None
    try:
        tenant = new_tenant(st, (("op", "operator"),))
        c = Client(st.port, tenant, "op")
        r = c.post(DEVICES, {"name": "first"})
        check(r.status == 201, "a device: %d %r" % (r.status, r.body[:200]))
        dev = r.json()["id"]
        if harness.STORE == "postgres":
            lock = harness.PostgresLock(st.config, "LOCK TABLE devices IN EXCLUSIVE MODE")
        else:
            lock = sqlite3.connect(st.config["store"]["path"], isolation_level=None, timeout=5)
            lock.execute("BEGIN IMMEDIATE")
        for i in range(4):
            problem(c.post(DEVICES, {"name": "d%d" % i}), 503, "dependency.unavailable")
        ready = request(st.port, "GET", "/api/v2/ready")
        body = ready.json()
        check(ready.status == 503 and body["store"] == "writes_failing", "ready: %d %r" % (ready.status, body))
        check(body["breakers"]["store_writes"] == "open" and body["breakers"]["store_reads"] == "closed",
              "breakers: %r" % body["breakers"])
        check(c.get(DEVICES + "/" + dev).status == 200, "a read while writes fail")
        check(c.get(DEVICES).status == 200, "a list while writes fail")
        m = request(st.port, "GET", "/metrics").body.decode()
        check('fcgi_sse_breaker_state{dependency="store_writes"} 1' in m, "store_writes state in /metrics")
        if harness.STORE == "postgres":
            lock.release()
        else:
            lock.execute("ROLLBACK")
            lock.close()
        lock = None
        check(wait_until(lambda: request(st.port, "GET", "/api/v2/ready").status == 200, timeout=5, step=0.1),
              "ready again once the open time has passed")
        r = c.post(DEVICES, {"name": "after"})
        check(r.status == 201, "a write after the lock: %d %r" % (r.status, r.body[:200]))
        names = sorted(d["name"] for d in c.get(DEVICES).json()["items"])
        check(names == ["after", "first"], "nothing refused was applied: %r" % names)
        check(request(st.port, "GET", "/api/v2/ready").json()["breakers"]["store_writes"] == "closed",
              "closed by the write")
    finally:
        if lock is not None:
            lock.release() if harness.STORE == "postgres" else lock.close()
        st.cleanup()
