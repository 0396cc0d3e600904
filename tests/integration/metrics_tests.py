"""GET /metrics (API.md §7; issue #12): the exposition passes `promtool
check metrics` and names every family API.md lists, its counters move by
exactly what known traffic adds, and a real Prometheus scrapes it through
the front server. Registered by run.py."""

import json
import math
import os
import re
import shutil
import subprocess
import tempfile
import time
import urllib.parse

from auth_tests import PASSWORD, Client, new_tenant, post_json
from common import _stack, check, problem, test
from events_tests import closing, connected, open_bearer, publish, published_id, read_events
from harness import RedisServer, free_port, port_open, request, stop_process, wait_until

PROMTOOL = "/usr/bin/promtool"
PROMETHEUS = "/usr/bin/prometheus"
LOGIN = "/api/v2/auth/login"
DEVICES = "/api/v2/devices"
DURATION = "fcgi_sse_http_request_duration_seconds"
REQUESTS = "fcgi_sse_http_requests_total"
CACHES = ("session", "device", "device_list", "telemetry_recent", "profile")
POLICIES = ("login-address", "login-user", "reads", "writes", "publish", "stream-opens", "streams-open")
AUTH_CODES = ("auth.missing_token", "auth.invalid_token", "auth.token_expired", "auth.session_revoked",
              "auth.fingerprint_mismatch", "auth.invalid_credentials", "auth.forbidden")
DEPENDENCIES = ("redis", "bus", "store_reads", "store_writes")
PROCESS = ("process_resident_memory_bytes", "process_open_fds", "process_threads", "process_start_time_seconds")


# ---------------------------------------------------------------- parsing

_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_LABEL = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\.)*)"\s*(,?)')


def _value(text):
    # float() takes "+Inf", "-Inf" and "NaN" as the format spells them
    return float(text)


class Metrics:
    """One scrape in the text format (0.0.4): HELP and TYPE by family, and
    samples by (name, frozenset of label pairs). Raises AssertionError on
    what the format forbids that promtool may not catch: a series twice,
    a sample line that does not parse."""

    def __init__(self, text):
        self.text = text
        self.help, self.type = {}, {}
        self.samples = {}
        self.order = []
        for n, line in enumerate(text.split("\n"), 1):
            if line == "":
                continue
            if line.startswith("#"):
                parts = line.split(None, 3)
                if len(parts) >= 3 and parts[1] in ("HELP", "TYPE"):
                    (self.help if parts[1] == "HELP" else self.type)[parts[2]] = \
                        parts[3] if len(parts) > 3 else ""
                continue
            m = _NAME.match(line)
            check(m, "line %d: no metric name: %r" % (n, line))
            name, rest, labels = m.group(0), line[m.end():], []
            if rest.startswith("{"):
                rest = rest[1:]
                while not rest.lstrip().startswith("}"):
                    lm = _LABEL.match(rest)
                    check(lm, "line %d: bad labels: %r" % (n, line))
                    labels.append((lm.group(1), lm.group(2)))
                    rest = rest[lm.end():]
                    if not lm.group(3):
                        break
                rest = rest.lstrip()
                check(rest.startswith("}"), "line %d: unclosed labels: %r" % (n, line))
                rest = rest[1:]
            fields = rest.split()
            check(len(fields) in (1, 2), "line %d: value (and timestamp): %r" % (n, line))
            key = (name, frozenset(labels))
            check(len(dict(labels)) == len(labels), "line %d: a label twice: %r" % (n, line))
            check(key not in self.samples, "line %d: series exposed twice: %r" % (n, line))
            self.samples[key] = _value(fields[0])
            self.order.append(key)

    def family(self, name):
        """The family a sample name belongs to (histogram suffixes off)."""
        for suffix in ("_bucket", "_sum", "_count"):
            if name.endswith(suffix) and self.type.get(name[:-len(suffix)]) == "histogram":
                return name[:-len(suffix)]
        return name

    def get(self, name, **labels):
        """The value of the series with exactly these labels, or None."""
        return self.samples.get((name, frozenset(labels.items())))

    def series(self, name):
        """[(labels dict, value)] of every series named name."""
        return [(dict(k[1]), self.samples[k]) for k in self.order if k[0] == name]

    def lines(self, needle):
        return [l for l in self.text.splitlines() if needle in l]


