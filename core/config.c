#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "listen.h"
#include "timefmt.h"

#define CONFIG_FILE_MAX (1024 * 1024)
#define ENV_PREFIX "FCGI_SSE_"

enum config_type { CFG_INT, CFG_STRING, CFG_TIME, CFG_ENUM };

struct config_entry {
	const char *name; /* section.key */
	enum config_type type;
	size_t offset;
	long long min, max; /* CFG_INT bounds; CFG_STRING maximum length */
	const char *def;    /* default, in the environment-variable syntax */
	const char *const *choices; /* CFG_ENUM, NULL-terminated */
	int secret;
	/* extra check of a string value; returns 0 or -1 with a reason */
	int (*check)(const char *value, const char **why);
	const char *help;
};

static const char *const log_levels[] = { "debug", "info", "warn", "error", NULL };
static const char *const store_backends[] = { "sqlite", "postgres", NULL }; /* enum store_backend */

static int check_listen(const char *v, const char **why)
{
	struct listen_addr a;

	if (*v == '\0')
		return 0;
	if (listen_parse(v, &a) < 0) {
		*why = "expected \"unix:/path\", \"HOST:PORT\" or \"[IPv6]:PORT\"";
		return -1;
	}
	return 0;
}

/* URLs go into a Link header between < and >: no controls, spaces or angle
 * brackets, and not empty. */
static int check_url(const char *v, const char **why)
{
	if (*v == '\0') {
		*why = "must not be empty";
		return -1;
	}
	for (const unsigned char *p = (const unsigned char *)v; *p; p++) {
		if (*p <= 0x20 || *p == 0x7f || *p == '<' || *p == '>' || *p == '"') {
			*why = "must be a URL without spaces, quotes or angle brackets";
			return -1;
		}
	}
	return 0;
}

static int check_nonempty(const char *v, const char **why)
{
	if (*v == '\0') {
		*why = "must not be empty";
		return -1;
	}
	return 0;
}

/* "host:port" items separated by commas (no blanks), at most 16; "" for
 * none. A host is a name or an IPv4 address (no brackets: IPv6 sentinels
 * are named). */
static int check_sentinels(const char *v, const char **why)
{
	int n = 0;

	while (*v != '\0') {
		const char *end = strchr(v, ','), *colon;
		size_t len = end ? (size_t)(end - v) : strlen(v);
		long port = 0;
		size_t i;

		colon = memchr(v, ':', len);
		if (colon == NULL || colon == v || colon + 1 == v + len || memchr(colon + 1, ':', (size_t)(v + len - colon - 1))) {
			*why = "must be host:port items separated by commas";
			return -1;
		}
		for (i = 0; v + i < colon; i++)
			if (!isalnum((unsigned char)v[i]) && v[i] != '.' && v[i] != '-' && v[i] != '_') {
				*why = "a sentinel's host must be a name or an IPv4 address";
				return -1;
			}
		for (const char *p = colon + 1; p < v + len; p++) {
			if (!isdigit((unsigned char)*p) || (port = port * 10 + (*p - '0')) > 65535) {
				*why = "a sentinel's port must be 1..65535";
				return -1;
			}
		}
		if (port < 1) {
			*why = "a sentinel's port must be 1..65535";
			return -1;
		}
		if (++n > 16) {
			*why = "at most 16 sentinels";
			return -1;
		}
		if (end == NULL)
			break;
		v = end + 1;
		if (*v == '\0') {
			*why = "must not end with a comma";
			return -1;
		}
	}
	return 0;
}

#define OFF(f) offsetof(struct config, f)

