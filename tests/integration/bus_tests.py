"""Cross-process fan-out over Redis (issue 5): two fcgi_sse processes, each
behind its own lighttpd, sharing one SQLite store and one Redis. Events
published through either reach the streams of both; Last-Event-ID /
last_event_id resume replays from the Redis Stream history; revocations and
stream-session replacement cross processes. Registered by run.py."""

import json
import random
import re
import signal
import socket
import threading
import time

from auth_tests import Client, claims_of, new_tenant
from common import BASE_CONFIG, _stack, check, outage_redis, problem, test
from events_tests import (STREAM, closing, connected, new_session, publish, published_id, read_events,
                          read_to_eof, session_url, stream_ends)
import harness
from harness import EventStream, RedisServer, request, wait_until

HEARTBEAT_MS = 300
TYPE = "bus.seq"


# ---------------------------------------------------------------- helpers

def _pair(binary, config=None, name="bus"):
    """Stacks A and B: two fcgi_sse processes, one SQLite file, one Redis
    (the shared one unless config names another). Returns (a, b)."""
    cfg = {"sse": {"heartbeat_interval_ms": HEARTBEAT_MS}}
    for sec, vals in (config or {}).items():
        cfg.setdefault(sec, {}).update(vals)
    a = _stack(binary, cfg, name=name + "-a")
    try:
        cfg_b = json.loads(json.dumps(cfg))
        cfg_b.setdefault("store", {})["path"] = a.config["store"]["path"]
        b = _stack(binary, cfg_b, name=name + "-b")
    except Exception:
        a.cleanup()
        raise
    return a, b


def _cleanup(*stacks):
    # the SQLite file lives in the first stack's dir: remove it last
    for st in reversed(stacks):
        st.cleanup()


def bearer(st, c, last=None, query=""):
    """A bearer stream of client c on stack st (any process), with a
    Last-Event-ID header when last is given."""
    h = c.headers()
    if last is not None:
        h["Last-Event-ID"] = last
    return EventStream(st.port, STREAM + ("?" + query if query else ""), h)


def session(st, c, sid, last=None, query="", extra=None):
    """A session_id stream on stack st with c's cookie (and a Last-Event-ID
    header when last is given, and any extra headers)."""
    h = dict(extra or {}, Cookie=c.cookie)
    if last is not None:
        h["Last-Event-ID"] = last
    return EventStream(st.port, session_url(sid, query), h)


def pub(st, tenant, n, type_=TYPE):
    """Publishes {"n": n} through st; returns its id."""
    return published_id(publish(st.port, tenant, type_, {"n": n}))


def id_key(eid):
    ms, seq = eid.split("-")
    return int(ms), int(seq)


def got_ids(events):
    return [(e["id"], e["event"], json.loads(e["data"])) for e in events]


def want_ids(ids_ns, type_=TYPE):
    return [(i, type_, {"n": n}) for i, n in ids_ns]


class Reader(threading.Thread):
    """Reads one stream to EOF in the background: every event with its
    arrival time."""

    def __init__(self, es, name=""):
        super().__init__(daemon=True)
        self.es = es
        self.label = name
        self.got = []
        self.eof = False
        self.error = None
        self.start()

    def run(self):
        try:
            while True:
                got = self.es.next_event()
                if got is None:
                    self.eof = True
                    return
                self.got.append(got)
        except (OSError, ValueError) as e:  # closed under us, or a timeout
            self.error = e

    def events(self, skip=("ping", "connected")):
        return [e for _, e in list(self.got) if e["event"] not in skip]

    def stop(self):
        """Wakes the reading thread (EOF) and closes the stream."""
        try:
            self.es.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.join(2)
        self.es.close()

    def pings_since(self, t0):
        return [e for t, e in list(self.got) if e["event"] == "ping" and t >= t0]


class Publisher(threading.Thread):
    """Publishes n events {"n": i} of TYPE, through the given stacks in
    turn, at about `rate` per second. published: (id, i) in publish order
    (each publish finishes before the next starts)."""

    def __init__(self, stacks, tenant, n, rate):
        super().__init__(daemon=True)
        self.stacks, self.tenant, self.n, self.rate = list(stacks), tenant, n, rate
        self.published = []
        self.error = None

    def run(self):
        t0 = time.monotonic()
        try:
            for i in range(self.n):
                st = self.stacks[i % len(self.stacks)]
                r = publish(st.port, self.tenant, TYPE, {"n": i})
                if r.status != 202:
                    self.error = "publish %d via port %d: %d %r" % (i, st.port, r.status, r.body[:200])
                    return
                self.published.append((r.json()["id"], i))
                delay = t0 + (i + 1) / self.rate - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
        except Exception as e:  # reported by the test
            self.error = repr(e)


