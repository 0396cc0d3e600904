#include "sessions.h"

#include <json-c/json.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "../core/jsonf.h"
#include "../core/jsonflat.h"
#include "session.h"

#define PENDING_MAX 1024

struct sessions {
	struct store *store;
	struct cache *cache;
	long long ttl_s;
	long long cache_ttl_ms;
	pthread_mutex_t mu; /* guards pending */
	atomic_int npending;      /* read without mu to skip the lock when 0 */
	char pending[PENDING_MAX][STORE_ID_MAX + 1]; /* tombstones not yet written */
};

struct sessions *sessions_new(struct store *st, struct cache *c, long long ttl_s,
			      long long cache_ttl_ms)
{
	struct sessions *s = calloc(1, sizeof(*s));

	if (s == NULL)
		return NULL;
	s->store = st;
	s->cache = c;
	s->ttl_s = ttl_s;
	s->cache_ttl_ms = cache_ttl_ms;
	pthread_mutex_init(&s->mu, NULL);
	return s;
}

void sessions_free(struct sessions *s)
{
	if (s == NULL)
		return;
	pthread_mutex_destroy(&s->mu);
	free(s);
}

int sessions_encode(const struct store_session *ss, struct buf *out)
{
	struct json_object *o = json_object_new_object();

	json_object_object_add(o, "id", json_object_new_string(ss->id));
	json_object_object_add(o, "user_id", json_object_new_string(ss->user_id));
	json_object_object_add(o, "tenant_id", json_object_new_string(ss->tenant_id));
	json_object_object_add(o, "role", json_object_new_string(ss->role));
	json_object_object_add(o, "created_at", json_object_new_int64(ss->created_at));
	json_object_object_add(o, "expires_at", json_object_new_int64(ss->expires_at));
	json_object_object_add(o, "revoked_at", json_object_new_int64(ss->revoked_at));
	buf_puts(out, json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
	json_object_put(o);
	return out->oom ? -1 : 0;
}

int sessions_decode(const char *json, size_t len, struct store_session *out)
{
	const struct jflat_field f[] = {
		{ "id", JFLAT_STR, out->id, sizeof(out->id) },
		{ "user_id", JFLAT_STR, out->user_id, sizeof(out->user_id) },
		{ "tenant_id", JFLAT_STR, out->tenant_id, sizeof(out->tenant_id) },
		{ "role", JFLAT_STR, out->role, sizeof(out->role) },
		{ "created_at", JFLAT_INT, &out->created_at, 0 },
		{ "expires_at", JFLAT_INT, &out->expires_at, 0 },
		{ "revoked_at", JFLAT_INT, &out->revoked_at, 0 },
	};
	struct json_tokener *tok;
	struct json_object *o;
	int rc = -1;

	memset(out, 0, sizeof(*out));
	if (jflat_decode(json, len, f, (int)(sizeof(f) / sizeof(f[0]))) == 0)
		return 0; /* the shape sessions_encode writes */
	if ((tok = json_tokener_new()) == NULL)
		return -1;
	o = json_tokener_parse_ex(tok, json, (int)len);
	memset(out, 0, sizeof(*out));
	if (o != NULL && json_object_is_type(o, json_type_object) &&
	    jsonf_str(o, "id", out->id, sizeof(out->id)) == 0 &&
	    jsonf_str(o, "user_id", out->user_id, sizeof(out->user_id)) == 0 &&
	    jsonf_str(o, "tenant_id", out->tenant_id, sizeof(out->tenant_id)) == 0 &&
	    jsonf_str(o, "role", out->role, sizeof(out->role)) == 0 &&
	    jsonf_int(o, "created_at", &out->created_at) == 0 &&
	    jsonf_int(o, "expires_at", &out->expires_at) == 0 &&
	    jsonf_int(o, "revoked_at", &out->revoked_at) == 0)
		rc = 0;
	if (o != NULL)
		json_object_put(o);
	json_tokener_free(tok);
	return rc;
}

/* Writes a tombstone, or queues the id when the cache is unavailable. */
static void tombstone(struct sessions *s, const char *id)
{
	if (cache_tombstone(s->cache, id, s->cache_ttl_ms) == 0)
		return;
	pthread_mutex_lock(&s->mu);
	if (atomic_load(&s->npending) < PENDING_MAX) {
		memcpy(s->pending[atomic_load(&s->npending)], id, strlen(id) + 1);
		atomic_fetch_add(&s->npending, 1);
	}
	pthread_mutex_unlock(&s->mu);
}

/* Retries queued tombstones; stops at the first failure (cache still down). */
static void flush_pending(struct sessions *s)
{
	int n;

	if (atomic_load(&s->npending) == 0)
		return; /* the common case: no lock on the request path */
	pthread_mutex_lock(&s->mu);
	while ((n = atomic_load(&s->npending)) > 0) {
		if (cache_tombstone(s->cache, s->pending[n - 1], s->cache_ttl_ms) < 0)
			break;
		atomic_fetch_sub(&s->npending, 1);
	}
	pthread_mutex_unlock(&s->mu);
}

int sessions_begin(struct sessions *s, const struct store_user *u, long long now,
		   struct store_session *out)
{
	memset(out, 0, sizeof(*out));
	if (session_id_new(out->id) < 0)
		return -1;
	memcpy(out->user_id, u->id, sizeof(out->user_id));
	memcpy(out->tenant_id, u->tenant_id, sizeof(out->tenant_id));
	memcpy(out->role, u->role, sizeof(out->role));
	out->created_at = now;
	out->expires_at = now + s->ttl_s;
	return store_session_create(s->store, out) == STORE_OK ? 0 : -1;
}

struct load_ctx {
	struct sessions *s;
	long long now;
};

static int load_session(void *ctx, const char *id, struct buf *value, long long *ttl_ms)
{
	struct load_ctx *lc = ctx;
	struct store_session ss;
	int rc = store_session_get(lc->s->store, id, &ss);

	if (rc == STORE_NOT_FOUND)
		return 0;
	if (rc != STORE_OK)
		return -1;
	/* a live session is cached at most until it expires */
	if (ss.revoked_at == 0)
		*ttl_ms = cache_session_ttl((ss.expires_at - lc->now) * 1000, *ttl_ms);
	if (*ttl_ms <= 0)
		*ttl_ms = 1000;
	return sessions_encode(&ss, value) == 0 ? 1 : -1;
}

void sessions_ahead(struct sessions *s, const char *id, struct cache_ahead *a)
{
	flush_pending(s); /* before the entry is read: a queued tombstone wins */
	cache_ahead_init(a, s->cache, id);
}

enum session_state sessions_lookup_ahead(struct sessions *s, struct cache_ahead *a, long long now,
					 struct store_session *out)
{
	struct load_ctx lc = { s, now };
	struct buf v = BUF_INIT;
	enum session_state st = SESSION_GONE;
	int rc = cache_get_ahead(a, load_session, &lc, &v);

	if (rc < 0)
		st = SESSION_ERROR;
	else if (rc == 1 && sessions_decode(v.data, v.len, out) == 0 &&
		 strcmp(out->id, a->id) == 0 && out->revoked_at == 0 && out->expires_at > now)
		st = SESSION_LIVE;
	buf_release(&v);
	return st;
}

enum session_state sessions_lookup(struct sessions *s, const char *id, long long now,
				   struct store_session *out)
{
	struct cache_ahead a;
	enum session_state st;

	sessions_ahead(s, id, &a);
	st = sessions_lookup_ahead(s, &a, now, out);
	cache_ahead_release(&a);
	return st;
}

int sessions_revoke(struct sessions *s, const char *id, long long now)
{
	int rc = store_session_revoke(s->store, id, now);

	if (rc == STORE_ERROR)
		return -1;
	tombstone(s, id);
	return 0;
}

struct revoke_ctx {
	struct sessions *s;
	int count;
};

static int revoked_one(void *ctx, const char *id)
{
	struct revoke_ctx *rc = ctx;

	tombstone(rc->s, id);
	rc->count++;
	return 0;
}

int sessions_revoke_user(struct sessions *s, const char *tenant_id, const char *user_id,
			 long long now, int *count)
{
	struct revoke_ctx rc = { s, 0 };

	if (store_session_revoke_user(s->store, tenant_id, user_id, now, revoked_one, &rc) != STORE_OK)
		return -1;
	*count = rc.count;
	return 0;
}

int sessions_purge(struct sessions *s, long long now, long long keep_revoked_s, int *count)
{
	struct revoke_ctx rc = { s, 0 };

	if (store_session_purge(s->store, now, keep_revoked_s, revoked_one, &rc) != STORE_OK)
		return -1;
	*count = rc.count;
	return 0;
}