static const struct config_entry entries[] = {
	{ "server.listen", CFG_STRING, OFF(listen), 0, 512, "", NULL, 0, check_listen,
	  "Where to listen: \"\" (default) uses the socket a FastCGI process manager passes on fd 0 (mod_fcgid, lighttpd bin-path, spawn-fcgi); \"unix:/path\" or \"127.0.0.1:9000\" runs standalone. The --listen option overrides it." },
	{ "server.workers", CFG_INT, OFF(workers), 1, 256, "8", NULL, 0, NULL,
	  "Worker threads accepting and serving requests concurrently." },
	{ "server.backlog", CFG_INT, OFF(backlog), 1, 65535, "1024", NULL, 0, NULL,
	  "listen() backlog of a standalone socket (the kernel caps it at net.core.somaxconn). A reconnect storm of streams arrives at once: with 128, lighttpd saw refused connects and answered 500 to 1 in 6 of 1,000 reconnects." },
	{ "server.shutdown_timeout_ms", CFG_INT, OFF(shutdown_timeout_ms), 100, 300000, "10000", NULL, 0, NULL,
	  "After SIGTERM, how long in-flight requests may take to finish before the process exits anyway." },
	{ "http.max_body_bytes", CFG_INT, OFF(max_body_bytes), 0, 67108864, "1048576", NULL, 0, NULL,
	  "Largest request body accepted; larger bodies get 413 request.too_large." },
	{ "http.body_timeout_ms", CFG_INT, OFF(body_timeout_ms), 0, 600000, "10000", NULL, 0, NULL,
	  "A request body must keep arriving: a read that waits longer than this fails the request (400 request.malformed_json, \"could not be read\") and frees its worker. lighttpd (server.stream-request-body = 0) hands bodies over whole; Apache's mod_proxy_fcgi passes them on as they come, so a client trickling a body would hold a worker. 0: wait as long as the front server does." },
	{ "log.level", CFG_ENUM, OFF(log_level), 0, 0, "info", log_levels, 0, NULL,
	  "Least severe level written to stderr: debug, info, warn or error." },
	{ "api.v1_deprecation", CFG_TIME, OFF(v1_deprecation), 0, 0, "2026-09-01T00:00:00Z", NULL, 0, NULL,
	  "When v1 was deprecated (RFC 3339); sent as `Deprecation: @<unix>`." },
	{ "api.v1_sunset", CFG_TIME, OFF(v1_sunset), 0, 0, "2027-06-30T00:00:00Z", NULL, 0, NULL,
	  "When v1 stops being served (RFC 3339); sent as `Sunset`; afterwards v1 answers 410 api.version_sunset." },
	{ "api.v1_successor_url", CFG_STRING, OFF(v1_successor_url), 0, 512, "/api/v2/", NULL, 0, check_url,
	  "Link target with rel=\"successor-version\" on v1 responses." },
	{ "api.v1_deprecation_url", CFG_STRING, OFF(v1_deprecation_url), 0, 512, "https://fcgi-sse.dev/docs/api/v1-deprecation", NULL, 0, check_url,
	  "Link target with rel=\"deprecation\" on v1 responses: the migration notes." },
	{ "sse.heartbeat_interval_ms", CFG_INT, OFF(heartbeat_interval_ms), 100, 3600000, "15000", NULL, 0, NULL,
	  "Interval between `event: ping` heartbeats on open streams." },
	{ "sse.max_streams_per_tenant", CFG_INT, OFF(max_streams_per_tenant), 0, 10000000, "10000", NULL, 0, NULL,
	  "Open streams a tenant may have across every process and host (counted in Redis); one more is 429 rate.limited. 0: no limit." },
	{ "sse.max_streams_per_user", CFG_INT, OFF(max_streams_per_user), 0, 10000000, "100", NULL, 0, NULL,
	  "Open streams one user may have across every process and host. 0: no limit." },
	{ "sse.stream_quota_lease_ms", CFG_INT, OFF(stream_quota_lease_ms), 1000, 600000, "15000", NULL, 0, NULL,
	  "A process's streams stop counting toward the quotas this long after its last report to Redis (every second), so a killed process frees its share." },
	{ "sse.ready_probe_max_age_ms", CFG_INT, OFF(ready_probe_max_age_ms), 1000, 600000, "6000", NULL, 0, NULL,
	  "Each process sends itself a probe through the Redis bus every 2 s; GET /api/v2/ready answers 503 when none has come back for longer than this." },
	{ "sse.peer_check_ms", CFG_INT, OFF(peer_check_ms), 0, 60000, "500", NULL, 0, NULL,
	  "How often each process asks the kernel (sock_diag) which stream clients have closed their TCP connection to the front server, and ends those streams: lighttpd and Apache notice a client's FIN only at their next write, the heartbeat. Each look lists the connections in CLOSE_WAIT only; every tenth (every one while a stream is on HTTP/2) also the established ones, to find those reset or closed meanwhile. A look walks the kernel's TCP table, 2-4 ms here whatever the number of streams (about 0.45% of a core per process at 500 ms; docs/DEPLOY.md); a process without streams does not look. Needs the front server in the same network namespace. 0: never; closed streams end at their next heartbeat." },
	{ "sse.retry_ms", CFG_INT, OFF(retry_ms), 0, 600000, "3000", NULL, 0, NULL,
	  "Reconnection delay sent to clients in the stream's `retry:` field." },
	{ "sse.retry_jitter_pct", CFG_INT, OFF(retry_jitter_pct), 0, 100, "50", NULL, 0, NULL,
	  "Each stream's `retry:` is sse.retry_ms plus up to this percent of it, at random: after a restart, the clients' reconnects spread over that span instead of arriving at once." },
	{ "sse.max_streams", CFG_INT, OFF(max_streams), 1, 100000, "10000", NULL, 0, NULL,
	  "Streams one process holds open at once (two open files each behind lighttpd; the file limit must allow them). Further streams get 503 server.busy." },
	{ "sse.max_lifetime_ms", CFG_INT, OFF(max_lifetime_ms), 0, 86400000, "240000", NULL, 0, NULL,
	  "A stream ends (cleanly, between events) after this long, less up to sse.lifetime_jitter_pct; EventSource reconnects by itself. Keep it below front-server limits such as mod_fcgid's FcgidBusyTimeout. 0: no limit." },
	{ "sse.lifetime_jitter_pct", CFG_INT, OFF(lifetime_jitter_pct), 0, 50, "10", NULL, 0, NULL,
	  "How much shorter than sse.max_lifetime_ms a stream may end, at random, so streams opened together do not reconnect together." },
	{ "sse.max_buffer_bytes", CFG_INT, OFF(max_buffer_bytes), 1024, 16777216, "65536", NULL, 0, NULL,
	  "Unsent output a stream may hold; a client that stops reading is dropped when it is full." },
	{ "sse.shutdown_grace_ms", CFG_INT, OFF(shutdown_grace_ms), 0, 60000, "2000", NULL, 0, NULL,
	  "On shutdown, how long streams may take to flush `event: shutdown` before they are closed." },
	{ "sse.stream_session_connect_s", CFG_INT, OFF(stream_session_connect_s), 1, 3600, "30", NULL, 0, NULL,
	  "A stream session id must be used for a first connect within this many seconds." },
	{ "sse.stream_session_max_age_s", CFG_INT, OFF(stream_session_max_age_s), 60, 2592000, "43200", NULL, 0, NULL,
	  "After its first use a stream session serves the same client's reconnects for at most this long (and never past its login)." },
	{ "sse.history_max_len", CFG_INT, OFF(history_max_len), 1, 10000000, "10000", NULL, 0, NULL,
	  "Events kept per tenant in the Redis Stream history for Last-Event-ID replay, at most; once full, the oldest are trimmed 1% (up to 100) at a time, so at least this minus that stay. A client resuming from before them gets `event: reset`." },
	{ "sse.history_max_age_s", CFG_INT, OFF(history_max_age_s), 0, 2592000, "86400", NULL, 0, NULL,
	  "Events older than this are trimmed from history on the tenant's next publishes (up to 1% of sse.history_max_len, at most 100, per publish). 0: no age limit, only sse.history_max_len." },
	{ "security.internal_secret", CFG_STRING, OFF(internal_secret), 0, 1024, "", NULL, 1, NULL,
	  "Shared secret for internal callers (X-Internal-Secret); reserved for /metrics and internal publish. Never printed." },
	{ "store.backend", CFG_ENUM, OFF(store_backend), 0, 0, "sqlite", store_backends, 0, NULL,
	  "The durable store: \"sqlite\" (one file, store.path, on this machine) or \"postgres\" (a PostgreSQL server, store.postgres; several hosts can share it: docs/SCALING.md)." },
	{ "store.postgres", CFG_STRING, OFF(store_postgres), 0, 2048, "", NULL, 1, NULL,
	  "With store.backend \"postgres\": the libpq connection string, keywords (\"host=db1 dbname=fcgi_sse user=fcgi_sse\") or a URI (postgresql://...). A password here is a secret like the others; libpq's PGPASSFILE works too." },
	{ "store.path", CFG_STRING, OFF(store_path), 1, 1024, "/var/lib/fcgi_sse/fcgi_sse.db", NULL, 0, check_nonempty,
	  "SQLite database file (created with its schema when absent; WAL mode, so its directory must be writable)." },
	{ "store.busy_timeout_ms", CFG_INT, OFF(store_busy_timeout_ms), 0, 60000, "5000", NULL, 0, NULL,
	  "How long a store call waits for a lock held by another connection or process." },
	{ "store.statement_timeout_ms", CFG_INT, OFF(store_statement_timeout_ms), 0, 600000, "5000", NULL, 0, NULL,
	  "A store call's statements are interrupted after this long, so a runaway query cannot hold a worker (the call fails, 503); 0: no limit. Waiting for a lock is store.busy_timeout_ms's, not this." },
	{ "redis.host", CFG_STRING, OFF(redis_host), 1, 256, "127.0.0.1", NULL, 0, check_nonempty,
	  "Redis server address, or \"unix:/path\" for a unix socket." },
	{ "redis.port", CFG_INT, OFF(redis_port), 1, 65535, "6379", NULL, 0, NULL,
	  "Redis TCP port." },
	{ "redis.password", CFG_STRING, OFF(redis_password), 0, 512, "", NULL, 1, NULL,
	  "Redis AUTH password; \"\" for none." },
	{ "redis.sentinels", CFG_STRING, OFF(redis_sentinels), 0, 1024, "", NULL, 0, check_sentinels,
	  "Redis Sentinel: \"host:port,host:port,...\" of the sentinels to ask for the master of redis.sentinel_master; redis.host and redis.port are then not used. A failover is followed without a restart; a publish is accepted only once a replica has it too (WAIT 1; docs/DEPLOY.md, Redis Sentinel). \"\": no sentinels, redis.host is the server." },
	{ "redis.sentinel_master", CFG_STRING, OFF(redis_sentinel_master), 1, 128, "fcgi_sse", NULL, 0, check_nonempty,
	  "The master's name the sentinels monitor (sentinel.conf's `sentinel monitor <name> ...`)." },
	{ "redis.sentinel_password", CFG_STRING, OFF(redis_sentinel_password), 0, 512, "", NULL, 1, NULL,
	  "AUTH password of the sentinels themselves (sentinel.conf's requirepass); \"\" for none. The master's is redis.password." },
	{ "redis.connect_timeout_ms", CFG_INT, OFF(redis_connect_timeout_ms), 1, 60000, "200", NULL, 0, NULL,
	  "Connect timeout of a Redis connection." },
	{ "redis.command_timeout_ms", CFG_INT, OFF(redis_command_timeout_ms), 1, 60000, "200", NULL, 0, NULL,
	  "Timeout of one Redis command; after a failure the thread backs off and requests go straight to the store." },
	{ "redis.backoff_max_ms", CFG_INT, OFF(redis_backoff_max_ms), 50, 600000, "5000", NULL, 0, NULL,
	  "Longest wait between reconnect attempts (doubling from 50 ms, with jitter)." },
	{ "cache.jitter_pct", CFG_INT, OFF(cache_jitter_pct), 0, 50, "10", NULL, 0, NULL,
	  "Spread of cache TTLs (±percent) so entries written together do not expire together." },
	{ "cache.negative_ttl_ms", CFG_INT, OFF(cache_negative_ttl_ms), 0, 600000, "5000", NULL, 0, NULL,
	  "How long a \"not found\" answer is cached." },
	{ "cache.device_ttl_s", CFG_INT, OFF(device_cache_ttl_s), 0, 3600, "45", NULL, 0, NULL,
	  "Upper bound of a device's time in the Redis cache (dev:{tenant}:{id}), spread by cache.jitter_pct; changes rewrite it at once. 0: devices are read from the store." },
	{ "cache.device_list_ttl_s", CFG_INT, OFF(device_list_cache_ttl_s), 0, 3600, "30", NULL, 0, NULL,
	  "Upper bound of the cached first page (default limit) and count of a tenant's devices per status filter (devl:{tenant}:...); every device change drops them. 0: lists and counts are read from the store." },
	{ "cache.telemetry_recent_ttl_s", CFG_INT, OFF(recent_cache_ttl_s), 0, 3600, "5", NULL, 0, NULL,
	  "Upper bound of the cached default page (limit 100) of GET /telemetry/recent per device (telr:{tenant}:{device}); a POST of points drops it. 0: read from the store." },
	{ "cache.profile_ttl_s", CFG_INT, OFF(profile_cache_ttl_s), 0, 3600, "60", NULL, 0, NULL,
	  "Upper bound of a user profile's time in the Redis cache (prof:{tenant}:{user}; no password hash), for /me and GET /users/{id}; a role change or a deletion drops it. 0: read from the store." },
	{ "cache.audit_first_page_ttl_s", CFG_INT, OFF(audit_cache_ttl_s), 0, 20, "0", NULL, 0, NULL,
	  "Cache the first page of GET /audit (default limit) per tenant for at most this long (audp:{tenant}); every audit write drops it. 0 (default): read from the store." },
	{ "telemetry.retention_s", CFG_INT, OFF(telemetry_retention_s), 0, 315360000, "604800", NULL, 0, NULL,
	  "Telemetry points older than this are deleted by the janitor (in small batches, every auth.session_purge_interval_s). 0: no age limit." },
	{ "telemetry.max_points_per_device", CFG_INT, OFF(telemetry_max_points), 0, 100000000, "100000", NULL, 0, NULL,
	  "The janitor keeps at most this many newest points per device (plus any sharing the oldest kept one's time). 0: no limit." },
	{ "auth.jwt_keys", CFG_STRING, OFF(jwt_keys), 0, 4096, "", NULL, 1, NULL,
	  "HS256 keys as \"kid:base64url-secret,...\" (each 32..128 bytes); the first signs, all verify, so keys rotate without logging anyone out. Empty: one random key per process start (tokens die with the process; not for several processes)." },
	{ "auth.issuer", CFG_STRING, OFF(jwt_issuer), 1, 128, "fcgi_sse", NULL, 0, check_nonempty,
	  "The `iss` claim issued and required." },
	{ "auth.audience", CFG_STRING, OFF(jwt_audience), 1, 128, "fcgi_sse-api", NULL, 0, check_nonempty,
	  "The `aud` claim issued and required." },
	{ "auth.token_ttl_s", CFG_INT, OFF(token_ttl_s), 30, 86400, "900", NULL, 0, NULL,
	  "Lifetime of an access token (`expires_in`)." },
	{ "auth.leeway_s", CFG_INT, OFF(token_leeway_s), 0, 300, "30", NULL, 0, NULL,
	  "Clock skew tolerated on exp, nbf and iat." },
	{ "auth.session_ttl_s", CFG_INT, OFF(session_ttl_s), 60, 2592000, "43200", NULL, 0, NULL,
	  "Lifetime of a login session; refresh issues tokens until it ends." },
	{ "auth.session_cache_ttl_s", CFG_INT, OFF(session_cache_ttl_s), 1, 86400, "1800", NULL, 0, NULL,
	  "Upper bound of a session's time in the Redis cache (sess:{id})." },
	{ "auth.pbkdf2_iterations", CFG_INT, OFF(pbkdf2_iterations), 1000, 10000000, "600000", NULL, 0, NULL,
	  "PBKDF2-HMAC-SHA256 iterations for new password hashes (OWASP 2023: 600000)." },
	{ "auth.session_purge_interval_s", CFG_INT, OFF(session_purge_interval_s), 1, 86400, "300", NULL, 0, NULL,
	  "How often ended sessions are deleted from the store (and their cache entries tombstoned)." },
	{ "auth.login_attempts_per_address", CFG_INT, OFF(login_attempts_per_address), 0, 1000000, "30", NULL, 0, NULL,
	  "Login attempts a client address may make per minute, shared by every process through Redis (429 rate.limited beyond). 0: unlimited." },
	{ "auth.login_failures_per_user", CFG_INT, OFF(login_failures_per_user), 0, 1000000, "10", NULL, 0, NULL,
	  "Failed logins a (tenant, username) may have per auth.login_failure_window_s; beyond, every attempt is refused with 429 before the password is checked, right or wrong. 0: unlimited." },
	{ "auth.login_failure_window_s", CFG_INT, OFF(login_failure_window_s), 1, 86400, "900", NULL, 0, NULL,
	  "The window of auth.login_failures_per_user: a locked-out user may try again after at most this long." },
	{ "auth.max_concurrent_hashes", CFG_INT, OFF(max_concurrent_hashes), 0, 1024, "0", NULL, 0, NULL,
	  "Password checks (PBKDF2, ~0.1 s of a core each) running at once in a process; a login beyond gets 503 server.busy with Retry-After instead of a core. 0: half the CPUs, at least 1." },
	{ "ratelimit.reads_per_min", CFG_INT, OFF(rl_reads_per_min), 0, 100000000, "60000", NULL, 0, NULL,
	  "GET and HEAD requests a tenant may make per minute and API version, shared by every process (a bucket of this many, refilled evenly; 429 rate.limited beyond). Requests without a valid token count per client address. 0: unlimited." },
	{ "ratelimit.writes_per_min", CFG_INT, OFF(rl_writes_per_min), 0, 100000000, "12000", NULL, 0, NULL,
	  "POST, PATCH, PUT and DELETE requests (other than publishing) a tenant may make per minute and API version. 0: unlimited." },
	{ "ratelimit.publish_per_min", CFG_INT, OFF(rl_publish_per_min), 0, 100000000, "600000", NULL, 0, NULL,
	  "Telemetry posts a tenant may make per minute (publishing with the internal secret is not limited). 0: unlimited." },
	{ "ratelimit.stream_opens_per_min", CFG_INT, OFF(rl_streams_per_min), 0, 100000000, "6000", NULL, 0, NULL,
	  "Stream sessions and streams a tenant may open per minute (per client address for stream opens, which carry no token). 0: unlimited." },
	{ "resilience.breaker_failures", CFG_INT, OFF(breaker_failures), 1, 64, "5", NULL, 0, NULL,
	  "Failures of a dependency within resilience.breaker_window_ms that open its circuit breaker: calls then fail at once (reads go to the store, as when Redis is down) instead of waiting on it." },
	{ "resilience.breaker_window_ms", CFG_INT, OFF(breaker_window_ms), 100, 3600000, "30000", NULL, 0, NULL,
	  "The window of resilience.breaker_failures." },
	{ "resilience.breaker_open_ms", CFG_INT, OFF(breaker_open_ms), 100, 3600000, "15000", NULL, 0, NULL,
	  "How long an open breaker fails calls before it lets trial calls through (half-open)." },
	{ "resilience.breaker_probes", CFG_INT, OFF(breaker_probes), 1, 64, "3", NULL, 0, NULL,
	  "Trial calls a half-open breaker lets through at once; the first success closes it, a failure opens it again." },
	{ "resilience.retries", CFG_INT, OFF(retries), 0, 2, "2", NULL, 0, NULL,
	  "Retries of an idempotent call after a transient failure: Redis reads, cache writes and deletes on a connection lost mid-command (not on a timeout), single-row store reads on a lock lost for a moment. Never store writes, publishes, rate-limit or quota scripts." },
	{ "resilience.retry_backoff_ms", CFG_INT, OFF(retry_backoff_ms), 1, 1000, "10", NULL, 0, NULL,
	  "The pause before the first retry is between half of this and this, at random; the second's is twice that." },
	{ "http.trusted_proxies", CFG_STRING, OFF(trusted_proxies), 0, 1024, "", NULL, 0, NULL,
	  "Comma-separated addresses of proxies in front of the web server: when REMOTE_ADDR is one of them, the client address for login limits is the last X-Forwarded-For entry that is not. Empty: REMOTE_ADDR is the client." },
};

