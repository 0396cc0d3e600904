/* The device caches (docs/API.md "Caching"): devices by id through Redis,
 * rewritten by every change (write-through), and the tenant's list views
 * (the first v2 page at the default limit and the count, per status
 * filter) cached whole and dropped by every change. */
#include <json-c/json.h>
#include <stdio.h>
#include <string.h>

#include "../core/jsonf.h"
#include "../core/jsonflat.h"
#include "devices.h"

#define CACHE_KEY_MAX (DEVICES_KEY_MAX - 1)
#define LIST_DEFAULT DEVICES_LIST_DEFAULT

/* ---------------------------------------------------------------- cache */

int devices_encode(const struct store_device *d, struct buf *out)
{
	struct json_object *o = json_object_new_object();

	json_object_object_add(o, "id", json_object_new_string(d->id));
	json_object_object_add(o, "tenant_id", json_object_new_string(d->tenant_id));
	json_object_object_add(o, "name", json_object_new_string(d->name));
	json_object_object_add(o, "status", json_object_new_string(d->status));
	json_object_object_add(o, "metadata", json_object_new_string(d->metadata));
	json_object_object_add(o, "created_at", json_object_new_int64(d->created_at));
	json_object_object_add(o, "updated_at", json_object_new_int64(d->updated_at));
	json_object_object_add(o, "last_seen_at", json_object_new_int64(d->last_seen_at));
	json_object_object_add(o, "version", json_object_new_int64(d->version));
	buf_reset(out);
	buf_puts(out, json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
	json_object_put(o);
	return out->oom ? -1 : 0;
}

int devices_decode(const char *p, size_t n, struct store_device *d)
{
	const struct jflat_field f[] = {
		{ "id", JFLAT_STR, d->id, sizeof(d->id) },
		{ "tenant_id", JFLAT_STR, d->tenant_id, sizeof(d->tenant_id) },
		{ "name", JFLAT_STR, d->name, sizeof(d->name) },
		{ "status", JFLAT_STR, d->status, sizeof(d->status) },
		{ "metadata", JFLAT_STR, d->metadata, sizeof(d->metadata) },
		{ "created_at", JFLAT_INT, &d->created_at, 0 },
		{ "updated_at", JFLAT_INT, &d->updated_at, 0 },
		{ "last_seen_at", JFLAT_INT, &d->last_seen_at, 0 },
		{ "version", JFLAT_INT, &d->version, 0 },
	};
	struct json_tokener *tok;
	struct json_object *o;
	int rc = -1;

	memset(d, 0, sizeof(*d));
	if (jflat_decode(p, n, f, (int)(sizeof(f) / sizeof(f[0]))) == 0)
		return 0; /* the shape devices_encode writes */
	memset(d, 0, sizeof(*d));
	tok = json_tokener_new();
	o = tok ? json_tokener_parse_ex(tok, p, (int)n) : NULL;
	if (o != NULL && json_object_is_type(o, json_type_object) &&
	    jsonf_str(o, "id", d->id, sizeof(d->id)) == 0 &&
	    jsonf_str(o, "tenant_id", d->tenant_id, sizeof(d->tenant_id)) == 0 &&
	    jsonf_str(o, "name", d->name, sizeof(d->name)) == 0 &&
	    jsonf_str(o, "status", d->status, sizeof(d->status)) == 0 &&
	    jsonf_str(o, "metadata", d->metadata, sizeof(d->metadata)) == 0 &&
	    jsonf_int(o, "created_at", &d->created_at) == 0 &&
	    jsonf_int(o, "updated_at", &d->updated_at) == 0 &&
	    jsonf_int(o, "last_seen_at", &d->last_seen_at) == 0 &&
	    jsonf_int(o, "version", &d->version) == 0)
		rc = 0;
	json_object_put(o);
	if (tok != NULL)
		json_tokener_free(tok);
	return rc;
}

static void cache_key(const char *tenant_id, const char *id, char *key)
{
	snprintf(key, CACHE_KEY_MAX + 1, "%s:%s", tenant_id, id);
}

/* cache_load_fn: key is "<tenant>:<id>". */
static int load_device(void *ctx, const char *key, struct buf *value, long long *ttl_ms)
{
	char tenant[STORE_ID_MAX + 1];
	const char *id = api_key_tenant(key, tenant);
	struct store_device d;
	int rc;

	(void)ttl_ms;
	if (id == NULL)
		return 0;
	rc = store_device_get(ctx, tenant, id, &d);
	if (rc == STORE_NOT_FOUND)
		return 0;
	if (rc != STORE_OK)
		return -1;
	return devices_encode(&d, value) == 0 ? 1 : -1;
}

void devices_ahead(struct api_env *env, const char *tenant_id, const char *id,
		   char key[DEVICES_KEY_MAX], struct cache_ahead *a)
{
	cache_key(tenant_id, id, key);
	cache_ahead_init(a, env->device_cache, key);
}

int devices_load_ahead(struct api_env *env, struct cache_ahead *a, const char *tenant_id,
		       const char *id, struct store_device *out)
{
	struct buf v = BUF_INIT;
	int rc;

	if (env->device_cache == NULL)
		return store_device_get(env->store, tenant_id, id, out);
	rc = cache_get_ahead(a, load_device, env->store, &v);
	if (rc == 1 && devices_decode(v.data, v.len, out) == 0 &&
	    strcmp(out->tenant_id, tenant_id) == 0 && strcmp(out->id, id) == 0)
		rc = STORE_OK;
	else if (rc == 1) /* an entry this build cannot read: the store decides */
		rc = store_device_get(env->store, tenant_id, id, out);
	else
		rc = rc == 0 ? STORE_NOT_FOUND : STORE_ERROR;
	buf_release(&v);
	return rc;
}

int devices_load(struct api_env *env, const char *tenant_id, const char *id,
		 struct store_device *out)
{
	char key[DEVICES_KEY_MAX];
	struct cache_ahead a;
	int rc;

	devices_ahead(env, tenant_id, id, key, &a);
	rc = devices_load_ahead(env, &a, tenant_id, id, out);
	cache_ahead_release(&a);
	return rc;
}

void devices_cache_put(struct api_env *env, const struct store_device *d)
{
	char key[CACHE_KEY_MAX + 1];
	struct buf v = BUF_INIT;

	if (env->device_cache == NULL)
		return;
	cache_key(d->tenant_id, d->id, key);
	if (devices_encode(d, &v) < 0 || cache_put(env->device_cache, key, &v) < 0) {
		/* a stale entry must not outlive the change: try to drop it */
		if (cache_invalidate(env->device_cache, key) < 0)
			log_text(env->log, LOG_WARN, "device_cache_stale", d->id);
	}
	buf_release(&v);
}

void devices_cache_drop(struct api_env *env, const char *tenant_id, const char *id)
{
	char key[CACHE_KEY_MAX + 1];
	long long ttl = env->cfg->cache_negative_ttl_ms;

	if (env->device_cache == NULL)
		return;
	cache_key(tenant_id, id, key);
	if (cache_tombstone(env->device_cache, key, ttl > 1000 ? ttl : 1000) < 0)
		log_text(env->log, LOG_WARN, "device_cache_stale", id);
}

/* ---------------------------------------------------------------- list views */

/* The views cached whole, per status filter: the first v2 page at the
 * default limit and the count ("<tenant>:<filter>:page|count"). Every
 * device change drops them all for its tenant before it answers. */
static const char *const view_filters[] = { "*", "online", "offline", "maintenance" };

struct view {
	struct store *store;
	const char *tenant, *status;
	int count;
};

static void view_key(const char *tenant, const char *status, int count, char *key, size_t cap)
{
	snprintf(key, cap, "%s:%s:%s", tenant, status ? status : "*", count ? "count" : "page");
}

/* cache_load_fn: the view's body from the store. */
static int load_view(void *ctx, const char *key, struct buf *value, long long *ttl_ms)
{
	const struct view *v = ctx;
	struct json_object *o = NULL;
	long long n;
	int rc;

	(void)key;
	(void)ttl_ms;
	if (v->count) {
		if ((rc = store_device_count(v->store, v->tenant, v->status, &n)) == STORE_OK) {
			o = json_object_new_object();
			json_object_object_add(o, "count", json_object_new_int64(n));
		}
	} else {
		rc = devices_v2_page(v->store, v->tenant, v->status, NULL, LIST_DEFAULT, &o);
	}
	if (rc != STORE_OK)
		return -1;
	return api_json_text(o, value) == 0 ? 1 : -1;
}

int devices_answer_view(struct api_call *call, const char *tenant, const char *status, int count)
{
	const struct view v = { call->env->store, tenant, status, count };
	char key[2 * STORE_ID_MAX];

	if (call->env->view_cache == NULL)
		return -1;
	view_key(tenant, status, count, key, sizeof(key));
	api_cached_json(call, call->env->view_cache, key, load_view, (void *)&v);
	return 0;
}

#define N_FILTERS (sizeof(view_filters) / sizeof(view_filters[0]))

void devices_views_drop(struct api_env *env, const char *tenant_id)
{
	char keys[2 * N_FILTERS][2 * STORE_ID_MAX];
	const char *ptrs[2 * N_FILTERS];

	if (env->view_cache == NULL)
		return;
	for (size_t i = 0; i < 2 * N_FILTERS; i++) {
		view_key(tenant_id, i / 2 ? view_filters[i / 2] : NULL, (int)(i % 2), keys[i],
			 sizeof(keys[i]));
		ptrs[i] = keys[i];
	}
	/* one DEL for every view of the tenant */
	if (cache_invalidate_many(env->view_cache, ptrs, (int)(2 * N_FILTERS)) < 0)
		log_text(env->log, LOG_WARN, "device_view_stale", tenant_id);
}

