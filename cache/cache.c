#include "cache.h"

#include <limits.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#define STRIPES 64
#define KEY_MAX 256

/* A cached value is one marker byte and the payload. */
#define MARK_VALUE '+'
#define MARK_ABSENT '-'

struct cache {
	struct cache_kv kv;
	char *prefix;
	long long ttl_ms, negative_ttl_ms;
	int jitter_pct;
	pthread_mutex_t stripes[STRIPES]; /* single-flight per key hash */
	struct { /* relaxed atomics: a lock here was contended by every hit */
		_Atomic unsigned long long hits, negative_hits, misses, loads, load_errors, kv_errors;
	} stats;
};

long long cache_ttl_jitter(long long ttl, int pct, uint32_t rnd)
{
	uint64_t span, width, pick;

	if (ttl <= 0)
		return 1;
	if (pct <= 0)
		return ttl;
	if (pct > 100)
		pct = 100;
	/* ttl * pct / 100 without overflowing */
	span = (uint64_t)(ttl / 100 * pct + ttl % 100 * pct / 100);
	if (span == 0)
		return ttl;
	/* scale rnd onto [0, 2*span]: uniform for any span, unlike rnd % width */
	width = 2 * span + 1;
	pick = (uint64_t)(((unsigned __int128)rnd * width) >> 32);
	if (pick >= span)
		return pick - span > (uint64_t)(LLONG_MAX - ttl) ? LLONG_MAX
								  : ttl + (long long)(pick - span);
	return ttl - (long long)(span - pick) < 1 ? 1 : ttl - (long long)(span - pick);
}

long long cache_session_ttl(long long remaining, long long cap)
{
	if (remaining <= 0)
		return 0;
	return remaining < cap ? remaining : cap;
}

struct cache *cache_new(const struct cache_kv *kv, const struct cache_opts *o)
{
	struct cache *c = calloc(1, sizeof(*c));

	if (c == NULL || (c->prefix = strdup(o->prefix)) == NULL) {
		free(c);
		return NULL;
	}
	c->kv = *kv;
	c->ttl_ms = o->ttl_ms;
	c->negative_ttl_ms = o->negative_ttl_ms;
	c->jitter_pct = o->jitter_pct;
	for (int i = 0; i < STRIPES; i++)
		pthread_mutex_init(&c->stripes[i], NULL);
	return c;
}

void cache_free(struct cache *c)
{
	if (c == NULL)
		return;
	for (int i = 0; i < STRIPES; i++)
		pthread_mutex_destroy(&c->stripes[i]);
	free(c->prefix);
	free(c);
}

static void count(_Atomic unsigned long long *field)
{
	atomic_fetch_add_explicit(field, 1, memory_order_relaxed);
}

void cache_get_stats(struct cache *c, struct cache_stats *out)
{
	out->hits = atomic_load_explicit(&c->stats.hits, memory_order_relaxed);
	out->negative_hits = atomic_load_explicit(&c->stats.negative_hits, memory_order_relaxed);
	out->misses = atomic_load_explicit(&c->stats.misses, memory_order_relaxed);
	out->loads = atomic_load_explicit(&c->stats.loads, memory_order_relaxed);
	out->load_errors = atomic_load_explicit(&c->stats.load_errors, memory_order_relaxed);
	out->kv_errors = atomic_load_explicit(&c->stats.kv_errors, memory_order_relaxed);
}

static int make_key(const struct cache *c, const char *id, char *key)
{
	size_t p = strlen(c->prefix), n = strlen(id);

	if (p + n + 1 > KEY_MAX)
		return -1;
	memcpy(key, c->prefix, p);
	memcpy(key + p, id, n + 1);
	return 0;
}

static unsigned stripe_of(const char *key)
{
	unsigned h = 2166136261u; /* FNV-1a */

	for (; *key; key++)
		h = (h ^ (unsigned char)*key) * 16777619u;
	return h % STRIPES;
}

static long long jittered(const struct cache *c, long long ttl)
{
	uint32_t rnd = 0;

	RAND_bytes((unsigned char *)&rnd, sizeof(rnd));
	return cache_ttl_jitter(ttl, c->jitter_pct, rnd);
}