def follow(es, received, until, timeout):
    """Reads es, appending the non-ping events to received, until
    until(received) holds, EOF, or timeout. Returns the id of the last
    event seen (pings included: what an EventSource would resume from),
    or None when none carried one."""
    last = None
    end = time.monotonic() + timeout
    while not until(received) and time.monotonic() < end:
        got = es.next_event()
        if got is None:
            break
        ev = got[1]
        if ev["id"] is not None:
            last = ev["id"]
        if ev["event"] != "ping":
            received.append(ev)
    return last


def check_sequence(label, received, published):
    """received (events) is exactly published ((id, n) pairs): nothing lost,
    nothing twice, in order."""
    bad = [e for e in received if e["event"] != TYPE]
    check(not bad, "%s: unexpected events %r" % (label, bad[:5]))
    got = [(e["id"], json.loads(e["data"])["n"]) for e in received]
    if got != published:
        ids = [g[0] for g in got]
        dups = sorted({i for i in ids if ids.count(i) > 1}, key=id_key)
        missing = [p for p in published if p[0] not in set(ids)]
        raise AssertionError("%s: received %d events, published %d; duplicates %r; missing %r; "
                             "first difference at %r" %
                             (label, len(got), len(published), dups[:10], missing[:10],
                              next(((k, g, p) for k, (g, p) in enumerate(zip(got, published)) if g != p),
                                   None)))


def history_len(redis, c):
    """XLEN of the history of c's tenant (keyed by the tenant id, the
    token's tid claim)."""
    return redis.command("XLEN", "fcgi_sse:{%s}:events" % claims_of(c.token)["tid"])


# ---------------------------------------------------------------- fan-out

@test
def bus_event_published_on_one_process_reaches_streams_of_both(s, binary):
    a, b = _pair(binary, name="fanout")
    streams = []
    try:
        tenant = new_tenant(a, (("ana", "viewer"),))
        other = new_tenant(a, (("bo", "viewer"),))
        c = Client(a.port, tenant, "ana")
        cb = Client(b.port, tenant, "ana")  # a login made on B
        bo = Client(b.port, other, "bo")
        sid = new_session(c)  # created on A, first used on B
        on_b_bearer, on_b_session, on_b_login_b, on_a = (
            bearer(b, c), session(b, c, sid), bearer(b, cb), bearer(a, c))
        on_b_other = bearer(b, bo)
        streams = [on_b_bearer, on_b_session, on_b_login_b, on_a, on_b_other]
        names = ["B bearer", "B session", "B bearer (login on B)", "A bearer"]
        for es in streams:
            ev = connected(es)
            check(ev["id"] == "0-0", "fresh tenant: connected id 0-0, got %r" % ev["id"])
        e1 = pub(a, tenant, 1)
        for name, es in zip(names, streams):
            got = read_events(es, 1, timeout=3)
            check(got_ids(got) == want_ids([(e1, 1)]), "%s: got %r, want id %s from A" % (name, got, e1))
        e2 = pub(b, tenant, 2)
        for name, es in zip(names, streams):
            got = read_events(es, 1, timeout=3)
            check(got_ids(got) == want_ids([(e2, 2)]), "%s: got %r, want id %s from B" % (name, got, e2))
        check(id_key(e2) > id_key(e1), "ids grow across processes: %s then %s" % (e1, e2))
        # pings in both processes carry the id of the last event, wherever it was published
        for name, es in zip(names, streams):
            got = read_events(es, 1, timeout=2, skip=())
            check(got and got[0]["event"] == "ping" and got[0]["id"] == e2, "%s: ping %r, want id %s" %
                  (name, got, e2))
        # the other tenant's stream on B got neither event, and pings without their ids
        got = read_events(on_b_other, 2, timeout=2, skip=())
        check(len(got) == 2 and all(e["event"] == "ping" and e["id"] == "0-0" for e in got),
              "other tenant's stream on B: %r" % got)
        # a fresh connect on either process starts at the tenant's newest id
        for st in (a, b):
            es = bearer(st, c)
            try:
                check(connected(es)["id"] == e2, "fresh connect starts at the newest id %s" % e2)
            finally:
                es.close()
    finally:
        closing(*streams)
        _cleanup(a, b)


# ---------------------------------------------------------------- replay

