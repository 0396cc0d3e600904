"""The deployments of deploy/, each started from its files as a user would
include them (the harness stacks of the integration tests, which use those
files), on loopback ports of its own. Each setup: start(), a client,
admin(), restart() (graceful, during streams), log(), cleanup()."""

import json
import os
import signal
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
from common import BASE_CONFIG, SECRET  # noqa: E402
from harness import (APACHE_MODULES, LIGHTTPD_DIR, ApacheStack, Stack, admin, free_port, stop_process,  # noqa: E402
                     wait_until)

from clients import H1, H2, H2TLS  # noqa: E402


def config(redis_port, extra=None):
    cfg = json.loads(json.dumps(BASE_CONFIG))
    cfg["redis"] = {"host": "127.0.0.1", "port": redis_port}
    cfg["sse"]["retry_ms"] = 500           # reconnects after a restart come quickly
    cfg["sse"]["retry_jitter_pct"] = 50
    # heartbeats far apart: a closed stream freed at once is the peer
    # check's doing (scenario.closed_stream_freed), not a heartbeat's
    cfg["sse"]["heartbeat_interval_ms"] = 20000
    cfg["security"]["internal_secret"] = SECRET
    for sec, vals in (extra or {}).items():
        cfg.setdefault(sec, {}).update(vals)
    return cfg


def backend_pids(config_path):
    """The fcgi_sse processes running with this config (their command line
    or their environment names it)."""
    pids = set()
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open("/proc/%s/cmdline" % pid, "rb") as f:
                cmd = f.read()
            with open("/proc/%s/environ" % pid, "rb") as f:
                env = f.read()
        except OSError:
            continue
        if b"fcgi_sse" in cmd.split(b"\0")[0] and config_path.encode() in cmd + env:
            pids.add(int(pid))
    return pids


class StackSetup:
    """What every setup over a harness stack (self.stack) shares."""
    client_class = H1

    def admin(self, *args, stdin=None):
        return admin(self.stack.binary, self.stack.config_path, *args, stdin=stdin)

    def start(self):
        self.stack.start()
        self.port = self.stack.port
        return self

    def cleanup(self):
        self.stack.cleanup()


class LighttpdSocket(StackSetup):
    """deploy/lighttpd/fcgi_sse.conf: fcgi_sse on its own unix socket (as a
    supervisor runs it); restart: lighttpd's graceful restart (in the
    background: the new one accepts at once), then fcgi_sse's process is
    stopped (SIGTERM: streams end with `event: shutdown`) and a new one
    started on the same socket."""
    name = "lighttpd socket"

    def __init__(self, binary, redis_port):
        self.stack = Stack(binary, config(redis_port), name="deploy-socket")

    def restart(self):
        old = self.stack.backend.pid
        self.stack.lighttpd.send_signal(signal.SIGUSR1)
        self.stack.stop_backend()
        self.stack.start_backend()
        assert self.stack.backend.pid != old

    def log(self):
        return self.stack.read("fcgi_sse.log")[-3000:] + self.stack.read("lighttpd.error.log")[-2000:]


class LighttpdBinPath(LighttpdSocket):
    """deploy/lighttpd/fcgi_sse-spawn.conf: lighttpd starts fcgi_sse
    (bin-path) and passes the socket on fd 0; restart: lighttpd's graceful
    restart (SIGUSR1), which starts its backends anew."""
    name = "lighttpd bin-path"

    def __init__(self, binary, redis_port):
        self.stack = Stack(binary, config(redis_port), spawn=True, name="deploy-binpath")

    def restart(self):
        self.old_pids = backend_pids(self.stack.config_path)
        assert self.old_pids, "no fcgi_sse started by lighttpd"
        self.stack.lighttpd.send_signal(signal.SIGUSR1)

    def restarted(self):
        """After the scenario: the restart ran new backends (not checked in
        restart(): the old lighttpd finishes only once its clients have
        read the end of their streams)."""
        assert wait_until(lambda: (lambda now: now and not now & self.old_pids)(
            backend_pids(self.stack.config_path)), 20, 0.1), "lighttpd's graceful restart left the old backends"

    def log(self):
        return self.stack.read("lighttpd.stderr")[-3000:] + self.stack.read("lighttpd.error.log")[-2000:]

    def cleanup(self):
        StackSetup.cleanup(self)
        # a lighttpd stopped in the middle of its graceful restart may have
        # spawned backends it no longer knows of
        for pid in backend_pids(self.stack.config_path):
            os.kill(pid, signal.SIGKILL)


class LighttpdDeflate(LighttpdSocket):
    """The socket setup with mod_deflate on for every text/ and
    application/ type, as a site may have it, and deploy/lighttpd/
    fcgi_sse-deflate.conf: JSON answers compressed, streams not."""
    name = "lighttpd socket with mod_deflate"

    def start(self):
        conf = os.path.join(self.stack.dir, "lighttpd-deflate.conf")
        with open(conf, "w") as f:
            for name in ("base.conf", "fcgi_sse.conf"):
                f.write('include "%s"\n' % os.path.join(LIGHTTPD_DIR, name))
            f.write('server.modules += ( "mod_deflate" )\n'
                    'deflate.mimetypes = ( "text/", "application/" )\n'
                    'deflate.allowed-encodings = ( "gzip" )\n')
            f.write('include "%s"\n' % os.path.join(LIGHTTPD_DIR, "fcgi_sse-deflate.conf"))
        self.stack.lighttpd_conf = conf
        return LighttpdSocket.start(self)

    def checks(self, client, login):
        gz = {"Accept-Encoding": "gzip"}
        r = client.request("GET", "/api/v2/me", login.headers(gz))
        assert r.status == 200 and r.header("Content-Encoding") == "gzip", \
            "JSON answers compressed: %d %r" % (r.status, r.header("Content-Encoding"))
        es = client.stream("/api/v2/events/stream", login.headers(gz))
        try:
            assert es.status == 200 and es.header("Content-Encoding") is None, \
                "the stream left uncompressed: %r" % es.header("Content-Encoding")
        finally:
            es.close_cleanly()


