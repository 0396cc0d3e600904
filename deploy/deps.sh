#!/usr/bin/env bash
# Installs the Debian packages fcgi_sse needs, only those missing.
# usage: deploy/deps.sh [build] [test] [run] [fresh] [deb] [fuzz]   (default: build run)
# Runs apt-get as root, or through sudo when available; otherwise says
# which command installs what is missing and fails. Package installs here
# never start system services (policy-rc.d), so nothing grabs port 80.
# Every target that compiles calls this first (Makefile), so that a fresh
# machine needs no step before `make run` or `make test`.
set -euo pipefail

groups=("$@")
[ ${#groups[@]} -eq 0 ] && groups=(build run)

pkgs=()
for g in "${groups[@]}"; do
	case "$g" in
	build) pkgs+=(gcc make pkg-config libc6-dev libfcgi-dev libjson-c-dev libssl-dev libhiredis-dev libsqlite3-dev libpq-dev git) ;;
	test)  pkgs+=(libcunit1-dev redis-server lighttpd lighttpd-mod-deflate spawn-fcgi apache2 libapache2-mod-fcgid python3 procps curl prometheus supervisor runit systemd nodejs npm chromium lighttpd-mod-openssl openssl ca-certificates clang-14 libclang-rt-14-dev valgrind postgresql iproute2) ;;
	run)   pkgs+=(lighttpd redis-server curl) ;;
	fresh) pkgs+=(mmdebstrap util-linux) ;;
	deb)   pkgs+=(dpkg-dev binutils lintian mmdebstrap util-linux iproute2) ;;
	# libFuzzer, ASan and UBSan runtimes are in libclang-rt-14-dev, which
	# clang-14 only recommends (make fuzz-ci is part of make test)
	fuzz)  pkgs+=(clang-14 libclang-rt-14-dev binutils) ;;
	*) echo "deps.sh: unknown group '$g' (build, test, run, fresh, deb, fuzz)" >&2; exit 2 ;;
	esac
done

# one dpkg-query for all: this runs before every build
installed=$(dpkg-query -W -f='${db:Status-Abbrev} ${Package}\n' "${pkgs[@]}" 2>/dev/null |
	awk '$1 == "ii" { print $2 }' || true)
missing=()
for p in "${pkgs[@]}"; do
	grep -qxF "$p" <<<"$installed" && continue
	# a nodejs that brings its own npm (nodesource's) conflicts with
	# Debian's npm package: the command is what is needed
	[ "$p" = npm ] && command -v npm >/dev/null 2>&1 && continue
	missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
# a package named twice (groups overlap) is installed once
mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)

if [ "$(id -u)" -eq 0 ]; then
	as_root=()
elif command -v sudo >/dev/null 2>&1; then
	as_root=(sudo)
else
	echo "deps.sh: missing Debian packages: ${missing[*]}" >&2
	echo "deps.sh: install them as root with: apt-get install ${missing[*]}" >&2
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
if ! "${as_root[@]}" apt-get update -qq ||
   ! "${as_root[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null; then
	echo "deps.sh: could not install: ${missing[*]}" >&2
	echo "deps.sh: install them as root with: apt-get update && apt-get install ${missing[*]}" >&2
	exit 1
fi
