/* api: the HTTP API of API.md: dispatch (version, route, method, limits)
 * and the handlers. Everything a handler needs comes in through api_env,
 * built once by the composition root. */
#ifndef FCGI_SSE_API_H
#define FCGI_SSE_API_H

#include <stdatomic.h>

#include "../core/clock.h"
#include "../core/config.h"
#include "../core/errors.h"
#include "../core/http.h"
#include "../core/lifecycle.h"
#include "../core/log.h"
#include "../core/router.h"
#include "../auth/jwt.h"
#include "../cache/cache.h"
#include "../auth/password.h"
#include "../session/sessions.h"
#include "../sse/hub.h"
#include "../store/store.h"
#include "../versioning/versioning.h"
#include "../protect/ratelimit.h"
#include "../protect/breaker.h"
#include "../protect/quota.h"

#define API_BREAKERS_MAX 4

struct build_info {
	const char *version; /* "0.1.0" */
	const char *commit;  /* short git hash or "unknown" */
	time_t built_at;
};

struct api_env {
	const struct config *cfg;
	const struct logger *log;
	struct lifecycle *lc;
	struct version_policy policy;
	struct build_info build;
	/* services, set by the composition root after api_env_init */
	struct store *store;
	struct sessions *sessions;
	const struct jwt_keyring *keys;
	struct hub *hub;
	struct redis *redis;         /* the request path's Redis (caches, limits, quotas) */
	struct redis *bus;           /* publishing to the event bus, reading its history */
	struct cache *session_cache; /* for its counters (NULL: none) */
	struct cache *device_cache;  /* devices by id (NULL: read the store) */
	struct cache *view_cache;    /* first pages and counts (NULL: none) */
	struct cache *recent_cache;  /* a device's newest points (NULL: none) */
	struct cache *profile_cache; /* users without their hashes (NULL: none) */
	struct cache *audit_cache;   /* audit first pages (NULL: off, the default) */
	char dummy_hash[PASSWORD_HASH_MAX]; /* verified against for unknown users */
	struct ratelimit *limiter;   /* shared limits (NULL: none) */
	struct quota *quota;         /* cluster-wide stream quotas (NULL: none) */
	/* the circuit breakers by dependency, for ready and /metrics: "redis"
	 * (the request path's), "bus" (publishing), "store_reads",
	 * "store_writes" */
	struct api_breaker {
		const char *dependency;
		struct breaker *b;
	} breakers[API_BREAKERS_MAX];
	int nbreakers;
	int hash_cap;                /* password checks at once (auth.max_concurrent_hashes) */
	atomic_int hashing;          /* password checks running */
};

/* Who is calling: a verified token whose session is live. */
struct principal {
	struct jwt_claims claims;
	struct store_session session;
	int level; /* AUTH_ROLE_* */
};

/* One request on its way through a handler. */
struct api_call {
	struct api_env *env;
	struct http_request *req;
	struct http_response *resp;
	int version;
	const struct route_match *match;
};

/* Initialises env from cfg; the pointers must outlive env. */
void api_env_init(struct api_env *env, const struct config *cfg,
		  const struct logger *log, struct lifecycle *lc,
		  const struct build_info *build);

/* The server handler: dispatches one request (server_handler_fn). */
void api_handle(void *env, struct http_request *req, struct http_response *resp);

/* Turns resp into the problem+json response for err. detail may be NULL. */
void api_error(struct api_call *call, enum api_error err, const char *detail);

/* Sets a 200 JSON body from a json-c object and frees the object. */
struct json_object;
void api_json(struct api_call *call, int status, struct json_object *body);

/* Reads the body as one JSON object (Content-Type application/json).
 * Returns 0 and sets *out (caller puts it), or -1 with the error response
 * set (413, 415, 400 request.malformed_json). */
int api_read_json(struct api_call *call, struct json_object **out);

/* Returns the string field name of obj when it is a string of minlen..maxlen
 * bytes accepted by valid (NULL: any), else NULL with 400
 * request.invalid_field set naming the field and what it must be. */
const char *api_field_string(struct api_call *call, struct json_object *obj,
			     const char *name, size_t minlen, size_t maxlen,
			     int (*valid)(const char *), const char *what);

/* Returns 0 when every member of obj is named in allowed (NULL-ended),
 * else -1 with 400 request.invalid_field set, whose detail lists names
 * (the known fields) and never the unknown one. */