def scrape(st):
    r = request(st.port, "GET", "/metrics")
    check(r.status == 200, "/metrics: %d %r" % (r.status, r.body[:200]))
    check((r.header("Content-Type") or "").startswith("text/plain; version=0.0.4"),
          "content type %r" % r.header("Content-Type"))
    return r.body, Metrics(r.body.decode("utf-8"))


def delta(before, after, name, **labels):
    """How much a series grew between two scrapes (absent before: 0)."""
    a = after.get(name, **labels)
    check(a is not None, "%s%r missing after: %r" % (name, labels, after.lines(name)[:40]))
    return a - (before.get(name, **labels) or 0)


def expect_deltas(before, after, want):
    """want: [(name, labels, delta)]; every one must hold exactly."""
    bad = []
    for name, labels, d in want:
        got = delta(before, after, name, **labels)
        if got != d:
            bad.append("%s%r: +%r, want +%r" % (name, labels, got, d))
    check(not bad, "deltas: " + "; ".join(bad))


def promtool(body):
    """`promtool check metrics` on the body (stdin): (status, output lines)."""
    check(os.access(PROMTOOL, os.X_OK), "%s missing (deploy/deps.sh test installs prometheus)" % PROMTOOL)
    p = subprocess.run([PROMTOOL, "check", "metrics"], input=body, capture_output=True, timeout=30)
    out = (p.stdout + p.stderr).decode("utf-8", "replace")
    return p.returncode, [l for l in out.splitlines() if l.strip()]


def login(port, tenant, user, password):
    return post_json(port, LOGIN, {"tenant": tenant, "username": user, "password": password})


# ---------------------------------------------------------------- promtool and names

@test
def metrics_pass_promtool_and_name_everything_api_md_lists(s, binary):
    """Traffic of every kind (logins right and wrong, authenticated reads,
    a 404, a stream and an event), then: promtool accepts the scrape
    without a single lint line; every family API.md §7 lists is there with
    its labels, HELP and the right TYPE; and counters move by exactly what
    known traffic adds between two scrapes. A Redis of its own, so no
    other process's events reach this one's counters."""
    redis = RedisServer().start()
    st = es = None
    try:
        st = _stack(binary, {"redis": {"host": "127.0.0.1", "port": redis.port},
                             "auth": {"login_failures_per_user": 2, "login_failure_window_s": 600}},
                    name="metrics")
        _metrics_checks(st)
    finally:
        if st is not None:
            st.cleanup()
        redis.cleanup()


