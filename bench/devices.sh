#!/bin/bash
# bench/devices.sh: the data API through lighttpd, as `make run` deploys it
# (issue #11). In one session, with nothing else running:
#   1. GET /api/v2/devices/{id} with a warm cache, wrk at CONNS connections,
#      interleaved ROUNDS times with the floor: bench/api_floor (a libfcgi
#      responder answering a device-sized JSON body, as many threads as
#      fcgi_sse's workers) behind its own lighttpd with the same settings;
#   2. GET /api/v2/devices?limit=50 and /devices/count over DEVICES devices;
#   3. telemetry ingest: POINTS points at RATE/s posted to one device while
#      STREAMS streams (events=telemetry) receive them, latency from POST to
#      arrival (bench/sse_load).
# Environment: CONNS (64), DURATION (10 s per wrk run), ROUNDS (3), DEVICES
# (1000), STREAMS (1000), RATE (2000), POINTS (20000), WORKERS (8, make run's), PARTS
# ("get lists telemetry", and "limits": GET with the rate limits on and
# off, interleaved; "metrics": GET by fcgi_sse as built and by a build
# without the per-request metrics, interleaved), LIMIT (the per-minute limits, reached never by
# default), STORE (sqlite, as make run; postgres: a private PostgreSQL
# cluster, bench/store.sh), CACHE (on; off: devices, lists and counts read
# from the store every time, cache.*_ttl_s 0), PARTS "writes" (PATCH
# /devices/{id} over all DEVICES devices: a store write with its audit row
# and outbox event each), REDIS (unix: fcgi_sse
# reaches Redis on its Unix socket, as `make run` has it; tcp: on loopback
# TCP).
set -euo pipefail
cd "$(dirname "$0")/.."

CONNS=${CONNS:-64}
DURATION=${DURATION:-10}
ROUNDS=${ROUNDS:-3}
DEVICES=${DEVICES:-1000}
STREAMS=${STREAMS:-1000}
RATE=${RATE:-2000}
POINTS=${POINTS:-20000}
WORKERS=${WORKERS:-8}
PARTS=${PARTS:-get lists telemetry}
REDIS=${REDIS:-unix}
CACHE=${CACHE:-on}
# the limits are on (every request is counted) but never reached
LIMIT=${LIMIT:-100000000}
part() { case " $PARTS " in *" $1 "*) return 0 ;; esac; return 1; }

ulimit -n "$(ulimit -Hn)"
command -v wrk >/dev/null 2>&1 || {
	if [ "$(id -u)" -eq 0 ]; then
		DEBIAN_FRONTEND=noninteractive apt-get install -y -q wrk >/dev/null
	else
		echo "devices.sh: install wrk (apt-get install wrk)" >&2
		exit 1
	fi
}
make -s all bench/api_floor
# the per-request metrics compiled out, for PARTS=metrics (measurement only)
part metrics && make -s BUILD=build/nometrics BENCH_CPPFLAGS=-DFCGI_SSE_BENCH_NO_REQUEST_METRICS \
	build/nometrics/fcgi_sse
mkdir -p build/bench
[ build/bench/sse_load -nt bench/sse_load.c ] ||
	cc -O2 -Wall -Wextra -Werror -pthread -o build/bench/sse_load bench/sse_load.c -lm

