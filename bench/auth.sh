#!/usr/bin/env bash
# Prints token verification and session lookup figures (issue #3).
# Starts a throwaway redis-server on a free loopback port and stops it.
set -euo pipefail
cd "$(dirname "$0")/.."
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
dir=$(mktemp -d)
redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no --dir "$dir" >/dev/null &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$dir"' EXIT
for _ in $(seq 50); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.1; done
echo "== $(date -u +%FT%TZ) $(uname -m), $(nproc) cores"
bench/jwt_bench
bench/session_bench "$port"
