/* store: the public API of store.h. Checks arguments once for every
 * backend, generates ids, then dispatches through the backend's ops. */
#include "store.h"

#include <json-c/json.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/clock.h"
#include "../core/log.h"
#include "../protect/breaker.h"
#include "../protect/retry.h"
#include "../session/session.h"
#include "backend.h"

#define NAME_CHARS "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-"
#define ID_CHARS "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-"

static const char BAD_TENANT_NAME[] = "tenant name must be 1-64 characters from [A-Za-z0-9_.-]";
static const char BAD_USERNAME[] = "username must be 1-64 characters from [A-Za-z0-9_.-]";
static const char BAD_TENANT_ID[] = "tenant id must be 1-64 characters from [A-Za-z0-9_-]";
static const char BAD_USER_ID[] = "user id must be 1-64 characters from [A-Za-z0-9_-]";
static const char BAD_SESSION_ID[] = "session id must be 1-64 characters from [A-Za-z0-9_-]";
static const char BAD_ROLE[] = "role must be viewer, operator or admin";
static const char NULL_OUT[] = "out is NULL";
static const char NULL_FN[] = "callback is NULL";

static const char *const roles[] = { "viewer", "operator", "admin" };

/* s is 1..max characters, all from set. */
static int is_word(const char *s, const char *set, size_t max)
{
	size_t n;

	if (s == NULL)
		return 0;
	n = strnlen(s, max + 1);
	return n >= 1 && n <= max && strspn(s, set) == n;
}

static int is_name(const char *s)
{
	return is_word(s, NAME_CHARS, STORE_NAME_MAX);
}

int store_name_valid(const char *s)
{
	return is_name(s);
}

/* The shape of ids in URLs (router: [A-Za-z0-9_-]{1,64}); session_id_new
 * ids are a subset. */
static int is_id(const char *s)
{
	return is_word(s, ID_CHARS, STORE_ID_MAX);
}

static int is_role(const char *s)
{
	if (s == NULL)
		return 0;
	for (size_t i = 0; i < sizeof(roles) / sizeof(roles[0]); i++)
		if (strcmp(s, roles[i]) == 0)
			return 1;
	return 0;
}

/* A fixed-size field of a caller's struct holds a terminated string. */
static int fits(const char *field, size_t size)
{
	return memchr(field, '\0', size) != NULL;
}

static int fail(struct store *s, const char *prefix, const char *what)
{
	char msg[256];

	snprintf(msg, sizeof(msg), "%s: %s", prefix, what);
	s->ops->set_error(s->impl, msg);
	return STORE_ERROR;
}

/* Records "invalid argument: what" as the thread's error. */
static int invalid(struct store *s, const char *what)
{
	return fail(s, "invalid argument", what);
}

static int new_id(struct store *s, char *out)
{
	if (session_id_new(out) != 0)
		return fail(s, "id generation", "random source failed");
	return STORE_OK;
}

/* ------------------------------------------------------ the guard */

void store_set_guard(struct store *s, const struct store_guard *g)
{
	s->guard = *g;
	if (s->guard.retries < 0)
		s->guard.retries = 0;
	if (s->guard.retries > RETRY_MAX)
		s->guard.retries = RETRY_MAX;
}

void store_set_log(struct store *s, const struct logger *lg, long long every_ms)
{
	s->lg = lg;
	s->log_every_ms = every_ms > 0 ? every_ms : 0;
}

int store_writable(struct store *s)
{
	return s->ops->writable ? s->ops->writable(s->impl) : 1;
}

/* One store call through the guard: enter() before each attempt, then
 * again() (which may ask for one more) or finish() with its result. */
struct attempt {
	struct store *s;
	const char *call;  /* the public function, for the log */
	int kind;          /* STORE_LOG_READ or _WRITE */
	struct breaker *b; /* of its kind (NULL: none) */
	int retries;       /* at most, after a transient failure */
	int made;          /* retries made */
	int entered;       /* the breaker let the attempt through */
};

static struct attempt reading(struct store *s, const char *call)
{
	return (struct attempt){ s, call, STORE_LOG_READ, s->guard.reads, s->guard.retries, 0, 0 };
}

static struct attempt listing(struct store *s, const char *call)
{
	return (struct attempt){ s, call, STORE_LOG_READ, s->guard.reads, 0, 0, 0 };
}

