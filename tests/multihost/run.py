#!/usr/bin/env python3
"""The multi-host test (issue #16): fcgi_sse deployed on several "hosts" of
one machine, each a network namespace with its own address, its own
lighttpd on :8080 and its own fcgi_sse behind it, sharing one PostgreSQL
store and one Redis (a master, a replica and three sentinels) in a fourth
namespace, `core`. The driver runs in the root namespace, on the bridge
that joins them, and plays the clients and the load balancer: it cuts a
host's link, kills a host, fails Redis over and revokes a login while
streams are open, and checks that every accepted event reaches every
stream exactly once, in order, with the same id everywhere.

Run as root (namespaces, veths, a bridge):
    python3 tests/multihost/run.py --binary build/fcgi_sse
Python's standard library only. Everything it makes (processes, namespaces,
links, its temp dir) goes in a finally path, also on SIGINT and SIGTERM;
what an earlier run that was killed left (same name prefix, its owner pid
gone) is removed at start. docs/SCALING.md, "The multi-host test"."""

import argparse
import base64
import atexit
import ipaddress
import json
import os
import random
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
from harness import read_event  # noqa: E402

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
LIGHTTPD_FCGI_CONF = os.path.join(ROOT, "deploy", "lighttpd", "fcgi_sse.conf")

PREFIX = "fsmh"                      # netns, link and temp dir names start so
DIR_PREFIX = "fcgi_sse_multihost_"   # under the temp dir: <prefix><suffix>
SUFFIX_LEN = 6                       # hex characters (link names: 15 at most)
HOSTS = ("h1", "h2", "h3")
HTTP_PORT = 8080
PG_PORT = 5432
REDIS_PORT = 6379                    # the master at first; replicas on the ports after it
SENTINEL_PORTS = (26379, 26380, 26381)
MASTER_NAME = "fcgi_sse"
SECRET = "mh-internal-secret-7d2e91"
PASSWORD = "mh-password-123"
TYPE = "mh.seq"
# base64url of 32 random bytes, made once per run
JWT_SECRET = base64.urlsafe_b64encode(os.urandom(32)).decode().rstrip("=")
HEARTBEAT_MS = 500
RETRY_MS = 300
# a client that has heard nothing (not even a ping) for this long takes its
# connection for dead, as clients/js's monitor does
WATCHDOG_S = 4 * HEARTBEAT_MS / 1000
PUBLISH_RATE = 20.0                  # events a second, per publisher


def log(msg):
    print("  " + msg, flush=True)


def wait_until(pred, timeout, step=0.05):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            if pred():
                return True
        except (OSError, ValueError):
            pass
        time.sleep(step)
    try:
        return bool(pred())
    except (OSError, ValueError):
        return False


class Failure(Exception):
    pass


def check(cond, msg):
    if not cond:
        raise Failure(msg)


def sh(*args, check_rc=True, timeout=30, **kw):
    p = subprocess.run(list(args), capture_output=True, text=True, timeout=timeout, **kw)
    if check_rc and p.returncode != 0:
        raise RuntimeError("%s: exit %d: %s" % (" ".join(args), p.returncode, p.stderr.strip()))
    return p


# ---------------------------------------------------------------- HTTP and SSE

class Response:
    def __init__(self, status, headers, body):
        self.status, self.headers, self.body = status, headers, body

    def header(self, name):
        for k, v in self.headers:
            if k.lower() == name.lower():
                return v
        return None

    def json(self):
        return json.loads(self.body.decode("utf-8"))

    def code(self):
        """The problem code of an error answer, or None."""
        try:
            return self.json().get("code")
        except (ValueError, AttributeError):
            return None


def _head(f):
    line = f.readline().decode("latin-1")
    parts = line.split(" ", 2)
    if len(parts) < 2 or not parts[1].isdigit():
        raise OSError("bad status line %r" % line)
    headers = []
    while True:
        h = f.readline().decode("latin-1")
        if h in ("", "\r\n", "\n"):
            break
        k, _, v = h.partition(":")
        headers.append((k.strip(), v.strip()))
    return int(parts[1]), headers


def _send(sock, addr, method, path, headers, body):
    lines = ["%s %s HTTP/1.0" % (method, path), "Host: %s:%d" % (addr, HTTP_PORT)]
    lines += ["%s: %s" % kv for kv in (headers or {}).items()]
    if body is not None:
        lines.append("Content-Length: %d" % len(body))
    sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + (body or b""))


def http(addr, method, path, headers=None, body=None, timeout=5.0):
    """One HTTP/1.0 request to a host's lighttpd; raises OSError when the
    host cannot be reached within timeout."""
    with socket.create_connection((addr, HTTP_PORT), timeout=timeout) as s:
        _send(s, addr, method, path, headers, body)
        f = s.makefile("rb")
        status, hdrs = _head(f)
        data = f.read()
        f.close()
        return Response(status, hdrs, data)


def post_json(addr, path, obj, headers=None, timeout=5.0):
    h = dict(headers or {})
    h["Content-Type"] = "application/json"
    return http(addr, "POST", path, h, json.dumps(obj).encode(), timeout)


class SSE:
    """One event-stream connection, parsed by the WHATWG rules. A read
    that waits longer than read_timeout raises socket.timeout."""

    def __init__(self, addr, path, headers, connect_timeout=1.0, read_timeout=WATCHDOG_S):
        self.sock = socket.create_connection((addr, HTTP_PORT), timeout=connect_timeout)
        try:
            h = dict(headers or {})
            h["Accept"] = "text/event-stream"
            _send(self.sock, addr, "GET", path, h, None)
            self.sock.settimeout(read_timeout)
            self.f = self.sock.makefile("rb")
            self.status, self.headers = _head(self.f)
        except BaseException:
            self.sock.close()
            raise
        self.retry = None

    def body(self):
        return self.f.read()

    def next_event(self):
        """{'id', 'event', 'data'} or None at EOF (the integration tests'
        WHATWG parser; a retry field sets self.retry)."""
        got = read_event(self.f.readline, self)
        return got[1] if got else None

    def close(self):
        for o in (getattr(self, "f", None), self.sock):
            try:
                if o is self.sock:
                    o.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            try:
                if o is not None:
                    o.close()
            except OSError:
                pass


def id_key(eid):
    ms, _, seq = eid.partition("-")
    return int(ms), int(seq)


# ---------------------------------------------------------------- RESP

def resp_command(addr, port, *args, timeout=2.0):
    """One Redis (or sentinel) command; the decoded reply. An error reply
    raises RuntimeError."""
    with socket.create_connection((addr, port), timeout=timeout) as s:
        out = b"*%d\r\n" % len(args)
        for a in args:
            a = a if isinstance(a, bytes) else str(a).encode()
            out += b"$%d\r\n%s\r\n" % (len(a), a)
        s.sendall(out)
        return _resp_read(s.makefile("rb"))


def _resp_read(f):
    line = f.readline()
    if not line:
        raise OSError("connection closed")
    kind, rest = line[:1], line[1:-2]
    if kind == b"+":
        return rest.decode()
    if kind == b"-":
        raise RuntimeError(rest.decode())
    if kind == b":":
        return int(rest)
    if kind == b"$":
        n = int(rest)
        return None if n < 0 else f.read(n + 2)[:-2].decode()
    if kind == b"*":
        n = int(rest)
        return None if n < 0 else [_resp_read(f) for _ in range(n)]
    raise OSError("bad RESP line %r" % line)


