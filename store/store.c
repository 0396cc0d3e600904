/* store: the public API of store.h. Checks arguments once for every
 * backend, generates ids, then dispatches through the backend's ops. */
#include "store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
	int rc;

	if (!is_name(name))
		return invalid(s, BAD_TENANT_NAME);
	if (out == NULL)
		return invalid(s, NULL_OUT);
	if ((rc = new_id(s, t.id)) != STORE_OK)
		return rc;
	memcpy(t.name, name, strlen(name) + 1);
	if ((rc = s->ops->tenant_create(s->impl, &t)) == STORE_OK)
		*out = t;
	return rc;
}

int store_tenant_by_name(struct store *s, const char *name, struct store_tenant *out)
{
	if (!is_name(name))
		return invalid(s, BAD_TENANT_NAME);
	if (out == NULL)
		return invalid(s, NULL_OUT);
	return s->ops->tenant_by_name(s->impl, name, out);
}

int store_tenant_by_id(struct store *s, const char *id, struct store_tenant *out)
{
	if (!is_id(id))
		return invalid(s, BAD_TENANT_ID);
	if (out == NULL)
		return invalid(s, NULL_OUT);
	return s->ops->tenant_by_id(s->impl, id, out);
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
	int rc;

	if ((rc = check_user(s, u)) != STORE_OK)
		return rc;
	row = *u;
	if (row.id[0] == '\0' && (rc = new_id(s, row.id)) != STORE_OK)
		return rc;
	if ((rc = s->ops->user_create(s->impl, &row)) == STORE_OK)
		memcpy(u->id, row.id, sizeof(u->id));
	return rc;
}

int store_user_by_name(struct store *s, const char *tenant_id, const char *username,
		       struct store_user *out)
{
	if (!is_id(tenant_id))
		return invalid(s, BAD_TENANT_ID);
	if (!is_name(username))
		return invalid(s, BAD_USERNAME);
	if (out == NULL)
		return invalid(s, NULL_OUT);
	return s->ops->user_by_name(s->impl, tenant_id, username, out);
}

int store_user_by_id(struct store *s, const char *tenant_id, const char *user_id,
		     struct store_user *out)
{
	if (!is_id(tenant_id))
		return invalid(s, BAD_TENANT_ID);
	if (!is_id(user_id))
		return invalid(s, BAD_USER_ID);
	if (out == NULL)
		return invalid(s, NULL_OUT);
	return s->ops->user_by_id(s->impl, tenant_id, user_id, out);
}

int store_user_list(struct store *s, const char *tenant_id, store_user_fn *fn, void *ctx)
{
	if (!is_id(tenant_id))
		return invalid(s, BAD_TENANT_ID);
	if (fn == NULL)
		return invalid(s, NULL_FN);
	return s->ops->user_list(s->impl, tenant_id, fn, ctx);
}

int store_user_set_role(struct store *s, const char *tenant_id, const char *user_id,
			const char *role)
{
	if (!is_id(tenant_id) || !is_id(user_id))
		return invalid(s, BAD_USER_ID);
	if (!is_role(role))
		return invalid(s, BAD_ROLE);
	return s->ops->user_set_role(s->impl, tenant_id, user_id, role);
}

int store_user_delete(struct store *s, const char *tenant_id, const char *user_id)
{
	if (!is_id(tenant_id) || !is_id(user_id))
		return invalid(s, BAD_USER_ID);
	return s->ops->user_delete(s->impl, tenant_id, user_id);
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
	int rc;

	if ((rc = check_session(s, sess)) != STORE_OK)
		return rc;
	return s->ops->session_create(s->impl, sess);
}

int store_session_get(struct store *s, const char *id, struct store_session *out)
{
	if (!is_id(id))
		return invalid(s, BAD_SESSION_ID);
	if (out == NULL)
		return invalid(s, NULL_OUT);
	return s->ops->session_get(s->impl, id, out);
}

/* revoked_at 0 means "live", so a revocation time must be positive. */
int store_session_revoke(struct store *s, const char *id, long long now)
{
	if (!is_id(id))
		return invalid(s, BAD_SESSION_ID);
	if (now <= 0)
		return invalid(s, "now must be positive");
	return s->ops->session_revoke(s->impl, id, now);
}

