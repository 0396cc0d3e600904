"""Integration harness: starts real lighttpd + fcgi_sse stacks on free
loopback ports in a temp dir, speaks HTTP (and raw FastCGI) to them, and
stops everything it started."""

import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
LIGHTTPD_DIR = os.path.join(ROOT, "deploy", "lighttpd")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(pred, timeout=5.0, step=0.02):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(step)
    return pred()


def port_open(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


def stop_process(proc, timeout=15):
    """SIGTERM, wait, SIGKILL if it hangs. Returns the exit status (None when
    there was no process)."""
    if proc is None:
        return None
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.wait()


class RunDir:
    """A temp dir that holds one stack's files; kept when KEEP_TEST_DIRS=1."""

    def read(self, name):
        try:
            with open(os.path.join(self.dir, name), errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def cleanup(self):
        self.stop()
        if os.environ.get("KEEP_TEST_DIRS") != "1":
            shutil.rmtree(self.dir, ignore_errors=True)


class RedisServer(RunDir):
    """A real redis-server on a free loopback port. Without persistence by
    default; persist=True keeps every write in an append-only file
    (fsync'ed per write) in its dir, so a stop and start_on_same_port()
    keeps the data."""

    def __init__(self, persist=False):
        self.dir = tempfile.mkdtemp(prefix="fcgi_sse_it_redis_")
        self.port = free_port()
        self.persist = persist
        self.proc = None

    def start(self):
        aof = ["--appendonly", "yes", "--appendfsync", "always"] if self.persist else ["--appendonly", "no"]
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
             "--save", ""] + aof + ["--dir", self.dir],
            stdout=open(os.path.join(self.dir, "redis.log"), "ab"), stderr=subprocess.STDOUT)
        if not wait_until(lambda: self.ping(), 10):
            raise RuntimeError("redis-server did not start: " + self.read("redis.log"))
        return self

    def stop(self):
        stop_process(self.proc)
        self.proc = None

    def start_on_same_port(self):
        """Starts again on the same port (an outage ends)."""
        return self.start()

    def command(self, *args, timeout=2):
        """One RESP command; returns the decoded reply (bytes, int, list,
        None) or raises on an error reply."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=timeout) as s:
            out = b"*%d\r\n" % len(args)
            for a in args:
                a = a if isinstance(a, bytes) else str(a).encode()
                out += b"$%d\r\n%s\r\n" % (len(a), a)
            s.sendall(out)
            return _resp(s.makefile("rb"))

    def ping(self):
        try:
            return self.command("PING") == b"PONG"
        except OSError:
            return False


def _resp(f):
    line = f.readline()
    kind, rest = line[:1], line[1:-2]
    if kind == b"+":
        return rest
    if kind == b"-":
        raise IOError(rest.decode())
    if kind == b":":
        return int(rest)
    if kind == b"$":
        n = int(rest)
        if n < 0:
            return None
        data = f.read(n + 2)
        return data[:-2]
    if kind == b"*":
        n = int(rest)
        return None if n < 0 else [_resp(f) for _ in range(n)]
    raise IOError("bad RESP reply %r" % line)


class Response:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers  # list of (name, value)
        self.body = body

    def header(self, name):
        vals = self.all(name)
        return vals[0] if vals else None

    def all(self, name):
        return [v for k, v in self.headers if k.lower() == name.lower()]

    def json(self):
        return json.loads(self.body.decode("utf-8"))


def _read_head(sock_file):
    status_line = sock_file.readline().decode("latin-1").rstrip("\r\n")
    parts = status_line.split(" ", 2)
    if len(parts) < 2:
        raise IOError("bad status line %r" % status_line)
    headers = []
    while True:
        line = sock_file.readline().decode("latin-1")
        if line in ("\r\n", "\n", ""):
            break
        k, _, v = line.partition(":")
        headers.append((k.strip(), v.strip()))
    return int(parts[1]), headers


def request(port, method, path, headers=None, body=None, timeout=10):
    """One HTTP/1.0 request (close-delimited, no chunking to undo)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        lines = ["%s %s HTTP/1.0" % (method, path), "Host: 127.0.0.1"]
        for k, v in (headers or {}).items():
            lines.append("%s: %s" % (k, v))
        if body is not None:
            lines.append("Content-Length: %d" % len(body))
        raw = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + (body or b"")
        s.sendall(raw)
        f = s.makefile("rb")
        status, hdrs = _read_head(f)
        data = f.read() if method != "HEAD" else b""
        f.close()
        return Response(status, hdrs, data)
    finally:
        s.close()


