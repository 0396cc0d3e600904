/* fcgi_sse: process start-up, signals and shutdown. The composition root:
 * it reads the config, creates each service once and passes it in by
 * pointer. Only this file prints usage errors or decides to exit. */
#include <errno.h>
#include <json-c/json.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "admin/admin.h"
#include "api/api.h"
#include "auth/jwt.h"
#include "auth/password.h"
#include "cache/cache.h"
#include "core/config.h"
#include "core/lifecycle.h"
#include "core/listen.h"
#include "core/log.h"
#include "core/server.h"
#include "redis/redis.h"
#include "redis/redis_kv.h"
#include "protect/breaker.h"
#include "protect/quota.h"
#include "protect/ratelimit.h"
#include "sse/counts.h"
#include "session/sessions.h"
#include "sse/hub.h"
#include "store/store.h"

#ifndef FCGI_SSE_VERSION
#define FCGI_SSE_VERSION "0.0.0-dev"
#endif
#ifndef BUILD_COMMIT
#define BUILD_COMMIT "unknown"
#endif
#ifndef BUILD_EPOCH
#define BUILD_EPOCH 0
#endif

/* sysexits.h values, spelled out so the meaning is visible here */
#define EXIT_USAGE 64
#define EXIT_SOFTWARE 70
#define EXIT_OSERR 71
#define EXIT_IOERR 74
#define EXIT_CONFIG 78

/* Sessions revoked longer ago than this are purged (their tokens expired). */
#define KEEP_REVOKED_S 86400

extern char **environ;

struct options {
	const char *config_path;
	const char *listen;
	int check_config;
	int describe_config;
	int admin_argc;     /* > 0: run `admin` with these arguments */
	char **admin_argv;
};

/* Every long-lived service, created once here and passed by pointer. */
struct services {
	struct store *store;
	struct redis *redis;        /* the request path's: caches, limits, quotas */
	struct redis *bus;          /* publishing events, reading their history */
	struct cache *session_cache;
	struct cache *device_cache; /* NULL when cache.device_ttl_s is 0 */
	struct cache *view_cache;   /* NULL when cache.device_list_ttl_s is 0 */
	struct cache *recent_cache; /* NULL when cache.telemetry_recent_ttl_s is 0 */
	struct cache *profile_cache; /* NULL when cache.profile_ttl_s is 0 */
	struct cache *audit_cache;  /* NULL unless cache.audit_first_page_ttl_s > 0 */
	struct sessions *sessions;
	struct jwt_keyring *keys;
	struct ratelimit *limiter;
	struct quota *quota;
	struct breaker *redis_breaker, *bus_breaker, *store_reads_breaker, *store_writes_breaker;
	int ephemeral_keys;
};

static void usage(FILE *to)
{
	fputs("usage: fcgi_sse [--config FILE] [--listen unix:/path|HOST:PORT]\n"
	      "       fcgi_sse --check-config [--config FILE]\n"
	      "       fcgi_sse --describe-config | --version | --help\n"
	      "       fcgi_sse admin [--config FILE] COMMAND ... (fcgi_sse admin --help)\n"
	      "\n"
	      "Without --listen (or server.listen) the FastCGI listening socket is\n"
	      "expected on fd 0, as mod_fcgid, lighttpd bin-path and spawn-fcgi pass it.\n"
	      "The config file may also be named by FCGI_SSE_CONFIG; every key can be\n"
	      "overridden by FCGI_SSE_<SECTION>_<KEY> (see docs/CONFIG.md).\n",
	      to);
}

/* `fcgi_sse admin ...`: takes --config out, keeps the rest for admin_run
 * (argv is reordered in place). */
static int parse_admin_args(int argc, char **argv, struct options *o)
{
	int n = 0;

	for (int i = 2; i < argc; i++) {
		if (strcmp(argv[i], "--config") == 0 && i + 1 < argc)
			o->config_path = argv[++i];
		else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
			return admin_usage(stdout), 1;
		else
			argv[2 + n++] = argv[i];
	}
	if (n == 0) {
		admin_usage(stderr);
		return -1;
	}
	o->admin_argc = n;
	o->admin_argv = argv + 2;
	return 0;
}