def _metrics_checks(st):
    tenant = new_tenant(st, (("op", "operator"), ("ana", "viewer"), ("bo", "viewer")))
    op = Client(st.port, tenant, "op")
    check(op.get("/api/v2/me").status == 200, "GET /me")
    r = op.post(DEVICES, {"name": "meter"})
    check(r.status == 201, "create a device: %d %r" % (r.status, r.body[:200]))
    dev = DEVICES + "/" + r.json()["id"]
    check(op.get(dev).status == 200, "GET the device")
    check(op.get(DEVICES).status == 200, "GET the device list")
    check(request(st.port, "GET", "/api/v1/health").status == 200, "GET v1 health")
    problem(st.get("/api/v2/nope"), 404, "route.not_found")
    problem(request(st.port, "GET", "/api/v2/me"), 401, "auth.missing_token")
    problem(login(st.port, tenant, "ana", "wrong"), 401, "auth.invalid_credentials")
    es = open_bearer(op)
    try:
        connected(es)
        eid = published_id(publish(st.port, tenant, data={"n": 0}))
        got = read_events(es, 1)
        check(got and got[0]["id"] == eid, "the stream got the event: %r" % got)
        # the hub counts a delivery after it wrote it, the worker counts
        # the stream request after the hand-over, and a probe through the
        # bus (every 2 s) gives the bus lag a value
        check(wait_until(lambda: _settled(scrape(st)[1]), 10, 0.1),
              "a delivery, the stream request and a bus probe counted: %r" % scrape(st)[1].lines("fcgi_sse_"))
        body, m = scrape(st)

        # ---- promtool: exit 0 and nothing to say (no lint line is justified)
        rc, out = promtool(body)
        check(rc == 0 and not out, "promtool check metrics: exit %d, output %r" % (rc, out))

        _families(m)
        _values(m)
        _deltas_per_route(st)
        _deltas_failures(st, tenant)
        _deltas_rate_limit(st, tenant)
        _deltas_cache(st, op, dev)
        _deltas_events(st, tenant, es)
    finally:
        closing(es)
    # a closed stream leaves the open count (at its next heartbeat, 1 s)
    check(wait_until(lambda: scrape(st)[1].get("fcgi_sse_streams_open") == 0, 10, 0.1),
          "streams_open back to 0: %r" % scrape(st)[1].lines("streams_open"))
    _breakers(scrape(st)[1])


def _settled(m):
    return ((m.get("fcgi_sse_events_delivered_total") or 0) >= 1 and
            (m.get("fcgi_sse_bus_probe_age_seconds") or -1) >= 0 and
            (m.get(REQUESTS, route="/events/stream", version="2", status="2xx") or 0) >= 1)


def _families(m):
    """Every sample's family has HELP and TYPE; the families API.md §7 lists
    are there with the right TYPE and labels."""
    for name, _ in m.samples:
        fam = m.family(name)
        check(fam in m.type, "%s: no TYPE line" % name)
        check(m.help.get(fam, "").strip(), "%s: no HELP text" % name)
        if m.type[fam] == "counter":
            check(fam.endswith("_total"), "counter %s without _total" % fam)
    for fam, typ in ((DURATION, "histogram"), (REQUESTS, "counter"),
                     ("fcgi_sse_http_responses_total", "counter"),
                     ("fcgi_sse_streams_open", "gauge"), ("fcgi_sse_streams_opened_total", "counter"),
                     ("fcgi_sse_events_published_total", "counter"),
                     ("fcgi_sse_events_delivered_total", "counter"),
                     ("fcgi_sse_events_dropped_total", "counter"),
                     ("fcgi_sse_streams_dropped_slow_total", "counter"),
                     ("fcgi_sse_cache_requests_total", "counter"),
                     ("fcgi_sse_breaker_state", "gauge"),
                     ("fcgi_sse_rate_limited_total", "counter"),
                     ("fcgi_sse_errors_total", "counter"),
                     ("fcgi_sse_bus_lag_seconds", "gauge"), ("fcgi_sse_bus_up", "gauge"),
                     ("process_resident_memory_bytes", "gauge"), ("process_open_fds", "gauge"),
                     ("process_threads", "gauge"), ("process_start_time_seconds", "gauge")):
        check(m.type.get(fam) == typ, "%s: TYPE %r, want %s" % (fam, m.type.get(fam), typ))
        check(any(m.family(n) == fam for n, _ in m.samples), "%s: no sample" % fam)
    # the duration histogram per route and version: buckets, _sum, _count
    for route, version in (("/auth/login", "2"), ("/me", "2"), ("/devices/{id}", "2"), ("/devices", "2"),
                           ("/health", "1"), ("/events", "2"), ("/events/stream", "2"), ("unrouted", "2"),
                           ("/metrics", "0")):
        lab = {"route": route, "version": version}
        buckets = [(l["le"], v) for l, v in m.series(DURATION + "_bucket")
                   if l.get("route") == route and l.get("version") == version]
        check(buckets, "no %s_bucket%r: %r" % (DURATION, lab, m.lines(DURATION + "_count")))
        check(buckets[-1][0] == "+Inf", "%r: last bucket le=%r" % (lab, buckets[-1][0]))
        les = [float(le) for le, _ in buckets]
        check(les == sorted(les) and len(set(les)) == len(les), "%r: le in order, once each: %r" % (lab, les))
        counts = [v for _, v in buckets]
        check(counts == sorted(counts), "%r: buckets cumulative: %r" % (lab, counts))
        count, total = m.get(DURATION + "_count", **lab), m.get(DURATION + "_sum", **lab)
        check(count is not None and count == counts[-1] >= 1, "%r: _count %r, +Inf %r" % (lab, count, counts[-1]))
        check(total is not None and total >= 0, "%r: _sum %r" % (lab, total))
        check(any(l.get("route") == route and l.get("version") == version and v >= 1
                  for l, v in m.series(REQUESTS)), "no %s for %r" % (REQUESTS, lab))
    for labels, _ in m.series(DURATION + "_bucket"):
        check(set(labels) == {"route", "version", "le"}, "bucket labels %r" % labels)
    for labels, _ in m.series(REQUESTS):
        check(set(labels) == {"route", "version", "status"} and re.fullmatch(r"[1-5]xx", labels["status"]),
              "%s labels %r" % (REQUESTS, labels))
    # hits and misses per cache
    for cache in CACHES:
        for result in ("hit", "miss"):
            check(m.get("fcgi_sse_cache_requests_total", cache=cache, result=result) is not None,
                  "cache %s %s: %r" % (cache, result, m.lines("fcgi_sse_cache_requests_total")))
    for policy in POLICIES:
        check(m.get("fcgi_sse_rate_limited_total", policy=policy) is not None, "rate limit policy %s" % policy)
    for code in AUTH_CODES:
        check(m.get("fcgi_sse_errors_total", code=code) is not None, "auth failure code %s" % code)