#define N_ENTRIES (sizeof(entries) / sizeof(entries[0]))

static void *field(struct config *cfg, const struct config_entry *e)
{
	return (char *)cfg + e->offset;
}

static const void *cfield(const struct config *cfg, const struct config_entry *e)
{
	return (const char *)cfg + e->offset;
}

static const struct config_entry *entry_by_name(const char *name)
{
	for (size_t i = 0; i < N_ENTRIES; i++)
		if (strcmp(entries[i].name, name) == 0)
			return &entries[i];
	return NULL;
}

static int set_string(struct config *cfg, const struct config_entry *e,
		      const char *v, const char *src, struct buf *err)
{
	const char *why = NULL;
	char **slot = field(cfg, e);
	char *copy;

	if ((long long)strlen(v) > e->max) {
		buf_printf(err, "%s%s: longer than %lld characters", src, e->name, e->max);
		return -1;
	}
	if (e->check != NULL && e->check(v, &why) < 0) {
		if (e->secret)
			buf_printf(err, "%s%s: %s", src, e->name, why);
		else
			buf_printf(err, "%s%s: \"%s\" %s", src, e->name, v, why);
		return -1;
	}
	if ((copy = strdup(v)) == NULL) {
		buf_puts(err, "out of memory");
		return -1;
	}
	free(*slot);
	*slot = copy;
	return 0;
}