/* What the transport's answer (kv_rc as from kv.get, raw its bytes)
 * means: 1 value (payload into value), 0 absent marker, 2 not cached, -1
 * transport failed. */
static int classify(struct cache *c, int kv_rc, const struct buf *raw, struct buf *value)
{
	if (kv_rc < 0) {
		count(&c->stats.kv_errors);
		return -1;
	}
	if (kv_rc == 0 || raw->len == 0)
		return 2;
	if (raw->data[0] == MARK_ABSENT)
		return 0;
	buf_reset(value);
	buf_append(value, raw->data + 1, raw->len - 1);
	return value->oom ? -1 : 1;
}

/* Looks key up in the transport; the result as classify's. */
static int lookup(struct cache *c, const char *key, struct buf *raw, struct buf *value)
{
	return classify(c, c->kv.get(c->kv.ctx, key, raw), raw, value);
}

/* Stores a loaded result with SET NX. Failures only cost a later reload. */
static void store_entry(struct cache *c, const char *key, int found,
			const struct buf *value, long long ttl_ms)
{
	struct buf raw = BUF_INIT;

	if (found) {
		buf_append(&raw, (char[]){ MARK_VALUE }, 1);
		buf_append(&raw, value->data, value->len);
	} else {
		buf_append(&raw, (char[]){ MARK_ABSENT }, 1);
	}
	if (!raw.oom && ttl_ms > 0 &&
	    c->kv.set(c->kv.ctx, key, raw.data, raw.len, jittered(c, ttl_ms), 1) < 0)
		count(&c->stats.kv_errors);
	buf_release(&raw);
}

static int load(struct cache *c, const char *id, cache_load_fn *fn, void *ctx,
		struct buf *value, long long *ttl_ms)
{
	int rc;

	*ttl_ms = c->ttl_ms;
	buf_reset(value);
	count(&c->stats.loads);
	rc = fn(ctx, id, value, ttl_ms);
	if (rc < 0)
		count(&c->stats.load_errors);
	return rc;
}

/* Miss path under the key's stripe lock: look again (another thread may
 * have loaded it meanwhile), else load and store. */
static int fill(struct cache *c, const char *key, const char *id, cache_load_fn *fn,
		void *ctx, struct buf *raw, struct buf *value)
{
	pthread_mutex_t *mu = &c->stripes[stripe_of(key)];
	long long ttl;
	int rc;

	pthread_mutex_lock(mu);
	rc = lookup(c, key, raw, value);
	if (rc == 0 || rc == 1) {
		pthread_mutex_unlock(mu);
		count(rc ? &c->stats.hits : &c->stats.negative_hits);
		return rc;
	}
	rc = load(c, id, fn, ctx, value, &ttl);
	if (rc >= 0)
		store_entry(c, key, rc, value, rc ? (ttl < c->ttl_ms ? ttl : c->ttl_ms)
						  : c->negative_ttl_ms);
	pthread_mutex_unlock(mu);
	return rc;
}

/* The rest of a get once key's lookup gave rc (classify's result). */
static int resolve(struct cache *c, const char *key, const char *id, cache_load_fn *fn,
		   void *ctx, struct buf *raw, struct buf *value, int rc)
{
	long long ttl;

	if (rc == 0 || rc == 1) {
		count(rc ? &c->stats.hits : &c->stats.negative_hits);
		return rc;
	}
	if (rc < 0) /* transport down: straight to the source, no lock, no store */
		return load(c, id, fn, ctx, value, &ttl);
	count(&c->stats.misses);
	return fill(c, key, id, fn, ctx, raw, value);
}

int cache_get(struct cache *c, const char *id, cache_load_fn *fn, void *ctx,
	      struct buf *value)
{
	char key[KEY_MAX];
	struct buf raw = BUF_INIT;
	long long ttl;
	int rc;

	if (make_key(c, id, key) < 0)
		return load(c, id, fn, ctx, value, &ttl);
	rc = lookup(c, key, &raw, value);
	rc = resolve(c, key, id, fn, ctx, &raw, value, rc);
	buf_release(&raw);
	return rc;
}

#define AHEAD_NONE (-2) /* not fetched: cache_get_ahead asks itself */

void cache_ahead_init(struct cache_ahead *a, struct cache *c, const char *id)
{
	a->cache = c;
	a->id = id;
	a->got = AHEAD_NONE;
	a->raw = (struct buf)BUF_INIT;
}

