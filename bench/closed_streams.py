#!/usr/bin/env python3
"""bench/closed_streams.py: how long a stream a client has closed keeps its
place in fcgi_sse behind lighttpd (fcgi_sse_streams_open), for a clean
close over HTTP/1.1 (everything read, then close(): a FIN), a curl killed
over HTTP/1.1 (its kernel closes the socket: a FIN too) and over HTTP/2
(h2c); then MANY (1000) streams closed cleanly at once, timed until both
fcgi_sse (fcgi_sse_streams_open) and lighttpd (its open files) are back
where they were, ROUNDS (3) times, interleaved with the same for the
anchor, nginx + nchan (ANCHOR=0: without), as bench/sse.sh deploys it. Issue #15: lighttpd 1.4.69 takes a FIN for a half-close
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


def drain(k):
    while select.select([k], [], [], 0.01)[0] and k.recv(65536):
        pass


def close_many(connect, many, gauges, all_open, timeout=60):
    """Opens many streams, waits until all_open(), reads what they got,
    closes them all at once (FINs) and returns, per gauge (name: (read,
    baseline)), the seconds until it was back at its baseline (None: not
    within timeout)."""
    socks = [connect() for _ in range(many)]
    t0 = time.monotonic()
    while not all_open() and time.monotonic() - t0 < 30:
        time.sleep(0.05)
    for k in socks:
        drain(k)
    t0 = time.monotonic()
    for k in socks:
        k.close()
    done = {}
    while len(done) < len(gauges) and time.monotonic() - t0 < timeout:
        now = time.monotonic() - t0
        for name, (read, base) in gauges.items():
            if name not in done and read() <= base:
                done[name] = now
        time.sleep(0.02)
    return {name: done.get(name) for name in gauges}


class Nchan:
    """The anchor: nginx + nchan as bench/sse.sh runs it (bench/nginx-nchan.conf,
    worker_processes auto); its workers' open files are the gauge."""

    def __init__(self):
        import tempfile
        from harness import free_port, port_open, wait_until
        self.dir = tempfile.mkdtemp(prefix="closed_nchan_")
        self.port = free_port()
        with open(os.path.join(ROOT, "bench", "nginx-nchan.conf")) as f:
            conf = f.read().replace("@DIR@", self.dir).replace("@PORT@", str(self.port)).replace("@WORKERS@", "auto")
        with open(os.path.join(self.dir, "nginx.conf"), "w") as f:
            f.write(conf)
        self.proc = subprocess.Popen(["nginx", "-p", self.dir, "-e", os.path.join(self.dir, "error.log"), "-c",
                                      os.path.join(self.dir, "nginx.conf"), "-g", "daemon off;"],
                                     stderr=subprocess.DEVNULL)
        if not wait_until(lambda: port_open(self.port), 10):
            raise RuntimeError("nginx did not start")
        time.sleep(0.5)

    def workers(self):
        with open("/proc/%d/task/%d/children" % (self.proc.pid, self.proc.pid)) as f:
            return [int(x) for x in f.read().split()]

    def fds(self):
        return sum(len(os.listdir("/proc/%d/fd" % w)) for w in self.workers())

    def connect(self):
        k = socket.create_connection(("127.0.0.1", self.port))
        k.sendall(b"GET /sub?id=closed HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n")
        return k

    def stop(self):
        self.proc.terminate()
        self.proc.wait()


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
        rounds = int(os.environ.get("ROUNDS", "3"))
        nchan = Nchan() if os.environ.get("ANCHOR", "1") != "0" else None
        results = {"fcgi_sse": [], "lighttpd": [], "nchan": []}
        try:
            for _ in range(rounds):  # interleaved: fcgi_sse, then the anchor
                b = open_streams()
                done = close_many(connect, many,
                                  {"fcgi_sse": (open_streams, b), "lighttpd": (lighttpd_fds, lighttpd_fds())},
                                  lambda: open_streams() >= b + many)
                for k, v in done.items():
                    results[k].append(v)
                if nchan is not None:
                    base = nchan.fds()
                    done = close_many(nchan.connect, many, {"nchan": (nchan.fds, base)},
                                      lambda: nchan.fds() >= base + many)
                    results["nchan"].append(done["nchan"])
        finally:
            if nchan is not None:
                nchan.stop()
        for k, v in results.items():
            if v:
                print("%d streams closed cleanly at once, %-9s back to its count after: %s s (median %.2f s)"
                      % (many, k, ", ".join("%.2f" % x for x in v), sorted(v)[len(v) // 2]), flush=True)
    finally:
        st.cleanup()
        redis.stop()


if __name__ == "__main__":
    main()
