#!/usr/bin/env bash
# Lays out the document root that deploy/lighttpd/dashboard.conf serves:
#   WWW/dashboard/        -> dashboard/         (the page: /dashboard/)
#   WWW/clients/js/src/   -> clients/js/src/    (the client it imports)
# as symlinks into this checkout, so that an edited file shows at the next
# reload. The same paths relative to each other as in the repository:
# dashboard/app.js imports ../clients/js/src/index.js either way.
# usage: deploy/www.sh WWW_DIR     (make run: run/www; tests/e2e: its own)
set -euo pipefail

[ $# -eq 1 ] || { echo "usage: $0 WWW_DIR" >&2; exit 64; }
root=$(cd "$(dirname "$0")/.." && pwd)
www=$1

link() { # target link: replaces a link, never a file or directory of someone's
	if [ -e "$2" ] && [ ! -L "$2" ]; then
		echo "www.sh: $2 is not a symlink: move it away first" >&2
		exit 1
	fi
	ln -sfn "$1" "$2"
}
mkdir -p "$www/clients/js"
link "$root/dashboard" "$www/dashboard"
link "$root/clients/js/src" "$www/clients/js/src"
