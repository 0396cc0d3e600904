#!/bin/bash
# Runs inside the fresh root of tests/deb/run.sh, as root, in two phases:
#   install  apt-get install of the .deb ($DEB), and what installing did
#   serve    (network namespace of its own) Apache + Redis + fcgi_sse as its
#            unit says, the API over HTTP, a graceful stop, remove, purge
set -euo pipefail

phase=$1
PKG=fcgi-sse
UNIT=/lib/systemd/system/fcgi_sse.service
CONFIG=/etc/fcgi_sse/config.json
SECRETS=/etc/fcgi_sse/secrets.env
STATE=/var/lib/fcgi_sse
APACHE_CONF=/etc/apache2/conf-available/fcgi-sse.conf

pass() { echo "test-deb: PASS: $*"; }
fail() {
	echo "test-deb: FAIL: $*" >&2
	for f in /tmp/apt.out /tmp/fcgi_sse.log /var/log/apache2/error.log; do
		[ -s "$f" ] && { echo "--- last lines of $f" >&2; tail -n 30 "$f" >&2; }
	done
	exit 1
}
say() { echo "test-deb: $*"; }

install_phase() {
	local v p
	# the root is minbase (adduser is part of it): apt must bring the
	# libraries of the Depends
	for p in libfcgi0ldbl libhiredis0.14 libjson-c5; do
		v=$(dpkg-query -W -f='${db:Status-Abbrev}' "$p" 2>/dev/null || true)
		[ "${v:0:2}" = ii ] && fail "$p is in the root before the package"
	done
	getent passwd fcgi-sse >/dev/null && fail "user fcgi-sse exists before the install"
	# no service may start in a chroot
	printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
	chmod 755 /usr/sbin/policy-rc.d

	# the package alone first, without its Recommends: its Depends must do
	export DEBIAN_FRONTEND=noninteractive
	apt-get install -y --no-install-recommends "$DEB" > /tmp/apt.out 2>&1 || fail "apt-get install $DEB"
	v=$(dpkg-query -W -f='${db:Status-Abbrev}' "$PKG")
	[ "${v:0:2}" = ii ] || fail "$PKG is not installed: $v"
	local version upstream
	version=$(dpkg-query -W -f='${Version}' "$PKG")
	pass "apt-get installed $PKG $version, and from the mirror: $(sed -n 's/^Setting up \([^ ]*\) .*/\1/p' /tmp/apt.out | grep -v "^$PKG " | tr '\n' ' ')"
	ldd /usr/sbin/fcgi_sse | grep -q 'not found' && fail "libraries missing: $(ldd /usr/sbin/fcgi_sse | grep 'not found')"
	upstream=${version%-*}
	/usr/sbin/fcgi_sse --version | grep -q "^fcgi_sse $upstream " ||
		fail "fcgi_sse --version says $(/usr/sbin/fcgi_sse --version), the package is $version"
	pass "every library resolves; $(/usr/sbin/fcgi_sse --version)"
	apt-get install -y apache2 redis-server curl > /tmp/apt-more.out 2>&1 || { cat /tmp/apt-more.out; fail "apt-get install apache2 redis-server curl"; }
	pass "apt-get installed apache2, redis-server, curl"

	# the system user and its state directory
	local pw uid
	pw=$(getent passwd fcgi-sse) || fail "no user fcgi-sse"
	uid=$(cut -d: -f3 <<<"$pw")
	[ "$uid" -lt 1000 ] || fail "fcgi-sse is not a system user (uid $uid)"
	[ "$(cut -d: -f7 <<<"$pw")" = /usr/sbin/nologin ] || fail "fcgi-sse has a login shell: $pw"
	[ "$(stat -c '%U:%G %a' "$STATE")" = "fcgi-sse:fcgi-sse 750" ] ||
		fail "$STATE is $(stat -c '%U:%G %a' "$STATE")"
	pass "system user fcgi-sse (uid $uid, nologin), $STATE fcgi-sse:fcgi-sse 0750"

	# conffiles, and the generated secrets
	dpkg-query -W -f='${Conffiles}\n' "$PKG" | grep -q " $CONFIG " || fail "$CONFIG is not a conffile"
	dpkg-query -W -f='${Conffiles}\n' "$PKG" | grep -q " $APACHE_CONF " || fail "$APACHE_CONF is not a conffile"
	dpkg -S "$SECRETS" >/dev/null 2>&1 && fail "$SECRETS belongs to the package: dpkg would handle it as its file"
	[ -f "$SECRETS" ] || fail "no $SECRETS"
	[ "$(stat -c '%U:%G %a' "$SECRETS")" = "root:root 600" ] || fail "$SECRETS is $(stat -c '%U:%G %a' "$SECRETS")"
	local keys secret
	keys=$(sed -n 's/^FCGI_SSE_AUTH_JWT_KEYS=//p' "$SECRETS")
	secret=$(sed -n 's/^FCGI_SSE_SECURITY_INTERNAL_SECRET=//p' "$SECRETS")
	[[ $keys =~ ^k[0-9]{8}:[A-Za-z0-9_-]{43}$ ]] || fail "FCGI_SSE_AUTH_JWT_KEYS is not a generated kid:key"
	[[ $secret =~ ^[A-Za-z0-9_-]{43}$ ]] || fail "FCGI_SSE_SECURITY_INTERNAL_SECRET is not a generated secret"
	[ "${keys#*:}" != "$secret" ] || fail "the two secrets are the same"
	grep -rqF -e "${keys#*:}" -e "$secret" /tmp/apt.out /var/log/dpkg.log /var/log/apt 2>/dev/null &&
		fail "a secret was printed or logged by the installation"
	grep -q '"jwt_keys"' "$CONFIG" && fail "the conffile holds auth.jwt_keys"
	pass "$SECRETS: root:root 0600, a kid:key and an internal secret, generated (never printed); config.json holds none"

	# a reinstall (postinst configure again) keeps an admin's values
	sed -i "s/^FCGI_SSE_SECURITY_INTERNAL_SECRET=.*/FCGI_SSE_SECURITY_INTERNAL_SECRET=admin-chose-this-secret-0123456789/" "$SECRETS"
	local before
	before=$(sha256sum "$SECRETS")
	apt-get install -y --reinstall "$DEB" > /tmp/apt.out 2>&1 || fail "apt-get install --reinstall"
	[ "$(sha256sum "$SECRETS")" = "$before" ] || fail "the reinstall changed $SECRETS"
	[ "$(stat -c '%U:%G %a' "$SECRETS")" = "root:root 600" ] || fail "the reinstall changed $SECRETS's mode"
	pass "a reinstall leaves $SECRETS as the admin left it"

	# a missing file is made again by configuring, without a secret that
	# config.json sets (an admin's choice there is not overridden)
	cp "$CONFIG" /tmp/config.json.orig
	sed -i "s|\"store\":|\"auth\": { \"jwt_keys\": \"adm:$(head -c 32 /dev/urandom | base64 -w 0 | tr '+/' '-_' | tr -d '=')\" },\n  \"store\":|" "$CONFIG"
	grep -q '"jwt_keys": "adm:' "$CONFIG" || fail "could not set auth.jwt_keys in $CONFIG"
	rm "$SECRETS"
	dpkg-reconfigure -f noninteractive "$PKG" > /tmp/apt.out 2>&1 || fail "dpkg-reconfigure $PKG"
	[ "$(stat -c '%U:%G %a' "$SECRETS")" = "root:root 600" ] || fail "reconfigure made no $SECRETS, or not 0600"
	grep -q '^FCGI_SSE_AUTH_JWT_KEYS=' "$SECRETS" && fail "reconfigure generated a key that config.json sets"
	grep -Eq '^FCGI_SSE_SECURITY_INTERNAL_SECRET=[A-Za-z0-9_-]{43}$' "$SECRETS" || fail "reconfigure generated no internal secret"
	cp /tmp/config.json.orig "$CONFIG"
	rm "$SECRETS"
	dpkg-reconfigure -f noninteractive "$PKG" > /tmp/apt.out 2>&1 || fail "dpkg-reconfigure $PKG"
	[ "$(grep -c '^FCGI_SSE_[A-Z_]*=' "$SECRETS")" = 2 ] || fail "reconfigure did not generate both secrets again"
	pass "a removed $SECRETS is generated again by dpkg-reconfigure, without what config.json sets"

	# the rest of what is shipped
	[ -s /usr/share/man/man8/fcgi_sse.8.gz ] || fail "no man page"
	zcat /usr/share/man/man8/fcgi_sse.8.gz | grep -q '^\.TH FCGI_SSE 8' || fail "the man page is not fcgi_sse(8)"
	for f in copyright changelog.Debian.gz README.Debian examples/apache/fcgi_sse-proxy-fcgi.conf \
		examples/apache/fcgi_sse-fcgid.conf examples/lighttpd/fcgi_sse.conf examples/lighttpd/fcgi_sse-spawn.conf; do
		[ -s "/usr/share/doc/$PKG/$f" ] || fail "no /usr/share/doc/$PKG/$f"
	done
	[ -L /etc/systemd/system/multi-user.target.wants/fcgi_sse.service ] || fail "the unit was not enabled"
	pass "man page, docs, examples; fcgi_sse.service enabled (multi-user.target.wants)"
}