static struct attempt writing(struct store *s, const char *call)
{
	return (struct attempt){ s, call, STORE_LOG_WRITE, s->guard.writes, 0, 0, 0 };
}

/* 1 when the backend may be called now; 0 (error recorded) while the
 * breaker is open. */
static int enter(struct attempt *g)
{
	struct store *s = g->s;

	g->entered = g->b == NULL || breaker_allow(g->b, clock_mono_ms());
	if (!g->entered) {
		s->ops->set_error(s->impl, "store unavailable: circuit breaker open");
		return 0;
	}
	s->ops->begin(s->impl, s->guard.statement_timeout_ms);
	return 1;
}

/* Logs the failure of the call g made, unless a line of its kind was
 * written less than log_every_ms ago: then it only counts it, for the next
 * line. A failing disk fails every write; one line a second says so as
 * well as thousands would. */
static void log_failure(const struct attempt *g)
{
	struct store *s = g->s;
	struct store_lograte *r = &s->lograte[g->kind];
	const char *msg = g->kind == STORE_LOG_WRITE ? "store_write_failed" : "store_read_failed";
	struct json_object *f;
	unsigned long left_out;
	long long now, last;

	if (s->lg == NULL || !log_enabled(s->lg, LOG_WARN))
		return;
	now = clock_mono_ms();
	last = atomic_load(&r->last_ms);
	/* of threads failing at once, the one whose exchange wins writes */
	if ((last != 0 && now - last < s->log_every_ms) ||
	    !atomic_compare_exchange_strong(&r->last_ms, &last, now > 0 ? now : 1)) {
		atomic_fetch_add(&r->suppressed, 1);
		return;
	}
	left_out = atomic_exchange(&r->suppressed, 0);
	if ((f = json_object_new_object()) == NULL) {
		log_text(s->lg, LOG_WARN, msg, s->ops->errstr(s->impl));
		return;
	}
	json_object_object_add(f, "call", json_object_new_string(g->call));
	json_object_object_add(f, "error", json_object_new_string(s->ops->errstr(s->impl)));
	json_object_object_add(f, "suppressed", json_object_new_int64((int64_t)left_out));
	log_json(s->lg, LOG_WARN, msg, f);
}

/* Records the attempt's outcome with the breaker; 1 when it failed
 * transiently and may be made again (after a jittered pause). A failure
 * that is not made again is logged. */
static int again(struct attempt *g, int rc)
{
	struct store *s = g->s;

	if (!g->entered)
		return 0;
	if (rc != STORE_ERROR) {
		if (g->b != NULL)
			breaker_success(g->b, clock_mono_ms());
		return 0;
	}
	if (g->b != NULL)
		breaker_failure(g->b, clock_mono_ms());
	if (g->made < g->retries && s->ops->transient(s->impl)) {
		retry_pause(++g->made, s->guard.retry_backoff_ms);
		return 1;
	}
	log_failure(g);
	return 0;
}

/* again() for a call that is never retried (writing, listing); returns rc. */
static int finish(struct attempt *g, int rc)
{
	again(g, rc);
	return rc;
}

struct store *store_open_sqlite(const char *path, int busy_timeout_ms, struct buf *err)
{
	struct buf scratch = BUF_INIT;
	struct buf *e = err ? err : &scratch;
	struct store *s = NULL;

	if (path == NULL || path[0] == '\0' || busy_timeout_ms < 0) {
		buf_puts(e, "store: invalid argument: path must be set and busy timeout >= 0");
		goto err;
	}
	if ((s = calloc(1, sizeof(*s))) == NULL) {
		buf_puts(e, "store: out of memory");
		goto err;
	}
	s->ops = &store_sqlite_ops;
	if ((s->impl = store_sqlite_open(path, busy_timeout_ms, e)) == NULL)
		goto err;
	buf_release(&scratch);
	return s;
err:
	free(s);
	buf_release(&scratch);
	return NULL;
}

struct store *store_open_postgres(const char *conninfo, struct buf *err)
{
	struct buf scratch = BUF_INIT;
	struct buf *e = err ? err : &scratch;
	struct store *s = NULL;

	if (conninfo == NULL || conninfo[0] == '\0') {
		buf_puts(e, "store: invalid argument: the connection string must be set");
		goto err;
	}
	if ((s = calloc(1, sizeof(*s))) == NULL) {
		buf_puts(e, "store: out of memory");
		goto err;
	}
	s->ops = &store_postgres_ops;
	if ((s->impl = store_postgres_open(conninfo, e)) == NULL)
		goto err;
	buf_release(&scratch);
	return s;
err:
	free(s);
	buf_release(&scratch);
	return NULL;
}

