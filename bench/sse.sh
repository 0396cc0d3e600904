#!/usr/bin/env bash
# SSE fan-out benchmark: fcgi_sse (behind lighttpd, with Redis and SQLite, as
# deployed) against an nginx + nchan anchor, in the same run on this machine.
# bench/sse_load opens the streams, publishes, and measures.
#
#   bench/sse.sh             one run per server and a side-by-side table
#   bench/sse.sh sustained   per server, step the rate up (RATES) until an
#                            event is lost, p99 > P99_MAX_MS (100, the
#                            definition of issue #10), or the publisher
#                            falls behind; prints the highest rate that held
#   bench/sse.sh cluster     cross-process fan-out (issue #5): two fcgi_sse
#                            processes, each behind its own lighttpd, sharing
#                            one redis-server and one SQLite file, against two
#                            nginx + nchan sharing one redis-server; streams
#                            alternate between the two, every publish goes
#                            into the first, so half the deliveries cross Redis
#   bench/sse.sh storm       the cluster, then a reconnect storm: once
#                            STORM_AT events are sent every stream drops and
#                            all reconnect at once with Last-Event-ID; how
#                            long until all are back and caught up, and
#                            whether each got every event exactly once, in order
#
# SERVERS may also name "floor": bench/floor, a trivial fan-out FastCGI
# responder behind the same lighttpd settings, the floor under fcgi_sse's
# figures; and "apache": fcgi_sse behind Apache's event MPM with the shipped
# mod_proxy_fcgi file (bench/apache-event.conf; APACHE_THREADS per child,
# 64, enough children for STREAMS + 25%). Each gets a table against
# fcgi_sse behind lighttpd.
#
# Environment: STORE (sqlite; postgres: fcgi_sse on a private PostgreSQL
# cluster, bench/store.sh), STREAMS (1000), EVENTS (1000), RATE (100), PUBLISHERS (16
# keep-alive publishing connections sharing one schedule: nchan answers a
# publish after its fan-out, tens of ms at 1000 streams on a busy machine, so
# a few connections alone cannot offer 100/s), SERVERS ("fcgi_sse nchan"),
# RATES ("50 75 100 125 150 200 300 400 600 800"), STEP_SECONDS (10: a
# sustained step publishes rate x this events, at least EVENTS, at most
# 50,000), P99_MAX_MS (100: a sustained step holds only with p99 at most
# this), KEEP_BENCH_DIR=1 keeps the temp dir with the servers' logs.
# Cluster and storm: STORM_AT (EVENTS / 2), RESUME ("header": Last-Event-ID;
# "query": fcgi_sse's last_event_id= parameter, nchan always gets the
# header), STORM_PAUSE_MS (0: reconnect at once; more: stay away that long,
# so that every reconnect must replay that many ms of events), NCHAN_BUFFER
# (10000 messages per channel in Redis, as fcgi_sse's sse.history_max_len),
# NCHAN_WORKERS (auto: nginx's worker_processes as its users deploy it, one
# per core), LIGHTTPD_WORKERS (fcgi_sse's lighttpd server.max-worker,
# deploy/lighttpd/base.conf's default when unset). Every worker process of
# nginx and lighttpd is counted in the CPU and RSS figures.
# What users run, for fcgi_sse: TENANTS tenants (4; the streams are the
# first's), each tenant's history filled with HISTORY events (10000, full
# at sse.history_max_len's default; 0: start empty) before anything is
# measured, the other tenants publishing at RATE throughout the timed part
# (straight into Redis, as other processes would), and WARMUP short runs
# (1: STREAMS/10 streams, 200 events) against the same servers first, not
# reported; nchan gets the warm-up runs too.
# A failed reconnect (refused, non-200) is retried after 500 ms, as a
# fetch-based client would; a browser EventSource would stop for good on a
# non-200 answer. FCGI_SSE_* configuration overrides in the environment
# reach every fcgi_sse started (e.g. FCGI_SSE_SERVER_BACKLOG=1024). The
# cluster modes sum the CPU and RSS of every server process, redis-server
# included, and print what the servers logged.
# Only 127.0.0.1 is used; every server started here is stopped on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/redis.sh
. bench/store.sh

STREAMS=${STREAMS:-1000}
EVENTS=${EVENTS:-1000}
RATE=${RATE:-100}
PUBLISHERS=${PUBLISHERS:-16}
SERVERS=${SERVERS:-fcgi_sse nchan}
RATES=${RATES:-50 75 100 125 150 200 300 400 600 800}
STEP_SECONDS=${STEP_SECONDS:-10}
P99_MAX_MS=${P99_MAX_MS:-100}
STORM_AT=${STORM_AT:-$((EVENTS / 2))}
STORM_PAUSE_MS=${STORM_PAUSE_MS:-0}
RESUME=${RESUME:-header}
NCHAN_BUFFER=${NCHAN_BUFFER:-10000}
NCHAN_WORKERS=${NCHAN_WORKERS:-auto}
HISTORY=${HISTORY:-10000}
TENANTS=${TENANTS:-4}
WARMUP=${WARMUP:-1}
mode=${1:-compare}
case "$mode" in
compare | sustained | cluster | storm) ;;
*) echo "usage: bench/sse.sh [compare|sustained|cluster|storm]" >&2; exit 2 ;;
esac