def _values(m):
    """What the traffic so far and a healthy process must show."""
    check(m.get("fcgi_sse_errors_total", code="auth.invalid_credentials") == 1, "one wrong password so far")
    check(m.get("fcgi_sse_errors_total", code="auth.missing_token") == 1, "one missing token so far")
    check(m.get("fcgi_sse_errors_total", code="route.not_found") == 1, "one 404 so far")
    check(m.get("fcgi_sse_streams_open") == 1, "one stream open: %r" % m.lines("streams_open"))
    check(m.get("fcgi_sse_streams_opened_total") == 1, "one stream opened")
    # a device create and the publish: two events through this process
    check(m.get("fcgi_sse_events_published_total") == 2, "published: %r" % m.lines("events_"))
    check(m.get("fcgi_sse_events_delivered_total") == 1, "delivered: %r" % m.lines("events_"))
    check(m.get("fcgi_sse_bus_up") == 1, "bus up")
    lag = m.get("fcgi_sse_bus_lag_seconds")
    check(lag is not None and 0 <= lag < math.inf, "bus lag %r" % lag)
    for d in DEPENDENCIES:
        v = m.get("fcgi_sse_breaker_state", dependency=d)
        check(v in (None, 0), "breaker %s closed while all is well: %r" % (d, v))
    p = {n: m.get(n) for n in PROCESS}
    check(all(v is not None for v in p.values()), "process metrics: %r" % p)
    check(p["process_resident_memory_bytes"] > 1e6, "resident memory %r" % p)
    check(p["process_open_fds"] > 3, "open fds %r" % p)
    check(p["process_threads"] >= 6, "threads (6 workers) %r" % p)
    # this stack started within the test: Unix seconds, not ticks or ms
    now = time.time()
    check(now - 600 < p["process_start_time_seconds"] <= now + 5, "start time in Unix seconds %r" % p)
    check(0 <= m.get("fcgi_sse_cache_hit_ratio", cache="session") <= 1, "hit ratio in [0, 1]")