@test
def bus_replay_with_last_event_id_header_query_and_header_wins(s, binary):
    a, b = _pair(binary, name="replay")
    streams = []
    try:
        tenant = new_tenant(a, (("ana", "viewer"),))
        c = Client(a.port, tenant, "ana")
        sid = new_session(c)
        es = bearer(a, c)
        streams.append(es)
        connected(es)
        ids = [pub(a, tenant, 0), pub(b, tenant, 1)]
        got = read_events(es, 2, timeout=3)
        check(got_ids(got) == want_ids([(ids[0], 0), (ids[1], 1)]), "first two events %r" % got)
        es.close()
        # missed while disconnected, published through both processes
        for n in range(2, 6):
            ids.append(pub(a if n % 2 else b, tenant, n))
        all_ = list(zip(ids, range(6)))

        cases = [
            ("header on B (bearer)", lambda: bearer(b, c, last=ids[1]), ids[1]),
            ("header on A (session)", lambda: session(a, c, sid, last=ids[1]), ids[1]),
            ("query on B (session)", lambda: session(b, c, sid, query="last_event_id=" + ids[2]), ids[2]),
            ("query on A (bearer)", lambda: bearer(a, c, query="last_event_id=" + ids[2]), ids[2]),
            ("header wins over query (session on B)",
             lambda: session(b, c, sid, last=ids[3], query="last_event_id=" + ids[0]), ids[3]),
            ("header wins over query (bearer on A)",
             lambda: bearer(a, c, last=ids[4], query="last_event_id=" + ids[1]), ids[4]),
            ("resume from 0-0 replays the whole history (bearer on B)", lambda: bearer(b, c, last="0-0"), "0-0"),
        ]
        for label, opener, resume in cases:
            es = opener()
            try:
                ev = connected(es)
                check(ev["id"] == resume, "%s: connected id %r, want the resume point %s" % (label, ev["id"], resume))
                want = [p for p in all_ if id_key(p[0]) > id_key(resume)]
                got = read_events(es, len(want), timeout=3)
                check(got_ids(got) == want_ids(want), "%s: replayed %r, want %r" % (label, got_ids(got), want))
                # nothing else is replayed: the next non-ping event is the next live one
                live = (pub(a, tenant, 100 + len(all_)), 100 + len(all_))
                got = read_events(es, 1, timeout=3)
                check(got_ids(got) == want_ids([live]), "%s: after the replay %r, want live %r" %
                      (label, got_ids(got), live))
                all_.append(live)
                # the pings after the replay carry the last id
                ping = read_events(es, 1, timeout=2, skip=())
                check(ping and ping[0]["event"] == "ping" and ping[0]["id"] == live[0],
                      "%s: ping after replay %r" % (label, ping))
            finally:
                es.close()
    finally:
        closing(*streams)
        _cleanup(a, b)


@test
def bus_replay_while_events_keep_arriving(s, binary):
    a, b = _pair(binary, name="replaylive")
    try:
        tenant = new_tenant(a, (("ana", "viewer"),))
        c = Client(a.port, tenant, "ana")
        sid = new_session(c)
        n = 300
        rng = random.Random(5)
        es = bearer(a, c)
        last = connected(es)["id"]
        check(last == "0-0", "fresh tenant %r" % last)
        pubr = Publisher((a, b), tenant, n, rate=150)
        pubr.start()
        received, rounds = [], 0
        deadline = time.monotonic() + 20
        try:
            while time.monotonic() < deadline:
                want = len(received) + rng.randint(10, 40)
                seen = follow(es, received, lambda r: len(r) >= want or len(r) >= n, 3)
                check(not es.closed, "round %d: stream ended early" % rounds)
                last = seen or last
                es.close()
                if len(received) >= n:
                    break
                rounds += 1
                # reconnect, alternating processes and the header / the query parameter
                st = (a, b)[rounds % 2]
                if rounds % 4 in (1, 2):
                    es = bearer(st, c, last=last)
                else:
                    es = session(st, c, sid, query="last_event_id=" + last)
                ev = connected(es)
                check(ev["id"] == last, "round %d: connected id %r, want the resume point %s" %
                      (rounds, ev["id"], last))
        finally:
            es.close()
            pubr.join(10)
        check(pubr.error is None, "publisher: %s" % pubr.error)
        check(len(pubr.published) == n, "published %d of %d" % (len(pubr.published), n))
        check(all(id_key(x[0]) < id_key(y[0]) for x, y in zip(pubr.published, pubr.published[1:])),
              "ids grow in publish order")
        check(rounds >= 6, "reconnected %d times (want several)" % rounds)
        check_sequence("client after %d reconnects" % rounds, received, pubr.published)
    finally:
        _cleanup(a, b)