int store_session_revoke_user(struct store *s, const char *tenant_id, const char *user_id,
			      long long now, store_id_fn *fn, void *ctx)
{
	if (!is_id(tenant_id))
		return invalid(s, BAD_TENANT_ID);
	if (!is_id(user_id))
		return invalid(s, BAD_USER_ID);
	if (now <= 0)
		return invalid(s, "now must be positive");
	return s->ops->session_revoke_user(s->impl, tenant_id, user_id, now, fn, ctx);
}

int store_session_purge(struct store *s, long long now, long long keep_revoked_s,
			store_id_fn *fn, void *ctx)
{
	if (now <= 0 || keep_revoked_s < 0)
		return invalid(s, "now must be positive and keep_revoked_s >= 0");
	return s->ops->session_purge(s->impl, now, keep_revoked_s, fn, ctx);
}

int store_audit_append(struct store *s, const struct store_audit *a)
{
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
	return s->ops->audit_append(s->impl, a);
}

int store_audit_list(struct store *s, const char *tenant_id, long long before, int limit,
		     store_audit_fn *fn, void *ctx)
{
	if (!is_id(tenant_id))
		return invalid(s, BAD_TENANT_ID);
	if (limit <= 0 || before < 0)
		return invalid(s, "limit must be positive and before not negative");
	if (fn == NULL)
		return invalid(s, NULL_FN);
	return s->ops->audit_list(s->impl, tenant_id, before, limit, fn, ctx);
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
	if (!device_ok(d) || d->version != 1)
		return invalid(s, BAD_DEVICE);
	if (!audit_ok(a) || !event_ok(ev))
		return invalid(s, BAD_CHANGE);
	return s->ops->device_create(s->impl, d, a, ev);
}

int store_device_get(struct store *s, const char *tenant_id, const char *id,
		     struct store_device *out)
{
	if (!is_id(tenant_id) || !is_id(id))
		return invalid(s, "device: bad tenant or device id");
	if (out == NULL)
		return invalid(s, NULL_OUT);
	return s->ops->device_get(s->impl, tenant_id, id, out);
}

int store_device_update(struct store *s, const struct store_device *d,
			const struct store_audit *a, struct store_event *ev)
{
	if (!device_ok(d))
		return invalid(s, BAD_DEVICE);
	if (!audit_ok(a) || !event_ok(ev))
		return invalid(s, BAD_CHANGE);
	return s->ops->device_update(s->impl, d, a, ev);
}

int store_device_delete(struct store *s, const char *tenant_id, const char *id,
			const struct store_audit *a, struct store_event *ev)
{
	if (!is_id(tenant_id) || !is_id(id))
		return invalid(s, "device: bad tenant or device id");
	if (!audit_ok(a) || !event_ok(ev))
		return invalid(s, BAD_CHANGE);
	return s->ops->device_delete(s->impl, tenant_id, id, a, ev);
}

int store_device_list(struct store *s, const char *tenant_id, const char *status,
		      const char *after, long long offset, int limit, store_device_fn *fn,
		      void *ctx)
{
	if (!is_id(tenant_id) || (status != NULL && !store_status_valid(status)) ||
	    (after != NULL && !is_id(after)))
		return invalid(s, "device list: bad tenant, status or cursor");
	if (limit <= 0 || offset < 0)
		return invalid(s, "device list: limit must be positive, offset not negative");
	if (fn == NULL)
		return invalid(s, NULL_FN);
	return s->ops->device_list(s->impl, tenant_id, status ? status : "", after ? after : "",
				   offset, limit, fn, ctx);
}

int store_device_count(struct store *s, const char *tenant_id, const char *status,
		       long long *out)
{
	if (!is_id(tenant_id) || (status != NULL && !store_status_valid(status)))
		return invalid(s, "device count: bad tenant or status");
	if (out == NULL)
		return invalid(s, NULL_OUT);
	return s->ops->device_count(s->impl, tenant_id, status ? status : "", out);
}

/* ------------------------------------------------------ telemetry */

