"""Hostile input over HTTP (issue #15): fcgi_sse attacked through the real
lighttpd of the harness (and, where lighttpd filters an attack out before
fcgi_sse could see it, straight over FastCGI, as a laxer front server would
pass it on). Each attack must get its documented status and error code
(docs/API.md, docs/SECURITY.md; ../shared/API.md is the contract), and the
service must be healthy afterwards: a normal request still answered, no
process gone, and fcgi_sse's open files back to about where they were.

What the other files cover already and is not repeated here: the basic
token errors (auth_tests.token_errors_each_get_their_code), login limits
per user and address (protection_tests), SSE data round trips
(events_tests.events_data_round_trips_and_cannot_inject_lines), devices of
another tenant (devices_tests), a POST without Content-Length (run.py).

Registered by run.py; `-k hostile` runs them all."""

import json
import os
import re
import socket
import struct
import threading
import time
import uuid

from auth_tests import KEYS, PASSWORD, Client, b64, claims_of, new_tenant, post_json, sign
from common import SECRET, _stack, check, problem, test
from events_tests import STREAM, fresh_session_id, new_session, publish, published_id, session_url
from harness import EventStream, Response, _read_head, request, wait_until

HDR = {"alg": "HS256", "typ": "JWT", "kid": "it1"}
LOGIN = "/api/v2/auth/login"
DEVICES = "/api/v2/devices"
# Open files fcgi_sse may gain between a warm baseline and the end of a
# test without any leak: worker threads and background steps open their
# Redis and store connections (3 files each for SQLite in WAL mode) when
# they are first needed. A leak per attack would pass this by far.
FD_SLACK = 10
GEN_ID = re.compile(r"[0-9a-f]{32}")
SSE_LINE = re.compile(rb"(retry: \d+|id: \d+-\d+|event: [A-Za-z0-9_.:-]+|data: .*|)")


# ---------------------------------------------------------------- helpers

def fd_count(st):
    return len(os.listdir("/proc/%d/fd" % st.backend.pid))


def fd_kinds(st):
    """fcgi_sse's open files by kind (socket, pipe, the store...), for the
    message when their count is off."""
    kinds = {}
    d = "/proc/%d/fd" % st.backend.pid
    for name in os.listdir(d):
        try:
            target = os.readlink(os.path.join(d, name))
        except OSError:
            continue
        kind = re.sub(r"\[\d+\]$", "", os.path.basename(target))
        kinds[kind] = kinds.get(kind, 0) + 1
    return kinds