def _breakers(m):
    """A breaker state for every dependency (checked last, so that the
    rest of the test has run when one is missing)."""
    missing = [d for d in DEPENDENCIES if m.get("fcgi_sse_breaker_state", dependency=d) is None]
    check(not missing, "fcgi_sse_breaker_state lacks dependency %s: %r" % (
        ", ".join(missing), m.lines("fcgi_sse_breaker_state")))


def _deltas_per_route(st):
    """5 v2 and 3 v1 health checks: exactly that many more per route and
    version, in the status counts and in the histogram (and the scrape
    before shows up once under /metrics)."""
    _, before = scrape(st)
    for _ in range(5):
        check(st.get("/api/v2/health").status == 200, "v2 health")
    for _ in range(3):
        check(st.get("/api/v1/health").status == 200, "v1 health")
    _, after = scrape(st)
    h2, h1 = {"route": "/health", "version": "2"}, {"route": "/health", "version": "1"}
    mt = {"route": "/metrics", "version": "0"}
    expect_deltas(before, after, [
        (REQUESTS, dict(h2, status="2xx"), 5), (DURATION + "_count", h2, 5),
        (DURATION + "_bucket", dict(h2, le="+Inf"), 5),
        (REQUESTS, dict(h1, status="2xx"), 3), (DURATION + "_count", h1, 3),
        (DURATION + "_bucket", dict(h1, le="+Inf"), 3),
        (REQUESTS, dict(mt, status="2xx"), 1), (DURATION + "_count", mt, 1),
        ("fcgi_sse_http_responses_total", {"code": "200"}, 9),
    ])
    for lab in (h2, h1):
        check(delta(before, after, DURATION + "_sum", **lab) >= 0, "_sum grows %r" % lab)
    # nothing else moved: every other route's count is as it was
    moved = [(k, v - before.samples.get(k, 0)) for k, v in after.samples.items()
             if k[0] in (REQUESTS, DURATION + "_count") and v != before.samples.get(k, 0) and
             dict(k[1])["route"] not in ("/health", "/metrics")]
    check(not moved, "other routes moved: %r" % moved)


def _deltas_failures(st, tenant):
    """A wrong password, a missing token and a 404: each code's counter +1,
    every other code's +0."""
    _, before = scrape(st)
    problem(login(st.port, tenant, "ana", "still wrong"), 401, "auth.invalid_credentials")
    problem(request(st.port, "GET", "/api/v2/me"), 401, "auth.missing_token")
    problem(st.get("/api/v2/nope/either"), 404, "route.not_found")
    _, after = scrape(st)
    want = {"auth.invalid_credentials": 1, "auth.missing_token": 1, "route.not_found": 1}
    expect_deltas(before, after, [("fcgi_sse_errors_total", {"code": c}, want.get(c, 0))
                                  for c in (l["code"] for l, _ in after.series("fcgi_sse_errors_total"))])
    expect_deltas(before, after, [
        (REQUESTS, {"route": "/auth/login", "version": "2", "status": "4xx"}, 1),
        (REQUESTS, {"route": "/me", "version": "2", "status": "4xx"}, 1),
        (REQUESTS, {"route": "unrouted", "version": "2", "status": "4xx"}, 1),
        ("fcgi_sse_http_responses_total", {"code": "401"}, 2),
        ("fcgi_sse_http_responses_total", {"code": "404"}, 1),
    ])