ulimit -n "$(ulimit -Hn)"
if [ "$(ulimit -n)" -lt $((STREAMS * 2 + 256)) ]; then
	echo "sse.sh: open files limit $(ulimit -n) is too low for $STREAMS streams" >&2
	exit 1
fi

# ---- packages and builds ----

install_nchan() {
	local missing=() p status policy=/usr/sbin/policy-rc.d placed=0 as_root=()
	for p in nginx libnginx-mod-nchan; do
		status=$(dpkg-query -W -f='${db:Status-Abbrev}' "$p" 2>/dev/null || true)
		case "$status" in ii*) ;; *) missing+=("$p") ;; esac
	done
	[ ${#missing[@]} -eq 0 ] && return 0
	if [ "$(id -u)" -ne 0 ]; then
		command -v sudo >/dev/null 2>&1 || { echo "sse.sh: install ${missing[*]} (as root)" >&2; exit 1; }
		as_root=(sudo)
	fi
	echo "sse.sh: installing ${missing[*]}" >&2
	# no service starts during the install (nginx would take port 80); an
	# existing policy-rc.d is left as it is
	if [ ! -e "$policy" ]; then
		printf '#!/bin/sh\nexit 101\n' | "${as_root[@]}" tee "$policy" >/dev/null
		"${as_root[@]}" chmod 755 "$policy"
		placed=1
	fi
	{ "${as_root[@]}" apt-get update -qq &&
	  "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
		--no-install-recommends "${missing[@]}" >/dev/null; } || {
		[ "$placed" -eq 1 ] && "${as_root[@]}" rm -f "$policy"
		exit 1
	}
	[ "$placed" -eq 1 ] && "${as_root[@]}" rm -f "$policy"
	return 0
}

case " $SERVERS " in *" nchan "*) install_nchan ;; esac
fcgi_sse_built=0
case " $SERVERS " in *" fcgi_sse "* | *" apache "*)
	deploy/deps.sh build run
	# the server may be mid-change: a failed build skips fcgi_sse, not nchan
	if make -s all >/dev/null; then fcgi_sse_built=1; else echo "sse.sh: make failed" >&2; fi ;;
esac
[ "$fcgi_sse_built" = 1 ] && { make -s bench/publish_bench >/dev/null || fcgi_sse_built=0; }
case " $SERVERS " in *" floor "*) make -s bench/floor >/dev/null ;; esac
mkdir -p build/bench
cc -O2 -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -Wmissing-prototypes -Wvla -Wshadow \
	-pthread -o build/bench/sse_load bench/sse_load.c -lm

# ---- process bookkeeping ----

# set by the start_* functions: the cluster's subscriber ports and the
# directories holding the servers' logs
fcgi_ports= nchan_ports= fcgi_dirs= nchan_dirs=

