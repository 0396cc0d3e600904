#!/usr/bin/env bash
# bench/store_backends.sh (issue #16): the devices benchmark and the SSE
# benchmark with fcgi_sse's store in SQLite and in PostgreSQL, in one
# session, interleaved: ROUNDS (3) times each of
#   STORE=sqlite   bench/devices.sh, then STORE=postgres bench/devices.sh
#   STORE=sqlite   bench/sse.sh,     then STORE=postgres bench/sse.sh
# The devices runs read with the caches off (CACHE=off: every GET (and
# the floor beside it), list
# and count is a store read) and write (PARTS writes: PATCH, one store
# transaction with its audit row and outbox event each), 64 connections;
# the SSE runs are bench/sse.sh's default (1,000 streams, 1,000 events at
# 100/s, fcgi_sse only). PostgreSQL runs with its default durability
# (fsync, synchronous commit) on this machine's disk, over loopback TCP;
# SQLite as make run has it. Nothing else may run meanwhile.
# Environment: ROUNDS (3), DURATION (10), DEVICES (1000), STREAMS (1000).
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-3}
export DURATION=${DURATION:-10} DEVICES=${DEVICES:-1000} STREAMS=${STREAMS:-1000}
echo "== $(date -u +%FT%TZ); commit $(git rev-parse --short HEAD); bench/store_backends.sh ROUNDS=$ROUNDS DURATION=$DURATION DEVICES=$DEVICES STREAMS=$STREAMS"
for r in $(seq "$ROUNDS"); do
	for store in sqlite postgres; do
		echo "### round $r, devices, STORE=$store"
		STORE=$store CACHE=off ROUNDS=1 PARTS="get lists writes" bench/devices.sh
	done
done
for r in $(seq "$ROUNDS"); do
	for store in sqlite postgres; do
		echo "### round $r, sse, STORE=$store"
		STORE=$store SERVERS=fcgi_sse bench/sse.sh
	done
done
