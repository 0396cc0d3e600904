#!/usr/bin/env bash
# Installs the Debian packages fcgi_sse needs, only those missing.
# usage: deploy/deps.sh [build] [test] [run]   (default: build run)
# Runs apt-get as root, or through sudo when available. Package installs
# here never start system services (policy-rc.d), so nothing grabs port 80.
set -euo pipefail

groups=("$@")
[ ${#groups[@]} -eq 0 ] && groups=(build run)

pkgs=()
for g in "${groups[@]}"; do
	case "$g" in
	build) pkgs+=(gcc make pkg-config libc6-dev libfcgi-dev libjson-c-dev libssl-dev libhiredis-dev libsqlite3-dev git) ;;
	test)  pkgs+=(libcunit1-dev redis-server lighttpd spawn-fcgi apache2 libapache2-mod-fcgid python3 procps) ;;
	run)   pkgs+=(lighttpd redis-server curl) ;;
	*) echo "deps.sh: unknown group '$g' (build, test, run)" >&2; exit 2 ;;
	esac
done

missing=()
for p in "${pkgs[@]}"; do
	status=$(dpkg-query -W -f='${db:Status-Abbrev}' "$p" 2>/dev/null || true)
	case "$status" in
	ii*) ;;
	*) missing+=("$p") ;;
	esac
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -eq 0 ]; then
	as_root=()
elif command -v sudo >/dev/null 2>&1; then
	as_root=(sudo)
else
	echo "deps.sh: missing packages: ${missing[*]}; run as root or install sudo" >&2
	exit 1
fi

echo "deps.sh: installing ${missing[*]}" >&2
policy=/usr/sbin/policy-rc.d
placed_policy=0
if [ ! -e "$policy" ]; then
	printf '#!/bin/sh\nexit 101\n' | "${as_root[@]}" tee "$policy" >/dev/null
	"${as_root[@]}" chmod 755 "$policy"
	placed_policy=1
fi
cleanup() { [ "$placed_policy" -eq 1 ] && "${as_root[@]}" rm -f "$policy"; return 0; }
trap cleanup EXIT

export DEBIAN_FRONTEND=noninteractive
"${as_root[@]}" apt-get update -qq
"${as_root[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