void store_close(struct store *s)
{
	if (s == NULL)
		return;
	s->ops->close(s->impl);
	free(s);
}

int store_schema_version(struct store *s)
{
	return s->ops->schema_version(s->impl);
}

const char *store_errstr(struct store *s)
{
	return s ? s->ops->errstr(s->impl) : "no store";
}

int store_tenant_create(struct store *s, const char *name, long long now, struct store_tenant *out)
{
	struct store_tenant t = { .created_at = now };
	struct attempt g;
	int rc;

	if (!is_name(name))
		return invalid(s, BAD_TENANT_NAME);
	if (out == NULL)
		return invalid(s, NULL_OUT);
	if ((rc = new_id(s, t.id)) != STORE_OK)
		return rc;
	memcpy(t.name, name, strlen(name) + 1);
	g = writing(s, __func__);
	if ((rc = finish(&g, enter(&g) ?
			s->ops->tenant_create(s->impl, &t)
			: STORE_ERROR)) == STORE_OK)
		*out = t;
	return rc;
}

int store_tenant_by_name(struct store *s, const char *name, struct store_tenant *out)
{
	struct attempt g = reading(s, __func__);
	int rc;

	if (!is_name(name))
		return invalid(s, BAD_TENANT_NAME);
	if (out == NULL)
		return invalid(s, NULL_OUT);
	do
		rc = enter(&g) ? s->ops->tenant_by_name(s->impl, name, out) : STORE_ERROR;
	while (again(&g, rc));
	return rc;
}

int store_tenant_by_id(struct store *s, const char *id, struct store_tenant *out)
{
	struct attempt g = reading(s, __func__);
	int rc;

	if (!is_id(id))
		return invalid(s, BAD_TENANT_ID);
	if (out == NULL)
		return invalid(s, NULL_OUT);
	do
		rc = enter(&g) ? s->ops->tenant_by_id(s->impl, id, out) : STORE_ERROR;
	while (again(&g, rc));
	return rc;
}

static int check_user(struct store *s, const struct store_user *u)
{
	if (u == NULL)
		return invalid(s, "user is NULL");
	if (!fits(u->id, sizeof(u->id)) || (u->id[0] != '\0' && !is_id(u->id)))
		return invalid(s, "user id must be empty or 1-64 characters from [A-Za-z0-9_-]");
	if (!fits(u->tenant_id, sizeof(u->tenant_id)) || !is_id(u->tenant_id))
		return invalid(s, BAD_TENANT_ID);
	if (!fits(u->username, sizeof(u->username)) || !is_name(u->username))
		return invalid(s, BAD_USERNAME);
	if (!fits(u->role, sizeof(u->role)) || !is_role(u->role))
		return invalid(s, BAD_ROLE);
	if (!fits(u->password_hash, sizeof(u->password_hash)) || u->password_hash[0] == '\0')
		return invalid(s, "password hash must be 1-160 characters");
	return STORE_OK;
}

int store_user_create(struct store *s, struct store_user *u)
{
	struct store_user row;
	struct attempt g;
	int rc;

	if ((rc = check_user(s, u)) != STORE_OK)
		return rc;
	row = *u;
	if (row.id[0] == '\0' && (rc = new_id(s, row.id)) != STORE_OK)
		return rc;
	g = writing(s, __func__);
	if ((rc = finish(&g, enter(&g) ?
			s->ops->user_create(s->impl, &row)
			: STORE_ERROR)) == STORE_OK)
		memcpy(u->id, row.id, sizeof(u->id));
	return rc;
}

int store_user_by_name(struct store *s, const char *tenant_id, const char *username,
		       struct store_user *out)
{
	struct attempt g = reading(s, __func__);
	int rc;

	if (!is_id(tenant_id))
		return invalid(s, BAD_TENANT_ID);
	if (!is_name(username))
		return invalid(s, BAD_USERNAME);
	if (out == NULL)
		return invalid(s, NULL_OUT);
	do
		rc = enter(&g) ?
			s->ops->user_by_name(s->impl, tenant_id, username, out)
			: STORE_ERROR;
	while (again(&g, rc));
	return rc;
}