def read_event(readline, stream):
    """The next event of an event stream, parsed per the WHATWG rules from
    readline (bytes lines, b"" at EOF): (arrival_time, {'id', 'event',
    'data'}), or None at EOF. A retry field sets stream.retry."""
    ev = {"id": None, "event": "message", "data": []}
    seen = False
    while True:
        raw = readline()
        if not raw:
            return None
        line = raw.decode("utf-8").rstrip("\n").rstrip("\r")
        if line == "":
            if seen and ev["data"]:
                ev["data"] = "\n".join(ev["data"])
                return time.monotonic(), ev
            ev = {"id": None, "event": "message", "data": []}
            seen = False
            continue
        if line.startswith(":"):
            continue
        field, sep, value = line.partition(":")
        if sep and value.startswith(" "):
            value = value[1:]
        if field == "data":
            ev["data"].append(value)
            seen = True
        elif field in ("event", "id"):
            ev[field] = value
            seen = True
        elif field == "retry" and value.isdigit():
            stream.retry = int(value)


class EventStream:
    """An open SSE stream read line by line with arrival times, parsed per
    the WHATWG event-stream rules."""

    def __init__(self, port, path, headers=None, timeout=10):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        # the port too, as a browser sends it (Apache makes SERVER_PORT of it)
        lines = ["GET %s HTTP/1.0" % path, "Host: 127.0.0.1:%d" % port, "Accept: text/event-stream"]
        for k, v in (headers or {}).items():
            lines.append("%s: %s" % (k, v))
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        self.f = self.sock.makefile("rb")
        self.status, self.headers = _read_head(self.f)
        self.retry = None
        self.closed = False

    def header(self, name):
        for k, v in self.headers:
            if k.lower() == name.lower():
                return v
        return None

    def next_event(self):
        """Returns (arrival_time, {'id','event','data'}) or None at EOF."""
        got = read_event(self.f.readline, self)
        self.closed = got is None
        return got

    def close_cleanly(self):
        """Reads what has arrived, then closes: the kernel sends a FIN (a
        close with unread data would send a reset), which lighttpd and
        Apache cannot tell from a half-close."""
        self.sock.settimeout(0.05)
        try:
            while self.sock.recv(65536):
                pass
        except OSError:
            pass
        self.close()

    def close(self):
        # the file object holds the fd open too: close both
        for obj in (self.f, self.sock):
            try:
                obj.close()
            except OSError:
                pass