/* Returns 0, 1 when the process should exit 0 now, or -1 on a usage error. */
static int parse_args(int argc, char **argv, struct options *o)
{
	memset(o, 0, sizeof(*o));
	if (argc > 1 && strcmp(argv[1], "admin") == 0)
		return parse_admin_args(argc, argv, o);
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if ((strcmp(a, "--config") == 0 || strcmp(a, "--listen") == 0) && i + 1 < argc) {
			if (a[2] == 'c')
				o->config_path = argv[++i];
			else
				o->listen = argv[++i];
		} else if (strcmp(a, "--check-config") == 0) {
			o->check_config = 1;
		} else if (strcmp(a, "--describe-config") == 0) {
			o->describe_config = 1;
		} else if (strcmp(a, "--version") == 0) {
			printf("fcgi_sse %s (%s)\n", FCGI_SSE_VERSION, BUILD_COMMIT);
			return 1;
		} else if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
			usage(stdout);
			return 1;
		} else {
			fprintf(stderr, "fcgi_sse: unknown or incomplete option '%s'\n", a);
			usage(stderr);
			return -1;
		}
	}
	return 0;
}

/* Builds the effective configuration. Returns 0, or -1 with a message. */
static int load_config(const struct options *o, struct config *cfg, struct buf *err)
{
	const char *path = o->config_path ? o->config_path : getenv(CONFIG_FILE_ENV);

	if (config_init_defaults(cfg) < 0) {
		buf_puts(err, "out of memory");
		return -1;
	}
	if (path != NULL && *path != '\0' && config_load_file(cfg, path, err) < 0)
		return -1;
	if (config_load_env(cfg, environ, err) < 0)
		return -1;
	if (o->listen != NULL) {
		struct listen_addr a;
		if (listen_parse(o->listen, &a) < 0) {
			buf_printf(err, "--listen: \"%s\" is not \"unix:/path\", \"HOST:PORT\" "
				   "or \"[IPv6]:PORT\"", o->listen);
			return -1;
		}
		free(cfg->listen);
		if ((cfg->listen = strdup(o->listen)) == NULL) {
			buf_puts(err, "out of memory");
			return -1;
		}
	}
	return config_validate(cfg, err);
}

/* Returns the listening fd, or -1 with a message. */
static int open_listener(const struct config *cfg, struct buf *err)
{
	struct listen_addr a;

	if (*cfg->listen == '\0') {
		if (!listen_fd_is_listening(0)) {
			buf_puts(err, "no listening socket: fd 0 is not one (start fcgi_sse from "
				      "a FastCGI process manager, or pass --listen)");
			return -1;
		}
		return 0;
	}
	if (listen_parse(cfg->listen, &a) < 0) {
		buf_printf(err, "server.listen: cannot parse \"%s\"", cfg->listen);
		return -1;
	}
	return listen_open(&a, (int)cfg->backlog, err);
}

static struct redis_opts redis_opts_of(const struct config *cfg)
{
	return (struct redis_opts){
		cfg->redis_host, (int)cfg->redis_port, cfg->redis_password,
		cfg->redis_connect_timeout_ms, cfg->redis_command_timeout_ms, cfg->redis_backoff_max_ms,
		(int)cfg->retries, cfg->retry_backoff_ms,
		cfg->redis_sentinels, cfg->redis_sentinel_master, cfg->redis_sentinel_password,
	};
}

static struct redis *open_redis(const struct config *cfg)
{
	const struct redis_opts ro = redis_opts_of(cfg);

	return redis_new(&ro);
}

static struct cache *open_session_cache(const struct config *cfg, struct redis *r)
{
	const struct cache_opts co = { "sess:", cfg->session_cache_ttl_s * 1000,
				       (int)cfg->cache_jitter_pct, cfg->cache_negative_ttl_ms };
	struct cache_kv kv;

	redis_kv(r, &kv);
	return cache_new(&kv, &co);
}

/* Parses the configured keys, or makes a random one. Returns 0, or an exit
 * status with a message in err. */