def _deltas_rate_limit(st, tenant):
    """login_failures_per_user 2: bo's two wrong passwords are 401, the
    third attempt 429: login-user +1, no other policy, rate.limited +1."""
    _, before = scrape(st)
    for _ in range(2):
        problem(login(st.port, tenant, "bo", "wrong"), 401, "auth.invalid_credentials")
    problem(login(st.port, tenant, "bo", PASSWORD), 429, "rate.limited")
    _, after = scrape(st)
    expect_deltas(before, after, [("fcgi_sse_rate_limited_total", {"policy": p}, 1 if p == "login-user" else 0)
                                  for p in POLICIES] + [
        ("fcgi_sse_errors_total", {"code": "rate.limited"}, 1),
        ("fcgi_sse_errors_total", {"code": "auth.invalid_credentials"}, 2),
        ("fcgi_sse_http_responses_total", {"code": "429"}, 1),
        (REQUESTS, {"route": "/auth/login", "version": "2", "status": "4xx"}, 3),
    ])


def _deltas_cache(st, op, dev):
    """Reads of a device and of the list already cached: a hit each, no
    miss; and the session behind each, a hit."""
    _, before = scrape(st)
    check(op.get(dev).status == 200, "GET the device again")
    check(op.get(DEVICES).status == 200, "GET the list again")
    _, after = scrape(st)
    expect_deltas(before, after, [
        ("fcgi_sse_cache_requests_total", {"cache": "device", "result": "hit"}, 1),
        ("fcgi_sse_cache_requests_total", {"cache": "device", "result": "miss"}, 0),
        ("fcgi_sse_cache_requests_total", {"cache": "device_list", "result": "hit"}, 1),
        ("fcgi_sse_cache_requests_total", {"cache": "device_list", "result": "miss"}, 0),
        ("fcgi_sse_cache_requests_total", {"cache": "session", "result": "hit"}, 2),
        ("fcgi_sse_cache_requests_total", {"cache": "session", "result": "miss"}, 0),
    ])


def _deltas_events(st, tenant, es):
    """With one stream open, one event published: published +1 and
    delivered +1 (counted by the hub once the bus brought it back)."""
    _, before = scrape(st)
    eid = published_id(publish(st.port, tenant, data={"n": 1}))
    got = read_events(es, 1)
    check(got and got[0]["id"] == eid, "the stream got the second event: %r" % got)
    p0 = before.get("fcgi_sse_events_published_total")
    d0 = before.get("fcgi_sse_events_delivered_total")
    last = []

    def counted():
        last[:] = [scrape(st)[1]]
        return (last[0].get("fcgi_sse_events_published_total") >= p0 + 1 and
                last[0].get("fcgi_sse_events_delivered_total") >= d0 + 1)

    check(wait_until(counted, 5, 0.05), "published and delivered counted: %r" % last[0].lines("events_"))
    expect_deltas(before, last[0], [
        ("fcgi_sse_events_published_total", {}, 1), ("fcgi_sse_events_delivered_total", {}, 1),
        ("fcgi_sse_streams_opened_total", {}, 0), ("fcgi_sse_streams_dropped_slow_total", {}, 0),
        ("fcgi_sse_events_dropped_total", {}, 0),
        (REQUESTS, {"route": "/events", "version": "2", "status": "2xx"}, 1),
    ])
    check(last[0].get("fcgi_sse_streams_open") == 1, "still one stream open")


# ---------------------------------------------------------------- a real Prometheus

def _prom_get(port, path):
    r = request(port, "GET", path)
    check(r.status == 200, "Prometheus %s: %d %r" % (path, r.status, r.body[:300]))
    body = r.json()
    check(body.get("status") == "success", "Prometheus %s: %r" % (path, body))
    return body["data"]


def _prom_query(port, q):
    return _prom_get(port, "/api/v1/query?query=" + urllib.parse.quote(q, safe=""))["result"]


