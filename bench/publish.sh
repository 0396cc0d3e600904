#!/usr/bin/env bash
# Redis CPU per publish with every tenant's history already full (issue #10):
# a throwaway redis-server, TENANTS tenants filled past MAX_LEN, then N timed
# publishes; redis-server's CPU (utime+stime from /proc) and
# INFO commandstats are read around the timed part only.
#   bench/publish.sh                 AGE_S=86400 (the default 24 h) and AGE_S=0
# Environment: TENANTS (4), MAX_LEN (10000), N (5000), AGES ("86400 0"),
# BIN (bench/publish_bench; another build of it, for an A/B in one session).
set -euo pipefail
cd "$(dirname "$0")/.."
TENANTS=${TENANTS:-4}
MAX_LEN=${MAX_LEN:-10000}
N=${N:-5000}
AGES=${AGES:-86400 0}
BIN=${BIN:-bench/publish_bench}
[ "$BIN" = bench/publish_bench ] && make -s bench/publish_bench >/dev/null

cpu_us() { # utime + stime of a pid, in µs
	awk -v hz="$(getconf CLK_TCK)" '{ print ($14 + $15) * 1e6 / hz }' "/proc/$1/stat"
}

echo "== $(date -u +%FT%TZ) commit $(git rev-parse --short HEAD) $(uname -m), $(nproc) cores;" \
	"$TENANTS tenants filled to $MAX_LEN, $N timed publishes"
. bench/redis.sh
dir=$(mktemp -d)
trap 'bench_redis_stop; rm -rf "$dir"' EXIT
for age in $AGES; do
	bench_redis_start "$dir"
	port=$redis_port pid=$redis_pid
	"$BIN" "$port" fill "$TENANTS" "$MAX_LEN" "$age"
	redis-cli -p "$port" config resetstat >/dev/null
	c0=$(cpu_us "$pid")
	rt=$("$BIN" "$port" run "$TENANTS" "$MAX_LEN" "$age" "$N")
	c1=$(cpu_us "$pid")
	stats=$(redis-cli -p "$port" info commandstats | tr -d '\r' |
		sed -n 's/^cmdstat_\([a-z]*\):calls=\([0-9]*\),usec=[0-9]*,usec_per_call=\([0-9.]*\).*/\1 \2 \3/p' |
		awk '{ printf "%s%s %.1f us x%d", sep, $1, $3, $2; sep = ", " }')
	len=$(redis-cli -p "$port" xlen 'fcgi_sse:{bench-t0}:events')
	printf 'history_max_age_s=%s: redis-server CPU per publish %.1f us; %s\n  commandstats: %s; history length %s\n' \
		"$age" "$(echo "$c1 $c0 $N" | awk '{ print ($1 - $2) / $3 }')" "$rt" "$stats" "$len"
	bench_redis_stop
done