@test
def bus_sigkill_of_one_process_clients_resume_on_the_other(s, binary):
    a, b = _pair(binary, name="sigkill")
    streams = []
    pubr = None
    try:
        tenant = new_tenant(a, (("ana", "viewer"),))
        c = Client(a.port, tenant, "ana")
        sid = new_session(c)
        on_a = {"A bearer": bearer(a, c), "A session": session(a, c, sid)}
        on_b = bearer(b, c)
        streams = list(on_a.values()) + [on_b]
        last = {}
        for k, es in on_a.items():
            last[k] = connected(es)["id"]
        connected(on_b)
        n = 200
        pubr = Publisher((b,), tenant, n, rate=100)
        pubr.start()
        received = {k: [] for k in on_a}
        for k, es in on_a.items():
            last[k] = follow(es, received[k], lambda r: len(r) >= 20, 3) or last[k]
            check(len(received[k]) == 20, "%s: %d events before the kill" % (k, len(received[k])))
        a.backend.kill()
        a.backend.wait(5)
        killed_at = len(pubr.published)
        # the killed process's streams end; whatever came before the end counts
        for k, es in on_a.items():
            last[k] = follow(es, received[k], lambda r: False, 5) or last[k]
            check(es.closed, "%s: stream ended when its process was killed" % k)
        # reconnect to the survivor with the last id seen
        resumed = {"A bearer": bearer(b, c, last=last["A bearer"]),
                   "A session": session(b, c, sid, last=last["A session"])}
        streams += list(resumed.values())
        for k, es in resumed.items():
            ev = connected(es)
            check(ev["id"] == last[k], "%s: connected id %r, want %s" % (k, ev["id"], last[k]))
            follow(es, received[k], lambda r: len(r) >= n, 10)
        got_b = []
        follow(on_b, got_b, lambda r: len(r) >= n, 10)
        pubr.join(10)
        check(pubr.error is None, "publisher: %s" % pubr.error)
        check(len(pubr.published) == n, "published %d of %d" % (len(pubr.published), n))
        check(killed_at < n - 20, "publishing went on after the kill (%d of %d before it)" % (killed_at, n))
        for k in on_a:
            check_sequence(k + " resumed on B", received[k], pubr.published)
        check_sequence("B bearer", got_b, pubr.published)
        check(not on_b.closed, "B's own stream is still open")
    finally:
        if pubr is not None:
            pubr.join(10)
        closing(*streams)
        _cleanup(a, b)


@test
def bus_reset_when_the_history_was_trimmed(s, binary):
    import common
    a, b = _pair(binary, {"sse": {"history_max_len": 3}}, name="reset")
    try:
        tenant = new_tenant(a, (("ana", "viewer"),))
        c = Client(a.port, tenant, "ana")
        # every event of the tenant, in order: the history keeps the last 3
        events = [(pub(a if n % 2 else b, tenant, n), n) for n in range(6)]

        def xlen():
            return history_len(common.REDIS, c)

        check(xlen() == 3, "(setup) history holds 3 events, not %r" % xlen())

        def resume(label, st, last, want_reset, query=""):
            """Resumes from last on st; checks reset or the exact replay,
            then that a live event comes next (and records it)."""
            es = bearer(st, c, last=last, query=query)
            try:
                ev = connected(es)
                if want_reset:
                    # reset from the newest trimmed id, then what history holds
                    got = read_events(es, 1, timeout=3)
                    check(got and got[0]["event"] == "reset", "%s: first event %r, want reset" % (label, got))
                    check(got[0]["id"] == events[-4][0], "%s: reset id %r, want the newest trimmed %s" %
                          (label, got[0]["id"], events[-4][0]))
                    kept = events[-3:]
                    got = read_events(es, len(kept), timeout=3)
                    check(got_ids(got) == want_ids(kept), "%s: after reset %r, want the kept %r" %
                          (label, got_ids(got), kept))
                else:
                    check(ev["id"] == last, "%s: connected id %r, want %s" % (label, ev["id"], last))
                    want = [e for e in events if id_key(e[0]) > id_key(last)]
                    got = read_events(es, len(want), timeout=3)
                    check(got_ids(got) == want_ids(want), "%s: replay %r, want %r" % (label, got_ids(got), want))
                # then live, nothing from history in between
                n = 100 + len(events)
                live = (pub(a, tenant, n), n)
                events.append(live)
                got = read_events(es, 1, timeout=3)
                check(got_ids(got) == want_ids([live]), "%s: next %r, want live %r" % (label, got_ids(got), live))
            finally:
                es.close()

        resume("trimmed id on B", b, events[1][0], True)
        resume("trimmed id on A", a, events[0][0], True)
        resume("oldest id still kept, on B", b, events[-3][0], False)
        resume("id in the middle of the history, on A", a, events[-2][0], False)
        resume("newest trimmed id (nothing after it lost), on B", b, events[-4][0], False)
        resume("one before the newest trimmed id, on A", a, events[-5][0], True)
        resume("0-0 after some were trimmed, on B", b, "0-0", True)
        for label, bad, st in (("garbage", "abc", b), ("half an id", "123-", a),
                               ("newer than the history", "99999999999999-0", b)):
            resume(label, st, bad, True)
        resume("garbage last_event_id query, on A", a, None, True, query="last_event_id=abc")
        check(xlen() == 3, "history still holds 3 events, not %r" % xlen())
    finally:
        _cleanup(a, b)


