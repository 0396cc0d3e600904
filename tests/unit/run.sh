#!/usr/bin/env bash
# Runs the unit-test binary with a throwaway redis-server on a free
# loopback port (the cache tests talk to a real Redis).
# usage: tests/unit/run.sh COMMAND [ARGS...]   (e.g. build/san/unit_tests)
set -euo pipefail

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
dir=$(mktemp -d)
redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no --dir "$dir" >"$dir/redis.log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$dir"' EXIT
for _ in $(seq 100); do
	(exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
	sleep 0.05
done
FCGI_SSE_TEST_REDIS_PORT=$port "$@"
