/* Devices (API.md §4), tenant-scoped: another tenant's device is 404 on
 * every route. v2 objects nest the status and use RFC 3339 times and
 * cursor pages; v1 (deprecated) objects are flat with Unix seconds and
 * page/per_page pages as a bare array. Every change commits with its audit
 * record and its event (device.updated / device.deleted, topic
 * device:<id>) in one store transaction; the event is published after the
 * commit (api/outbox.c) and the cached view is rewritten before the answer
 * goes out (api/device_cache.c), so a read after a write sees it through
 * any process. */
#include <json-c/json.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../auth/auth.h"
#include "../core/query.h"
#include "../core/timefmt.h"
#include "../session/session.h"
#include "devices.h"

#define LIST_DEFAULT DEVICES_LIST_DEFAULT
#define LIST_MAX 200
#define V1_PER_PAGE_MAX 100
#define V1_PAGE_MAX 100000
#define META_DEPTH_MAX 4      /* nesting of metadata objects and arrays */
#define META_MEMBERS_MAX 64   /* members of any one object or array */
#define UPDATE_TRIES 4        /* optimistic retries of a change that lost a race */

/* ---------------------------------------------------------------- shapes */

static int raw_text(struct json_object *o, struct printbuf *pb, int level, int flags)
{
	const char *text = json_object_get_userdata(o);

	(void)level, (void)flags;
	return printbuf_memappend(pb, text, (int)strlen(text));
}

/* A device's metadata for an answer: the stored text as it is, with no
 * parse (take_metadata wrote it: one serialized JSON object), or {} when
 * it is not an object's text. */
static struct json_object *metadata_object(const char *text)
{
	size_t n = strlen(text);
	struct json_object *m;
	char *copy;

	if (n >= 2 && text[0] == '{' && text[n - 1] == '}' && (copy = strdup(text)) != NULL) {
		m = json_object_new_object();
		json_object_set_serializer(m, raw_text, copy, json_object_free_userdata);
		return m;
	}
	m = json_tokener_parse(text);

	if (m == NULL || !json_object_is_type(m, json_type_object)) {
		json_object_put(m);
		m = json_object_new_object();
	}
	return m;
}

static struct json_object *ms_time(long long ms)
{
	char s[TIMEFMT_RFC3339_MS_LEN + 1];

	return ms > 0 ? json_object_new_string(timefmt_rfc3339_ms_of(ms, s)) : NULL;
}

static struct json_object *device_v2(const struct store_device *d)
{
	struct json_object *o = json_object_new_object(), *st = json_object_new_object();

	json_object_object_add(st, "state", json_object_new_string(d->status));
	json_object_object_add(st, "last_seen_at", ms_time(d->last_seen_at));
	json_object_object_add(o, "id", json_object_new_string(d->id));
	json_object_object_add(o, "name", json_object_new_string(d->name));
	json_object_object_add(o, "status", st);
	json_object_object_add(o, "metadata", metadata_object(d->metadata));
	json_object_object_add(o, "created_at", api_json_time(d->created_at));
	json_object_object_add(o, "updated_at", api_json_time(d->updated_at));
	json_object_object_add(o, "version", json_object_new_int64(d->version));
	return o;
}

static struct json_object *device_v1(const struct store_device *d)
{
	struct json_object *o = json_object_new_object();

	json_object_object_add(o, "id", json_object_new_string(d->id));
	json_object_object_add(o, "name", json_object_new_string(d->name));
	json_object_object_add(o, "status", json_object_new_string(d->status));
	json_object_object_add(o, "last_seen",
			       d->last_seen_at > 0 ? json_object_new_int64(d->last_seen_at / 1000)
						   : NULL);
	json_object_object_add(o, "metadata", metadata_object(d->metadata));
	json_object_object_add(o, "created_at", json_object_new_int64(d->created_at));
	json_object_object_add(o, "updated_at", json_object_new_int64(d->updated_at));
	return o;
}

static struct json_object *device_json(const struct api_call *call, const struct store_device *d)
{
	return call->version == 1 ? device_v1(d) : device_v2(d);
}

/* ---------------------------------------------------------------- input */

/* Names: 1-128 bytes of UTF-8 (checked by the parser) without controls. */
static int name_ok(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return 0;
	return 1;
}