int store_telemetry_append(struct store *s, const char *tenant_id, const char *device_id,
			   const struct store_telemetry *pts, struct store_event *evs, size_t n)
{
	if (!is_id(tenant_id) || !is_id(device_id))
		return invalid(s, "telemetry: bad tenant or device id");
	if (n == 0 || pts == NULL || evs == NULL)
		return invalid(s, "telemetry: no points");
	for (size_t i = 0; i < n; i++)
		if (!fits(pts[i].id, sizeof(pts[i].id)) || !is_id(pts[i].id) ||
		    pts[i].metrics == NULL || pts[i].metrics[0] != '{' || pts[i].ts <= 0 ||
		    !event_ok(&evs[i]))
			return invalid(s, "telemetry: bad point id, time, metrics or event");
	return s->ops->telemetry_append(s->impl, tenant_id, device_id, pts, evs, n);
}

int store_telemetry_recent(struct store *s, const char *tenant_id, const char *device_id,
			   int limit, store_telemetry_fn *fn, void *ctx)
{
	if (!is_id(tenant_id) || !is_id(device_id))
		return invalid(s, "telemetry: bad tenant or device id");
	if (limit <= 0)
		return invalid(s, "limit must be positive");
	if (fn == NULL)
		return invalid(s, NULL_FN);
	return s->ops->telemetry_recent(s->impl, tenant_id, device_id, limit, fn, ctx);
}

int store_telemetry_purge(struct store *s, long long before_ms, long long keep_per_device,
			  long long *deleted)
{
	if (keep_per_device < 0 || deleted == NULL)
		return invalid(s, "telemetry purge: keep must not be negative, deleted set");
	return s->ops->telemetry_purge(s->impl, before_ms, keep_per_device, deleted);
}

/* ------------------------------------------------------ outbox */

int store_outbox_list(struct store *s, long long created_before, int limit, store_event_fn *fn,
		      void *ctx)
{
	if (limit <= 0)
		return invalid(s, "limit must be positive");
	if (fn == NULL)
		return invalid(s, NULL_FN);
	return s->ops->outbox_list(s->impl, created_before, limit, fn, ctx);
}

int store_outbox_delete(struct store *s, long long first, long long last)
{
	if (first <= 0 || last < first)
		return invalid(s, "outbox: seqs must be positive and in order");
	return s->ops->outbox_delete(s->impl, first, last);
}

/* ------------------------------------------------------ stream sessions */

int store_stream_session_create(struct store *s, const struct store_stream_session *ss)
{
	if (ss == NULL || !is_id(ss->id) || !is_id(ss->tenant_id) || !is_id(ss->user_id) ||
	    !is_id(ss->session_id))
		return invalid(s, "stream session: bad id");
	if (ss->connect_by < ss->created_at || ss->expires_at < ss->connect_by)
		return invalid(s, "stream session: times out of order");
	return s->ops->stream_session_create(s->impl, ss);
}

int store_stream_session_get(struct store *s, const char *id, struct store_stream_session *out)
{
	if (!is_id(id))
		return invalid(s, "stream session: bad id");
	if (out == NULL)
		return invalid(s, NULL_OUT);
	return s->ops->stream_session_get(s->impl, id, out);
}

int store_stream_session_claim(struct store *s, const char *id, long long now,
			       const char *topics)
{
	if (!is_id(id) || topics == NULL || strlen(topics) > 512)
		return invalid(s, "stream session: bad id or topics");
	if (now <= 0)
		return invalid(s, "now must be positive");
	return s->ops->stream_session_claim(s->impl, id, now, topics);
}

int store_stream_session_finish_topic(struct store *s, const char *tenant_id, const char *topic,
				      long long now)
{
	if (!is_id(tenant_id) || topic == NULL || *topic == '\0' || strchr(topic, ',') != NULL)
		return invalid(s, "stream session: bad tenant or topic");
	if (now <= 0)
		return invalid(s, "now must be positive");
	return s->ops->stream_session_finish_topic(s->impl, tenant_id, topic, now);
}

int store_stream_session_purge(struct store *s, long long now)
{
	return s->ops->stream_session_purge(s->impl, now);
}
