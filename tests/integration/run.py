#!/usr/bin/env python3
"""Integration tests: fcgi_sse behind a real lighttpd, over HTTP.

Usage: run.py --binary build/fcgi_sse [-k substring] [--skip substring ...]
Prints one line per test and a closing 'N passed, N failed' line; exits 1
when anything failed."""

import argparse
import calendar
import email.utils
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (ApacheStack, EventStream, RedisServer, Stack, fcgi_request, free_port, port_open, request,  # noqa: E402
                     stop_process,
                     wait_until)

from common import (BASE_CONFIG, DEPRECATION, DEPR_DOC, SECRET, SUCCESSOR, SUNSET,  # noqa: E402
                    TESTS, TOKEN, _stack, check, problem, test, unix)
import common  # noqa: E402
import harness  # noqa: E402
import auth_tests  # noqa: E402,F401  (registers its tests)
import events_tests  # noqa: E402,F401  (registers its tests)
import protection_tests  # noqa: E402,F401  (registers its tests)
import bus_tests  # noqa: E402,F401  (registers its tests)
import devices_tests  # noqa: E402,F401  (registers its tests)
import metrics_tests  # noqa: E402,F401  (registers its tests)
import hostile_tests  # noqa: E402,F401  (registers its tests)
import fault_tests  # noqa: E402,F401  (registers its tests)
import sentinel_tests  # noqa: E402,F401  (registers its tests)


# ---------------------------------------------------------------- routing