# ---------------------------------------------------------------- Redis outage

@test
def bus_redis_outage_streams_stay_open_and_catch_up(s, binary):
    redis = RedisServer(persist=True).start()
    a = b = None
    readers = []
    try:
        a, b = _pair(binary, {"redis": {"host": "127.0.0.1", "port": redis.port, "backoff_max_ms": 500,
                                        "connect_timeout_ms": 200, "command_timeout_ms": 200}},
                     name="busoutage")
        tenant = new_tenant(a, (("ana", "viewer"),))
        c = Client(a.port, tenant, "ana")
        sid = new_session(c)
        named = [("A bearer", bearer(a, c)), ("B bearer", bearer(b, c)), ("B session", session(b, c, sid)),
                 ("A session", session(a, c, new_session(c)))]
        for _, es in named:
            connected(es)
        readers = [Reader(es, k) for k, es in named]
        before = [(pub(a, tenant, 1), 1), (pub(b, tenant, 2), 2)]
        redis.stop()  # right away: the streams may not have had them yet
        t_down = time.monotonic()
        refused = []
        for st in (a, b, a):
            r = publish(st.port, tenant, TYPE, {"n": -1, "outage": True})
            problem(r, 503, "dependency.unavailable")
            ra = r.header("Retry-After")
            check(ra is not None and ra.isdigit() and int(ra) > 0, "Retry-After %r" % ra)
            refused.append(r)
        time.sleep(1.3)
        for rd in readers:
            check(not rd.eof and rd.error is None, "%s: stream stays open while Redis is down (%r)" %
                  (rd.label, rd.error))
            pings = rd.pings_since(t_down + 0.1)
            check(len(pings) >= 2, "%s: %d pings during the outage" % (rd.label, len(pings)))
        redis.start_on_same_port()
        check(history_len(redis, c) == 2,
              "(harness) Redis kept the 2 events across the restart")
        # The promise (redis/redis.h): every process uses Redis again within
        # backoff_max_ms + 25% of its return, and once a process has reached
        # it, none of its threads fails for a backoff left from the outage.
        after = []
        n = 3
        for label, st in (("A", a), ("B", b)):
            t_up = time.monotonic()
            first = None
            while time.monotonic() - t_up < 0.5 * 1.25 + 2:
                r = publish(st.port, tenant, TYPE, {"n": n})
                if r.status == 202:
                    first = r
                    break
                problem(r, 503, "dependency.unavailable")
                time.sleep(0.05)
            check(first is not None, "process %s publishes again within the backoff bound of Redis's return" % label)
            after.append((first.json()["id"], n))
            n += 1
            # more requests than the process has worker threads: each is served
            for _ in range(2 * BASE_CONFIG["server"]["workers"]):
                after.append((pub(st, tenant, n), n))
                n += 1
        want = before + after
        check(wait_until(lambda: all(len(rd.events()) >= len(want) for rd in readers), 5, 0.05),
              "every stream caught up: %r" % [(rd.label, len(rd.events())) for rd in readers])
        time.sleep(2 * HEARTBEAT_MS / 1000.0)  # room for a late duplicate to show
        for rd in readers:
            evs = rd.events()
            check(not any("outage" in e["data"] for e in evs), "%s: a refused event arrived" % rd.label)
            check(not any(e["event"] == "reset" for e in evs), "%s: reset after the outage" % rd.label)
            check_sequence(rd.label, evs, want)
            check(not rd.eof, "%s: still open" % rd.label)
    finally:
        for rd in readers:
            rd.stop()
        if a is not None:
            _cleanup(a, b)
        redis.cleanup()


