/* store: the durable source of truth (tenants, users, auth sessions,
 * devices, telemetry, audit). A narrow interface over backends: SQLite
 * (store/sqlite.c) now, PostgreSQL later, without touching handlers.
 *
 * Every call is thread-safe. Results are copied into caller structs; the
 * store keeps no pointer into them. Ids are 22-character base64url strings
 * from session_id_new unless the caller passes its own. Times are Unix
 * seconds. Return codes: one convention for every call. */
#ifndef FCGI_SSE_STORE_H
#define FCGI_SSE_STORE_H

#include "../core/buf.h"

#define STORE_ID_MAX 64
#define STORE_NAME_MAX 64       /* tenant names, usernames: [A-Za-z0-9_.-]{1,64} */
#define STORE_ROLE_MAX 16
#define STORE_HASH_MAX 160      /* = PASSWORD_HASH_MAX */

enum store_rc {
	STORE_OK = 0,
	STORE_NOT_FOUND = 1,
	STORE_CONFLICT = 2,   /* unique constraint (tenant name, username in tenant, id) */
	STORE_ERROR = -1,     /* I/O, corruption, busy beyond the timeout: see store_errstr */
};

struct store_tenant {
	char id[STORE_ID_MAX + 1];
	char name[STORE_NAME_MAX + 1];
	long long created_at;
};

struct store_user {
	char id[STORE_ID_MAX + 1];
	char tenant_id[STORE_ID_MAX + 1];
	char username[STORE_NAME_MAX + 1];
	char role[STORE_ROLE_MAX + 1];          /* viewer, operator, admin */
	char password_hash[STORE_HASH_MAX + 1];
	long long created_at;
};

struct store_session {
	char id[STORE_ID_MAX + 1];
	char user_id[STORE_ID_MAX + 1];
	char tenant_id[STORE_ID_MAX + 1];
	char role[STORE_ROLE_MAX + 1];          /* the user's role when the session began */
	long long created_at;
	long long expires_at;
	long long revoked_at;                   /* 0 while not revoked */
};

struct store_audit {
	long long seq;                          /* set by the store: orders records (cursor) */
	char tenant_id[STORE_ID_MAX + 1];
	char actor_id[STORE_ID_MAX + 1];        /* "" for the system / admin command */
	char action[64];                        /* "user.create", "session.revoke_all", ... */
	char target[STORE_ID_MAX + 1];          /* what it was done to ("" when none) */
	char detail[256];                       /* short JSON or text, never secrets */
	char request_id[65];                    /* X-Request-Id of the request ("" none) */
	long long at;
};

#define STORE_DEVICE_NAME_MAX 128
#define STORE_STATUS_MAX 11                 /* online, offline, maintenance */
#define STORE_METADATA_MAX 4096             /* a JSON object, serialized */
#define STORE_TYPE_MAX 64                   /* event types */
#define STORE_TOPIC_MAX 128

struct store_device {
	char id[STORE_ID_MAX + 1];
	char tenant_id[STORE_ID_MAX + 1];
	char name[STORE_DEVICE_NAME_MAX + 1];
	char status[STORE_STATUS_MAX + 1];
	char metadata[STORE_METADATA_MAX + 1];  /* JSON object text ("{}" when none) */
	long long created_at, updated_at;
	long long last_seen_at;                 /* newest telemetry point, Unix ms (0: none) */
	long long version;                      /* 1 at creation, +1 per update */
};

/* An event to publish once its change is committed: written to the outbox
 * in the change's transaction, published, then deleted (store_outbox_*). */
struct store_event {
	long long seq;                          /* set by the store: the outbox row */
	char tenant_id[STORE_ID_MAX + 1];
	char type[STORE_TYPE_MAX + 1];
	char topic[STORE_TOPIC_MAX + 1];        /* "" for none */
	const char *data;                       /* JSON text, kept by the caller */
	long long created_at;
};

struct store_telemetry {
	char id[STORE_ID_MAX + 1];
	char device_id[STORE_ID_MAX + 1];
	long long ts;                           /* Unix ms */
	const char *metrics;                    /* JSON object text, kept by the caller */
};

struct store_stream_session {
	char id[STORE_ID_MAX + 1];
	char tenant_id[STORE_ID_MAX + 1];
	char user_id[STORE_ID_MAX + 1];
	char session_id[STORE_ID_MAX + 1];     /* the auth session behind it */
	char role[STORE_ROLE_MAX + 1];
	char fgp[65];                           /* fingerprint hash; "" when the token had none */
	char topics[513];                       /* topics= of the first connect; "" for none */
	long long created_at;
	long long connect_by;                   /* first connect no later than this */
	long long expires_at;                   /* reconnects no later than this */
	long long used_at;                      /* first connect; 0 while unused */
	long long finished_at;                  /* ended by a publish with close; 0 while open */
};

