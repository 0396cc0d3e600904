# Sourced by the bench scripts: the store fcgi_sse keeps its data in.
# STORE=sqlite (default): a SQLite file in the bench's directory, as
# `make run` has it. STORE=postgres: a private PostgreSQL 15 cluster
# (tests/pgcluster.py) on a free loopback port, with PostgreSQL's own
# durability settings (fsync, synchronous commits: PGCLUSTER_DURABLE=1),
# one database for the run, reached over loopback TCP.
#   bench_store_start DIR   for postgres, starts the cluster (sets pg_dir)
#   bench_store_json DIR    the config's "store" object
#   bench_store_pid         the PostgreSQL server's pid (for its CPU), or ""
#   bench_store_stop        stops the cluster
STORE=${STORE:-sqlite}
pg_dir=
bench_store_start() {
	case "$STORE" in
	sqlite) ;;
	postgres)
		# right under /tmp: the cluster's user (not root) must reach it
		pg_dir=$(mktemp -d /tmp/fcgi_sse_benchpg.XXXXXX)
		pg_conninfo=$(PGCLUSTER_DURABLE=1 python3 tests/pgcluster.py start "$pg_dir") || return 1
		;;
	*) echo "bench: STORE must be sqlite or postgres" >&2; return 1 ;;
	esac
}

bench_store_json() {
	if [ "$STORE" = postgres ]; then
		printf '{ "backend": "postgres", "postgres": "%s" }' "$pg_conninfo"
	else
		printf '{ "path": "%s/fcgi_sse.db" }' "$1"
	fi
}

bench_store_pid() {
	[ -n "$pg_dir" ] && head -1 "$pg_dir/data/postmaster.pid" 2>/dev/null || true
}

bench_store_stop() {
	[ -n "$pg_dir" ] || return 0
	python3 tests/pgcluster.py stop "$pg_dir" || true
	rm -rf "$pg_dir"
	pg_dir=
}
