"""Redis Sentinel (issue #16): fcgi_sse pointed at three sentinels that
watch a master and its replica, all real processes of this module's own
on free loopback ports. Streams are open and events published while the
master is failed over (SENTINEL FAILOVER), SIGKILLed, or SIGSTOPped until
the sentinels elect the replica. Afterwards every event answered 202
reaches every resuming stream exactly once and in order (and is in the new
master's history), /api/v2/ready is 200 again, the session cache and the
stream quotas work against the new master, and a logout still ends a stream
opened before the fault.

Registered by run.py (import sentinel_tests); also runnable on its own:
python3 tests/integration/sentinel_tests.py --binary build/fcgi_sse [-k ...]"""

import os
import shutil
import signal
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from auth_tests import Client, claims_of, new_tenant  # noqa: E402
from bus_tests import bearer, session  # noqa: E402
from common import _stack, check, problem, test  # noqa: E402
from devices_tests import create  # noqa: E402
from events_tests import STREAM, connected, new_session, read_to_eof  # noqa: E402
from fault_tests import Load, Resumer, all_closed, breakers, finish_load, ready, stop_all  # noqa: E402
from harness import EventStream, RedisServer, free_port, stop_process, wait_until  # noqa: E402

MASTER = "fcgi_sse"
QUOTA = 4  # sse.max_streams_per_user of these stacks


class Node(RedisServer):
    """A redis-server (no persistence) in dir, optionally the replica of
    another; or, with sentinel_of, a sentinel watching that master."""

    def __init__(self, dir, name, replica_of=None, sentinel_of=None):
        self.dir = dir
        self.name = name
        self.port = free_port()
        self.replica_of, self.sentinel_of = replica_of, sentinel_of
        self.proc = None
        self.persist = False

    def start(self):
        log = open(os.path.join(self.dir, self.name + ".log"), "ab")
        if self.sentinel_of is not None:
            # a sentinel rewrites its config file: one of its own, writable
            conf = os.path.join(self.dir, self.name + ".conf")
            with open(conf, "w") as f:
                f.write("port %d\nbind 127.0.0.1\ndir %s\n" % (self.port, self.dir) +
                        "sentinel monitor %s 127.0.0.1 %d 2\n" % (MASTER, self.sentinel_of.port) +
                        "sentinel down-after-milliseconds %s 1000\n" % MASTER +
                        "sentinel failover-timeout %s 5000\n" % MASTER)
            args = ["redis-server", conf, "--sentinel"]
        else:
            args = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                    "--appendonly", "no", "--dir", self.dir, "--dbfilename", self.name + ".rdb",
                    # a replica that (re)joins is synced at once, not 5 s later
                    "--repl-diskless-sync-delay", "0"]
            if self.replica_of is not None:
                args += ["--replicaof", "127.0.0.1", str(self.replica_of.port)]
        self.proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
        log.close()
        if not wait_until(self.ping, 10):
            raise RuntimeError("%s did not start: %s" % (self.name, self.read(self.name + ".log")))
        return self

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGCONT)  # a stopped one cannot act on SIGTERM
        stop_process(self.proc)
        self.proc = None

    def try_command(self, *args):
        try:
            return self.command(*args, timeout=1)
        except (OSError, ValueError):
            return None

    def role(self):
        r = self.try_command("ROLE")
        return r[0].decode() if r else None