# ---------------------------------------------------------------- revocation and replacement

@test
def bus_logout_and_revoke_all_on_one_process_end_streams_on_the_other(s, binary):
    a, b = _pair(binary, name="revoke")
    streams = []
    try:
        tenant = new_tenant(a, (("boss", "admin"), ("ana", "viewer"), ("bo", "viewer")))
        ana = Client(a.port, tenant, "ana")
        keep = Client(a.port, tenant, "ana")  # another login of the same user
        bo = Client(b.port, tenant, "bo")
        doomed = [bearer(b, ana), session(b, ana, new_session(ana))]
        kept = [bearer(b, keep), bearer(b, bo)]
        streams = doomed + kept
        for es in streams:
            connected(es)
        check(ana.post("/api/v2/auth/logout").status == 204, "logout on A")
        for i, es in enumerate(doomed):
            got, eof = read_to_eof(es, 3)
            events = [ev["event"] for _, ev in got]
            check(eof and events and events[-1] == "revoked",
                  "logout on A: stream %d on B %r (eof %r)" % (i, events, eof))
        for i, es in enumerate(kept):
            check(not es.closed, "other login's stream %d on B stays open" % i)
        eid = pub(a, tenant, 1)
        for i, es in enumerate(kept):
            got = read_events(es, 1, timeout=3)
            check(got_ids(got) == want_ids([(eid, 1)]), "kept stream %d: %r" % (i, got))
        closing(*streams)

        # revoke-all of ana by an admin on A: ends every login's streams on B (and A)
        boss = Client(a.port, tenant, "boss")
        ana2 = Client(b.port, tenant, "ana")
        doomed = [bearer(b, keep), session(b, ana2, new_session(ana2)), bearer(a, ana2)]
        kept = [bearer(b, bo)]
        streams = doomed + kept
        for es in streams:
            connected(es)
        uid = claims_of(ana2.token)["sub"]
        check(boss.delete("/api/v2/users/%s/sessions" % uid).status == 204, "revoke all on A")
        for i, es in enumerate(doomed):
            got, eof = read_to_eof(es, 3)
            events = [ev["event"] for _, ev in got]
            check(eof and events and events[-1] == "revoked", "revoke-all on A: stream %d %r (eof %r)" %
                  (i, events, eof))
        eid = pub(b, tenant, 2)
        got = read_events(kept[0], 1, timeout=3)
        check(got_ids(got) == want_ids([(eid, 2)]) and not kept[0].closed,
              "another user's stream on B is untouched: %r" % got)
    finally:
        closing(*streams)
        _cleanup(a, b)


@test
def bus_session_reconnect_on_another_process_replaces_the_old_connection(s, binary):
    a, b = _pair(binary, name="replace")
    first = second = None
    try:
        tenant = new_tenant(a, (("ana", "viewer"),))
        c = Client(a.port, tenant, "ana")
        sid = new_session(c)
        first = session(a, c, sid)
        first_id = json.loads(connected(first)["data"])["connection_id"]
        e1 = pub(a, tenant, 1)
        got = read_events(first, 1, timeout=3)
        check(got_ids(got) == want_ids([(e1, 1)]), "first connection on A: %r" % got)
        # the client moves to B with the same session id and cookie, resuming from e1
        second = session(b, c, sid, last=e1)
        ev = connected(second)
        check(ev["id"] == e1, "resumes at %s: %r" % (e1, ev))
        evs, eof = read_to_eof(first, 3)
        check(eof, "A's connection ends when B takes the session over (got %r)" % [e for _, e in evs])
        check(not any(e["event"] == TYPE for _, e in evs), "nothing more on A's connection: %r" % evs)
        check(wait_until(lambda: [m.get("request_id") for m in stream_ends(a, "replaced")].count(first_id) == 1, 3),
              "A logged stream_end replaced for %s: %r" % (first_id, [(m.get("request_id"), m.get("reason"))
                                                                     for m in stream_ends(a)]))
        e2 = pub(a, tenant, 2)
        got = read_events(second, 1, timeout=3)
        check(got_ids(got) == want_ids([(e2, 2)]), "B's connection gets the next event once: %r" % got)
        got = read_events(second, 1, timeout=1, skip=())
        check(got and got[0]["event"] == "ping" and not second.closed, "B's connection stays: %r" % got)
        # and back to A: B's connection ends in turn
        third = session(a, c, sid, last=e2)
        try:
            check(connected(third)["id"] == e2, "resume on A at %s" % e2)
            evs, eof = read_to_eof(second, 3)
            check(eof, "B's connection ends when A takes the session back")
            got = read_events(third, 1, timeout=1, skip=())
            check(got and got[0]["event"] == "ping", "A's new connection stays: %r" % got)
        finally:
            third.close()
    finally:
        closing(first, second)
        _cleanup(a, b)