dir=$(mktemp -d /tmp/sse_bench.XXXXXX)
pids=()
# Stops what was started, newest first: front servers before the backends
# and redis-server they use, so that none logs a lost backend while stopping.
stop_all() {
	local i p
	for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
		p=${pids[i]}
		kill -TERM "$p" 2>/dev/null || true
		for _ in $(seq 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.05; done
		kill -KILL "$p" 2>/dev/null || true
		wait "$p" 2>/dev/null || true
	done
	pids=()
}
cleanup() {
	stop_all
	bench_store_stop
	if [ "${KEEP_BENCH_DIR:-0}" = 1 ]; then echo "sse.sh: kept $dir" >&2; else rm -rf "$dir"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
wait_port() {	# port seconds
	local i
	for i in $(seq $(($2 * 10))); do
		(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
		sleep 0.1
	done
	return 1
}

# ---- nchan ----

# Starts nginx + nchan; sets nchan_port and server_pids (master, worker).
start_nchan() {
	local d port master worker
	d=$(mktemp -d "$dir/nchan.XXXX")
	nchan_dirs="$d" nchan_ports=
	port=$(free_port)
	sed -e "s|@DIR@|$d|g" -e "s|@PORT@|$port|g" -e "s|@WORKERS@|$NCHAN_WORKERS|g" \
		bench/nginx-nchan.conf >"$d/nginx.conf"
	nginx -p "$d" -e "$d/error.log" -c "$d/nginx.conf" -g 'daemon off;' 2>"$d/stderr" &
	master=$!
	pids+=("$master")
	wait_port "$port" 10 || { cat "$d/stderr" "$d/error.log" >&2; return 1; }
	wait_children "$master" "$(nginx_workers)"
	server_pids=$(with_workers "$master")
	nchan_port=$port
}

# The anchor cluster: two nginx + nchan sharing one redis-server
# (bench/nginx-nchan-redis.conf); publishes go into the first. server_pids:
# master 1, worker 1, master 2, worker 2, redis-server.
# A redis-server in $1 on a free port; sets redis_port and redis_pid (the
# caller's locals, if it has them).
start_redis() {
	bench_redis_start "$1" || return 1
	pids+=("$redis_pid")
}

start_nchan_cluster() {
	local d i port master worker ports=() spids=() redis_port
	d=$(mktemp -d "$dir/nchan_cluster.XXXX")
	nchan_dirs="$d/n1 $d/n2"
	start_redis "$d" || return 1
	for i in 1 2; do
		mkdir -p "$d/n$i"
		port=$(free_port)
		sed -e "s|@DIR@|$d/n$i|g" -e "s|@PORT@|$port|g" -e "s|@REDIS_PORT@|$redis_port|g" \
			-e "s|@BUFFER@|$NCHAN_BUFFER|g" -e "s|@WORKERS@|$NCHAN_WORKERS|g" \
			bench/nginx-nchan-redis.conf >"$d/n$i/nginx.conf"
		nginx -p "$d/n$i" -e "$d/n$i/error.log" -c "$d/n$i/nginx.conf" -g 'daemon off;' 2>"$d/n$i/stderr" &
		master=$!
		pids+=("$master")
		wait_port "$port" 10 || { cat "$d/n$i/stderr" "$d/n$i/error.log" >&2; return 1; }
		wait_children "$master" "$(nginx_workers)"
		ports+=("$port")
		spids+=("$(with_workers "$master")")
	done
	server_pids="$(IFS=,; echo "${spids[*]}"),$redis_pid"
	nchan_port=${ports[0]}
	nchan_ports="${ports[0]},${ports[1]}"
}

nchan_args() {	# channel
	load_args=(--port "$nchan_port" --sub-path "/sub?id=$1" --pub-path "/pub?id=$1"
		--pub-header 'Content-Type: application/json' --pids "$server_pids")
	[ -n "$nchan_ports" ] && load_args+=(--ports "$nchan_ports")
	return 0
}

# ---- fcgi_sse behind lighttpd ----

# The highest sse.max_streams the binary accepts, from --describe-config.
max_streams_limit() {
	build/fcgi_sse --describe-config | awk -F'|' '/`sse.max_streams`/ {
		gsub(/[ `]/, "", $6); split($6, r, /\.\./); print r[2] }'
}

# Redis, the config, tenant and user, all in dir $1; sets redis_pid,
# redis_port, secret. One SQLite file, $1/fcgi_sse.db, for every process.
fcgi_sse_prepare() {
	local d=$1 key limit ms
	start_redis "$d" || return 1
	bench_store_stop # (a cluster of an earlier round)
	bench_store_start "$d" || return 1

	key=$(head -c 32 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n')
	secret=$(head -c 32 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n')
	limit=$(max_streams_limit)
	ms=$((STREAMS + STREAMS / 10 + 64)) # the warm-up's closed streams hold slots until their next write
	[ -n "$limit" ] && [ "$ms" -gt "$limit" ] && ms=$limit
	cat >"$d/config.json" <<-JSON
	{
	  "server": { "workers": 4 },
	  "log": { "level": "warn" },
	  "sse": { "max_streams": $ms, "max_lifetime_ms": 0, "max_streams_per_tenant": 0, "max_streams_per_user": 0 },
	  "store": $(bench_store_json "$d"),
	  "redis": { "host": "127.0.0.1", "port": $redis_port },
	  "auth": { "jwt_keys": "bench1:$key", "pbkdf2_iterations": 1000 },
	  "ratelimit": { "stream_opens_per_min": 100000000 },
	  "security": { "internal_secret": "$secret" }
	}
	JSON
	chmod 600 "$d/config.json"
	if ! env -u FCGI_SSE_CONFIG build/fcgi_sse --check-config --config "$d/config.json" >"$d/check.log" 2>&1; then
		echo "sse.sh: fcgi_sse rejects the bench config:" >&2
		cat "$d/check.log" >&2
		return 1
	fi
	bench_tid=$(env -u FCGI_SSE_CONFIG build/fcgi_sse admin --config "$d/config.json" create-tenant bench |
		sed -n 's/.*"id":"\([^"]*\)".*/\1/p')
	[ -n "$bench_tid" ] || return 1
	other_tids=
	for i in $(seq 2 "$TENANTS"); do
		other_tids+=" $(env -u FCGI_SSE_CONFIG build/fcgi_sse admin --config "$d/config.json" \
			create-tenant "bench$i" | sed -n 's/.*"id":"\([^"]*\)".*/\1/p')"
	done
	if [ "$HISTORY" -gt 0 ]; then
		# every tenant's history full before anything is measured
		bench/publish_bench "$redis_port" fill-ids 10000 86400 "$HISTORY" "$bench_tid" $other_tids ||
			return 1
	fi
	echo 'bench-password' | env -u FCGI_SSE_CONFIG build/fcgi_sse admin --config "$d/config.json" \
		create-user --tenant bench --username bench --role viewer >/dev/null || return 1
}

# One fcgi_sse process with config $2 on the socket $1/fcgi_sse.sock (log
# $1/fcgi_sse.log) and a lighttpd in front with RUN_DIR $1; sets
# inst_backend, inst_lighttpd, inst_port.
fcgi_sse_instance() {
	local rd=$1 cfg=$2
	mkdir -p "$rd/www"
	env -u FCGI_SSE_CONFIG build/fcgi_sse --config "$cfg" --listen "unix:$rd/fcgi_sse.sock" \
		</dev/null >/dev/null 2>"$rd/fcgi_sse.log" &
	inst_backend=$!
	pids+=("$inst_backend")
	for _ in $(seq 50); do [ -S "$rd/fcgi_sse.sock" ] && break; sleep 0.1; done
	[ -S "$rd/fcgi_sse.sock" ] || { echo "sse.sh: fcgi_sse did not start" >&2; cat "$rd/fcgi_sse.log" >&2; return 1; }

	lighttpd_instance "$rd" || return 1
	inst_lighttpd=$lt_pid inst_port=$lt_port
}

# A lighttpd (deploy/lighttpd/lighttpd.conf) with RUN_DIR $1, in front of
# the backend socket $1/fcgi_sse.sock; sets lt_pid and lt_port. setsid: with
# server.max-worker its master stops by signalling its whole process group.
lighttpd_instance() {
	lt_port=$(free_port)
	env -u FCGI_SSE_CONFIG PORT="$lt_port" RUN_DIR="$1" setsid lighttpd -D -f deploy/lighttpd/lighttpd.conf \
		>/dev/null 2>"$1/lighttpd.stderr" &
	lt_pid=$!
	pids+=("$lt_pid")
	wait_port "$lt_port" 10 || { cat "$1/lighttpd.stderr" >&2; return 1; }
}

# Publishers come in through a lighttpd of their own, as an internal
# service would: at 9,000 streams the subscribers' lighttpd holds 18,000
# descriptors, 90% of the 20,000 limit, where lighttpd stops accepting.
# Its run dir is $1/pub, its socket a link to $1/fcgi_sse.sock; sets
# pub_port and pub_lighttpd.
publisher_lighttpd() {
	mkdir -p "$1/pub/www"
	ln -sf "$1/fcgi_sse.sock" "$1/pub/fcgi_sse.sock"
	lighttpd_instance "$1/pub" || return 1
	pub_lighttpd=$lt_pid pub_port=$lt_port
}

# Logs in through port $1 (files in dir $2); sets token and fgp.
fcgi_sse_login() {
	local port=$1 d=$2
	curl -sS -D "$d/login.head" -o "$d/login.json" -H 'Content-Type: application/json' \
		-d '{"tenant":"bench","username":"bench","password":"bench-password"}' \
		"http://127.0.0.1:$port/api/v2/auth/login" || return 1
	token=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["access_token"])' "$d/login.json") || {
		echo "sse.sh: login failed:" >&2; cat "$d/login.head" "$d/login.json" >&2; return 1; }
	fgp=$(sed -n 's/^[Ss]et-[Cc]ookie: *__Host-fgp=\([^;]*\).*/\1/p' "$d/login.head" | tr -d '\r' | head -1)
}

# Are the events endpoints there on port $1? (a stream answers 200 and stays open)
fcgi_sse_probe() {
	local code
	code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 -H 'Accept: text/event-stream' \
		-H "Authorization: Bearer $token" -H "Cookie: __Host-fgp=$fgp" \
		"http://127.0.0.1:$1/api/v2/events/stream?events=bench" || true)
	if [ "$code" != 200 ]; then
		echo "sse.sh: fcgi_sse GET /api/v2/events/stream on port $1 answers $code, not 200: no events endpoint yet" >&2
		return 1
	fi
}

start_fcgi_sse() {
	local d
	[ "$fcgi_sse_built" = 1 ] || { echo "sse.sh: build/fcgi_sse was not built" >&2; return 1; }
	d=$(mktemp -d "$dir/fcgi_sse.XXXX")
	fcgi_dirs="$d" fcgi_ports=
	fcgi_sse_prepare "$d" || return 1
	fcgi_sse_instance "$d" "$d/config.json" || return 1
	publisher_lighttpd "$d" || return 1

	fcgi_sse_login "$inst_port" "$d" || return 1
	fcgi_sse_probe "$inst_port" || return 1
	server_pids="$inst_backend,$(with_workers "$inst_lighttpd"),$(with_workers "$pub_lighttpd")"
	fcgi_port=$inst_port
}

# The cluster: two fcgi_sse processes (same config, one redis-server, one
# SQLite file), each behind its own lighttpd (run dirs $d/p1, $d/p2).
# Publishes go through the first lighttpd into process 1. server_pids:
# fcgi_sse 1, lighttpd 1, fcgi_sse 2, lighttpd 2, redis-server.
start_fcgi_sse_cluster() {
	local d b1 l1 p1 i
	[ "$fcgi_sse_built" = 1 ] || { echo "sse.sh: build/fcgi_sse was not built" >&2; return 1; }
	d=$(mktemp -d "$dir/fcgi_sse_cluster.XXXX")
	fcgi_dirs="$d/p1 $d/p2"
	fcgi_sse_prepare "$d" || return 1
	fcgi_sse_instance "$d/p1" "$d/config.json" || return 1
	b1=$inst_backend l1=$inst_lighttpd p1=$inst_port
	fcgi_sse_instance "$d/p2" "$d/config.json" || return 1
	fcgi_sse_login "$p1" "$d" || return 1
	for i in "$p1" "$inst_port"; do fcgi_sse_probe "$i" || return 1; done
	server_pids="$b1,$(with_workers "$l1"),$inst_backend,$(with_workers "$inst_lighttpd"),$redis_pid"
	fcgi_port=$p1
	pub_port=$p1
	fcgi_ports="$p1,$inst_port"
}

fcgi_sse_args() {
	load_args=(--port "$fcgi_port" --sub-path '/api/v2/events/stream?events=bench'
		--sub-header "Authorization: Bearer $token" --sub-header "Cookie: __Host-fgp=$fgp"
		--ready-event connected --event bench
		--pub-port "$pub_port" --pub-path /api/v2/events --pub-header "X-Internal-Secret: $secret"
		--pub-header 'Content-Type: application/json'
		--body '{"tenant":"bench","type":"bench","data":{"seq":{seq},"t":{t},"after":{after}}}'
		--pids "$server_pids")
	[ -n "$fcgi_ports" ] && load_args+=(--ports "$fcgi_ports")
	return 0
}

# ---- running and reporting ----

# run_load server label streams events rate [sse_load options...]: prints
# sse_load's block to the terminal and keeps the kv line in $dir/<label>.kv
run_load() {
	local server=$1 label=$2 streams=$3 events=$4 rate=$5 limit r0=0 single=0
	shift 5
	if [ "$server" = nchan ]; then nchan_args "bench-$label"; else fcgi_sse_args; fi
	# in the cluster modes redis-server is one of the summed --pids
	{ [ "$server" = fcgi_sse ] || [ "$server" = apache ]; } && [ -z "$fcgi_ports" ] && single=1
	[ "$single" = 1 ] && r0=$(cpu_ticks "$redis_pid")
	limit=$((60 + streams / 50 + 2 * events / rate + 30))
	# the other tenants publish while this one is measured
	pacer=
	if { [ "$server" = fcgi_sse ] || [ "$server" = apache ]; } && [ -n "${other_tids// /}" ]; then
		bench/publish_bench "$redis_port" pace 10000 86400 "$rate" "$limit" $other_tids &
		pacer=$!
	fi
	timeout $((limit + 30)) build/bench/sse_load "${load_args[@]}" --streams "$streams" \
		--events "$events" --rate "$rate" --publishers "$PUBLISHERS" --time-limit "$limit" "$@" |
		tee "$dir/$label.out" | sed 's/^/  /' | grep -v '^  kv '
	grep '^kv ' "$dir/$label.out" | sed 's/^kv //' >"$dir/$label.kv"
	if [ -n "$pacer" ]; then
		kill "$pacer" 2>/dev/null || true
		wait "$pacer" 2>/dev/null || true
	fi
	# Redis carries fcgi_sse's publishes (not in the summed server figures);
	# with other tenants publishing at the same rate, twice the bench's
	[ "$single" = 1 ] && awk -v t="$(( $(cpu_ticks "$redis_pid") - r0 ))" \
		-v hz="$(getconf CLK_TCK)" -v d="$(kv "$dir/$label.kv" deliveries)" \
		-v p="$(kv "$dir/$label.kv" published)" -v o="$([ -n "$pacer" ] && echo 2 || echo 1)" 'BEGIN {
		printf "    redis-server:         %.1f ms CPU during the run, %.2f us per delivery, %.1f us per publish of any tenant (stream opens included: bench/publish.sh measures publishes alone)\n",
			t * 1000 / hz, (d > 0 ? t * 1e6 / hz / d : 0), (p > 0 ? t * 1e6 / hz / (p * o) : 0) }'
	return 0
}

# WARMUP short runs against the servers just started, not reported: the
# measured run meets a process that has served before.
warm_up() {	# server
	local i
	for i in $(seq "$WARMUP"); do
		run_load "$1" "$1-warmup$i" $((STREAMS / 10 > 10 ? STREAMS / 10 : 10)) 200 "$RATE" >/dev/null ||
			echo "sse.sh: $1 warm-up run failed" >&2
	done
	return 0
}

# utime + stime of a process in clock ticks
cpu_ticks() {
	sed 's/.*) //' "/proc/$1/stat" | awk '{ print $12 + $13 }'
}

# nginx's worker count for NCHAN_WORKERS ("auto": one per core)
nginx_workers() {
	if [ "$NCHAN_WORKERS" = auto ]; then nproc; else echo "$NCHAN_WORKERS"; fi
}

wait_children() {	# pid count
	for _ in $(seq 50); do
		[ "$(pgrep -P "$1" | wc -l)" -ge "$2" ] && return 0
		sleep 0.1
	done
	echo "sse.sh: pid $1 has not forked $2 workers" >&2
	return 1
}

# lighttpd is started with setsid: with server.max-worker its master stops
# by signalling its whole process group (kill(0, SIGTERM)), which would
# otherwise be this script's.
# pid and its children, comma-separated: lighttpd with server.max-worker
# (LIGHTTPD_WORKERS) and nginx fork the processes that do the work, and
# each must be counted
with_workers() {
	local kids
	kids=$(pgrep -P "$1" | paste -sd, -)
	echo "$1${kids:+,$kids}"
}

kv() {	# file key
	tr ' ' '\n' <"$1" | sed -n "s/^$2=//p"
}

# The floor (bench/floor: the least a FastCGI fan-out responder can do)
# behind the same lighttpd settings as fcgi_sse, publishers through their
# own lighttpd as for fcgi_sse; sets server_pids and fcgi_port.
start_floor() {
	local d floor_pid
	d=$(mktemp -d "$dir/floor.XXXX")
	floor_dirs="$d" fcgi_ports=
	mkdir -p "$d/www"
	bench/floor "$d/fcgi_sse.sock" </dev/null >/dev/null 2>"$d/floor.log" &
	floor_pid=$!
	pids+=("$floor_pid")
	for _ in $(seq 50); do [ -S "$d/fcgi_sse.sock" ] && break; sleep 0.1; done
	[ -S "$d/fcgi_sse.sock" ] || { echo "sse.sh: floor did not start" >&2; cat "$d/floor.log" >&2; return 1; }
	lighttpd_instance "$d" || return 1
	fcgi_port=$lt_port
	server_pids="$floor_pid,$(with_workers "$lt_pid")"
	publisher_lighttpd "$d" || return 1
	server_pids+=",$(with_workers "$pub_lighttpd")"
	token=floor fgp=floor secret=none
}

# fcgi_sse (one process, as start_fcgi_sse) behind Apache httpd's event MPM
# with mod_proxy_fcgi (bench/apache-event.conf: the shipped
# deploy/apache/fcgi_sse-proxy-fcgi.conf, the MPM sized for STREAMS plus 25%);
# publishes through the same Apache. Sets server_pids and fcgi_port.
APACHE_THREADS=${APACHE_THREADS:-64}
start_apache() {
	local d rd port servers
	[ "$fcgi_sse_built" = 1 ] || { echo "sse.sh: build/fcgi_sse was not built" >&2; return 1; }
	command -v apache2 >/dev/null || { echo "sse.sh: apache2 is not installed (deploy/deps.sh test)" >&2; return 1; }
	d=$(mktemp -d "$dir/apache.XXXX")
	chmod 755 "$dir" "$d" # Apache's www-data reaches the socket in it
	fcgi_dirs="$d" fcgi_ports=
	fcgi_sse_prepare "$d" || return 1
	rd=$d
	env -u FCGI_SSE_CONFIG build/fcgi_sse --config "$d/config.json" --listen "unix:$rd/fcgi_sse.sock" \
		</dev/null >/dev/null 2>"$rd/fcgi_sse.log" &
	inst_backend=$!
	pids+=("$inst_backend")
	for _ in $(seq 50); do [ -S "$rd/fcgi_sse.sock" ] && break; sleep 0.1; done
	[ -S "$rd/fcgi_sse.sock" ] || { echo "sse.sh: fcgi_sse did not start" >&2; return 1; }
	chmod 666 "$rd/fcgi_sse.sock"
	port=$(free_port)
	servers=$(( (STREAMS * 5 / 4 + APACHE_THREADS - 1) / APACHE_THREADS + 1 ))
	sed -e "s|@DIR@|$d|g" -e "s|@PORT@|$port|g" -e "s|@SOCKET@|$rd/fcgi_sse.sock|g" \
		-e "s|@DEPLOY@|$PWD/deploy/apache|g" -e "s|@THREADS@|$APACHE_THREADS|g" \
		-e "s|@SERVERS@|$servers|g" -e "s|@WORKERS@|$((servers * APACHE_THREADS))|g" \
		bench/apache-event.conf >"$d/httpd.conf"
	setsid apache2 -f "$d/httpd.conf" -DFOREGROUND >/dev/null 2>"$d/httpd.stderr" &
	apache_pid=$!
	pids+=("$apache_pid")
	wait_port "$port" 10 || { cat "$d/httpd.stderr" "$d/error.log" >&2; return 1; }
	wait_children "$apache_pid" "$servers"
	fcgi_sse_login "$port" "$d" || return 1
	fcgi_sse_probe "$port" || return 1
	server_pids="$inst_backend,$(with_workers "$apache_pid")"
	fcgi_port=$port pub_port=$port
}

start_server() {
	case "$mode:$1" in
	*:apache) start_apache ;;
	*:floor) start_floor ;;
	cluster:nchan | storm:nchan) start_nchan_cluster ;;
	cluster:* | storm:*) start_fcgi_sse_cluster ;;
	*:nchan) start_nchan ;;
	*) start_fcgi_sse ;;
	esac
}

# What the servers logged during a run: counts by level and the first
# distinct messages (fcgi_sse JSON lines, lighttpd and nginx error logs).
log_digest() {	# server
	local d f
	if [ "$1" = nchan ]; then
		for d in $nchan_dirs; do
			f="$d/error.log"
			[ -f "$f" ] || continue
			# the deprecation warnings of nchan_redis_url are not ours
			grep -v 'is discouraged' "$f" | grep -E '\[(warn|error|crit|alert|emerg)\]' |
				sed -E 's/^[0-9/]+ [0-9:]+ //; s/[0-9]+#[0-9]+: (\*[0-9]+ )?//' |
				sort | uniq -c | sort -rn | head -5 | sed "s|^|    nginx $(basename "$d") error.log: |" || true
		done
		return 0
	fi
	for d in $fcgi_dirs; do
		f="$d/fcgi_sse.log"
		if [ -s "$f" ]; then
			echo "    fcgi_sse $(basename "$d") log: $(wc -l <"$f") lines;" \
				"$(grep -c '"level":"error"' "$f" || true) error," \
				"$(grep -c '"level":"warn"' "$f" || true) warn"
			sed -n 's/.*"level":"\([a-z]*\)".*"msg":"\([^"]*\)".*/\1: \2/p' "$f" |
				sort | uniq -c | sort -rn | head -5 | sed 's/^/      /' || true
		fi
		f="$d/lighttpd.error.log"
		[ -f "$f" ] && grep -v 'server started\|server stopped\|graceful shutdown' "$f" |
			sed -E 's/^[0-9-]+ [0-9:]+: //' | sort | uniq -c | sort -rn | head -3 |
			sed "s|^|    lighttpd $(basename "$d"): |" || true
	done
	return 0
}

# Prints one row: name, fcgi_sse value, nchan value, ratio.
row() {	# label fcgi nchan
	awk -v l="$1" -v a="$2" -v b="$3" 'BEGIN {
		r = "n/a"
		if (a != "" && b != "" && a != "n/a" && b != "n/a") {
			if (b + 0 != 0) r = sprintf("%.2f", a / b)
			else if (a + 0 == 0) r = "="
		}
		if (a == "") a = "n/a"; if (b == "") b = "n/a"
		printf "| %-36s | %12s | %12s | %14s |\n", l, a, b, r }'
}

table_head() {	# [name1 name2]
	local a=${1:-fcgi_sse} b=${2:-nchan}
	printf '| %-36s | %12s | %12s | %14s |\n' metric "$a" "$b" "$a/$b"
	printf '|%s|%s|%s|%s|\n' "$(printf -- '-%.0s' $(seq 38))" "$(printf -- '-%.0s' $(seq 14))" \
		"$(printf -- '-%.0s' $(seq 14))" "$(printf -- '-%.0s' $(seq 16))"
}

table_rows() {	# fcgi_kv nchan_kv "key:label"...
	local f=$1 n=$2 k
	shift 2
	for k in "$@"; do
		row "${k#*:}" "$( [ -s "$f" ] && kv "$f" "${k%%:*}" || true)" \
			"$( [ -s "$n" ] && kv "$n" "${k%%:*}" || true)"
	done
}

table() {	# fcgi_kv nchan_kv [name1 name2]
	table_head "${3:-}" "${4:-}"
	table_rows "$1" "$2" "streams_open:streams open" "published:events published" \
		"deliveries:deliveries" "loss:loss" "duplicates:duplicates" "lat_p50_ms:latency p50 (ms)" \
		"lat_p99_ms:latency p99 (ms)" "lat_max_ms:latency max (ms)" \
		"rss_kib_per_stream:RSS per stream (KiB)" "cpu_us_per_delivery:server CPU per delivery (us)" \
		"cpu_us_per_open:server CPU per stream open (us)" "rate_achieved:publish rate achieved (/s)" \
		"pub_rtt_p50_ms:publish round trip p50 (ms)"
}

cluster_table() {	# fcgi_kv nchan_kv [name1 name2]
	table_head "${3:-}" "${4:-}"
	table_rows "$1" "$2" "streams_open:streams open" "port_streams_1:  of them on process 2" \
		"published:events published" "publish_errors:publishes answered with an error" \
		"deliveries:deliveries" "loss:loss" \
		"port_loss_1:  loss on process 2 (via Redis)" "duplicates:duplicates" \
		"out_of_order:out of order" "streams_incomplete:streams missing events" \
		"id_regressions:event id went backwards" "id_mismatches:event id differs between streams" \
		"lat_p50_ms:latency p50 (ms)" "lat_p99_ms:latency p99 (ms)" "lat_max_ms:latency max (ms)" \
		"cpu_us_per_delivery:server CPU per delivery (us)" \
		"cpu_us_per_open:server CPU per stream open (us)" \
		"rss_kib_per_stream:RSS per stream (KiB)" "rss_end_kib:RSS of all servers at end (KiB)" \
		"rate_achieved:publish rate achieved (/s)" "pub_rtt_p50_ms:publish round trip p50 (ms)"
}

storm_table() {	# fcgi_kv nchan_kv [name1 name2]
	table_head "${3:-}" "${4:-}"
	table_rows "$1" "$2" "storm_clients:streams dropped at once" "storm_at:  after events sent" \
		"storm_back:streams back" "storm_back_p50_ms:back p50 (ms after drop)" \
		"storm_back_max_ms:all back (ms after drop)" "storm_caught:streams caught up" \
		"storm_caught_p50_ms:caught up p50 (ms after drop)" \
		"storm_caught_p99_ms:caught up p99 (ms after drop)" \
		"storm_caught_max_ms:all caught up (ms after drop)" \
		"loss:loss (whole run)" "duplicates:duplicates (whole run)" \
		"out_of_order:out of order (whole run)" "streams_incomplete:streams missing events" \
		"id_regressions:event id went backwards" "id_mismatches:event id differs between streams" \
		"resets:event: reset received" "storm_failures:failed reconnects" "storm_503:  of them 503" \
		"storm_closed_by_server:streams ended by server after" \
		"published:events published" "publish_errors:publishes answered with an error" \
		"failed_publishes_delivered:  of them delivered all the same" \
		"lat_p99_ms:latency p99 (ms, incl. replay)" \
		"cpu_us_per_delivery:server CPU per delivery (us)" "rss_end_kib:RSS of all servers at end (KiB)"
}

echo "== $(date -u +%FT%TZ) $(uname -m), $(nproc) cores;" \
	"commit $(git rev-parse --short HEAD 2>/dev/null || echo '?')$(git diff --quiet HEAD -- '*.c' '*.h' Makefile ':!bench' 2>/dev/null || echo '+changes');" \
	"bench/sse.sh $mode STREAMS=$STREAMS EVENTS=$EVENTS RATE=$RATE PUBLISHERS=$PUBLISHERS" \
	"HISTORY=$HISTORY TENANTS=$TENANTS WARMUP=$WARMUP LIGHTTPD_WORKERS=${LIGHTTPD_WORKERS:-1} NCHAN_WORKERS=$NCHAN_WORKERS" \
	"$([ "$mode" = storm ] && echo "STORM_AT=$STORM_AT STORM_PAUSE_MS=$STORM_PAUSE_MS RESUME=$RESUME")" \
	"$(case "$mode" in cluster | storm) echo "NCHAN_BUFFER=$NCHAN_BUFFER" ;; esac)" \
	"$(env | grep '^FCGI_SSE_' | grep -v '^FCGI_SSE_CONFIG=' | tr '\n' ' ')"

if [ "$mode" = cluster ] || [ "$mode" = storm ]; then
	for s in $SERVERS; do
		echo "-- $s: 2 processes sharing one redis-server, $STREAMS streams split between them," \
			"publishes into the first"
		if start_server "$s"; then
			if [ "$mode" = storm ]; then
				[ "$s" = fcgi_sse ] && resume=(--resume "$RESUME") || resume=()
				run_load "$s" "$s" "$STREAMS" "$EVENTS" "$RATE" --storm-at "$STORM_AT" \
					--storm-pause-ms "$STORM_PAUSE_MS" "${resume[@]}" ||
					echo "sse.sh: $s run failed" >&2
			else
				run_load "$s" "$s" "$STREAMS" "$EVENTS" "$RATE" || echo "sse.sh: $s run failed" >&2
			fi
		else
			echo "  $s: not measured (see above)"
		fi
		stop_all
		log_digest "$s"
	done
	echo
	if [ "$mode" = storm ]; then
		storm_table "$dir/fcgi_sse.kv" "$dir/nchan.kv"
	else
		cluster_table "$dir/fcgi_sse.kv" "$dir/nchan.kv"
	fi
	exit 0
fi

if [ "$mode" = compare ]; then
	for s in $SERVERS; do
		echo "-- $s"
		if start_server "$s"; then
			warm_up "$s"
			run_load "$s" "$s" "$STREAMS" "$EVENTS" "$RATE" || echo "sse.sh: $s run failed" >&2
		else
			echo "  $s: not measured (see above)"
		fi
		stop_all
	done
	echo
	table "$dir/fcgi_sse.kv" "$dir/nchan.kv"
	for other in floor apache; do
		if [ -s "$dir/$other.kv" ]; then
			echo
			table "$dir/fcgi_sse.kv" "$dir/$other.kv" fcgi_sse "$other"
		fi
	done
	exit 0
fi

# sustained: the highest rate in RATES at which every stream got every event,
# p99 stayed at most P99_MAX_MS and the publisher kept 95 % of the rate. Each
# step gets freshly started servers: fcgi_sse holds a closed stream's slot
# until its next write (an event or the heartbeat), so streams of the previous
# step would still count against sse.max_streams.
declare -A sustained
for s in $SERVERS; do
	echo "-- $s"
	sustained[$s]=n/a
	best=0
	for rate in $RATES; do
		events=$((rate * STEP_SECONDS))
		[ "$events" -lt "$EVENTS" ] && events=$EVENTS
		[ "$events" -gt 50000 ] && events=50000
		echo "  rate $rate/s, $events events:"
		if ! start_server "$s"; then
			echo "  $s: not measured (see above)"
			best=n/a
			break
		fi
		warm_up "$s"
		run_load "$s" "$s-$rate" "$STREAMS" "$events" "$rate" || { stop_all; break; }
		stop_all
		f="$dir/$s-$rate.kv"
		ok=$(awk -v so="$(kv "$f" streams_open)" -v n="$STREAMS" -v loss="$(kv "$f" loss)" \
			-v p99="$(kv "$f" lat_p99_ms)" -v ach="$(kv "$f" rate_achieved)" -v r="$rate" \
			-v max="$P99_MAX_MS" \
			'BEGIN { print (so == n && loss == 0 && p99 <= max && ach >= 0.95 * r) ? 1 : 0 }')
		if [ "$ok" = 1 ]; then best=$rate; else echo "  -> $rate/s does not hold"; break; fi
	done
	sustained[$s]=$best
done
echo
printf '| %-36s | %12s | %12s | %14s |\n' metric fcgi_sse nchan 'fcgi_sse/nchan'
printf '|%s|%s|%s|%s|\n' "$(printf -- '-%.0s' $(seq 38))" "$(printf -- '-%.0s' $(seq 14))" \
	"$(printf -- '-%.0s' $(seq 14))" "$(printf -- '-%.0s' $(seq 16))"
row "sustained rate, $STREAMS streams (/s)" "${sustained[fcgi_sse]:-n/a}" "${sustained[nchan]:-n/a}"