static int meta_shape_ok(struct json_object *v, int depth)
{
	size_t n;

	switch (json_object_get_type(v)) {
	case json_type_object: {
		if (depth >= META_DEPTH_MAX || json_object_object_length(v) > META_MEMBERS_MAX)
			return 0;
		json_object_object_foreach(v, key, member) {
			(void)key;
			if (!meta_shape_ok(member, depth + 1))
				return 0;
		}
		return 1;
	}
	case json_type_array:
		n = json_object_array_length(v);
		if (depth >= META_DEPTH_MAX || n > META_MEMBERS_MAX)
			return 0;
		for (size_t i = 0; i < n; i++)
			if (!meta_shape_ok(json_object_array_get_idx(v, i), depth + 1))
				return 0;
		return 1;
	case json_type_double:
		return isfinite(json_object_get_double(v));
	default:
		return 1;
	}
}

/* Copies the metadata object into out (serialized). 0, or -1 with 400. */
static int take_metadata(struct api_call *call, struct json_object *v, char *out, size_t cap)
{
	const char *text;
	char detail[200];

	if (!json_object_is_type(v, json_type_object) || !meta_shape_ok(v, 0)) {
		snprintf(detail, sizeof(detail),
			 "Field 'metadata' must be a JSON object nested at most %d deep, with at most "
			 "%d members in any object or array.", META_DEPTH_MAX, META_MEMBERS_MAX);
		api_error(call, API_ERR_REQUEST_INVALID_FIELD, detail);
		return -1;
	}
	text = json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN |
						     JSON_C_TO_STRING_NOSLASHESCAPE);
	if (text == NULL || strlen(text) >= cap) {
		snprintf(detail, sizeof(detail), "Field 'metadata' may be at most %d bytes as JSON.",
			 STORE_METADATA_MAX);
		api_error(call, API_ERR_REQUEST_INVALID_FIELD, detail);
		return -1;
	}
	memcpy(out, text, strlen(text) + 1);
	return 0;
}

/* The changes a body asks for, checked, applied to d. Returns 0 (and sets
 * *fields to the names changed, for the audit), or -1 with 400 set. */
static int apply_fields(struct api_call *call, struct json_object *in, struct store_device *d,
			int need_name, char *fields, size_t cap)
{
	struct json_object *v;
	const char *s;

	fields[0] = '\0';
	if (json_object_object_get_ex(in, "name", &v) || need_name) {
		if ((s = api_field_string(call, in, "name", 1, STORE_DEVICE_NAME_MAX, name_ok,
					  "a string of 1-128 bytes without control characters")) == NULL)
			return -1;
		snprintf(d->name, sizeof(d->name), "%s", s);
		snprintf(fields + strlen(fields), cap - strlen(fields), "name,");
	}
	if (json_object_object_get_ex(in, "status", &v)) {
		if ((s = api_field_string(call, in, "status", 1, STORE_STATUS_MAX, store_status_valid,
					  "one of online, offline, maintenance")) == NULL)
			return -1;
		snprintf(d->status, sizeof(d->status), "%s", s);
		snprintf(fields + strlen(fields), cap - strlen(fields), "status,");
	}
	if (json_object_object_get_ex(in, "metadata", &v)) {
		if (take_metadata(call, v, d->metadata, sizeof(d->metadata)) < 0)
			return -1;
		snprintf(fields + strlen(fields), cap - strlen(fields), "metadata,");
	}
	if (fields[0] != '\0')
		fields[strlen(fields) - 1] = '\0';
	return 0;
}

/* ---------------------------------------------------------------- events */

/* The event of a change: data is the device as v2 shows it (for
 * device.deleted: its id and last version). *text keeps the data alive
 * until the caller frees it. */
static void device_event(const struct store_device *d, const char *type, struct store_event *ev,
			 char **text)
{
	struct json_object *o;

	if (strcmp(type, "device.deleted") == 0) {
		o = json_object_new_object();
		json_object_object_add(o, "id", json_object_new_string(d->id));
	} else {
		o = device_v2(d);
	}
	memset(ev, 0, sizeof(*ev));
	snprintf(ev->tenant_id, sizeof(ev->tenant_id), "%s", d->tenant_id);
	snprintf(ev->type, sizeof(ev->type), "%s", type);
	snprintf(ev->topic, sizeof(ev->topic), "device:%s", d->id);
	*text = strdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
							     JSON_C_TO_STRING_NOSLASHESCAPE));
	ev->data = *text;
	ev->created_at = (long long)time(NULL);
	json_object_put(o);
}