static int set_int(struct config *cfg, const struct config_entry *e,
		   long long v, const char *src, struct buf *err)
{
	if (v < e->min || v > e->max) {
		buf_printf(err, "%s%s: %lld is out of range (%lld..%lld)", src,
			   e->name, v, e->min, e->max);
		return -1;
	}
	*(long long *)field(cfg, e) = v;
	return 0;
}

static int set_time(struct config *cfg, const struct config_entry *e,
		    const char *v, const char *src, struct buf *err)
{
	time_t t;

	if (timefmt_parse_rfc3339(v, &t) < 0) {
		buf_printf(err, "%s%s: \"%s\" is not an RFC 3339 date-time "
			   "(like 2027-06-30T00:00:00Z)", src, e->name, v);
		return -1;
	}
	*(time_t *)field(cfg, e) = t;
	return 0;
}

static int set_enum(struct config *cfg, const struct config_entry *e,
		    const char *v, const char *src, struct buf *err)
{
	for (int i = 0; e->choices[i] != NULL; i++) {
		if (strcmp(e->choices[i], v) == 0) {
			*(int *)field(cfg, e) = i;
			return 0;
		}
	}
	buf_printf(err, "%s%s: \"%s\" is not one of", src, e->name, v);
	for (int i = 0; e->choices[i] != NULL; i++)
		buf_printf(err, "%s %s", i ? "," : "", e->choices[i]);
	return -1;
}

