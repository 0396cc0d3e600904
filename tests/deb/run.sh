#!/usr/bin/env bash
# make test-deb: the Debian package, built, linted and used where nothing
# is installed.
#
# 1. make deb, then lintian on the .deb: any error or warning fails.
# 2. A minimal Debian 12 root (mmdebstrap --variant=minbase) from the
#    host's mirror.
# 3. Inside it (tests/deb/inside.sh): apt-get install of the .deb alone
#    (its Depends come from the mirror; no Recommends), then of apache2,
#    redis-server and curl; the install's effects (user, state dir,
#    secrets), a2enmod/a2enconf, redis-server, fcgi_sse started as the
#    installed unit's ExecStartPre/ExecStart say (no systemd in a chroot:
#    the unit's directives are applied by the script, and a directive it
#    does not know fails the test), Apache on port 80, then over HTTP:
#    health, ready, the admin command's tenant and user, a login, /me with
#    the Bearer token and the fingerprint cookie; then a graceful stop,
#    remove and purge.
#
# The root runs in PID and mount namespaces of its own (unshare), the
# service part also in a network namespace of its own (only loopback), so
# Apache on port 80 and Redis on 6379, as the packages configure them,
# touch nothing of the host's. When a namespace's first process ends, every
# process started inside is killed and every mount is gone; the root is
# deleted on exit (DEB_KEEP=1 keeps it). Needs root.
set -euo pipefail

top=$(cd "$(dirname "$0")/../.." && pwd)
suite=${DEB_SUITE:-bookworm}
keep=${DEB_KEEP:-}
work=
t_start=$(date +%s)

say() { echo "test-deb: $*"; }
pass() { echo "test-deb: PASS: $*"; }
fail() { echo "test-deb: FAIL: $*" >&2; exit 1; }
cleanup() {
	rc=$?
	if [ -n "$work" ]; then
		if [ -n "$keep" ]; then
			say "root kept in $work/root"
		else
			rm -rf --one-file-system "$work"
		fi
	fi
	if [ "$rc" -eq 0 ]; then
		echo "test-deb: PASS (all) in $(( $(date +%s) - t_start )) s"
	else
		echo "test-deb: FAIL (exit $rc) after $(( $(date +%s) - t_start )) s" >&2
	fi
}
trap cleanup EXIT

[ "$(id -u)" -eq 0 ] || fail "needs root (mmdebstrap, chroot, namespaces)"

# 1. the package
t0=$(date +%s)
deb=$(make -s -C "$top" deb | tail -n 1)
deb=$top/${deb#"$top"/}
[ -f "$deb" ] || fail "make deb did not name a .deb (got '$deb')"
want="$top/build/fcgi-sse_$(dpkg-parsechangelog -l "$top/deploy/debian/changelog" -S Version)_$(dpkg --print-architecture).deb"
[ "$deb" = "$want" ] || fail "make deb built $deb, expected $want"
pass "make deb built ${deb#"$top"/} in $(( $(date +%s) - t0 )) s"
dpkg-deb -c "$deb" | awk '{ print "test-deb:   " $1, $2, $NF }'
dpkg-deb -f "$deb" Version Depends Recommends Suggests | sed 's/^/test-deb:   /'

t0=$(date +%s)
# as nobody (lintian warns about root); every tag shown, info and overrides
# included, then judged by a run that shows errors and warnings only
work=$(mktemp -d /tmp/fcgi_sse_deb.XXXXXX)
chmod 0755 "$work"
cp "$deb" "$work/" && chmod 0644 "$work/${deb##*/}"
lintian=(setpriv --reuid=nobody --regid=nogroup --clear-groups env HOME=/tmp TMPDIR=/tmp lintian)
"${lintian[@]}" --display-info --show-overrides "$work/${deb##*/}" 2>&1 | sed 's/^/test-deb:   lintian: /' || true
set +e
lint=$("${lintian[@]}" --fail-on error,warning "$work/${deb##*/}" 2>&1)
lint_rc=$?
set -e
[ "$lint_rc" -eq 0 ] && [ -z "$lint" ] || fail "lintian reports errors or warnings (exit $lint_rc): $lint"
pass "lintian $("${lintian[@]}" --version | awk '{ print $2 }'): no error, no warning (in $(( $(date +%s) - t0 )) s)"

# the unit as systemd reads it (no systemd runs here, nor in the root):
# the staged binary in place of /usr/sbin/fcgi_sse; any complaint fails
if command -v systemd-analyze >/dev/null; then
	mkdir "$work/unit"
	sed "s|/usr/sbin/fcgi_sse|$top/build/deb/debian/fcgi-sse/usr/sbin/fcgi_sse|g" \
		"$top/build/deb/debian/fcgi-sse/lib/systemd/system/fcgi_sse.service" > "$work/unit/fcgi_sse.service"
	verify=$(systemd-analyze verify --man=no "$work/unit/fcgi_sse.service" 2>&1) && [ -z "$verify" ] ||
		fail "systemd-analyze verify fcgi_sse.service: $verify"
	pass "systemd-analyze verify fcgi_sse.service: no complaint"
else
	say "note: no systemd-analyze here: the unit's syntax is not verified"
fi

# 2. the root
sources=/etc/apt/sources.list.d/debian.sources
[ -f "$sources" ] || sources=/etc/apt/sources.list
t0=$(date +%s)
say "building a minimal $suite root (minbase) in $work/root"
# apt lists kept: the .deb's Depends are resolved against them inside
mmdebstrap --quiet --variant=minbase --skip=cleanup/apt/lists "$suite" "$work/root" "$sources"
pass "root built in $(( $(date +%s) - t0 )) s"
cp /etc/resolv.conf "$work/root/etc/resolv.conf" 2>/dev/null || true
cp "$deb" "$work/root/tmp/"
chmod 0644 "$work/root/tmp/${deb##*/}"
cp "$top/tests/deb/inside.sh" "$work/root/inside.sh"

# Runs inside.sh PHASE in the root: new PID and mount namespaces; with
# "net", a network namespace too, with only loopback (up).
in_root() {
	local phase=$1 net=()
	[ "$phase" = serve ] && net=(--net)
	unshare --pid --fork --kill-child --mount --propagation private "${net[@]}" bash -euc '
		r=$1
		[ "$3" = serve ] && ip link set lo up
		mount -t proc proc "$r/proc"
		mount --rbind /dev "$r/dev"
		mount -t sysfs sysfs "$r/sys"
		mount -t tmpfs -o mode=1777 tmpfs "$r/dev/shm"
		mount -t tmpfs -o mode=0755 tmpfs "$r/run"
		mkdir -p "$r/run/lock" && chmod 1777 "$r/run/lock"
		exec chroot "$r" /usr/bin/env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
			HOME=/root LANG=C.UTF-8 TERM=dumb DEB="$2" /bin/bash /inside.sh "$3"
	' in_root "$work/root" "/tmp/${deb##*/}" "$phase"
}

# 3. install (host network: apt may fetch), then serve and purge (own network)
t0=$(date +%s)
in_root install
say "install phase: $(( $(date +%s) - t0 )) s"
t0=$(date +%s)
in_root serve
say "serve and purge phase: $(( $(date +%s) - t0 )) s"