def fcgi_request(addr, params, stdin=b"", timeout=10):
    """Minimal FastCGI client (responder role) over TCP: returns the STDOUT
    bytes and the app status of END_REQUEST."""
    def record(rtype, content, req_id=1):
        return struct.pack(">BBHHBx", 1, rtype, req_id, len(content), 0) + content

    def nv(k, v):
        k, v = k.encode(), v.encode()
        def ln(n):
            return struct.pack(">B", n) if n < 128 else struct.pack(">I", n | 0x80000000)
        return ln(len(k)) + ln(len(v)) + k + v

    s = socket.create_connection(addr, timeout=timeout)
    try:
        out = record(1, struct.pack(">HB5x", 1, 0))  # BEGIN_REQUEST, responder
        body = b"".join(nv(k, v) for k, v in params.items())
        out += record(4, body) + record(4, b"")
        out += (record(5, stdin) if stdin else b"") + record(5, b"")
        s.sendall(out)
        stdout, app_status = b"", None
        buf = b""
        while app_status is None:
            chunk = s.recv(65536)
            if not chunk:
                break
            buf += chunk
            while len(buf) >= 8:
                ver, rtype, rid, clen, plen = struct.unpack(">BBHHB", buf[:7])
                if len(buf) < 8 + clen + plen:
                    break
                content = buf[8:8 + clen]
                buf = buf[8 + clen + plen:]
                if rtype == 6:
                    stdout += content
                elif rtype == 3:
                    app_status = struct.unpack(">I", content[:4])[0]
        return stdout, app_status
    finally:
        s.close()


# FCGI_SSE_TEST_STORE=postgres: every fcgi_sse gets a PostgreSQL database
# of its own where it would get a SQLite file of its own, in one private
# cluster for the whole run (tests/pgcluster.py), started on first use.
STORE = os.environ.get("FCGI_SSE_TEST_STORE", "sqlite")
if STORE not in ("sqlite", "postgres"):
    raise SystemExit("FCGI_SSE_TEST_STORE must be sqlite or postgres, not %r" % STORE)
_pg = {"cluster": None, "dir": None, "dbs": {}}


def postgres():
    """The run's PostgreSQL cluster (a pgcluster.Cluster), started on first
    use and stopped when the run ends."""
    if _pg["cluster"] is None:
        import atexit
        import sys
        sys.path.insert(0, os.path.join(ROOT, "tests"))
        import pgcluster
        # right under /tmp: the cluster's user (not root) must reach it
        _pg["dir"] = tempfile.mkdtemp(prefix="fcgi_sse_it_pg_", dir="/tmp")
        try:
            _pg["cluster"] = pgcluster.start(_pg["dir"])
        except BaseException:
            shutil.rmtree(_pg["dir"], ignore_errors=True)
            raise
        atexit.register(stop_postgres)
    return _pg["cluster"]


def stop_postgres():
    if _pg["cluster"] is not None:
        _pg["cluster"].stop()
        _pg["cluster"] = None
        shutil.rmtree(_pg["dir"], ignore_errors=True)


def postgres_database(path):
    """The conninfo of the database standing for the SQLite file at path:
    the same path (two processes sharing a store) gets the same database."""
    if path not in _pg["dbs"]:
        _pg["dbs"][path] = postgres().create_database("t_%d" % (len(_pg["dbs"]) + 1))
    return _pg["dbs"][path]


def with_local_paths(config, run_dir):
    """The config with the store file in run_dir unless it names one (under
    PostgreSQL: the database standing for that file)."""
    cfg = json.loads(json.dumps(config or {}))
    store = cfg.setdefault("store", {})
    store.setdefault("path", os.path.join(run_dir, "fcgi_sse.db"))
    if STORE == "postgres" and store.get("backend", "postgres") == "postgres":
        store["backend"] = "postgres"
        store.setdefault("postgres", postgres_database(store["path"]))
    return cfg


def store_env(path):
    """The environment that puts a process's store at path (under
    PostgreSQL: in the database standing for it)."""
    env = {"FCGI_SSE_STORE_PATH": path}
    if STORE == "postgres":
        env["FCGI_SSE_STORE_BACKEND"] = "postgres"
        env["FCGI_SSE_STORE_POSTGRES"] = postgres_database(path)
    return env


def _dbname(config):
    conninfo = config["store"]["postgres"]
    return dict(kv.split("=", 1) for kv in conninfo.split())["dbname"]


def postgres_sql(config, sql):
    """Runs the tests' own SQL on the database of a PostgreSQL-backed
    config; returns psql's unaligned output."""
    return postgres().psql(sql, dbname=_dbname(config))