int api_only_fields(struct api_call *call, struct json_object *obj, const char *const *allowed,
		    const char *names);

/* A JSON string with Unix time t as RFC 3339 UTC. */
struct json_object *api_json_time(long long t);

/* Authenticates the request (Bearer token, fingerprint cookie, live
 * session). Returns 0 and fills *p, or -1 with the 401/503 response set. */
int api_authenticate(struct api_call *call, struct principal *p);

/* api_authenticate in two steps, for a handler that reads cached entries
 * named by the token's claims (the tenant's device of the path): api_token
 * checks the token and the fingerprint cookie (no I/O) and fills the
 * claims; api_session checks the session, reading the n entries of more
 * (cache_ahead_init'ed, up to CACHE_AHEAD_MAX - 1) in the same Redis round
 * trip, which the handler then answers from with cache_get_ahead. */
int api_token(struct api_call *call, struct principal *p);
int api_session(struct api_call *call, struct principal *p, struct cache_ahead *const *more, int n);

/* Returns 0 if p has at least level, else -1 with 403 auth.forbidden set. */
int api_require_role(struct api_call *call, const struct principal *p, int level);

/* Copies route parameter i into out (cap bytes). */
void api_param(const struct api_call *call, size_t i, char *out, size_t cap);

/* A store call's outcome: 0 for STORE_OK; else -1 with 404
 * resource.not_found ("No such <what>.") or 503 set. Other codes
 * (CONFLICT) are the caller's to map first. */
int api_store_result(struct api_call *call, int rc, const char *what);

/* The `retry:` of a new stream: sse.retry_ms plus up to
 * sse.retry_jitter_pct percent of it, at random, so that the clients of a
 * restarted server do not all come back in the same instant. */
long long api_retry_ms(const struct api_env *env);

/* Sets 503 dependency.unavailable with Retry-After (the store failed). */
void api_unavailable(struct api_call *call);

/* An audit record of the tenant was written: drops its cached first page
 * (api/audit.c). api_audit calls it; callers of store changes that commit
 * their own records call it after the commit. */
void api_audit_written(struct api_env *env, const char *tenant_id);

/* Appends an audit record; a failure is logged, never shown to the client. */
void api_audit(struct api_call *call, const char *tenant_id, const char *actor,
	       const char *action, const char *target, const char *detail);

/* The client's address for limits (api/limits.c): REMOTE_ADDR, or when
 * that is one of http.trusted_proxies the last X-Forwarded-For entry that
 * is not. "unknown" when there is none. */
#define API_ADDR_MAX 64
void api_client_addr(const struct api_call *call, char out[API_ADDR_MAX]);

/* Applies rule to key through env->limiter (consume 0: only looks) and
 * adds its RateLimit-Policy and RateLimit headers. Returns 0 when allowed,
 * else -1 with 429 rate.limited and Retry-After set. Allowed when there is
 * no limiter. */
int api_limit(struct api_call *call, const char *key, const struct rl_rule *rule, int consume);

/* The route's limit (ratelimit.*_per_min) for the token's tenant and the
 * API version, or the client's address without a valid token: 0, or -1
 * with 429 set. Sets the RateLimit headers on every limited route. */
int api_limit_route(struct api_call *call);

/* api_authenticate, then api_require_role. */
int api_authorize(struct api_call *call, struct principal *p, int level);

/* An audit record of p's action (with the request id), for store calls
 * that commit it with their change. */
void api_audit_record(struct api_call *call, const struct principal *p, const char *action,
		      const char *target, const char *detail, struct store_audit *out);

/* Opaque list cursors of one kind (a letter): value <-> text. encode
 * writes "" when it does not fit cap; decode returns 0, or -1 for a
 * cursor that is not one of this kind. */
void api_cursor_encode(char kind, const char *value, char *out, size_t cap);
int api_cursor_decode(char kind, const char *cursor, char *value, size_t cap);

/* Answers 200 with the JSON text cached under key (loaded by load on a
 * miss), or 503 when neither the cache nor the store can answer. */
void api_cached_json(struct api_call *call, struct cache *c, const char *key, cache_load_fn *load,
		     void *ctx);

/* Serializes o into out (replacing it) and puts o. 0, or -1 out of memory. */
int api_json_text(struct json_object *o, struct buf *out);

