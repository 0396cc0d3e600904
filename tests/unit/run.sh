#!/usr/bin/env bash
# Runs the unit-test binary with a throwaway redis-server on a free
# loopback port (the cache tests talk to a real Redis) and a private
# PostgreSQL cluster (tests/pgcluster.py; the store suites run on both
# backends), both stopped on exit.
# usage: tests/unit/run.sh COMMAND [ARGS...]   (e.g. build/san/unit_tests)
# FCGI_SSE_TEST_PG set already (a libpq conninfo of your own, or "skip")
# is used as it is, and no cluster is started.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
dir=$(mktemp -d)
pgdir=
cleanup() {
	# every step, whatever the one before returned (errexit would leave
	# the cluster running after a failed test run)
	set +e
	kill "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
	[ -n "$pgdir" ] && python3 "$here/pgcluster.py" stop "$pgdir"
	rm -rf "$dir" ${pgdir:+"$pgdir"}
}
redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no --dir "$dir" >"$dir/redis.log" 2>&1 &
pid=$!
trap cleanup EXIT
if [ -z "${FCGI_SSE_TEST_PG:-}" ]; then
	# right under /tmp: the cluster's user (not root) must reach it
	pgdir=$(mktemp -d /tmp/fcgi_sse_pg.XXXXXX)
	FCGI_SSE_TEST_PG=$(python3 "$here/pgcluster.py" start "$pgdir")
	export FCGI_SSE_TEST_PG
fi
for _ in $(seq 100); do
	(exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
	sleep 0.05
done
FCGI_SSE_TEST_REDIS_PORT=$port "$@"