int store_user_by_id(struct store *s, const char *tenant_id, const char *user_id,
		     struct store_user *out)
{
	struct attempt g = reading(s, __func__);
	int rc;

	if (!is_id(tenant_id))
		return invalid(s, BAD_TENANT_ID);
	if (!is_id(user_id))
		return invalid(s, BAD_USER_ID);
	if (out == NULL)
		return invalid(s, NULL_OUT);
	do
		rc = enter(&g) ? s->ops->user_by_id(s->impl, tenant_id, user_id, out) : STORE_ERROR;
	while (again(&g, rc));
	return rc;
}

int store_user_list(struct store *s, const char *tenant_id, store_user_fn *fn, void *ctx)
{
	struct attempt g = listing(s, __func__);

	if (!is_id(tenant_id))
		return invalid(s, BAD_TENANT_ID);
	if (fn == NULL)
		return invalid(s, NULL_FN);
	return finish(&g, enter(&g) ? s->ops->user_list(s->impl, tenant_id, fn, ctx) : STORE_ERROR);
}

int store_user_set_role(struct store *s, const char *tenant_id, const char *user_id,
			const char *role)
{
	struct attempt g = writing(s, __func__);

	if (!is_id(tenant_id) || !is_id(user_id))
		return invalid(s, BAD_USER_ID);
	if (!is_role(role))
		return invalid(s, BAD_ROLE);
	return finish(&g, enter(&g) ?
			s->ops->user_set_role(s->impl, tenant_id, user_id, role)
			: STORE_ERROR);
}

int store_user_delete(struct store *s, const char *tenant_id, const char *user_id)
{
	struct attempt g = writing(s, __func__);

	if (!is_id(tenant_id) || !is_id(user_id))
		return invalid(s, BAD_USER_ID);
	return finish(&g, enter(&g) ?
			s->ops->user_delete(s->impl, tenant_id, user_id)
			: STORE_ERROR);
}

static int check_session(struct store *s, const struct store_session *sess)
{
	if (sess == NULL)
		return invalid(s, "session is NULL");
	if (!fits(sess->id, sizeof(sess->id)) || !is_id(sess->id))
		return invalid(s, BAD_SESSION_ID);
	if (!fits(sess->user_id, sizeof(sess->user_id)) || !is_id(sess->user_id))
		return invalid(s, BAD_USER_ID);
	if (!fits(sess->tenant_id, sizeof(sess->tenant_id)) || !is_id(sess->tenant_id))
		return invalid(s, BAD_TENANT_ID);
	if (!fits(sess->role, sizeof(sess->role)) || !is_role(sess->role))
		return invalid(s, BAD_ROLE);
	if (sess->expires_at <= sess->created_at)
		return invalid(s, "session must expire after it is created");
	if (sess->revoked_at < 0)
		return invalid(s, "revoked_at must be 0 or a time");
	return STORE_OK;
}

int store_session_create(struct store *s, const struct store_session *sess)
{
	struct attempt g = writing(s, __func__);
	int rc;

	if ((rc = check_session(s, sess)) != STORE_OK)
		return rc;
	return finish(&g, enter(&g) ? s->ops->session_create(s->impl, sess) : STORE_ERROR);
}

int store_session_get(struct store *s, const char *id, struct store_session *out)
{
	struct attempt g = reading(s, __func__);
	int rc;

	if (!is_id(id))
		return invalid(s, BAD_SESSION_ID);
	if (out == NULL)
		return invalid(s, NULL_OUT);
	do
		rc = enter(&g) ? s->ops->session_get(s->impl, id, out) : STORE_ERROR;
	while (again(&g, rc));
	return rc;
}

/* revoked_at 0 means "live", so a revocation time must be positive. */
int store_session_revoke(struct store *s, const char *id, long long now)
{
	struct attempt g = writing(s, __func__);

	if (!is_id(id))
		return invalid(s, BAD_SESSION_ID);
	if (now <= 0)
		return invalid(s, "now must be positive");
	return finish(&g, enter(&g) ? s->ops->session_revoke(s->impl, id, now) : STORE_ERROR);
}

int store_session_revoke_user(struct store *s, const char *tenant_id, const char *user_id,
			      long long now, store_id_fn *fn, void *ctx)
{
	struct attempt g = writing(s, __func__);

	if (!is_id(tenant_id))
		return invalid(s, BAD_TENANT_ID);
	if (!is_id(user_id))
		return invalid(s, BAD_USER_ID);
	if (now <= 0)
		return invalid(s, "now must be positive");
	return finish(&g, enter(&g) ?
			s->ops->session_revoke_user(s->impl, tenant_id, user_id, now, fn, ctx)
			: STORE_ERROR);
}