static void answer_device(struct api_call *call, int status, const struct store_device *d)
{
	api_json(call, status, device_json(call, d));
}

/* ---------------------------------------------------------------- routes */

void api_devices_create(struct api_call *call)
{
	static const char *const allowed[] = { "name", "status", "metadata", NULL };
	struct principal p;
	struct json_object *in = NULL;
	struct store_device d;
	struct store_audit a;
	struct store_event ev;
	char fields[64], location[128], *text = NULL;
	int rc;

	if (api_authorize(call, &p, AUTH_ROLE_OPERATOR) < 0 || api_read_json(call, &in) < 0)
		return;
	memset(&d, 0, sizeof(d));
	snprintf(d.status, sizeof(d.status), "offline");
	snprintf(d.metadata, sizeof(d.metadata), "{}");
	if (api_only_fields(call, in, allowed, "name, status, metadata") < 0 ||
	    apply_fields(call, in, &d, 1, fields, sizeof(fields)) < 0)
		goto out;
	snprintf(d.tenant_id, sizeof(d.tenant_id), "%s", p.claims.tid);
	if (session_id_new(d.id) != 0) {
		api_error(call, API_ERR_INTERNAL_ERROR, NULL);
		goto out;
	}
	d.created_at = d.updated_at = (long long)time(NULL);
	d.version = 1;
	api_audit_record(call, &p, "device.create", d.id, "version=1", &a);
	device_event(&d, "device.updated", &ev, &text);
	rc = text == NULL ? STORE_ERROR : store_device_create(call->env->store, &d, &a, &ev);
	if (rc == STORE_CONFLICT) { /* a 132-bit random id met another: say so, never overwrite */
		api_error(call, API_ERR_RESOURCE_CONFLICT, "Device id collision; retry.");
		goto out;
	}
	if (rc != STORE_OK) {
		api_unavailable(call);
		goto out;
	}
	devices_cache_put(call->env, &d);
	devices_views_drop(call->env, d.tenant_id);
	api_audit_written(call->env, d.tenant_id);
	api_outbox_publish(call->env, &ev);
	snprintf(location, sizeof(location), "/api/v2/devices/%s", d.id);
	http_response_header(call->resp, "Location", location);
	answer_device(call, 201, &d);
out:
	free(text);
	json_object_put(in);
}

/* The device named by the path, read through the cache; -1 with 404/503. */
static int path_device(struct api_call *call, const struct principal *p, struct store_device *d,
		       int fresh)
{
	char id[STORE_ID_MAX + 1];
	int rc;

	api_param(call, 0, id, sizeof(id));
	rc = fresh ? store_device_get(call->env->store, p->claims.tid, id, d)
		   : devices_load(call->env, p->claims.tid, id, d);
	return api_store_result(call, rc, "device");
}

/* The hot read: the session and the device come from Redis in one round
 * trip (api_session with the device's entry ahead). */
void api_device_get(struct api_call *call)
{
	char id[STORE_ID_MAX + 1], key[DEVICES_KEY_MAX];
	struct principal p;
	struct store_device d;
	struct cache_ahead dev, *more[1] = { &dev };

	if (api_token(call, &p) < 0)
		return;
	api_param(call, 0, id, sizeof(id));
	devices_ahead(call->env, p.claims.tid, id, key, &dev);
	if (api_session(call, &p, more, 1) == 0 && api_require_role(call, &p, AUTH_ROLE_VIEWER) == 0 &&
	    api_store_result(call, devices_load_ahead(call->env, &dev, p.claims.tid, id, &d),
			     "device") == 0)
		answer_device(call, 200, &d);
	cache_ahead_release(&dev);
}

/* A change of the path's device by the body's fields: read, apply, write
 * if nobody changed it meanwhile (else again, up to UPDATE_TRIES). */