@test
def health_v2(s):
    r = s.get("/api/v2/health")
    check(r.status == 200, "status %d" % r.status)
    check(r.header("API-Version") == "2", "API-Version %r" % r.header("API-Version"))
    check(r.header("Content-Type") == "application/json", "content type")
    check(re.fullmatch(r"[0-9a-f]{32}", r.header("X-Request-Id") or ""), "generated request id")
    body = r.json()
    check(body["status"] == "ok", "body %r" % body)
    check(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", body["time"]), "RFC 3339 time")
    check(r.header("Deprecation") is None and r.header("Sunset") is None, "v2 is not deprecated")


@test
def request_id_echoed_when_sane_and_replaced_otherwise(s):
    r = s.get("/api/v2/health", {"X-Request-Id": "client-req.42:abc"})
    check(r.header("X-Request-Id") == "client-req.42:abc", "sane id echoed")
    for bad in ("x" * 65, "has space", "quote\"d", "semi;colon"):
        r = s.get("/api/v2/health", {"X-Request-Id": bad})
        check(re.fullmatch(r"[0-9a-f]{32}", r.header("X-Request-Id")), "insane id %r replaced" % bad)
    r = s.get("/api/v9/nothing", {"X-Request-Id": "err-id-1"})
    check(r.json()["request_id"] == "err-id-1", "error body carries the request id")


@test
def v1_is_deprecated_with_headers_from_config(s):
    r = s.get("/api/v1/health")
    check(r.status == 200, "status %d" % r.status)
    check(r.header("API-Version") == "1", "API-Version")
    check(r.header("Deprecation") == "@%d" % unix(DEPRECATION), "Deprecation %r" % r.header("Deprecation"))
    sunset = r.header("Sunset")
    check(sunset == "Wed, 30 Jun 2027 00:00:00 GMT", "Sunset %r" % sunset)
    check(email.utils.parsedate_to_datetime(sunset).timestamp() == unix(SUNSET), "Sunset parses")
    link = r.header("Link")
    check('<%s>; rel="successor-version"' % SUCCESSOR in link, "successor link %r" % link)
    check('<%s>; rel="deprecation"' % DEPR_DOC in link, "deprecation link %r" % link)
    body = r.json()
    check(body["ok"] is True and isinstance(body["time"], int), "v1 shape: flat, unix seconds %r" % body)


@test
def unversioned_api_is_v2_or_header_selected(s):
    r = s.get("/api/health")
    check(r.status == 200 and r.header("API-Version") == "2", "unversioned = v2")
    check("API-Version" in (r.header("Vary") or ""), "Vary: API-Version")
    check(r.json()["status"] == "ok", "v2 shape")
    r = s.get("/api/health", {"API-Version": "1"})
    check(r.status == 200 and r.header("API-Version") == "1", "header selects v1")
    check(r.header("Deprecation") == "@%d" % unix(DEPRECATION), "v1 via header is deprecated too")
    check(r.json()["ok"] is True, "v1 shape")
    r = s.get("/api/health", {"API-Version": "2"})
    check(r.header("API-Version") == "2", "header selects v2")
    for bad in ("9", "abc", "1.0"):
        problem(s.get("/api/health", {"API-Version": bad}), 404, "api.unknown_version")
    r = s.get("/api/v2/health", {"API-Version": "1"})
    check(r.header("API-Version") == "2", "a version in the path wins over the header")


@test
def unknown_versions_are_404(s):
    for path in ("/api/v9/health", "/api/v3/version", "/api/v0/health", "/api/v02/health"):
        problem(s.get(path), 404, "api.unknown_version")


@test
def unknown_routes_are_404(s):
    for path in ("/api/v2/nope", "/api/v2/health/", "/api/v2", "/", "/metricsx", "/api/v1/version/stream",
                 "/apix/v2/health"):
        problem(s.get(path), 404, "route.not_found")


@test
def wrong_method_is_405_with_allow(s):
    for method in ("POST", "DELETE", "PUT", "PATCH"):
        r = request(s.port, method, "/api/v2/health", body=b"" if method in ("POST", "PUT", "PATCH") else None)
        body = problem(r, 405, "route.method_not_allowed")
        check(r.header("Allow") == "GET, HEAD, OPTIONS", "Allow %r" % r.header("Allow"))
        check(method in body["detail"], "detail names the method")


@test
def options_and_head(s):
    r = request(s.port, "OPTIONS", "/api/v2/version")
    check(r.status == 204, "OPTIONS status %d" % r.status)
    check(r.header("Allow") == "GET, HEAD, OPTIONS", "Allow")
    r = request(s.port, "HEAD", "/api/v2/version")
    check(r.status == 200 and r.body == b"", "HEAD: 200 without body")
    check(int(r.header("Content-Length")) > 0, "HEAD announces the GET length")


@test
def version_shapes(s):
    v2 = s.get("/api/v2/version").json()
    check(v2["service"] == "fcgi_sse" and v2["api"]["current"] == 2, "v2 version %r" % v2)
    check(v2["api"]["supported"] == [1, 2], "supported")
    dep = v2["api"]["deprecated"][0]
    check(dep["version"] == 1 and dep["sunset_at"] == SUNSET and dep["deprecated_at"] == DEPRECATION,
          "deprecation info %r" % dep)
    check(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", v2["built_at"]), "built_at RFC 3339")
    v1 = s.get("/api/v1/version").json()
    check(v1["api_version"] == 1 and isinstance(v1["build_time"], int) and "api" not in v1,
          "v1 version is the flat older shape %r" % v1)


@test
def body_over_limit_is_413(s):
    r = request(s.port, "POST", "/api/v2/health", body=b"x" * 4096)
    body = problem(r, 413, "request.too_large")
    check("1024" in body["detail"], "detail names the limit")
    r = request(s.port, "POST", "/api/v2/health", body=b"x" * 100)
    problem(r, 405, "route.method_not_allowed")


# ---------------------------------------------------------------- streams

@test
def stream_is_unbuffered_with_heartbeats(s):
    es = EventStream(s.port, "/api/v2/version/stream")
    try:
        t0 = time.monotonic()
        check(es.status == 200, "status %d" % es.status)
        check(es.header("Content-Type") == "text/event-stream", "content type %r" % es.header("Content-Type"))
        check(es.header("Cache-Control") == "no-cache, no-transform", "cache-control")
        check(es.header("X-Accel-Buffering") == "no", "X-Accel-Buffering")
        check(es.header("API-Version") == "2", "API-Version on the stream")
        t, ev = es.next_event()
        check(es.retry == 2500, "retry from config, got %r" % es.retry)
        check(ev["event"] == "version_info", "first event %r" % ev)
        check(t - t0 < 0.8, "version_info arrives at once (%.3fs)" % (t - t0))
        check(json.loads(ev["data"])["api"]["current"] == 2, "version_info payload")
        times, ids = [t], [ev["id"]]
        for _ in range(3):
            t, ev = es.next_event()
            check(ev["event"] == "ping", "heartbeat event %r" % ev)
            check("time" in json.loads(ev["data"]), "ping carries the server time")
            times.append(t)
            ids.append(ev["id"])
        gaps = [b - a for a, b in zip(times, times[1:])]
        # arrival while the stream is open, about 1 s apart: not all at the end
        check(all(0.6 < g < 1.6 for g in gaps), "heartbeat gaps %r" % gaps)
        check(not es.closed, "stream still open")
        # not a tenant's event stream: no position to resume from, so no
        # id (an id would make EventSource send a meaningless Last-Event-ID)
        check(all(i is None for i in ids), "ids %r" % ids)
    finally:
        es.close()


@test
def streams_beyond_the_limit_get_503_busy_and_api_stays_up(s, binary):
    # a stack of its own: slots of streams closed by earlier tests are only
    # freed at their next heartbeat
    s = _stack(binary, {"sse": {"max_streams": 3}}, name="limit")
    try:
        _streams_beyond_the_limit(s)
    finally:
        s.cleanup()


def _streams_beyond_the_limit(s):
    streams = [EventStream(s.port, "/api/v2/version/stream") for _ in range(3)]
    try:
        for es in streams:
            check(es.status == 200, "stream within limit: %d" % es.status)
            es.next_event()
        r = s.get("/api/v2/version/stream")
        problem(r, 503, "server.busy")
        check(r.header("Retry-After") is not None, "Retry-After on 503")
        for _ in range(10):
            check(s.get("/api/v2/health").status == 200, "API served while streams are open")
    finally:
        for es in streams:
            es.close()
    # the slots come back once the server sees the clients leave: lighttpd
    # notices a gone client on its next write (a heartbeat) and then closes
    # the backend connection
    check(wait_until(lambda: _stream_ok(s), 3.5, 0.1), "stream slots freed after clients left")


def _stream_ok(s):
    es = EventStream(s.port, "/api/v2/version/stream")
    try:
        return es.status == 200
    finally:
        es.close()


# ---------------------------------------------------------------- logs

@test
def logs_are_json_lines_without_secrets(s):
    s.get("/api/v2/health?token=" + TOKEN, {"Authorization": "Bearer " + TOKEN,
                                           "X-Request-Id": "log-check-1",
                                           "Cookie": "__Host-fgp=" + TOKEN})
    # (lighttpd itself refuses encoded control characters in paths)
    s.get('/api/v2/no%22thing%5C%7B', {"X-Request-Id": "log-check-2", "User-Agent": 'x"\\y'})
    time.sleep(0.2)
    lines = s.log_lines()
    check(lines, "fcgi_sse wrote log lines")
    parsed = []
    for line in lines:
        check(TOKEN not in line and SECRET not in line, "secret in log line %r" % line)
        try:
            parsed.append(json.loads(line))
        except ValueError:
            raise AssertionError("log line is not JSON: %r" % line)
    for p in parsed:
        check({"ts", "level", "msg"} <= set(p), "common fields in %r" % p)
    check(any(p["msg"] == "startup" for p in parsed), "startup line")
    req = [p for p in parsed if p.get("request_id") == "log-check-1"]
    check(len(req) == 1, "one line per request")
    req = req[0]
    for k, want in (("method", "GET"), ("route", "/health"), ("version", 2), ("status", 200)):
        check(req.get(k) == want, "%s=%r in %r" % (k, req.get(k), req))
    check(isinstance(req["duration_ms"], (int, float)) and req["duration_ms"] >= 0, "duration")
    bad = [p for p in parsed if p.get("request_id") == "log-check-2"]
    check(len(bad) == 1 and bad[0]["status"] == 404 and bad[0]["route"] is None, "404 logged %r" % bad)


# ------------------------------------------------ process modes and shutdown

@test
def sunset_v1_is_410_with_headers(s, binary):
    st = _stack(binary, {"api": {"v1_deprecation": "2020-01-01T00:00:00Z",
                                 "v1_sunset": "2021-01-01T00:00:00Z"}}, name="sunset")
    try:
        r = st.get("/api/v1/health")
        problem(r, 410, "api.version_sunset")
        check(r.header("Sunset") == "Fri, 01 Jan 2021 00:00:00 GMT", "Sunset still sent")
        check(r.header("Deprecation") == "@1577836800", "Deprecation still sent")
        check("successor-version" in r.header("Link"), "Link still sent")
        problem(st.get("/api/health", {"API-Version": "1"}), 410, "api.version_sunset")
        check(st.get("/api/v2/health").status == 200, "v2 unaffected")
    finally:
        st.cleanup()


@test
def sigterm_ends_streams_with_shutdown_event_and_exits_0(s, binary):
    st = _stack(binary, name="shutdown")
    try:
        streams = [EventStream(st.port, "/api/v2/version/stream") for _ in range(2)]
        for es in streams:
            es.next_event()
        t0 = time.monotonic()
        st.backend.send_signal(signal.SIGTERM)
        for es in streams:
            last = None
            while True:
                got = es.next_event()
                if got is None:
                    break
                last = got[1]
            check(last is not None and last["event"] == "shutdown", "last event %r" % last)
            check(es.closed, "stream ended")
        rc = st.backend.wait(10)
        elapsed = time.monotonic() - t0
        check(rc == 0, "exit status %r" % rc)
        check(elapsed < 5, "stopped in %.2fs" % elapsed)
        msgs = [json.loads(l) for l in st.log_lines()]
        end = [m for m in msgs if m["msg"] == "shutdown"]
        check(end and end[-1]["clean"] is True, "clean shutdown logged %r" % end)
        check(any(m["msg"] == "shutdown_begin" for m in msgs), "shutdown_begin logged")
        check(not os.path.exists(st.socket_path), "unix socket removed")
    finally:
        st.cleanup()


@test
def a_new_process_takes_the_socket_over_and_the_old_one_leaves_it(s, binary):
    """A restart without refusals: the new fcgi_sse starts on the same
    unix socket path while the old one still runs (it takes the path over),
    then the old one stops. The old one must not remove the new one's
    socket on its way out: every request through lighttpd is answered."""
    st = _stack(binary, name="takeover")
    try:
        old = st.backend
        check(st.get("/api/v2/health").status == 200, "health")
        st.backend = None
        st.start_backend()  # waits for the path: it is there already
        new = st.backend
        check(wait_until(lambda: any('"startup"' in l and '"pid":%d' % new.pid in l for l in st.log_lines()), 5),
              "the new process started")
        check(stop_process(old) == 0, "the old one stops cleanly")
        check(os.path.exists(st.socket_path), "the new process's socket is still there")
        statuses = [st.get("/api/v2/health").status for _ in range(20)]
        check(statuses == [200] * 20, "answered by the new process: %r" % statuses)
    finally:
        st.cleanup()


@test
def a_request_half_sent_when_shutdown_begins_is_still_answered(s, binary):
    """A front server's request whose parameters are still arriving when
    SIGTERM comes (the worker has accepted the connection and is reading
    them) is read to its end and answered, not dropped: the front server
    would see the connection reset and answer 500."""
    import struct
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("FCGI_SSE_")}
    tmp = tempfile.mkdtemp(prefix="fcgi_sse_it_halfsent_")
    env.update(harness.store_env(os.path.join(tmp, "fcgi_sse.db")))
    env["FCGI_SSE_SERVER_SHUTDOWN_TIMEOUT_MS"] = "5000"
    env["FCGI_SSE_SSE_SHUTDOWN_GRACE_MS"] = "0"  # the workers are stopped at once
    p = subprocess.Popen([binary, "--listen", "127.0.0.1:%d" % port], env=env,
                         stdin=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def record(rtype, content):
        return struct.pack(">BBHHBx", 1, rtype, 1, len(content), 0) + content

    def nv(k, v):
        return struct.pack(">BB", len(k), len(v)) + k + v

    try:
        check(wait_until(lambda: port_open(port), 5), "listening on TCP")
        c = socket.create_connection(("127.0.0.1", port), timeout=10)
        params = nv(b"REQUEST_METHOD", b"GET") + nv(b"REQUEST_URI", b"/api/v2/health")
        c.sendall(record(1, struct.pack(">HB5x", 1, 0)) + record(4, params))
        time.sleep(0.2)  # a worker has it and waits for the rest
        p.send_signal(signal.SIGTERM)
        time.sleep(0.3)  # the stop has begun: idle workers are being woken
        c.sendall(record(4, b"") + record(5, b""))
        out = b""
        while True:
            try:
                chunk = c.recv(65536)
            except ConnectionResetError:
                chunk = None
            if not chunk:
                break
            out += chunk
        c.close()
        check(b"Status: 200" in out and b'"status":"ok"' in out, "answered: %r" % out[:200])
        check(p.wait(10) == 0, "exit 0")
    finally:
        if p.poll() is None:
            p.kill()
        p.wait()
        shutil.rmtree(tmp, ignore_errors=True)


@test
def inflight_request_finishes_during_shutdown(s, binary):
    """A stream open at SIGTERM is in flight; a plain request racing the
    signal either completes fully or is refused by the front server, never
    cut in half."""
    st = _stack(binary, name="inflight")
    try:
        results = []

        def hammer():
            end = time.monotonic() + 1.5
            while time.monotonic() < end:
                try:
                    r = st.get("/api/v2/version")
                except OSError:
                    continue
                results.append(r)

        threads = [threading.Thread(target=hammer) for _ in range(3)]
        for t in threads:
            t.start()
        time.sleep(0.3)
        st.backend.send_signal(signal.SIGTERM)
        for t in threads:
            t.join()
        check(st.backend.wait(10) == 0, "exit 0")
        ok = [r for r in results if r.status == 200]
        check(ok, "requests were served before the signal")
        for r in ok:
            check(len(r.body) == int(r.header("Content-Length")), "complete body")
            json.loads(r.body)
        for r in results:
            # anything else must be the front server refusing (its own page),
            # never a cut or failed answer of ours
            check(r.status == 200 or r.header("Content-Type", ) not in
                  ("application/json", "application/problem+json"), "status %d" % r.status)
    finally:
        st.cleanup()


@test
def lighttpd_spawns_fcgi_sse_on_fd0(s, binary):
    st = _stack(binary, spawn=True, name="spawn")
    try:
        check(wait_until(lambda: st.get("/api/v2/health").status == 200, 5), "health via bin-path child")
        r = st.get("/api/v1/health")
        check(r.header("Deprecation") == "@%d" % unix(DEPRECATION), "config reached the child")
        es = EventStream(st.port, "/api/v2/version/stream")
        try:
            es.next_event()
            t, ev = es.next_event()
            check(ev["event"] == "ping", "heartbeat through bin-path child")
        finally:
            es.close()
        children = _children(st.lighttpd.pid)
        check(len(children) == 1, "lighttpd runs one fcgi_sse child: %r" % children)
        starts = [json.loads(l) for l in st.log_lines() if '"startup"' in l]
        check(starts and starts[-1]["listen"] == "fd:0", "child used the socket on fd 0")
        st.stop()
        check(wait_until(lambda: all(_exited(p) for p in children), 10), "child exited with lighttpd")
        ends = [json.loads(l) for l in st.log_lines() if '"msg":"shutdown"' in l]
        check(ends and ends[-1]["clean"] is True, "child shut down cleanly: %r" % ends)
    finally:
        st.cleanup()


def _children(pid):
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True).stdout
    return [int(x) for x in out.split()]


def _exited(pid):
    """Gone, or a zombie nobody reaps (in containers PID 1 may not)."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


@test
def spawn_fcgi_mode(s, binary):
    st = Stack(binary, BASE_CONFIG, name="spawnfcgi")
    try:
        env = {k: v for k, v in os.environ.items() if not k.startswith("FCGI_SSE_")}
        env["FCGI_SSE_CONFIG"] = st.config_path
        st.backend = subprocess.Popen(
            ["spawn-fcgi", "-n", "-s", st.socket_path, "--", os.path.abspath(binary)],
            env=env, stdout=subprocess.DEVNULL, stderr=open(st.backend_log, "ab"))
        check(wait_until(lambda: os.path.exists(st.socket_path), 5), "socket created")
        st.start(backend=False)
        check(st.get("/api/v2/health").status == 200, "health via spawn-fcgi")
        starts = [json.loads(l) for l in st.log_lines() if '"startup"' in l]
        check(len(starts) == 1 and starts[0]["listen"] == "fd:0", "the spawn-fcgi child served: %r" % starts)
        check(st.stop_backend() == 0, "exit 0 on SIGTERM")
    finally:
        st.cleanup()


@test
def standalone_tcp_mode_speaks_fastcgi(s, binary):
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("FCGI_SSE_")}
    env["FCGI_SSE_SSE_HEARTBEAT_INTERVAL_MS"] = "200"
    tmp = tempfile.mkdtemp(prefix="fcgi_sse_it_tcp_")
    env.update(harness.store_env(os.path.join(tmp, "fcgi_sse.db")))
    env["FCGI_SSE_AUTH_PBKDF2_ITERATIONS"] = "1000"
    p = subprocess.Popen([binary, "--listen", "127.0.0.1:%d" % port], env=env,
                         stdin=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        check(wait_until(lambda: port_open(port), 5), "listening on TCP")
        params = {"REQUEST_METHOD": "GET", "REQUEST_URI": "/api/v2/health",
                  "SERVER_PROTOCOL": "HTTP/1.1", "HTTP_X_REQUEST_ID": "tcp-1"}
        out, status = fcgi_request(("127.0.0.1", port), params)
        head, _, body = out.partition(b"\r\n\r\n")
        check(head.startswith(b"Status: 200 OK"), "CGI status line %r" % head[:40])
        check(b"X-Request-Id: tcp-1" in head, "request id header")
        check(json.loads(body)["status"] == "ok", "body")
        check(status == 0, "END_REQUEST app status %r" % status)
        # hostile params: no method, odd URI, huge header value
        out, _ = fcgi_request(("127.0.0.1", port), {"REQUEST_URI": "\x01\x02/%%%", "HTTP_API_VERSION": "x" * 10000})
        check(out.startswith(b"Status: 404"), "garbage gets a 404, not a crash: %r" % out[:40])
        out, _ = fcgi_request(("127.0.0.1", port), {})
        check(out.startswith(b"Status: 404"), "no params at all: %r" % out[:40])
    finally:
        p.send_signal(signal.SIGTERM)
        rc = p.wait(10)
        err = p.stderr.read().decode()
        p.stderr.close()
        shutil.rmtree(tmp, ignore_errors=True)
    check(rc == 0, "exit 0 (stderr %s)" % err[-300:])


@test
def bodiless_post_through_lighttpd_needs_content_length_0(s):
    """lighttpd answers a POST with neither Content-Length nor
    Transfer-Encoding with its own 411 page, in its request parser, before
    any module or fcgi_sse sees it; no setting changes that (1.4.69, and
    every HTTP/1.x version up to 1.4.85 at least). docs/API.md and make
    run's examples tell clients to send Content-Length: 0 (curl -d ''),
    which reaches fcgi_sse. If lighttpd ever accepts it, this test says so
    and the docs can drop the caveat."""
    tenant = auth_tests.new_tenant(s, (("ana", "viewer"),))
    c = auth_tests.Client(s.port, tenant, "ana")
    r = request(s.port, "POST", "/api/v2/auth/logout", c.headers())  # no body, no Content-Length
    check(r.status == 411, "lighttpd's answer to a POST without Content-Length: %d" % r.status)
    check((r.header("Content-Type") or "").startswith("text/html") and r.header("X-Request-Id") is None,
          "the 411 is lighttpd's own page, not fcgi_sse's: %r" % r.headers)
    check(c.get("/api/v2/me").status == 200, "the refused logout never reached fcgi_sse")
    r = request(s.port, "POST", "/api/v2/events/session", c.headers(), body=b"")
    check(r.status == 201, "events/session with Content-Length: 0: %d %r" % (r.status, r.body[:200]))
    # what `curl -d ''` sends
    h = dict(c.headers(), **{"Content-Type": "application/x-www-form-urlencoded"})
    r = request(s.port, "POST", "/api/v2/auth/logout", h, body=b"")
    check(r.status == 204, "logout with curl -d '': %d %r" % (r.status, r.body[:200]))
    problem(c.get("/api/v2/me"), 401, "auth.session_revoked")


# ---------------------------------------------------------------- Apache

def _apache_checks(st):
    check(wait_until(lambda: st.get("/api/v2/health").status == 200, 10), "health through Apache")
    r = st.get("/api/v1/health")
    check(r.header("Deprecation") == "@%d" % unix(DEPRECATION), "v1 headers through Apache")
    check('rel="successor-version"' in (r.header("Link") or ""), "Link through Apache")
    problem(st.get("/api/v9/health"), 404, "api.unknown_version")
    problem(request(st.port, "DELETE", "/api/v2/health"), 405, "route.method_not_allowed")
    es = EventStream(st.port, "/api/v2/version/stream")
    try:
        check(es.status == 200 and es.header("Content-Type") == "text/event-stream", "stream through Apache")
        t0, ev = es.next_event()
        check(ev["event"] == "version_info", "first event")
        t1, ev1 = es.next_event()
        t2, ev2 = es.next_event()
        check(ev1["event"] == ev2["event"] == "ping", "heartbeats")
        check(0.6 < t1 - t0 < 1.6 and 0.6 < t2 - t1 < 1.6,
              "unbuffered through Apache: gaps %.2f %.2f" % (t1 - t0, t2 - t1))
    finally:
        es.close()


def _apache_tenant(st):
    """A tenant with admin and viewer users, made with the admin command
    before Apache starts (ApacheStack.start() then hands the store to
    Apache's user under mod_fcgid). Returns its name."""
    return auth_tests.new_tenant(st, (("admin", "admin"), ("viewer", "viewer")))


def _apache_auth_checks(st, tenant):
    """Everything that needs the Authorization header to reach fcgi_sse:
    Apache withholds it from FastCGI unless the configuration passes it
    on. A login through Apache, then /me by Bearer, a stream by Bearer, a
    stream by stream session, and a publish by an admin's Bearer token
    that must arrive on both open streams. Under mod_fcgid each open
    stream holds a process of its own: the publish and the API calls are
    served by other processes, and reach the streams through Redis."""
    ev = events_tests
    viewer = auth_tests.Client(st.port, tenant, "viewer")
    adm = auth_tests.Client(st.port, tenant, "admin")
    problem(request(st.port, "GET", "/api/v2/me"), 401, "auth.missing_token")
    r = viewer.get("/api/v2/me")
    check(r.status == 200, "GET /me with Bearer through Apache: %d %r" % (r.status, r.body[:200]))
    me = r.json()
    check(me["user"]["username"] == "viewer" and me["tenant"]["name"] == tenant, "me %r" % me)
    bearer = session = None
    try:
        bearer = ev.open_bearer(viewer)
        ev.connected(bearer)
        sid = ev.new_session(viewer)
        session = ev.open_session(viewer, sid)
        ev.connected(session)
        data = {"via": "apache-" + st.mode}
        eid = ev.published_id(ev.publish(st.port, tenant, "task.progress", data, headers=adm.headers()))
        for name, es in (("bearer", bearer), ("session", session)):
            got = ev.read_events(es, 1)
            check(got and got[0]["id"] == eid and got[0]["event"] == "task.progress" and
                  json.loads(got[0]["data"]) == data,
                  "%s stream through Apache got %r, want event %s" % (name, got, eid))
        # a viewer's token does reach fcgi_sse, and fcgi_sse refuses it
        problem(ev.publish(st.port, tenant, headers=viewer.headers()), 403, "auth.forbidden")
    finally:
        ev.closing(bearer, session)
    # no log (fcgi_sse's, Apache's error log or stderr) holds a token
    time.sleep(0.2)
    logs = st.read("fcgi_sse.log") + st.read("error.log") + st.read("httpd.stderr")
    for c in (viewer, adm):
        check(c.token not in logs and c.token.split(".")[2] not in logs, "a token was logged")


@test
def apache_mod_proxy_fcgi(s, binary):
    st = ApacheStack(binary, BASE_CONFIG, "proxy")
    try:
        tenant = _apache_tenant(st)
        st.start()
        _apache_checks(st)
        _apache_auth_checks(st, tenant)
    finally:
        st.cleanup()


@test
def apache_mod_fcgid(s, binary):
    st = ApacheStack(binary, BASE_CONFIG, "fcgid")
    try:
        tenant = _apache_tenant(st)
        st.start()
        _apache_checks(st)
        _apache_auth_checks(st, tenant)
        starts = [json.loads(l) for l in st.log_lines() if '"startup"' in l]
        check(starts and all(x["listen"] == "fd:0" for x in starts), "mod_fcgid passed the socket on fd 0")
        check(all(x["workers"] == 2 for x in starts), "FcgidInitialEnv reached the process")
        # one request per process: the two open streams and the publish took
        # three processes at least, so the event crossed processes (Redis)
        check(len(starts) >= 3, "mod_fcgid ran %d processes for two streams and a publish" % len(starts))
        st.stop()
        ends = [json.loads(l) for l in st.log_lines() if '"msg":"shutdown"' in l]
        check(len(ends) == len(starts) and all(e["clean"] for e in ends),
              "every mod_fcgid process shut down cleanly: %d started, %r" % (len(starts), ends))
    finally:
        st.cleanup()


# ---------------------------------------------------------------- config

def _run(binary, args, config=None, env=None, stdin=subprocess.DEVNULL):
    e = {k: v for k, v in os.environ.items() if not k.startswith("FCGI_SSE_")}
    e.update(env or {})
    path = None
    if config is not None:
        fd, path = tempfile.mkstemp(suffix=".json")
        with os.fdopen(fd, "w") as f:
            f.write(config if isinstance(config, str) else json.dumps(config))
        args = ["--config", path] + list(args)
    try:
        p = subprocess.run([binary] + list(args), env=e, stdin=stdin, capture_output=True,
                           text=True, timeout=10)
        return p.returncode, p.stdout, p.stderr
    finally:
        if path:
            os.unlink(path)


@test
def config_errors_exit_78_with_precise_messages(s, binary):
    cases = [
        ({"server": {"wrkers": 4}}, {}, 'unknown key "server.wrkers"'),
        ({"nosuch": {}}, {}, 'unknown section "nosuch"'),
        ({"server": {"workers": "eight"}}, {}, "server.workers: expected an integer, got a string"),
        ({"server": {"workers": 2.5}}, {}, "server.workers: expected an integer"),
        ({"server": {"workers": 0}}, {}, "server.workers: 0 is out of range (1..256)"),
        ({"sse": {"heartbeat_interval_ms": 10}}, {}, "out of range (100..3600000)"),
        ({"api": {"v1_sunset": "next year"}}, {}, "api.v1_sunset"),
        ({"log": {"level": "loud"}}, {}, "log.level"),
        ({"server": {"listen": "nowhere"}}, {}, "server.listen"),
        ('{"server": {', {}, "invalid JSON"),
        ({}, {"FCGI_SSE_SERVER_WORKRS": "3"}, "unknown variable FCGI_SSE_SERVER_WORKRS"),
        ({}, {"FCGI_SSE_SERVER_WORKERS": "many"}, 'FCGI_SSE_SERVER_WORKERS: server.workers: expected an integer, got "many"'),
        ({}, {"FCGI_SSE_SERVER_WORKERS": "999"}, "out of range"),
        ({"api": {"v1_sunset": "2020-01-01"}}, {}, "api.v1_sunset must be later"),
    ]
    for config, env, want in cases:
        rc, out, err = _run(binary, ["--check-config"], config, env)
        check(rc == 78, "exit %d for %r / %r (stderr %r)" % (rc, config, env, err))
        check(want in err, "message %r lacks %r" % (err, want))
        check(err.count("\n") == 1, "one-line message %r" % err)
    rc, out, err = _run(binary, ["--check-config"], None, {"FCGI_SSE_CONFIG": "/nonexistent/cfg.json"})
    check(rc == 78 and "/nonexistent/cfg.json: cannot open" in err, "missing file: %r" % err)


@test
def check_config_prints_effective_config_with_secrets_redacted(s, binary):
    rc, out, err = _run(binary, ["--check-config"], BASE_CONFIG, {"FCGI_SSE_SERVER_WORKERS": "7"})
    check(rc == 0, "exit %d: %s" % (rc, err))
    cfg = json.loads(out)
    check(cfg["server"]["workers"] == 7, "environment overrides the file")
    check(cfg["sse"]["heartbeat_interval_ms"] == 1000, "file overrides defaults")
    check(cfg["server"]["backlog"] == 1024, "defaults shown")
    check(cfg["security"]["internal_secret"] == "<redacted>", "secret redacted")
    check(SECRET not in out and SECRET not in err, "secret never printed")
    rc, out, err = _run(binary, ["--check-config"], None, {"FCGI_SSE_SECURITY_INTERNAL_SECRET": "x\"y"})
    check(rc == 0 and "x\"y" not in out, "secret from the environment redacted")


@test
def usage_errors(s, binary):
    rc, out, err = _run(binary, [], stdin=subprocess.DEVNULL)
    check(rc == 64 and "no listening socket" in err, "no socket on fd 0: %d %r" % (rc, err))
    rc, out, err = _run(binary, ["--frobnicate"])
    check(rc == 64 and "unknown or incomplete option" in err, "unknown option")
    rc, out, err = _run(binary, ["--listen", "bad"])
    check(rc == 78 and "--listen" in err, "bad --listen: %d %r" % (rc, err))
    rc, out, err = _run(binary, ["--version"])
    check(rc == 0 and out.startswith("fcgi_sse "), "--version")


# ---------------------------------------------------------------- runner

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", required=True)
    ap.add_argument("-k", default="")
    ap.add_argument("--skip", action="append", default=[],
                    help="skip tests whose name contains this (repeatable)")
    args = ap.parse_args()
    binary = os.path.abspath(args.binary)
    redis = RedisServer().start()
    BASE_CONFIG["redis"] = {"host": "127.0.0.1", "port": redis.port}
    common.REDIS = redis
    shared = Stack(binary, BASE_CONFIG, name="shared").start()
    passed = failed = skipped = 0
    print("store: %s" % harness.STORE, flush=True)
    try:
        for fn in TESTS:
            if args.k not in fn.__name__ or any(x in fn.__name__ for x in args.skip):
                continue
            t0 = time.monotonic()
            try:
                if fn.__code__.co_argcount == 2:
                    fn(shared, binary)
                else:
                    fn(shared)
                passed += 1
                print("PASS %-70s %.2fs" % (fn.__name__, time.monotonic() - t0), flush=True)
            except harness.Skipped as e:
                skipped += 1
                print("SKIP %-70s %s" % (fn.__name__, e), flush=True)
            except Exception as e:  # report and continue
                failed += 1
                print("FAIL %s: %s" % (fn.__name__, e), flush=True)
                if not isinstance(e, AssertionError):
                    traceback.print_exc()
        if shared.backend.poll() is not None:
            failed += 1
            print("FAIL shared fcgi_sse died with status %r" % shared.backend.returncode)
    finally:
        rc = shared.stop_backend()
        shared.cleanup()
        redis.cleanup()
    if rc != 0:
        failed += 1
        print("FAIL shared fcgi_sse exit status %r on SIGTERM" % rc)
    print("%d passed, %d failed, %d skipped" % (passed, failed, skipped))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