/* Sets an entry from its textual form (defaults and environment). */
static int set_from_text(struct config *cfg, const struct config_entry *e,
			 const char *v, const char *src, struct buf *err)
{
	char *end;
	long long n;

	switch (e->type) {
	case CFG_INT:
		errno = 0;
		n = strtoll(v, &end, 10);
		if (*v == '\0' || *end != '\0' || errno == ERANGE || isspace((unsigned char)*v)) {
			buf_printf(err, "%s%s: expected an integer, got \"%s\"", src, e->name, v);
			return -1;
		}
		return set_int(cfg, e, n, src, err);
	case CFG_STRING:
		return set_string(cfg, e, v, src, err);
	case CFG_TIME:
		return set_time(cfg, e, v, src, err);
	case CFG_ENUM:
		return set_enum(cfg, e, v, src, err);
	}
	return -1;
}

int config_init_defaults(struct config *cfg)
{
	struct buf err = BUF_INIT;
	int rc = 0;

	memset(cfg, 0, sizeof(*cfg));
	for (size_t i = 0; i < N_ENTRIES && rc == 0; i++)
		rc = set_from_text(cfg, &entries[i], entries[i].def, "default ", &err);
	buf_release(&err);
	return rc;
}

static const char *json_type_label(struct json_object *v)
{
	switch (json_object_get_type(v)) {
	case json_type_null: return "null";
	case json_type_boolean: return "a boolean";
	case json_type_double: return "a number with a fraction";
	case json_type_int: return "an integer";
	case json_type_object: return "an object";
	case json_type_array: return "an array";
	case json_type_string: return "a string";
	}
	return "something else";
}

