#!/usr/bin/env python3
"""The e2e tests' stack, built from tests/integration/harness.py: one
redis-server, two fcgi_sse processes sharing it and one SQLite store
(backends "a" on RUN_DIR/fcgi_sse.sock and "b" on RUN_DIR/fcgi_sse-b.sock),
and lighttpd in front with tests/e2e/lighttpd.conf (make run's
configuration, dashboard included, with both backends), its document root
laid out by deploy/www.sh as make run does. Tenant "demo" with users admin,
operator and viewer, password "demo-password", as make run makes them.

Driven by tests/e2e/run.mjs over stdin and stdout, one JSON line each way:
first this prints the stack ({"url", "dir", "backends": {"a": {"pid",
"log"}, ...}, ...}), then answers each command line:
  kill NAME      SIGKILL that backend and reap it      -> {"ok", "status"}
  start NAME     start it again (same socket and log)  -> {"ok", "pid"}
  where TEXT     the backends whose log has TEXT       -> {"ok", "backends"}
  stop [keep]    stop everything (keep: leave the files) and exit
                                                       -> {"ok", "exit", "dir"}
End of input, SIGTERM or SIGINT stop everything too.

  python3 tests/e2e/stack.py --binary build/fcgi_sse
"""

import argparse
import base64
import json
import os
import signal
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))

from harness import ROOT, RedisServer, Stack, admin, stop_process, wait_until  # noqa: E402

TENANT = "demo"
PASSWORD = "demo-password"
USERS = ("admin", "operator", "viewer")
SOCKETS = {"a": "fcgi_sse.sock", "b": "fcgi_sse-b.sock"}


def secret(n):
    return base64.urlsafe_b64encode(os.urandom(n)).decode().rstrip("=")


def config(redis_port):
    return {
        "server": {"workers": 4, "shutdown_timeout_ms": 3000},
        "log": {"level": "info"},
        # a reconnect after a lost stream comes 1.5 s later (no jitter): the
        # failover test posts points in that gap
        "sse": {"retry_ms": 1500, "retry_jitter_pct": 0, "shutdown_grace_ms": 500},
        # logins cost a millisecond instead of 0.1 s of a core
        "auth": {"jwt_keys": "e2e1:" + secret(32), "pbkdf2_iterations": 1000},
        "security": {"internal_secret": secret(24)},
        "redis": {"host": "127.0.0.1", "port": redis_port},
    }


class TwoBackends(Stack):
    """harness.Stack with two standalone fcgi_sse processes behind one
    lighttpd (tests/e2e/lighttpd.conf)."""

    def __init__(self, binary, cfg):
        super().__init__(binary, cfg, name="e2e")
        self.lighttpd_conf = os.path.join(HERE, "lighttpd.conf")  # absolute: wins the join
        self.procs = {}

    def sock(self, name):
        return os.path.join(self.dir, SOCKETS[name])

    def log(self, name):
        return os.path.join(self.dir, "fcgi_sse-%s.log" % name)

    def start_named(self, name):
        path = self.sock(name)
        if os.path.exists(path):  # left by a SIGKILLed process
            os.unlink(path)
        env = {k: v for k, v in os.environ.items() if not k.startswith("FCGI_SSE_")}
        self.procs[name] = subprocess.Popen(
            [self.binary, "--config", self.config_path, "--listen", "unix:" + path],
            env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=open(self.log(name), "ab"))
        if not wait_until(lambda: os.path.exists(path), 10):
            raise RuntimeError("fcgi_sse %s did not start: %s" % (name, self.read("fcgi_sse-%s.log" % name)))
        return self.procs[name].pid

    def kill(self, name):
        proc = self.procs[name]
        proc.send_signal(signal.SIGKILL)
        return proc.wait(10)

    def where(self, text):
        return [n for n in SOCKETS if text in self.read("fcgi_sse-%s.log" % n)]

    def start_all(self):
        subprocess.run([os.path.join(ROOT, "deploy", "www.sh"), os.path.join(self.dir, "www")], check=True)
        self.make_users()
        for name in SOCKETS:
            self.start_named(name)
        os.environ["DEPLOY_LIGHTTPD"] = os.path.join(ROOT, "deploy", "lighttpd")  # for lighttpd.conf
        self.start(backend=False)  # lighttpd only
        if not wait_until(lambda: self.get("/api/v2/health").status == 200, 10):
            raise RuntimeError("no health through lighttpd: " + self.read("lighttpd.error.log"))
        return self

    def make_users(self):
        rc, out, err = admin(self.binary, self.config_path, "create-tenant", TENANT)
        if rc != 0:
            raise RuntimeError("create-tenant: %d %s" % (rc, err))
        for user in USERS:
            rc, out, err = admin(self.binary, self.config_path, "create-user", "--tenant", TENANT,
                                 "--username", user, "--role", user, stdin=PASSWORD + "\n")
            if rc != 0:
                raise RuntimeError("create-user %s: %d %s" % (user, rc, err))

    def stop(self):
        """Stops lighttpd, then each backend still running (SIGTERM);
        returns their exit statuses."""
        stop_process(self.lighttpd)
        self.lighttpd = None
        status = {}
        for name, proc in self.procs.items():
            already = proc.poll() is not None
            rc = stop_process(proc)
            status[name] = "killed" if already and rc == -signal.SIGKILL else rc
        self.procs = {}
        return status


def answer(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


class Interrupted(Exception):
    """SIGTERM or SIGINT."""


def serve(stack):
    """Answers commands until stop or end of input; returns the exit
    statuses and whether to keep the files."""
    for line in sys.stdin:
        words = line.split(None, 1)
        if not words:
            continue
        cmd, arg = words[0], (words[1].strip() if len(words) > 1 else "")
        try:
            if cmd == "kill":
                answer({"ok": True, "status": stack.kill(arg)})
            elif cmd == "start":
                answer({"ok": True, "pid": stack.start_named(arg)})
            elif cmd == "where":
                answer({"ok": True, "backends": stack.where(arg)})
            elif cmd == "stop":
                return arg == "keep"
            else:
                answer({"ok": False, "error": "unknown command %r" % cmd})
        except Exception as e:  # the runner reports it
            answer({"ok": False, "error": "%s: %s" % (type(e).__name__, e)})
    return False


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", default=os.path.join(ROOT, "build", "fcgi_sse"))
    args = ap.parse_args()
    # SIGTERM and SIGINT end the command loop like end of input does
    def interrupted(*_):
        raise Interrupted()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, interrupted)

    redis = RedisServer().start()
    stack = None
    keep = False
    try:
        stack = TwoBackends(os.path.abspath(args.binary), config(redis.port))
        stack.start_all()  # (what it started before a failure is stopped below)
        answer({"ok": True, "url": "http://127.0.0.1:%d/" % stack.port, "port": stack.port,
                "dir": stack.dir, "tenant": TENANT, "password": PASSWORD,
                "internal_secret": stack.config["security"]["internal_secret"],
                "backends": {n: {"pid": p.pid, "log": stack.log(n), "socket": stack.sock(n)}
                             for n, p in stack.procs.items()}})
        try:
            keep = serve(stack)
        except Interrupted:
            pass
        status = stack.stop()
        answer({"ok": True, "exit": status, "dir": stack.dir if keep else None})
    except Exception as e:
        answer({"ok": False, "error": "%s: %s" % (type(e).__name__, e),
                "dir": stack.dir if stack else None})
        keep = True
        raise
    finally:
        if stack:
            if keep:
                stack.stop()
            else:
                stack.cleanup()
        redis.cleanup()


if __name__ == "__main__":
    main()