/* Called once per row by listing calls; return non-zero to stop early. */
typedef int store_user_fn(void *ctx, const struct store_user *u);
typedef int store_id_fn(void *ctx, const char *id);

struct store;

/* Opens (creating when absent) the SQLite database at path, sets WAL and
 * the busy timeout, and runs pending schema migrations. Each thread gets its
 * own connection with prepared statements, on first use. Returns the store,
 * or NULL with a message in err. */
struct store *store_open_sqlite(const char *path, int busy_timeout_ms, struct buf *err);
/* The PostgreSQL backend (store/postgres.c): conninfo is a libpq
 * connection string. NULL with a message appended to err. */
struct store *store_open_postgres(const char *conninfo, struct buf *err);

/* What guards every call of a store (set once, before any call):
 * - reads and writes each behind a circuit breaker (protect/breaker.h):
 *   failures open it, and while it is open calls fail at once with
 *   STORE_ERROR ("circuit breaker open") without touching the backend.
 *   Two, so that writes failing (a full disk) do not stop reads that work;
 * - reads of one row or one count retried up to `retries` times
 *   (protect/retry.h) after a transient failure. Writes are never retried,
 *   nor are lists: their callback may have passed rows on already;
 * - every call's statements interrupted after `statement_timeout_ms`. */
struct breaker;
struct store_guard {
	struct breaker *reads, *writes; /* NULL: none */
	int retries;                    /* 0..RETRY_MAX */
	long long retry_backoff_ms;
	long long statement_timeout_ms; /* 0: no limit */
};
void store_set_guard(struct store *s, const struct store_guard *g);

/* Logs each call that failed in the backend (after its retries) as a
 * warning, "store_read_failed" or "store_write_failed", with the call and
 * store_errstr (the query's name and SQLite's message; never a query's
 * parameters). At most one line per kind every every_ms: each line counts
 * the failures of its kind left out since the one before ("suppressed").
 * Calls refused by an open breaker or for their arguments are not logged.
 * lg (kept, not copied) NULL: nothing logged. Set once, before any call;
 * calling it again keeps the counts. */
#define STORE_LOG_EVERY_MS 1000
struct logger;
void store_set_log(struct store *s, const struct logger *lg, long long every_ms);

/* Whether the calling thread's connection can write now: 1 yes, 0 no (the
 * store file or its directory is read-only to this process), -1 it cannot
 * even be opened. A connection opened read-only is opened again first, so
 * this sees the file become writable; a write does the same, so writes
 * resume by themselves. Not behind the breakers: a probe for ready. */
int store_writable(struct store *s);

/* Closes every connection and frees the store. No call may be running. */
void store_close(struct store *s);

/* The schema version after migrations (for logs and tests). */
int store_schema_version(struct store *s);

/* A description of the calling thread's last STORE_ERROR; never NULL. */
const char *store_errstr(struct store *s);

/* Tenants. create fills *out (id generated); CONFLICT when the name exists. */
/* Returns 1 if s is a valid tenant or user name: [A-Za-z0-9_.-]{1,64}. */
int store_name_valid(const char *s);

int store_tenant_create(struct store *s, const char *name, long long now, struct store_tenant *out);
int store_tenant_by_name(struct store *s, const char *name, struct store_tenant *out);
int store_tenant_by_id(struct store *s, const char *id, struct store_tenant *out);

/* Users. u->id is generated when empty and written back; CONFLICT when the
 * username exists in the tenant. Lookups are scoped by tenant: a user of
 * another tenant is NOT_FOUND. */
int store_user_create(struct store *s, struct store_user *u);
int store_user_by_name(struct store *s, const char *tenant_id, const char *username,
		       struct store_user *out);
int store_user_by_id(struct store *s, const char *tenant_id, const char *user_id,
		     struct store_user *out);
/* Lists a tenant's users ordered by username. */
int store_user_list(struct store *s, const char *tenant_id, store_user_fn *fn, void *ctx);
/* Changes a user's role; deletes a user (with its auth sessions). NOT_FOUND
 * when the tenant has no such user. Callers revoke the user's sessions
 * first (their tokens carry the old role). */
int store_user_set_role(struct store *s, const char *tenant_id, const char *user_id,
			const char *role);
int store_user_delete(struct store *s, const char *tenant_id, const char *user_id);

/* Auth sessions. create stores *sess as given (id set by the caller). */
int store_session_create(struct store *s, const struct store_session *sess);
int store_session_get(struct store *s, const char *id, struct store_session *out);
/* Marks one session revoked at now (NOT_FOUND when absent; OK when it was
 * already revoked, keeping the first time). */
