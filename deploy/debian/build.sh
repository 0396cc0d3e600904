#!/usr/bin/env bash
# Builds the Debian package fcgi-sse from a built binary (make deb).
# usage: deploy/debian/build.sh VERSION BINARY OUTDIR
#   VERSION  the Makefile's VERSION; deploy/debian/changelog's latest entry
#            must be VERSION-<revision> (the package version)
#   BINARY   build/fcgi_sse (the plain build; it is stripped here)
#   OUTDIR   where fcgi-sse_<version>_<arch>.deb goes (the last line printed)
#
# No debhelper: the tree is staged in build/deb/debian/fcgi-sse, Depends
# come from dpkg-shlibdeps, the control file from dpkg-gencontrol (version
# from the changelog, Installed-Size from the tree), and dpkg-deb
# --root-owner-group packs it, so nothing needs fakeroot. File dates are
# the changelog's (SOURCE_DATE_EPOCH): the same inputs give the same .deb.
set -euo pipefail
export LC_ALL=C.UTF-8
umask 022

[ $# -eq 3 ] || { echo "usage: $0 VERSION BINARY OUTDIR" >&2; exit 2; }
version=$1 bin=$2 out=$3
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
pkg_name=fcgi-sse
fail() { echo "deb: $*" >&2; exit 1; }

deb_version=$(dpkg-parsechangelog -l "$here/changelog" -S Version)
upstream=${deb_version#*:}
upstream=${upstream%-*}
[ "$upstream" = "$version" ] ||
	fail "deploy/debian/changelog's latest entry is $deb_version, the Makefile's VERSION is $version: add an entry for $version-1 (dch -c deploy/debian/changelog -v $version-1)"
[ -x "$bin" ] || fail "$bin: not built"
"$bin" --version | grep -q "^fcgi_sse ${version} " ||
	fail "$bin --version says '$("$bin" --version)', not $version"
arch=$(dpkg-architecture -qDEB_HOST_ARCH)
SOURCE_DATE_EPOCH=$(dpkg-parsechangelog -l "$here/changelog" -S Timestamp)
export SOURCE_DATE_EPOCH
date=$(date -u -d "@$SOURCE_DATE_EPOCH" +%Y-%m-%d)

stage=$top/build/deb
root=$stage/debian/$pkg_name
doc=$root/usr/share/doc/$pkg_name
rm -rf "$stage"
mkdir -p "$stage/debian"

# the program, stripped as dh_strip does
install -D -m 0755 "$bin" "$root/usr/sbin/fcgi_sse"
strip --remove-section=.comment --remove-section=.note "$root/usr/sbin/fcgi_sse"

# configuration (the conffiles) and the unit
install -D -m 0644 "$here/config.json" "$root/etc/fcgi_sse/config.json"
install -D -m 0644 "$here/fcgi-sse.conf" "$root/etc/apache2/conf-available/fcgi-sse.conf"
install -D -m 0644 "$here/fcgi_sse.service" "$root/lib/systemd/system/fcgi_sse.service"

# man page, changelog, copyright, README.Debian, the front-server examples
install -d "$root/usr/share/man/man8"
sed -e "s/@VERSION@/$version/g" -e "s/@DATE@/$date/g" "$here/fcgi_sse.8" |
	gzip -9n > "$root/usr/share/man/man8/fcgi_sse.8.gz"
install -d "$doc/examples/apache" "$doc/examples/lighttpd"
gzip -9n < "$here/changelog" > "$doc/changelog.Debian.gz"
install -m 0644 "$here/copyright" "$doc/copyright"
# README.Debian: the package's section of docs/DEPLOY.md
awk '/^## The Debian package/ { on = 1; print; next } on && /^## / { exit } on' \
	"$top/docs/DEPLOY.md" > "$doc/README.Debian"
[ -s "$doc/README.Debian" ] || { echo "build.sh: no Debian section in docs/DEPLOY.md" >&2; exit 1; }
chmod 0644 "$doc/README.Debian"
install -m 0644 "$top"/deploy/apache/*.conf "$doc/examples/apache/"
# (not the dashboard's: the package does not ship the dashboard)
for f in "$top"/deploy/lighttpd/*.conf; do
	case "$(basename "$f")" in *dashboard*) continue ;; esac
	install -m 0644 "$f" "$doc/examples/lighttpd/"
done
# the supervisors' files (systemd units, supervisord, runit), modes kept
cp -R "$top/deploy/spawn-fcgi" "$doc/examples/spawn-fcgi"
chmod 0644 "$root/usr/share/man/man8/fcgi_sse.8.gz" "$doc/changelog.Debian.gz"
if [ -f "$here/lintian-overrides" ]; then
	install -D -m 0644 "$here/lintian-overrides" "$root/usr/share/lintian/overrides/$pkg_name"
fi

# control: the template, Depends from the libraries the binary links
cp "$here/control" "$stage/debian/control"
cp "$here/changelog" "$stage/debian/changelog"
install -d -m 0755 "$root/DEBIAN"
(cd "$stage" && dpkg-shlibdeps -Tdebian/substvars "debian/$pkg_name/usr/sbin/fcgi_sse")
(cd "$stage" && dpkg-gencontrol -p"$pkg_name" -P"debian/$pkg_name" -Tdebian/substvars)
[ "$(sed -n 's/^Version: //p' "$root/DEBIAN/control")" = "$deb_version" ] ||
	fail "dpkg-gencontrol wrote a version other than $deb_version"
install -m 0644 "$here/conffiles" "$root/DEBIAN/conffiles"
for s in postinst prerm postrm; do
	install -m 0755 "$here/$s" "$root/DEBIAN/$s"
done
# every conffile is in the tree, every file under /etc is a conffile
diff <(sed 's|^/||' "$here/conffiles" | sort) <(cd "$root" && find etc -type f | sort) >/dev/null ||
	fail "deploy/debian/conffiles does not list exactly the files under etc/"

# md5sums of everything but DEBIAN/ and the conffiles (as dh_md5sums)
(cd "$root" && find . -path ./DEBIAN -prune -o -type f -print | sed 's|^\./||' | LC_ALL=C sort |
	grep -vxFf <(sed 's|^/||' "$here/conffiles") | xargs -d '\n' md5sum) > "$root/DEBIAN/md5sums"
chmod 0644 "$root/DEBIAN/md5sums" "$root/DEBIAN/control"

find "$root" -type d -exec chmod 0755 {} +
find "$root" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +
mkdir -p "$out"
deb=$out/${pkg_name}_${deb_version#*:}_$arch.deb
dpkg-deb --root-owner-group -Zxz --build "$root" "$deb" >/dev/null
echo "$deb"