static int open_keys(const struct config *cfg, struct services *svc, struct buf *err)
{
	if (*cfg->jwt_keys == '\0') {
		svc->ephemeral_keys = 1;
		svc->keys = jwt_keyring_random("ephemeral");
		if (svc->keys == NULL)
			buf_puts(err, "cannot create a random signing key");
		return svc->keys ? 0 : EXIT_OSERR;
	}
	svc->keys = jwt_keyring_parse(cfg->jwt_keys, err);
	if (svc->keys == NULL) {
		struct buf msg = BUF_INIT;
		buf_printf(&msg, "config error: auth.jwt_keys: %s", buf_str(err));
		buf_reset(err);
		buf_puts(err, buf_str(&msg));
		buf_release(&msg);
		return EXIT_CONFIG;
	}
	return 0;
}

static struct cache *open_cache(const struct config *cfg, struct redis *r, const char *prefix,
			       long long ttl_s)
{
	const struct cache_opts co = { prefix, ttl_s * 1000, (int)cfg->cache_jitter_pct,
				       cfg->cache_negative_ttl_ms };
	struct cache_kv kv;

	redis_kv(r, &kv);
	return cache_new(&kv, &co);
}

/* Keys the per-process fallback of the rate limits holds while Redis is
 * unreachable (16 bytes each). */
#define LIMIT_LOCAL_SLOTS 65536

static struct breaker *open_breaker(const struct config *cfg)
{
	const struct breaker_opts o = { (int)cfg->breaker_failures, cfg->breaker_window_ms,
					cfg->breaker_open_ms, (int)cfg->breaker_probes };

	return breaker_new(&o);
}

/* auth.max_concurrent_hashes, or half the CPUs (at least one). */
static int hash_cap(const struct config *cfg)
{
	long n;

	if (cfg->max_concurrent_hashes > 0)
		return (int)cfg->max_concurrent_hashes;
	n = sysconf(_SC_NPROCESSORS_ONLN) / 2;
	return n >= 1 ? (int)n : 1;
}

static void services_close(struct services *svc)
{
	sessions_free(svc->sessions);
	ratelimit_free(svc->limiter);
	quota_free(svc->quota);
	breaker_free(svc->redis_breaker);
	breaker_free(svc->bus_breaker);
	breaker_free(svc->store_reads_breaker);
	breaker_free(svc->store_writes_breaker);
	cache_free(svc->session_cache);
	cache_free(svc->device_cache);
	cache_free(svc->view_cache);
	cache_free(svc->recent_cache);
	cache_free(svc->profile_cache);
	cache_free(svc->audit_cache);
	redis_free(svc->redis);
	redis_free(svc->bus);
	jwt_keyring_free(svc->keys);
	if (svc->store != NULL)
		store_close(svc->store);
	memset(svc, 0, sizeof(*svc));
}

/* Opens the store and, unless store_only, everything else. Returns 0, or an
 * exit status with a message in err. */
static int services_open(const struct config *cfg, struct services *svc, int store_only,
			 struct buf *err)
{
	int rc;