# --- the unit, applied by hand ---------------------------------------------

# unit_get KEY: the values of KEY= in [Service], one per line
unit_get() {
	awk -v k="$1" '
		/^\[/ { sec = $0; next }
		sec == "[Service]" && index($0, k "=") == 1 { print substr($0, length(k) + 2) }
	' "$UNIT"
}

# Checks that the unit's [Service] has only directives this script applies
# or that only confine the process further (sandboxing, restart policy):
# a new directive that changes how the process starts must be taught here.
check_unit_keys() {
	local k
	while read -r k; do
		case "$k" in
		Type|User|Group|EnvironmentFile|RuntimeDirectory|RuntimeDirectoryMode|UMask|ExecStartPre|ExecStart|LimitNOFILE|NoNewPrivileges) ;;
		KillSignal|TimeoutStopSec|Restart|RestartPreventExitStatus) ;;
		ProtectSystem|ReadWritePaths|ProtectHome|PrivateTmp) ;;
		*) fail "$UNIT: this test does not apply $k= (teach tests/deb/inside.sh)" ;;
		esac
	done < <(awk '/^\[/ { sec = $0; next } sec == "[Service]" && /^[A-Za-z]+=/ { sub(/=.*/, ""); print }' "$UNIT")
	[ "$(unit_get Type)" = simple ] || fail "Type=$(unit_get Type): the test runs Type=simple"
	for k in ExecStartPre ExecStart EnvironmentFile User Group UMask RuntimeDirectory; do
		[ "$(unit_get "$k" | wc -l)" -le 1 ] || fail "$UNIT: several $k= lines (teach tests/deb/inside.sh)"
	done
}

