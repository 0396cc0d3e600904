#!/usr/bin/env bash
# The dashboard's end-to-end tests (tests/e2e/tests.mjs) in Debian's
# Chromium, driven by playwright-core, against lighttpd serving the
# dashboard as `make run` does, two fcgi_sse processes and Redis
# (stack.py). Prints PASS or FAIL per test, then "N passed, N failed".
#   tests/e2e/run.sh [-k NAME]
# Needs chromium (/usr/bin/chromium, or CHROMIUM=...), node >= 18 with npm,
# python3, lighttpd and redis-server. playwright-core comes from
# package-lock.json into tests/e2e/node_modules (npm ci, only when the lock
# changed), without a browser download.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)

# what is missing, by its Debian package (nothing is installed from here)
missing=()
[ -x "${CHROMIUM:-/usr/bin/chromium}" ] || missing+=(chromium)
command -v node >/dev/null || missing+=(nodejs)
command -v npm >/dev/null || missing+=(npm)
for cmd in python3 lighttpd redis-server; do
	command -v "$cmd" >/dev/null || missing+=("$cmd")
done
if [ ${#missing[@]} -gt 0 ]; then
	echo "tests/e2e: missing ${missing[*]}: apt-get install ${missing[*]}" >&2
	exit 1
fi

make -s -C "$root" all >/dev/null

# node trusts its own CA list; the system's may also hold the network's
# (an HTTPS proxy's)
[ -z "${NODE_EXTRA_CA_CERTS:-}" ] && [ -f /etc/ssl/certs/ca-certificates.crt ] &&
	export NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt

# npm ci wipes node_modules and installs exactly the lock: only when the
# lock differs from the one installed last
stamp="$here/node_modules/.installed-lock.json"
if ! cmp -s "$here/package-lock.json" "$stamp" 2>/dev/null; then
	(cd "$here" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error >/dev/null)
	cp "$here/package-lock.json" "$stamp"
fi

exec node "$here/run.mjs" --binary "$root/build/fcgi_sse" "$@"