	memset(svc, 0, sizeof(*svc));
	if (cfg->store_backend == STORE_BACKEND_POSTGRES)
		svc->store = store_open_postgres(cfg->store_postgres, err);
	else
		svc->store = store_open_sqlite(cfg->store_path, (int)cfg->store_busy_timeout_ms, err);
	if (svc->store == NULL)
		return EXIT_IOERR;
	if (store_only)
		return 0;
	if ((rc = open_keys(cfg, svc, err)) != 0)
		goto fail;
	rc = EXIT_OSERR;
	if ((svc->store_reads_breaker = open_breaker(cfg)) == NULL ||
	    (svc->store_writes_breaker = open_breaker(cfg)) == NULL ||
	    (svc->redis = open_redis(cfg)) == NULL ||
	    (svc->redis_breaker = open_breaker(cfg)) == NULL ||
	    (svc->bus = open_redis(cfg)) == NULL ||
	    (svc->bus_breaker = open_breaker(cfg)) == NULL ||
	    (svc->session_cache = open_session_cache(cfg, svc->redis)) == NULL ||
	    (cfg->device_cache_ttl_s > 0 &&
	     (svc->device_cache = open_cache(cfg, svc->redis, "dev:", cfg->device_cache_ttl_s)) == NULL) ||
	    (cfg->device_list_cache_ttl_s > 0 &&
	     (svc->view_cache = open_cache(cfg, svc->redis, "devl:", cfg->device_list_cache_ttl_s)) == NULL) ||
	    (cfg->recent_cache_ttl_s > 0 &&
	     (svc->recent_cache = open_cache(cfg, svc->redis, "telr:", cfg->recent_cache_ttl_s)) == NULL) ||
	    (cfg->profile_cache_ttl_s > 0 &&
	     (svc->profile_cache = open_cache(cfg, svc->redis, "prof:", cfg->profile_cache_ttl_s)) == NULL) ||
	    (cfg->audit_cache_ttl_s > 0 &&
	     (svc->audit_cache = open_cache(cfg, svc->redis, "audp:", cfg->audit_cache_ttl_s)) == NULL) ||
	    (svc->limiter = ratelimit_new(svc->redis, LIMIT_LOCAL_SLOTS)) == NULL ||
	    (svc->quota = quota_new(svc->redis, cfg->stream_quota_lease_ms)) == NULL ||
	    (svc->sessions = sessions_new(svc->store, svc->session_cache, cfg->session_ttl_s,
					  cfg->session_cache_ttl_s * 1000)) == NULL) {
		buf_puts(err, "out of memory");
		goto fail;
	}
	redis_set_breaker(svc->redis, svc->redis_breaker);
	redis_set_breaker(svc->bus, svc->bus_breaker);
	store_set_guard(svc->store, &(struct store_guard){
		svc->store_reads_breaker, svc->store_writes_breaker, (int)cfg->retries,
		cfg->retry_backoff_ms, cfg->store_statement_timeout_ms });
	return 0;
fail:
	services_close(svc);
	return rc;
}

/* The janitor: every second, publishes what the outbox still holds (events
 * the bus refused at commit time); every interval, purges ended sessions
 * and telemetry past its retention; until stop. */
#define OUTBOX_TICK_MS 1000
#define OUTBOX_AGE_S 2 /* younger events are still being published by their request */

struct janitor {
	const struct logger *log;
	struct lifecycle *lc;
	struct sessions *sessions;
	struct store *store;
	struct api_env *env;
	long long interval_s;
	pthread_t thread;
};

static void purge_telemetry(struct janitor *j)
{
	const struct config *cfg = j->env->cfg;
	long long deleted = 0, before = 0;

	if (cfg->telemetry_retention_s > 0)
		before = ((long long)time(NULL) - cfg->telemetry_retention_s) * 1000;
	if (store_telemetry_purge(j->store, before, cfg->telemetry_max_points, &deleted) != STORE_OK)
		log_text(j->log, LOG_WARN, "telemetry_purge_failed", store_errstr(j->store));
	else if (deleted > 0 && log_enabled(j->log, LOG_INFO)) {
		struct json_object *f = json_object_new_object();
		json_object_object_add(f, "deleted", json_object_new_int64(deleted));
		log_json(j->log, LOG_INFO, "telemetry_purge", f);
	}
}

/* This process's open streams per tenant and user, to Redis, with its
 * liveness: every tick, so that a closed stream frees its quota within
 * about a second and a killed process's within sse.stream_quota_lease_ms. */
static void sync_quotas(struct janitor *j)
{
	struct count_entry *e;
	size_t n;

	if (j->env->quota == NULL || counts_snapshot(hub_counts(j->env->hub), &e, &n) < 0)
		return;
	quota_sync(j->env->quota, e, n);
	free(e);
}

