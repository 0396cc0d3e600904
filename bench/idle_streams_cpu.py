#!/usr/bin/env python3
"""bench/idle_streams_cpu.py: what idle streams cost fcgi_sse's CPU with the
peer check (sse.peer_check_ms, 500) and without it (0): STREAMS (1000) open
and quiet behind lighttpd, heartbeat 15 s, CPU (utime + stime from /proc)
over SECONDS (30) from SETTLE (10) s after the last opened, ROUNDS (3) interleaved. Prints ms of CPU per second for
each round and the medians. H2=1: each stream on an HTTP/2 connection of its
own (h2c, prior knowledge), where every look of the check also lists the
established connections. COMPARE=path/to/another/fcgi_sse: that binary
against build/fcgi_sse instead, both with the check at PEER_CHECK_MS (500),
interleaved. Usage: python3 bench/idle_streams_cpu.py (uses
build/fcgi_sse)."""

import json
import os
import socket
import sys
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, os.path.join(ROOT, "tests", "deploy"))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
import scenario  # noqa: E402
import setups  # noqa: E402
from harness import RedisServer, request  # noqa: E402

TICK = os.sysconf("SC_CLK_TCK")


def cpu_s(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def open_streams(port):
    for line in request(port, "GET", "/metrics").body.split(b"\n"):
        if line.startswith(b"fcgi_sse_streams_open "):
            return int(line.split()[1])
    return 0


def hpack_literal(name, value):
    """A header as HPACK's literal without indexing, new name, no Huffman
    (RFC 7541 6.2.2); names and values here are under 127 bytes but the
    token's, hence the multi-byte length."""
    def length(n):
        if n < 127:
            return bytes([n])
        out, n = [127], n - 127
        while n >= 128:
            out.append(n % 128 + 128)
            n //= 128
        return bytes(out + [n])
    return b"\x00" + length(len(name)) + name + length(len(value)) + value


def h2_stream(port, headers):
    """One h2c connection with one stream GET request on it: the preface,
    an empty SETTINGS and a HEADERS frame (END_STREAM | END_HEADERS). The
    answer is left unread: an idle stream gets only its heartbeats."""
    block = b"".join(hpack_literal(k.encode(), v.encode()) for k, v in
                     [(":method", "GET"), (":scheme", "http"), (":path", "/api/v2/events/stream"),
                      (":authority", "x")] + [(k.lower(), v) for k, v in headers.items()])
    frame = len(block).to_bytes(3, "big") + b"\x01\x05" + (1).to_bytes(4, "big") + block
    k = socket.create_connection(("127.0.0.1", port))
    k.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b"\x00\x00\x00\x04\x00\x00\x00\x00\x00" + frame)
    return k


def one(redis, peer_check_ms, streams, seconds, h2=False, binary=None):
    st = setups.LighttpdSocket(binary or os.path.join(ROOT, "build", "fcgi_sse"), redis.port)
    st.stack.config["sse"].update(heartbeat_interval_ms=15000, peer_check_ms=peer_check_ms,
                                  max_streams=streams + 100)
    st.stack.config.setdefault("ratelimit", {})["stream_opens_per_min"] = 0  # all at once
    with open(st.stack.config_path, "w") as f:
        json.dump(st.stack.config, f)
    socks = []
    try:
        scenario.prepare(st)
        st.start()
        login = scenario.Login(setups.H1(st.port))
        hdrs = "".join("%s: %s\r\n" % kv for kv in login.headers().items())
        for _ in range(streams):
            if h2:
                socks.append(h2_stream(st.port, login.headers()))
                continue
            k = socket.create_connection(("127.0.0.1", st.port))
            k.sendall(("GET /api/v2/events/stream HTTP/1.1\r\nHost: x\r\n%s\r\n" % hdrs).encode())
            socks.append(k)
        # all open, or (a few refused in the rush: lighttpd's first
        # connections to a backend still starting) none more for 3 s
        seen, t_seen = -1, time.monotonic()
        while True:
            n = open_streams(st.port)
            if n == streams or (n == seen and time.monotonic() - t_seen > 3):
                break
            if n != seen:
                seen, t_seen = n, time.monotonic()
            time.sleep(0.1)
        if n < streams * 0.99:
            raise SystemExit("only %d of %d streams opened" % (n, streams))
        time.sleep(float(os.environ.get("SETTLE", "10")))  # past the start's own work
        pid = st.stack.backend.pid
        c0, t0 = cpu_s(pid), time.monotonic()
        time.sleep(seconds)
        if n != streams:
            print("(%d of %d streams open)" % (n, streams), flush=True)
        return (cpu_s(pid) - c0) / (time.monotonic() - t0) * 1000
    finally:
        for k in socks:
            k.close()
        st.cleanup()
        redis.command("FLUSHALL")


def main():
    streams = int(os.environ.get("STREAMS", "1000"))
    seconds = float(os.environ.get("SECONDS", "30"))
    rounds = int(os.environ.get("ROUNDS", "3"))
    h2 = os.environ.get("H2") == "1"
    other = os.environ.get("COMPARE")
    check_ms = int(os.environ.get("PEER_CHECK_MS", "500"))
    mine = os.path.join(ROOT, "build", "fcgi_sse")
    # (label, peer_check_ms, binary) for each variant, run in turn each round
    variants = ([("%s, check %d ms" % (b, check_ms), check_ms, b) for b in (other, mine)] if other
                else [("peer_check_ms %3d" % ms, ms, mine) for ms in (500, 0)])
    got = {v[0]: [] for v in variants}
    redis = RedisServer().start()
    try:
        for _ in range(rounds):
            for label, ms, binary in variants:
                got[label].append(one(redis, ms, streams, seconds, h2, binary))
                print("%s: %.2f ms CPU/s" % (label, got[label][-1]), flush=True)
    finally:
        redis.stop()
    for label, v in got.items():
        print("%d idle %s streams, %s: fcgi_sse %s ms CPU per second (median %.2f)"
              % (streams, "HTTP/2" if h2 else "HTTP/1.1", label, ", ".join("%.2f" % x for x in v),
                 sorted(v)[len(v) // 2]))


if __name__ == "__main__":
    main()
