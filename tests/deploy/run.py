#!/usr/bin/env python3
"""make test-deploy: fcgi_sse deployed with every setup of deploy/, each
started from its files on loopback ports of its own, and put through the
same user scenario (tests/deploy/scenario.py). Prints one line per setup
with its result; exits 1 when any failed.

Usage: run.py --binary build/fcgi_sse [-k substring]"""

import argparse
import os
import sys
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
from harness import RedisServer  # noqa: E402

import scenario  # noqa: E402
import setups  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", required=True)
    ap.add_argument("-k", default="")
    args = ap.parse_args()
    binary = os.path.abspath(args.binary)
    chosen = [s for s in setups.all_setups() if args.k in s.name]
    redis = RedisServer().start()
    failed = 0
    try:
        for cls in chosen:
            t0 = time.monotonic()
            setup = None
            try:
                setup = cls(binary, redis.port)
                setup.redis = redis
                scenario.prepare(setup)
                setup.start()
                client = setup.client_class(getattr(setup, "client_port", setup.port))
                summary = scenario.run(setup, client)
                print("PASS %-34s %5.1fs  %s" % (cls.name, time.monotonic() - t0, summary), flush=True)
            except Exception as e:  # noqa: BLE001 (report every failure the same way)
                failed += 1
                print("FAIL %-34s %5.1fs  %s" % (cls.name, time.monotonic() - t0, e), flush=True)
                traceback.print_exc()
                if setup is not None:
                    print("---- log of %s ----\n%s" % (cls.name, setup.log()), flush=True)
            finally:
                # a fresh tenant per setup: the Redis history is shared
                redis.command("FLUSHALL")
                if setup is not None:
                    setup.cleanup()
    finally:
        redis.stop()
    print("%d setups passed, %d failed" % (len(chosen) - failed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
