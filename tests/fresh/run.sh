#!/usr/bin/env bash
# make test-fresh: the README's two commands on a brand-new Debian 12 root.
#
# Builds a minimal root with mmdebstrap (--variant=minbase, plus git and
# make, nothing else), copies a clean `git archive` of HEAD into it, and
# inside it, as a new user would, runs `make run` (then checks health, a
# login and one event on a stream through lighttpd, and stops it with
# Ctrl-C's signal) and `make test`. Nothing is cached between runs: every
# package the project needs must be installed by its own files.
#
# The root runs in a PID and mount namespace of its own (unshare): when the
# run ends, by success, failure or a signal, every process started inside
# is killed and every mount is gone. It shares the host's network, so the
# servers inside listen on loopback ports picked here.
# Needs root, mmdebstrap and unshare (make test-fresh installs them).
set -euo pipefail

root_dir=$(cd "$(dirname "$0")/../.." && pwd)
suite=${FRESH_SUITE:-bookworm}
work=$(mktemp -d /tmp/fcgi_sse_fresh.XXXXXX)
keep=${FRESH_KEEP:-}
cleanup() {
	[ -n "$keep" ] && { echo "test-fresh: root kept in $work" >&2; return; }
	rm -rf --one-file-system "$work"
}
trap cleanup EXIT

[ "$(id -u)" -eq 0 ] || { echo "test-fresh: needs root (mmdebstrap, chroot)" >&2; exit 1; }

# the host's own Debian sources (the mirror this machine reaches)
sources=/etc/apt/sources.list.d/debian.sources
[ -f "$sources" ] || sources=/etc/apt/sources.list
t0=$(date +%s)
echo "test-fresh: building a minimal $suite root in $work/root" >&2
mmdebstrap --quiet --variant=minbase --include=git,make "$suite" "$work/root" "$sources"
echo "test-fresh: root built in $(( $(date +%s) - t0 )) s" >&2

# exactly what HEAD holds: nothing from the work tree, no build output
mkdir "$work/root/src"
git -C "$root_dir" archive --format=tar HEAD | tar -x -C "$work/root/src"
# the contract beside the project, as in a checkout (read only)
if [ -d "$root_dir/../shared" ]; then
	mkdir "$work/root/shared"
	cp -r "$root_dir/../shared/." "$work/root/shared/"
fi
cp "$root_dir/tests/fresh/inside.sh" "$work/root/inside.sh"
cp /etc/resolv.conf "$work/root/etc/resolv.conf" 2>/dev/null || true
# the host's own trust anchors beside Debian's (a network whose HTTPS goes
# through a proxy of its own, as npm's does for the browser tests): taken up
# when the root's ca-certificates package is installed, as the mirror is
# the host's too
mkdir -p "$work/root/usr/local/share/ca-certificates"
cp /usr/local/share/ca-certificates/*.crt "$work/root/usr/local/share/ca-certificates/" 2>/dev/null || true

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])' 2>/dev/null ||
	echo $(( 20000 + RANDOM % 20000 )))

# A new PID namespace (its init is the shell below: when it exits, every
# process left inside is killed) and a private mount namespace.
unshare --pid --fork --mount --propagation private bash -euc '
	r=$1
	# the root a mount point of its own, as on a machine: `ip netns exec`
	# (make test-multihost) remounts / and fails on a plain directory
	mount --bind "$r" "$r"
	mount -t proc proc "$r/proc"
	mount --rbind /dev "$r/dev"
	mount -t sysfs sysfs "$r/sys"
	mount -t tmpfs -o mode=1777 tmpfs "$r/dev/shm"
	exec chroot "$r" /usr/bin/env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
		HOME=/root LANG=C.UTF-8 TERM=dumb CI="${CI:-}" FRESH_FULL="${FRESH_FULL:-}" PORT="$2" \
		/bin/bash /inside.sh
' fresh "$work/root" "$port"
echo "test-fresh: passed in $(( $(date +%s) - t0 )) s" >&2
