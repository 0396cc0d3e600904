#!/usr/bin/env bash
# `make run`: lighttpd in front of fcgi_sse, from ./run/, on
# http://127.0.0.1:${PORT:-8080}/. Ctrl-C or SIGTERM stops both cleanly.
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

mkdir -p "$run_dir/www"
rm -f "$run_dir/fcgi_sse.sock"
config="$run_dir/config.json"
[ -f "$config" ] || cp "$root/deploy/dev-config.json" "$config"

backend_pid=""
lighttpd_pid=""
stop() {
	trap - INT TERM EXIT
	[ -n "$lighttpd_pid" ] && kill -TERM "$lighttpd_pid" 2>/dev/null || true
	[ -n "$backend_pid" ] && kill -TERM "$backend_pid" 2>/dev/null || true
	wait 2>/dev/null || true
	echo "run.sh: stopped" >&2
}
trap 'stop; exit 0' INT TERM
trap stop EXIT

# fcgi_sse logs JSON lines to this terminal and to run/fcgi_sse.log
env -u FCGI_SSE_CONFIG "$bin" --config "$config" --listen "unix:$run_dir/fcgi_sse.sock" \
	2> >(tee -a "$run_dir/fcgi_sse.log" >&2) &
backend_pid=$!
for _ in $(seq 50); do [ -S "$run_dir/fcgi_sse.sock" ] && break; sleep 0.1; done
[ -S "$run_dir/fcgi_sse.sock" ] || { echo "run.sh: fcgi_sse did not start" >&2; exit 1; }

PORT=$port RUN_DIR=$run_dir lighttpd -D -f "$root/deploy/lighttpd/lighttpd.conf" &
lighttpd_pid=$!
for _ in $(seq 50); do
	curl -fsS "http://127.0.0.1:$port/api/v2/health" >/dev/null 2>&1 && break
	sleep 0.1
done

url="http://127.0.0.1:$port/"
cat <<MSG

  fcgi_sse is running behind lighttpd at $url

    curl -i ${url}api/v2/health
    curl -i ${url}api/v1/version          # deprecated v1, see its headers
    curl -N ${url}api/v2/version/stream   # Server-Sent Events

  config: $config   logs: $run_dir/   Ctrl-C stops everything.

MSG

# Stop everything when either process ends by itself.
wait -n "$backend_pid" "$lighttpd_pid" || true
echo "run.sh: a server exited; stopping" >&2
exit 1