/* Cache keys "<tenant>:<rest>": copies the tenant (STORE_ID_MAX + 1
 * bytes) and returns rest, or NULL when key has no such shape. */
const char *api_key_tenant(const char *key, char *tenant);

/* A page of a list: {"items": items (taken), "next_cursor": next_cursor
 * or null}. */
struct json_object *api_page(struct json_object *items, const char *next_cursor);

/* Query integer name in [min, max] (dflt when absent). Returns 0, or -1
 * with 400 request.invalid_query set. */
int api_query_int(struct api_call *call, const char *name, long long min, long long max,
		  long long dflt, long long *out);

/* 0 when every query parameter is in allowed (NULL-ended; names lists
 * them for the error), else -1 with 400 request.invalid_query set. */
int api_query_known(struct api_call *call, const char *const *allowed, const char *names);

/* Publishes a committed change's event (bus), then takes it out of the
 * outbox. When the bus refuses, the event stays there for
 * api_outbox_drain: the change stands and the event is late, never lost
 * (at least once: see docs/API.md). api/outbox.c. */
void api_outbox_publish(struct api_env *env, const struct store_event *ev);

/* The same for the n events of one transaction (consecutive seqs), in
 * order up to the first refusal, their rows deleted in one statement. */
void api_outbox_publish_all(struct api_env *env, const struct store_event *evs, size_t n);

/* Publishes the outbox's events older than before (Unix seconds), oldest
 * first, until the bus refuses or the outbox is empty. Returns how many
 * were published, or -1 when the store failed. */
int api_outbox_drain(struct api_env *env, long long before);

/* Hands the request's connection to the hub as an event stream: sends the
 * 200 head with the SSE headers, then first_frames (retry:, the first
 * events), then the tenant's events that pass the filter. When the hub refuses (full or stopping) the
 * client gets 503 server.busy or server.shutting_down instead. HEAD gets
 * the head alone. */
struct api_stream_owner {
	const char *tenant_id;    /* "" : no published events (version stream) */
	const char *user_id;      /* NULL for anonymous streams */
	const char *auth_session; /* the login; its logout or end ends the stream */
	long long auth_expires;   /* Unix seconds; 0: never */
};

/* What the stream receives. Tenant streams (tenant_id not "") get
 * `event: connected` from the hub, after first_frames. */
struct api_stream_filter {
	const char *events;       /* comma list, NULL: every type */
	const char *topics;       /* comma list, NULL: every topic */
	const char *key;          /* stream session id: one connection each */
	const char *resume_from;  /* Last-Event-ID (NULL: from the next event) */
};

/* (first_frames: what follows the stream's `retry:`, which this writes) */
void api_stream_handoff(struct api_call *call, const struct api_stream_owner *owner,
			const struct api_stream_filter *filter, const struct buf *first_frames);

/* Handlers (api/health.c, api/version.c, api/auth.c, api/users.c). */
route_handler_fn api_health;
route_handler_fn api_ready;
route_handler_fn api_version;
route_handler_fn api_version_stream;
route_handler_fn api_auth_login;
route_handler_fn api_auth_logout;
route_handler_fn api_auth_refresh;
route_handler_fn api_me;
route_handler_fn api_users_create;
route_handler_fn api_users_list;
route_handler_fn api_user_get;
route_handler_fn api_user_revoke_sessions;
route_handler_fn api_user_patch;
route_handler_fn api_user_delete;
route_handler_fn api_events_stream;
route_handler_fn api_events_session;
route_handler_fn api_metrics;

/* Counts one response for /metrics. */
void api_metrics_count(int status);

/* A request's route (api_route_name), API version (0: none), status and
 * duration, for the per-route histograms and counts. */
void api_metrics_request(int route, int version, int status, long long us);
const char *api_route_name(int route);
int api_route_count(void);

/* Counts a problem response by code, and a rate-limit refusal by policy
 * (local: decided without Redis). */
void api_metrics_error(enum api_error err);
void api_metrics_limited(const char *policy, int local);
route_handler_fn api_events_publish;
route_handler_fn api_devices_list;
route_handler_fn api_devices_count;
route_handler_fn api_devices_create;
route_handler_fn api_device_get;
route_handler_fn api_device_patch;
route_handler_fn api_device_delete;
route_handler_fn api_device_status;
route_handler_fn api_telemetry_post;
route_handler_fn api_telemetry_recent;
route_handler_fn api_audit_list;

#endif