def warm(st, client=None):
    """Runs requests on every worker thread (12 at once, three rounds: a
    read, and with a client a login, which writes) and opens a stream, so
    that the connections threads and the event hub open when first needed
    are in the baseline; returns the open-file count then."""
    n = [0]
    lock = threading.Lock()

    def work():
        request(st.port, "GET", "/api/v2/health")
        if client is None:
            return
        client.get("/api/v2/me")
        with lock:
            n[0] += 1
            addr = "198.18.%d.%d" % divmod(n[0], 250)
        post_json(st.port, LOGIN, {"tenant": client.body["user"]["tenant"]["name"],
                                   "username": client.body["user"]["username"], "password": PASSWORD},
                  {"X-Forwarded-For": addr})
    for _ in range(3):
        threads = [threading.Thread(target=work) for _ in range(12)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    if client is not None:
        es = EventStream(st.port, STREAM, client.headers())
        try:
            check(es.status == 200 and es.next_event() is not None, "warm-up stream: %d" % es.status)
        finally:
            es.close()
    return fd_count(st)


def healthy(st, client=None, fds=None):
    """The service after an attack: both processes alive, health and (with
    a client) an authenticated request answered correctly, and fcgi_sse's
    open files back near the baseline fds."""
    check(st.backend.poll() is None, "fcgi_sse died (status %r)" % st.backend.returncode)
    check(st.lighttpd.poll() is None, "lighttpd died (status %r)" % st.lighttpd.returncode)
    r = request(st.port, "GET", "/api/v2/health", timeout=10)
    check(r.status == 200 and r.json()["status"] == "ok", "health after the attack: %d %r" % (r.status, r.body[:200]))
    if client is not None:
        r = client.get("/api/v2/me")
        check(r.status == 200 and r.json()["user"]["username"], "GET /me after the attack: %d %r" % (r.status, r.body[:200]))
    if fds is not None:
        check(wait_until(lambda: fd_count(st) <= fds + FD_SLACK, 10, 0.1),
              "fcgi_sse's open files: %d, baseline %d: %r" % (fd_count(st), fds, fd_kinds(st)))


def raw_exchange(port, data, total=3.0, shut=False):
    """Sends raw bytes and returns what comes back until the server closes
    or `total` seconds pass. shut: half-close after sending."""
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    try:
        s.sendall(data)
        if shut:
            s.shutdown(socket.SHUT_WR)
        s.settimeout(0.2)
        out = b""
        end = time.monotonic() + total
        while time.monotonic() < end:
            try:
                chunk = s.recv(65536)
            except socket.timeout:
                continue
            except ConnectionResetError:
                break
            if not chunk:
                break
            out += chunk
        return out
    finally:
        s.close()


def parse_responses(data):
    """Splits raw HTTP/1.x bytes into Responses (by Content-Length)."""
    out = []
    while data:
        head, sep, rest = data.partition(b"\r\n\r\n")
        if not sep:
            break
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ")[1])
        headers = [(k.strip(), v.strip()) for k, _, v in (l.partition(":") for l in lines[1:])]
        n = int(dict((k.lower(), v) for k, v in headers).get("content-length", len(rest)))
        out.append(Response(status, headers, rest[:n]))
        data = rest[n:]
    return out


def head_block(c, extra=""):
    return "".join("%s: %s\r\n" % kv for kv in c.headers().items()) + extra


def from_front(r):
    """A refusal by lighttpd itself (its HTML page, no fcgi_sse headers)."""
    return r.header("X-Request-Id") is None and (r.header("Content-Type") or "").startswith("text/html")


def refused_by_front_or(r, status, code):
    """lighttpd's own 400 (it refuses the bytes before fcgi_sse sees them),
    or else fcgi_sse's documented answer."""
    if r.status == 400 and from_front(r):
        return None
    return problem(r, status, code)


def send(c, method, path, body=None, ctype="application/json", headers=None):
    """A request of client c (its token and cookie)."""
    h = c.headers()
    if ctype is not None:
        h["Content-Type"] = ctype
    h.update(headers or {})
    if isinstance(body, (dict, list)):
        body = json.dumps(body).encode()
    if body is None and method in ("POST", "PUT", "PATCH"):
        body = b""
    return request(c.port, method, path, h, body)


def stream_response(port, path, headers):
    """GET of a stream URL: a 200 is closed at once (body empty), anything
    else is read whole."""
    es = EventStream(port, path, headers)
    try:
        if es.status == 200:
            return Response(200, es.headers, b"")
        return Response(es.status, es.headers, es.f.read())
    finally:
        es.close()


def device_names(c):
    # (decoded leniently: a list holding a name stored from bytes that are
    # not UTF-8 must still be readable here to say so)
    body = c.get(DEVICES + "?limit=200").body.decode("utf-8", "replace")
    return {d["name"] for d in json.loads(body)["items"]}


class Findings:
    """Collects the wrong answers of a table of attacks, so that one run
    reports all of them, not just the first."""

    def __init__(self):
        self.items = []

    def check(self, cond, msg):
        if not cond:
            self.items.append(msg)
        return cond

    def expect(self, label, fn, *args):
        try:
            return fn(*args)
        except AssertionError as e:
            self.items.append("%s: %s" % (label, str(e)[:200]))
            return None

    def done(self):
        check(not self.items, "%d wrong answers: %s" % (len(self.items), "; ".join(self.items)))


def forged(claims, **changes):
    return sign(HDR, dict(claims, **changes))


def raw_signed(header_bytes, payload_bytes, key=KEYS["it1"]):
    import hashlib
    import hmac
    h, p = b64(header_bytes), b64(payload_bytes)
    return "%s.%s.%s" % (h, p, b64(hmac.new(key, ("%s.%s" % (h, p)).encode(), hashlib.sha256).digest()))


# FastCGI straight to fcgi_sse's unix socket, for the bytes lighttpd
# refuses: Apache, mod_fcgid and others pass some of them on.

def _record(rtype, content):
    return struct.pack(">BBHHBx", 1, rtype, 1, len(content), 0) + content


def _pair(k, v):
    def ln(n):
        return struct.pack(">B", n) if n < 128 else struct.pack(">I", n | 0x80000000)
    k = k if isinstance(k, bytes) else k.encode("latin-1")
    v = v if isinstance(v, bytes) else v.encode("latin-1")
    return ln(len(k)) + ln(len(v)) + k + v


def fcgi_unix(path, params, stdin=b"", total=3.0, until=None):
    """One FastCGI responder request over a unix socket: the STDOUT bytes,
    read until END_REQUEST, until `until` is in them, or for `total` s."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(0.2)
    try:
        s.connect(path)
        out = _record(1, struct.pack(">HB5x", 1, 0))
        out += _record(4, b"".join(_pair(k, v) for k, v in params.items())) + _record(4, b"")
        for i in range(0, len(stdin), 8192):
            out += _record(5, stdin[i:i + 8192])
        s.sendall(out + _record(5, b""))
        buf, stdout = b"", b""
        end = time.monotonic() + total
        while time.monotonic() < end:
            try:
                chunk = s.recv(65536)
            except socket.timeout:
                continue
            if not chunk:
                break
            buf += chunk
            while len(buf) >= 8:
                _, rtype, _, clen, plen = struct.unpack(">BBHHB", buf[:7])
                if len(buf) < 8 + clen + plen:
                    break
                if rtype == 6:
                    stdout += buf[8:8 + clen]
                elif rtype == 3:
                    return stdout
                buf = buf[8 + clen + plen:]
            if until is not None and until in stdout:
                return stdout
        return stdout
    finally:
        s.close()


def fcgi_params(method, uri, headers=None):
    """The params lighttpd would send for a request (headers as HTTP_*)."""
    p = {"REQUEST_METHOD": method, "REQUEST_URI": uri, "SERVER_PROTOCOL": "HTTP/1.1",
         "REMOTE_ADDR": "127.0.0.1", "SCRIPT_NAME": uri.split("?")[0]}
    for k, v in (headers or {}).items():
        p["HTTP_" + k.upper().replace("-", "_")] = v
    return p


def cgi_head(stdout):
    """(status, [(name, value)], body) of a CGI-style answer."""
    head, _, body = stdout.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    check(lines[0].startswith(b"Status: "), "CGI head %r" % head[:80])
    hdrs = [tuple(x.strip() for x in l.split(b":", 1)) for l in lines[1:]]
    return int(lines[0].split()[1]), hdrs, body


def no_injected_header(hdrs, what):
    names = [k.lower() for k, _ in hdrs]
    check(b"set-cookie" not in names and b"x-evil" not in names, "%s: an injected header came back: %r" % (what, hdrs))
    for k, v in hdrs:
        check(b"\r" not in v and b"\n" not in v, "%s: a header value holds CR/LF: %r" % (what, v))


def sse_lines_only(body, what):
    """Every line of an event-stream body is a field fcgi_sse writes, or
    blank; the injected ones are absent."""
    check(b"\r" not in body, "%s: raw CR in the stream" % what)
    for line in body.split(b"\n"):
        check(SSE_LINE.fullmatch(line), "%s: unexpected line %r" % (what, line[:100]))
        check(not line.startswith((b"event: evil", b"data: injected")), "%s: injected %r" % (what, line))


# ---------------------------------------------------------------- bodies

@test
def hostile_bodies_beyond_the_limit_lying_lengths_and_chunked(s):
    """http.max_body_bytes is 1024 in the suite's config: a body of 1024
    bytes is read, 1025 is 413 on every body route, chunked or not;
    Content-Length longer or shorter than the body, or together with
    Transfer-Encoding, never applies anything but the bytes it announced;
    a body that trickles in is read whole."""
    tenant = new_tenant(s, (("op", "operator"),))
    op = Client(s.port, tenant, "op")
    fds = warm(s, op)
    for path in (LOGIN, DEVICES, "/api/v2/events", "/api/v2/users", "/api/v2/devices/x/telemetry"):
        for c in (None, op):  # the size rule comes before authentication
            r = request(s.port, "POST", path, dict(c.headers() if c else {}, **{"Content-Type": "application/json"}),
                        b"{" + b" " * 1023 + b"}")
            problem(r, 413, "request.too_large")
    r = request(s.port, "PATCH", DEVICES + "/x", dict(op.headers(), **{"Content-Type": "application/json"}), b" " * 5000)
    problem(r, 413, "request.too_large")
    # 1024 bytes exactly: read and answered on its merits
    body = json.dumps({"tenant": tenant, "username": "op", "password": "wrong"}).encode()
    r = request(s.port, "POST", LOGIN, {"Content-Type": "application/json"}, body + b" " * (1024 - len(body)))
    problem(r, 401, "auth.invalid_credentials")

    hdr = head_block(op, "Content-Type: application/json\r\nConnection: close\r\n").encode()
    post = b"POST " + DEVICES.encode() + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n" + hdr
    # chunked: small is fine, beyond the limit is 413 (no Content-Length to
    # refuse it early: fcgi_sse stops reading at the limit)
    small = json.dumps({"name": "chunked-ok"}).encode()
    got = parse_responses(raw_exchange(s.port, post + b"Transfer-Encoding: chunked\r\n\r\n" +
                                       b"%x\r\n%s\r\n0\r\n\r\n" % (len(small), small)))
    check(got and got[0].status == 201 and got[0].json()["name"] == "chunked-ok", "chunked body: %r" %
          [(x.status, x.body[:100]) for x in got])
    big = b"".join(b"200\r\n" + b" " * 512 + b"\r\n" for _ in range(3)) + b"0\r\n\r\n"
    got = parse_responses(raw_exchange(s.port, post + b"Transfer-Encoding: chunked\r\n\r\n" + big))
    check(got, "no answer to an oversized chunked body")
    problem(got[0], 413, "request.too_large")
    # Content-Length shorter than the body: only the announced bytes are
    # the body (a cut JSON object: 400), the rest is not part of it
    full = json.dumps({"name": "cut-short-xyz"}).encode()
    got = parse_responses(raw_exchange(s.port, post + b"Content-Length: %d\r\n\r\n" % (len(full) - 6) + full))
    check(got, "no answer to a body longer than its Content-Length")
    problem(got[0], 400, "request.malformed_json")
    # Content-Length longer than the body, then the client gives up
    out = raw_exchange(s.port, post + b"Content-Length: %d\r\n\r\n" % (len(full) + 50) + full, total=5, shut=True)
    for resp in parse_responses(out):
        check(resp.status >= 400 and resp.status != 500, "a cut body answered %d %r" % (resp.status, resp.body[:200]))
    # request smuggling shapes: lighttpd refuses them whole
    for extra in (b"Transfer-Encoding: chunked\r\nContent-Length: 4\r\n",
                  b"Content-Length: 4\r\nContent-Length: %d\r\n" % len(full),
                  b"Content-Length: -1\r\n", b"Content-Length: 99999999999999999999999\r\n",
                  b"Transfer-Encoding: gzip, chunked\r\n"):
        smuggle = json.dumps({"name": "smuggled"}).encode()
        got = parse_responses(raw_exchange(s.port, post + extra + b"\r\n" + b"%x\r\n%s\r\n0\r\n\r\n" % (len(smuggle), smuggle)))
        check(got and (from_front(got[0]) and got[0].status in (400, 411, 413, 501) or
                       400 <= got[0].status < 500 and got[0].status != 429),
              "%r: %r" % (extra, [(x.status, x.body[:80]) for x in got]))
    names = device_names(op)
    check(names == {"chunked-ok"}, "only the honest chunked body created a device: %r" % names)
    # a body trickling in (four pieces, 0.3 s apart) is read whole
    trickle = json.dumps({"name": "trickled"}).encode()
    sk = socket.create_connection(("127.0.0.1", s.port), timeout=10)
    try:
        sk.sendall(post + b"Content-Length: %d\r\n\r\n" % len(trickle))
        for i in range(0, len(trickle), (len(trickle) + 3) // 4):
            time.sleep(0.3)
            sk.sendall(trickle[i:i + (len(trickle) + 3) // 4])
        f = sk.makefile("rb")
        status, hdrs = _read_head(f)
        data = f.read()
        f.close()
    finally:
        sk.close()
    check(status == 201 and json.loads(data)["name"] == "trickled", "trickled body: %d %r" % (status, data[:200]))
    healthy(s, op, fds)


@test
def hostile_malformed_json_wrong_types_and_unknown_fields(s):
    """Anything but one JSON object is 400 request.malformed_json; fields
    of the wrong type, and (docs/SECURITY.md, "Input") unknown fields, are
    400 request.invalid_field; nothing is applied."""
    tenant = new_tenant(s, (("adm", "admin"), ("op", "operator")))
    adm, op = Client(s.port, tenant, "adm"), Client(s.port, tenant, "op")
    fds = warm(s, op)
    dev = send(op, "POST", DEVICES, {"name": "base"}).json()["id"]
    tel = DEVICES + "/" + dev + "/telemetry"
    malformed = [b"", b" ", b"[]", b'"s"', b"1", b"null", b"true", b"{", b"}", b'{"a":1}}', b'{"a":1} {"b":2}',
                 b'{"a" 1}', b"{'a':1}", b'{"a":1,}', b'{"a":01}', b'{"a":.5}', b'{"a":+1}', b'{"a":NaN}',
                 b'{"a":Infinity}', b'{"a":undefined}', b'{"a":"x"/*c*/}', b'{"a":1}\x00', b'\xef\xbb\xbf{}',
                 b'{"a":"tab\there"}', b'{"a":"nul\x00byte"}', b'{"a":"new\nline"}', b'{"a":"\\x41"}',
                 b'{"a":"\\u12"}', b'{"a":tru}', b'{"a":1e}', b'{"a":-}']
    failures = []
    for path, c, extra in ((LOGIN, None, {}), (DEVICES, op, {}), ("/api/v2/events", None, {"X-Internal-Secret": SECRET}),
                           ("/api/v2/users", adm, {}), (tel, op, {})):
        for raw in malformed:
            r = send(c, "POST", path, raw, headers=extra) if c else request(
                s.port, "POST", path, dict(extra, **{"Content-Type": "application/json"}), raw)
            try:
                problem(r, 400, "request.malformed_json")
            except AssertionError as e:
                failures.append("%s %r: %s" % (path, raw, str(e)[:100]))
    t = tenant
    wrong = [
        (None, "POST", LOGIN, {"tenant": [], "username": "a", "password": "p"}),
        (None, "POST", LOGIN, {"tenant": {"$ne": ""}, "username": "op", "password": "p"}),
        (None, "POST", LOGIN, {"tenant": t, "username": None, "password": "p"}),
        (None, "POST", LOGIN, {"tenant": t, "username": "op", "password": 12345678}),
        (None, "POST", LOGIN, {"tenant": t, "username": "op", "password": True}),
        (op, "POST", DEVICES, {"name": 5}), (op, "POST", DEVICES, {"name": None}),
        (op, "POST", DEVICES, {"name": ["x"]}), (op, "POST", DEVICES, {"name": "x", "status": 1}),
        (op, "POST", DEVICES, {"name": "x", "metadata": []}), (op, "POST", DEVICES, {"name": "x", "metadata": "m"}),
        # (1e999 as text: json.dumps would write a Python inf as Infinity,
        # which is not JSON at all and so request.malformed_json)
        (op, "POST", DEVICES, b'{"name":"x","metadata":{"n":1e999}}'),
        (op, "POST", DEVICES, {"name": "x", "id": "chosen-id"}), (op, "POST", DEVICES, {"name": "x", "version": 7}),
        (op, "PATCH", DEVICES + "/" + dev, {}), (op, "PATCH", DEVICES + "/" + dev, {"status": None}),
        (op, "PATCH", DEVICES + "/" + dev, {"version": 99}), (op, "PATCH", DEVICES + "/" + dev, {"tenant": "x"}),
        (op, "PUT", DEVICES + "/" + dev + "/status", {"status": ["online"]}),
        (op, "PUT", DEVICES + "/" + dev + "/status", {"status": "ONLINE"}),
        (op, "POST", tel, {"metrics": []}), (op, "POST", tel, {"metrics": {"t": "1"}}),
        (op, "POST", tel, {"metrics": {"t": True}}), (op, "POST", tel, {"metrics": {"t": None}}),
        (op, "POST", tel, b'{"metrics":{"t":1e999}}'), (op, "POST", tel, {"ts": 5, "metrics": {"t": 1}}),
        (op, "POST", tel, {"points": {}}), (op, "POST", tel, {"points": [1]}),
        (None, "POST", "/api/v2/events", {"tenant": 5, "type": "x"}),
        (None, "POST", "/api/v2/events", {"tenant": t, "type": ["x"]}),
        (None, "POST", "/api/v2/events", {"tenant": t, "type": "x", "topic": 5}),
        (None, "POST", "/api/v2/events", {"tenant": t, "type": "x", "topic": "a", "close": 1}),
        (adm, "POST", "/api/v2/users", {"username": 5, "password": PASSWORD, "role": "viewer"}),
        (adm, "POST", "/api/v2/users", {"username": "u1", "password": [PASSWORD], "role": "viewer"}),
        (adm, "POST", "/api/v2/users", {"username": "u1", "password": PASSWORD, "role": ["admin"]}),
    ]
    # unknown fields: refused like wrong ones (SECURITY.md, "Input"), so a
    # mass-assignment attempt or a typo is not silently dropped
    unknown = [
        (None, "POST", LOGIN, {"tenant": t, "username": "op", "password": PASSWORD, "role": "admin"}),
        (None, "POST", "/api/v2/events", {"tenant": t, "type": "x", "tenant_id": "other"}),
        (adm, "POST", "/api/v2/users", {"username": "u2", "password": PASSWORD, "role": "viewer", "tenant": "other"}),
        (op, "POST", DEVICES, {"name": "x", "owner": "someone"}),
    ]
    for c, method, path, body in wrong + unknown:
        extra = {"X-Internal-Secret": SECRET} if path == "/api/v2/events" else {}
        if c is None:
            r = request(s.port, method, path, dict(extra, **{"Content-Type": "application/json"}), json.dumps(body).encode())
        else:
            r = send(c, method, path, body, headers=extra)
        try:
            problem(r, 400, "request.invalid_field")
        except AssertionError as e:
            failures.append("%s %s %r: %s" % (method, path, body, str(e)[:100]))
    check(not failures, "%d wrong answers: %s" % (len(failures), "; ".join(failures)))
    check(device_names(op) == {"base"}, "nothing refused was applied: %r" % device_names(op))
    got = send(op, "GET", DEVICES + "/" + dev, ctype=None).json()
    check(got["version"] == 1 and got["status"]["state"] == "offline", "the device is unchanged: %r" % got)
    users = [u["username"] for u in adm.get("/api/v2/users").json()["items"]]
    check(users == ["adm", "op"], "no user was created: %r" % users)
    check(op.get("/api/v2/telemetry/recent?device_id=" + dev).json()["items"] == [], "no point was stored")
    healthy(s, op, fds)


@test
def hostile_json_duplicate_keys_huge_numbers_and_nul(s):
    """Duplicate names, numbers beyond what fcgi_sse can hold, NUL in
    strings. API.md is silent on the first two; assumed: a duplicate name
    is refused (400) or the last one wins everywhere, validated like any
    value; a number is refused (400 request.invalid_field) or kept, never
    silently replaced by another."""
    tenant = new_tenant(s, (("op", "operator"), ("viewer", "viewer")))
    op = Client(s.port, tenant, "op")
    fds = warm(s, op)
    # duplicate names: the value checked is the value used
    for raw, bad in ((b'{"name":"ok","name":"bad\\u0001"}', True), (b'{"name":"bad\\u0001","name":"dup-last"}', False),
                     (b'{"name":"dup-st","status":"bogus","status":"online"}', False),
                     (b'{"name":"dup-st2","status":"online","status":"bogus"}', True)):
        r = send(op, "POST", DEVICES, raw)
        if r.status == 400:
            check(r.json()["code"] in ("request.malformed_json", "request.invalid_field"), "%r: %r" % (raw, r.body))
            continue
        check(not bad, "%r: the invalid duplicate was accepted: %d %r" % (raw, r.status, r.body[:200]))
        check(r.status == 201, "%r: %d %r" % (raw, r.status, r.body[:200]))
        want = json.loads(raw)  # Python keeps the last one too
        got = r.json()
        check(got["name"] == want["name"] and got["status"]["state"] == want.get("status", "offline"),
              "%r: the last value must be the one used: %r" % (raw, got))
    # a login whose duplicate username would pass one check and another user's
    r = request(s.port, "POST", LOGIN, {"Content-Type": "application/json"},
                ('{"tenant":"%s","username":"viewer","username":"op","password":"%s"}' % (tenant, PASSWORD)).encode())
    if r.status == 200:
        check(r.json()["user"]["username"] == "op", "the user logged in is the last name: %r" % r.json()["user"])
    else:
        check(r.status == 400, "duplicate username: %d %r" % (r.status, r.body[:200]))
    # numbers
    f = Findings()
    dev = send(op, "POST", DEVICES, {"name": "numbers"}).json()["id"]
    tel = DEVICES + "/" + dev + "/telemetry"
    for text, value in ((b"99999999999999999999999", 1e23), (b"-99999999999999999999999", -1e23),
                        (b"18446744073709551616", 18446744073709551616.0), (b"1e308", 1e308),
                        (b"123456789012345678", 123456789012345678.0)):
        r = send(op, "POST", tel, b'{"metrics":{"n":' + text + b"}}")
        if r.status == 400:
            f.expect("metric %s" % text.decode(), problem, r, 400, "request.invalid_field")
        elif f.check(r.status == 202, "metric %s: %d %r" % (text.decode(), r.status, r.body[:200])):
            got = op.get("/api/v2/telemetry/recent?device_id=%s&limit=1" % dev).json()["items"][0]["metrics"]["n"]
            f.check(abs(got - value) <= abs(value) * 1e-12, "metric %s stored as %r" % (text.decode(), got))
        r = send(op, "PATCH", DEVICES + "/" + dev, b'{"metadata":{"n":' + text + b"}}")
        if r.status == 400:
            f.expect("metadata %s" % text.decode(), problem, r, 400, "request.invalid_field")
        elif f.check(r.status == 200, "metadata %s: %d %r" % (text.decode(), r.status, r.body[:200])):
            got = r.json()["metadata"]["n"]
            f.check(abs(got - value) <= abs(value) * 1e-12, "metadata %s stored as %r" % (text.decode(), got))
    for text in (b"1e999", b"-1e999"):
        f.expect("metric " + text.decode(), problem, send(op, "POST", tel, b'{"metrics":{"n":' + text + b"}}"),
                 400, "request.invalid_field")
    # NUL: raw it is malformed JSON, escaped it is a control character in
    # a name, and plain data in metadata
    f.expect("raw NUL", problem, send(op, "POST", DEVICES, b'{"name":"a\x00b"}'), 400, "request.malformed_json")
    f.expect("escaped NUL in a name", problem, send(op, "POST", DEVICES, b'{"name":"a\\u0000b"}'),
             400, "request.invalid_field")
    f.expect("escaped NUL in a username", problem,
             request(s.port, "POST", LOGIN, {"Content-Type": "application/json"},
                     ('{"tenant":"%s","username":"op\\u0000x","password":"%s"}' % (tenant, PASSWORD)).encode()),
             400, "request.invalid_field")
    r = send(op, "PATCH", DEVICES + "/" + dev, {"metadata": {"k": "a\u0000b"}})
    if f.check(r.status in (200, 400), "NUL in metadata: %d %r" % (r.status, r.body[:200])) and r.status == 200:
        f.check(op.get(DEVICES + "/" + dev).json()["metadata"] == {"k": "a\u0000b"}, "NUL kept in metadata")
    healthy(s, op, fds)
    f.done()


@test
def hostile_json_nested_10000_deep(s, binary):
    """10,000 levels of [[[ and {"a":{"a":... on every body route (a stack
    whose body limit lets them through): 400 request.malformed_json, no
    crash; metadata deeper than 4 is invalid_field."""
    st = _stack(binary, {"http": {"max_body_bytes": 131072}}, name="hostile-deep")
    try:
        tenant = new_tenant(st, (("adm", "admin"), ("op", "operator")))
        adm, op = Client(st.port, tenant, "adm"), Client(st.port, tenant, "op")
        fds = warm(st, op)
        dev = send(op, "POST", DEVICES, {"name": "deep"}).json()["id"]
        n = 10000
        bodies = [b"[" * n + b"]" * n, b'{"a":' * n + b"1" + b"}" * n, b"[" * n, b'{"a":' * n,
                  b'{"name":' + b"[" * n + b"]" * n + b"}", b'{"metadata":' + b'{"a":' * n + b"1" + b"}" * (n + 1)]
        routes = ((None, LOGIN, {}), (op, DEVICES, {}), (op, DEVICES + "/" + dev + "/telemetry", {}),
                  (None, "/api/v2/events", {"X-Internal-Secret": SECRET}), (adm, "/api/v2/users", {}))
        for c, path, extra in routes:
            for raw in bodies:
                h = dict(c.headers() if c else {}, **extra)
                h["Content-Type"] = "application/json"
                problem(request(st.port, "POST", path, h, raw), 400, "request.malformed_json")
        r = send(op, "PATCH", DEVICES + "/" + dev, b'{"metadata":{"a":{"b":{"c":{"d":{"e":1}}}}}}')
        problem(r, 400, "request.invalid_field")
        # published data may nest as JSON allows; a deep one is refused or
        # delivered whole
        r = publish(st.port, tenant, data=json.loads("[" * 30 + "]" * 30))
        check(r.status in (202, 400), "30 deep data: %d %r" % (r.status, r.body[:200]))
        healthy(st, op, fds)
    finally:
        st.cleanup()


@test
def hostile_invalid_utf8_is_malformed_json_on_every_route(s):
    """API.md §4a: a body that is not UTF-8 is 400 request.malformed_json on
    every route. Not UTF-8 (RFC 3629): a stray continuation byte, a cut
    sequence, bytes 0xF5-0xFF, and also the overlong forms, surrogates
    (CESU-8) and code points beyond U+10FFFF."""
    tenant = new_tenant(s, (("adm", "admin"), ("op", "operator")))
    adm, op = Client(s.port, tenant, "adm"), Client(s.port, tenant, "op")
    fds = warm(s, op)
    dev = send(op, "POST", DEVICES, {"name": "utf8"}).json()["id"]
    uid = claims_of(op.token)["sub"]
    seqs = [b"\xff", b"\x80", b"\xc3", b"\xe2\x82", b"\xf5\x80\x80\x80", b"\xc0\xaf", b"\xc1\xbf",
            b"\xe0\x80\xaf", b"\xf0\x80\x80\xaf", b"\xed\xa0\x80", b"\xed\xbf\xbf", b"\xf4\x90\x80\x80"]
    routes = [
        (None, "POST", LOGIN, lambda x: b'{"tenant":"%s","username":"op","password":"p%sw"}' % (tenant.encode(), x)),
        (op, "POST", DEVICES, lambda x: b'{"name":"a%sb"}' % x),
        (op, "POST", DEVICES, lambda x: b'{"name":"ok","metadata":{"k%s":1}}' % x),
        (op, "PATCH", DEVICES + "/" + dev, lambda x: b'{"name":"a%sb"}' % x),
        (op, "PUT", DEVICES + "/" + dev + "/status", lambda x: b'{"status":"online%s"}' % x),
        (op, "POST", DEVICES + "/" + dev + "/telemetry", lambda x: b'{"metrics":{"t%s":1}}' % x),
        (None, "POST", "/api/v2/events", lambda x: b'{"tenant":"%s","type":"t","data":"a%sb"}' % (tenant.encode(), x)),
        (adm, "POST", "/api/v2/users", lambda x: b'{"username":"u","password":"pass%sword","role":"viewer"}' % x),
        (adm, "PATCH", "/api/v2/users/" + uid, lambda x: b'{"role":"viewer%s"}' % x),
    ]
    failures = []
    for c, method, path, make in routes:
        for x in seqs:
            extra = {"X-Internal-Secret": SECRET} if path == "/api/v2/events" else {}
            h = dict(c.headers() if c else {}, **extra)
            h["Content-Type"] = "application/json"
            r = request(s.port, method, path, h, make(x))
            try:
                problem(r, 400, "request.malformed_json")
            except AssertionError as e:
                failures.append("%s %s %r: %s" % (method, path, x, str(e)[:120]))
    check(not failures, "%d refusals missing, first: %s" % (len(failures), "; ".join(failures[:4])))
    names = device_names(op)
    got = op.get(DEVICES + "/" + dev).json()
    users = [u["username"] for u in adm.get("/api/v2/users").json()["items"]]
    check(names == {"utf8"} and got["version"] == 1 and users == ["adm", "op"],
          "nothing was applied: %r %r %r" % (names, got, users))
    healthy(s, op, fds)


@test
def hostile_escaped_surrogates_pairs_exact_lone_ones_refused(s):
    """API.md §2: an escaped surrogate pair is the code point it names,
    stored and sent on exactly (json-c 0.16 alone reads U+1D800-1DFFF and
    the like, sent as \\ud836\\udc00, as U+FFFD); a lone escaped
    surrogate is no character (RFC 7493 §2.1): 400 request.malformed_json,
    nothing applied."""
    tenant = new_tenant(s, (("op", "operator"), ("viewer", "viewer")))
    op, viewer = Client(s.port, tenant, "op"), Client(s.port, tenant, "viewer")
    fds = warm(s, op)
    h = dict(op.headers(), **{"Content-Type": "application/json"})
    names = {b"\\ud836\\udc00": "\U0001d800", b"x\\ud837\\ude00y": "x\U0001de00y",
             b"\\uDBFF\\uDFFF": "\U0010ffff", b"\\ud83d\\ude00\\u00e9": "\U0001f600\u00e9",
             b"\\\\ud836": "\\ud836"}
    made = {}
    for raw, want in names.items():
        r = request(s.port, "POST", DEVICES, h, b'{"name":"%s"}' % raw)
        check(r.status == 201, "%r: %d %r" % (raw, r.status, r.body[:200]))
        got = op.get(DEVICES + "/" + r.json()["id"]).json()["name"]
        check(got == want, "%r stored as %r, not %r" % (raw, got, want))
        made[raw] = got
    for raw in (b"\\ud800", b"a\\udc00", b"\\ud83d\\u0041", b"\\ude00\\ud83d", b"\\ud83d\\ud83d"):
        problem(request(s.port, "POST", DEVICES, h, b'{"name":"%s"}' % raw), 400, "request.malformed_json")
    evh = {"X-Internal-Secret": SECRET, "Content-Type": "application/json"}
    problem(request(s.port, "POST", "/api/v2/events", evh,
                    b'{"tenant":"%s","type":"t","data":"\\udfff"}' % tenant.encode()), 400, "request.malformed_json")
    marker = []

    def act():
        r = request(s.port, "POST", "/api/v2/events", evh,
                    b'{"tenant":"%s","type":"astral","data":{"s":"\\ud836\\udfff"}}' % tenant.encode())
        check(r.status in (200, 201, 202), "publish: %d %r" % (r.status, r.body[:200]))
        marker.append(published_id(publish(s.port, tenant, "marker", None)))

    body = _raw_stream_until(viewer, lambda: marker[0], act)
    got = [json.loads(e[2]) for e in _events_of(body) if e[1] == "astral"]
    check(got == [{"s": "\U0001dbff"}], "the stream carries U+1DBFF exactly: %r" % got)
    check(sorted(device_names(op)) == sorted(made.values()), "only the pairs were applied: %r" % device_names(op))
    healthy(s, op, fds)


@test
def hostile_content_types_and_charsets(s):
    """Only application/json (any case, with parameters) is read as JSON;
    everything else is 415 before the body is looked at. A charset other
    than UTF-8 (API.md is silent; assumed): 415, or the body read as UTF-8
    (400 when it is not)."""
    tenant = new_tenant(s, (("op", "operator"),))
    op = Client(s.port, tenant, "op")
    fds = warm(s, op)
    body = json.dumps({"name": "typed"}).encode()
    for ct in ("application/json", "application/json; charset=utf-8", "Application/JSON;charset=UTF-8",
               "APPLICATION/JSON ; charset=\"utf-8\""):
        r = send(op, "POST", DEVICES, json.dumps({"name": "ct " + ct[:20]}).encode(), ctype=ct)
        check(r.status == 201, "%r: %d %r" % (ct, r.status, r.body[:200]))
    for ct in (None, "", "text/plain", "text/json", "application/jsonp", "application/json-patch+json",
               "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "application/javascript",
               "application", "json", "application/xml", "*/*", "application/json\xff", "application/json,text/plain",
               "text/plain; x=application/json"):
        r = send(op, "POST", DEVICES, body, ctype=ct)
        if r.status == 400 and from_front(r):
            continue
        try:
            problem(r, 415, "request.unsupported_media_type")
        except AssertionError as e:
            raise AssertionError("Content-Type %r: %s" % (ct, e))
    for ct, raw in (("application/json; charset=utf-16", '{"name":"utf16"}'.encode("utf-16")),
                    ("application/json; charset=iso-8859-1", '{"name":"caf\u00e9"}'.encode("latin-1"))):
        r = send(op, "POST", DEVICES, raw, ctype=ct)
        check(r.status in (400, 415), "%s: %d %r" % (ct, r.status, r.body[:200]))
        problem(r, r.status, "request.malformed_json" if r.status == 400 else "request.unsupported_media_type")
    # two Content-Type headers: lighttpd refuses or joins them; never JSON
    out = raw_exchange(s.port, ("POST %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n%s"
                                "Content-Type: text/plain\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n"
                                % (DEVICES, head_block(op), len(body))).encode() + body)
    got = parse_responses(out)
    check(got and got[0].status in (400, 415), "two Content-Types: %r" % [(x.status, x.body[:80]) for x in got])
    names = device_names(op)
    check(not any(n in names for n in ("typed", "utf16", "caf\u00e9")), "refused bodies were applied: %r" % names)
    healthy(s, op, fds)


# ---------------------------------------------------------------- headers

@test
def hostile_header_injection_and_bad_bytes_through_lighttpd(s):
    """CR, LF, NUL, obs-fold and non-UTF-8 bytes in the request headers that
    fcgi_sse echoes or reads (X-Request-Id, Last-Event-ID, API-Version,
    Authorization, Cookie): lighttpd refuses some itself; what reaches
    fcgi_sse gets its documented answer, a generated request id, and no
    injected header or SSE field."""
    tenant = new_tenant(s, (("ana", "viewer"),))
    c = Client(s.port, tenant, "ana")
    fds = warm(s, c)
    base = "GET /api/v2/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
    reached = 0
    for bad in (b"abc\r\nSet-Cookie: evil=1", b"abc\nSet-Cookie: evil=1", b"abc\rSet-Cookie: evil=1",
                b"abc\r\n Set-Cookie: evil=1", b"abc\r\n\tX-Evil: 1", b"abc\x00Set-Cookie: evil=1",
                b"abc%0d%0aSet-Cookie:%20evil=1", b"\xff\xfe", b"caf\xc3\xa9", b"a\tb", b"x" * 5000):
        out = raw_exchange(s.port, base.encode() + b"X-Request-Id: " + bad + b"\r\n\r\n")
        got = parse_responses(out)
        check(len(got) == 1, "%r: one answer, got %r" % (bad[:40], out[:300]))
        r = got[0]
        check(r.header("Set-Cookie") is None and r.header("X-Evil") is None, "%r: injected header %r" % (bad[:40], r.headers))
        if from_front(r):
            check(r.status == 400, "%r: lighttpd's %d" % (bad[:40], r.status))
            continue
        check(r.status == 200, "%r: %d %r" % (bad[:40], r.status, r.body[:200]))
        reached += 1
        # (a bare LF ends the header line for lighttpd: "abc" is then the
        # whole, sane, value)
        rid = r.header("X-Request-Id") or ""
        check(GEN_ID.fullmatch(rid) or rid == "abc", "%r: request id %r" % (bad[:40], rid))
    check(reached >= 5, "only %d of the bad request ids reached fcgi_sse" % reached)
    # API-Version must be exactly 1 or 2
    for bad in (b"2\xff", b"2 2", b"2\r\n X: y", b"\xc2\xb2", b"02", b"+2", b"2.0", b"1,2"):
        got = parse_responses(raw_exchange(s.port, b"GET /api/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                                           b"API-Version: " + bad + b"\r\n\r\n"))
        check(got, "API-Version %r: no answer" % bad)
        refused_by_front_or(got[0], 404, "api.unknown_version")
    # credentials with bad bytes
    tok = c.token
    for auth, cookie, code in ((b"Bearer " + tok.encode() + b"\xff", c.cookie.encode(), "auth.invalid_token"),
                               (b"Bearer \xff" + tok.encode(), c.cookie.encode(), "auth.invalid_token"),
                               (b"Bearer " + tok.encode()[:20] + b"\xc3\xa9" + tok.encode()[20:], c.cookie.encode(),
                                "auth.invalid_token"),
                               (b"Bearer " + tok.encode(), c.cookie.encode() + b"\xff", "auth.fingerprint_mismatch"),
                               (b"Bearer " + tok.encode(), b"__Host-fgp=\xff\xfe", "auth.fingerprint_mismatch")):
        got = parse_responses(raw_exchange(s.port, b"GET /api/v2/me HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                                           b"Authorization: " + auth + b"\r\nCookie: " + cookie + b"\r\n\r\n"))
        check(got, "no answer")
        body = refused_by_front_or(got[0], 401, code)
        if body is not None:
            check(tok not in got[0].body.decode("utf-8", "replace"), "the token was echoed")
    # Last-Event-ID on a stream: open them all, then read each to its
    # first ping; nothing injected, a bad id is a reset
    streams = []
    reached = 0
    try:
        for bad in (b"1-0\r\n event: evil", b"1-0\r\n\tdata: injected", b"\xff\xfe", b"1-0 id: 5",
                    b"9" * 300 + b"-0", b"1-0\rid: 5", b"1-0\nevent: evil", b"1-0\x00x"):
            sk = socket.create_connection(("127.0.0.1", s.port), timeout=5)
            sk.sendall(("GET %s HTTP/1.0\r\nHost: x\r\n%s" % (STREAM, head_block(c))).encode() +
                       b"Last-Event-ID: " + bad + b"\r\n\r\n")
            streams.append((bad, sk))
        for bad, sk in streams:
            data = b""
            end = time.monotonic() + 5
            while b"event: ping" not in data and time.monotonic() < end:
                chunk = sk.recv(65536)
                if not chunk:
                    break
                data += chunk
            head, _, body = data.partition(b"\r\n\r\n")
            if head.startswith(b"HTTP/1.0 400") and b"X-Request-Id" not in head:
                continue  # lighttpd's own refusal
            check(head.startswith(b"HTTP/1.0 200"), "Last-Event-ID %r: %r" % (bad[:30], head[:200]))
            reached += 1
            check(b"event: ping" in body, "Last-Event-ID %r: the stream went quiet: %r" % (bad[:30], body[:300]))
            # (lighttpd may have cut the value at a bare LF: then it is an id)
            sse_lines_only(body.rsplit(b"\n\n", 1)[0] + b"\n", "Last-Event-ID %r" % bad[:30])
            check(b"\nid: " + bad not in body and not re.search(rb"id: \d{100}", body),
                  "the bad id is echoed: %r" % body[:300])
    finally:
        for _, sk in streams:
            sk.close()
    check(reached >= 3, "only %d of the bad Last-Event-IDs reached fcgi_sse" % reached)
    healthy(s, c, fds)


@test
def hostile_header_injection_past_the_front_server_over_fastcgi(s):
    """The bytes lighttpd refuses, sent to fcgi_sse's socket as a laxer
    front server would pass them (FastCGI params are length-prefixed, so
    CR, LF and any byte arrive as they are): no header is injected into the
    answer, no field into a stream, and each gets its documented code."""
    tenant = new_tenant(s, (("ana", "viewer"),))
    c = Client(s.port, tenant, "ana")
    fds = warm(s, c)
    sock = s.socket_path
    auth = {"Authorization": "Bearer " + c.token, "Cookie": c.cookie}
    for rid in (b"abc\r\nSet-Cookie: evil=1", b"abc\nX-Evil: 1", b"a\x00b", b"\xff" * 10, b"a b"):
        out = fcgi_unix(sock, fcgi_params("GET", "/api/v2/health", {"X-Request-Id": rid}))
        status, hdrs, body = cgi_head(out)
        check(status == 200, "X-Request-Id %r: %d" % (rid, status))
        no_injected_header(hdrs, "X-Request-Id %r" % rid)
        # (a NUL ends the value for fcgi_sse, as for any C reader: "a")
        got = dict(hdrs).get(b"X-Request-Id", b"").decode()
        check(GEN_ID.fullmatch(got) or rid == b"a\x00b" and got == "a", "X-Request-Id %r: %r" % (rid, hdrs))
    for uri in (b"/api/v2/health\r\nX-Evil: 1", b"/api/v2/devices/a\r\nX-Evil: 1", b"/api/v2/he\x00alth",
                b"/api/v2/health?x=\r\nX-Evil: 1", b"/api/v2/\xff\xfe", b"/../../etc/passwd", b"api/v2/health", b""):
        out = fcgi_unix(sock, dict(fcgi_params("GET", "/"), REQUEST_URI=uri))
        status, hdrs, body = cgi_head(out)
        no_injected_header(hdrs, "REQUEST_URI %r" % uri)
        check(status in (200, 400, 404), "REQUEST_URI %r: %d %r" % (uri, status, body[:200]))
        if status != 200:
            code = json.loads(body)["code"]
            check(code in ("route.not_found", "request.invalid_id"), "REQUEST_URI %r: %s" % (uri, code))
        else:
            check(uri.startswith(b"/api/v2/health?"), "REQUEST_URI %r answered 200" % uri)
    out = fcgi_unix(sock, fcgi_params("GET", "/api/health", {"API-Version": "2\r\nX-Evil: 1"}))
    status, hdrs, body = cgi_head(out)
    no_injected_header(hdrs, "API-Version")
    check(status == 404 and json.loads(body)["code"] == "api.unknown_version", "API-Version: %d %r" % (status, body))
    # Content-Length that lies, is not a number, or is absent: the body is
    # read to its end, up to the limit
    login = json.dumps({"tenant": tenant, "username": "ana", "password": "wrong"}).encode()
    for length, stdin, want in (("5", login, 401), ("-1", login, 401), ("abc", login, 401), (None, login, 401),
                                ("99999999999999999999", login, 401), ("1e3", login, 401),
                                ("10", b"{" + b" " * 2000 + b"}", 413), (None, b"{" + b" " * 2000 + b"}", 413)):
        p = fcgi_params("POST", LOGIN)
        p["CONTENT_TYPE"] = "application/json"
        if length is not None:
            p["CONTENT_LENGTH"] = length
        status, hdrs, body = cgi_head(fcgi_unix(sock, p, stdin))
        check(status in (want, 400), "CONTENT_LENGTH %r: %d %r" % (length, status, body[:200]))
        check(json.loads(body)["code"] in ("auth.invalid_credentials", "request.too_large", "request.malformed_json"),
              "CONTENT_LENGTH %r: %r" % (length, body[:200]))
    # streams: Last-Event-ID and last_event_id= carrying SSE fields
    cases = [({"Last-Event-ID": b"1-0\nevent: evil\ndata: injected"}, ""),
             ({"Last-Event-ID": b"1-0\r\nretry: 1\r\nid: 5"}, ""),
             ({"Last-Event-ID": b"1-0\revent: evil"}, ""),
             ({}, "?last_event_id=1-0%0Aevent:%20evil%0Adata:%20injected"),
             ({}, "?last_event_id=1-0%0D%0Aretry:%201")]
    for extra, query in cases:
        h = dict(auth, **extra)
        out = fcgi_unix(sock, fcgi_params("GET", STREAM + query, h), total=5, until=b"event: ping")
        status, hdrs, body = cgi_head(out)
        check(status == 200, "%r %s: %d %r" % (extra, query, status, body[:200]))
        no_injected_header(hdrs, "stream %r" % extra)
        check(b"event: ping" in body, "%r %s: no ping within 5 s: %r" % (extra, query, body[:300]))
        sse_lines_only(body.rsplit(b"\n\n", 1)[0] + b"\n", "%r %s" % (extra, query))
        check(b"event: reset" in body, "%r %s: a bad id is a reset: %r" % (extra, query, body[:300]))
    for q in ("?events=a%0Ab", "?topics=a%0D%0Aid:%201", "?events=%C0%AF", "?topics=a%00b"):
        status, hdrs, body = cgi_head(fcgi_unix(sock, fcgi_params("GET", STREAM + q, auth)))
        check(status == 400 and json.loads(body)["code"] == "request.invalid_query", "%s: %d %r" % (q, status, body[:200]))
    # the log stays one JSON object per line, whatever the paths held
    for line in s.log_lines():
        try:
            json.loads(line)
        except ValueError:
            raise AssertionError("a log line is not JSON: %r" % line[:200])
    healthy(s, c, fds)


# ---------------------------------------------------------------- SSE fields

def _raw_stream_until(c, marker_id, act, query="", timeout=5.0):
    """Opens a bearer stream, waits for its connected event, runs act(),
    then reads raw body bytes until the event with marker_id() has ended."""
    sk = socket.create_connection(("127.0.0.1", c.port), timeout=5)
    try:
        sk.sendall(("GET %s HTTP/1.0\r\nHost: x\r\n%s\r\n" % (STREAM + query, head_block(c))).encode())
        buf = b""
        while b"event: connected" not in buf:
            chunk = sk.recv(65536)
            check(chunk, "EOF before connected: %r" % buf[:200])
            buf += chunk
        act()
        want = ("id: %s\n" % marker_id()).encode()
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            i = buf.find(want)
            if i >= 0 and b"\n\n" in buf[i:]:
                break
            chunk = sk.recv(65536)
            if not chunk:
                break
            buf += chunk
        head, _, body = buf.partition(b"\r\n\r\n")
        check(head.startswith(b"HTTP/1.0 200"), "stream head %r" % head[:100])
        return body
    finally:
        sk.close()


def _events_of(body):
    """(id, event, data) of each event in raw body bytes, per the WHATWG
    parsing rules (which EventSource applies)."""
    out = []
    for block in body.replace(b"\r\n", b"\n").replace(b"\r", b"\n").split(b"\n\n"):
        ev = {"id": None, "event": "message", "data": []}
        for line in block.split(b"\n"):
            if not line or line.startswith(b":"):
                continue
            f, _, v = line.decode("utf-8").partition(":")
            v = v[1:] if v.startswith(" ") else v
            if f == "data":
                ev["data"].append(v)
            elif f in ("id", "event"):
                ev[f] = v
        if ev["data"]:
            out.append((ev["id"], ev["event"], "\n".join(ev["data"])))
    return out


@test
def hostile_sse_fields_cannot_be_injected_by_publishers_or_device_writes(s):
    """Event types, topics and data carrying "\\nid:", "\\nretry:",
    "\\nevent:", CR and NUL, through POST /events and through device
    writes (whose events carry the device): types and topics with them are
    refused (400 request.invalid_field) and never reach a stream; data
    arrives exactly as sent, and the stream holds no field but those
    fcgi_sse writes: one retry, ids that are the published ones."""
    tenant = new_tenant(s, (("op", "operator"), ("viewer", "viewer")))
    op, viewer = Client(s.port, tenant, "op"), Client(s.port, tenant, "viewer")
    fds = warm(s, op)
    evil = ["x\nid: 1-1\nretry: 1\n", "x\r\nid: 1-1", "x\rretry: 1", "\n\nevent: evil\ndata: injected\n\n",
            "id: 9-9", "retry: 1", "nul\u0000inside", "\u2028\u2029\u0085 separators", "data: injected"]
    for bad in evil[:4] + ["ok\nid:", "ok\u0000"]:
        for field in ("type", "topic"):
            body = {"tenant": tenant, "type": "t", "data": 1}
            body[field] = bad
            b = problem(publish(s.port, None, body=body), 400, "request.invalid_field")
            check(field in b["detail"], "detail names %s: %r" % (field, b["detail"]))
    problem(send(op, "POST", DEVICES, {"name": "dev\nid: 1-1"}), 400, "request.invalid_field")
    # data must be JSON: NaN and Infinity are not, and would reach clients
    # as "data: NaN", which JSON.parse refuses
    f = Findings()
    for raw in (b"NaN", b"-NaN", b"Infinity", b"-Infinity", b"[NaN]", b'{"x":NaN}'):
        r = request(s.port, "POST", "/api/v2/events", {"X-Internal-Secret": SECRET, "Content-Type": "application/json"},
                    b'{"tenant":"%s","type":"t","data":%s}' % (tenant.encode(), raw))
        f.expect("data " + raw.decode(), problem, r, 400, "request.malformed_json")
    ids, marker = [], []
    dev = {}

    def act():
        for i, payload in enumerate(evil):
            ids.append(published_id(publish(s.port, tenant, "msg", {"i": i, "v": payload}, topic="t:%d" % i)))
        r = send(op, "POST", DEVICES, {"name": "dev", "metadata": {"note": evil[0], "more": evil[3]}})
        check(r.status == 201, "device: %d %r" % (r.status, r.body[:200]))
        dev.update(r.json())
        marker.append(published_id(publish(s.port, tenant, "marker", None)))

    body = _raw_stream_until(viewer, lambda: marker[0], act)
    lines = body.split(b"\n")
    check(sum(1 for l in lines if l.startswith(b"retry:")) == 1, "one retry line: %r" % body[:200])
    sse_lines_only(body.rsplit(b"\n\n", 1)[0] + b"\n", "published stream")
    got = [e for e in _events_of(body) if e[1] not in ("ping", "connected")]
    msgs = [e for e in got if e[1] == "msg"]
    check([e[0] for e in msgs] == ids, "ids are the published ones: %r vs %r" % ([e[0] for e in msgs], ids))
    for (eid, kind, data), payload in zip(msgs, evil):
        check(json.loads(data)["v"] == payload, "data round trip %r -> %r" % (payload, data))
    devs = [json.loads(e[2]) for e in got if e[1] == "device.updated"]
    check(len(devs) == 1 and devs[0]["metadata"] == {"note": evil[0], "more": evil[3]} and devs[0]["id"] == dev["id"],
          "device event data exact: %r" % devs)
    check([e[1] for e in got] == ["msg"] * len(evil) + ["device.updated", "marker"],
          "no other event came through: %r" % [e[1] for e in got])
    healthy(s, op, fds)
    f.done()


# ---------------------------------------------------------------- paths

@test
def hostile_path_and_query_tricks(s):
    """Paths are matched exactly as sent, without percent-decoding, dot
    segments or slash folding (API.md §1): the tricks are 404
    route.not_found, or 400 request.invalid_id where the shape takes an id;
    queries are parsed strictly (400 request.invalid_query). A repeated
    parameter (API.md is silent; assumed): 400, or the first one wins."""
    tenant = new_tenant(s, (("op", "operator"),))
    op = Client(s.port, tenant, "op")
    fds = warm(s, op)
    mine = [send(op, "POST", DEVICES, {"name": "p%d" % i}).json()["id"] for i in range(3)]
    not_found = ["/api/v2//health", "//api/v2/health", "/api//v2/health", "/api/v2/./health", "/api/v2/x/../health",
                 "/api/v2/%2e%2e/v2/health", "/api/v2/heal%74h", "/api/v2/health%2f", "/api/v2/health/",
                 "/api/v2/health/.", "/api/v2/health;x=1", "/api/v2/health%00", "/API/v2/health", "/api/V2/health",
                 "/api/v2%2fhealth", "/api/v2/health%", "/api/v2/health%zz", "/api/v2/%", "/api/v2/" + "x" * 4000,
                 "/api/v2/devices/count/", "/api/v2/devices/%s/" % mine[0], "/api/v2/devices/%s/x" % mine[0],
                 "/api/v2/../../../../etc/passwd", "/metrics/", "/metrics%2f", "/api/v2/health\\"]
    reached = []
    for path in not_found:
        r = request(s.port, "GET", path, op.headers())
        reached.append(not from_front(r))
        try:
            refused_by_front_or(r, 404, "route.not_found")
        except AssertionError as e:
            raise AssertionError("%s: %s" % (path[:80], e))
    invalid_id = ["/api/v2/devices/..", "/api/v2/devices/%2e%2e", "/api/v2/devices/.", "/api/v2/devices/a%2fb",
                  "/api/v2/devices/a%2Fb/status", "/api/v2/devices//status", "/api/v2/devices/",
                  "/api/v2/devices/%s%%00" % mine[0], "/api/v2/devices/a%20b", "/api/v2/devices/" + "a" * 65,
                  "/api/v2/devices/%s.json" % mine[0], "/api/v2/users/..%2f..%2fhealth", "/api/v2/users/%zz",
                  "/api/v2/devices/%C0%AE%C0%AE", "/api/v2/devices/\xc3\xa9"]
    for path in invalid_id:
        for method, body in (("GET", None), ("DELETE", None), ("PUT", {"status": "online"})):
            if method == "PUT" and "/devices/" not in path:
                continue
            p = path + ("/status" if method == "PUT" and not path.endswith("/status") else "")
            r = send(op, method, p, body, ctype="application/json" if body else None)
            reached.append(not from_front(r))
            try:
                refused_by_front_or(r, 400, "request.invalid_id")
            except AssertionError as e:
                raise AssertionError("%s %s: %s" % (method, p[:80], e))
    # an id of 64 characters has the right shape: it is looked up
    problem(op.get("/api/v2/devices/" + "a" * 64), 404, "resource.not_found")
    problem(request(s.port, "GET", "/api/v99999999999999999999/health"), 404, "api.unknown_version")
    # queries
    for q in ("status=%zz", "status=%", "%zz=1", "status=%E0%A4", "limit=%2B1", "limit=1e1", "limit=0x10",
              "limit=99999999999999999999", "limit=-0", "limit= 1", "status", "status=ONLINE", "status=online%00",
              "cursor=" + "A" * 3000, "status=" + "o" * 5000, "cursor=..%2F..%2F", "cursor=%00",
              "limit=1%26status=online", "nosuch=1", "Limit=1", "status=online&evil=1"):
        r = op.get(DEVICES + "?" + q)
        reached.append(not from_front(r))
        try:
            refused_by_front_or(r, 400, "request.invalid_query")
        except AssertionError as e:
            raise AssertionError("?%s: %s" % (q[:60], e))
    # cursors are opaque, but a client can make one: a value no list
    # returned is a bad query, not a store failure
    f = Findings()
    for raw in (b"d:../", b"d:" + b"../" * 10, b"d:a b", b"d:a/b", b"d:\xff", b"d:a'b", b"d:*", b"d:%"):
        r = op.get(DEVICES + "?cursor=" + b64(raw))
        f.expect("cursor %r" % raw, problem, r, 400, "request.invalid_query")
    # (most of them must have reached fcgi_sse, or this tests lighttpd)
    check(sum(reached) >= len(reached) - 12, "only %d of %d tricks reached fcgi_sse" % (sum(reached), len(reached)))
    r = op.get(DEVICES + "?limit=%31")  # "1", percent-encoded: fine
    check(r.status == 200 and len(r.json()["items"]) == 1, "limit=%%31: %d %r" % (r.status, r.body[:200]))
    for q, first_ok in (("limit=1&limit=2", lambda b: len(b["items"]) == 1),
                        ("limit=1&limit=abc", lambda b: len(b["items"]) == 1),
                        ("status=maintenance&status=offline", lambda b: b["items"] == []),
                        ("status=offline&status=bogus", lambda b: len(b["items"]) == 3)):
        r = op.get(DEVICES + "?" + q)
        if r.status == 400:
            problem(r, 400, "request.invalid_query")
        else:
            check(r.status == 200 and first_ok(r.json()), "?%s: the first value must win: %d %r" % (q, r.status, r.body[:300]))
    r = request(s.port, "GET", "/api/v2/devices?x=" + "y" * 20000, op.headers())
    check(r.status in (400, 414, 431), "a 20 kB query: %d" % r.status)
    if not from_front(r):
        problem(r, 400, "request.invalid_query")
    healthy(s, op, fds)
    f.done()


# ---------------------------------------------------------------- tokens

@test
def hostile_forged_tokens_beyond_the_basic_ones(s):
    """Forgeries auth_tests does not try: other algorithms and spellings of
    none, a kid that walks paths, critical headers, headers and payloads
    that are not JSON objects, claims of the wrong type, padding and
    standard base64, and tokens signed with the real key but naming another
    tenant or user than their session's. All 401 auth.invalid_token with
    WWW-Authenticate error="invalid_token", never a 5xx, never the token
    echoed."""
    ta, tb = new_tenant(s, (("ana", "viewer"),)), new_tenant(s, (("boss", "admin"),))
    c, other = Client(s.port, ta, "ana"), Client(s.port, tb, "boss")
    fds = warm(s, c)
    good, theirs = claims_of(c.token), claims_of(other.token)
    payload = c.token.split(".")[1]
    cases = {
        "RS256": sign(dict(HDR, alg="RS256"), good),
        "ES256": sign(dict(HDR, alg="ES256"), good),
        "HS384": sign(dict(HDR, alg="HS384"), good),
        "hs256 lower case": sign(dict(HDR, alg="hs256"), good),
        "no alg": sign({"typ": "JWT", "kid": "it1"}, good),
        "alg null": sign(dict(HDR, alg=None), good),
        "alg array": sign(dict(HDR, alg=["HS256"]), good),
        "kid traversal": sign(dict(HDR, kid="../../../../dev/null"), good),
        "kid empty": sign(dict(HDR, kid=""), good),
        "kid number": sign(dict(HDR, kid=1), good),
        "kid sql": sign(dict(HDR, kid="it1' OR '1'='1"), good),
        "crit": sign(dict(HDR, crit=["exp"]), good),
        "header array": raw_signed(b'["HS256"]', json.dumps(good).encode()),
        "header not JSON": raw_signed(b"HS256", json.dumps(good).encode()),
        "header with NUL": raw_signed(b'{"alg":"HS256\\u0000","typ":"JWT","kid":"it1"}', json.dumps(good).encode()),
        "payload not JSON": raw_signed(json.dumps(HDR).encode(), b"{not json"),
        "payload array": raw_signed(json.dumps(HDR).encode(), b"[]"),
        "payload nested deep": raw_signed(json.dumps(HDR).encode(), b"[" * 1000 + b"]" * 1000),
        "exp as a string": forged(good, exp=str(good["exp"])),
        "exp 1e400": raw_signed(json.dumps(HDR).encode(), json.dumps(dict(good, exp=7)).encode().replace(b'"exp": 7', b'"exp": 1e400')),
        "nbf as a string": forged(good, nbf="0"),
        "roles as a string": forged(good, roles="admin"),
        "sub empty": forged(good, sub=""),
        "sid missing": sign(HDR, {k: v for k, v in good.items() if k != "sid"}),
        "another tenant's tid on my session": forged(good, tid=theirs["tid"]),
        "another tenant's admin on my session": forged(good, tid=theirs["tid"], sub=theirs["sub"], roles=["admin"]),
        "another user of my tenant on my session": forged(good, sub=uuid.uuid4().hex[:22]),
        "their session under my name": forged(good, sid=theirs["sid"]),
        "padded": c.token + "==",
        "standard base64": c.token.replace("-", "+").replace("_", "/") + ("" if "-" in c.token or "_" in c.token else "+"),
        "four parts": c.token + ".e30",
        "space inside": c.token[:30] + " " + c.token[30:],
        "none, empty signature": b64(json.dumps({"alg": "none", "typ": "JWT", "kid": "it1"}).encode()) + "." + payload + ".",
        "NONE": b64(json.dumps({"alg": "NONE", "typ": "JWT"}).encode()) + "." + payload + ".",
        "nOnE": b64(json.dumps({"alg": "nOnE", "typ": "JWT"}).encode()) + "." + payload + ".",
    }
    for name, tok in cases.items():
        r = request(s.port, "GET", "/api/v2/me", {"Authorization": "Bearer " + tok, "Cookie": c.cookie})
        if name.startswith("their session"):
            # signed right, for a session that is not this tenant's: never 200
            check(r.status == 401, "%s: %d %r" % (name, r.status, r.body[:200]))
            continue
        try:
            problem(r, 401, "auth.invalid_token")
        except AssertionError as e:
            raise AssertionError("%s: %s" % (name, e))
        check('error="invalid_token"' in (r.header("WWW-Authenticate") or ""), "%s: %r" % (name, r.header("WWW-Authenticate")))
        text = r.body.decode("utf-8", "replace")
        check(tok not in text and all(part not in text for part in tok.split(".") if len(part) >= 16),
              "%s: the token is echoed" % name)
    check(other.get("/api/v2/me").status == 200, "the other tenant's admin is still logged in")
    healthy(s, c, fds)


@test
def hostile_every_protected_route_refuses_bad_credentials_before_looking_anything_up(s):
    """Each route that needs a token, with no token, a forged one, an
    expired one, one without its cookie and one whose session was logged
    out: 401 with the code for it, the same for an id that exists and one
    that does not (a refusal must not tell them apart), and nothing done."""
    tenant = new_tenant(s, (("adm", "admin"), ("vic", "viewer")))
    adm = Client(s.port, tenant, "adm")
    fds = warm(s, adm)
    gone = Client(s.port, tenant, "adm")
    check(gone.post("/api/v2/auth/logout").status == 204, "logout")
    vic = claims_of(Client(s.port, tenant, "vic").token)["sub"]
    dev = send(adm, "POST", DEVICES, {"name": "target"}).json()["id"]
    good = claims_of(adm.token)
    now = int(time.time())
    creds = {
        "auth.missing_token": {},
        "auth.invalid_token": {"Authorization": "Bearer " + sign(HDR, good, key=b"w" * 32), "Cookie": adm.cookie},
        "auth.token_expired": {"Authorization": "Bearer " + forged(good, iat=now - 7200, nbf=now - 7200, exp=now - 3600),
                               "Cookie": adm.cookie},
        "auth.fingerprint_mismatch": {"Authorization": "Bearer " + adm.token},
        "auth.session_revoked": gone.headers(),
    }
    routes = [("GET", "/api/v2/me", None), ("POST", "/api/v2/auth/refresh", b""), ("POST", "/api/v2/auth/logout", b""),
              ("GET", "/api/v2/users", None), ("POST", "/api/v2/users", {"username": "new", "password": PASSWORD, "role": "admin"}),
              ("GET", "/api/v2/users/{u}", None), ("PATCH", "/api/v2/users/{u}", {"role": "admin"}),
              ("DELETE", "/api/v2/users/{u}/sessions", None), ("DELETE", "/api/v2/users/{u}", None),
              ("POST", "/api/v2/events/session", b""), ("GET", STREAM, None),
              ("POST", "/api/v2/events", {"tenant": tenant, "type": "x"}),
              ("GET", DEVICES, None), ("POST", DEVICES, {"name": "new"}), ("GET", DEVICES + "/count", None),
              ("GET", DEVICES + "/{d}", None), ("GET", "/api/v1/devices", None), ("GET", "/api/v1/devices/{d}", None),
              ("HEAD", DEVICES + "/{d}", None), ("PATCH", DEVICES + "/{d}", {"name": "changed"}),
              ("PUT", DEVICES + "/{d}/status", {"status": "online"}),
              ("POST", DEVICES + "/{d}/telemetry", {"metrics": {"t": 1}}), ("DELETE", DEVICES + "/{d}", None),
              ("GET", "/api/v2/telemetry/recent?device_id={d}", None), ("GET", "/api/v2/audit", None)]
    for code, headers in creds.items():
        for method, path, body in routes:
            answers = []
            for u, d in ((vic, dev), ("nosuchuser00", "nosuchdevice00")):
                p = path.replace("{u}", u).replace("{d}", d)
                h = dict(headers)
                if isinstance(body, dict):
                    h["Content-Type"] = "application/json"
                data = json.dumps(body).encode() if isinstance(body, dict) else body
                r = stream_response(s.port, p, h) if p == STREAM else request(s.port, method, p, h, data)
                where = "%s %s with %s" % (method, p, code)
                check(r.status == 401, "%s: %d %r" % (where, r.status, r.body[:200]))
                check((r.header("WWW-Authenticate") or "").startswith("Bearer"), "%s: WWW-Authenticate" % where)
                if method != "HEAD":
                    b = problem(r, 401, code)
                    b.pop("request_id")
                    answers.append(b)
            check(method == "HEAD" or answers[0] == answers[1], "%s %s: existing and missing ids answered apart: %r" %
                  (method, path, answers))
    r = adm.get("/api/v2/users/" + vic)
    check(r.status == 200 and r.json()["role"] == "viewer", "the victim user is untouched: %d %r" % (r.status, r.body[:200]))
    d = adm.get(DEVICES + "/" + dev).json()
    check(d["name"] == "target" and d["version"] == 1, "the device is untouched: %r" % d)
    check(device_names(adm) == {"target"}, "nothing was created")
    check(adm.get("/api/v2/telemetry/recent?device_id=" + dev).json()["items"] == [], "no telemetry stored")
    healthy(s, adm, fds)


@test
def hostile_other_tenants_ids_answer_exactly_like_missing_ones(s):
    """A token of tenant B on tenant A's ids, on every route that takes an
    id (devices, telemetry, users, stream sessions, the publish target, a
    list cursor): the very answer (status, code, title, detail, header
    names) an id that never existed gets, so existence cannot be probed."""
    ta, tb = new_tenant(s), new_tenant(s)
    a = {u: Client(s.port, ta, u) for u in ("admin", "operator", "viewer")}
    b = {u: Client(s.port, tb, u) for u in ("admin", "operator", "viewer")}
    fds = warm(s, b["viewer"])
    dev = send(a["operator"], "POST", DEVICES, {"name": "a-secret"}).json()["id"]
    send(a["operator"], "POST", DEVICES + "/" + dev + "/telemetry", {"metrics": {"t": 1}})
    uid = claims_of(a["viewer"].token)["sub"]

    def ghost(i):
        return i[:-4] + ("zzzz" if not i.endswith("zzzz") else "yyyy")

    def shape(r):
        try:
            body = r.json()
        except ValueError:
            body = r.body
        if isinstance(body, dict):
            body.pop("request_id", None)
        names = sorted(k.lower() for k, _ in r.headers if k.lower() not in ("date", "x-request-id"))
        return r.status, body, names

    cases = [("operator", "GET", DEVICES + "/{d}", None), ("operator", "GET", "/api/v1/devices/{d}", None),
             ("operator", "HEAD", DEVICES + "/{d}", None), ("operator", "PATCH", DEVICES + "/{d}", {"name": "x"}),
             ("operator", "PUT", DEVICES + "/{d}/status", {"status": "online"}),
             ("operator", "DELETE", DEVICES + "/{d}", None),
             ("operator", "POST", DEVICES + "/{d}/telemetry", {"metrics": {"t": 2}}),
             ("viewer", "GET", "/api/v2/telemetry/recent?device_id={d}", None),
             ("viewer", "GET", "/api/v2/telemetry/recent?device_id={d}&limit=5", None),
             ("admin", "GET", "/api/v2/users/{u}", None), ("admin", "PATCH", "/api/v2/users/{u}", {"role": "admin"}),
             ("admin", "DELETE", "/api/v2/users/{u}/sessions", None), ("admin", "DELETE", "/api/v2/users/{u}", None)]
    for role, method, path, body in cases:
        got = []
        for d, u in ((dev, uid), (ghost(dev), ghost(uid))):
            p = path.replace("{d}", d).replace("{u}", u)
            r = send(b[role], method, p, body, ctype="application/json" if body else None)
            got.append(shape(r))
        check(got[0][0] == 404, "%s %s: %r" % (method, path, got[0][:2]))
        check(method == "HEAD" or got[0][1]["code"] == "resource.not_found", "%s %s: %r" % (method, path, got[0]))
        check(got[0] == got[1], "%s %s: another tenant's id answered apart from a missing one: %r vs %r" %
              (method, path, got[0], got[1]))
    # publishing (an admin token) to another tenant's name or to no tenant
    pa = shape(publish(s.port, None, body={"tenant": ta, "type": "x"}, headers=b["admin"].headers()))
    pm = shape(publish(s.port, None, body={"tenant": ta + "-nope", "type": "x"}, headers=b["admin"].headers()))
    check(pa == pm and pa[0] == 404, "publish to another tenant vs none: %r vs %r" % (pa, pm))
    # A's stream session id with B's cookie, vs one never issued: the same
    f = Findings()
    sid = new_session(a["viewer"])
    for cookie in (b["viewer"].cookie, ""):
        h = {"Cookie": cookie} if cookie else {}
        x = shape(stream_response(s.port, session_url(sid), h))
        y = shape(stream_response(s.port, session_url(fresh_session_id()), h))
        f.check(x == y and x[0] == 401, "a foreign stream session vs an unknown one (cookie %s): %r vs %r" %
                ("B's" if cookie else "none", x[:2], y[:2]))
    # a device-list cursor built from A's device id gives B nothing of A's
    mine = send(b["operator"], "POST", DEVICES, {"name": "b-own"}).json()["id"]
    for cur in (b64(b"d:" + dev.encode()), b64(b"d:" + ghost(dev).encode()), b64(b"d:"), b64(b"d:" + b"\x00" * 3),
                b64(b"a:1")):
        r = b["viewer"].get(DEVICES + "?limit=10&cursor=" + cur)
        if r.status == 400:
            problem(r, 400, "request.invalid_query")
        else:
            check(r.status == 200 and all(i["id"] == mine for i in r.json()["items"]), "cursor %s: %r" % (cur, r.body[:300]))
    # nothing of A's changed; A's viewer still logged in
    d = a["operator"].get(DEVICES + "/" + dev).json()
    check(d["name"] == "a-secret" and d["version"] == 1, "A's device untouched: %r" % d)
    check(len(a["operator"].get("/api/v2/telemetry/recent?device_id=" + dev).json()["items"]) == 1, "A's telemetry")
    check(a["viewer"].get("/api/v2/me").status == 200, "A's viewer still logged in")
    healthy(s, b["viewer"], fds)
    f.done()


# ---------------------------------------------------------------- brute force

@test
def hostile_login_brute_force_is_limited_and_cannot_be_sidestepped(s, binary):
    """Login limits on (3 failures per user, 8 attempts per address): the
    lockout is 429 rate.limited with Retry-After and refuses the right
    password too; an unknown user is locked out the same way (the limit
    tells no names apart); the unversioned path, a duplicate key, an
    escaped name and a charset parameter are the same user, not a way
    around it; beyond the address limit the right password of another
    user is refused as well."""
    st = _stack(binary, {"auth": {"login_attempts_per_address": 8, "login_failures_per_user": 3,
                                  "login_failure_window_s": 600},
                         "http": {"trusted_proxies": "127.0.0.1"}}, name="hostile-brute")
    addr = iter("203.0.113.%d" % i for i in range(1, 250))

    def login(user, password, path=LOGIN, raw=None, ctype="application/json", at=None):
        body = raw if raw is not None else json.dumps({"tenant": tenant, "username": user, "password": password}).encode()
        return request(st.port, "POST", path, {"Content-Type": ctype, "X-Forwarded-For": at or next(addr)}, body)

    def limited(r, what):
        try:
            b = problem(r, 429, "rate.limited")
        except AssertionError as e:
            raise AssertionError("%s: %s" % (what, e))
        ra = r.header("Retry-After")
        check(ra is not None and ra.isdigit() and 1 <= int(ra) <= 601, "%s: Retry-After %r" % (what, ra))
        check(r.all("RateLimit-Policy") and r.all("RateLimit"), "%s: RateLimit headers" % what)
        return b

    try:
        tenant = new_tenant(st, (("ana", "viewer"), ("bo", "viewer")))
        bo = Client(st.port, tenant, "bo")  # (from 127.0.0.1: an address of its own)
        fds = warm(st, bo)
        for user in ("ana", "ghost"):
            for i in range(3):
                problem(login(user, "guess-%d" % i), 401, "auth.invalid_credentials")
        a = limited(login("ana", PASSWORD), "ana's right password while locked")
        g = limited(login("ghost", PASSWORD), "an unknown user after as many failures")
        check((a["title"], a["detail"]) == (g["title"], g["detail"]), "known and unknown users locked apart: %r %r" % (a, g))
        check(login("ana", PASSWORD).header("Set-Cookie") is None, "no cookie while locked")
        ways = [("unversioned path", dict(path="/api/auth/login")),
                ("duplicate username", dict(raw=('{"tenant":"%s","username":"zz","username":"ana","password":"%s"}'
                                                 % (tenant, PASSWORD)).encode())),
                ("escaped name", dict(raw=('{"tenant":"%s","username":"\\u0061na","password":"%s"}'
                                           % (tenant, PASSWORD)).encode())),
                ("charset parameter", dict(ctype="application/json; charset=utf-8")),
                ("whitespace around", dict(raw=(' {"password":"%s" , "username" : "ana","tenant":"%s"}\n'
                                                % (PASSWORD, tenant)).encode()))]
        for name, kw in ways:
            r = login("ana", PASSWORD, **kw)
            check(r.status != 200, "%s got ana in while locked out" % name)
            if r.status != 400:
                limited(r, name)
        for name in ("Ana", "ana ", " ana", "ana\u0000"):
            r = login(name, PASSWORD)
            check(r.status in (400, 401, 429), "%r: %d" % (name, r.status))
        # one address: 8 attempts of any kind, then even bo's right password is refused
        here = next(addr)
        for i in range(8):
            r = login("nobody-%d" % i, "x", at=here)
            check(r.status == 401, "attempt %d from one address: %d %r" % (i, r.status, r.body[:200]))
        limited(login("bo", PASSWORD, at=here), "bo's right password from a limited address")
        check(any('"login-address"' in v for v in login("bo", PASSWORD, at=here).all("RateLimit-Policy")),
              "the address policy is named")
        check(login("bo", PASSWORD).status == 200, "bo from another address is not locked out")
        healthy(st, bo, fds)
    finally:
        st.cleanup()


# ---------------------------------------------------------------- slow clients

@test
def hostile_slowloris_headers_do_not_stop_other_clients(s):
    """200 connections sending their request head one byte a second (the
    front server's job: lighttpd hands fcgi_sse nothing until a head is
    complete). Meanwhile other clients are answered, within generous
    seconds; the slow ones that finish their heads are answered too; then
    the service is as before."""
    tenant = new_tenant(s, (("ana", "viewer"),))
    c = Client(s.port, tenant, "ana")
    fds = warm(s, c)
    head = b"GET /api/v2/health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: "
    slow = []
    try:
        for _ in range(200):
            sk = socket.create_connection(("127.0.0.1", s.port), timeout=5)
            sk.sendall(head[:1])
            slow.append(sk)
        sent = 1
        for _ in range(3):
            t0 = time.monotonic()
            r = request(s.port, "GET", "/api/v2/health", timeout=10)
            check(r.status == 200, "health while 200 clients dribble: %d" % r.status)
            r = c.get("/api/v2/me")
            check(r.status == 200, "an authenticated request while they dribble: %d" % r.status)
            check(time.monotonic() - t0 < 5, "answers took %.1f s" % (time.monotonic() - t0))
            # one more byte each, a second after the last
            time.sleep(max(0.0, 1.0 - (time.monotonic() - t0)))
            for sk in slow:
                sk.sendall(head[sent:sent + 1])
            sent += 1
        # five of them complete their heads: answered like anyone
        for sk in slow[:5]:
            sk.sendall(head[sent:] + b"x\r\nConnection: close\r\n\r\n")
        for sk in slow[:5]:
            sk.settimeout(10)
            f = sk.makefile("rb")
            status, _ = _read_head(f)
            f.close()
            check(status == 200, "a slow client's finished request: %d" % status)
    finally:
        for sk in slow:
            sk.close()
    healthy(s, c, fds)


@test
def hostile_slow_request_bodies_behind_apache_free_their_workers_after_the_body_timeout(s, binary):
    """Apache's mod_proxy_fcgi passes a body on as it arrives, so a client
    that never finishes its body holds a fcgi_sse worker for as long as it
    likes, and twice as many such clients as workers stop the service.
    http.body_timeout_ms bounds each read of a body: here 1 s, so health
    is answered within a few seconds whatever the slow clients do, the
    bodies being read are refused, and nothing of theirs is applied."""
    from common import BASE_CONFIG
    from harness import ApacheStack
    cfg = json.loads(json.dumps(BASE_CONFIG))
    cfg["server"]["workers"] = 3
    cfg["http"]["body_timeout_ms"] = 1000
    st = ApacheStack(binary, cfg, "proxy")
    slow = []
    try:
        tenant = new_tenant(st, (("op", "operator"),))
        st.start()
        op = Client(st.port, tenant, "op")
        check(op.get("/api/v2/me").status == 200, "login through Apache")
        for i in range(6):
            body = json.dumps({"name": "slow-%02d" % i}).encode()
            sk = socket.create_connection(("127.0.0.1", st.port), timeout=15)
            sk.sendall(("POST %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n%sContent-Type: application/json\r\n"
                        "Content-Length: %d\r\n\r\n" % (DEVICES, head_block(op), len(body))).encode() + body[:5])
            slow.append(sk)
        t0 = time.monotonic()
        r = request(st.port, "GET", "/api/v2/health", timeout=15)
        took = time.monotonic() - t0
        check(r.status == 200 and took < 8, "health while 6 slow bodies are open: %d after %.1f s" % (r.status, took))
        # fcgi_sse gave up on the bodies it was reading (Apache itself
        # answers the client only once it stops waiting for the body)
        refused = lambda: [l for l in st.log_lines() if '"route":"/devices"' in l and '"status":400' in l]
        check(wait_until(lambda: len(refused()) >= 3, 5), "fcgi_sse refused the slow bodies: %r" % refused())
        for sk in slow:
            sk.close()
        check(not any(n.startswith("slow-") for n in device_names(op)), "nothing of theirs applied")
    finally:
        for sk in slow:
            sk.close()
        st.cleanup()


@test
def hostile_slow_request_bodies_do_not_hold_every_worker(s, binary):
    """Twice as many clients as fcgi_sse has workers each send a POST head
    and a few bytes of a body they never finish (were lighttpd to pass
    bodies on as they arrive, server.stream-request-body = 1, each would
    hold a worker; deploy/lighttpd/fcgi_sse.conf has 0): other clients
    must still be answered within generous seconds. Afterwards the
    slow bodies that finish are applied and those given up are not, and
    fcgi_sse's workers and open files are back."""
    st = _stack(binary, name="hostile-slowbody")
    slow = []
    try:
        tenant = new_tenant(st, (("op", "operator"),))
        op = Client(st.port, tenant, "op")
        fds = warm(st, op)
        workers = st.config["server"]["workers"]
        bodies = []
        for i in range(2 * workers):
            body = json.dumps({"name": "slow-%02d" % i}).encode()
            sk = socket.create_connection(("127.0.0.1", st.port), timeout=10)
            sk.sendall(("POST %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n%sContent-Type: application/json\r\n"
                        "Content-Length: %d\r\n\r\n" % (DEVICES, head_block(op), len(body))).encode() + body[:5])
            slow.append(sk)
            bodies.append(body)
        # the attack is in place once fcgi_sse holds a connection per
        # worker (a worker that never blocks on a body may not: go on then)
        wait_until(lambda: fd_count(st) >= fds + workers, 3, 0.05)
        t0 = time.monotonic()
        try:
            r = request(st.port, "GET", "/api/v2/health", timeout=10)
            answered = (r.status, time.monotonic() - t0)
        except OSError as e:
            answered = (repr(e), time.monotonic() - t0)
        # half finish their bodies, half give up
        for sk, body in zip(slow[:workers], bodies[:workers]):
            sk.sendall(body[5:])
        for sk in slow[workers:]:
            sk.close()
        statuses = []
        for sk in slow[:workers]:
            f = sk.makefile("rb")
            try:
                statuses.append(_read_head(f)[0])
            except (OSError, IOError) as e:
                statuses.append(repr(e))
            f.close()
        check(answered[0] == 200, "health while %d slow bodies are open: %r after %.1f s" %
              (2 * workers, answered[0], answered[1]))
        check(statuses == [201] * workers, "the finished slow bodies: %r" % statuses)
        names = device_names(op)
        check(names == {"slow-%02d" % i for i in range(workers)}, "applied: %r" % sorted(names))
        healthy(st, op, fds)
    finally:
        for sk in slow:
            sk.close()
        st.cleanup()