int store_session_purge(struct store *s, long long now, long long keep_revoked_s,
			store_id_fn *fn, void *ctx)
{
	struct attempt g = writing(s, __func__);

	if (now <= 0 || keep_revoked_s < 0)
		return invalid(s, "now must be positive and keep_revoked_s >= 0");
	return finish(&g, enter(&g) ?
			s->ops->session_purge(s->impl, now, keep_revoked_s, fn, ctx)
			: STORE_ERROR);
}

int store_audit_append(struct store *s, const struct store_audit *a)
{
	struct attempt g = writing(s, __func__);

	if (a == NULL)
		return invalid(s, "audit record is NULL");
	if (!fits(a->tenant_id, sizeof(a->tenant_id)) || !is_id(a->tenant_id))
		return invalid(s, BAD_TENANT_ID);
	if (!fits(a->actor_id, sizeof(a->actor_id)) ||
	    (a->actor_id[0] != '\0' && !is_id(a->actor_id)))
		return invalid(s, "actor id must be empty or 1-64 characters from [A-Za-z0-9_-]");
	if (!fits(a->action, sizeof(a->action)) || a->action[0] == '\0')
		return invalid(s, "action must be 1-63 characters");
	if (!fits(a->target, sizeof(a->target)) || !fits(a->detail, sizeof(a->detail)) ||
	    !fits(a->request_id, sizeof(a->request_id)))
		return invalid(s, "target, detail or request id is not a terminated string");
	return finish(&g, enter(&g) ? s->ops->audit_append(s->impl, a) : STORE_ERROR);
}

int store_audit_list(struct store *s, const char *tenant_id, long long before, int limit,
		     store_audit_fn *fn, void *ctx)
{
	struct attempt g = listing(s, __func__);

	if (!is_id(tenant_id))
		return invalid(s, BAD_TENANT_ID);
	if (limit <= 0 || before < 0)
		return invalid(s, "limit must be positive and before not negative");
	if (fn == NULL)
		return invalid(s, NULL_FN);
	return finish(&g, enter(&g) ?
			s->ops->audit_list(s->impl, tenant_id, before, limit, fn, ctx)
			: STORE_ERROR);
}

/* ------------------------------------------------------ devices */

static const char *const statuses[] = { "online", "offline", "maintenance" };

int store_status_valid(const char *st)
{
	if (st == NULL)
		return 0;
	for (size_t i = 0; i < sizeof(statuses) / sizeof(statuses[0]); i++)
		if (strcmp(st, statuses[i]) == 0)
			return 1;
	return 0;
}

static int audit_ok(const struct store_audit *a)
{
	return a != NULL && fits(a->tenant_id, sizeof(a->tenant_id)) && is_id(a->tenant_id) &&
	       fits(a->actor_id, sizeof(a->actor_id)) &&
	       (a->actor_id[0] == '\0' || is_id(a->actor_id)) && fits(a->action, sizeof(a->action)) &&
	       a->action[0] != '\0' && fits(a->target, sizeof(a->target)) &&
	       fits(a->detail, sizeof(a->detail)) && fits(a->request_id, sizeof(a->request_id));
}

static int event_ok(const struct store_event *ev)
{
	return ev != NULL && fits(ev->tenant_id, sizeof(ev->tenant_id)) && is_id(ev->tenant_id) &&
	       fits(ev->type, sizeof(ev->type)) && ev->type[0] != '\0' &&
	       fits(ev->topic, sizeof(ev->topic)) && ev->data != NULL;
}

static int device_ok(const struct store_device *d)
{
	return d != NULL && fits(d->id, sizeof(d->id)) && is_id(d->id) &&
	       fits(d->tenant_id, sizeof(d->tenant_id)) && is_id(d->tenant_id) &&
	       fits(d->name, sizeof(d->name)) && d->name[0] != '\0' &&
	       fits(d->status, sizeof(d->status)) && store_status_valid(d->status) &&
	       fits(d->metadata, sizeof(d->metadata)) && d->metadata[0] == '{' && d->version >= 1;
}

static const char BAD_DEVICE[] = "device: bad id, tenant, name, status, metadata or version";
static const char BAD_CHANGE[] = "device change: bad audit record or event";