class Cluster:
    """A master, one replica and three sentinels (quorum 2)."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="fcgi_sse_it_sentinel_")
        self.master = Node(self.dir, "master")
        self.replica = Node(self.dir, "replica", replica_of=self.master)
        self.sentinels = [Node(self.dir, "sentinel%d" % i, sentinel_of=self.master) for i in range(3)]

    def start(self):
        self.master.start()
        self.replica.start()
        for s in self.sentinels:
            s.start()
        check(wait_until(self.replica_in_sync, 15), "the replica did not sync: %s" % self.replica.read("replica.log"))
        # a failover needs every sentinel to know the replica and the others
        check(wait_until(self.sentinels_ready, 20), "the sentinels did not find each other and the replica")
        return self

    def replica_in_sync(self, node=None):
        info = (node or self.replica).try_command("INFO", "replication")
        return info is not None and b"master_link_status:up" in info

    def sentinels_ready(self):
        for s in self.sentinels:
            reps = s.try_command("SENTINEL", "REPLICAS", MASTER)
            others = s.try_command("SENTINEL", "SENTINELS", MASTER)
            if not reps or others is None or len(others) != 2:
                return False
            if not any(b"s_down" not in r[r.index(b"flags") + 1] for r in reps):
                return False
        return True

    def spec(self):
        return ",".join("127.0.0.1:%d" % s.port for s in self.sentinels)

    def master_port(self, sentinel=None):
        """The master's port as every sentinel (or the one given) names it
        (None while they disagree or one does not answer)."""
        ports = set()
        for s in [sentinel] if sentinel else self.sentinels:
            addr = s.try_command("SENTINEL", "GET-MASTER-ADDR-BY-NAME", MASTER)
            if not addr:
                return None
            ports.add(int(addr[1]))
        return ports.pop() if len(ports) == 1 else None

    def node_of(self, port):
        return next(n for n in (self.master, self.replica) if n.port == port)

    def cleanup(self):
        for n in self.sentinels + [self.replica, self.master]:
            n.stop()
        if os.environ.get("KEEP_TEST_DIRS") != "1":
            shutil.rmtree(self.dir, ignore_errors=True)


def sentinel_stack(binary, cluster, name):
    """A stack whose Redis is found through the cluster's sentinels; its
    redis.host names a closed port, so nothing reaches a Redis but
    through them."""
    return _stack(binary, {
        "redis": {"sentinels": cluster.spec(), "sentinel_master": MASTER,
                  "host": "127.0.0.1", "port": free_port(),
                  "backoff_max_ms": 200, "command_timeout_ms": 200, "connect_timeout_ms": 200},
        "sse": {"ready_probe_max_age_ms": 2500, "max_streams_per_user": QUOTA},
        "resilience": {"breaker_failures": 3, "breaker_open_ms": 300}}, name=name)


def history_ids(node, tenant_id):
    return {e[0].decode() for e in node.command("XRANGE", "fcgi_sse:{%s}:events" % tenant_id, "-", "+")}


def keys_like(node, pattern):
    return node.command("KEYS", pattern) or []


def check_cache_on(st, node, c):
    """The session cache writes to node: its sess: keys removed there, a
    request authenticated with c's token caches the session there again."""
    for k in keys_like(node, "*sess:*"):
        node.command("DEL", k)
    check(c.get("/api/v2/me").status == 200, "/me after the failover")
    check(wait_until(lambda: keys_like(node, "*sess:*"), 5),
          "the session cache wrote nothing to the new master (keys %r)" % keys_like(node, "*"))


def check_quota(st, tenant):
    """QUOTA streams of a user that has none open, then one more: 429
    rate.limited, which only the quota in Redis says (while Redis is
    unreachable the quotas let streams through)."""
    bob = Client(st.port, tenant, "bob")
    streams = []
    try:
        for _ in range(QUOTA):
            es = EventStream(st.port, STREAM, bob.headers())
            streams.append(es)
            connected(es)
        r = EventStream(st.port, STREAM, bob.headers())
        streams.append(r)
        check(r.status == 429, "stream %d of a user allowed %d: status %d" % (QUOTA + 1, QUOTA, r.status))
    finally:
        for es in streams:
            es.close()


