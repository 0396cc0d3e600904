#!/usr/bin/env python3
"""bench/closed_streams.py: how long a stream a client has closed keeps its
place in fcgi_sse behind lighttpd (fcgi_sse_streams_open), for a clean
close over HTTP/1.1 (everything read, then close(): a FIN), a curl killed
over HTTP/1.1 (its kernel closes the socket: a FIN too) and over HTTP/2
(h2c); then MANY (1000) streams closed cleanly at once, timed until both
fcgi_sse (fcgi_sse_streams_open) and lighttpd (its open files) are back
where they were. Issue #15: lighttpd 1.4.69 takes a FIN for a half-close
and notices the end only at its next write, so with the default heartbeat
(HEARTBEAT_MS, 15000) a cleanly closed stream stayed ~14 s; fcgi_sse's
peer check (sse.peer_check_ms; PEER_CHECK_MS here, 0 turns it off) finds
it in the kernel's table. Usage: python3 bench/closed_streams.py (builds
nothing: uses build/fcgi_sse)."""

import json
import os
import re
import select
import socket
import subprocess
import sys
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, os.path.join(ROOT, "tests", "deploy"))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
import scenario  # noqa: E402
import setups  # noqa: E402
from harness import RedisServer, request  # noqa: E402


def main():
    redis = RedisServer().start()
    st = setups.LighttpdSocket(os.path.join(ROOT, "build", "fcgi_sse"), redis.port)
    st.stack.config["sse"]["heartbeat_interval_ms"] = int(os.environ.get("HEARTBEAT_MS", "15000"))
    if "PEER_CHECK_MS" in os.environ:
        st.stack.config["sse"]["peer_check_ms"] = int(os.environ["PEER_CHECK_MS"])
    many = int(os.environ.get("MANY", "1000"))
    st.stack.config["sse"]["max_streams"] = many + 100
    with open(st.stack.config_path, "w") as f:
        json.dump(st.stack.config, f)
    try:
        scenario.prepare(st)
        st.start()
        login = scenario.Login(setups.H1(st.port))

        def open_streams():
            m = request(st.port, "GET", "/metrics").body.decode()
            return int(re.search(r"^fcgi_sse_streams_open (\d+)", m, re.M).group(1))

        def freed_after(end):
            before = open_streams()
            t0 = time.monotonic()
            end()
            while open_streams() >= before and time.monotonic() - t0 < 30:
                time.sleep(0.05)
            return time.monotonic() - t0

        def connect():
            k = socket.create_connection(("127.0.0.1", st.port))
            hdrs = "".join("%s: %s\r\n" % kv for kv in login.headers().items())
            k.sendall(("GET /api/v2/events/stream HTTP/1.1\r\nHost: x\r\n%s\r\n" % hdrs).encode())
            return k

        def drain(k):
            while select.select([k], [], [], 0.01)[0] and k.recv(65536):
                pass

        def clean_close():
            k = connect()
            time.sleep(1.0)
            drain(k)
            return k.close

        def lighttpd_fds():
            return len(os.listdir("/proc/%d/fd" % st.stack.lighttpd.pid))

        def curl(proto):
            hdrs = sum((["-H", "%s: %s" % kv] for kv in login.headers().items()), [])
            p = subprocess.Popen(["curl", "-sN", proto] + hdrs + ["http://127.0.0.1:%d/api/v2/events/stream" % st.port],
                                 stdout=subprocess.PIPE)
            time.sleep(1.0)
            return lambda: (p.kill(), p.wait())

        for name, setup in (("HTTP/1.1, everything read, close() (FIN)", clean_close),
                            ("HTTP/1.1, curl killed", lambda: curl("--http1.1")),
                            ("HTTP/2 (h2c), curl killed", lambda: curl("--http2-prior-knowledge"))):
            end = setup()
            print("%-48s freed after %5.1f s" % (name, freed_after(end)), flush=True)
        base_streams, base_fds = open_streams(), lighttpd_fds()
        socks = [connect() for _ in range(many)]
        while open_streams() < base_streams + many:
            time.sleep(0.05)
        for k in socks:
            drain(k)
        t0 = time.monotonic()
        for k in socks:
            k.close()
        done = {}
        while len(done) < 2 and time.monotonic() - t0 < 60:
            now = time.monotonic() - t0
            if "fcgi_sse" not in done and open_streams() <= base_streams:
                done["fcgi_sse"] = now
            if "lighttpd" not in done and lighttpd_fds() <= base_fds:
                done["lighttpd"] = now
            time.sleep(0.02)
        print("%d streams closed cleanly at once: fcgi_sse freed them after %s s, lighttpd after %s s"
              % (many, "%.2f" % done["fcgi_sse"] if "fcgi_sse" in done else "> 60",
                 "%.2f" % done["lighttpd"] if "lighttpd" in done else "> 60"), flush=True)
    finally:
        st.cleanup()
        redis.stop()


if __name__ == "__main__":
    main()