@test
def a_real_prometheus_scrapes_metrics(s, binary):
    """/usr/bin/prometheus scrapes the stack's front server every second:
    the target is up with no error, our counters have samples there, and
    Prometheus saw no duplicate or out-of-order sample in our scrapes."""
    check(os.access(PROMETHEUS, os.X_OK), "%s missing (deploy/deps.sh test installs prometheus)" % PROMETHEUS)
    st = _stack(binary, name="prometheus")
    tmp = tempfile.mkdtemp(prefix="fcgi_sse_it_prometheus_")
    prom = None
    try:
        target = "127.0.0.1:%d" % st.port
        check(st.get("/api/v2/health").status == 200, "health")
        conf = os.path.join(tmp, "prometheus.yml")
        with open(conf, "w") as f:
            # (JSON is YAML)
            json.dump({"global": {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"},
                       "scrape_configs": [{"job_name": "fcgi_sse", "metrics_path": "/metrics",
                                           "static_configs": [{"targets": [target]}]}]}, f)
        port = free_port()
        log = open(os.path.join(tmp, "prometheus.log"), "wb")
        prom = subprocess.Popen([PROMETHEUS, "--config.file=" + conf,
                                 "--storage.tsdb.path=" + os.path.join(tmp, "data"),
                                 "--web.listen-address=127.0.0.1:%d" % port],
                                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
        log.close()

        def prom_log():
            with open(os.path.join(tmp, "prometheus.log"), errors="replace") as f:
                return f.read()[-3000:]

        check(wait_until(lambda: prom.poll() is None and port_open(port), 30, 0.1),
              "Prometheus listens: %s" % prom_log())

        def up():
            try:
                res = _prom_query(port, "up")
                targets = _prom_get(port, "/api/v1/targets")["activeTargets"]
            except (OSError, ValueError, AssertionError):
                return False
            ours = [t for t in targets if t["labels"].get("instance") == target]
            return (any(r["metric"].get("instance") == target and r["value"][1] == "1" for r in res) and
                    len(ours) == 1 and ours[0]["health"] == "up" and ours[0]["lastError"] == "")

        check(wait_until(up, 30, 0.2), "target up: %r / %s" % (
            _safe(lambda: _prom_get(port, "/api/v1/targets")), prom_log()))
        targets = [t for t in _prom_get(port, "/api/v1/targets")["activeTargets"]
                   if t["labels"].get("instance") == target]
        check(targets[0]["scrapeUrl"] == "http://%s/metrics" % target, "scrape URL %r" % targets[0]["scrapeUrl"])

        def samples():
            return _prom_query(port, 'fcgi_sse_http_requests_total{instance="%s"}' % target)

        # a scrape counts itself once answered: /metrics shows from the
        # second scrape on
        check(wait_until(lambda: {"/health", "/metrics"} <= {r["metric"].get("route") for r in samples()}, 30, 0.2),
              "samples of fcgi_sse_http_requests_total for /health and /metrics: %r" % _safe(samples))
        res = samples()
        for r in res:
            check(r["metric"]["job"] == "fcgi_sse" and float(r["value"][1]) >= 1, "sample %r" % r)
        scraped = [r for r in res if r["metric"].get("route") == "/metrics"]
        check(scraped and float(scraped[0]["value"][1]) >= 1, "Prometheus's own scrapes counted: %r" % scraped)
        hist = _prom_query(port, 'fcgi_sse_http_request_duration_seconds_count{instance="%s",route="/health"}' % target)
        check(hist and float(hist[0]["value"][1]) >= 1, "histogram count in Prometheus: %r" % hist)
        # what Prometheus thought of our scrapes
        m = Metrics(request(port, "GET", "/metrics").body.decode())
        for name in ("prometheus_target_scrapes_sample_duplicate_timestamp_total",
                     "prometheus_target_scrapes_sample_out_of_order_total",
                     "prometheus_target_scrapes_sample_out_of_bounds_total"):
            v = m.get(name)
            check(v == 0, "%s %r" % (name, v))
    finally:
        stop_process(prom, timeout=10)
        st.cleanup()
        shutil.rmtree(tmp, ignore_errors=True)


def _safe(fn):
    try:
        return fn()
    except Exception as e:  # for a failure message only
        return "(%s)" % e
