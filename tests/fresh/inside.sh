#!/bin/bash
# Runs inside the fresh root of tests/fresh/run.sh, as a new user would:
# the README's `make run`, checked through lighttpd, then `make test`.
set -euo pipefail
cd /src
fail() { echo "test-fresh: FAIL: $*" >&2; [ -f /tmp/run.out ] && tail -n 40 /tmp/run.out >&2; exit 1; }

command -v cc >/dev/null && fail "the fresh root already has a compiler"
dpkg-query -W -f='${db:Status-Abbrev}' libjson-c-dev 2>/dev/null | grep -q '^ii' && fail "the fresh root already has libjson-c-dev"

t0=$(date +%s)
# make run in a process group of its own, so that it can get Ctrl-C's signal
setsid make run > /tmp/run.out 2>&1 < /dev/null &
run_pid=$!
url="http://127.0.0.1:$PORT"
for _ in $(seq 1200); do
	grep -q "fcgi_sse is running behind lighttpd at $url/" /tmp/run.out && break
	kill -0 "$run_pid" 2>/dev/null || fail "make run exited before serving"
	sleep 0.5
done
grep -q "is running behind lighttpd" /tmp/run.out || fail "make run did not print its URL in 10 minutes"
echo "test-fresh: make run serves $url after $(( $(date +%s) - t0 )) s" >&2

health=$(curl -fsS "$url/api/v2/health") || fail "health"
grep -q '"status":"ok"' <<<"$health" || fail "health said $health"

# the login make run prints, as a user would paste it
login=$(curl -fsS -c /tmp/cookies -H 'Content-Type: application/json' \
	-d '{"tenant":"demo","username":"admin","password":"demo-password"}' "$url/api/v2/auth/login") ||
	fail "login"
token=$(sed -n 's/.*"access_token":"\([^"]*\)".*/\1/p' <<<"$login")
[ -n "$token" ] || fail "no access_token in the login answer"
me=$(curl -fsS -b /tmp/cookies -H "Authorization: Bearer $token" "$url/api/v2/me") || fail "/me"
grep -q '"username":"admin"' <<<"$me" || fail "/me said $me"

# one event on a stream through lighttpd
curl -sN -b /tmp/cookies -H "Authorization: Bearer $token" --max-time 20 \
	"$url/api/v2/events/stream" > /tmp/stream.out 2>/dev/null &
stream_pid=$!
for _ in $(seq 100); do grep -q '^retry:' /tmp/stream.out 2>/dev/null && break; sleep 0.1; done
grep -q '^retry:' /tmp/stream.out || fail "the stream did not open"
pub=$(curl -fsS -b /tmp/cookies -H "Authorization: Bearer $token" -H 'Content-Type: application/json' \
	-d '{"tenant":"demo","type":"fresh.check","data":{"n":42}}' "$url/api/v2/events") || fail "publish"
id=$(sed -n 's/.*"id":"\([^"]*\)".*/\1/p' <<<"$pub")
[ -n "$id" ] || fail "publish answered $pub"
for _ in $(seq 100); do grep -q "^id: $id" /tmp/stream.out && break; sleep 0.1; done
grep -q "^id: $id" /tmp/stream.out || fail "event $id did not reach the stream: $(cat /tmp/stream.out)"
grep -q '^event: fresh.check' /tmp/stream.out || fail "event type missing on the stream"
grep -q '^data: {"n":42}' /tmp/stream.out || fail "event data missing on the stream"
kill "$stream_pid" 2>/dev/null || true
wait "$stream_pid" 2>/dev/null || true
echo "test-fresh: health, login, /me and event $id through lighttpd" >&2

# Ctrl-C: everything make run started stops
kill -INT -- "-$run_pid"
for _ in $(seq 100); do kill -0 "$run_pid" 2>/dev/null || break; sleep 0.1; done
kill -0 "$run_pid" 2>/dev/null && fail "make run still running 10 s after SIGINT"
grep -q "run.sh: stopped" /tmp/run.out || fail "run.sh did not report a clean stop"
# (no pgrep: procps comes with make test's packages, not make run's; and
# only this root's processes count, not the host's, which share /proc)
myroot=$(stat -L -c %d:%i /proc/self/root)
left=""
for d in /proc/[0-9]*; do
	c=$(cat "$d/comm" 2>/dev/null) || continue
	case "$c" in lighttpd | redis-server | fcgi_sse) ;; *) continue ;; esac
	[ "$(stat -L -c %d:%i "$d/root" 2>/dev/null)" = "$myroot" ] && left="$left $c (${d#/proc/})"
done
[ -z "$left" ] || fail "still running after make run stopped:$left"
echo "test-fresh: make run stopped cleanly" >&2

# make test, every step of it, with knobs down where the host's make test
# has just run the same code in full: the fuzzing past the seeds tries a
# fixed list of inputs (fuzz/run.sh), the very list the host tried, so
# here the seeds suffice; the integration suite runs once, on the plain
# build (the sanitizer pass ran on the host), without the fault tests and
# the Sentinel failovers (two minutes in all of timed outages); no soak
# (ASan runs here in the unit tests, valgrind is installed all the same);
# and no multi-host test (its packages are installed here all the same; in
# this chroot it needed / made a mount point first, tests/fresh/run.sh).
# What this root proves is that the packages and every step install and
# run from nothing; `FRESH_FULL=1` runs it as is.
t1=$(date +%s)
if [ -n "${FRESH_FULL:-}" ]; then
	make test
else
	make test FUZZ_CI_PERCENT=0 SOAK_MODES=none INTEGRATION_SAN=0 \
		INTEGRATION_SKIP="sentinel_ fault_" MULTIHOST=0
fi
echo "test-fresh: make test passed in $(( $(date +%s) - t1 )) s" >&2