@test
def bus_session_replacement_holds_when_the_client_reuses_its_request_id(s, binary):
    # the connection is named on the bus by the server, not by X-Request-Id
    a, b = _pair(binary, name="samereqid")
    first = second = None
    try:
        tenant = new_tenant(a, (("ana", "viewer"),))
        c = Client(a.port, tenant, "ana")
        sid = new_session(c)
        same = {"X-Request-Id": "client-chosen-id"}
        first = session(a, c, sid, extra=same)
        check(json.loads(connected(first)["data"])["connection_id"] == "client-chosen-id",
              "the client's request id is its connection id")
        second = session(b, c, sid, extra=same)
        connected(second)
        evs, eof = read_to_eof(first, 3)
        check(eof, "A's connection ends although both carry one request id (got %r)" % [e for _, e in evs])
        got = read_events(second, 1, timeout=1, skip=())
        check(got and got[0]["event"] == "ping" and not second.closed, "B's connection stays: %r" % got)
    finally:
        closing(first, second)
        _cleanup(a, b)


# ---------------------------------------------------------------- lifetime and shutdown

def _last_id(evs):
    """The id a client would resume from: the last one it saw."""
    ids = [e["id"] for _, e in evs if e["id"]]
    return ids[-1] if ids else None


@test
def bus_lifetime_end_and_shutdown_resume_without_loss(s, binary):
    a, b = _pair(binary, {"sse": {"max_lifetime_ms": 1500, "lifetime_jitter_pct": 0}}, name="lifeshut")
    es = None
    try:
        tenant = new_tenant(a, (("ana", "viewer"),))
        c = Client(a.port, tenant, "ana")
        # the stream ends at its lifetime; what is published before the
        # client is back comes with the resume, on the other process
        es = bearer(a, c)
        connected(es)
        e1 = pub(b, tenant, 1)
        evs, eof = read_to_eof(es, 5)
        check(eof, "the stream ended at its lifetime")
        check([e["id"] for _, e in evs if e["event"] == TYPE] == [e1], "before the end: %r" % evs)
        last = _last_id(evs)
        check(last == e1, "last id seen %r, want %s" % (last, e1))
        es.close()
        e2, e3 = pub(b, tenant, 2), pub(a, tenant, 3)
        es = bearer(b, c, last=last)
        check(connected(es)["id"] == last, "resumes at %s" % last)
        got = read_events(es, 2, timeout=3)
        check(got_ids(got) == want_ids([(e2, 2), (e3, 3)]), "after the lifetime end: %r" % got_ids(got))
        es.close()

        # SIGTERM: `event: shutdown` carries the position; events published
        # while the process restarts come with the resume on the new one
        es = bearer(a, c, last=e3)
        connected(es)
        e4 = pub(b, tenant, 4)
        got = read_events(es, 1, timeout=3)
        check(got_ids(got) == want_ids([(e4, 4)]), "before shutdown: %r" % got_ids(got))
        a.backend.send_signal(signal.SIGTERM)
        evs, eof = read_to_eof(es, 5)
        check(eof and evs and evs[-1][1]["event"] == "shutdown", "shutdown event: %r" % evs)
        last = _last_id(evs)
        check(last == e4, "shutdown id %r, want %s" % (last, e4))
        check(a.backend.wait(10) == 0, "A exits 0")
        es.close()
        e5 = pub(b, tenant, 5)
        a.start_backend()
        check(wait_until(lambda: request(a.port, "GET", "/api/v2/health").status == 200, 10),
              "A is back")
        e6 = pub(b, tenant, 6)
        es = bearer(a, c, last=last)
        check(connected(es)["id"] == last, "resumes at %s" % last)
        got = read_events(es, 2, timeout=3)
        check(got_ids(got) == want_ids([(e5, 5), (e6, 6)]), "after the restart: %r" % got_ids(got))
    finally:
        closing(es)
        _cleanup(a, b)


# ---------------------------------------------------------------- close, refused or half done

def _reconnect_status(st, c, sid, query, last=None):
    """The status a reconnect of stream session sid gets (the stream, if
    opened, is closed at once)."""
    es = session(st, c, sid, last=last, query=query)
    try:
        return es.status
    finally:
        es.close()


