#!/usr/bin/env bash
# `make run`: lighttpd in front of fcgi_sse, with Redis and a SQLite store,
# all from ./run/, on http://127.0.0.1:${PORT:-8080}/. Creates (for
# development only) tenant "demo" with users admin, operator and viewer,
# password "demo-password". Ctrl-C or SIGTERM stops everything cleanly.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
port=${PORT:-8080}
run_dir="$root/run"
bin="$root/build/fcgi_sse"

"$root/deploy/deps.sh" build run
make -s -C "$root" all >/dev/null

if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
	echo "run.sh: port $port is in use; choose another with PORT=..." >&2
	exit 1
fi

# the dashboard and the client it imports, served by lighttpd (dashboard.conf)
"$root/deploy/www.sh" "$run_dir/www"
rm -f "$run_dir/fcgi_sse.sock" "$run_dir/redis.sock"
config="$run_dir/config.json"
if [ ! -f "$config" ]; then
	# a signing key of this checkout's own, never committed
	key=$(head -c 32 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n')
	secret=$(head -c 24 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n')
	sed -e "s|@RUN_DIR@|$run_dir|g" -e "s|@JWT_KEY@|$key|" -e "s|@INTERNAL_SECRET@|$secret|" \
		"$root/deploy/dev-config.json" > "$config"
	chmod 600 "$config"
fi

backend_pid=""
lighttpd_pid=""
redis_pid=""
stop() {
	trap - INT TERM EXIT
	[ -n "$lighttpd_pid" ] && kill -TERM "$lighttpd_pid" 2>/dev/null || true
	[ -n "$backend_pid" ] && kill -TERM "$backend_pid" 2>/dev/null || true
	[ -n "$redis_pid" ] && kill -TERM "$redis_pid" 2>/dev/null || true
	wait 2>/dev/null || true
	echo "run.sh: stopped" >&2
}
trap 'stop; exit 0' INT TERM
trap stop EXIT

# Redis on a unix socket of its own: no port to collide with. The event
# history lives in it: append-only, as docs/DEPLOY.md asks of production
redis-server --port 0 --unixsocket "$run_dir/redis.sock" --unixsocketperm 700 \
	--save "" --appendonly yes --appendfsync everysec --dir "$run_dir" >"$run_dir/redis.log" 2>&1 &
redis_pid=$!
for _ in $(seq 50); do [ -S "$run_dir/redis.sock" ] && break; sleep 0.1; done

# development users (API.md §8); "already exists" (73) is fine on later runs
admin() { env -u FCGI_SSE_CONFIG "$bin" admin --config "$config" "$@"; }
admin create-tenant demo >/dev/null 2>&1 || [ $? -eq 73 ] || { admin create-tenant demo; exit 1; }
for role in admin operator viewer; do
	echo demo-password | admin create-user --tenant demo --username "$role" --role "$role" \
		>/dev/null 2>"$run_dir/admin.err" || [ $? -eq 73 ] || { cat "$run_dir/admin.err" >&2; exit 1; }
done

# fcgi_sse logs JSON lines to this terminal and to run/fcgi_sse.log
env -u FCGI_SSE_CONFIG "$bin" --config "$config" --listen "unix:$run_dir/fcgi_sse.sock" \
	2> >(tee -a "$run_dir/fcgi_sse.log" >&2) &
backend_pid=$!
for _ in $(seq 50); do [ -S "$run_dir/fcgi_sse.sock" ] && break; sleep 0.1; done
[ -S "$run_dir/fcgi_sse.sock" ] || { echo "run.sh: fcgi_sse did not start" >&2; exit 1; }

# a session of its own: with server.max-worker (LIGHTTPD_WORKERS) its master
# stops by signalling its whole process group, which would be this script's.
# lighttpd.conf plus the dashboard: /api and /metrics go to fcgi_sse, the
# rest are the files of run/www.
PORT=$port RUN_DIR=$run_dir setsid lighttpd -D -f "$root/deploy/lighttpd/lighttpd-dashboard.conf" &
lighttpd_pid=$!
for _ in $(seq 50); do
	curl -fsS "http://127.0.0.1:$port/api/v2/health" >/dev/null 2>&1 && break
	sleep 0.1
done

url="http://127.0.0.1:$port/"

# A few demo devices (once: kept in the store across runs), created through
# the API as the operator would; $demo_device names one for the curl lines.
seed_devices() {
	local jar="$run_dir/seed.cookies" token count auth
	token=$(curl -fsS -c "$jar" -H 'Content-Type: application/json' \
		-d '{"tenant":"demo","username":"operator","password":"demo-password"}' \
		"${url}api/v2/auth/login" | sed -n 's/.*"access_token":"\([^"]*\)".*/\1/p')
	[ -n "$token" ] || return 1
	auth="Authorization: Bearer $token"
	count=$(curl -fsS -b "$jar" -H "$auth" "${url}api/v2/devices/count" |
		sed -n 's/.*"count":\([0-9]*\).*/\1/p')
	if [ "$count" = 0 ]; then
		for body in '{"name":"Boiler 1","status":"online","metadata":{"room":"B2"}}' \
			'{"name":"Pump north","status":"online","metadata":{"room":"P1"}}' \
			'{"name":"Chiller 3","status":"maintenance","metadata":{"room":"roof"}}'; do
			curl -fsS -b "$jar" -H "$auth" -H 'Content-Type: application/json' -d "$body" \
				"${url}api/v2/devices" >/dev/null || return 1
		done
	fi
	demo_device=$(curl -fsS -b "$jar" -H "$auth" "${url}api/v2/devices?limit=1" |
		sed -n 's/.*"items":\[{"id":"\([^"]*\)".*/\1/p')
	curl -fsS -b "$jar" -H "$auth" -d '' "${url}api/v2/auth/logout" >/dev/null || true
	rm -f "$jar"
	[ -n "$demo_device" ]
}
seed_devices || {
	demo_device="<device id>"
	echo "run.sh: could not seed the demo devices (see the log)" >&2
}

cat <<MSG

  fcgi_sse is running behind lighttpd at $url

  Dashboard: ${url}dashboard/ (log in as viewer, operator or admin; post
  telemetry with the curl line below and watch it arrive)

    curl -i ${url}api/v2/health
    curl -i ${url}api/v1/version          # deprecated v1, see its headers
    curl -N ${url}api/v2/version/stream   # Server-Sent Events

  Development users (this machine only): tenant "demo", users admin,
  operator and viewer, password "demo-password". Log in and call /me:

    curl -s -c $run_dir/cookies -H 'Content-Type: application/json' \\
      -d '{"tenant":"demo","username":"admin","password":"demo-password"}' \\
      ${url}api/v2/auth/login
    curl -s -b $run_dir/cookies -H "Authorization: Bearer <access_token>" ${url}api/v2/me
    # a POST with no body still needs Content-Length: 0 behind lighttpd (-d '')
    curl -s -b $run_dir/cookies -H "Authorization: Bearer <access_token>" -d '' ${url}api/v2/auth/logout

  Events: open a stream with the token, publish with the internal secret
  (security.internal_secret in the config):

    curl -N -b $run_dir/cookies -H "Authorization: Bearer <access_token>" ${url}api/v2/events/stream
    # resume: every event after that id, then live (docs/API.md §6)
    curl -N -b $run_dir/cookies -H "Authorization: Bearer <access_token>" \\
      -H "Last-Event-ID: <id>" ${url}api/v2/events/stream
    curl -s -H "X-Internal-Secret: <secret>" -H 'Content-Type: application/json' \\
      -d '{"tenant":"demo","type":"hello","data":{"n":1}}' ${url}api/v2/events

  Devices (tenant "demo" has a few; log in as operator to change them):

    curl -s -b $run_dir/cookies -H "Authorization: Bearer <access_token>" ${url}api/v2/devices
    curl -s -b $run_dir/cookies -H "Authorization: Bearer <access_token>" ${url}api/v2/devices/$demo_device
    curl -s -b $run_dir/cookies -H "Authorization: Bearer <access_token>" ${url}api/v1/devices   # v1 shape
    curl -s -b $run_dir/cookies -H "Authorization: Bearer <access_token>" -H 'Content-Type: application/json' \\
      -d '{"metrics":{"temp":21.5}}' ${url}api/v2/devices/$demo_device/telemetry
    curl -s -b $run_dir/cookies -H "Authorization: Bearer <access_token>" \\
      "${url}api/v2/telemetry/recent?device_id=$demo_device"

  config: $config   logs: $run_dir/   Ctrl-C stops everything.

MSG

# Stop everything when either process ends by itself.
wait -n "$backend_pid" "$lighttpd_pid" "$redis_pid" || true
echo "run.sh: a server exited; stopping" >&2
exit 1