static void *janitor_main(void *arg)
{
	struct janitor *j = arg;
	long long next_purge = (long long)time(NULL) + j->interval_s;
	int n;

	while (lifecycle_wait(j->lc, -1, OUTBOX_TICK_MS) == LIFECYCLE_TIMEOUT) {
		sync_quotas(j);
		if ((n = api_outbox_drain(j->env, (long long)time(NULL) - OUTBOX_AGE_S)) < 0)
			log_text(j->log, LOG_WARN, "outbox_drain_failed", store_errstr(j->store));
		else if (n > 0)
			log_text(j->log, LOG_INFO, "outbox_drained", "late events published");
		if ((long long)time(NULL) < next_purge)
			continue;
		next_purge = (long long)time(NULL) + j->interval_s;
		purge_telemetry(j);
		if (store_stream_session_purge(j->store, (long long)time(NULL)) != STORE_OK)
			log_text(j->log, LOG_WARN, "stream_session_purge_failed", store_errstr(j->store));
		if (sessions_purge(j->sessions, (long long)time(NULL), KEEP_REVOKED_S, &n) < 0) {
			log_text(j->log, LOG_WARN, "session_purge_failed", "store unavailable");
		} else if (n > 0 && log_enabled(j->log, LOG_INFO)) {
			struct json_object *f = json_object_new_object();
			json_object_object_add(f, "purged", json_object_new_int(n));
			log_json(j->log, LOG_INFO, "session_purge", f);
		}
	}
	return NULL;
}

/* Each open stream holds a file descriptor: lift the soft limit to the
 * hard one (sse.max_streams plus room for everything else). Returns the
 * limit in force. */
static long long raise_fd_limit(const struct config *cfg)
{
	struct rlimit rl;
	rlim_t want = (rlim_t)cfg->max_streams + 1024;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
		return -1;
	if (rl.rlim_cur < want) {
		rl.rlim_cur = rl.rlim_max == RLIM_INFINITY || rl.rlim_max > want ? want : rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
		getrlimit(RLIMIT_NOFILE, &rl);
	}
	return (long long)rl.rlim_cur;
}

static void log_startup(const struct logger *lg, const struct config *cfg, long long fds)
{
	struct json_object *f = json_object_new_object();

	json_object_object_add(f, "version", json_object_new_string(FCGI_SSE_VERSION));
	json_object_object_add(f, "commit", json_object_new_string(BUILD_COMMIT));
	json_object_object_add(f, "pid", json_object_new_int((int)getpid()));
	json_object_object_add(f, "listen", json_object_new_string(
						    *cfg->listen ? cfg->listen : "fd:0"));
	json_object_object_add(f, "workers", json_object_new_int64(cfg->workers));
	json_object_object_add(f, "store", json_object_new_string(cfg->store_path));
	json_object_object_add(f, "fd_limit", json_object_new_int64(fds));
	log_json(lg, LOG_INFO, "startup", f);
	if (fds >= 0 && fds < cfg->max_streams + 64)
		log_text(lg, LOG_WARN, "fd_limit_low",
			 "the open-file limit is below sse.max_streams: new streams will fail before it");
}

/* Blocks the shutdown signals in this thread and every thread started
 * after, so that only sigwait below receives them. */
static void block_signals(sigset_t *set)
{
	sigemptyset(set);
	sigaddset(set, SIGTERM); /* mod_fcgid, lighttpd, systemd, supervisord */
	sigaddset(set, SIGINT);  /* Ctrl-C */
	sigaddset(set, SIGHUP);  /* terminal gone */
	sigaddset(set, SIGUSR1); /* libfcgi's own graceful-stop signal */
	pthread_sigmask(SIG_BLOCK, set, NULL);
	signal(SIGPIPE, SIG_IGN); /* a gone client is a write error, not a death */
}

static int wait_for_signal(const sigset_t *set)
{
	int sig;

	while (sigwait(set, &sig) != 0)
		;
	return sig;
}

/* Stops what run started, in reverse order. Returns the number of requests
 * abandoned by the server. */
static int shut_down(const struct logger *lg, struct lifecycle *lc, struct server *srv,
		     struct hub *hub, struct janitor *jan, const struct config *cfg)
{
	struct json_object *f;
	struct hub_stats hs;
	int busy;