int store_device_create(struct store *s, const struct store_device *d,
			const struct store_audit *a, struct store_event *ev)
{
	struct attempt g = writing(s, __func__);

	if (!device_ok(d) || d->version != 1)
		return invalid(s, BAD_DEVICE);
	if (!audit_ok(a) || !event_ok(ev))
		return invalid(s, BAD_CHANGE);
	return finish(&g, enter(&g) ? s->ops->device_create(s->impl, d, a, ev) : STORE_ERROR);
}

int store_device_get(struct store *s, const char *tenant_id, const char *id,
		     struct store_device *out)
{
	struct attempt g = reading(s, __func__);
	int rc;

	if (!is_id(tenant_id) || !is_id(id))
		return invalid(s, "device: bad tenant or device id");
	if (out == NULL)
		return invalid(s, NULL_OUT);
	do
		rc = enter(&g) ? s->ops->device_get(s->impl, tenant_id, id, out) : STORE_ERROR;
	while (again(&g, rc));
	return rc;
}

int store_device_update(struct store *s, const struct store_device *d,
			const struct store_audit *a, struct store_event *ev)
{
	struct attempt g = writing(s, __func__);

	if (!device_ok(d))
		return invalid(s, BAD_DEVICE);
	if (!audit_ok(a) || !event_ok(ev))
		return invalid(s, BAD_CHANGE);
	return finish(&g, enter(&g) ? s->ops->device_update(s->impl, d, a, ev) : STORE_ERROR);
}

int store_device_delete(struct store *s, const char *tenant_id, const char *id,
			const struct store_audit *a, struct store_event *ev)
{
	struct attempt g = writing(s, __func__);

	if (!is_id(tenant_id) || !is_id(id))
		return invalid(s, "device: bad tenant or device id");
	if (!audit_ok(a) || !event_ok(ev))
		return invalid(s, BAD_CHANGE);
	return finish(&g, enter(&g) ?
			s->ops->device_delete(s->impl, tenant_id, id, a, ev)
			: STORE_ERROR);
}

int store_device_list(struct store *s, const char *tenant_id, const char *status,
		      const char *after, long long offset, int limit, store_device_fn *fn,
		      void *ctx)
{
	struct attempt g = listing(s, __func__);

	if (!is_id(tenant_id) || (status != NULL && !store_status_valid(status)) ||
	    (after != NULL && !is_id(after)))
		return invalid(s, "device list: bad tenant, status or cursor");
	if (limit <= 0 || offset < 0)
		return invalid(s, "device list: limit must be positive, offset not negative");
	if (fn == NULL)
		return invalid(s, NULL_FN);
	return finish(&g, enter(&g) ?
			s->ops->device_list(s->impl, tenant_id, status ? status : "",
				after ? after : "", offset, limit, fn, ctx)
			: STORE_ERROR);
}

int store_device_count(struct store *s, const char *tenant_id, const char *status,
		       long long *out)
{
	struct attempt g = reading(s, __func__);
	int rc;

	if (!is_id(tenant_id) || (status != NULL && !store_status_valid(status)))
		return invalid(s, "device count: bad tenant or status");
	if (out == NULL)
		return invalid(s, NULL_OUT);
	do
		rc = enter(&g) ?
			s->ops->device_count(s->impl, tenant_id, status ? status : "", out)
			: STORE_ERROR;
	while (again(&g, rc));
	return rc;
}

/* ------------------------------------------------------ telemetry */

int store_telemetry_append(struct store *s, const char *tenant_id, const char *device_id,
			   const struct store_telemetry *pts, struct store_event *evs, size_t n)
{
	struct attempt g = writing(s, __func__);

	if (!is_id(tenant_id) || !is_id(device_id))
		return invalid(s, "telemetry: bad tenant or device id");
	if (n == 0 || pts == NULL || evs == NULL)
		return invalid(s, "telemetry: no points");
	for (size_t i = 0; i < n; i++)
		if (!fits(pts[i].id, sizeof(pts[i].id)) || !is_id(pts[i].id) ||
		    pts[i].metrics == NULL || pts[i].metrics[0] != '{' || pts[i].ts <= 0 ||
		    !event_ok(&evs[i]))
			return invalid(s, "telemetry: bad point id, time, metrics or event");
	return finish(&g, enter(&g) ?
			s->ops->telemetry_append(s->impl, tenant_id, device_id, pts, evs, n)
			: STORE_ERROR);
}

