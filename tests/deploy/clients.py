"""HTTP clients for the deploy tests: HTTP/1.0 over a socket (the
integration harness's), and HTTP/2 through curl (nghttp2), cleartext with
prior knowledge, the way an HTTP/2 front server is reached on loopback.
Both give Response objects and event streams with the same interface."""

import os
import select
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
from harness import EventStream, Response, read_event, request  # noqa: E402


class H1:
    """HTTP/1.0, one connection per request (harness.request)."""
    name = "HTTP/1.0"

    def __init__(self, port):
        self.port = port

    def request(self, method, path, headers=None, body=None, timeout=10):
        return request(self.port, method, path, headers, body, timeout)

    def stream(self, path, headers=None, timeout=10):
        return EventStream(self.port, path, headers, timeout)


def _parse_head(raw):
    """curl -i output: possibly several heads (none here: no 1xx), then the body."""
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    version, status = lines[0].split(" ")[:2]
    headers = []
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers.append((k.strip(), v.strip()))
    return version, int(status), headers, body


class H2:
    """HTTP/2 cleartext with prior knowledge (h2c), through curl. Every
    answer is checked to have come over HTTP/2."""
    name = "HTTP/2"
    how = ["--http2-prior-knowledge"]
    scheme = "http"

    def __init__(self, port):
        self.port = port

    def _argv(self, method, path, headers):
        argv = ["curl", "-sS", "-i"] + self.how + ["-X", method,
                                                   "%s://127.0.0.1:%d%s" % (self.scheme, self.port, path)]
        for k, v in (headers or {}).items():
            argv += ["-H", "%s: %s" % (k, v)]
        return argv

    def request(self, method, path, headers=None, body=None, timeout=10):
        argv = self._argv(method, path, headers)
        if body is not None:
            argv += ["--data-binary", "@-"]
        if method == "HEAD":
            argv[argv.index("-X"):argv.index("-X") + 2] = ["-I"]
        p = subprocess.run(argv + ["--max-time", str(timeout)], input=body, capture_output=True)
        if p.returncode != 0:
            raise IOError("curl: %s" % p.stderr.decode(errors="replace").strip())
        version, status, hdrs, data = _parse_head(p.stdout)
        if version != "HTTP/2":
            raise AssertionError("answered over %s, not HTTP/2" % version)
        return Response(status, hdrs, data)

    def stream(self, path, headers=None, timeout=10):
        return CurlEventStream(self._argv("GET", path, dict(headers or {}, Accept="text/event-stream")),
                               timeout)


class H2TLS(H2):
    """HTTP/2 over TLS, negotiated by ALPN (as browsers speak it), through
    curl; the test's self-signed certificate is accepted."""
    name = "HTTP/2 over TLS"
    how = ["--http2", "--insecure"]
    scheme = "https"


class CurlEventStream:
    """An SSE stream read from curl -N's output, with EventStream's
    interface (status, headers, retry, next_event, close)."""

    def __init__(self, argv, timeout):
        self.timeout = timeout
        self.proc = subprocess.Popen(argv + ["-N"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        self.buf = b""
        self.retry = None
        self.closed = False
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = self._read()
            if not chunk:
                raise IOError("stream: no head")
            head += chunk
        version, self.status, self.headers, self.buf = _parse_head(head)
        if version != "HTTP/2":
            raise AssertionError("streamed over %s, not HTTP/2" % version)

    def _read(self):
        r, _, _ = select.select([self.proc.stdout], [], [], self.timeout)
        if not r:
            raise TimeoutError("stream: nothing for %s s" % self.timeout)
        return os.read(self.proc.stdout.fileno(), 65536)

    def header(self, name):
        for k, v in self.headers:
            if k.lower() == name.lower():
                return v
        return None

    def _readline(self):
        while b"\n" not in self.buf:
            chunk = self._read()
            if not chunk:
                line, self.buf = self.buf, b""
                return line
            self.buf += chunk
        line, _, self.buf = self.buf.partition(b"\n")
        return line + b"\n"

    def next_event(self):
        got = read_event(self._readline, self)
        self.closed = got is None
        return got

    def close_cleanly(self):
        """curl ends: its kernel closes the connection (over HTTP/2 the
        front server sees the connection go, not a half-close)."""
        self.close()

    def close(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        self.proc.stdout.close()