@test
def bus_refused_close_publish_finishes_no_session(s, binary):
    """A publish with close: true that Redis refuses (down, or paused until
    the command times out) is 503 and finishes nothing: the topic's stream
    sessions reconnect as before (200, not 204), and a later accepted close
    does finish them."""
    redis = RedisServer().start()
    st = None
    try:
        st = _stack(binary, {"redis": outage_redis(redis)},
                    name="refusedclose")
        tenant = new_tenant(st, (("ana", "viewer"),))
        c = Client(st.port, tenant, "ana")
        sid = new_session(c)
        q = "topics=job:1"
        es = session(st, c, sid, query=q)
        connected(es)
        es.close()
        for how in ("down", "paused"):
            if how == "down":
                redis.stop()
            else:
                redis.proc.send_signal(signal.SIGSTOP)
            try:
                r = publish(st.port, tenant, "job.done", {"ok": 1}, topic="job:1", close=True)
                problem(r, 503, "dependency.unavailable")
                status = _reconnect_status(st, c, sid, q)
                check(status == 200, "Redis %s: after a refused close, the session reconnects: %d" % (how, status))
            finally:
                if how == "down":
                    redis.start_on_same_port()
                else:
                    redis.proc.send_signal(signal.SIGCONT)
        check(wait_until(lambda: publish(st.port, tenant, "job.progress", {"n": 1}).status == 202, 5, 0.05),
              "publishes again once Redis is back")
        published_id(publish(st.port, tenant, "job.done", {"ok": 1}, topic="job:1", close=True))
        status = _reconnect_status(st, c, sid, q)
        check(status == 204, "after an accepted close the session is finished: %d" % status)
    finally:
        if st is not None:
            st.cleanup()
        redis.cleanup()


@test
def bus_close_survives_a_lost_finish_step(s, binary):
    """A close event is accepted once it is in the history; marking the
    sessions finished comes after. Should that step be lost (the store
    failed, or the process died in between: simulated by clearing the mark
    in the SQLite file), a reconnect resuming from the close event is still
    finished (204), and one resuming from before it gets the close again.
    A session begun after the close is not finished by it."""
    import sqlite3
    a, b = _pair(binary, name="lostfinish")
    try:
        tenant = new_tenant(a, (("ana", "viewer"),))
        c = Client(a.port, tenant, "ana")
        q = "topics=task:9"
        sid = new_session(c)
        es = session(a, c, sid, query=q)
        connected(es)
        before = pub(a, tenant, 1)
        fin = published_id(publish(a.port, tenant, "task.done", {"ok": 1}, topic="task:9", close=True))
        evs, eof = read_to_eof(es, 5)
        check(eof and [e["event"] for _, e in evs if e["event"] != "ping"][-2:] == ["task.done", "close"],
              "closed by the publisher: %r" % evs[-2:])
        es.close()
        if harness.STORE == "postgres":
            check(re.fullmatch(r"[A-Za-z0-9_-]+", sid) is not None, "(harness) a plain id %r" % sid)
            n = int(harness.postgres_sql(a.config, "WITH u AS (UPDATE stream_sessions SET finished_at = 0"
                                         " WHERE id = '%s' RETURNING 1) SELECT count(*) FROM u" % sid))
        else:
            db = sqlite3.connect(a.config["store"]["path"])
            with db:
                n = db.execute("UPDATE stream_sessions SET finished_at = 0 WHERE id = ?", (sid,)).rowcount
            db.close()
        check(n == 1, "(harness) the finish mark cleared")
        # from the close event: finished, on either process
        for st in (a, b):
            status = _reconnect_status(st, c, sid, q, last=fin)
            check(status == 204, "resuming from the close event: %d" % status)
        # from before it: the close event again, then the end
        es = session(b, c, sid, last=before, query=q)
        try:
            check(es.status == 200, "resuming from before the close: %d" % es.status)
            evs, eof = read_to_eof(es, 5)
            names = [e["event"] for _, e in evs if e["event"] not in ("ping", "connected")]
            check(eof and names == ["task.done", "close"], "replayed the close and ended: %r %r" % (names, eof))
        finally:
            es.close()
        # a session that began after the close (a second later: sessions
        # keep whole seconds) is not finished by it
        time.sleep(1.1)
        late = new_session(c)
        es = session(a, c, late, query=q)
        connected(es)
        es.close()
        status = _reconnect_status(a, c, late, q, last=fin)
        check(status == 200, "a later session resuming from an old close stays open: %d" % status)
    finally:
        _cleanup(a, b)