static const char *type_label(enum config_type t)
{
	switch (t) {
	case CFG_INT: return "an integer";
	case CFG_STRING: return "a string";
	case CFG_TIME: return "an RFC 3339 date-time string";
	case CFG_ENUM: return "a string";
	}
	return "?";
}

static int apply_json_value(struct config *cfg, const struct config_entry *e,
			    struct json_object *v, const char *src, struct buf *err)
{
	enum json_type want = e->type == CFG_INT ? json_type_int : json_type_string;

	if (json_object_get_type(v) != want) {
		buf_printf(err, "%s%s: expected %s, got %s", src, e->name,
			   type_label(e->type), json_type_label(v));
		return -1;
	}
	if (e->type == CFG_INT) {
		errno = 0;
		long long n = json_object_get_int64(v);
		if (errno == ERANGE || n == INT64_MAX || n == INT64_MIN) {
			buf_printf(err, "%s%s: integer out of range (%lld..%lld)",
				   src, e->name, e->min, e->max);
			return -1;
		}
		return set_int(cfg, e, n, src, err);
	}
	/* "\u0000" in a JSON string: as a C string the value would be cut
	 * there, silently (a password or a key shorter than written) */
	if (strlen(json_object_get_string(v)) != (size_t)json_object_get_string_len(v)) {
		buf_printf(err, "%s%s: must not contain \\u0000", src, e->name);
		return -1;
	}
	return set_from_text(cfg, e, json_object_get_string(v), src, err);
}