class LighttpdH2TLS(LighttpdSocket):
    """The socket setup with a TLS port (mod_openssl, a self-signed
    certificate): HTTP/2 as a browser negotiates it (ALPN h2). Events are
    published over the plain port."""
    name = "lighttpd over HTTP/2 + TLS"
    client_class = H2TLS

    def start(self):
        d = self.stack.dir
        self.client_port = free_port()
        pem = os.path.join(d, "tls.pem")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                        "-subj", "/CN=127.0.0.1", "-keyout", pem, "-out", pem + ".crt"],
                       check=True, capture_output=True)
        with open(pem, "a") as f, open(pem + ".crt") as crt:
            f.write(crt.read())
        conf = os.path.join(d, "lighttpd-tls.conf")
        with open(conf, "w") as f:
            for name in ("base.conf", "fcgi_sse.conf"):
                f.write('include "%s"\n' % os.path.join(LIGHTTPD_DIR, name))
            f.write('server.modules += ( "mod_openssl" )\n'
                    '$SERVER["socket"] == "127.0.0.1:%d" {\n'
                    '    ssl.engine = "enable"\n'
                    '    ssl.pemfile = "%s"\n'
                    '}\n' % (self.client_port, pem))
        self.stack.lighttpd_conf = conf
        return LighttpdSocket.start(self)


class LighttpdH2(LighttpdSocket):
    """The socket setup reached over HTTP/2 (h2c with prior knowledge):
    lighttpd 1.4.69 speaks HTTP/2 by default (server.h2proto), and the
    same fcgi_sse.conf keeps its streams unbuffered."""
    name = "lighttpd over HTTP/2"
    client_class = H2


class ApacheProxyFcgi(StackSetup):
    """deploy/apache/fcgi_sse-proxy-fcgi.conf: mod_proxy_fcgi to a
    standalone fcgi_sse; restart: Apache's graceful restart and then a new
    fcgi_sse process."""
    name = "apache proxy_fcgi"
    mode = "proxy"

    def __init__(self, binary, redis_port):
        self.stack = ApacheStack(binary, config(redis_port), self.mode)
        # mod_deflate on for JSON and for event streams too, as a site may
        # have it: the deploy file's no-gzip must keep streams plain
        self.stack.extra_conf = [
            "LoadModule filter_module %s/mod_filter.so" % APACHE_MODULES,
            "LoadModule deflate_module %s/mod_deflate.so" % APACHE_MODULES,
            "AddOutputFilterByType DEFLATE application/json text/event-stream",
        ]

    checks = LighttpdDeflate.checks

    def restart(self):
        self.stack.httpd.send_signal(signal.SIGUSR1)  # apache2ctl graceful
        old = self.stack.backend
        stop_process(old)
        self.stack.start_backend()
        assert self.stack.backend.pid != old.pid

    def log(self):
        return self.stack.read("fcgi_sse.log")[-3000:] + self.stack.read("error.log")[-2000:]


class ApacheProxyFcgiH2(ApacheProxyFcgi):
    """The same, with deploy/apache/fcgi_sse-http2.conf: HTTP/2 (h2c) in
    front, its output unbuffered."""
    name = "apache proxy_fcgi over HTTP/2"
    client_class = H2
    mode = "proxy-h2"
    # mod_http2 closes the client's connection itself and the handler does
    # not watch the client: only the peer check's sweep of established
    # connections finds it gone, every look while a stream is on HTTP/2
    # (the default bound: before that sweep ran every tenth look, and a
    # stream younger than the last one, as this test's is, waited for its
    # heartbeat, 20 s)


class ApacheProxyFcgiH2TLS(ApacheProxyFcgi):
    """The same over TLS (mod_ssl, a self-signed certificate): HTTP/2 as a
    browser negotiates it (ALPN h2). The user's client talks TLS; events
    are published over the plain port."""
    name = "apache proxy_fcgi over HTTP/2 + TLS"
    client_class = H2TLS
    mode = "proxy-h2-tls"

    def start(self):
        ApacheProxyFcgi.start(self)
        self.client_port = self.stack.tls_port
        return self


class ApacheFcgid(ApacheProxyFcgi):
    """deploy/apache/fcgi_sse-fcgid.conf: mod_fcgid starts fcgi_sse itself;
    restart: Apache's graceful restart, which ends mod_fcgid's processes."""
    name = "apache mod_fcgid"
    mode = "fcgid"

    def restart(self):
        self.stack.httpd.send_signal(signal.SIGUSR1)

    def log(self):
        return self.stack.read("error.log")[-4000:]


ALL = [LighttpdSocket, LighttpdBinPath, LighttpdDeflate, LighttpdH2, LighttpdH2TLS, ApacheFcgid, ApacheProxyFcgi, ApacheProxyFcgiH2, ApacheProxyFcgiH2TLS]


def all_setups():
    """Every setup: these and the supervisors' (setups_spawn.py)."""
    from setups_spawn import SPAWN
    return ALL + SPAWN
