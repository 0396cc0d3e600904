/* User profiles through Redis (`prof:{tenant}:{user}`, TTL
 * cache.profile_ttl_s): the user's id, name, role and creation time with
 * its tenant's id and name. Password hashes never enter the cache. */
#include <stdio.h>
#include <string.h>

#include "../core/jsonf.h"
#include "profiles.h"

#define KEY_CAP (2 * STORE_ID_MAX + 2)

static int load_store(struct store *st, const char *tenant_id, const char *user_id,
		      struct store_user *u, struct store_tenant *t)
{
	int rc = store_tenant_by_id(st, tenant_id, t);

	if (rc == STORE_OK)
		rc = store_user_by_id(st, tenant_id, user_id, u);
	if (rc == STORE_OK)
		memset(u->password_hash, 0, sizeof(u->password_hash));
	return rc;
}

static int encode(const struct store_user *u, const struct store_tenant *t, struct buf *out)
{
	struct json_object *o = json_object_new_object();

	json_object_object_add(o, "id", json_object_new_string(u->id));
	json_object_object_add(o, "tenant_id", json_object_new_string(u->tenant_id));
	json_object_object_add(o, "username", json_object_new_string(u->username));
	json_object_object_add(o, "role", json_object_new_string(u->role));
	json_object_object_add(o, "created_at", json_object_new_int64(u->created_at));
	json_object_object_add(o, "tenant_name", json_object_new_string(t->name));
	json_object_object_add(o, "tenant_created_at", json_object_new_int64(t->created_at));
	buf_reset(out);
	buf_puts(out, json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
	json_object_put(o);
	return out->oom ? -1 : 0;
}

static int decode(const struct buf *v, struct store_user *u, struct store_tenant *t)
{
	struct json_object *o = json_tokener_parse(buf_str(v));
	int rc = -1;

	memset(u, 0, sizeof(*u));
	memset(t, 0, sizeof(*t));
	if (o != NULL && jsonf_str(o, "id", u->id, sizeof(u->id)) == 0 &&
	    jsonf_str(o, "tenant_id", u->tenant_id, sizeof(u->tenant_id)) == 0 &&
	    jsonf_str(o, "username", u->username, sizeof(u->username)) == 0 &&
	    jsonf_str(o, "role", u->role, sizeof(u->role)) == 0 &&
	    jsonf_int(o, "created_at", &u->created_at) == 0 &&
	    jsonf_str(o, "tenant_name", t->name, sizeof(t->name)) == 0 &&
	    jsonf_int(o, "tenant_created_at", &t->created_at) == 0) {
		memcpy(t->id, u->tenant_id, sizeof(t->id));
		rc = 0;
	}
	json_object_put(o);
	return rc;
}

/* cache_load_fn: key "<tenant>:<user>". */
static int load(void *ctx, const char *key, struct buf *value, long long *ttl_ms)
{
	char tenant[STORE_ID_MAX + 1];
	const char *user = api_key_tenant(key, tenant);
	struct store_user u;
	struct store_tenant t;
	int rc;

	(void)ttl_ms;
	if (user == NULL)
		return 0;
	rc = load_store(ctx, tenant, user, &u, &t);
	if (rc == STORE_NOT_FOUND)
		return 0;
	return rc == STORE_OK && encode(&u, &t, value) == 0 ? 1 : -1;
}

int profiles_load(struct api_env *env, const char *tenant_id, const char *user_id,
		  struct store_user *u, struct store_tenant *t)
{
	char key[KEY_CAP];
	struct buf v = BUF_INIT;
	int rc;

	if (env->profile_cache == NULL)
		return load_store(env->store, tenant_id, user_id, u, t);
	snprintf(key, sizeof(key), "%s:%s", tenant_id, user_id);
	rc = cache_get(env->profile_cache, key, load, env->store, &v);
	if (rc == 1 && decode(&v, u, t) == 0 && strcmp(u->id, user_id) == 0 &&
	    strcmp(u->tenant_id, tenant_id) == 0)
		rc = STORE_OK;
	else if (rc == 1) /* an entry this build cannot read: the store decides */
		rc = load_store(env->store, tenant_id, user_id, u, t);
	else
		rc = rc == 0 ? STORE_NOT_FOUND : STORE_ERROR;
	buf_release(&v);
	return rc;
}

void profiles_drop(struct api_env *env, const char *tenant_id, const char *user_id, int deleted)
{
	char key[KEY_CAP];
	long long ttl = env->cfg->cache_negative_ttl_ms;
	int rc;

	if (env->profile_cache == NULL)
		return;
	snprintf(key, sizeof(key), "%s:%s", tenant_id, user_id);
	rc = deleted ? cache_tombstone(env->profile_cache, key, ttl > 1000 ? ttl : 1000)
		     : cache_invalidate(env->profile_cache, key);
	if (rc < 0)
		log_text(env->log, LOG_WARN, "profile_cache_stale", user_id);
}