class PostgresLock:
    """A session of its own on a config's database that runs `sql` (taking
    a lock) in a transaction and holds it until release()."""

    def __init__(self, config, sql):
        import pgcluster  # (on sys.path since postgres() started)
        self.proc = subprocess.Popen(
            [os.path.join(pgcluster.BIN, "psql"), "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1",
             "-d", postgres().conninfo(_dbname(config))],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.proc.stdin.write("BEGIN;\n%s;\nSELECT 'held';\n" % sql)
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if line.strip() != "held":
            self.release()
            raise RuntimeError("(harness) lock not taken: %r" % line)

    def release(self):
        if self.proc is not None:
            try:
                self.proc.stdin.write("ROLLBACK;\n")
                self.proc.stdin.close()
            except OSError:
                pass
            stop_process(self.proc, 10)
            self.proc = None


class Skipped(Exception):
    """Raised by a test that does not apply to this run (run.py says SKIP)."""


def skip_under_postgres(reason):
    """Skips the calling test when the run's store is PostgreSQL."""
    if STORE == "postgres":
        raise Skipped("store is PostgreSQL: " + reason)


def admin(binary, config_path, *args, stdin=None):
    """Runs `fcgi_sse admin`; returns (status, stdout, stderr)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FCGI_SSE_")}
    p = subprocess.run([binary, "admin", "--config", config_path] + list(args), env=env,
                       input=stdin, capture_output=True, text=True, timeout=30)
    return p.returncode, p.stdout, p.stderr


class Stack(RunDir):
    """fcgi_sse (standalone on a unix socket, or spawned by lighttpd) behind
    a real lighttpd on a free loopback port."""

    def __init__(self, binary, config=None, env=None, spawn=False, name="stack"):
        self.binary = binary
        self.dir = tempfile.mkdtemp(prefix="fcgi_sse_it_%s_" % name)
        os.makedirs(os.path.join(self.dir, "www"))
        self.port = free_port()
        self.config_path = os.path.join(self.dir, "config.json")
        self.config = with_local_paths(config, self.dir)
        with open(self.config_path, "w") as f:
            json.dump(self.config, f)
        self.env = env or {}
        self.spawn = spawn
        self.backend = None
        self.lighttpd = None
        self.backend_log = os.path.join(self.dir, "fcgi_sse.log")

    @property
    def socket_path(self):
        return os.path.join(self.dir, "fcgi_sse.sock")

    def start(self, backend=True):
        """Starts lighttpd, and first a standalone fcgi_sse unless spawn
        (lighttpd starts it) or backend=False (the caller did)."""
        if backend and not self.spawn:
            self.start_backend()
        env = {k: v for k, v in os.environ.items() if not k.startswith("FCGI_SSE_")}
        env.update(PORT=str(self.port), RUN_DIR=self.dir)
        conf = getattr(self, "lighttpd_conf", None) or "lighttpd.conf"
        if self.spawn:
            conf = "lighttpd-spawn.conf"
            env.update(BACKEND_BIN=os.path.abspath(self.binary),
                       BACKEND_CONFIG=self.config_path)
        self.lighttpd = subprocess.Popen(
            # by its absolute path, as its systemd unit starts it: its
            # graceful restart in the background needs that
            [shutil.which("lighttpd") or "lighttpd", "-D", "-f", os.path.join(LIGHTTPD_DIR, conf)],
            env=env, stdout=subprocess.DEVNULL,
            stderr=open(os.path.join(self.dir, "lighttpd.stderr"), "wb"))
        if not wait_until(lambda: port_open(self.port), 10):
            raise RuntimeError("lighttpd did not start: " + self.read(
                "lighttpd.stderr") + self.read("lighttpd.error.log"))
        if self.spawn:
            wait_until(lambda: os.path.exists(self.socket_path + "-0") or
                       os.path.exists(self.socket_path), 5)
        return self

    def start_backend(self, extra_args=()):
        env = {k: v for k, v in os.environ.items() if not k.startswith("FCGI_SSE_")}
        env.update(self.env)
        self.backend = subprocess.Popen(
            [self.binary, "--config", self.config_path,
             "--listen", "unix:" + self.socket_path] + list(extra_args),
            env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=open(self.backend_log, "ab"))
        if not wait_until(lambda: os.path.exists(self.socket_path), 5):
            raise RuntimeError("fcgi_sse did not start: " + self.read("fcgi_sse.log"))

    def log_lines(self):
        """fcgi_sse's log lines (standalone: its stderr; spawned: lighttpd's
        stderr, which the child inherits)."""
        text = self.read("fcgi_sse.log") if not self.spawn else self.read("lighttpd.stderr")
        return [l for l in text.splitlines() if l.strip()]

    def get(self, path, headers=None):
        return request(self.port, "GET", path, headers)

    def stop_backend(self):
        return stop_process(self.backend)

    def stop(self):
        self.stop_backend()
        stop_process(self.lighttpd)


APACHE_DIR = os.path.join(ROOT, "deploy", "apache")
APACHE_MODULES = "/usr/lib/apache2/modules"


class ApacheStack(RunDir):
    """Apache httpd 2.4 in front of fcgi_sse, with the configuration from
    deploy/apache/: mode "proxy" (mod_proxy_fcgi to a standalone fcgi_sse)
    or "fcgid" (mod_fcgid starts fcgi_sse with the socket on fd 0); "proxy-h2"
    is "proxy" with deploy/apache/fcgi_sse-http2.conf (HTTP/2 in front)."""

    def __init__(self, binary, config, mode, env=None):
        self.mode = mode
        self.dir = tempfile.mkdtemp(prefix="fcgi_sse_it_apache_%s_" % mode)
        # Apache's children run as www-data; under mod_fcgid they also create
        # the SQLite files here
        os.chmod(self.dir, 0o777 if mode == "fcgid" else 0o755)
        self.port = free_port()
        self.binary = os.path.join(self.dir, "fcgi_sse")
        shutil.copy(binary, self.binary)
        self.config_path = os.path.join(self.dir, "config.json")
        with open(self.config_path, "w") as f:
            json.dump(with_local_paths(config, self.dir), f)
        os.chmod(self.config_path, 0o644)
        self.env = env or {}
        self.backend = None
        self.httpd = None

    @property
    def socket_path(self):
        return os.path.join(self.dir, "fcgi_sse.sock")

    def _conf(self):
        lines = [
            "ServerRoot /usr/lib/apache2",
            "ServerName 127.0.0.1",
            "Listen 127.0.0.1:%d" % self.port,
            "PidFile %s/httpd.pid" % self.dir,
            "ErrorLog %s/error.log" % self.dir,
            "LogLevel warn",
            "LoadModule mpm_event_module %s/mod_mpm_event.so" % APACHE_MODULES,
            "LoadModule authz_core_module %s/mod_authz_core.so" % APACHE_MODULES,
            "LoadModule alias_module %s/mod_alias.so" % APACHE_MODULES,
            "LoadModule setenvif_module %s/mod_setenvif.so" % APACHE_MODULES,
            "User www-data",
            "Group www-data",
            "DocumentRoot %s" % self.dir,
        ]
        if self.mode.startswith("proxy"):
            lines += ["Define FCGI_SSE_SOCKET %s" % self.socket_path,
                      "Include %s/fcgi_sse-proxy-fcgi.conf" % APACHE_DIR]
            if self.mode.startswith("proxy-h2"):
                lines += ["Include %s/fcgi_sse-http2.conf" % APACHE_DIR]
            if self.mode == "proxy-h2-tls":
                lines += self._tls_vhost()
        else:
            os.makedirs(os.path.join(self.dir, "fcgid"))
            shutil.chown(os.path.join(self.dir, "fcgid"), "www-data")
            lines += ["FcgidIPCDir %s/fcgid" % self.dir,
                      "FcgidProcessTableFile %s/fcgid_shm" % self.dir,
                      "Define FCGI_SSE_BIN %s" % self.binary,
                      "Define FCGI_SSE_CONFIG_FILE %s" % self.config_path,
                      "Include %s/fcgi_sse-fcgid.conf" % APACHE_DIR]
            # mod_fcgid gives its children only PATH and FcgidInitialEnv:
            # pass the sanitizer settings of make integration-san on, or a
            # report from a process it runs would go unseen
            env = {k: os.environ[k] for k in ("ASAN_OPTIONS", "UBSAN_OPTIONS") if k in os.environ}
            env.update(self.env)
            for k, v in env.items():
                lines.append("FcgidInitialEnv %s %s" % (k, v))
        lines += getattr(self, "extra_conf", [])
        path = os.path.join(self.dir, "httpd.conf")
        with open(path, "w") as f:
            f.write("\n".join(lines) + "\n")
        return path

    def _tls_vhost(self):
        """A TLS virtual host on tls_port (a self-signed certificate made
        here): HTTP/2 over TLS, negotiated by ALPN, as browsers speak it."""
        self.tls_port = free_port()
        cert, key = os.path.join(self.dir, "cert.pem"), os.path.join(self.dir, "key.pem")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                        "-subj", "/CN=127.0.0.1", "-keyout", key, "-out", cert],
                       check=True, capture_output=True)
        return ["LoadModule socache_shmcb_module %s/mod_socache_shmcb.so" % APACHE_MODULES,
                "LoadModule ssl_module %s/mod_ssl.so" % APACHE_MODULES,
                "Listen 127.0.0.1:%d" % self.tls_port,
                "<VirtualHost 127.0.0.1:%d>" % self.tls_port,
                "    SSLEngine on",
                "    SSLCertificateFile %s" % cert,
                "    SSLCertificateKeyFile %s" % key,
                "</VirtualHost>"]

    def start_backend(self):
        """The standalone fcgi_sse of the proxy modes, on a socket Apache's
        user may write."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("FCGI_SSE_")}
        env.update(self.env)
        if os.path.exists(self.socket_path):
            os.unlink(self.socket_path)
        self.backend = subprocess.Popen(
            [self.binary, "--config", self.config_path, "--listen", "unix:" + self.socket_path],
            env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=open(os.path.join(self.dir, "fcgi_sse.log"), "ab"))
        if not wait_until(lambda: os.path.exists(self.socket_path), 5):
            raise RuntimeError("fcgi_sse did not start")
        os.chmod(self.socket_path, 0o666)

    def start(self):
        if self.mode.startswith("proxy"):
            self.start_backend()
        else:
            # tenants and users made with the admin command (as root) before
            # the start: mod_fcgid's processes run as www-data and write the
            # store (the file, and its -wal/-shm should they be left)
            for name in os.listdir(self.dir):
                if name.startswith("fcgi_sse.db"):
                    shutil.chown(os.path.join(self.dir, name), "www-data", "www-data")
        conf = self._conf()
        self.httpd = subprocess.Popen(
            ["apache2", "-f", conf, "-DFOREGROUND"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=open(os.path.join(self.dir, "httpd.stderr"), "wb"))
        if not wait_until(lambda: port_open(self.port), 10):
            raise RuntimeError("apache did not start: " + self.read("httpd.stderr") + self.read("error.log"))
        return self

    def log_lines(self):
        text = self.read("fcgi_sse.log") if self.mode.startswith("proxy") else self.read("error.log")
        return [l for l in text.splitlines() if l.startswith("{")]

    def get(self, path, headers=None):
        return request(self.port, "GET", path, headers)

    def stop(self):
        stop_process(self.httpd)
        stop_process(self.backend)