static void change(struct api_call *call, const char *const *allowed, const char *names,
		   const char *action, int need_status)
{
	struct principal p;
	struct json_object *in = NULL, *v;
	struct store_device d, next;
	struct store_audit a;
	struct store_event ev;
	char fields[64], detail[128], *text = NULL;
	int rc = STORE_CONFLICT;

	if (api_authorize(call, &p, AUTH_ROLE_OPERATOR) < 0 || api_read_json(call, &in) < 0)
		return;
	if (api_only_fields(call, in, allowed, names) < 0)
		goto out;
	if (need_status && !json_object_object_get_ex(in, "status", &v)) {
		api_error(call, API_ERR_REQUEST_INVALID_FIELD,
			  "Field 'status' must be one of online, offline, maintenance.");
		goto out;
	}
	if (json_object_object_length(in) == 0) {
		api_error(call, API_ERR_REQUEST_INVALID_FIELD,
			  "Send at least one of name, status, metadata.");
		goto out;
	}
	for (int i = 0; i < UPDATE_TRIES && rc == STORE_CONFLICT; i++) {
		if (path_device(call, &p, &d, 1) < 0)
			goto out;
		if (apply_fields(call, in, &d, 0, fields, sizeof(fields)) < 0)
			goto out;
		d.updated_at = (long long)time(NULL);
		snprintf(detail, sizeof(detail), "fields=%s version=%lld", fields, d.version + 1);
		api_audit_record(call, &p, action, d.id, detail, &a);
		next = d; /* what the event and the answer show once written */
		next.version++;
		free(text);
		device_event(&next, "device.updated", &ev, &text);
		rc = text == NULL ? STORE_ERROR : store_device_update(call->env->store, &d, &a, &ev);
	}
	if (rc == STORE_CONFLICT) {
		api_error(call, API_ERR_RESOURCE_CONFLICT,
			  "The device kept changing under this request; retry.");
		goto out;
	}
	if (api_store_result(call, rc, "device") < 0)
		goto out;
	d = next;
	devices_cache_put(call->env, &d);
	devices_views_drop(call->env, d.tenant_id);
	api_audit_written(call->env, d.tenant_id);
	api_outbox_publish(call->env, &ev);
	answer_device(call, 200, &d);
out:
	free(text);
	json_object_put(in);
}

void api_device_patch(struct api_call *call)
{
	static const char *const allowed[] = { "name", "status", "metadata", NULL };

	change(call, allowed, "name, status, metadata", "device.update", 0);
}

void api_device_status(struct api_call *call)
{
	static const char *const allowed[] = { "status", NULL };

	change(call, allowed, "status", "device.status", 1);
}

void api_device_delete(struct api_call *call)
{
	struct principal p;
	struct store_device d;
	struct store_audit a;
	struct store_event ev;
	char *text = NULL;
	int rc;

	if (api_authorize(call, &p, AUTH_ROLE_OPERATOR) < 0)
		return;
	memset(&d, 0, sizeof(d));
	api_param(call, 0, d.id, sizeof(d.id));
	snprintf(d.tenant_id, sizeof(d.tenant_id), "%s", p.claims.tid);
	api_audit_record(call, &p, "device.delete", d.id, "", &a);
	device_event(&d, "device.deleted", &ev, &text);
	rc = text == NULL ? STORE_ERROR
			  : store_device_delete(call->env->store, d.tenant_id, d.id, &a, &ev);
	if (api_store_result(call, rc, "device") == 0) {
		devices_cache_drop(call->env, d.tenant_id, d.id);
		devices_views_drop(call->env, d.tenant_id);
		api_audit_written(call->env, d.tenant_id);
		api_outbox_publish(call->env, &ev);
		call->resp->status = 204;
	}
	free(text);
}

/* ---------------------------------------------------------------- lists */

struct page {
	int version;
	struct json_object *items;
	int limit, n;
	char last[STORE_ID_MAX + 1];
	int more;
};

static int add_device(void *ctx, const struct store_device *d)
{
	struct page *pg = ctx;

	if (pg->n == pg->limit) {
		pg->more = 1; /* the extra row: there is a next page */
		return 1;
	}
	json_object_array_add(pg->items, pg->version == 1 ? device_v1(d) : device_v2(d));
	snprintf(pg->last, sizeof(pg->last), "%s", d->id);
	pg->n++;
	return 0;
}

/* status= when present: 0 and *status (NULL when absent), or -1 with 400. */
static int status_filter(struct api_call *call, struct buf *v, const char **status)
{
	int rc = query_get(call->req->query, "status", v);

	*status = NULL;
	if (rc == 1 && store_status_valid(buf_str(v))) {
		*status = buf_str(v);
		return 0;
	}
	if (rc == 0)
		return 0;
	api_error(call, API_ERR_REQUEST_INVALID_QUERY,
		  "status= must be one of online, offline, maintenance.");
	return -1;
}