# The command line of an Exec line, as systemd splits it: the unit's lines
# have no quotes, variables, specifiers or prefixes, so words are words.
exec_words() {
	local line=$1
	case "$line" in
	*[\"\'\$%\\]*|[-@:+!]*) fail "Exec line needs systemd's own parsing: $line" ;;
	esac
	read -ra words <<<"$line"
}

svc_env=()
load_unit() {
	local envfile line
	check_unit_keys
	svc_user=$(unit_get User)
	svc_group=$(unit_get Group)
	svc_umask=$(unit_get UMask)
	svc_nofile=$(unit_get LimitNOFILE)
	svc_kill=$(unit_get KillSignal)
	[ -n "$svc_user" ] && [ -n "$svc_group" ] && [ -n "$svc_umask" ] || fail "unit without User/Group/UMask"
	# what systemd puts in a service's environment, then EnvironmentFile=
	svc_env=(PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin "HOME=$(getent passwd "$svc_user" | cut -d: -f6)"
		"USER=$svc_user" "LOGNAME=$svc_user" SHELL=/usr/sbin/nologin)
	envfile=$(unit_get EnvironmentFile)
	if [ -n "$envfile" ]; then
		[[ $envfile == -* ]] && { envfile=${envfile#-}; [ -e "$envfile" ] || envfile=; }
	fi
	if [ -n "$envfile" ]; then
		[ -r "$envfile" ] || fail "EnvironmentFile=$envfile missing"
		while IFS= read -r line || [ -n "$line" ]; do
			case "$line" in ''|'#'*|';'*) continue ;; esac
			[[ $line =~ ^[A-Za-z_][A-Za-z0-9_]*=[A-Za-z0-9_.:,-]*$ ]] ||
				fail "$envfile: a line this test cannot read as systemd would"
			svc_env+=("$line")
		done < "$envfile"
	fi
	local rd mode
	rd=$(unit_get RuntimeDirectory)
	mode=$(unit_get RuntimeDirectoryMode)
	if [ -n "$rd" ]; then
		svc_env+=("RUNTIME_DIRECTORY=/run/$rd")
		install -d -o "$svc_user" -g "$svc_group" -m "${mode:-0755}" "/run/$rd"
	fi
	[ "$(unit_get NoNewPrivileges)" = yes ] && svc_nnp=(--no-new-privs) || svc_nnp=()
	# supplementary groups as systemd sets them: getgrouplist(User, Group),
	# i.e. Group= and the groups that list the user (not its passwd group)
	local primary g
	primary=$(id -gn "$svc_user")
	svc_groups=$svc_group
	for g in $(id -Gn "$svc_user"); do
		[ "$g" = "$primary" ] || [ "$g" = "$svc_group" ] || svc_groups+=",$g"
	done
}

# svc_exec CMD...: becomes CMD as the unit runs its Exec lines (cwd /,
# umask, limits, user and group, the environment above). Run it in a
# subshell, or in the background (then $! is CMD's pid).
svc_exec() {
	cd /
	umask "$svc_umask"
	[ -n "$svc_nofile" ] && ulimit -n "$svc_nofile"
	exec env -i "${svc_env[@]}" setpriv --reuid="$svc_user" --regid="$svc_group" --groups="$svc_groups" \
		"${svc_nnp[@]}" -- "$@"
}

serve_phase() {
	local code body token cookie pid sock
	# policy-rc.d (install phase) stays: maintainer scripts start no service

	# Apache: the package's snippet, as README.Debian says
	a2enmod -q proxy proxy_fcgi >/dev/null
	a2enconf -q fcgi-sse >/dev/null
	apache2ctl configtest > /tmp/configtest.out 2>&1 || fail "apache2ctl configtest: $(cat /tmp/configtest.out)"
	pass "a2enmod proxy proxy_fcgi, a2enconf fcgi-sse: configtest OK"

	# Redis as Debian configures it (127.0.0.1:6379)
	install -d -o redis -g redis -m 2755 /run/redis
	runuser -u redis -- redis-server /etc/redis/redis.conf --daemonize yes
	for _ in $(seq 50); do [ "$(redis-cli ping 2>/dev/null)" = PONG ] && break; sleep 0.1; done
	[ "$(redis-cli ping 2>/dev/null)" = PONG ] || fail "redis-server does not answer"
	pass "redis-server on 127.0.0.1:6379"

	# fcgi_sse, as the unit says
	load_unit
	exec_words "$(unit_get ExecStartPre)"
	(svc_exec "${words[@]}") > /tmp/check-config.out 2>&1 || fail "ExecStartPre failed: $(cat /tmp/check-config.out)"
	grep -q '"jwt_keys": "<redacted>"' /tmp/check-config.out || fail "the service does not get auth.jwt_keys"
	grep -q '"internal_secret": "<redacted>"' /tmp/check-config.out || fail "the service does not get security.internal_secret"
	pass "ExecStartPre ($(unit_get ExecStartPre)): exit 0, both secrets reach it from EnvironmentFile"
	exec_words "$(unit_get ExecStart)"
	sock=$(printf '%s\n' "${words[@]}" | sed -n 's/^unix://p')
	[ -n "$sock" ] || fail "ExecStart has no --listen unix:PATH"
	grep -qF "\"unix:$sock|" "$APACHE_CONF" || fail "$APACHE_CONF does not name the unit's socket $sock"
	svc_exec "${words[@]}" 2> /tmp/fcgi_sse.log &
	pid=$!
	for _ in $(seq 100); do [ -S "$sock" ] && break; kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
	[ -S "$sock" ] || fail "ExecStart did not create $sock"
	[ "$(stat -c '%U:%G %A' "$sock")" = "fcgi-sse:www-data srwxrwx---" ] || fail "$sock is $(stat -c '%U:%G %A' "$sock")"
	[ "$(stat -c %U "/proc/$pid")" = fcgi-sse ] || fail "fcgi_sse runs as $(stat -c %U "/proc/$pid")"
	grep -q "^Groups:	$(getent group "$svc_group" | cut -d: -f3) *$" "/proc/$pid/status" ||
		fail "fcgi_sse's groups: $(grep '^Groups:' "/proc/$pid/status")"
	pass "ExecStart ($(unit_get ExecStart)) as $svc_user:$svc_group: $sock fcgi-sse:www-data 0770"

	apache2ctl start > /tmp/apache-start.out 2>&1 || fail "apache2ctl start: $(cat /tmp/apache-start.out)"
	local url=http://127.0.0.1
	for _ in $(seq 100); do curl -s -o /dev/null "$url/" && break; sleep 0.1; done

	# the API through Apache
	code=$(curl -s -o /tmp/body -w '%{http_code}' "$url/api/v2/health")
	[ "$code" = 200 ] || fail "GET /api/v2/health: $code $(cat /tmp/body)"
	grep -q '"status":"ok"' /tmp/body || fail "health said $(cat /tmp/body)"
	pass "GET /api/v2/health through Apache: 200 $(cat /tmp/body)"
	for _ in $(seq 100); do
		code=$(curl -s -o /tmp/body -w '%{http_code}' "$url/api/v2/ready")
		[ "$code" = 200 ] && break
		sleep 0.1
	done
	[ "$code" = 200 ] || fail "GET /api/v2/ready: $code $(cat /tmp/body)"
	pass "GET /api/v2/ready: 200 (the packaged config reaches Redis and the store)"

	local admin=(runuser -u fcgi-sse -- /usr/sbin/fcgi_sse admin --config "$CONFIG")
	body=$("${admin[@]}" create-tenant acme) || fail "admin create-tenant"
	grep -q '"name":"acme"' <<<"$body" || fail "create-tenant said $body"
	body=$(printf 'correct-horse-battery\n' | "${admin[@]}" create-user --tenant acme --username ana --role admin) ||
		fail "admin create-user"
	grep -q '"username":"ana"' <<<"$body" || fail "create-user said $body"
	[ -z "$(find "$STATE" ! -user fcgi-sse)" ] || fail "files in $STATE not the service's: $(find "$STATE" ! -user fcgi-sse)"
	pass "fcgi_sse admin --config $CONFIG (as fcgi-sse): tenant acme, user ana (admin)"

	code=$(curl -s -D /tmp/login.h -o /tmp/body -w '%{http_code}' -H 'Content-Type: application/json' \
		-d '{"tenant":"acme","username":"ana","password":"correct-horse-battery"}' "$url/api/v2/auth/login")
	[ "$code" = 200 ] || fail "login: $code $(cat /tmp/body)"
	token=$(sed -n 's/.*"access_token":"\([^"]*\)".*/\1/p' /tmp/body)
	cookie=$(tr -d '\r' < /tmp/login.h | sed -n 's/^[Ss]et-[Cc]ookie: \(__Host-fgp=[^;]*\).*/\1/p')
	[ -n "$token" ] || fail "no access_token in $(cat /tmp/body)"
	[ -n "$cookie" ] || fail "no __Host-fgp cookie in the login's headers"
	pass "POST /api/v2/auth/login: 200, a token and the fingerprint cookie"

	code=$(curl -s -o /tmp/body -w '%{http_code}' -H "Cookie: $cookie" -H "Authorization: Bearer $token" "$url/api/v2/me")
	[ "$code" = 200 ] || fail "GET /api/v2/me: $code $(cat /tmp/body)"
	grep -q '"username":"ana"' /tmp/body || fail "/me said $(cat /tmp/body)"
	code=$(curl -s -o /tmp/body -w '%{http_code}' -H "Cookie: $cookie" "$url/api/v2/me")
	[ "$code" = 401 ] || fail "GET /api/v2/me without a token: $code"
	pass "GET /api/v2/me with Bearer + cookie: 200 (Authorization reaches fcgi_sse through Apache); without: 401"

	# a stream's first frame arrives while the stream is open (unbuffered)
	curl -sN --max-time 10 "$url/api/v2/version/stream" > /tmp/stream.out 2>/dev/null &
	local stream_pid=$!
	for _ in $(seq 50); do grep -q '^retry:' /tmp/stream.out 2>/dev/null && break; sleep 0.1; done
	grep -q '^retry:' /tmp/stream.out || fail "no frame of /api/v2/version/stream within 5 s: $(cat /tmp/stream.out)"
	kill "$stream_pid" 2>/dev/null || true
	wait "$stream_pid" 2>/dev/null || true
	pass "GET /api/v2/version/stream: its first frame arrives at once through Apache (flushpackets)"

	local s
	for s in $(sed -n 's/^FCGI_SSE_[A-Z_]*=\(.*:\)\{0,1\}//p' "$SECRETS"); do
		grep -rqF -- "$s" /tmp/fcgi_sse.log /tmp/check-config.out /var/log/apache2 &&
			fail "a secret is in the logs"
	done
	pass "no secret in fcgi_sse's, ExecStartPre's or Apache's output"

	# stop as systemd would (KillSignal=), within TimeoutStopSec=
	local stop rc=0
	stop=$(unit_get TimeoutStopSec)
	kill -s "${svc_kill#SIG}" "$pid"
	for _ in $(seq $(( ${stop:-90} * 10 ))); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
	kill -0 "$pid" 2>/dev/null && fail "fcgi_sse still runs ${stop}s after $svc_kill"
	wait "$pid" || rc=$?
	[ "$rc" -eq 0 ] || fail "fcgi_sse exited $rc after $svc_kill"
	[ -e "$sock" ] && fail "$sock left behind"
	pass "$svc_kill: fcgi_sse exited 0, socket removed"
	apache2ctl stop >/dev/null 2>&1 || true
	redis-cli shutdown nosave >/dev/null 2>&1 || true

	# remove keeps configuration, secrets and store; purge takes them
	dpkg --remove "$PKG" > /tmp/apt.out 2>&1 || fail "dpkg --remove"
	[ -f "$CONFIG" ] && [ -f "$SECRETS" ] && [ -d "$STATE" ] || fail "remove deleted configuration or state"
	[ ! -e /usr/sbin/fcgi_sse ] || fail "remove left the binary"
	apache2ctl configtest >/dev/null 2>&1 || fail "Apache's configuration is broken after remove"
	pass "dpkg --remove: binary gone; config, secrets, store kept; Apache config still valid"
	dpkg --purge "$PKG" > /tmp/apt.out 2>&1 || fail "dpkg --purge"
	[ -z "$(dpkg-query -W -f='${db:Status-Abbrev}' "$PKG" 2>/dev/null)" ] ||
		fail "dpkg still knows $PKG: $(dpkg-query -W -f='${db:Status-Abbrev}' "$PKG")"
	local left
	for left in /etc/fcgi_sse "$STATE" /run/fcgi_sse "$APACHE_CONF" /etc/apache2/conf-enabled/fcgi-sse.conf \
		/etc/systemd/system/multi-user.target.wants/fcgi_sse.service; do
		[ -e "$left" ] || [ -L "$left" ] && fail "purge left $left"
	done
	left=$(find / -xdev \( -path /proc -o -path /sys -o -path /dev \) -prune -o \( -user fcgi-sse -o -group fcgi-sse \) -print)
	[ -z "$left" ] || fail "files of fcgi-sse after purge: $left"
	apache2ctl configtest >/dev/null 2>&1 || fail "Apache's configuration is broken after purge"
	grep -qi 'warning\|error' /tmp/apt.out && fail "purge said: $(cat /tmp/apt.out)"
	pass "dpkg --purge: /etc/fcgi_sse, $STATE, the Apache link and the unit's link gone, no file of fcgi-sse left; Apache config valid (user fcgi-sse kept, as Debian does)"
}

case "$phase" in
install) install_phase ;;
serve) serve_phase ;;
*) fail "unknown phase $phase" ;;
esac
