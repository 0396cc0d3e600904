"""Fault tests (issue #15): fcgi_sse behind the harness's real lighttpd and
real Redis while something breaks. For each fault: what clients saw
(statuses, codes, stream ends and resumes), that nothing accepted was lost
(every event answered 202 reaches every resuming stream once and in order;
every change answered 2xx is readable afterwards and its event arrives),
the breakers and metrics during and after, and fcgi_sse's descriptors and
memory back near a baseline taken after a warm-up. Registered by run.py.

What the other files cover already is left to them: the breakers' state
machine (protection_tests), a locked store, a stopped Redis with streams
catching up and a SIGKILLed process of two (bus_tests), devices while Redis
is down (devices_tests), one slow client (events_tests)."""

import errno
import json
import os
import pwd
import signal
import socket
import struct
import subprocess
import tempfile
import threading
import time
import types

from auth_tests import Client, new_tenant
from bus_tests import bearer, session
from common import _stack, check, outage_redis, problem, test
from devices_tests import DEVICES, create, send
from events_tests import (_raise_nofile, _rss_kb, new_session, open_bearer, publish, published_id,
                          read_events, stream_ends)
from harness import EventStream, RedisServer, Stack, read_event, request, wait_until
from metrics_tests import scrape

TYPE = "fault.seq"
DEPENDENCIES = ("redis", "bus", "store_reads", "store_writes")
# Back to baseline means within these: a thread's Redis connection made
# anew, a log file; and the allocator keeping some freed memory.
FD_SLACK = 4
RSS_SLACK_KB = 6 * 1024


# ---------------------------------------------------------------- process footprint

def fd_count(pid):
    return len(os.listdir("/proc/%d/fd" % pid))


class Footprint:
    """A process's open descriptors and resident memory when taken (after
    a warm-up); back() waits for both to return near them."""

    def __init__(self, pid, label):
        self.pid, self.label = pid, label
        # threads open some things of theirs a moment after start (a
        # periodic task's store connection): a count steady for a second
        seen = []

        def steady():
            seen.append(fd_count(pid))
            return len(seen) > 5 and len(set(seen[-6:])) == 1

        wait_until(steady, 8, 0.2)
        self.fds = fd_count(pid)
        self.kinds = _fd_kinds(pid)
        self.rss = _rss_kb(pid)

    def back(self, fd_slack=FD_SLACK, rss_slack_kb=RSS_SLACK_KB, timeout=10):
        ok = wait_until(lambda: fd_count(self.pid) <= self.fds + fd_slack, timeout, 0.1)
        check(ok, "%s: %d open descriptors, %d at the baseline (+%d allowed): %r, at the baseline %r" %
              (self.label, fd_count(self.pid), self.fds, fd_slack, _fd_kinds(self.pid), self.kinds))
        if _sanitized(self.pid):
            return  # ASan keeps freed memory in quarantine: its RSS says nothing (the soak's job)
        ok = wait_until(lambda: _rss_kb(self.pid) <= self.rss + rss_slack_kb, 5, 0.2)
        check(ok, "%s: RSS %d kB, %d kB at the baseline (+%d kB allowed)" %
              (self.label, _rss_kb(self.pid), self.rss, rss_slack_kb))


def _trouble(st):
    """fcgi_sse's warnings and errors other than the expected noise of a
    Redis outage (publish, outbox, bus, stale cache entries)."""
    noise = ("publish_failed", "bus_lost", "bus_up", "_stale", "bus_unreachable", "quota")
    return [l[:300] for l in st.log_lines()
            if ('"level":"warn"' in l or '"level":"error"' in l) and not any(n in l for n in noise)]


def _sanitized(pid):
    """Whether the process runs with AddressSanitizer (its runtime mapped)."""
    try:
        with open("/proc/%d/maps" % pid) as f:
            return "libasan" in f.read()
    except OSError:
        return False


def _fd_kinds(pid):
    """What a process's descriptors are, counted by kind (for messages)."""
    kinds = {}
    for fd in os.listdir("/proc/%d/fd" % pid):
        try:
            target = os.readlink("/proc/%d/fd/%s" % (pid, fd))
        except OSError:
            continue
        kind = target.split(":")[0] if ":" in target else target
        kinds[kind] = kinds.get(kind, 0) + 1
    return kinds


def _environ(pid):
    try:
        with open("/proc/%d/environ" % pid, "rb") as f:
            return f.read().split(b"\0")
    except OSError:
        return []


def _cmd0(pid):
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            return os.path.basename(f.read().split(b"\0")[0]).decode("latin-1")
    except OSError:
        return ""


def _pids(pred):
    return {int(p) for p in os.listdir("/proc") if p.isdigit() and pred(int(p))}


def spawned_backends(st):
    """The fcgi_sse processes lighttpd started for stack st (bin-path:
    their environment names its config)."""
    want = ("FCGI_SSE_CONFIG=" + st.config_path).encode()
    return _pids(lambda p: _cmd0(p) == "fcgi_sse" and want in _environ(p))


def lighttpds(st):
    """Every lighttpd process of stack st: the one it started and, during
    a graceful restart in the background, the old one finishing."""
    want = ("RUN_DIR=" + st.dir).encode()
    return _pids(lambda p: _cmd0(p) == "lighttpd" and want in _environ(p))