static void list_v1(struct api_call *call, const struct principal *p, const char *status)
{
	static const char *const known[] = { "page", "per_page", "status", NULL };
	struct page pg = { 1, NULL, 0, 0, "", 0 };
	long long page, per;

	if (api_query_known(call, known, "page, per_page, status") < 0 ||
	    api_query_int(call, "page", 1, V1_PAGE_MAX, 1, &page) < 0 ||
	    api_query_int(call, "per_page", 1, V1_PER_PAGE_MAX, LIST_DEFAULT, &per) < 0)
		return;
	pg.items = json_object_new_array();
	pg.limit = (int)per;
	if (store_device_list(call->env->store, p->claims.tid, status, NULL, (page - 1) * per,
			      (int)per, add_device, &pg) != STORE_OK) {
		json_object_put(pg.items);
		api_unavailable(call);
		return;
	}
	api_json(call, 200, pg.items); /* v1: a bare array */
}

int devices_v2_page(struct store *st, const char *tenant, const char *status, const char *after,
		   int limit, struct json_object **out)
{
	struct page pg = { 2, json_object_new_array(), limit, 0, "", 0 };
	char next[128];

	if (store_device_list(st, tenant, status, after, 0, limit + 1, add_device, &pg) != STORE_OK) {
		json_object_put(pg.items);
		return STORE_ERROR;
	}
	if (pg.more)
		api_cursor_encode('d', pg.last, next, sizeof(next));
	*out = api_page(pg.items, pg.more ? next : NULL);
	return STORE_OK;
}

/* A device-list cursor holds the page's last id. One a client made itself
 * may hold anything: what no id can be is a bad query, never a question
 * for the store (which refuses it as a failure, 503). */
static int cursor_id_ok(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > STORE_ID_MAX)
		return 0;
	for (; *s; s++)
		if (!((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') ||
		      *s == '_' || *s == '-'))
			return 0;
	return 1;
}

static void list_v2(struct api_call *call, const struct principal *p, const char *status)
{
	static const char *const known[] = { "limit", "cursor", "status", NULL };
	struct buf cur = BUF_INIT;
	struct json_object *o;
	char after[STORE_ID_MAX + 1];
	long long limit;
	int has_cursor;

	if (api_query_known(call, known, "limit, cursor, status") < 0 ||
	    api_query_int(call, "limit", 1, LIST_MAX, LIST_DEFAULT, &limit) < 0)
		return;
	has_cursor = query_get(call->req->query, "cursor", &cur) == 1;
	if (has_cursor && (api_cursor_decode('d', buf_str(&cur), after, sizeof(after)) < 0 ||
			   !cursor_id_ok(after))) {
		api_error(call, API_ERR_REQUEST_INVALID_QUERY,
			  "cursor= must be a next_cursor this list returned.");
		goto out;
	}
	if (!has_cursor && limit == LIST_DEFAULT && devices_answer_view(call, p->claims.tid, status, 0) == 0)
		goto out;
	if (devices_v2_page(call->env->store, p->claims.tid, status, has_cursor ? after : NULL, (int)limit,
		    &o) != STORE_OK)
		api_unavailable(call);
	else
		api_json(call, 200, o);
out:
	buf_release(&cur);
}

void api_devices_list(struct api_call *call)
{
	struct principal p;
	struct buf st = BUF_INIT;
	const char *status;

	if (api_authorize(call, &p, AUTH_ROLE_VIEWER) < 0 || status_filter(call, &st, &status) < 0)
		goto out;
	if (call->version == 1)
		list_v1(call, &p, status);
	else
		list_v2(call, &p, status);
out:
	buf_release(&st);
}

void api_devices_count(struct api_call *call)
{
	static const char *const known[] = { "status", NULL };
	struct principal p;
	struct buf st = BUF_INIT;
	const char *status;
	struct json_object *o;
	long long n;

	if (api_authorize(call, &p, AUTH_ROLE_VIEWER) < 0 ||
	    api_query_known(call, known, "status") < 0 || status_filter(call, &st, &status) < 0 ||
	    devices_answer_view(call, p.claims.tid, status, 1) == 0)
		goto out;
	if (store_device_count(call->env->store, p.claims.tid, status, &n) != STORE_OK) {
		api_unavailable(call);
		goto out;
	}
	o = json_object_new_object();
	json_object_object_add(o, "count", json_object_new_int64(n));
	api_json(call, 200, o);
out:
	buf_release(&st);
}
