/* GET /metrics: Prometheus text format (API.md §7), for loopback callers or
 * holders of the internal secret. Counters so far: responses by status,
 * problem responses by code, rate-limit refusals by policy,
 * streams and events of the hub, the session, device and device list caches. */
#include <dirent.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../auth/auth.h"
#include "api.h"

#define STATUS_MIN 100
#define STATUS_MAX 599

static atomic_ullong responses[STATUS_MAX - STATUS_MIN + 1];

/* Per route and version (none, 1, 2): a duration histogram and answers by
 * status class. Routes: the table's, /metrics, unrouted. */
#define ROUTES_MAX 64
#define VERSIONS 3
static const long long bucket_us[] = { 1000, 2500, 5000, 10000, 25000, 50000, 100000,
				       250000, 500000, 1000000, 2500000 };
#define NBUCKETS (sizeof(bucket_us) / sizeof(bucket_us[0]))
static struct {
	atomic_ullong le[NBUCKETS + 1]; /* the last: +Inf */
	atomic_ullong sum_us, count;
	atomic_ullong by_class[5];      /* 1xx..5xx */
} per_route[ROUTES_MAX][VERSIONS];

void api_metrics_request(int route, int version, int status, long long us)
{
	size_t b = 0;

	if (route < 0 || route >= ROUTES_MAX || version < 0 || version >= VERSIONS || us < 0)
		return;
	while (b < NBUCKETS && us > bucket_us[b])
		b++;
	/* one bucket here, made cumulative when rendered */
	atomic_fetch_add_explicit(&per_route[route][version].le[b], 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&per_route[route][version].sum_us, (unsigned long long)us,
				  memory_order_relaxed);
	atomic_fetch_add_explicit(&per_route[route][version].count, 1, memory_order_relaxed);
	if (status >= 100 && status <= 599)
		atomic_fetch_add_explicit(&per_route[route][version].by_class[status / 100 - 1], 1,
					  memory_order_relaxed);
}

static void routes_render(struct buf *b)
{
	int n = api_route_count() < ROUTES_MAX ? api_route_count() : ROUTES_MAX;

	buf_puts(b, "# HELP fcgi_sse_http_request_duration_seconds Time from the request's arrival in the process to its answer (to the hand-over, for streams).\n"
		    "# TYPE fcgi_sse_http_request_duration_seconds histogram\n");
	for (int r = 0; r < n; r++)
		for (int v = 0; v < VERSIONS; v++) {
			unsigned long long cum = 0, count = atomic_load(&per_route[r][v].count);
			const char *name = api_route_name(r);

			if (count == 0)
				continue;
			for (size_t i = 0; i < NBUCKETS; i++) {
				cum += atomic_load(&per_route[r][v].le[i]);
				buf_printf(b, "fcgi_sse_http_request_duration_seconds_bucket{route=\"%s\",version=\"%d\",le=\"%g\"} %llu\n",
					   name, v, (double)bucket_us[i] / 1e6, cum);
			}
			cum += atomic_load(&per_route[r][v].le[NBUCKETS]);
			buf_printf(b, "fcgi_sse_http_request_duration_seconds_bucket{route=\"%s\",version=\"%d\",le=\"+Inf\"} %llu\n",
				   name, v, cum);
			buf_printf(b, "fcgi_sse_http_request_duration_seconds_sum{route=\"%s\",version=\"%d\"} %.6f\n",
				   name, v, (double)atomic_load(&per_route[r][v].sum_us) / 1e6);
			buf_printf(b, "fcgi_sse_http_request_duration_seconds_count{route=\"%s\",version=\"%d\"} %llu\n",
				   name, v, cum);
		}
	buf_puts(b, "# HELP fcgi_sse_http_requests_total Answers by route, version and status class.\n"
		    "# TYPE fcgi_sse_http_requests_total counter\n");
	for (int r = 0; r < n; r++)
		for (int v = 0; v < VERSIONS; v++)
			for (int c = 0; c < 5; c++) {
				unsigned long long k = atomic_load(&per_route[r][v].by_class[c]);
				if (k > 0)
					buf_printf(b, "fcgi_sse_http_requests_total{route=\"%s\",version=\"%d\",status=\"%dxx\"} %llu\n",
						   api_route_name(r), v, c + 1, k);
			}
}
static atomic_ullong errors[API_ERR__COUNT];

/* Rate-limit policies, as ratelimit rules name them. */
static const char *const policies[] = { "login-address", "login-user", "reads", "writes",
					"publish", "stream-opens", "streams-open" };
