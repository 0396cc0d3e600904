#!/usr/bin/env bash
# Prints token verification and session lookup figures (issue #3).
# Starts a throwaway redis-server on a free loopback port and stops it.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/redis.sh
dir=$(mktemp -d)
trap 'bench_redis_stop; rm -rf "$dir"' EXIT
bench_redis_start "$dir"
echo "== $(date -u +%FT%TZ) $(uname -m), $(nproc) cores"
bench/jwt_bench
bench/session_bench "$redis_port"