def info_fields(text):
    out = {}
    for line in (text or "").splitlines():
        k, sep, v = line.partition(":")
        if sep:
            out[k.strip()] = v.strip()
    return out


# ---------------------------------------------------------------- the testbed

def _owner_alive(suffix):
    """Whether the run that made names with this suffix still runs."""
    try:
        with open(os.path.join(tempfile.gettempdir(), DIR_PREFIX + suffix, "owner.pid")) as f:
            pid = int(f.read().strip())
        with open("/proc/%d/stat" % pid) as f:
            state = f.read().rpartition(")")[2].split()[0]
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            argv = f.read().split(b"\0")
    except (OSError, ValueError, IndexError):
        return False
    # a zombie is dead (a killed run whose parent has not reaped it yet),
    # and a pid used again by another program is not the owner
    return state != "Z" and any(a.endswith(b"run.py") for a in argv)


def _kill_pids(pids):
    for sig in (signal.SIGTERM, signal.SIGKILL):
        alive = []
        for pid in pids:
            try:
                os.kill(pid, sig)
                alive.append(pid)
            except OSError:
                pass
        if not alive:
            return
        wait_until(lambda: not [p for p in alive if os.path.exists("/proc/%d" % p)], 3)
        pids = alive


def _netns_pids(ns):
    p = sh("ip", "netns", "pids", ns, check_rc=False)
    return [int(x) for x in p.stdout.split() if x.isdigit()]


def clean_leftovers():
    """Removes what earlier runs that were killed left behind: namespaces
    (and every process still in them), links and temp dirs whose suffix
    belongs to no live run. A run going on in parallel keeps its own."""
    removed = []
    for line in sh("ip", "netns", "list", check_rc=False).stdout.splitlines():
        name = line.split()[0] if line.split() else ""
        if name.startswith(PREFIX + "-"):
            suffix = name.split("-")[1]
            if not _owner_alive(suffix):
                _kill_pids(_netns_pids(name))
                sh("ip", "netns", "del", name, check_rc=False)
                removed.append(name)
    for line in sh("ip", "-o", "link", "show", check_rc=False).stdout.splitlines():
        parts = line.split(":")
        if len(parts) < 2:
            continue
        name = parts[1].strip().split("@")[0]
        if name.startswith(PREFIX) and len(name) > len(PREFIX) + SUFFIX_LEN:
            if not _owner_alive(name[len(PREFIX):len(PREFIX) + SUFFIX_LEN]):
                sh("ip", "link", "del", name, check_rc=False)
                removed.append(name)
    tmp = tempfile.gettempdir()
    for d in os.listdir(tmp):
        if d.startswith(DIR_PREFIX) and not _owner_alive(d[len(DIR_PREFIX):]):
            shutil.rmtree(os.path.join(tmp, d), ignore_errors=True)
            removed.append(d)
    if removed:
        log("removed leftovers of an earlier run: " + ", ".join(removed))


def pick_subnet():
    """A random /24 in 10.0.0.0/8 that no route or address of this machine
    touches (other runs' bridges included)."""
    used = []
    for cmd in (("ip", "-4", "route", "show", "table", "all"), ("ip", "-4", "-o", "addr", "show")):
        for line in sh(*cmd, check_rc=False).stdout.split("\n"):
            for word in line.split():
                if word[:1].isdigit() and ("/" in word or word.count(".") == 3):
                    try:
                        net = ipaddress.ip_network(word, strict=False)
                    except ValueError:
                        continue
                    if net.prefixlen > 0:
                        used.append(net)
    for _ in range(200):
        cand = ipaddress.ip_network("10.%d.%d.0/24" % (random.randint(1, 254), random.randint(0, 255)))
        if not any(cand.overlaps(u) for u in used):
            return cand
    raise RuntimeError("no free /24 in 10.0.0.0/8")


class Proc:
    """A process started in a namespace, its output in a log file."""

    def __init__(self, name, argv, logpath, ns=None, env=None):
        self.name, self.logpath = name, logpath
        full = (["ip", "netns", "exec", ns] if ns else []) + list(argv)
        base = {k: v for k, v in os.environ.items() if not k.startswith("FCGI_SSE_")}
        base.update(env or {})
        # `ip netns exec` execs the command: the pid is the program's own
        self.p = subprocess.Popen(full, stdin=subprocess.DEVNULL, stdout=open(logpath, "ab"),
                                  stderr=subprocess.STDOUT, env=base, start_new_session=True)

    def alive(self):
        return self.p.poll() is None

    def kill(self):
        if self.alive():
            self.p.kill()
        self.p.wait()