static int apply_section(struct config *cfg, const char *section,
			 struct json_object *obj, const char *src, struct buf *err)
{
	char name[128];

	json_object_object_foreach(obj, key, val) {
		const struct config_entry *e;

		snprintf(name, sizeof(name), "%s.%s", section, key);
		if ((e = entry_by_name(name)) == NULL) {
			buf_printf(err, "%sunknown key \"%s\"", src, name);
			return -1;
		}
		if (apply_json_value(cfg, e, val, src, err) < 0)
			return -1;
	}
	return 0;
}

static int section_exists(const char *section)
{
	size_t n = strlen(section);

	for (size_t i = 0; i < N_ENTRIES; i++)
		if (strncmp(entries[i].name, section, n) == 0 && entries[i].name[n] == '.')
			return 1;
	return 0;
}

static int apply_json(struct config *cfg, struct json_object *root,
		      const char *src, struct buf *err)
{
	if (!json_object_is_type(root, json_type_object)) {
		buf_printf(err, "%sexpected a JSON object at the top level", src);
		return -1;
	}
	json_object_object_foreach(root, section, obj) {
		if (!section_exists(section)) {
			buf_printf(err, "%sunknown section \"%s\"", src, section);
			return -1;
		}
		if (!json_object_is_type(obj, json_type_object)) {
			buf_printf(err, "%s%s: expected an object of keys, got %s",
				   src, section, json_type_label(obj));
			return -1;
		}
		if (apply_section(cfg, section, obj, src, err) < 0)
			return -1;
	}
	return 0;
}

static int read_file(const char *path, struct buf *out, struct buf *err)
{
	FILE *f = fopen(path, "rb");
	char chunk[8192];
	size_t n;
	int rc = 0;

	if (f == NULL) {
		buf_printf(err, "%s: cannot open: %s", path, strerror(errno));
		return -1;
	}
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
		if (out->len + n > CONFIG_FILE_MAX) {
			buf_printf(err, "%s: larger than %d bytes", path, CONFIG_FILE_MAX);
			rc = -1;
			break;
		}
		buf_append(out, chunk, n);
	}
	if (rc == 0 && ferror(f)) {
		buf_printf(err, "%s: read error: %s", path, strerror(errno));
		rc = -1;
	}
	fclose(f);
	if (rc == 0 && out->oom) {
		buf_puts(err, "out of memory");
		rc = -1;
	}
	return rc;
}

int config_load_file(struct config *cfg, const char *path, struct buf *err)
{
	struct buf text = BUF_INIT, src = BUF_INIT;
	struct json_tokener *tok = NULL;
	struct json_object *root = NULL;
	int rc = -1;

	if (read_file(path, &text, err) < 0)
		goto out;
	buf_printf(&src, "%s: ", path);
	if ((tok = json_tokener_new()) == NULL) {
		buf_puts(err, "out of memory");
		goto out;
	}
	root = json_tokener_parse_ex(tok, buf_str(&text), (int)text.len);
	if (root == NULL || tok->char_offset < (int)text.len) {
		enum json_tokener_error jerr = json_tokener_get_error(tok);
		if (root != NULL || jerr == json_tokener_continue)
			buf_printf(err, "%sinvalid JSON: %s near byte %d", buf_str(&src),
				   root != NULL ? "trailing data" : "unexpected end of input",
				   (int)tok->char_offset);
		else
			buf_printf(err, "%sinvalid JSON: %s near byte %d", buf_str(&src),
				   json_tokener_error_desc(jerr), (int)tok->char_offset);
		goto out;
	}
	rc = apply_json(cfg, root, buf_str(&src), err);
out:
	if (root != NULL)
		json_object_put(root);
	if (tok != NULL)
		json_tokener_free(tok);
	buf_release(&text);
	buf_release(&src);
	return rc;
}

/* Writes the variable name of e ("FCGI_SSE_SERVER_WORKERS") into out. */
static void env_name(const struct config_entry *e, char *out, size_t n)
{
	size_t i = snprintf(out, n, "%s", ENV_PREFIX);

	for (const char *p = e->name; *p && i + 1 < n; p++)
		out[i++] = *p == '.' ? '_' : (char)toupper((unsigned char)*p);
	out[i] = '\0';
}

static const struct config_entry *entry_by_env(const char *var, size_t len)
{
	char name[128];

	for (size_t i = 0; i < N_ENTRIES; i++) {
		env_name(&entries[i], name, sizeof(name));
		if (strlen(name) == len && strncmp(name, var, len) == 0)
			return &entries[i];
	}
	return NULL;
}