def _alive(pid):
    """A process that exists and is not a zombie."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


# ---------------------------------------------------------------- state of the service

def ready(st):
    r = request(st.port, "GET", "/api/v2/ready", timeout=5)
    return r.status, r.json()


def breakers(st):
    """fcgi_sse_breaker_state by dependency (0 closed, 1 open, 2 half-open)."""
    m = scrape(st)[1]
    return {d: m.get("fcgi_sse_breaker_state", dependency=d) for d in DEPENDENCIES}


def opened(st, dep):
    return scrape(st)[1].get("fcgi_sse_breaker_opened_total", dependency=dep)


def metric(st, name, **labels):
    return scrape(st)[1].get(name, **labels)


def all_closed(st):
    return all(v == 0 for v in breakers(st).values())


# ---------------------------------------------------------------- clients

class Resumer(threading.Thread):
    """A client that keeps one stream open, as EventSource does: on the
    stream's end it reconnects (after 50 ms) with the last id it saw in
    Last-Event-ID. opener(last) opens the stream. Records every event but
    pings across its connections, how each connection ended ("clean": at an
    event's end; "torn": inside one; or the error), the refused reconnects,
    and for each resume the id it asked for and the id `connected` gave."""

    def __init__(self, label, opener):
        super().__init__(daemon=True)
        self.label, self.opener = label, opener
        self.events = []
        self.last = None
        self.connects = 0
        self.ends = []
        self.refusals = []
        self.resumes = []
        self.es = None
        self.stopping = threading.Event()
        self.start()

    def run(self):
        while not self.stopping.is_set():
            asked = self.last
            try:
                es = self.opener(asked)
            except OSError as e:  # refused, reset, or a head cut off
                self.refusals.append(repr(e))
                self.stopping.wait(0.05)
                continue
            if es.status != 200:
                self.refusals.append(es.status)
                es.close()
                self.stopping.wait(0.05)
                continue
            self.es = es
            self.connects += 1
            end = self._read(es, asked)
            es.close()
            if not self.stopping.is_set():
                self.ends.append(end)
                self.stopping.wait(0.05)

    def _read(self, es, asked):
        tail = [b""]

        def readline():
            line = es.f.readline()
            if line:
                tail[0] = line
            return line

        first = True
        try:
            while True:
                got = read_event(readline, es)
                if got is None:
                    return "clean" if tail[0] in (b"\n", b"\r\n") else "torn"
                ev = got[1]
                if first and asked is not None:
                    self.resumes.append((asked, ev["id"], ev["event"]))
                first = False
                if ev["id"] is not None:
                    self.last = ev["id"]
                if ev["event"] != "ping":
                    self.events.append(ev)
        except (OSError, ValueError) as e:
            return "error: %r" % e

    def seq(self):
        return [e for e in list(self.events) if e["event"] == TYPE]

    def ids(self):
        return {e["id"] for e in list(self.events)}

    def stop(self):
        self.stopping.set()
        es = self.es
        if es is not None:
            try:
                es.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self.join(5)
        if es is not None:
            es.close()


def stop_all(resumers):
    for r in resumers:
        r.stop()


class Load(threading.Thread):
    """What clients do meanwhile, one request after another, through the
    stacks in turn: publish {"n": i}; read the device; every fifth round
    rename it, and post a telemetry point. Refusals are recorded, not
    fatal: accepted holds (id, n) of every publish answered 202, refused
    n -> status of the others; patched (name, version) of every rename
    answered 200, points the ids of every point answered 202."""

    def __init__(self, stacks, tenant, op, device, pace=0.02):
        super().__init__(daemon=True)
        self.stacks, self.tenant, self.op, self.device, self.pace = list(stacks), tenant, op, device, pace
        self.accepted, self.refused = [], {}
        self.reads = {}
        self.patched, self.points, self.write_refusals = [], [], []
        self.go = threading.Event()
        self.go.set()
        self.idle = threading.Event()
        self.done = threading.Event()
        self.error = None
        self.start()

    def run(self):
        i = 0
        try:
            while not self.done.is_set():
                if not self.go.is_set():
                    self.idle.set()
                    self.go.wait(0.05)
                    continue
                self.idle.clear()
                self._round(i)
                i += 1
                time.sleep(self.pace)
        except Exception as e:  # reported by the test
            self.error = repr(e)

    def _round(self, i):
        st = self.stacks[i % len(self.stacks)]
        h = self.op.headers()
        path = DEVICES + "/" + self.device
        try:
            r = publish(st.port, self.tenant, TYPE, {"n": i})
            if r.status == 202:
                self.accepted.append((r.json()["id"], i))
            else:
                self.refused[i] = r.status
        except OSError as e:
            self.refused[i] = repr(e)
        try:
            r = request(st.port, "GET", path, h)
            self.reads[r.status] = self.reads.get(r.status, 0) + 1
        except OSError as e:
            self.reads[repr(e)] = self.reads.get(repr(e), 0) + 1
        if i % 5 == 0:
            name = "n%d" % i
            try:
                r = request(st.port, "PATCH", path, dict(h, **{"Content-Type": "application/json"}),
                            json.dumps({"name": name}).encode())
                if r.status == 200:
                    self.patched.append((name, r.json()["version"]))
                else:
                    self.write_refusals.append(("patch", name, r.status))
            except OSError as e:
                self.write_refusals.append(("patch", name, repr(e)))
        if i % 5 == 2:
            try:
                r = request(st.port, "POST", path + "/telemetry", dict(h, **{"Content-Type": "application/json"}),
                            json.dumps({"metrics": {"n": i}}).encode())
                if r.status == 202:
                    self.points.append(r.json()["id"])
                else:
                    self.write_refusals.append(("telemetry", i, r.status))
            except OSError as e:
                self.write_refusals.append(("telemetry", i, repr(e)))

    def pause(self):
        self.go.clear()
        check(wait_until(self.idle.is_set, 15), "(harness) the load did not pause")

    def stop(self):
        self.done.set()
        self.go.set()
        self.join(15)
        check(not self.is_alive(), "(harness) the load did not stop")
        check(self.error is None, "load: %s" % self.error)


def delivered(resumers, load):
    """Every accepted event, every accepted rename's version and every
    accepted point has reached every resumer (a point and a rename arrive
    as events too, from the outbox when Redis was away)."""
    want = {i for i, _ in load.accepted}
    versions = {v for _, v in load.patched}
    points = set(load.points)
    for r in resumers:
        evs = list(r.events)
        if not want <= {e["id"] for e in evs if e["event"] == TYPE}:
            return False
        if not versions <= {json.loads(e["data"]).get("version") for e in evs if e["event"] == "device.updated"}:
            return False
        if not points <= {json.loads(e["data"]).get("id") for e in evs if e["event"] == "telemetry"}:
            return False
    return True


def warm(c, device, n=48, writes=True):
    """Store reads (a limit no cache keeps) and telemetry posts until every
    thread has most likely opened what it opens on first use (its store
    connection, its Redis connections): a baseline taken before would
    count those descriptors as leaks."""
    for i in range(n):
        path = (DEVICES + "?limit=3") if i % 2 else ("/api/v2/telemetry/recent?device_id=%s&limit=7" % device)
        r = c.get(path)
        check(r.status == 200, "warm-up read: %d %r" % (r.status, r.body[:200]))
        if writes and i % 4 == 0:
            r = c.post(DEVICES + "/" + device + "/telemetry", {"metrics": {"warm": i}})
            check(r.status == 202, "warm-up point: %d %r" % (r.status, r.body[:200]))


def check_delivery(r, load):
    """r's events of TYPE are the accepted ones, each once, in publish
    order; an event not among them may only be one whose publish was
    answered with a failure (Redis took it but the answer was lost, which
    API.md allows); no reset (which would say events were lost)."""
    resets = [e for e in r.events if e["event"] == "reset"]
    check(not resets, "%s: reset events %r" % (r.label, resets))
    seq = r.seq()
    ids = [e["id"] for e in seq]
    dups = sorted({i for i in ids if ids.count(i) > 1})
    check(not dups, "%s: events arrived twice: %r" % (r.label, dups[:10]))
    acc = dict(load.accepted)
    got = [(e["id"], json.loads(e["data"])["n"]) for e in seq if e["id"] in acc]
    if got != load.accepted:
        have = set(ids)
        missing = [p for p in load.accepted if p[0] not in have]
        raise AssertionError("%s: %d of %d accepted events arrived; missing %r; first difference %r" %
                             (r.label, len(got), len(load.accepted), missing[:10],
                              next(((k, g, p) for k, (g, p) in enumerate(zip(got, load.accepted)) if g != p), None)))
    extra = [json.loads(e["data"])["n"] for e in seq if e["id"] not in acc]
    check(all(n in load.refused for n in extra), "%s: events nobody published: %r" % (r.label, extra[:10]))
    bad = [x for x in r.resumes if x[2] != "connected" or x[1] != x[0]]
    check(not bad, "%s: a resume did not start at the id asked for (asked, got, event): %r" % (r.label, bad[:5]))



def finish_load(load, resumers, fault):
    """After a fault: publishing must go on (30 more accepted), then the
    load stops and every accepted event and change must reach every
    stream, exactly once and in order (check_delivery)."""
    n1 = len(load.accepted)
    check(wait_until(lambda: len(load.accepted) >= n1 + 30, 15), "publishing goes on after %s" % fault)
    load.stop()
    check(wait_until(lambda: delivered(resumers, load), 15),
          "every accepted event and change reached every stream: %r" %
          [(r.label, len(r.seq()), len(load.accepted)) for r in resumers])
    for r in resumers:
        check_delivery(r, load)

def check_writes_readable(st, op, load):
    """The device carries the last rename answered 200 (renames come one
    after another) and every point answered 202 is stored."""
    dev = op.get(DEVICES + "/" + load.device)
    check(dev.status == 200, "the device: %d %r" % (dev.status, dev.body[:200]))
    if load.patched:
        name, version = load.patched[-1]
        check(dev.json()["name"] == name and dev.json()["version"] == version,
              "the device %r, want the last accepted rename %r" % (dev.json(), load.patched[-1]))
    r = op.get("/api/v2/telemetry/recent?device_id=%s&limit=1000" % load.device)
    check(r.status == 200, "recent points: %d" % r.status)
    stored = {p["id"] for p in r.json()["items"]}
    lost = [p for p in load.points if p not in stored]
    check(not lost, "accepted points not stored: %r (of %d)" % (lost[:10], len(load.points)))


# ---------------------------------------------------------------- Redis paused, Redis restarted

def _redis_fault(binary, how):
    """Streams, publishes, API reads and writes going on; Redis paused
    (SIGSTOP, so its sockets stay open and answer nothing) or stopped and
    started again (with its data) for a few seconds."""
    redis = RedisServer(persist=(how == "restart")).start()
    st, load, resumers, paused = None, None, [], False
    try:
        st = _stack(binary, {"redis": outage_redis(redis), "sse": {"ready_probe_max_age_ms": 2500},
                             "resilience": {"breaker_failures": 3, "breaker_open_ms": 300}},
                    name="redis-" + how)
        tenant = new_tenant(st, (("op", "operator"), ("ana", "viewer")))
        op, ana = Client(st.port, tenant, "op"), Client(st.port, tenant, "ana")
        device = create(op, "load")["id"]
        sid = new_session(ana)
        resumers = [Resumer("bearer stream", lambda last: bearer(st, ana, last)),
                    Resumer("session stream", lambda last: session(st, ana, sid, last))]
        check(wait_until(lambda: all(r.connects == 1 and r.events for r in resumers), 5), "streams open")
        check(wait_until(lambda: ready(st)[0] == 200, 10), "ready before the fault: %r" % (ready(st),))
        load = Load([st], tenant, op, device)
        check(wait_until(lambda: len(load.accepted) >= 30 and delivered(resumers, load), 15),
              "warm-up: %d published" % len(load.accepted))
        load.pause()
        warm(op, device)
        base = Footprint(st.backend.pid, "fcgi_sse")
        load.go.set()
        refused0, opened0 = len(load.refused), opened(st, "bus")

        if how == "pause":
            os.kill(redis.proc.pid, signal.SIGSTOP)
            paused = True
        else:
            redis.stop()
        check(wait_until(lambda: ready(st)[0] == 503, 10), "ready is 503 during the fault: %r" % (ready(st),))
        status, body = ready(st)
        check(body["delivery"]["ok"] is False and body["store"] == "ok",
              "ready names delivery, the store still answers: %r" % body)
        check(wait_until(lambda: len(load.refused) >= refused0 + 3, 10),
              "publishes refused during the fault: %r" % load.refused)
        check(set(load.refused.values()) == {503}, "refusals are 503: %r" % load.refused)
        check(wait_until(lambda: opened(st, "bus") > opened0 and breakers(st)["bus"] != 0, 5),
              "the bus breaker opened: %r" % breakers(st))
        check(breakers(st)["redis"] != 0 or opened(st, "redis") >= 1, "the redis breaker opened: %r" % breakers(st))
        check(request(st.port, "GET", "/api/v2/health").status == 200, "health during the fault")
        check(op.get(DEVICES + "/" + device).status == 200, "a read during the fault")
        check(all(r.connects == 1 for r in resumers), "streams stay open during the fault")
        n_during = len(load.patched)
        check(wait_until(lambda: len(load.patched) > n_during, 5), "a rename accepted during the fault")

        if how == "pause":
            os.kill(redis.proc.pid, signal.SIGCONT)
            paused = False
        else:
            redis.start_on_same_port()
        check(wait_until(lambda: ready(st)[0] == 200, 15), "ready again: %r" % (ready(st),))
        check(wait_until(lambda: all_closed(st), 10), "breakers closed again: %r" % breakers(st))
        finish_load(load, resumers, "the fault")
        for r in resumers:
            check(r.connects == 1 and not r.ends, "%s: stayed open through the fault (ends %r)" % (r.label, r.ends))
        check(set(load.reads) == {200}, "every read answered 200: %r" % load.reads)
        # Redis is not needed for a change. One CI run under full load saw
        # five writes in a row refused with 503 during the restart, never
        # reproduced since (a store write waiting out its busy timeout
        # behind a checkpoint starved of I/O, by the look of it): some 503s
        # (the documented answer to a dependency in trouble) are tolerated,
        # with what fcgi_sse logged in the message, so that a real
        # regression (most writes refused) still fails and the next
        # occurrence says why
        refused = [w for w in load.write_refusals if w[2] != 503]
        attempts = len(load.patched) + len(load.points) + len(load.write_refusals)
        check(not refused and len(load.write_refusals) <= max(5, attempts // 4),
              "changes are accepted while Redis is away: %d of %d refused, %r; fcgi_sse said %r" %
              (len(load.write_refusals), attempts, load.write_refusals[:5], _trouble(st)[-8:]))
        check_writes_readable(st, op, load)
        check(metric(st, "fcgi_sse_streams_open") == 2, "streams open: %r" % metric(st, "fcgi_sse_streams_open"))
        check(all_closed(st), "breakers closed after: %r" % breakers(st))
        stop_all(resumers)
        check(wait_until(lambda: metric(st, "fcgi_sse_streams_open") == 0, 5), "streams freed")
        # the baseline had the two streams open
        base.back(fd_slack=FD_SLACK + 2)
    finally:
        if paused:
            os.kill(redis.proc.pid, signal.SIGCONT)
        if load is not None:
            load.done.set()
            load.go.set()
        stop_all(resumers)
        if st is not None:
            st.cleanup()
        redis.cleanup()


@test
def fault_redis_paused_mid_run_loses_no_accepted_event(s, binary):
    _redis_fault(binary, "pause")


@test
def fault_redis_restarted_mid_run_loses_no_accepted_event(s, binary):
    _redis_fault(binary, "restart")


# ---------------------------------------------------------------- the store read-only

NOBODY = pwd.getpwnam("nobody")


class UserStack(Stack):
    """A stack whose fcgi_sse runs as nobody, its store in a directory of
    its own: root ignores file modes, so a read-only store needs a process
    that is not root."""

    def __init__(self, binary, config, name):
        super().__init__(binary, config, name=name)
        os.chmod(self.dir, 0o777)  # nobody creates the socket here
        self.store_dir = os.path.join(self.dir, "store")
        os.mkdir(self.store_dir)
        os.chown(self.store_dir, NOBODY.pw_uid, NOBODY.pw_gid)
        self.config["store"]["path"] = os.path.join(self.store_dir, "fcgi_sse.db")
        with open(self.config_path, "w") as f:
            json.dump(self.config, f)
        os.chmod(self.config_path, 0o644)

    def start_backend(self, extra_args=()):
        env = {k: v for k, v in os.environ.items() if not k.startswith("FCGI_SSE_")}

        def as_nobody():
            os.setgroups([])
            os.setgid(NOBODY.pw_gid)
            os.setuid(NOBODY.pw_uid)

        self.backend = subprocess.Popen(
            [self.binary, "--config", self.config_path, "--listen", "unix:" + self.socket_path] + list(extra_args),
            env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=open(self.backend_log, "ab"), preexec_fn=as_nobody)
        if not wait_until(lambda: os.path.exists(self.socket_path), 5):
            raise RuntimeError("fcgi_sse did not start: " + self.read("fcgi_sse.log"))


def refused_whole(r):
    problem(r, 503, "dependency.unavailable")
    check(r.header("Retry-After") is not None, "Retry-After on the refusal")


def writes_work_again(c, made, refused, want=14, timeout=10):
    """Creates devices until `want` in a row are 201 (more than the
    process's worker threads, each with its own store connection). Every
    answer goes to made (201) or refused (503). Returns whether it got
    there in time."""
    run = [0]

    def one():
        name = "after-%d" % (len(made) + len(refused))
        r = c.post(DEVICES, {"name": name})
        if r.status == 201:
            made.append(name)
            run[0] += 1
        else:
            check(r.status == 503, "a write after the fault: %d %r" % (r.status, r.body[:200]))
            refused.append(name)
            run[0] = 0
        return run[0] >= want

    return wait_until(one, timeout, 0.05)


def device_names(c):
    names, cursor = [], None
    while True:
        r = c.get(DEVICES + "?limit=200" + ("&cursor=" + cursor if cursor else ""))
        check(r.status == 200, "list: %d %r" % (r.status, r.body[:200]))
        body = r.json()
        names += [d["name"] for d in body["items"]]
        cursor = body["next_cursor"]
        if cursor is None:
            return names


@test
def fault_store_made_read_only_then_writable_again(s, binary):
    """chmod a-w on the store file and its directory while fcgi_sse (as
    nobody) runs: a connection opened before goes on writing, one opened
    after cannot; every change is accepted or refused whole (503
    dependency.unavailable), never half. Restarted with the store still
    read-only, every change is refused, reads go on, the store_writes
    breaker opens and ready says writes_failing. Permissions back, changes
    are accepted again, by every worker, without another restart."""
    import common
    import harness
    harness.skip_under_postgres("file modes of a SQLite file"
                                " (fault_postgres_made_read_only_then_writable_again instead)")
    cfg = json.loads(json.dumps(common.BASE_CONFIG))
    cfg["resilience"] = {"breaker_failures": 3, "breaker_open_ms": 2000}
    st = UserStack(binary, cfg, name="readonly")
    db = st.config["store"]["path"]
    try:
        st.start()  # fcgi_sse creates the store, as nobody
        tenant = new_tenant(st, (("op", "operator"),))
        op = Client(st.port, tenant, "op")
        made = ["first"] + ["warm-%d" % i for i in range(3)]
        dev = create(op, "first")["id"]
        for name in made[1:]:
            create(op, name)
        check(op.post(DEVICES + "/" + dev + "/telemetry", {"metrics": {"t": 1}}).status == 202, "a point")
        points = 1

        os.chmod(db, 0o444)
        os.chmod(st.store_dir, 0o555)
        refused = []
        try:
            # the running process: whichever connection serves it decides
            for i in range(12):
                name = "ro-%d" % i
                r = op.post(DEVICES, {"name": name, "metadata": {"i": i}})
                if r.status == 201:
                    made.append(name)
                else:
                    refused_whole(r)
                    refused.append(name)
                r = op.post(DEVICES + "/" + dev + "/telemetry", {"points": [{"metrics": {"ro": j}} for j in range(20)]})
                if r.status == 202:
                    points += 20
                else:
                    refused_whole(r)
            check(op.get(DEVICES + "/" + dev).status == 200, "a read of a read-only store")
            # a restart with the store read-only: every connection is
            check(st.stop_backend() == 0, "fcgi_sse stops cleanly with its store read-only")
            st.start_backend()
            check(wait_until(lambda: request(st.port, "GET", "/api/v2/health").status == 200, 5), "back")
            opened0 = opened(st, "store_writes")
            for i in range(4):
                name = "ro-restarted-%d" % i
                refused.append(name)
                refused_whole(op.post(DEVICES, {"name": name}))
            refused_whole(send(op, "PATCH", DEVICES + "/" + dev, {"name": "renamed"}))
            refused_whole(op.post(DEVICES + "/" + dev + "/telemetry", {"metrics": {"ro": -1}}))
            status, body = ready(st)
            check(status == 503 and body["store"] == "writes_failing" and body["breakers"]["store_writes"] == "open",
                  "ready with a read-only store: %d %r" % (status, body))
            check(breakers(st)["store_writes"] == 1 and opened(st, "store_writes") == opened0 + 1,
                  "store_writes open in /metrics: %r" % breakers(st))
            check(op.get(DEVICES + "/" + dev).status == 200, "a read of a read-only store")
            check(op.get(DEVICES + "/count").status == 200, "a count of a read-only store")
            check(op.get("/api/v2/telemetry/recent?device_id=" + dev).status == 200, "recent points")
            check(request(st.port, "GET", "/api/v2/health").status == 200, "health")
            # refusals leave nothing behind: descriptors and memory stay put
            warm(op, dev, writes=False)
            base = Footprint(st.backend.pid, "fcgi_sse (store read-only)")
            for i in range(40):
                problem(op.post(DEVICES, {"name": "ro-more-%d" % i, "metadata": {"pad": "x" * 600}}),
                        503, "dependency.unavailable")
                refused.append("ro-more-%d" % i)
            base.back()
        finally:
            os.chmod(st.store_dir, 0o755)
            os.chmod(db, 0o644)

        after_ok, after_refused = [], []
        ok = writes_work_again(op, after_ok, after_refused)
        check(ok, "writes accepted again once the store is writable: %d accepted, %d refused (503) since, "
              "in order %r" % (len(after_ok), len(after_refused),
                               ["201" if n in after_ok else "503" for n in sorted(
                                   after_ok + after_refused, key=lambda x: int(x.split("-")[1]))][-30:]))
        names = device_names(op)
        check(sorted(names) == sorted(made + after_ok),
              "stored: the accepted changes and nothing refused: extra %r, missing %r" %
              (sorted(set(names) - set(made + after_ok)), sorted(set(made + after_ok) - set(names))))
        check(op.get(DEVICES + "/" + dev).json()["name"] == "first", "the refused rename left no trace")
        pts = op.get("/api/v2/telemetry/recent?device_id=%s&limit=1000" % dev).json()["items"]
        check(len(pts) == points, "points: %d stored, %d accepted" % (len(pts), points))
        check(wait_until(lambda: ready(st)[0] == 200 and all_closed(st), 10),
              "ready and closed again: %r %r" % (ready(st), breakers(st)))
    finally:
        os.chmod(st.store_dir, 0o755)
        st.cleanup()


@test
def fault_postgres_made_read_only_then_writable_again(s, binary):
    """PostgreSQL's read-only store: the database set to
    default_transaction_read_only (what a standby answers) and the store's
    connections ended under it. Every change is refused whole (503
    dependency.unavailable), reads go on, the store_writes breaker opens
    and ready says writes_failing. The setting gone, changes are accepted
    again, by every worker, without a restart; nothing refused is stored."""
    import common
    import harness
    if harness.STORE != "postgres":
        raise harness.Skipped("store is SQLite (fault_store_made_read_only_then_writable_again)")
    cfg = json.loads(json.dumps(common.BASE_CONFIG))
    cfg["resilience"] = {"breaker_failures": 3, "breaker_open_ms": 2000}
    st = _stack(binary, cfg, name="pg-readonly")
    pg = harness.postgres()
    db = harness._dbname(st.config)
    try:
        tenant = new_tenant(st, (("op", "operator"),))
        op = Client(st.port, tenant, "op")
        made = ["first"] + ["warm-%d" % i for i in range(3)]
        dev = create(op, "first")["id"]
        for name in made[1:]:
            create(op, name)
        pg.psql("ALTER DATABASE %s SET default_transaction_read_only = on" % db, dbname="postgres")
        try:
            ended = pg.psql("SELECT count(pg_terminate_backend(pid, 5000)) FROM pg_stat_activity"
                            " WHERE datname = '%s' AND pid <> pg_backend_pid()" % db, dbname="postgres")
            check(int(ended) >= 1, "(harness) the store's connections ended: %r" % ended)
            refused = []
            for i in range(6):
                name = "ro-%d" % i
                refused.append(name)
                refused_whole(op.post(DEVICES, {"name": name, "metadata": {"i": i}}))
            refused_whole(send(op, "PATCH", DEVICES + "/" + dev, {"name": "renamed"}))
            refused_whole(op.post(DEVICES + "/" + dev + "/telemetry", {"metrics": {"ro": -1}}))
            status, body = ready(st)
            check(status == 503 and body["store"] == "writes_failing" and body["breakers"]["store_writes"] == "open",
                  "ready with a read-only database: %d %r" % (status, body))
            check(op.get(DEVICES + "/" + dev).status == 200, "a read of a read-only database")
            check(op.get(DEVICES + "/count").status == 200, "a count of a read-only database")
            check(request(st.port, "GET", "/api/v2/health").status == 200, "health")
        finally:
            pg.psql("ALTER DATABASE %s RESET default_transaction_read_only" % db, dbname="postgres")
        after_ok, after_refused = [], []
        check(writes_work_again(op, after_ok, after_refused),
              "writes accepted again once the database is writable: %d accepted, %d refused since" %
              (len(after_ok), len(after_refused)))
        names = device_names(op)
        check(sorted(names) == sorted(made + after_ok),
              "stored: the accepted changes and nothing refused: extra %r, missing %r" %
              (sorted(set(names) - set(made + after_ok)), sorted(set(made + after_ok) - set(names))))
        check(op.get(DEVICES + "/" + dev).json()["name"] == "first", "the refused rename left no trace")
        check(wait_until(lambda: ready(st)[0] == 200 and all_closed(st), 10),
              "ready and closed again: %r %r" % (ready(st), breakers(st)))
    finally:
        st.cleanup()


# ---------------------------------------------------------------- the disk full

class Tmpfs:
    """A tmpfs of `size` on a fresh directory (unmounted by cleanup)."""

    def __init__(self, size):
        self.dir = tempfile.mkdtemp(prefix="fcgi_sse_it_tmpfs_")
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=%s,mode=0755" % size, "tmpfs", self.dir],
                       check=True, capture_output=True)
        self.mounted = True

    def fill(self, name="filler"):
        """Writes a file until the file system is full; returns its size."""
        n = 0
        with open(os.path.join(self.dir, name), "wb", buffering=0) as f:
            for chunk in (1 << 16, 1 << 12, 1 << 9, 1):
                while True:
                    try:
                        n += f.write(b"\0" * chunk)
                    except OSError as e:
                        check(e.errno == errno.ENOSPC, "(harness) filling: %r" % e)
                        break
        return n

    def free(self, name="filler"):
        os.unlink(os.path.join(self.dir, name))

    def cleanup(self):
        if self.mounted:
            subprocess.run(["umount", self.dir], capture_output=True)
            self.mounted = False
        os.rmdir(self.dir)


@test
def fault_disk_full_refuses_changes_whole_and_recovers(s, binary):
    """The store on a tmpfs that fills up: telemetry batches and device
    creates are accepted or refused whole (503 dependency.unavailable),
    reads go on, ready says writes_failing; space freed, changes are
    accepted again. Nothing refused is stored, nothing accepted is lost."""
    import harness
    harness.skip_under_postgres("a full disk under a SQLite file (the server's disk is not ours)")
    fs = Tmpfs("8m")
    st = None
    try:
        st = _stack(binary, {"store": {"path": os.path.join(fs.dir, "fcgi_sse.db")}, "http": {"max_body_bytes": 65536},
                             "resilience": {"breaker_failures": 3, "breaker_open_ms": 1000}}, name="diskfull")
        tenant = new_tenant(st, (("op", "operator"),))
        op = Client(st.port, tenant, "op")
        devs = [create(op, "meter-%d" % i)["id"] for i in range(4)]
        made = ["meter-%d" % i for i in range(4)]
        check(wait_until(lambda: ready(st)[0] == 200, 10), "ready: %r" % (ready(st),))
        warm(op, devs[0])
        base = Footprint(st.backend.pid, "fcgi_sse")
        opened0 = opened(st, "store_writes")

        fs.fill()
        batches = {}  # batch number -> (device, ids or None when refused)
        run = 0
        for k in range(60):
            d = devs[k % len(devs)]
            r = op.post(DEVICES + "/" + d + "/telemetry",
                        {"points": [{"metrics": {"b": k, "i": j, "pad": 1e300}} for j in range(100)]})
            if r.status == 202:
                batches[k] = (d, r.json()["ids"])
                run = 0
            else:
                refused_whole(r)
                batches[k] = (d, None)
                run += 1
                if run == 4:
                    break
        check(run == 4, "a full disk refuses changes: %d batches accepted in a row" % len(batches))
        refused = []
        for i in range(3):
            name = "full-%d" % i
            r = op.post(DEVICES, {"name": name, "metadata": {"blob": "x" * 3000}})
            if r.status == 201:
                made.append(name)
            else:
                refused_whole(r)
                refused.append(name)
        status, body = ready(st)
        check(status == 503 and body["store"] == "writes_failing", "ready with the disk full: %d %r" % (status, body))
        check(breakers(st)["store_writes"] == 1 and opened(st, "store_writes") > opened0,
              "store_writes open in /metrics: %r" % breakers(st))
        for d in devs:
            check(op.get(DEVICES + "/" + d).status == 200, "a read with the disk full")
            check(op.get("/api/v2/telemetry/recent?device_id=%s&limit=1000" % d).status == 200, "recent points")
        check(op.get(DEVICES + "/count").status == 200, "a count with the disk full")

        fs.free()
        after_ok, after_refused = [], []
        check(writes_work_again(op, after_ok, after_refused),
              "writes accepted again once space is freed: %d accepted, %d refused since" %
              (len(after_ok), len(after_refused)))
        for d in devs:
            pts = op.get("/api/v2/telemetry/recent?device_id=%s&limit=1000" % d).json()["items"]
            by_batch = {}
            for p in pts:
                if "b" in p["metrics"]:  # (not a warm-up point)
                    by_batch.setdefault(p["metrics"]["b"], set()).add(p["id"])
            for k, (dev, ids) in batches.items():
                if dev != d:
                    continue
                if ids is None:
                    check(k not in by_batch, "refused batch %d stored %d points" % (k, len(by_batch.get(k, ()))))
                else:
                    check(by_batch.get(k) == set(ids), "accepted batch %d: %d of %d points stored" %
                          (k, len(by_batch.get(k, ())), len(ids)))
        names = device_names(op)
        check(sorted(names) == sorted(made + after_ok), "devices: the accepted and nothing refused: %r vs %r" %
              (sorted(set(names) ^ set(made + after_ok)), refused))
        check(wait_until(lambda: ready(st)[0] == 200 and all_closed(st), 10),
              "ready and closed again: %r %r" % (ready(st), breakers(st)))
        base.back()
    finally:
        if st is not None:
            st.cleanup()
        fs.cleanup()


# ---------------------------------------------------------------- a worker process killed

@test
def fault_spawned_backend_sigkilled_with_streams_open_clients_resume_on_its_restart(s, binary):
    """lighttpd runs fcgi_sse (bin-path) and restarts it when it dies; a
    second process B (its own lighttpd, the same store and Redis) holds a
    stream too. A's fcgi_sse is SIGKILLed while streams are open and events
    are published through both: A's clients resume on the process lighttpd
    starts anew with nothing lost, B is untouched and back at its baseline."""
    a = b = load = None
    resumers = []
    try:
        a = _stack(binary, spawn=True, name="kill-a")
        cfg_b = json.loads(json.dumps(a.config))
        b = _stack(binary, cfg_b, name="kill-b")
        check(wait_until(lambda: len(spawned_backends(a)) == 1, 5), "lighttpd started one fcgi_sse")
        old = spawned_backends(a).pop()
        tenant = new_tenant(a, (("op", "operator"), ("ana", "viewer")))
        op, ana = Client(b.port, tenant, "op"), Client(a.port, tenant, "ana")
        device = create(op, "load")["id"]
        sid = new_session(ana)
        resumers = [Resumer("A bearer", lambda last: bearer(a, ana, last)),
                    Resumer("A session", lambda last: session(a, ana, sid, last)),
                    Resumer("B bearer", lambda last: bearer(b, ana, last))]
        check(wait_until(lambda: all(r.connects == 1 and r.events for r in resumers), 5), "streams open")
        load = Load([a, b], tenant, op, device)
        check(wait_until(lambda: len(load.accepted) >= 30 and delivered(resumers, load), 15), "warm-up")
        load.pause()
        warm(op, device)
        base_b = Footprint(b.backend.pid, "fcgi_sse B")
        base_lighttpd = Footprint(a.lighttpd.pid, "lighttpd A")
        load.go.set()
        n0 = len(load.accepted)
        check(wait_until(lambda: len(load.accepted) >= n0 + 10, 10), "publishing")

        os.kill(old, signal.SIGKILL)
        check(wait_until(lambda: spawned_backends(a) - {old}, 15),
              "lighttpd started a new fcgi_sse: %r" % spawned_backends(a))
        new = (spawned_backends(a) - {old}).pop()
        check(wait_until(lambda: not _alive(old), 5), "the killed process was reaped")
        a_side = resumers[:2]
        check(wait_until(lambda: all(r.connects >= 2 for r in a_side), 15),
              "A's clients reconnected: %r" % [(r.label, r.connects, r.refusals[-3:]) for r in a_side])
        finish_load(load, resumers, "the restart")
        for r in a_side:
            check(r.connects >= 2 and r.ends, "%s: ended with its process and resumed (%r)" % (r.label, r.ends))
        check(resumers[2].connects == 1 and not resumers[2].ends, "B's stream stayed open: %r" % resumers[2].ends)
        check(set(load.reads) <= {200, 500, 502, 503}, "reads: %r" % load.reads)
        check(load.reads.get(200, 0) > 0, "reads answered")
        # a rename through B after everything: readable through both
        r = send(op, "PATCH", DEVICES + "/" + device, {"name": "final"})
        check(r.status == 200, "a rename after the restart: %d" % r.status)
        for st in (a, b):
            got = request(st.port, "GET", DEVICES + "/" + device, op.headers()).json()
            check(got["name"] == "final", "read through %s: %r" % (st.dir, got))
        pts = op.get("/api/v2/telemetry/recent?device_id=%s&limit=1000" % device).json()["items"]
        lost = set(load.points) - {p["id"] for p in pts}
        check(not lost, "accepted points lost: %r" % sorted(lost)[:10])
        check(wait_until(lambda: metric(a, "fcgi_sse_streams_open") == 2, 5),
              "the new process holds A's two streams: %r" % metric(a, "fcgi_sse_streams_open"))
        check(metric(b, "fcgi_sse_streams_open") == 1, "B holds its one stream")
        check(all_closed(a) and all_closed(b), "breakers closed: %r %r" % (breakers(a), breakers(b)))
        base_b.back()
        base_lighttpd.back(rss_slack_kb=16 * 1024)
        check(_alive(new), "the new fcgi_sse still runs")
    finally:
        if load is not None:
            load.done.set()
            load.go.set()
        stop_all(resumers)
        for st in (b, a):
            if st is not None:
                pids = spawned_backends(st) if st is a else set()
                st.cleanup()
                for pid in pids:
                    if _alive(pid):
                        os.kill(pid, signal.SIGKILL)


# ---------------------------------------------------------------- the front server restarted

@test
def fault_lighttpd_graceful_restart_ends_streams_cleanly_and_they_resume(s, binary):
    """lighttpd's graceful restart (SIGUSR1, in the background as
    deploy/lighttpd/fcgi_sse.conf sets it up) with streams open and events
    published: the old lighttpd ends its streams after its shutdown timeout
    at an event's end, the clients resume through the new one with nothing
    lost, and fcgi_sse frees the old streams."""
    st, load, resumers = None, None, []
    try:
        st = _stack(binary, name="graceful")
        tenant = new_tenant(st, (("op", "operator"), ("ana", "viewer")))
        op, ana = Client(st.port, tenant, "op"), Client(st.port, tenant, "ana")
        device = create(op, "load")["id"]
        sid = new_session(ana)
        resumers = [Resumer("bearer 1", lambda last: bearer(st, ana, last)),
                    Resumer("bearer 2", lambda last: bearer(st, ana, last)),
                    Resumer("session", lambda last: session(st, ana, sid, last))]
        check(wait_until(lambda: all(r.connects == 1 and r.events for r in resumers), 5), "streams open")
        load = Load([st], tenant, op, device)
        check(wait_until(lambda: len(load.accepted) >= 30 and delivered(resumers, load), 15), "warm-up")
        load.pause()
        warm(op, device)
        base = Footprint(st.backend.pid, "fcgi_sse")
        check(metric(st, "fcgi_sse_streams_open") == 3, "three streams open")
        load.go.set()

        st.lighttpd.send_signal(signal.SIGUSR1)
        # the old lighttpd lets its requests run for its 5 s shutdown timeout
        check(wait_until(lambda: all(r.connects >= 2 for r in resumers), 15),
              "every client resumed: %r" % [(r.label, r.connects, r.ends, r.refusals[-3:]) for r in resumers])
        for r in resumers:
            check(r.ends[0] == "clean", "%s: the old lighttpd ended the stream %s" % (r.label, r.ends[0]))
        check(wait_until(lambda: lighttpds(st) == {st.lighttpd.pid}, 10),
              "the old lighttpd is gone: %r" % lighttpds(st))
        finish_load(load, resumers, "the restart")
        # the old lighttpd, once its graceful shutdown timeout has passed,
        # closes every connection it still holds (connections.c,
        # connection_graceful_shutdown_maint: graceful_expire), a request
        # it took in its last moment included: that client sees the
        # connection closed without an answer, an outcome HTTP leaves
        # unknown (check_delivery allows such an event to arrive, once).
        # Seen once in many runs. Anything else is a failure.
        def unanswered(x):
            return isinstance(x, str) and ("bad status line ''" in x or "RemoteDisconnected" in x or
                                           "ConnectionResetError" in x)
        reads = {k: v for k, v in load.reads.items() if k != 200}
        check(all(unanswered(k) for k in reads) and sum(reads.values()) <= 2,
              "reads through the restart: %r" % load.reads)
        check(not load.write_refusals, "changes through the restart: %r" % load.write_refusals[:5])
        check(all(unanswered(v) for v in load.refused.values()) and len(load.refused) <= 2,
              "publishes refused during the restart: %r" % load.refused)
        check_writes_readable(st, op, load)
        check(wait_until(lambda: metric(st, "fcgi_sse_streams_open") == 3, 5),
              "fcgi_sse freed the old streams: %r open" % metric(st, "fcgi_sse_streams_open"))
        check(st.backend.poll() is None, "fcgi_sse kept running")
        base.back()
    finally:
        if load is not None:
            load.done.set()
            load.go.set()
        stop_all(resumers)
        if st is not None:
            st.cleanup()
            for pid in lighttpds(st):
                os.kill(pid, signal.SIGKILL)


# ---------------------------------------------------------------- slow and stalled clients

def stalled_stream(st, c):
    """A stream client that reads the head and then nothing: a tiny
    receive buffer, so what it is owed piles up in lighttpd and fcgi_sse."""
    so = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    so.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1024)
    so.settimeout(10)
    so.connect(("127.0.0.1", st.port))
    hdr = "".join("%s: %s\r\n" % kv for kv in c.headers().items())
    so.sendall(("GET /api/v2/events/stream HTTP/1.0\r\nHost: 127.0.0.1\r\n%s\r\n" % hdr).encode())
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = so.recv(1)
        check(chunk, "stalled stream: EOF in the head")
        head += chunk
    check(head.startswith(b"HTTP/1.0 200"), "stalled stream opened: %r" % head[:40])
    return so


@test
def fault_stalled_clients_are_dropped_without_delaying_others_and_resume_without_loss(s, binary):
    """Three clients that stop reading while large events are published
    fast: each is dropped as slow (stream_end dropped_slow,
    fcgi_sse_streams_dropped_slow_total, fcgi_sse_events_dropped_total),
    the two reading clients keep pace and stay open, each dropped client
    then reads what it got and resumes with nothing lost. Twice: fcgi_sse's
    memory and descriptors after the second round are back at what they
    were after the first (the first leaves glibc's heap grown by the
    resumes' large replies, and whether it gives that back is malloc's
    choice: once 22.3 MB against a baseline of 15.2 taken before it)."""
    st = None
    normals, stalled, resumed = [], [], []
    try:
        st = _stack(binary, {"sse": {"max_buffer_bytes": 131072}, "http": {"max_body_bytes": 65536}},
                    name="stalled")
        tenant = new_tenant(st, (("ana", "viewer"),))
        c = Client(st.port, tenant, "ana")
        normals = [Resumer("reader %d" % i, lambda last: bearer(st, c, last)) for i in range(2)]
        check(wait_until(lambda: all(r.connects == 1 and r.events for r in normals), 5), "streams open")
        pad = "x" * 24000
        warm = [published_id(publish(st.port, tenant, TYPE, {"n": -i, "pad": pad})) for i in range(1, 11)]
        check(wait_until(lambda: all(len(r.seq()) == 10 for r in normals), 5), "warm-up delivered")
        base = None
        n, window = 300, 4
        every = list(warm)
        for rnd in range(2):
            dropped0 = metric(st, "fcgi_sse_streams_dropped_slow_total")
            ev_dropped0 = metric(st, "fcgi_sse_events_dropped_total")
            had = len(every)
            stalled = [stalled_stream(st, c) for _ in range(3)]
            check(wait_until(lambda: metric(st, "fcgi_sse_streams_open") == 5, 5), "five streams open")
            ids = []
            for i in range(n):
                # a reader that keeps up has a few events in flight at most; a
                # stalled client holding delivery up would stop it here
                kept_up = wait_until(lambda: all(len(r.seq()) >= had + i - window for r in normals), 10, 0.002)
                check(kept_up, "round %d, event %d: the reading clients fell behind: %r" %
                      (rnd, i, [len(r.seq()) - had for r in normals]))
                ids.append(published_id(publish(st.port, tenant, TYPE, {"n": i, "pad": pad})))
            every += ids
            check(wait_until(lambda: all(len(r.seq()) == len(every) for r in normals), 10),
                  "the reading clients got everything: %r" % [len(r.seq()) for r in normals])
            check(wait_until(lambda: len(stream_ends(st, "dropped_slow")) >= 3 * (rnd + 1), 10),
                  "the stalled clients were dropped: %r" % [m.get("reason") for m in stream_ends(st)])
            check(len(stream_ends(st, "dropped_slow")) == 3 * (rnd + 1),
                  "only the stalled ones: %r" % stream_ends(st, "dropped_slow"))
            check(metric(st, "fcgi_sse_streams_dropped_slow_total") == dropped0 + 3, "streams_dropped_slow_total +3")
            check(metric(st, "fcgi_sse_events_dropped_total") >= ev_dropped0 + 3, "events_dropped_total grew")
            check(wait_until(lambda: metric(st, "fcgi_sse_streams_open") == 2, 5),
                  "two streams open: %r" % metric(st, "fcgi_sse_streams_open"))
            for r in normals:
                check(r.connects == 1 and not r.ends, "%s: never dropped (%r)" % (r.label, r.ends))
                check([e["id"] for e in r.seq()] == every, "%s: every event once, in order" % r.label)

            for k, so in enumerate(stalled):
                # what the dropped client was sent before its end, then a resume
                f = so.makefile("rb")
                got, last = [], None
                while True:
                    ev = read_event(f.readline, types.SimpleNamespace(retry=None))
                    if ev is None:
                        break
                    ev = ev[1]
                    last = ev["id"] if ev["id"] is not None else last
                    if ev["event"] == TYPE:
                        got.append(ev["id"])
                f.close()
                so.close()
                check(last is not None and got, "stalled client %d got some events before its drop" % k)
                es = bearer(st, c, last)
                resumed.append(es)
                check(es.status == 200, "stalled client %d resumes: %d" % (k, es.status))
                before = len(got)
                more = read_events(es, n - before + 1, timeout=10, skip=("ping",))  # connected, then the rest
                got += [e["id"] for e in more if e["event"] == TYPE]
                check(more and more[0]["event"] == "connected" and more[0]["id"] == last,
                      "stalled client %d: the resume starts at %s: %r" % (k, last, more[:1]))
                check(got == ids, "round %d, stalled client %d: %d events before the drop (the last id seen "
                      "%s), %d after the resume (first %r; stream ended: %r, stream_end reasons %r), %d "
                      "published; missing %r" %
                      (rnd, k, before, last, len(got) - before, [(e["event"], e["id"]) for e in more[:3]],
                       es.closed, [m.get("reason") for m in stream_ends(st)][-2:], len(ids),
                       [i for i in ids if i not in got][:5]))
            for es in resumed:
                es.close()
            resumed = []
            stalled = []
            check(wait_until(lambda: metric(st, "fcgi_sse_streams_open") == 2, 5), "the resumed streams freed")
            if base is None:
                base = Footprint(st.backend.pid, "fcgi_sse")
        base.back()
    finally:
        for so in stalled:
            so.close()
        for es in resumed:
            es.close()
        stop_all(normals)
        if st is not None:
            st.cleanup()


# ---------------------------------------------------------------- thousands of connects

def _open_streams(st, clients, n, threads=4):
    """n streams: of every three, two tenant streams (by bearer, the
    clients in turn) and one /version/stream. Returns [(kind, stream)]."""
    out = [None] * n
    errors = []

    def opener(k):
        try:
            for i in range(k, n, threads):
                if i % 3 == 2:
                    out[i] = ("version", EventStream(st.port, "/api/v2/version/stream"))
                else:
                    out[i] = ("tenant", open_bearer(clients[i % len(clients)]))
        except Exception as e:  # reported below
            errors.append(repr(e))

    ts = [threading.Thread(target=opener, args=(k,)) for k in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(120)
    streams = [x for x in out if x is not None]
    check(not errors, "opening %d streams: %r" % (n, errors[:3]))
    bad = [es.status for _, es in streams if es.status != 200]
    check(len(streams) == n and not bad, "%d of %d streams opened; refused: %r" % (len(streams), n, bad[:10]))
    return streams


def _close_at_once(streams):
    """Half reset (SO_LINGER 0: RST), half closed cleanly (FIN: what has
    arrived is read first, since a close with unread data sends a reset;
    a ping arriving in between makes one a reset all the same)."""
    for i, (_, es) in enumerate(streams):
        if i % 2:
            es.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        else:
            es.sock.setblocking(False)
            try:
                while es.sock.recv(65536):
                    pass
            except OSError:
                pass
        es.close()


@test
def fault_thousands_of_streams_opened_and_dropped_at_once_leave_nothing_behind(s, binary):
    """Two rounds of 3,000 streams opened (tenant and version streams) with
    API requests alongside, then all closed at once, half by RST, half by
    FIN. After the second round fcgi_sse_streams_open is 0 and fcgi_sse's
    and lighttpd's descriptors and memory are back at what they were after
    the first."""
    n = 3000
    limit = _raise_nofile(20000)
    check(limit >= 2 * n + 500, "open-file limit %d too low for %d streams" % (limit, n))
    st = _stack(binary, {"sse": {"max_streams": n + 200}, "ratelimit": {"stream_opens_per_min": 0}},
                name="thousands")
    streams = []
    try:
        tenant = new_tenant(st, (("ana", "viewer"), ("bo", "viewer"), ("op", "operator")))
        clients = [Client(st.port, tenant, u) for u in ("ana", "bo")]
        op = Client(st.port, tenant, "op")
        device = create(op, "dev")["id"]
        feet = {}
        for rnd in range(2):
            opened_before = metric(st, "fcgi_sse_streams_opened_total")
            api, stop = {}, threading.Event()

            def api_load():
                i = 0
                while not stop.is_set():
                    if i % 3 == 0:
                        r = request(st.port, "GET", "/api/v2/health")
                    elif i % 3 == 1:
                        r = op.get(DEVICES + "/" + device)
                    else:
                        r = publish(st.port, tenant, "churn", {"i": i})
                    api[r.status] = api.get(r.status, 0) + 1
                    i += 1

            t = threading.Thread(target=api_load, daemon=True)
            t.start()
            try:
                streams = _open_streams(st, clients, n)
            finally:
                stop.set()
                t.join(10)
            check(set(api) <= {200, 202} and api, "round %d: API answers while streams opened: %r" % (rnd, api))
            check(wait_until(lambda: metric(st, "fcgi_sse_streams_open") == n, 10),
                  "round %d: %r streams open, want %d" % (rnd, metric(st, "fcgi_sse_streams_open"), n))
            check(metric(st, "fcgi_sse_streams_opened_total") - opened_before == n, "round %d: opens counted" % rnd)
            eid = published_id(publish(st.port, tenant, TYPE, {"round": rnd}))
            for kind, es in streams[::97]:
                if kind == "tenant":
                    got = read_events(es, 1, timeout=5, skip=("ping", "connected", "churn"))
                    check([e["id"] for e in got] == [eid], "round %d: a tenant stream got %r" % (rnd, got))
                else:
                    got = es.next_event()
                    check(got and got[1]["event"] == "version_info", "round %d: a version stream got %r" % (rnd, got))
            _close_at_once(streams)
            streams = []
            # a reset is seen at once; a clean close behind lighttpd at the
            # next heartbeat (1 s)
            check(wait_until(lambda: metric(st, "fcgi_sse_streams_open") == 0, 15),
                  "round %d: %r streams still open after every client left" %
                  (rnd, metric(st, "fcgi_sse_streams_open")))
            if rnd == 0:
                # settled: nothing more to free
                time.sleep(0.5)
                feet = {"fcgi_sse": Footprint(st.backend.pid, "fcgi_sse"),
                        "lighttpd": Footprint(st.lighttpd.pid, "lighttpd")}
        feet["fcgi_sse"].back(rss_slack_kb=8 * 1024)
        # lighttpd keeps its connection, request and chunk pools until its
        # once-a-minute cleanup (server.c, server_handle_sigalrm: every 64
        # s of its clock, then malloc_trim): a baseline taken just after
        # one and a look before the next differ by the pools of n
        # connections, measured at ~6 KiB each (17.7 MB once for 3,000)
        feet["lighttpd"].back(fd_slack=FD_SLACK, rss_slack_kb=n * 8)
        check(st.get("/api/v2/health").status == 200, "still serving")
        es = open_bearer(clients[0])
        try:
            check(es.status == 200 and es.next_event()[1]["event"] == "connected", "a new stream after")
        finally:
            es.close()
    finally:
        _close_at_once(streams)
        st.cleanup()