class Testbed:
    def __init__(self, binary, store, redis_mode, keep, replicas=1, pg_extra=""):
        self.binary = os.path.abspath(binary)
        self.redis_ports = [REDIS_PORT + i for i in range(replicas + 1)]
        self.pg_extra = pg_extra
        self.store, self.redis_mode, self.keep = store, redis_mode, keep
        self.suffix = secrets.token_hex(SUFFIX_LEN // 2)
        self.dir = os.path.join(tempfile.gettempdir(), DIR_PREFIX + self.suffix)
        os.makedirs(self.dir)
        os.chmod(self.dir, 0o755)  # postgres (its own user) reaches its dir through it
        with open(os.path.join(self.dir, "owner.pid"), "w") as f:
            f.write(str(os.getpid()))
        self.namespaces, self.links, self.procs = [], [], []
        self.redis = {}       # port -> Proc
        self.sentinels = []
        self.pg = None
        self.hosts = {}
        self.torn_down = False
        self.net = pick_subnet()
        a = list(self.net.hosts())
        self.gw = str(a[0])             # the bridge: the driver's side
        self.core = str(a[1])
        self.host_addr = {h: str(a[10 + i]) for i, h in enumerate(HOSTS)}
        self.bridge = PREFIX + self.suffix + "b"

    def path(self, *p):
        return os.path.join(self.dir, *p)

    def ns(self, name):
        return "%s-%s-%s" % (PREFIX, self.suffix, name)

    def veth(self, name):
        return PREFIX + self.suffix + {"core": "c"}.get(name, name[-1:])

    def start(self, proc_name, argv, ns=None, logname=None, env=None):
        p = Proc(proc_name, argv, self.path(logname or proc_name + ".log"), ns and self.ns(ns), env)
        self.procs.append(p)
        return p

    # ---- network

    def build_network(self):
        sh("ip", "link", "add", self.bridge, "type", "bridge")
        self.links.append(self.bridge)
        sh("ip", "addr", "add", "%s/%d" % (self.gw, self.net.prefixlen), "dev", self.bridge)
        sh("ip", "link", "set", self.bridge, "up")
        for name, addr in [("core", self.core)] + [(h, self.host_addr[h]) for h in HOSTS]:
            ns, outside = self.ns(name), self.veth(name)
            sh("ip", "netns", "add", ns)
            self.namespaces.append(ns)
            sh("ip", "link", "add", outside, "type", "veth", "peer", "name", "eth0", "netns", ns)
            self.links.append(outside)
            sh("ip", "link", "set", outside, "master", self.bridge)
            sh("ip", "link", "set", outside, "up")
            for cmd in (("ip", "link", "set", "lo", "up"),
                        ("ip", "addr", "add", "%s/%d" % (addr, self.net.prefixlen), "dev", "eth0"),
                        ("ip", "link", "set", "eth0", "up")):
                sh("ip", "netns", "exec", ns, *cmd)

    def set_link(self, name, up):
        sh("ip", "link", "set", self.veth(name), "up" if up else "down")

    # ---- PostgreSQL

    def start_postgres(self):
        pgbin = "/usr/lib/postgresql/15/bin"
        if not os.path.isdir(pgbin):
            cands = sorted(d for d in os.listdir("/usr/lib/postgresql") if d.isdigit()) \
                if os.path.isdir("/usr/lib/postgresql") else []
            check(cands, "PostgreSQL is not installed (apt-get install postgresql)")
            pgbin = "/usr/lib/postgresql/%s/bin" % cands[-1]
        data, sock = self.path("pg", "data"), self.path("pg", "sock")
        os.makedirs(data)
        os.makedirs(sock)
        for d in (self.path("pg"), data, sock):
            shutil.chown(d, "postgres", "postgres")
        os.chmod(data, 0o700)
        asuser = ["setpriv", "--reuid=postgres", "--regid=postgres", "--init-groups", "--"]
        sh(*asuser, pgbin + "/initdb", "-D", data, "-U", "postgres", "--auth=trust",
           "--no-sync", "-E", "UTF8", "--locale=C", timeout=120, cwd="/")
        with open(os.path.join(data, "pg_hba.conf"), "w") as f:
            f.write("local all all trust\nhost all all %s trust\n" % self.net)
        self.pg = self.start("postgres", asuser + [
            pgbin + "/postgres", "-D", data, "-c", "listen_addresses=" + self.core,
            "-c", "port=%d" % PG_PORT, "-c", "unix_socket_directories=" + sock,
            "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
            "-c", "max_connections=300"], ns="core")
        check(wait_until(lambda: self.psql("SELECT 1", check_rc=False).returncode == 0, 30),
              "postgres did not start")
        self.psql("CREATE ROLE fcgi_sse LOGIN")
        self.psql("CREATE DATABASE fcgi_sse OWNER fcgi_sse")

    def psql(self, sql, check_rc=True):
        return sh("psql", "-X", "-q", "-h", self.core, "-p", str(PG_PORT), "-U", "postgres",
                  "-d", "postgres", "-c", sql, check_rc=check_rc, timeout=10)

    # ---- Redis and the sentinels

    def start_redis(self, port, replica_of=None):
        argv = ["redis-server", "--bind", self.core, "--port", str(port), "--save", "",
                "--appendonly", "no", "--protected-mode", "no", "--dir", self.dir,
                "--repl-diskless-sync-delay", "0"]
        if replica_of:
            argv += ["--replicaof", self.core, str(replica_of)]
        p = self.start("redis-%d" % port, argv, ns="core")
        self.redis[port] = p
        check(wait_until(lambda: resp_command(self.core, port, "PING") == "PONG", 10),
              "redis-server on %d did not start" % port)
        return p

    def start_sentinels(self):
        for i, port in enumerate(SENTINEL_PORTS):
            conf = self.path("sentinel-%d.conf" % port)
            with open(conf, "w") as f:
                f.write("\n".join([
                    "port %d" % port, "bind %s" % self.core, "protected-mode no",
                    "dir %s" % self.dir,
                    "sentinel monitor %s %s %d 2" % (MASTER_NAME, self.core, REDIS_PORT),
                    "sentinel down-after-milliseconds %s 1000" % MASTER_NAME,
                    "sentinel failover-timeout %s 5000" % MASTER_NAME,
                    "sentinel parallel-syncs %s 1" % MASTER_NAME, ""]))
            self.sentinels.append(self.start("sentinel-%d" % port,
                                             ["redis-server", conf, "--sentinel"], ns="core"))

        def ready():
            for port in SENTINEL_PORTS:
                m = self.sentinel_master_info(port)
                if int(m.get("num-other-sentinels", 0)) != 2 or \
                        int(m.get("num-slaves", 0)) != len(self.redis_ports) - 1:
                    return False
            return True
        check(wait_until(ready, 30), "the sentinels did not find each other and the replica")

    def sentinel_master_info(self, port):
        r = resp_command(self.core, port, "SENTINEL", "master", MASTER_NAME)
        return dict(zip(r[0::2], r[1::2]))

    def master_port(self):
        """The master's port as the sentinels' majority names it (None
        when they do not agree)."""
        seen = []
        for port in SENTINEL_PORTS:
            try:
                r = resp_command(self.core, port, "SENTINEL", "get-master-addr-by-name", MASTER_NAME)
                seen.append(int(r[1]))
            except (OSError, RuntimeError, TypeError, IndexError):
                pass
        best = max(set(seen), key=seen.count) if seen else None
        return best if best is not None and seen.count(best) >= 2 else None

    def history(self, tenant_id):
        """The tenant's event history on the master now: [(id, n)] of the
        test's events, in id order."""
        port = self.master_port()
        out = []
        for eid, fields in resp_command(self.core, port, "XRANGE", "fcgi_sse:{%s}:events" % tenant_id,
                                        "-", "+", timeout=5) or []:
            f = dict(zip(fields[0::2], fields[1::2]))
            if f.get("t") == TYPE:
                out.append((eid, json.loads(f["d"])["n"]))
        return out

    def role(self, port):
        try:
            return resp_command(self.core, port, "ROLE")[0]
        except (OSError, RuntimeError):
            return None

    def replication(self, port):
        return info_fields(resp_command(self.core, port, "INFO", "replication"))

    # ---- the hosts

    def fcgi_config(self):
        redis = {"connect_timeout_ms": 200, "command_timeout_ms": 300, "backoff_max_ms": 200}
        if self.redis_mode == "sentinel":
            # host and port lead nowhere (nothing listens on the driver's
            # port 9): a build that ignored the sentinels would never be ready
            redis.update(host=self.gw, port=9, sentinel_master=MASTER_NAME,
                         sentinels=",".join("%s:%d" % (self.core, p) for p in SENTINEL_PORTS))
        else:
            redis.update(host=self.core, port=REDIS_PORT)
        if self.store == "postgres":
            store = {"backend": "postgres",
                     "postgres": ("host=%s port=%d dbname=fcgi_sse user=fcgi_sse %s"
                                  % (self.core, PG_PORT, self.pg_extra)).strip()}
        else:
            # the fallback while store/postgres.c is missing: one SQLite file
            # (the hosts share the machine's disk; WAL works across processes)
            store = {"path": self.path("shared.db")}
        return {
            "server": {"workers": 8, "shutdown_timeout_ms": 2000},
            "log": {"level": "info"},
            "sse": {"heartbeat_interval_ms": HEARTBEAT_MS, "retry_ms": RETRY_MS, "retry_jitter_pct": 0,
                    "max_streams": 200, "max_streams_per_tenant": 0, "max_streams_per_user": 0,
                    "ready_probe_max_age_ms": 3000},
            "security": {"internal_secret": SECRET},
            "auth": {"jwt_keys": "mh1:" + JWT_SECRET, "pbkdf2_iterations": 1000,
                     "login_attempts_per_address": 0, "max_concurrent_hashes": 16},
            "resilience": {"breaker_open_ms": 300},
            "redis": redis,
            "store": store,
        }

    def write_config(self):
        self.config_path = self.path("config.json")
        with open(self.config_path, "w") as f:
            json.dump(self.fcgi_config(), f, indent=1)

    def admin(self, *args, stdin=None):
        env = {k: v for k, v in os.environ.items() if not k.startswith("FCGI_SSE_")}
        p = subprocess.run([self.binary, "admin", "--config", self.config_path] + list(args),
                           input=stdin, capture_output=True, text=True, timeout=30, env=env)
        return p.returncode, p.stdout, p.stderr

    def add_hosts(self):
        for h in HOSTS:
            self.hosts[h] = Host(self, h)


class Host:
    """One host: lighttpd on <addr>:8080, fcgi_sse on a unix socket."""

    def __init__(self, tb, name):
        self.tb, self.name, self.addr = tb, name, tb.host_addr[name]
        self.dir = tb.path(name)
        os.makedirs(os.path.join(self.dir, "www"))
        self.sock = os.path.join(self.dir, "fcgi_sse.sock")
        self.conf = os.path.join(self.dir, "lighttpd.conf")
        with open(self.conf, "w") as f:
            f.write("\n".join([
                'server.bind = "%s"' % self.addr,
                "server.port = %d" % HTTP_PORT,
                'server.document-root = "%s/www"' % self.dir,
                'server.errorlog = "%s/lighttpd.error.log"' % self.dir,
                'server.tag = "lighttpd"',
                "server.max-fds = 4096",
                "server.max-read-idle = 3600",
                "server.max-write-idle = 3600",
                'var.fcgi_sse_socket = "%s"' % self.sock,
                # the project's own FastCGI settings: unbuffered responses
                'include "%s"' % LIGHTTPD_FCGI_CONF, ""]))
        self.fcgi = self.lighttpd = None

    def start(self):
        self.fcgi = self.tb.start(self.name + "-fcgi_sse",
                                  [self.tb.binary, "--config", self.tb.config_path,
                                   "--listen", "unix:" + self.sock],
                                  ns=self.name, logname="%s/fcgi_sse.log" % self.name)
        if not wait_until(lambda: os.path.exists(self.sock) or not self.fcgi.alive(), 10) or \
                not self.fcgi.alive():
            text = read_tail(self.fcgi.logpath, 20)
            hint = ""
            if "not built yet" in text or "postgres" in text.lower():
                hint = (" (store.backend \"postgres\" needs store/postgres.c built in; "
                        "--store sqlite runs against one SQLite file instead)")
            raise Failure("fcgi_sse on %s did not start%s:\n%s" % (self.name, hint, text))
        self.lighttpd = self.tb.start(self.name + "-lighttpd",
                                      [shutil.which("lighttpd") or "lighttpd", "-D", "-f", self.conf],
                                      ns=self.name, logname="%s/lighttpd.stderr" % self.name)

    def ready(self, timeout=2.0):
        try:
            return http(self.addr, "GET", "/api/v2/ready", timeout=timeout).status == 200
        except OSError:
            return False

    def ask_inside(self, path, headers=None, timeout=10):
        """GET path asked from inside the host's own namespace (what a
        health check or a client on the host itself sees): (status,
        seconds), or (why, seconds) when no answer came within timeout."""
        probe = ("import http.client as h, json, sys, time\n"
                 "t = time.monotonic()\n"
                 "try:\n"
                 "    c = h.HTTPConnection(%r, %d, timeout=%r)\n"
                 "    c.request('GET', %r, headers=json.loads(%r))\n"
                 "    print(c.getresponse().status, time.monotonic() - t)\n"
                 "except OSError as e:\n"
                 "    print(type(e).__name__, time.monotonic() - t)\n"
                 % (self.addr, HTTP_PORT, timeout, path, json.dumps(headers or {})))
        p = sh("ip", "netns", "exec", self.tb.ns(self.name), sys.executable, "-c", probe,
               check_rc=False, timeout=timeout + 10)
        words = p.stdout.split()
        if len(words) != 2:
            return "exit %d %s" % (p.returncode, p.stderr.strip()[-200:]), None
        return (int(words[0]) if words[0].isdigit() else words[0]), float(words[1])

    def ready_body(self):
        try:
            r = http(self.addr, "GET", "/api/v2/ready", timeout=2)
            return "%d %s" % (r.status, r.body[:400].decode("utf-8", "replace"))
        except OSError as e:
            return repr(e)

    def kill(self):
        for p in (self.lighttpd, self.fcgi):
            if p is not None:
                p.kill()


def read_tail(path, n):
    try:
        with open(path, errors="replace") as f:
            return "".join(f.readlines()[-n:])
    except OSError:
        return ""


def teardown(tb):
    if tb is None or tb.torn_down:
        return
    tb.torn_down = True
    # every process of ours, the last started first (the hosts before
    # Redis and PostgreSQL); whatever is left in our namespaces after that
    for p in reversed(tb.procs):
        try:
            if p.alive():
                p.p.terminate()
        except OSError:
            pass
    for p in tb.procs:
        try:
            p.p.wait(5)
        except subprocess.TimeoutExpired:
            p.kill()
    for ns in tb.namespaces:
        _kill_pids(_netns_pids(ns))
        sh("ip", "netns", "del", ns, check_rc=False)
    for link in tb.links:
        sh("ip", "link", "del", link, check_rc=False)
    if tb.keep:
        print("kept %s" % tb.dir)
        os.unlink(os.path.join(tb.dir, "owner.pid"))
    else:
        shutil.rmtree(tb.dir, ignore_errors=True)


# ---------------------------------------------------------------- clients

class Client:
    """A logged-in user: token and fingerprint cookie."""

    def __init__(self, host, tenant, username):
        r = post_json(host.addr, "/api/v2/auth/login",
                      {"tenant": tenant, "username": username, "password": PASSWORD})
        check(r.status == 200, "login %s/%s on %s: %d %r" % (tenant, username, host.name, r.status, r.body[:200]))
        self.tenant, self.username = tenant, username
        self.body = r.json()
        self.token = self.body["access_token"]
        self.user_id = self.body["user"]["id"]
        self.cookie = r.header("Set-Cookie").split(";")[0]

    def headers(self):
        return {"Authorization": "Bearer " + self.token, "Cookie": self.cookie}

    def post(self, host, path, obj=None):
        if obj is None:
            return http(host.addr, "POST", path, self.headers(), b"")
        return post_json(host.addr, path, obj, self.headers())

    def get(self, host, path):
        return http(host.addr, "GET", path, self.headers())

    def stream_session(self, host):
        r = self.post(host, "/api/v2/events/session")
        check(r.status == 201, "events/session on %s: %d %r" % (host.name, r.status, r.body[:200]))
        return r.json()["session_id"]


class Resumer(threading.Thread):
    """A client's event stream as EventSource keeps it, with the driver as
    its load balancer: a stream the server ends is reopened on the same
    host after `retry`, with Last-Event-ID; a host that cannot be reached,
    answers with an error or goes silent past the watchdog is left for the
    next one in `hosts`. 401 and 204 end it (EventSource gives up)."""

    def __init__(self, name, client, session_id, hosts):
        super().__init__(daemon=True)
        self.label, self.client, self.sid, self.hosts = name, client, session_id, list(hosts)
        self.idx = 0
        self.events = []          # (host name, event dict) in arrival order
        self.conns = []           # (host name, status or why) per attempt
        self.last_id = None
        self.final = None         # the answer that ended it: (status, code)
        self.sse = None
        self.halt = threading.Event()
        self.lock = threading.Lock()
        self.start()

    def host(self):
        return self.hosts[self.idx]

    def _next_host(self):
        self.idx = (self.idx + 1) % len(self.hosts)

    def run(self):
        retry = RETRY_MS / 1000
        while not self.halt.is_set():
            h = self.host()
            hdr = {"Cookie": self.client.cookie}
            if self.last_id is not None:
                hdr["Last-Event-ID"] = self.last_id
            try:
                sse = SSE(h.addr, "/api/v2/events/stream?session_id=" + self.sid, hdr)
            except OSError as e:
                self.conns.append((h.name, "connect: %s" % type(e).__name__))
                self._next_host()
                self.halt.wait(retry)
                continue
            with self.lock:
                self.sse = sse
            if sse.status != 200:
                try:
                    body = sse.body()
                    code = json.loads(body.decode()).get("code") if body else None
                except (OSError, ValueError, AttributeError):
                    code = None
                sse.close()
                self.conns.append((h.name, "%d %s" % (sse.status, code)))
                if sse.status in (401, 204):
                    self.final = (sse.status, code)
                    return
                self._next_host()
                self.halt.wait(retry)
                continue
            self.conns.append((h.name, 200))
            why = self._read(h, sse)
            sse.close()
            with self.lock:
                self.sse = None
            self.conns.append((h.name, why))
            if why in ("dead", "reset"):
                self._next_host()   # the balancer takes the host out
            if sse.retry is not None:
                retry = sse.retry / 1000
            self.halt.wait(retry)

    def _read(self, h, sse):
        try:
            while not self.halt.is_set():
                ev = sse.next_event()
                if ev is None:
                    return "eof"
                if ev["id"] is not None:
                    self.last_id = ev["id"]
                self.events.append((h.name, ev))
            return "stopped"
        except socket.timeout:
            return "dead"
        except (OSError, ValueError):
            return "stopped" if self.halt.is_set() else "reset"

    def stop(self):
        self.halt.set()
        with self.lock:
            if self.sse is not None:
                try:
                    self.sse.sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
        self.join(5)

    def seq(self):
        """The test's events received, as (id, n, host)."""
        return [(e["id"], json.loads(e["data"])["n"], h) for h, e in list(self.events) if e["event"] == TYPE]

    def kinds(self):
        return [e["event"] for _, e in list(self.events)]

    def start_id(self):
        for _, e in list(self.events):
            if e["event"] == "connected":
                return e["id"]
        return None

    def connected_on(self, host_name, nth=1):
        """Whether a stream has been open on that host nth times."""
        return self.conns.count((host_name, 200)) >= nth

    def describe(self):
        return "%s: conns %r, %d events, kinds %r" % (
            self.label, self.conns[-12:], len(self.events), sorted(set(self.kinds())))


class Publisher(threading.Thread):
    """Publishes TYPE events at a steady rate through the given hosts in
    turn, each with its own n; records every answer."""

    counter = [0]
    counter_lock = threading.Lock()

    def __init__(self, tenant, hosts, rate=PUBLISH_RATE):
        super().__init__(daemon=True)
        self.tenant, self.hosts, self.rate = tenant, list(hosts), rate
        self.accepted = []        # (id, n, host)
        self.refused = []         # (n, host, status or why)
        self.halt = threading.Event()
        self.start()

    def run(self):
        i = 0
        due = time.monotonic()
        while not self.halt.is_set():
            h = self.hosts[i % len(self.hosts)]
            publish_one(self.tenant, h, next_n(), self.accepted, self.refused)
            i += 1
            # the next one a period on, never early to make up for a slow
            # answer: a burst after an outage is not a steady rate
            due = max(due + 1 / self.rate, time.monotonic())
            self.halt.wait(due - time.monotonic())

    def stop(self):
        self.halt.set()
        self.join(10)


def publish_one(tenant, h, n, accepted, refused):
    try:
        r = post_json(h.addr, "/api/v2/events", {"tenant": tenant, "type": TYPE, "data": {"n": n}},
                      {"X-Internal-Secret": SECRET}, timeout=3)
        if r.status == 202:
            accepted.append((r.json()["id"], n, h.name))
        else:
            refused.append((n, h.name, "%d %s" % (r.status, r.code())))
    except OSError as e:
        refused.append((n, h.name, "no answer: %s" % type(e).__name__))


def next_n():
    with Publisher.counter_lock:
        Publisher.counter[0] += 1
        return Publisher.counter[0]


def expected_for(stream, accepted):
    """What a stream must have got: every accepted event after the place
    it first connected at, in id order."""
    start = stream.start_id()
    if start is None:
        return None
    return sorted(((i, n) for i, n, _ in accepted if id_key(i) > id_key(start)), key=lambda x: id_key(x[0]))


def has_all(stream, accepted):
    want = expected_for(stream, accepted)
    if want is None:
        return False
    got = {n for _, n, _ in stream.seq()}
    return all(n in got for _, n in want)


def check_exactly_once(stream, accepted, refused=(), strict_refused=True):
    """Every accepted event exactly once, in order, with its published
    id; no reset (a stream told it lost events). Refused publishes:
    with strict_refused none may arrive; else each at most once, in
    id order with the rest (fcgi_sse answers 503 when it cannot confirm
    that a replica has the event, which may still be in history)."""
    want = expected_for(stream, accepted)
    check(want is not None, "%s never connected: %s" % (stream.label, stream.describe()))
    all_got = [(i, n) for i, n, _ in stream.seq()]
    refused_n = {n for n, _, _ in refused}
    got = [(i, n) for i, n in all_got if n not in refused_n]
    late = [n for _, n in all_got if n in refused_n]
    check(not (strict_refused and late),
          "%s got %d events whose publish was refused (503): n %s" % (stream.label, len(late), late[:20]))
    check(len(late) == len(set(late)), "%s got a refused event twice: %s" % (stream.label, late))
    keys = [id_key(i) for i, _ in all_got]
    check(keys == sorted(set(keys)), "%s: ids not strictly increasing: %s" % (stream.label, stream.describe()))
    if got != want:
        gn = [n for _, n in got]
        wn = [n for _, n in want]
        missing = sorted(set(wn) - set(gn))
        dups = sorted({n for n in gn if gn.count(n) > 1})
        extra = sorted(set(gn) - set(wn))
        wrong_ids = [(n, i) for i, n in got if n in set(wn) and (i, n) not in set(want)]
        raise Failure("%s: %d events, want %d: missing n %s, twice %s, unexpected %s, other ids %s, "
                      "out of order %s; %s" % (
                          stream.label, len(got), len(want), missing[:20], dups[:20], extra[:20],
                          wrong_ids[:5], gn != sorted(gn) and not missing and not dups,
                          stream.describe()))
    check("reset" not in stream.kinds(), "%s got event: reset (told it lost events): %s"
          % (stream.label, stream.describe()))
    return late


def wait_delivered(streams, accepted, timeout=15):
    ok = wait_until(lambda: all(has_all(s, accepted) for s in streams), timeout, 0.1)
    if not ok:
        for s in streams:
            if not has_all(s, accepted):
                log("incomplete: " + s.describe())


def wait_events(stream, n, timeout=10):
    check(wait_until(lambda: len(stream.seq()) >= n, timeout, 0.05),
          "%s got %d events, want %d: %s" % (stream.label, len(stream.seq()), n, stream.describe()))


def wait_connected(stream, host_name, nth=1, timeout=10):
    check(wait_until(lambda: stream.connected_on(host_name, nth) and stream.start_id() is not None,
                     timeout, 0.05),
          "%s not connected on %s: %s" % (stream.label, host_name, stream.describe()))


# ---------------------------------------------------------------- scenarios

class Run:
    def __init__(self, tb, strict_refused):
        self.tb = tb
        self.strict_refused = strict_refused
        self.verbose = False
        self.h = tb.hosts
        self.threads = []

    def tenant(self, users=(("admin", "admin"), ("ana", "operator"), ("bob", "viewer"))):
        name = "mh-" + secrets.token_hex(4)
        rc, _, err = self.tb.admin("create-tenant", name)
        check(rc == 0, "admin create-tenant: %d %s" % (rc, err))
        for u, role in users:
            rc, _, err = self.tb.admin("create-user", "--tenant", name, "--username", u, "--role", role,
                                       stdin=PASSWORD + "\n")
            check(rc == 0, "admin create-user %s: %d %s" % (u, rc, err))
        return name

    def stream(self, label, client, hosts):
        s = Resumer(label, client, client.stream_session(hosts[0]), hosts)
        self.threads.append(s)
        return s

    def publisher(self, tenant, hosts):
        p = Publisher(tenant, hosts)
        self.threads.append(p)
        return p

    def stop_threads(self):
        for t in self.threads:
            t.stop()
            if self.verbose and isinstance(t, Resumer):
                log(t.describe())
            elif self.verbose:
                log("publisher via %s: %d accepted, %d refused" % (
                    [h.name for h in t.hosts], len(t.accepted), len(t.refused)))
        self.threads = []

    def all_ready(self, timeout=20):
        ok = wait_until(lambda: all(h.ready() for h in self.h.values()), timeout, 0.2)
        check(ok, "not every host is ready: " + "; ".join(
            "%s %s" % (n, h.ready_body()) for n, h in self.h.items()))

    # 1 ------------------------------------------------------------------

    def fan_out(self):
        h1, h2, h3 = self.h["h1"], self.h["h2"], self.h["h3"]
        t = self.tenant()
        ana = Client(h1, t, "ana")
        bob = Client(h1, t, "bob")
        streams = [self.stream("ana@h1", ana, [h1]), self.stream("ana@h2", ana, [h2]),
                   self.stream("bob@h3", bob, [h3])]
        for s, h in zip(streams, ("h1", "h2", "h3")):
            wait_connected(s, h)
        accepted, refused = [], []
        for i in range(30):
            publish_one(t, (h1, h2)[i % 2], next_n(), accepted, refused)
        check(not refused, "publishes refused: %r" % refused[:5])
        wait_delivered(streams, accepted)
        for s in streams:
            check_exactly_once(s, accepted)
            check(s.conns == [(s.hosts[0].name, 200)], "%s was reconnected: %r" % (s.label, s.conns))
        # the shared store, and read-your-writes through the shared cache
        r = ana.post(h3, "/api/v2/devices", {"name": "boiler", "metadata": {"floor": 2}})
        check(r.status == 201, "device create on h3: %d %r" % (r.status, r.body[:200]))
        dev = r.json()
        r = ana.get(h1, "/api/v2/devices/" + dev["id"])
        check(r.status == 200 and r.json() == dev, "device read on h1 right after its write on h3: %d %r"
              % (r.status, r.body[:300]))
        r = http(h3.addr, "PUT", "/api/v2/devices/%s/status" % dev["id"],
                 dict(ana.headers(), **{"Content-Type": "application/json"}), b'{"status":"online"}')
        check(r.status == 200 and r.json()["version"] == dev["version"] + 1,
              "status change on h3: %d %r" % (r.status, r.body[:200]))
        changed = r.json()
        for h in (h1, h2):
            r = ana.get(h, "/api/v2/devices/" + dev["id"])
            check(r.status == 200 and r.json() == changed,
                  "device on %s right after its change on h3 (cached before): %r, want %r"
                  % (h.name, r.body[:300], changed))
        # and its change event reached every stream of the tenant
        check(wait_until(lambda: all(any(e["event"] == "device.updated" and
                                         json.loads(e["data"]).get("version") == changed["version"]
                                         for _, e in s.events) for s in streams), 5),
              "device.updated (version %d) not on every stream: %s" % (
                  changed["version"], "; ".join(s.describe() for s in streams)))
        self.stop_threads()

    # 2 ------------------------------------------------------------------

    def host_cut_off(self):
        h1, h2, h3 = self.h["h1"], self.h["h2"], self.h["h3"]
        t = self.tenant()
        ana = Client(h1, t, "ana")
        a = self.stream("ana@h3->h1", ana, [h3, h1])
        b = self.stream("ana@h1", ana, [h1])
        c = self.stream("ana@h2", ana, [h2])
        for s, h in ((a, "h3"), (b, "h1"), (c, "h2")):
            wait_connected(s, h)
        # every worker of h3 with a store connection open: store reads
        # at once (a list with a limit of its own is not cached)
        answers = []
        warm = [threading.Thread(target=lambda: answers.append(
            ana.get(h3, "/api/v2/devices?limit=7").status)) for _ in range(32)]
        for w in warm:
            w.start()
        for w in warm:
            w.join(15)
        check(answers == [200] * 32, "store reads on h3: %r" % answers)
        pub = self.publisher(t, [h1, h2])
        wait_events(a, 5)
        self.tb.set_link("h3", False)
        try:
            wait_connected(a, "h1", timeout=WATCHDOG_S + 8)
            check(not h3.ready(timeout=0.5), "h3 answers while cut off")
            # h3 itself answers, within the time bounds of its
            # dependencies (docs/API.md §7), and says it cannot serve: a
            # request it cannot serve is a 503, never a hang
            # (the SQLite fallback's file is on h3's disk: still there)
            want = 503 if self.tb.store == "postgres" else 200
            status, secs = h3.ask_inside("/api/v2/devices?limit=7", ana.headers(), timeout=30)
            check(status == want, "a store read on h3, asked on h3 while it is cut off from core: "
                  "%s after %.1f s, want %d" % (status, secs or 0, want))
            got = []
            check(wait_until(lambda: got.append(h3.ask_inside("/api/v2/ready", timeout=30)) or
                             got[-1][0] == 503, 40, 0.2),
                  "h3's ready, asked on h3 while it is cut off: %r, want 503" % got[-3:])
            wait_events(a, len(a.seq()) + 5)
        finally:
            self.tb.set_link("h3", True)
        check(wait_until(lambda: h3.ready(), 30, 0.2), "h3 not ready after its link returned: " + h3.ready_body())
        d = self.stream("ana@h3-again", ana, [h3])
        wait_connected(d, "h3")
        wait_events(d, 5)
        pub.stop()
        check(not pub.refused, "publishes on h1/h2 refused while h3 was cut off: %r" % pub.refused[:5])
        wait_delivered([a, b, c, d], pub.accepted)
        for s in (a, b, c, d):
            check_exactly_once(s, pub.accepted)
        check(any(c_[0] == "h1" for c_ in a.conns), "a never moved to h1")
        self.stop_threads()

    # 3 ------------------------------------------------------------------

    def host_killed(self):
        h1, h2, h3 = self.h["h1"], self.h["h2"], self.h["h3"]
        t = self.tenant()
        ana = Client(h1, t, "ana")
        a = self.stream("ana@h2->h3", ana, [h2, h3])
        b = self.stream("ana@h2->h1", ana, [h2, h1])
        c = self.stream("ana@h1", ana, [h1])
        d = self.stream("ana@h3", ana, [h3])
        for s, h in ((a, "h2"), (b, "h2"), (c, "h1"), (d, "h3")):
            wait_connected(s, h)
        pub = self.publisher(t, [h1, h3])
        wait_events(a, 5)
        wait_events(b, 5)
        h2.kill()
        wait_connected(a, "h3", timeout=10)
        wait_connected(b, "h1", timeout=10)
        wait_events(a, len(a.seq()) + 5)
        wait_events(b, len(b.seq()) + 5)
        pub.stop()
        check(not pub.refused, "publishes on h1/h3 refused after h2 died: %r" % pub.refused[:5])
        wait_delivered([a, b, c, d], pub.accepted)
        for s in (a, b, c, d):
            check_exactly_once(s, pub.accepted)
        self.stop_threads()
        # h2 comes back for the scenarios after this one
        h2.start()
        check(wait_until(lambda: h2.ready(), 20, 0.2), "h2 not ready after its restart: " + h2.ready_body())

    # 4 ------------------------------------------------------------------

    def redis_failover(self):
        tb = self.tb
        h1, h2, h3 = self.h["h1"], self.h["h2"], self.h["h3"]
        t = self.tenant()
        ana = Client(h1, t, "ana")
        streams = [self.stream("ana@h1", ana, [h1, h2, h3]), self.stream("ana@h2", ana, [h2, h3, h1]),
                   self.stream("ana@h3", ana, [h3, h1, h2])]
        for s, h in zip(streams, ("h1", "h2", "h3")):
            wait_connected(s, h)
        pub = self.publisher(t, [h1, h3])
        for s in streams:
            wait_events(s, 5)

        def accepted_since(k):
            return len(pub.accepted) >= k

        for case in ("SENTINEL FAILOVER", "SIGKILL of the master"):
            old = tb.master_port()
            check(old in tb.redis_ports, "the sentinels name no master: %r" % old)
            replicas = str(len(tb.redis_ports) - 1)
            check(tb.replication(old).get("connected_slaves") == replicas,
                  "%s: master has not its %s replicas" % (case, replicas))
            n_acc, n_ref = len(pub.accepted), len(pub.refused)
            t_case = time.monotonic()
            if case == "SENTINEL FAILOVER":
                check(resp_command(tb.core, SENTINEL_PORTS[0], "SENTINEL", "FAILOVER", MASTER_NAME) == "OK",
                      "SENTINEL FAILOVER refused")
            else:
                tb.redis[old].kill()
            promoted = []
            check(wait_until(lambda: promoted.append(tb.master_port()) or
                             (promoted[-1] not in (None, old) and tb.role(promoted[-1]) == "master"), 20, 0.1),
                  "%s: the sentinels promoted no replica (they name %r)" % (case, tb.master_port()))
            new = promoted[-1]
            t_promoted = time.monotonic() - t_case
            if case != "SENTINEL FAILOVER":
                # the old master comes back, as an operator would bring it:
                # the sentinels make it the new master's replica (with one
                # replica, every publish waits for it: docs/SCALING.md)
                tb.start_redis(old)
            check(wait_until(lambda: tb.replication(new).get("connected_slaves") == replicas and
                             tb.replication(old).get("master_link_status") == "up", 30, 0.1),
                  "%s: %d did not become the replica of %d" % (case, old, new))
            # publishing works again through both publishing hosts
            k = len(pub.accepted)
            check(wait_until(lambda: accepted_since(k + 10) and
                             {h for _, _, h in pub.accepted[k:]} >= {"h1", "h3"}, 30, 0.1),
                  "%s: publishes do not get through again: refused %r" % (case, pub.refused[-5:]))
            log("%s: %d -> %d, promoted after %.1f s, publishing again after %.1f s; "
                "%d accepted, %d refused meanwhile (%s)" % (
                    case, old, new, t_promoted, time.monotonic() - t_case,
                    len(pub.accepted) - n_acc, len(pub.refused) - n_ref,
                    sorted({w for _, _, w in pub.refused[n_ref:]})))
        pub.stop()
        wait_delivered(streams, pub.accepted, 20)
        late = {}
        for s in streams:
            late[s.label] = check_exactly_once(s, pub.accepted, pub.refused, self.strict_refused)
        # the history the new master holds is what was published: every
        # accepted event is in it (none lost in a failover), and every
        # stream has every event of it after its start, with its id
        hist = tb.history(ana.body["user"]["tenant"]["id"])
        hist_n = {n for _, n in hist}
        lost = [(i, n) for i, n, _ in pub.accepted if n not in hist_n]
        check(not lost, "%d of %d accepted events are missing from the history after the failovers "
              "(n %d..%d; history holds %d events, n %s..%s): %s" % (
                  len(lost), len(pub.accepted), lost[0][1] if lost else 0, lost[-1][1] if lost else 0,
                  len(hist), hist[0][1] if hist else None, hist[-1][1] if hist else None, lost[:5]))
        refused_n = {n for n, _, _ in pub.refused}
        ghosts = {}
        for s in streams:
            start = id_key(s.start_id())
            want = [(i, n) for i, n in hist if id_key(i) > start]
            got = [(i, n) for i, n, _ in s.seq()]
            gap = [x for x in want if x not in set(got)]
            check(not gap, "%s misses %d events that are in history: %s; %s" % (
                s.label, len(gap), gap[:10], s.describe()))
            ghosts[s.label] = [n for i, n in got if (i, n) not in set(want)]
            check(set(ghosts[s.label]) <= refused_n, "%s got events that are not in history: %s" % (
                s.label, [n for n in ghosts[s.label] if n not in refused_n][:10]))
        log("%d publishes refused (503); %d of them are in history all the same; on streams but gone "
            "from history (lost with the old master): %s" % (
                len(pub.refused), len(refused_n & hist_n),
                ", ".join("%s %d" % (k, len(v)) for k, v in ghosts.items())))
        self.all_ready()
        # afterwards every host publishes, and every stream gets it
        acc2, ref2 = [], []
        for h in (h1, h2, h3):
            publish_one(t, h, next_n(), acc2, ref2)
        check(not ref2, "publishing after the failovers: %r" % ref2)
        wait_delivered(streams, pub.accepted + acc2)
        for s in streams:
            check_exactly_once(s, pub.accepted + acc2, pub.refused, self.strict_refused)
        self.stop_threads()

    # 5 ------------------------------------------------------------------

    def revocation(self):
        h1, h2, h3 = self.h["h1"], self.h["h2"], self.h["h3"]
        t = self.tenant()
        admin = Client(h1, t, "admin")
        for how in ("logout", "revoke-all"):
            ana = Client(h1, t, "ana")
            bob = Client(h1, t, "bob")      # a bystander: must stay
            sa2, sa3 = ana.stream_session(h1), ana.stream_session(h1)
            a2 = Resumer("ana@h2", ana, sa2, [h2])
            a3 = Resumer("ana@h3", ana, sa3, [h3])
            b2 = Resumer("bob@h2", bob, bob.stream_session(h1), [h2])
            self.threads += [a2, a3, b2]
            for s, h in ((a2, "h2"), (a3, "h3"), (b2, "h2")):
                wait_connected(s, h)
            if how == "logout":
                r = ana.post(h1, "/api/v2/auth/logout")
                check(r.status == 204, "logout on h1: %d %r" % (r.status, r.body[:200]))
            else:
                r = http(h1.addr, "DELETE", "/api/v2/users/%s/sessions" % ana.user_id, admin.headers())
                check(r.status == 204, "revoke-all on h1: %d %r" % (r.status, r.body[:200]))
            for s in (a2, a3):
                check(wait_until(lambda: s.final is not None, 10, 0.05),
                      "%s: %s on h1 did not end it: %s" % (s.label, how, s.describe()))
                check("revoked" in s.kinds(), "%s ended without event: revoked: %s" % (s.label, s.describe()))
                check(s.final == (401, "events.invalid_session"),
                      "%s: its reconnect answered %r, want 401 events.invalid_session" % (s.label, s.final))
            for sid, h in ((sa2, h2), (sa3, h3)):
                r = http(h.addr, "GET", "/api/v2/events/stream?session_id=" + sid,
                         {"Cookie": ana.cookie, "Accept": "text/event-stream"})
                check(r.status == 401 and r.code() == "events.invalid_session",
                      "%s: old stream session on %s: %d %r" % (how, h.name, r.status, r.body[:200]))
            for h in (h2, h3):
                r = ana.get(h, "/api/v2/me")
                check(r.status == 401 and r.code() == "auth.session_revoked",
                      "%s: old token on %s: %d %r" % (how, h.name, r.status, r.body[:200]))
            # bob's stream is still open and gets events
            acc, ref = [], []
            publish_one(t, h3, next_n(), acc, ref)
            check(not ref, "publish: %r" % ref)
            check(wait_until(lambda: acc[0][1] in {n for _, n, _ in b2.seq()}, 5),
                  "bob's stream stopped getting events after ana's %s: %s" % (how, b2.describe()))
            check(b2.final is None and b2.conns == [("h2", 200)], "bob's stream was disturbed: %s" % b2.describe())
            self.stop_threads()


SCENARIOS = [
    ("fan-out", "fan_out"),
    ("host cut off", "host_cut_off"),
    ("host killed", "host_killed"),
    ("redis failover", "redis_failover"),
    ("revocation everywhere", "revocation"),
]


def log_tail(path, lines):
    """The end of a log; of fcgi_sse's JSON lines, those other than plain
    request lines (and the last few of those)."""
    text = read_tail(path, 2000 if path.endswith("fcgi_sse.log") else lines)
    if not path.endswith("fcgi_sse.log"):
        return text
    keep = [l for l in text.splitlines(True) if '"msg":"request"' not in l]
    reqs = [l for l in text.splitlines(True) if '"msg":"request"' in l]
    return "".join(keep[-lines:]) + ("(last requests)\n" + "".join(reqs[-5:]) if reqs else "")


def dump_logs(tb, lines=40):
    files = []
    for h in HOSTS:
        files += [os.path.join(h, "fcgi_sse.log"), os.path.join(h, "lighttpd.error.log"),
                  os.path.join(h, "lighttpd.stderr")]
    files += ["redis-%d.log" % p for p in tb.redis_ports] + ["sentinel-%d.log" % p for p in SENTINEL_PORTS]
    files += ["postgres.log"]
    for name in files:
        text = log_tail(tb.path(name), lines)
        if text.strip():
            print("---- %s (last %d lines)" % (name, lines))
            print(text.rstrip())


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--binary", default=os.path.join(ROOT, "build", "fcgi_sse"))
    ap.add_argument("--store", choices=("postgres", "sqlite"), default="postgres",
                    help="sqlite: one SQLite file shared by the hosts (while the PostgreSQL backend is missing)")
    ap.add_argument("--redis", choices=("sentinel", "direct"), default="sentinel",
                    help="direct: the hosts talk to the master (while Sentinel support is missing); "
                         "the failover scenario is then skipped")
    ap.add_argument("--strict-refused", action="store_true",
                    help="fail when an event whose publish was refused (503) during the Redis "
                         "failover reaches a stream")
    ap.add_argument("--replicas", type=int, default=1, choices=(1, 2),
                    help="Redis replicas besides the master (1: as docs/SCALING.md's test)")
    ap.add_argument("--pg-conninfo-extra", default="",
                    help="more libpq settings for store.postgres, e.g. tcp_user_timeout=3000")
    ap.add_argument("-k", action="append", default=[], help="run only scenarios whose name contains this")
    ap.add_argument("-v", "--verbose", action="store_true", help="each stream's connections")
    ap.add_argument("--keep", action="store_true", help="keep the temp dir (logs)")
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("run.py needs root (network namespaces)")
    for tool in ("ip", "lighttpd", "redis-server", "psql", "setpriv"):
        if shutil.which(tool) is None:
            sys.exit("missing %s (make deps installs what the tests need)" % tool)
    if not os.access(args.binary, os.X_OK):
        sys.exit("no binary %s (make)" % args.binary)

    tb = None

    def on_signal(signum, _frame):
        print("interrupted (signal %d): cleaning up" % signum, flush=True)
        raise SystemExit(128 + signum)
    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    atexit.register(lambda: teardown(tb))

    failed = 0
    t_all = time.monotonic()
    run = None
    try:
        clean_leftovers()
        tb = Testbed(args.binary, args.store, args.redis, args.keep, args.replicas, args.pg_conninfo_extra)
        t0 = time.monotonic()
        tb.build_network()
        if args.store == "postgres":
            tb.start_postgres()
        for port in tb.redis_ports:
            tb.start_redis(port, replica_of=None if port == REDIS_PORT else REDIS_PORT)
        check(wait_until(lambda: all(tb.replication(p).get("master_link_status") == "up"
                                     for p in tb.redis_ports[1:]), 10),
              "the replica did not sync")
        tb.start_sentinels()
        tb.write_config()
        tb.add_hosts()
        for h in tb.hosts.values():
            h.start()
        run = Run(tb, args.strict_refused)
        run.verbose = args.verbose
        run.all_ready(30)
        print("setup: %s, store %s, redis %s (%.1f s)" % (
            tb.net, args.store, args.redis, time.monotonic() - t0), flush=True)
    except (Failure, RuntimeError, subprocess.TimeoutExpired) as e:
        print("FAIL setup: %s" % e, flush=True)
        if tb is not None:
            dump_logs(tb)
        teardown(tb)
        return 1

    try:
        for title, meth in SCENARIOS:
            if args.k and not any(k in title for k in args.k):
                continue
            if meth == "redis_failover" and args.redis != "sentinel":
                print("SKIP %-24s (needs --redis sentinel)" % title, flush=True)
                continue
            t0 = time.monotonic()
            try:
                getattr(run, meth)()
                print("PASS %-24s %5.1f s" % (title, time.monotonic() - t0), flush=True)
            except (Failure, RuntimeError, OSError, ValueError, KeyError) as e:
                failed += 1
                print("FAIL %-24s %5.1f s: %s: %s" % (title, time.monotonic() - t0, type(e).__name__, e),
                      flush=True)
                dump_logs(tb)
                run.stop_threads()
                # later scenarios need every host back
                tb.set_link("h3", True)
                for h in tb.hosts.values():
                    if h.fcgi is None or not h.fcgi.alive() or not h.lighttpd.alive():
                        h.kill()
                        h.start()
                try:
                    run.all_ready(60)
                except Failure as e:
                    print("  (not every host came back: %s)" % e, flush=True)
    finally:
        if run is not None:
            run.stop_threads()
        teardown(tb)
    print("%s: %d failed (%.1f s in all)" % ("FAILED" if failed else "OK", failed, time.monotonic() - t_all))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