#define NPOLICIES (sizeof(policies) / sizeof(policies[0]))
static atomic_ullong limited[NPOLICIES], limited_local;

void api_metrics_error(enum api_error err)
{
	if ((int)err >= 0 && err < API_ERR__COUNT)
		atomic_fetch_add_explicit(&errors[err], 1, memory_order_relaxed);
}

void api_metrics_limited(const char *policy, int local)
{
	for (size_t i = 0; i < NPOLICIES; i++)
		if (strcmp(policies[i], policy) == 0)
			atomic_fetch_add_explicit(&limited[i], 1, memory_order_relaxed);
	if (local)
		atomic_fetch_add_explicit(&limited_local, 1, memory_order_relaxed);
}

void api_metrics_count(int status)
{
	if (status >= STATUS_MIN && status <= STATUS_MAX)
		atomic_fetch_add_explicit(&responses[status - STATUS_MIN], 1, memory_order_relaxed);
}

/* When this process started, in Unix seconds: boot time plus field 22 of
 * /proc/self/stat (clock ticks since boot). 0 when unknown. */
static long long process_start_time(void)
{
	FILE *f = fopen("/proc/self/stat", "r");
	char buf[1024], *p;
	unsigned long long ticks = 0;
	long long btime = 0;
	int field = 2;

	if (f == NULL)
		return 0;
	if (fgets(buf, sizeof(buf), f) == NULL || (p = strrchr(buf, ')')) == NULL) {
		fclose(f);
		return 0;
	}
	fclose(f);
	/* after "pid (comm)" come fields 3 on, space-separated */
	for (p++; *p && field < 22; p++)
		if (*p == ' ')
			field++;
	ticks = strtoull(p, NULL, 10);
	if ((f = fopen("/proc/stat", "r")) != NULL) {
		while (fgets(buf, sizeof(buf), f) != NULL)
			if (strncmp(buf, "btime ", 6) == 0)
				btime = atoll(buf + 6);
		fclose(f);
	}
	return btime > 0 ? btime + (long long)(ticks / (unsigned long long)sysconf(_SC_CLK_TCK)) : 0;
}

static int loopback(const char *addr)
{
	return addr != NULL && (strncmp(addr, "127.", 4) == 0 || strcmp(addr, "::1") == 0 ||
				strncmp(addr, "::ffff:127.", 11) == 0);
}

static void counter(struct buf *b, const char *name, const char *help, unsigned long long v)
{
	buf_printf(b, "# HELP %s %s\n# TYPE %s counter\n%s %llu\n", name, help, name, name, v);
}

static void gauge(struct buf *b, const char *name, const char *help, long long v)
{
	buf_printf(b, "# HELP %s %s\n# TYPE %s gauge\n%s %lld\n", name, help, name, name, v);
}

/* Lookups by cache and result, transport failures, and the hit ratio
 * since start (hits, negative ones included, over lookups). */
static void caches(struct buf *b, const struct api_env *env)
{
	const struct { const char *name; struct cache *c; } all[] = {
		{ "session", env->session_cache }, { "device", env->device_cache },
		{ "device_list", env->view_cache }, { "telemetry_recent", env->recent_cache },
		{ "profile", env->profile_cache }, { "audit", env->audit_cache },
	};
	struct cache_stats cs[6];
	const size_t n = sizeof(all) / sizeof(all[0]);

	for (size_t i = 0; i < n; i++)
		if (all[i].c != NULL)
			cache_get_stats(all[i].c, &cs[i]);
	buf_puts(b, "# HELP fcgi_sse_cache_requests_total Cache lookups by cache and result.\n"
		    "# TYPE fcgi_sse_cache_requests_total counter\n");
	for (size_t i = 0; i < n; i++) {
		if (all[i].c == NULL)
			continue;
		buf_printf(b, "fcgi_sse_cache_requests_total{cache=\"%s\",result=\"hit\"} %llu\n",
			   all[i].name, cs[i].hits);
		buf_printf(b, "fcgi_sse_cache_requests_total{cache=\"%s\",result=\"negative_hit\"} %llu\n",
			   all[i].name, cs[i].negative_hits);
		buf_printf(b, "fcgi_sse_cache_requests_total{cache=\"%s\",result=\"miss\"} %llu\n",
			   all[i].name, cs[i].misses);
	}
	buf_puts(b, "# HELP fcgi_sse_cache_transport_errors_total Cache transport (Redis) failures.\n"
		    "# TYPE fcgi_sse_cache_transport_errors_total counter\n");
	for (size_t i = 0; i < n; i++)
		if (all[i].c != NULL)
			buf_printf(b, "fcgi_sse_cache_transport_errors_total{cache=\"%s\"} %llu\n",
				   all[i].name, cs[i].kv_errors);
	buf_puts(b, "# HELP fcgi_sse_cache_hit_ratio Hits (negative ones included) over lookups since start.\n"
		    "# TYPE fcgi_sse_cache_hit_ratio gauge\n");
	for (size_t i = 0; i < n; i++) {
		unsigned long long hit = cs[i].hits + cs[i].negative_hits, all_n = hit + cs[i].misses;
		if (all[i].c != NULL)
			buf_printf(b, "fcgi_sse_cache_hit_ratio{cache=\"%s\"} %.4f\n", all[i].name,
				   all_n ? (double)hit / (double)all_n : 0.0);
	}
}

