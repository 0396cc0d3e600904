"""Shared pieces of the integration tests: the test registry, checks and
the base configuration."""

import calendar
import json
import time

from harness import Stack

SECRET = "it-internal-secret-4f1c9a"
TOKEN = "eyJhbGciOiJIUzI1NiJ9.it-token-payload.it-token-signature"
DEPRECATION = "2026-09-01T00:00:00Z"
SUNSET = "2027-06-30T00:00:00Z"
SUCCESSOR = "https://api.example.test/api/v2/"
DEPR_DOC = "https://docs.example.test/v1-deprecation"

BASE_CONFIG = {
    "server": {"workers": 6, "shutdown_timeout_ms": 5000},
    "http": {"max_body_bytes": 1024},
    "api": {"v1_deprecation": DEPRECATION, "v1_sunset": SUNSET,
            "v1_successor_url": SUCCESSOR, "v1_deprecation_url": DEPR_DOC},
    # (the quota tests set their own stream quotas)
    # (retry_jitter_pct 0: the suite checks the exact retry; one test sets its own)
    "sse": {"heartbeat_interval_ms": 1000, "retry_ms": 2500, "retry_jitter_pct": 0, "max_streams": 50,
            "max_streams_per_tenant": 0, "max_streams_per_user": 0},
    "security": {"internal_secret": SECRET},
    # the suite logs in from 127.0.0.1 hundreds of times a minute, some of
    # it in parallel: no address limit and room for every login at once
    # (the protection tests set their own)
    "auth": {"jwt_keys": "it1:" + "k" * 43 + ",it0:" + "g" * 43, "pbkdf2_iterations": 1000,
             "login_attempts_per_address": 0, "max_concurrent_hashes": 64},
    # outage tests expect Redis to be used again within a second of its
    # return: the breaker's default 15 s open time is longer than that
    "resilience": {"breaker_open_ms": 300},
    # "redis" is filled in by run.py with the test run's own redis-server
}

TESTS = []


def test(fn):
    TESTS.append(fn)
    return fn


def check(cond, msg):
    if not cond:
        raise AssertionError(msg)


def unix(ts):
    return calendar.timegm(time.strptime(ts, "%Y-%m-%dT%H:%M:%SZ"))


def problem(resp, status, code):
    check(resp.status == status, "status %d, want %d: %r" % (resp.status, status, resp.body[:300]))
    check(resp.header("Content-Type") == "application/problem+json",
          "content type %r" % resp.header("Content-Type"))
    body = resp.json()
    for k in ("type", "title", "status", "code", "detail", "request_id"):
        check(k in body, "problem body lacks %s: %r" % (k, body))
    check(body["code"] == code, "code %r, want %r" % (body["code"], code))
    check(body["status"] == status, "body status %r" % body["status"])
    check(body["type"] == "https://fcgi-sse.dev/errors/" + code, "type %r" % body["type"])
    check(body["request_id"] == resp.header("X-Request-Id"), "request_id differs from header")
    return body


def outage_redis(redis):
    """The redis section of a test that stops and starts its own Redis:
    short timeouts and backoff, so an outage and a return show at once."""
    return {"host": "127.0.0.1", "port": redis.port, "backoff_max_ms": 200,
            "command_timeout_ms": 200, "connect_timeout_ms": 200}


def _stack(binary, config=None, **kw):
    cfg = json.loads(json.dumps(BASE_CONFIG))
    for sec, vals in (config or {}).items():
        cfg.setdefault(sec, {}).update(vals)
    return Stack(binary, cfg, **kw).start()