int store_telemetry_recent(struct store *s, const char *tenant_id, const char *device_id,
			   int limit, store_telemetry_fn *fn, void *ctx)
{
	struct attempt g = listing(s, __func__);

	if (!is_id(tenant_id) || !is_id(device_id))
		return invalid(s, "telemetry: bad tenant or device id");
	if (limit <= 0)
		return invalid(s, "limit must be positive");
	if (fn == NULL)
		return invalid(s, NULL_FN);
	return finish(&g, enter(&g) ?
			s->ops->telemetry_recent(s->impl, tenant_id, device_id, limit, fn, ctx)
			: STORE_ERROR);
}

int store_telemetry_purge(struct store *s, long long before_ms, long long keep_per_device,
			  long long *deleted)
{
	struct attempt g = writing(s, __func__);

	if (keep_per_device < 0 || deleted == NULL)
		return invalid(s, "telemetry purge: keep must not be negative, deleted set");
	return finish(&g, enter(&g) ?
			s->ops->telemetry_purge(s->impl, before_ms, keep_per_device, deleted)
			: STORE_ERROR);
}

/* ------------------------------------------------------ outbox */

int store_outbox_list(struct store *s, long long created_before, int limit, store_event_fn *fn,
		      void *ctx)
{
	struct attempt g = listing(s, __func__);

	if (limit <= 0)
		return invalid(s, "limit must be positive");
	if (fn == NULL)
		return invalid(s, NULL_FN);
	return finish(&g, enter(&g) ?
			s->ops->outbox_list(s->impl, created_before, limit, fn, ctx)
			: STORE_ERROR);
}

int store_outbox_delete(struct store *s, long long first, long long last)
{
	struct attempt g = writing(s, __func__);

	if (first <= 0 || last < first)
		return invalid(s, "outbox: seqs must be positive and in order");
	return finish(&g, enter(&g) ? s->ops->outbox_delete(s->impl, first, last) : STORE_ERROR);
}

/* ------------------------------------------------------ stream sessions */

int store_stream_session_create(struct store *s, const struct store_stream_session *ss)
{
	struct attempt g = writing(s, __func__);

	if (ss == NULL || !is_id(ss->id) || !is_id(ss->tenant_id) || !is_id(ss->user_id) ||
	    !is_id(ss->session_id))
		return invalid(s, "stream session: bad id");
	if (ss->connect_by < ss->created_at || ss->expires_at < ss->connect_by)
		return invalid(s, "stream session: times out of order");
	return finish(&g, enter(&g) ? s->ops->stream_session_create(s->impl, ss) : STORE_ERROR);
}

int store_stream_session_get(struct store *s, const char *id, struct store_stream_session *out)
{
	struct attempt g = reading(s, __func__);
	int rc;

	if (!is_id(id))
		return invalid(s, "stream session: bad id");
	if (out == NULL)
		return invalid(s, NULL_OUT);
	do
		rc = enter(&g) ? s->ops->stream_session_get(s->impl, id, out) : STORE_ERROR;
	while (again(&g, rc));
	return rc;
}

int store_stream_session_claim(struct store *s, const char *id, long long now,
			       const char *topics)
{
	struct attempt g = writing(s, __func__);

	if (!is_id(id) || topics == NULL || strlen(topics) > 512)
		return invalid(s, "stream session: bad id or topics");
	if (now <= 0)
		return invalid(s, "now must be positive");
	return finish(&g, enter(&g) ?
			s->ops->stream_session_claim(s->impl, id, now, topics)
			: STORE_ERROR);
}

int store_stream_session_finish_topic(struct store *s, const char *tenant_id, const char *topic,
				      long long now)
{
	struct attempt g = writing(s, __func__);

	if (!is_id(tenant_id) || topic == NULL || *topic == '\0' || strchr(topic, ',') != NULL)
		return invalid(s, "stream session: bad tenant or topic");
	if (now <= 0)
		return invalid(s, "now must be positive");
	return finish(&g, enter(&g) ?
			s->ops->stream_session_finish_topic(s->impl, tenant_id, topic, now)
			: STORE_ERROR);
}

int store_stream_session_purge(struct store *s, long long now)
{
	struct attempt g = writing(s, __func__);

	return finish(&g, enter(&g) ? s->ops->stream_session_purge(s->impl, now) : STORE_ERROR);
}
