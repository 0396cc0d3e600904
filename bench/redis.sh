# Sourced by the bench scripts: a throwaway redis-server on a free loopback
# port and on the Unix socket DIR/redis.sock (as `make run` connects to
# it), empty, without persistence.
#   bench_redis_start DIR   sets redis_port, redis_sock and redis_pid
#   bench_redis_stop        stops it
bench_redis_start() {
	redis_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
	redis_sock=$1/redis.sock
	redis-server --port "$redis_port" --bind 127.0.0.1 --unixsocket "$redis_sock" --unixsocketperm 700 \
		--save "" --appendonly no --dir "$1" >"$1/redis.log" 2>&1 &
	redis_pid=$!
	for _ in $(seq 50); do redis-cli -p "$redis_port" ping >/dev/null 2>&1 && return 0; sleep 0.1; done
	echo "bench: redis-server did not start" >&2
	return 1
}

bench_redis_stop() {
	kill "$redis_pid" 2>/dev/null || true
	wait "$redis_pid" 2>/dev/null || true
}