def _sentinel_fault(binary, how):
    cluster = Cluster().start()
    st, load, resumers, doomed = None, None, [], None
    try:
        st = sentinel_stack(binary, cluster, "sentinel-" + how)
        tenant = new_tenant(st, (("op", "operator"), ("ana", "viewer"), ("eve", "viewer"), ("bob", "viewer")))
        op, ana, eve = (Client(st.port, tenant, u) for u in ("op", "ana", "eve"))
        device = create(op, "load")["id"]
        sid = new_session(ana)
        check(wait_until(lambda: ready(st)[0] == 200, 10), "ready before the fault: %r" % (ready(st),))
        resumers = [Resumer("bearer stream", lambda last: bearer(st, ana, last)),
                    Resumer("session stream", lambda last: session(st, ana, sid, last))]
        check(wait_until(lambda: all(r.connects == 1 and r.events for r in resumers), 5), "streams open")
        doomed = EventStream(st.port, STREAM, eve.headers())  # logged out after the fault
        connected(doomed)
        load = Load([st], tenant, op, device)
        check(wait_until(lambda: len(load.accepted) >= 30, 15), "warm-up: %d published" % len(load.accepted))
        old, new = cluster.master, cluster.replica
        check(cluster.master_port() == old.port, "the sentinels name the master")
        check(cluster.replica_in_sync(), "the replica is in sync before the fault")

        if how == "failover":
            check(cluster.sentinels[0].command("SENTINEL", "FAILOVER", MASTER) == b"OK", "SENTINEL FAILOVER")
        elif how == "kill":
            os.kill(old.proc.pid, signal.SIGKILL)
        else:
            os.kill(old.proc.pid, signal.SIGSTOP)
        check(wait_until(lambda: cluster.master_port() == new.port and new.role() == "master", 30),
              "the sentinels promoted the replica (they name %r)" % cluster.master_port())
        check(wait_until(lambda: ready(st)[0] == 200, 20), "ready again after the failover: %r" % (ready(st),))
        # the new master has no replica until the old node is back as one:
        # publishing is refused meanwhile (nothing it accepted could be
        # lost in the next failover), nothing else is
        if how == "kill":
            old.start()  # the node back, empty
        elif how == "stop":
            os.kill(old.proc.pid, signal.SIGCONT)  # back, still taking itself for the master
        check(wait_until(lambda: old.role() == "slave" and cluster.replica_in_sync(old), 40),
              "the sentinels made the old master a replica of the new one (role %r)" % old.role())
        n1 = len(load.accepted)
        check(wait_until(lambda: len(load.accepted) >= n1 + 10, 15),
              "publishing goes on once the new master has a replica: %d accepted" % (len(load.accepted) - n1))
        finish_load(load, resumers, "the failover")
        # nothing accepted was left behind on the old master
        kept = history_ids(new, claims_of(op.token)["tid"])
        lost = [p for p in load.accepted if p[0] not in kept]
        check(not lost, "accepted events missing from the new master's history: %r" % lost[:10])
        check(set(load.refused.values()) <= {503}, "publishes refused other than 503: %r" % load.refused)
        # (the outbox's late events may have tripped the store's write
        # breaker meanwhile: see the report of issue #16 on the drain)
        check(wait_until(lambda: all_closed(st), 15), "breakers closed again: %r" % breakers(st))

        check_cache_on(st, new, ana)
        check_quota(st, tenant)
        check(eve.post("/api/v2/auth/logout").status == 204, "logout after the failover")
        got, eof = read_to_eof(doomed)
        events = [ev["event"] for _, ev in got]
        check(eof and events and events[-1] == "revoked",
              "a stream opened before the failover ends on logout: %r (eof %r)" % (events, eof))
        problem(eve.get("/api/v2/me"), 401, "auth.session_revoked")
        check(ready(st)[0] == 200, "ready at the end: %r" % (ready(st),))
    finally:
        if load is not None:
            load.done.set()
            load.go.set()
        stop_all(resumers)
        if doomed is not None:
            doomed.close()
        if st is not None:
            st.cleanup()
        cluster.cleanup()


@test
def sentinel_failover_command_loses_no_accepted_event(s, binary):
    _sentinel_fault(binary, "failover")


@test
def sentinel_master_killed_loses_no_accepted_event(s, binary):
    _sentinel_fault(binary, "kill")


@test
def sentinel_master_stopped_then_back_as_replica_loses_no_accepted_event(s, binary):
    _sentinel_fault(binary, "stop")


if __name__ == "__main__":
    import run  # noqa: E402  (imports every other module's tests)
    import common
    if "sentinel_tests" in sys.modules:  # run.py registers this module itself
        common.TESTS[:] = [t for t in common.TESTS if t.__module__ != "__main__"]
    sys.exit(run.main())