int store_session_revoke(struct store *s, const char *id, long long now);
/* Revokes every live session of a user in a tenant; calls fn with each id
 * revoked, so caches can be invalidated. */
int store_session_revoke_user(struct store *s, const char *tenant_id, const char *user_id,
			      long long now, store_id_fn *fn, void *ctx);
/* Deletes sessions that expired before now (and revoked ones older than
 * now - keep_revoked_s); calls fn with each id deleted. */
int store_session_purge(struct store *s, long long now, long long keep_revoked_s,
			store_id_fn *fn, void *ctx);

/* Stream sessions (API.md §6): one-time ids for EventSource connects.
 * create stores *ss as given (id set by the caller, used_at and
 * finished_at 0). */
int store_stream_session_create(struct store *s, const struct store_stream_session *ss);
int store_stream_session_get(struct store *s, const char *id, struct store_stream_session *out);
/* Records the first connect at now with its topics, only if the session is
 * unused: OK when this call claimed it, CONFLICT when it was used already,
 * NOT_FOUND when absent. */
int store_stream_session_claim(struct store *s, const char *id, long long now,
			       const char *topics);
/* Marks finished (at now) every open stream session of the tenant whose
 * topics include topic. */
int store_stream_session_finish_topic(struct store *s, const char *tenant_id, const char *topic,
				      long long now);
/* Deletes stream sessions past expires_at. */
int store_stream_session_purge(struct store *s, long long now);

/* Audit: appends one record. */
int store_audit_append(struct store *s, const struct store_audit *a);
/* Calls fn for a tenant's audit records with seq < before (0: from the
 * newest), newest first, at most limit. */
typedef int store_audit_fn(void *ctx, const struct store_audit *a);
int store_audit_list(struct store *s, const char *tenant_id, long long before, int limit,
		     store_audit_fn *fn, void *ctx);

/* Devices, scoped by tenant: another tenant's device is NOT_FOUND. Each
 * change commits with its audit record and its event (the outbox) in one
 * transaction: all three or none. ev->seq is set on success. */
typedef int store_device_fn(void *ctx, const struct store_device *d);
/* d complete (id set by the caller, version 1); CONFLICT when the id exists. */
int store_device_create(struct store *s, const struct store_device *d,
			const struct store_audit *a, struct store_event *ev);
int store_device_get(struct store *s, const char *tenant_id, const char *id,
		     struct store_device *out);
/* Replaces name, status, metadata and updated_at, only if the stored
 * version is still d->version (it becomes d->version + 1): CONFLICT when
 * another change came first, NOT_FOUND when absent. */
int store_device_update(struct store *s, const struct store_device *d,
			const struct store_audit *a, struct store_event *ev);
int store_device_delete(struct store *s, const char *tenant_id, const char *id,
			const struct store_audit *a, struct store_event *ev);
/* Devices with status (NULL: any) ordered by id: those after the id
 * `after` (NULL: from the first), skipping offset, at most limit. */
int store_device_list(struct store *s, const char *tenant_id, const char *status,
		      const char *after, long long offset, int limit, store_device_fn *fn,
		      void *ctx);
int store_device_count(struct store *s, const char *tenant_id, const char *status,
		       long long *out);

/* Telemetry: n points of one device, with their events (evs[i] for
 * pts[i]), and the device's last_seen_at, in one transaction; NOT_FOUND
 * when the device is not the tenant's. */
typedef int store_telemetry_fn(void *ctx, const struct store_telemetry *t);
int store_telemetry_append(struct store *s, const char *tenant_id, const char *device_id,
			   const struct store_telemetry *pts, struct store_event *evs, size_t n);
/* A device's newest points first, at most limit. */
int store_telemetry_recent(struct store *s, const char *tenant_id, const char *device_id,
			   int limit, store_telemetry_fn *fn, void *ctx);
/* Retention: deletes points older than before_ms, and the oldest points of
 * any device holding more than keep_per_device (0: no bound), in batches
 * of short transactions. Adds the count deleted to *deleted. */
int store_telemetry_purge(struct store *s, long long before_ms, long long keep_per_device,
			  long long *deleted);

/* The outbox: events committed but maybe not yet published. list calls
 * fn with those created at or before created_before, oldest first. */
typedef int store_event_fn(void *ctx, const struct store_event *e);
int store_outbox_list(struct store *s, long long created_before, int limit, store_event_fn *fn,
		      void *ctx);
/* Deletes the events first..last (seqs, inclusive): published. */
int store_outbox_delete(struct store *s, long long first, long long last);
/* Whether s is a device status: online, offline or maintenance. */
int store_status_valid(const char *s);

#endif