	lifecycle_stop(lc);
	hub_stop(hub, cfg->shutdown_grace_ms); /* every stream gets event: shutdown */
	busy = server_stop(srv, cfg->shutdown_timeout_ms);
	pthread_join(jan->thread, NULL);
	hub_get_stats(hub, &hs);
	f = json_object_new_object();
	json_object_object_add(f, "clean", json_object_new_boolean(busy == 0));
	json_object_object_add(f, "abandoned_requests", json_object_new_int(busy));
	json_object_object_add(f, "streams_opened", json_object_new_int64(hs.opened));
	json_object_object_add(f, "events_published", json_object_new_int64(hs.published));
	json_object_object_add(f, "events_delivered", json_object_new_int64(hs.delivered));
	json_object_object_add(f, "events_replayed", json_object_new_int64(hs.replayed));
	json_object_object_add(f, "streams_dropped_slow", json_object_new_int64(hs.dropped_slow));
	log_json(lg, busy ? LOG_WARN : LOG_INFO, "shutdown", f);
	return busy;
}

static struct hub *open_hub(const struct config *cfg, const struct logger *lg, struct buf *err)
{
	const struct redis_opts ro = redis_opts_of(cfg);
	const struct hub_opts ho = {
		cfg->heartbeat_interval_ms, cfg->max_lifetime_ms, (int)cfg->lifetime_jitter_pct,
		(size_t)cfg->max_buffer_bytes, (int)cfg->max_streams, lg, &ro,
		cfg->history_max_len, cfg->history_max_age_s * 1000, cfg->peer_check_ms,
	};

	return hub_start(&ho, err);
}

static void log_signal(const struct logger *lg, int sig, struct hub *hub)
{
	struct json_object *f = json_object_new_object();
	struct hub_stats hs;

	hub_get_stats(hub, &hs);
	json_object_object_add(f, "signal", json_object_new_string(strsignal(sig)));
	json_object_object_add(f, "streams_open", json_object_new_int64(hs.open));
	log_json(lg, LOG_INFO, "shutdown_begin", f);
}

static int serve(const struct config *cfg, const struct logger *lg, struct services *svc,
		 int listen_fd, const sigset_t *sigs)
{
	const struct build_info build = { FCGI_SSE_VERSION, BUILD_COMMIT, (time_t)BUILD_EPOCH };
	struct lifecycle lc;
	struct api_env env;
	struct server_opts so;
	struct server *srv;
	struct janitor jan;
	struct hub *hub;
	struct buf err = BUF_INIT;
	long long fds;
	int busy;

	if (lifecycle_init(&lc) < 0)
		return EXIT_OSERR;
	if ((hub = open_hub(cfg, lg, &err)) == NULL) {
		log_text(lg, LOG_ERROR, "startup_failed", buf_str(&err));
		buf_release(&err);
		lifecycle_free(&lc);
		return EXIT_OSERR;
	}
	api_env_init(&env, cfg, lg, &lc, &build);
	env.store = svc->store;
	env.sessions = svc->sessions;
	env.keys = svc->keys;
	env.hub = hub;
	env.redis = svc->redis;
	env.session_cache = svc->session_cache;
	env.device_cache = svc->device_cache;
	env.view_cache = svc->view_cache;
	env.recent_cache = svc->recent_cache;
	env.profile_cache = svc->profile_cache;
	env.audit_cache = svc->audit_cache;
	env.limiter = svc->limiter;
	env.quota = svc->quota;
	env.bus = svc->bus;
	env.breakers[0] = (struct api_breaker){ "redis", svc->redis_breaker };
	env.breakers[1] = (struct api_breaker){ "bus", svc->bus_breaker };
	env.breakers[2] = (struct api_breaker){ "store_reads", svc->store_reads_breaker };
	env.breakers[3] = (struct api_breaker){ "store_writes", svc->store_writes_breaker };
	env.nbreakers = 4;
	env.hash_cap = hash_cap(cfg);
	/* unknown users are checked against this, at the same cost */
	if (password_hash("no such user", (long)cfg->pbkdf2_iterations, env.dummy_hash) < 0) {
		hub_stop(hub, 0);
		hub_free(hub);
		lifecycle_free(&lc);
		return EXIT_OSERR;
	}
	jan = (struct janitor){ lg, &lc, svc->sessions, svc->store, &env,
				cfg->session_purge_interval_s, 0 };
	so = (struct server_opts){ listen_fd, (int)cfg->workers, lg, api_handle, &env,
				   cfg->body_timeout_ms };
	fds = raise_fd_limit(cfg);
	log_startup(lg, cfg, fds);
	if ((srv = server_start(&so, &err)) == NULL ||
	    pthread_create(&jan.thread, NULL, janitor_main, &jan) != 0) {
		log_text(lg, LOG_ERROR, "startup_failed", srv ? "cannot start the janitor" : buf_str(&err));
		buf_release(&err);
		if (srv != NULL && server_stop(srv, 1000) == 0)
			server_free(srv);
		hub_stop(hub, 0);
		hub_free(hub);
		lifecycle_free(&lc);
		return EXIT_OSERR;
	}
	if (svc->ephemeral_keys)
		log_text(lg, LOG_WARN, "ephemeral_jwt_key",
			 "auth.jwt_keys is empty: tokens are signed with a random key and die with this process");
	log_signal(lg, wait_for_signal(sigs), hub);
	busy = shut_down(lg, &lc, srv, hub, &jan, cfg);
	if (busy != 0)
		_exit(0); /* workers still run on our services: exit without freeing them */
	server_free(srv);
	hub_free(hub);
	lifecycle_free(&lc);
	return 0;
}