int config_load_env(struct config *cfg, char *const *envp, struct buf *err)
{
	const size_t plen = strlen(ENV_PREFIX);

	for (; envp != NULL && *envp != NULL; envp++) {
		const char *kv = *envp, *eq = strchr(kv, '=');
		const struct config_entry *e;
		char src[160];
		size_t klen;

		if (eq == NULL || strncmp(kv, ENV_PREFIX, plen) != 0)
			continue;
		klen = (size_t)(eq - kv);
		if (klen == strlen(CONFIG_FILE_ENV) && strncmp(kv, CONFIG_FILE_ENV, klen) == 0)
			continue;
		if ((e = entry_by_env(kv, klen)) == NULL) {
			buf_printf(err, "environment: unknown variable %.*s", (int)klen, kv);
			return -1;
		}
		snprintf(src, sizeof(src), "environment %.*s: ", (int)klen, kv);
		if (set_from_text(cfg, e, eq + 1, src, err) < 0)
			return -1;
	}
	return 0;
}

int config_validate(const struct config *cfg, struct buf *err)
{
	if (cfg->v1_sunset <= cfg->v1_deprecation) {
		buf_puts(err, "api.v1_sunset must be later than api.v1_deprecation");
		return -1;
	}
	if (cfg->store_backend == STORE_BACKEND_POSTGRES && cfg->store_postgres[0] == '\0') {
		buf_puts(err, "store.backend \"postgres\" needs store.postgres (a libpq connection string)");
		return -1;
	}
	return 0;
}

static struct json_object *value_json(const struct config *cfg,
				      const struct config_entry *e)
{
	char when[TIMEFMT_RFC3339_LEN + 1];
	const char *s;

	switch (e->type) {
	case CFG_INT:
		return json_object_new_int64(*(const long long *)cfield(cfg, e));
	case CFG_STRING:
		s = *(char *const *)cfield(cfg, e);
		if (e->secret && s != NULL && *s != '\0')
			s = "<redacted>";
		return json_object_new_string(s ? s : "");
	case CFG_TIME:
		return json_object_new_string(
			timefmt_rfc3339(*(const time_t *)cfield(cfg, e), when));
	case CFG_ENUM:
		return json_object_new_string(e->choices[*(const int *)cfield(cfg, e)]);
	}
	return NULL;
}

int config_dump(const struct config *cfg, struct buf *out)
{
	struct json_object *root = json_object_new_object();
	int rc;

	if (root == NULL)
		return -1;
	for (size_t i = 0; i < N_ENTRIES; i++) {
		const struct config_entry *e = &entries[i];
		const char *dot = strchr(e->name, '.');
		char section[64];
		struct json_object *sec;

		snprintf(section, sizeof(section), "%.*s", (int)(dot - e->name), e->name);
		if (!json_object_object_get_ex(root, section, &sec)) {
			sec = json_object_new_object();
			json_object_object_add(root, section, sec);
		}
		json_object_object_add(sec, dot + 1, value_json(cfg, e));
	}
	rc = buf_puts(out, json_object_to_json_string_ext(
				   root, JSON_C_TO_STRING_PRETTY |
						 JSON_C_TO_STRING_SPACED |
						 JSON_C_TO_STRING_NOSLASHESCAPE));
	buf_puts(out, "\n");
	json_object_put(root);
	return rc < 0 || out->oom ? -1 : 0;
}

int config_describe(struct buf *out)
{
	char env[128];

	buf_puts(out, "| key | environment | type | default | range | meaning |\n"
		      "|---|---|---|---|---|---|\n");
	for (size_t i = 0; i < N_ENTRIES; i++) {
		const struct config_entry *e = &entries[i];
		env_name(e, env, sizeof(env));
		buf_printf(out, "| `%s` | `%s` | %s | `%s` | ", e->name, env,
			   e->type == CFG_INT ? "integer" :
			   e->type == CFG_TIME ? "RFC 3339 time" :
			   e->type == CFG_ENUM ? "enum" : "string",
			   *e->def ? e->def : "\"\"");
		if (e->type == CFG_INT)
			buf_printf(out, "%lld..%lld", e->min, e->max);
		else if (e->type == CFG_STRING)
			buf_printf(out, "≤ %lld chars", e->max);
		else if (e->type == CFG_ENUM)
			for (int c = 0; e->choices[c] != NULL; c++)
				buf_printf(out, "%s`%s`", c ? ", " : "", e->choices[c]);
		buf_printf(out, " | %s%s |\n", e->help, e->secret ? " (secret)" : "");
	}
	return out->oom ? -1 : 0;
}

void config_release(struct config *cfg)
{
	for (size_t i = 0; i < N_ENTRIES; i++) {
		if (entries[i].type == CFG_STRING) {
			char **slot = field(cfg, &entries[i]);
			free(*slot);
			*slot = NULL;
		}
	}
}

const char *config_log_level_name(int level)
{
	if (level < 0 || level > LOG_ERROR)
		return "info";
	return log_levels[level];
}