. bench/redis.sh
. bench/store.sh
dir=$(mktemp -d /tmp/devices_bench.XXXXXX)
pids=()
cleanup() {
	# KILL for the floor: libfcgi's accept loop outlives a TERM
	[ -n "${floor_pid:-}" ] && kill -KILL "$floor_pid" 2>/dev/null
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
	bench_redis_stop
	bench_store_stop
	rm -rf "$dir"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() {
	for _ in $(seq 100); do
		(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
		sleep 0.1
	done
	return 1
}

# lighttpd (deploy/lighttpd/lighttpd.conf) with RUN_DIR $1; sets lt_port.
lighttpd_for() {
	lt_port=$(free_port)
	mkdir -p "$1/www"
	env -u FCGI_SSE_CONFIG PORT="$lt_port" RUN_DIR="$1" setsid lighttpd -D -f deploy/lighttpd/lighttpd.conf \
		>/dev/null 2>"$1/lighttpd.stderr" &
	pids+=($!)
	wait_port "$lt_port" || { cat "$1/lighttpd.stderr" >&2; exit 1; }
}

# ---- fcgi_sse as make run has it: Redis, SQLite, one process, lighttpd ----
bench_redis_start "$dir"
bench_store_start "$dir"
key=$(head -c 32 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n')
mkdir -p "$dir/app"
cat >"$dir/config.json" <<JSON
{
  "server": { "workers": $WORKERS },
  "log": { "level": "warn" },
  "http": { "max_body_bytes": 1048576 },
  "sse": { "max_streams": $((STREAMS + 64)), "max_lifetime_ms": 0, "max_streams_per_tenant": 0,
           "max_streams_per_user": 0 },
  "store": $(bench_store_json "$dir"),
  $([ "$CACHE" = off ] && echo '"cache": { "device_ttl_s": 0, "device_list_ttl_s": 0, "telemetry_recent_ttl_s": 0 },')
  "redis": $([ "$REDIS" = tcp ] && echo "{ \"host\": \"127.0.0.1\", \"port\": $redis_port }" ||
	echo "{ \"host\": \"unix:$redis_sock\" }"),
  "auth": { "jwt_keys": "bench1:$key", "pbkdf2_iterations": 1000 },
  "ratelimit": { "reads_per_min": $LIMIT, "writes_per_min": $LIMIT, "publish_per_min": $LIMIT,
                 "stream_opens_per_min": $LIMIT }
}
JSON
# the same with the limits off, for PARTS=limits
sed 's/"\(reads\|writes\|publish\|stream_opens\)_per_min": [0-9]*/"\1_per_min": 0/g' \
	"$dir/config.json" >"$dir/config-off.json"
fs() { env -u FCGI_SSE_CONFIG build/fcgi_sse "$@"; }
fs admin --config "$dir/config.json" create-tenant bench >/dev/null
echo 'bench-password' | fs admin --config "$dir/config.json" create-user --tenant bench \
	--username op --role operator >/dev/null
# app_for CONFIG DIR [BINARY]: fcgi_sse on DIR/fcgi_sse.sock behind its own
# lighttpd; sets app_pid (fcgi_sse's own pid, for its CPU time: not in a
# subshell) and lt_port
app_for() {
	mkdir -p "$2"
	env -u FCGI_SSE_CONFIG "${3:-build/fcgi_sse}" --config "$1" --listen "unix:$2/fcgi_sse.sock" \
		</dev/null >/dev/null 2>"$2/fcgi_sse.log" &
	app_pid=$!
	pids+=("$app_pid")
	for _ in $(seq 50); do [ -S "$2/fcgi_sse.sock" ] && break; sleep 0.1; done
	lighttpd_for "$2"
}
app_for "$dir/config.json" "$dir/app"
fcgi_pid=$app_pid app_port=$lt_port app_lighttpd=${pids[-1]}

curl -sS -D "$dir/login.head" -o "$dir/login.json" -H 'Content-Type: application/json' \
	-d '{"tenant":"bench","username":"op","password":"bench-password"}' \
	"http://127.0.0.1:$app_port/api/v2/auth/login"
token=$(sed -n 's/.*"access_token":"\([^"]*\)".*/\1/p' "$dir/login.json")
fgp=$(sed -n 's/^[Ss]et-[Cc]ookie: *__Host-fgp=\([^;]*\).*/\1/p' "$dir/login.head" | tr -d '\r' | head -1)
[ -n "$token" ] && [ -n "$fgp" ] || { echo "devices.sh: login failed" >&2; cat "$dir/login.json" >&2; exit 1; }
auth=(-H "Authorization: Bearer $token" -H "Cookie: __Host-fgp=$fgp")

# DEVICES devices (a third online), through the API, in parallel batches
create_devices() {
	local i
	for i in $(seq "$1" "$2"); do
		curl -fsS -o /dev/null "${auth[@]}" -H 'Content-Type: application/json' \
			-d "{\"name\":\"bench $i\",\"status\":\"$([ $((i % 3)) = 0 ] && echo online || echo offline)\",\"metadata\":{\"n\":$i}}" \
			"http://127.0.0.1:$app_port/api/v2/devices"
	done
}
per=$(( (DEVICES + 3) / 4 ))
creators=()
for k in 0 1 2 3; do
	create_devices $((k * per + 1)) $(( (k + 1) * per < DEVICES ? (k + 1) * per : DEVICES )) &
	creators+=($!)
done
wait "${creators[@]}" # not a bare wait: the servers are children too
device=$(curl -fsS "${auth[@]}" "http://127.0.0.1:$app_port/api/v2/devices?limit=1" |
	sed -n 's/.*"items":\[{"id":"\([^"]*\)".*/\1/p')
[ -n "$device" ] || { echo "devices.sh: no device" >&2; exit 1; }
curl -fsS -o /dev/null "${auth[@]}" "http://127.0.0.1:$app_port/api/v2/devices/$device" # warm
if part limits; then
	app_for "$dir/config-off.json" "$dir/off"
	off_pid=$app_pid off_port=$lt_port off_lighttpd=${pids[-1]}
	curl -fsS -o /dev/null "${auth[@]}" "http://127.0.0.1:$off_port/api/v2/devices/$device"
fi
if part metrics; then
	app_for "$dir/config.json" "$dir/nometrics" build/nometrics/fcgi_sse
	nom_pid=$app_pid nom_port=$lt_port nom_lighttpd=${pids[-1]}
	curl -fsS -o /dev/null "${auth[@]}" "http://127.0.0.1:$nom_port/api/v2/devices/$device"
fi
# the creations' dirty pages written back before anything is timed
sync
sleep 2

# ---- the floor ----
mkdir -p "$dir/floor"
bench/api_floor "$dir/floor/fcgi_sse.sock" "$WORKERS" </dev/null >/dev/null &
floor_pid=$!
pids+=("$floor_pid")
for _ in $(seq 50); do [ -S "$dir/floor/fcgi_sse.sock" ] && break; sleep 0.1; done
lighttpd_for "$dir/floor"
floor_port=$lt_port floor_lighttpd=${pids[-1]}

ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }

# wrk_run label url backend lighttpd [redis]: requests/s, p50 and p99 (ms),
# CPU per request (µs) of backend + lighttpd, and each apart (with Redis's)
wrk_run() {
	local label=$1 url=$2 out p i=0 t0=() t1=()
	shift 2
	for p in "$@"; do t0[i]=$(ticks "$p"); i=$((i + 1)); done
	out=$(wrk -t2 -c"$CONNS" -d"${DURATION}s" --latency ${WRK_SCRIPT:+-s "$WRK_SCRIPT"} "${auth[@]}" "$url")
	i=0
	for p in "$@"; do t1[i]=$(( $(ticks "$p") - t0[i] )); i=$((i + 1)); done
	echo "$out" | awk -v label="$label" -v b="${t1[0]}" -v l="${t1[1]}" -v r="${t1[2]:-}" \
		-v hz="$(getconf CLK_TCK)" '
	function ms(v) { if (v ~ /us$/) return v / 1000; if (v ~ /ms$/) return v + 0; if (v ~ /s$/) return v * 1000; return v }
	function us(t) { return n > 0 ? t * 1e6 / hz / n : 0 }
	/^ +50%/ { p50 = ms($2) } /^ +99%/ { p99 = ms($2) }
	/^Requests\/sec:/ { rps = $2 } /^ +[0-9]+ requests in/ { n = $1 }
	/Non-2xx/ { bad = $NF }
	END { printf "%-22s %8.0f req/s  p50 %6.3f ms  p99 %6.3f ms  CPU/request %5.1f us (backend %.1f, lighttpd %.1f%s)  non-2xx %s\n",
		label, rps, p50, p99, us(b + l), us(b), us(l), (r == "" ? "" : sprintf(", redis %.1f", us(r))),
		(bad == "" ? 0 : bad) }'
}

echo "== $(date -u +%FT%TZ) $(uname -m), $(nproc) cores; commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown);" \
	"bench/devices.sh CONNS=$CONNS DURATION=$DURATION ROUNDS=$ROUNDS DEVICES=$DEVICES STREAMS=$STREAMS RATE=$RATE POINTS=$POINTS WORKERS=$WORKERS REDIS=$REDIS STORE=$STORE CACHE=$CACHE"
part get && echo "-- GET one device (cache warm) against the floor, interleaved; CPU: backend + its lighttpd"
part get && for r in $(seq "$ROUNDS"); do
	# PERF_OUT=file: a perf profile of fcgi_sse during the first round
	[ -n "${PERF_OUT:-}" ] && [ "$r" = 1 ] &&
		{ perf record -F 999 ${PERF_ARGS:--g} -p "$fcgi_pid" -o "$PERF_OUT" -- sleep "$((DURATION - 2))" >/dev/null 2>&1 & }
	# STRACE_OUT=file: system calls of fcgi_sse (all threads) during the first
	# round, and of the floor into file.floor
	[ -n "${STRACE_OUT:-}" ] && [ "$r" = 1 ] &&
		{ timeout -s INT "$((DURATION - 2))" strace -c -f -p "$fcgi_pid" -o "$STRACE_OUT" >/dev/null 2>&1 & }
	wrk_run "fcgi_sse round $r" "http://127.0.0.1:$app_port/api/v2/devices/$device" "$fcgi_pid" "$app_lighttpd" "$redis_pid"
	[ -n "${STRACE_OUT:-}" ] && [ "$r" = 1 ] &&
		{ timeout -s INT "$((DURATION - 2))" strace -c -f -p "$floor_pid" -o "$STRACE_OUT.floor" >/dev/null 2>&1 & }
	wrk_run "floor round $r" "http://127.0.0.1:$floor_port/api/v2/devices/$device" "$floor_pid" "$floor_lighttpd"
done
part limits && echo "-- GET one device (cache warm): limits on (never reached) and off, interleaved"
part limits && for r in $(seq "$ROUNDS"); do
	wrk_run "limits on, round $r" "http://127.0.0.1:$app_port/api/v2/devices/$device" "$fcgi_pid" "$app_lighttpd" "$redis_pid"
	wrk_run "limits off, round $r" "http://127.0.0.1:$off_port/api/v2/devices/$device" "$off_pid" "$off_lighttpd" "$redis_pid"
done
part metrics && echo "-- GET one device (cache warm): per-request metrics on and compiled out, interleaved"
part metrics && for r in $(seq "$ROUNDS"); do
	wrk_run "metrics on, round $r" "http://127.0.0.1:$app_port/api/v2/devices/$device" "$fcgi_pid" "$app_lighttpd" "$redis_pid"
	wrk_run "metrics off, round $r" "http://127.0.0.1:$nom_port/api/v2/devices/$device" "$nom_pid" "$nom_lighttpd" "$redis_pid"
done
if part lists; then
echo "-- lists and counts over $DEVICES devices (store reads)"
wrk_run "list limit=50" "http://127.0.0.1:$app_port/api/v2/devices?limit=50" "$fcgi_pid" "$app_lighttpd" "$redis_pid"
wrk_run "list status=online" "http://127.0.0.1:$app_port/api/v2/devices?limit=50&status=online" "$fcgi_pid" "$app_lighttpd" "$redis_pid"
wrk_run "count" "http://127.0.0.1:$app_port/api/v2/devices/count" "$fcgi_pid" "$app_lighttpd" "$redis_pid"
wrk_run "count status=online" "http://127.0.0.1:$app_port/api/v2/devices/count?status=online" "$fcgi_pid" "$app_lighttpd" "$redis_pid"
fi
if part writes; then
echo "-- PATCH /devices/{id} over $DEVICES devices (a store write each)"
curl -fsS "${auth[@]}" "http://127.0.0.1:$app_port/api/v2/devices?limit=200" |
	grep -o '"id":"[^"]*"' | cut -d'"' -f4 >"$dir/ids"
{
	printf 'local ids = {'
	sed 's/.*/"&",/' "$dir/ids" | tr -d '\n'
	printf '}\nlocal n = 0\n'
	printf 'request = function()\n  n = n + 1\n'
	printf '  return wrk.format("PATCH", "/api/v2/devices/" .. ids[n %% #ids + 1], nil,\n'
	printf '    string.format("{\\"metadata\\":{\\"n\\":%%d}}", n))\nend\n'
	printf 'wrk.headers["Content-Type"] = "application/json"\n'
} >"$dir/patch.lua"
WRK_SCRIPT=$dir/patch.lua wrk_run "PATCH device" "http://127.0.0.1:$app_port" "$fcgi_pid" "$app_lighttpd" "$redis_pid"
fi
part telemetry || exit 0
echo "-- telemetry: $POINTS points at $RATE/s to one device, $STREAMS streams receiving them"
build/bench/sse_load --port "$app_port" --sub-path '/api/v2/events/stream?events=telemetry' \
	--sub-header "Authorization: Bearer $token" --sub-header "Cookie: __Host-fgp=$fgp" \
	--ready-event connected --event telemetry \
	--pub-path "/api/v2/devices/$device/telemetry" --pub-header "Authorization: Bearer $token" \
	--pub-header "Cookie: __Host-fgp=$fgp" --pub-header 'Content-Type: application/json' \
	--body '{"metrics":{"seq":{seq},"t":{t}}}' --publishers 16 \
	--streams "$STREAMS" --events "$POINTS" --rate "$RATE" --pids "$fcgi_pid,$app_lighttpd" | grep -v '^kv '