/* The process: resident memory, open descriptors, threads (from /proc) and
 * when it started (Prometheus's process_* names). */
static void process_metrics(struct buf *b)
{
	static _Atomic long long started; /* the first scrape reads the process's start */
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	long long rss_kb = -1, threads = -1, fds = 0;
	DIR *d;

	if (f != NULL) {
		while (fgets(line, sizeof(line), f) != NULL) {
			if (strncmp(line, "VmRSS:", 6) == 0)
				rss_kb = atoll(line + 6);
			else if (strncmp(line, "Threads:", 8) == 0)
				threads = atoll(line + 8);
		}
		fclose(f);
	}
	if ((d = opendir("/proc/self/fd")) != NULL) {
		struct dirent *e;
		while ((e = readdir(d)) != NULL)
			fds += e->d_name[0] != '.';
		closedir(d);
		fds--; /* the directory's own descriptor */
	}
	if (atomic_load(&started) == 0)
		atomic_store(&started, process_start_time());
	if (rss_kb >= 0)
		gauge(b, "process_resident_memory_bytes", "Resident memory size in bytes.", rss_kb * 1024);
	gauge(b, "process_open_fds", "Open file descriptors.", fds);
	if (threads >= 0)
		gauge(b, "process_threads", "Threads of this process.", threads);
	gauge(b, "process_start_time_seconds", "Start time of the process since the Unix epoch in seconds.",
	      atomic_load(&started));
}

/* Each dependency's breaker: its state and how often it opened. */
static void breakers(struct buf *b, const struct api_env *env)
{
	long long now = clock_mono_ms();

	if (env->nbreakers == 0)
		return;
	buf_puts(b, "# HELP fcgi_sse_breaker_state A dependency's circuit breaker: 0 closed, 1 open, 2 half-open.\n"
		    "# TYPE fcgi_sse_breaker_state gauge\n");
	for (int i = 0; i < env->nbreakers; i++) {
		enum breaker_state bs = breaker_state(env->breakers[i].b, now);

		buf_printf(b, "fcgi_sse_breaker_state{dependency=\"%s\"} %d\n", env->breakers[i].dependency,
			   bs == BREAKER_CLOSED ? 0 : bs == BREAKER_OPEN ? 1 : 2);
	}
	buf_puts(b, "# HELP fcgi_sse_breaker_opened_total Times a dependency's breaker opened.\n"
		    "# TYPE fcgi_sse_breaker_opened_total counter\n");
	for (int i = 0; i < env->nbreakers; i++)
		buf_printf(b, "fcgi_sse_breaker_opened_total{dependency=\"%s\"} %llu\n",
			   env->breakers[i].dependency, breaker_opened(env->breakers[i].b));
}