void cache_fetch_ahead(struct cache_ahead *const *a, int n)
{
	char keys[CACHE_AHEAD_MAX][KEY_MAX];
	const char *ptrs[CACHE_AHEAD_MAX];
	struct cache_ahead *of[CACHE_AHEAD_MAX];
	struct buf out[CACHE_AHEAD_MAX];
	int found[CACHE_AHEAD_MAX], k = 0, rc;
	const struct cache_kv *kv = NULL;

	for (int i = 0; i < n && k < CACHE_AHEAD_MAX; i++) {
		struct cache_ahead *e = a[i];

		if (e == NULL || e->cache == NULL || make_key(e->cache, e->id, keys[k]) < 0)
			continue;
		if (kv == NULL)
			kv = &e->cache->kv;
		else if (kv->mget != e->cache->kv.mget || kv->ctx != e->cache->kv.ctx)
			return; /* transports differ: each entry is looked up alone */
		ptrs[k] = keys[k];
		of[k] = e;
		out[k] = (struct buf)BUF_INIT;
		k++;
	}
	/* one entry gains nothing: cache_get_ahead's own lookup is one call */
	if (k < 2 || kv->mget == NULL)
		return;
	rc = kv->mget(kv->ctx, ptrs, k, out, found);
	for (int j = 0; j < k; j++) {
		of[j]->got = rc < 0 ? -1 : found[j];
		buf_release(&of[j]->raw);
		if (rc == 0 && found[j])
			of[j]->raw = out[j]; /* moved */
		else
			buf_release(&out[j]);
	}
}

int cache_get_ahead(struct cache_ahead *a, cache_load_fn *fn, void *ctx, struct buf *value)
{
	char key[KEY_MAX];
	long long ttl = 0;

	if (a->cache == NULL) { /* no cache: the source answers */
		buf_reset(value);
		return fn(ctx, a->id, value, &ttl);
	}
	if (a->got == AHEAD_NONE || make_key(a->cache, a->id, key) < 0)
		return cache_get(a->cache, a->id, fn, ctx, value);
	return resolve(a->cache, key, a->id, fn, ctx, &a->raw, value,
		       classify(a->cache, a->got, &a->raw, value));
}

void cache_ahead_release(struct cache_ahead *a)
{
	buf_release(&a->raw);
}

int cache_invalidate_many(struct cache *c, const char *const *ids, int n)
{
	char keys[CACHE_INVALIDATE_MAX][KEY_MAX];
	const char *ptrs[CACHE_INVALIDATE_MAX];
	int k = 0;

	if (n < 0 || n > CACHE_INVALIDATE_MAX)
		return -1;
	for (int i = 0; i < n; i++)
		if (make_key(c, ids[i], keys[k]) == 0) /* a key too long was never cached */
			ptrs[k] = keys[k], k++;
	if (k > 0 && c->kv.del(c->kv.ctx, ptrs, k) < 0) {
		count(&c->stats.kv_errors);
		return -1;
	}
	return 0;
}

int cache_invalidate(struct cache *c, const char *id)
{
	return cache_invalidate_many(c, &id, 1);
}

int cache_put(struct cache *c, const char *id, const struct buf *value)
{
	char key[KEY_MAX];
	struct buf raw = BUF_INIT;
	int rc = 0;

	if (make_key(c, id, key) < 0)
		return 0;
	buf_append(&raw, (char[]){ MARK_VALUE }, 1);
	buf_append(&raw, value->data, value->len);
	if (raw.oom || c->kv.set(c->kv.ctx, key, raw.data, raw.len, jittered(c, c->ttl_ms), 0) < 0) {
		count(&c->stats.kv_errors);
		rc = -1;
	}
	buf_release(&raw);
	return rc;
}

int cache_tombstone(struct cache *c, const char *id, long long ttl_ms)
{
	char key[KEY_MAX];
	const char mark = MARK_ABSENT;

	if (make_key(c, id, key) < 0)
		return 0;
	if (c->kv.set(c->kv.ctx, key, &mark, 1, ttl_ms > 0 ? ttl_ms : 1, 0) < 0) {
		count(&c->stats.kv_errors);
		return -1;
	}
	return 0;
}
