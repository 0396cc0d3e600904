#!/usr/bin/env python3
"""bench/idle_streams_cpu.py: what idle streams cost fcgi_sse's CPU with the
peer check (sse.peer_check_ms, 500) and without it (0): STREAMS (1000) open
and quiet behind lighttpd, heartbeat 15 s, CPU (utime + stime from /proc)
over SECONDS (30), ROUNDS (3) interleaved. Prints ms of CPU per second for
each round and the medians. Usage: python3 bench/idle_streams_cpu.py (uses
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


def one(redis, peer_check_ms, streams, seconds):
    st = setups.LighttpdSocket(os.path.join(ROOT, "build", "fcgi_sse"), redis.port)
    st.stack.config["sse"].update(heartbeat_interval_ms=15000, peer_check_ms=peer_check_ms,
                                  max_streams=streams + 100)
    with open(st.stack.config_path, "w") as f:
        json.dump(st.stack.config, f)
    socks = []
    try:
        scenario.prepare(st)
        st.start()
        login = scenario.Login(setups.H1(st.port))
        hdrs = "".join("%s: %s\r\n" % kv for kv in login.headers().items())
        for _ in range(streams):
            k = socket.create_connection(("127.0.0.1", st.port))
            k.sendall(("GET /api/v2/events/stream HTTP/1.1\r\nHost: x\r\n%s\r\n" % hdrs).encode())
            socks.append(k)
        while b"fcgi_sse_streams_open %d" % streams not in request(st.port, "GET", "/metrics").body:
            time.sleep(0.1)
        time.sleep(2)
        pid = st.stack.backend.pid
        c0, t0 = cpu_s(pid), time.monotonic()
        time.sleep(seconds)
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
    redis = RedisServer().start()
    got = {500: [], 0: []}
    try:
        for _ in range(rounds):
            for ms in (500, 0):
                got[ms].append(one(redis, ms, streams, seconds))
                print("peer_check_ms %3d: %.2f ms CPU/s" % (ms, got[ms][-1]), flush=True)
    finally:
        redis.stop()
    for ms, v in got.items():
        print("%d idle streams, peer_check_ms %3d: fcgi_sse %s ms CPU per second (median %.2f)"
              % (streams, ms, ", ".join("%.2f" % x for x in v), sorted(v)[len(v) // 2]))


if __name__ == "__main__":
    main()