static void render(const struct api_env *env, struct buf *b)
{
	struct hub_stats hs;

	buf_puts(b, "# HELP fcgi_sse_http_responses_total Responses by status code.\n"
		    "# TYPE fcgi_sse_http_responses_total counter\n");
	for (int i = 0; i <= STATUS_MAX - STATUS_MIN; i++) {
		unsigned long long n = atomic_load(&responses[i]);
		if (n > 0)
			buf_printf(b, "fcgi_sse_http_responses_total{code=\"%d\"} %llu\n", i + STATUS_MIN, n);
	}
	hub_get_stats(env->hub, &hs);
	gauge(b, "fcgi_sse_streams_open", "Event streams open in this process.", hs.open);
	counter(b, "fcgi_sse_streams_opened_total", "Event streams opened.", (unsigned long long)hs.opened);
	counter(b, "fcgi_sse_streams_dropped_slow_total", "Streams dropped because their client stopped reading.",
		(unsigned long long)hs.dropped_slow);
	counter(b, "fcgi_sse_events_published_total", "Events received for delivery in this process (from every process, through the bus).", (unsigned long long)hs.published);
	counter(b, "fcgi_sse_events_delivered_total", "Event deliveries to streams.", (unsigned long long)hs.delivered);
	counter(b, "fcgi_sse_events_dropped_total",
		"Events a stream should have had but could not queue (its buffer was full: it is dropped as slow and resumes from history).",
		(unsigned long long)hs.dropped);
	counter(b, "fcgi_sse_events_replayed_total", "Events sent from history (Last-Event-ID resume, catch-up after a Redis outage).",
		(unsigned long long)hs.replayed);
	counter(b, "fcgi_sse_stream_resets_total", "event: reset sent (resume point older than the history kept).",
		(unsigned long long)hs.resets);
	gauge(b, "fcgi_sse_bus_up", "1 while this process is subscribed to the Redis event bus.", hs.bus_up);
	counter(b, "fcgi_sse_bus_reconnects_total", "Times the event bus came back after losing Redis.",
		(unsigned long long)hs.bus_reconnects);
	buf_printf(b, "# HELP fcgi_sse_bus_probe_age_seconds Since this process's last delivery probe came back through the bus (-1: none yet).\n"
		      "# TYPE fcgi_sse_bus_probe_age_seconds gauge\nfcgi_sse_bus_probe_age_seconds %.3f\n",
		   hs.probe_age_ms < 0 ? -1.0 : (double)hs.probe_age_ms / 1000.0);
	buf_printf(b, "# HELP fcgi_sse_bus_lag_seconds Publish-to-receive time of that probe.\n"
		      "# TYPE fcgi_sse_bus_lag_seconds gauge\nfcgi_sse_bus_lag_seconds %.3f\n",
		   (double)hs.probe_rtt_ms / 1000.0);
	routes_render(b);
	process_metrics(b);
	caches(b, env);
	buf_puts(b, "# HELP fcgi_sse_errors_total Problem responses by error code (auth failures among them).\n"
		    "# TYPE fcgi_sse_errors_total counter\n");
	for (int i = 0; i < API_ERR__COUNT; i++)
		buf_printf(b, "fcgi_sse_errors_total{code=\"%s\"} %llu\n", api_error_code((enum api_error)i),
			   atomic_load_explicit(&errors[i], memory_order_relaxed));
	buf_puts(b, "# HELP fcgi_sse_rate_limited_total Requests refused by a rate limit, by policy.\n"
		    "# TYPE fcgi_sse_rate_limited_total counter\n");
	for (size_t i = 0; i < NPOLICIES; i++)
		buf_printf(b, "fcgi_sse_rate_limited_total{policy=\"%s\"} %llu\n", policies[i],
			   atomic_load_explicit(&limited[i], memory_order_relaxed));
	counter(b, "fcgi_sse_rate_limited_locally_total",
		"Of those, refused by this process's own table while Redis was unreachable.",
		atomic_load_explicit(&limited_local, memory_order_relaxed));
	if (env->limiter != NULL)
		counter(b, "fcgi_sse_ratelimit_redis_calls_total", "Calls of the shared rate-limit script.",
			ratelimit_redis_calls(env->limiter));
	breakers(b, env);
	gauge(b, "fcgi_sse_password_checks_running", "Password checks running now (auth.max_concurrent_hashes caps them).",
	      atomic_load(&((struct api_env *)env)->hashing));
}

void api_metrics(struct api_call *call)
{
	const char *secret = http_request_param(call->req, "HTTP_X_INTERNAL_SECRET");
	struct http_response *resp = call->resp;

	if (!loopback(http_request_param(call->req, "REMOTE_ADDR")) &&
	    !(secret != NULL && auth_secret_equal(secret, call->env->cfg->internal_secret))) {
		api_error(call, API_ERR_INTERNAL_FORBIDDEN,
			  "Metrics are served to loopback callers or with the internal secret.");
		return;
	}
	resp->status = 200;
	buf_reset(&resp->body);
	render(call->env, &resp->body);
	http_response_header(resp, "Content-Type", "text/plain; version=0.0.4; charset=utf-8");
	http_response_header(resp, "Cache-Control", "no-store");
	resp->head_only = call->req->method == HTTP_HEAD;
}
