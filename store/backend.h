/* store backend interface: private to store/. What a backend (sqlite.c,
 * postgres.c) provides behind the narrow API of store.h.
 *
 * store.c owns everything common: argument validation, id generation and
 * the public entry points; it calls a backend only with arguments already
 * checked (valid ids, names and roles; complete rows; non-NULL out and
 * callback pointers unless stated). A backend runs the query, maps its
 * failures to enum store_rc and keeps the calling thread's error string.
 * Every operation takes the backend's own state as `impl`. */
#ifndef FCGI_SSE_STORE_BACKEND_H
#define FCGI_SSE_STORE_BACKEND_H

#include "../core/buf.h"
#include "store.h"

struct logger;

struct store_ops {
	const char *name; /* "sqlite", "postgres" */

	/* Closes every connection and frees impl. */
	void (*close)(void *impl);
	int (*schema_version)(void *impl);
	/* The calling thread's last error; never NULL. */
	const char *(*errstr)(void *impl);
	/* Records msg as the calling thread's last error (used by store.c for
	 * argument errors, so there is one error string per thread). */
	void (*set_error)(void *impl, const char *msg);
	/* A store call begins on this thread (store.c, before each attempt):
	 * forget the last failure; interrupt the call's statements once
	 * timeout_ms have passed (0: no limit). */
	void (*begin)(void *impl, long long timeout_ms);
	/* 1 when the calling thread's last failure is transient: the same call
	 * made again a moment later may succeed (store.c retries reads). */
	int (*transient)(void *impl);
	/* Whether the calling thread's connection can write now: 1, 0 (it is
	 * read-only), -1 (it cannot be opened; error recorded). NULL: the
	 * backend cannot tell, store_writable says 1. */
	int (*writable)(void *impl);

	/* Insert a complete row (ids already generated). */
	int (*tenant_create)(void *impl, const struct store_tenant *t);
	int (*tenant_by_name)(void *impl, const char *name, struct store_tenant *out);
	int (*tenant_by_id)(void *impl, const char *id, struct store_tenant *out);

	int (*user_create)(void *impl, const struct store_user *u);
	int (*user_by_name)(void *impl, const char *tenant_id, const char *username,
			    struct store_user *out);
	int (*user_by_id)(void *impl, const char *tenant_id, const char *user_id,
			  struct store_user *out);
	int (*user_list)(void *impl, const char *tenant_id, store_user_fn *fn, void *ctx);
	int (*user_set_role)(void *impl, const char *tenant_id, const char *user_id, const char *role);
	int (*user_delete)(void *impl, const char *tenant_id, const char *user_id);

	int (*session_create)(void *impl, const struct store_session *sess);
	int (*session_get)(void *impl, const char *id, struct store_session *out);
	int (*session_revoke)(void *impl, const char *id, long long now);
	/* fn may be NULL; when set it is called for every id affected, after
	 * the change is committed, and its return value is ignored. */
	int (*session_revoke_user)(void *impl, const char *tenant_id, const char *user_id,
				   long long now, store_id_fn *fn, void *ctx);
	int (*session_purge)(void *impl, long long now, long long keep_revoked_s,
			     store_id_fn *fn, void *ctx);

	int (*stream_session_create)(void *impl, const struct store_stream_session *ss);
	int (*stream_session_get)(void *impl, const char *id, struct store_stream_session *out);
	int (*stream_session_claim)(void *impl, const char *id, long long now, const char *topics);
	int (*stream_session_finish_topic)(void *impl, const char *tenant_id, const char *topic,
					   long long now);
	int (*stream_session_purge)(void *impl, long long now);

	int (*audit_append)(void *impl, const struct store_audit *a);
	int (*audit_list)(void *impl, const char *tenant_id, long long before, int limit,
			  store_audit_fn *fn, void *ctx);

	/* a and ev complete; ev->seq is written on success */
	int (*device_create)(void *impl, const struct store_device *d, const struct store_audit *a,
			     struct store_event *ev);
	int (*device_get)(void *impl, const char *tenant_id, const char *id,
			  struct store_device *out);
	int (*device_update)(void *impl, const struct store_device *d, const struct store_audit *a,
			     struct store_event *ev);
	int (*device_delete)(void *impl, const char *tenant_id, const char *id,
			     const struct store_audit *a, struct store_event *ev);
	/* status and after: "" for none */
	int (*device_list)(void *impl, const char *tenant_id, const char *status, const char *after,
			   long long offset, int limit, store_device_fn *fn, void *ctx);
	int (*device_count)(void *impl, const char *tenant_id, const char *status, long long *out);

	int (*telemetry_append)(void *impl, const char *tenant_id, const char *device_id,
				const struct store_telemetry *pts, struct store_event *evs, size_t n);
	int (*telemetry_recent)(void *impl, const char *tenant_id, const char *device_id, int limit,
				store_telemetry_fn *fn, void *ctx);
	int (*telemetry_purge)(void *impl, long long before_ms, long long keep_per_device,
			       long long *deleted);

	int (*outbox_list)(void *impl, long long created_before, int limit, store_event_fn *fn,
			   void *ctx);
	int (*outbox_delete)(void *impl, long long first, long long last);
};

/* The public handle: a backend and its state. */
struct store {
	const struct store_ops *ops;
	void *impl;
	struct store_guard guard; /* zero: no breakers, no retries, no deadline */
	/* failed calls logged (store_set_log); lg NULL: not logged */
	const struct logger *lg;
	long long log_every_ms;
	struct store_lograte {
		_Atomic long long last_ms;      /* the kind's last line (0: none yet) */
		_Atomic unsigned long suppressed; /* failures not logged since */
	} lograte[2];                           /* STORE_LOG_READ, STORE_LOG_WRITE */
};
enum { STORE_LOG_READ, STORE_LOG_WRITE };

/* The SQLite backend (store/sqlite.c). Opens the database at path (a file
 * name; ":memory:" is refused because every thread has its own
 * connection), sets it up and runs pending migrations. Returns the backend
 * state for store_sqlite_ops, or NULL with a message appended to err. */
void *store_sqlite_open(const char *path, int busy_timeout_ms, struct buf *err);
extern const struct store_ops store_sqlite_ops;

/* The PostgreSQL backend (store/postgres.c). conninfo is a libpq
 * connection string (keywords or a URI); a connect timeout is added when
 * it sets none. Connects, checks the encoding and runs pending migrations
 * (under an advisory lock). Returns the backend state for
 * store_postgres_ops, or NULL with a message appended to err (never the
 * connection string itself: it may hold a password). */
void *store_postgres_open(const char *conninfo, struct buf *err);
extern const struct store_ops store_postgres_ops;

#endif