static int run(const struct config *cfg, int listen_fd, const sigset_t *sigs)
{
	const struct logger lg = { cfg->log_level, 2 };
	struct services svc;
	struct buf err = BUF_INIT;
	int rc = services_open(cfg, &svc, 0, &err);

	if (rc != 0) {
		log_text(&lg, LOG_ERROR, "startup_failed", buf_str(&err));
		buf_release(&err);
		return rc;
	}
	/* a failing store says why (SQLite's error), at most a line a second */
	store_set_log(svc.store, &lg, STORE_LOG_EVERY_MS);
	rc = serve(cfg, &lg, &svc, listen_fd, sigs);
	services_close(&svc);
	return rc;
}

static int run_admin(const struct options *o, const struct config *cfg)
{
	struct services svc;
	struct buf err = BUF_INIT;
	int rc = services_open(cfg, &svc, 1, &err);

	if (rc != 0) {
		fprintf(stderr, "fcgi_sse admin: %s\n", buf_str(&err));
		buf_release(&err);
		return rc;
	}
	rc = admin_run(o->admin_argc, o->admin_argv, svc.store, (long)cfg->pbkdf2_iterations,
		       stdin, stdout, stderr);
	services_close(&svc);
	return rc;
}

int main(int argc, char **argv)
{
	struct options o;
	struct config cfg;
	struct buf err = BUF_INIT, out = BUF_INIT;
	sigset_t sigs;
	struct listen_file socket_file = { 0, 0, 0 };
	int rc, listen_fd;

	if ((rc = parse_args(argc, argv, &o)) != 0)
		return rc > 0 ? 0 : EXIT_USAGE;
	if (o.describe_config) {
		config_describe(&out);
		fputs(buf_str(&out), stdout);
		buf_release(&out);
		return 0;
	}
	if (load_config(&o, &cfg, &err) < 0) {
		fprintf(stderr, "fcgi_sse: config error: %s\n", buf_str(&err));
		rc = EXIT_CONFIG;
		goto out;
	}
	if (o.admin_argc > 0) {
		rc = run_admin(&o, &cfg);
		goto out;
	}
	if (o.check_config) {
		rc = config_dump(&cfg, &out) < 0 ? EXIT_SOFTWARE : 0;
		fputs(buf_str(&out), stdout);
		goto out;
	}
	block_signals(&sigs);
	if ((listen_fd = open_listener(&cfg, &err)) < 0) {
		fprintf(stderr, "fcgi_sse: %s\n", buf_str(&err));
		rc = *cfg.listen ? EXIT_OSERR : EXIT_USAGE;
		goto out;
	}
	if (strncmp(cfg.listen, "unix:", 5) == 0)
		listen_file_of(cfg.listen + 5, &socket_file);
	rc = run(&cfg, listen_fd, &sigs);
	if (listen_fd != 0)
		close(listen_fd);
	if (strncmp(cfg.listen, "unix:", 5) == 0)
		listen_unlink_own(cfg.listen + 5, &socket_file);
out:
	config_release(&cfg);
	buf_release(&err);
	buf_release(&out);
	return rc;
}
