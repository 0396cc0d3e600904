/* cache: a generic read-through cache over a key-value transport (Redis in
 * production, see redis/redis_kv.h).
 *
 * get-or-load: a hit returns the cached value; a miss calls the loader (the
 * durable store), stores what it returns with a jittered TTL (SET NX, so a
 * slow loader never overwrites a newer invalidation) and returns it. A
 * value the loader does not find is cached as a short negative entry.
 * Concurrent misses of one key in a process wait for a single load (the
 * stampede guard). When the transport fails, get falls through to the
 * loader: the cache can make things faster, never unavailable.
 *
 * Values are opaque bytes; keys are prefix + id. Thread-safe. */
#ifndef FCGI_SSE_CACHE_H
#define FCGI_SSE_CACHE_H

#include <stdint.h>

#include "../core/buf.h"

/* The transport. Each returns -1 when unavailable. */
struct cache_kv {
	int (*get)(void *ctx, const char *key, struct buf *out); /* 1 hit, 0 absent */
	/* n keys (1..CACHE_AHEAD_MAX) at once: found[i] 1 with out[i], or 0;
	 * returns 0. NULL when the transport has no such call. */
	int (*mget)(void *ctx, const char *const *keys, int n, struct buf *out, int *found);
	int (*set)(void *ctx, const char *key, const char *val, size_t len,
		   long long ttl_ms, int nx);                     /* 1 set, 0 NX refused */
	int (*del)(void *ctx, const char *const *keys, int n);   /* 0; n <= CACHE_INVALIDATE_MAX */
	void *ctx;
};

struct cache_opts {
	const char *prefix;        /* "sess:" */
	long long ttl_ms;          /* upper bound of a positive entry's TTL */
	int jitter_pct;            /* ± spread of TTLs, 0..100 */
	long long negative_ttl_ms; /* TTL of a "not found" entry; 0 disables */
};

/* Loads id from the source of truth. Returns 1 and fills value (and may
 * lower *ttl_ms, which starts at opts.ttl_ms, e.g. to a session's remaining
 * lifetime), 0 when id does not exist, -1 on failure (nothing is cached). */
typedef int cache_load_fn(void *ctx, const char *id, struct buf *value, long long *ttl_ms);

struct cache_stats {
	unsigned long long hits, negative_hits, misses, loads, load_errors, kv_errors;
};

struct cache;

/* Creates a cache; kv and o are copied (o->prefix too). NULL when out of
 * memory. */
struct cache *cache_new(const struct cache_kv *kv, const struct cache_opts *o);

/* Frees the cache. */
void cache_free(struct cache *c);

/* Returns 1 and sets value when id exists (cached or loaded), 0 when it does
 * not, -1 when it had to be loaded and the loader failed. */
int cache_get(struct cache *c, const char *id, cache_load_fn *load, void *ctx,
	      struct buf *value);

/* Lookups ahead: a request that will read several cached entries (its
 * session and the device it names) reads them in one transport call, one
 * Redis round trip instead of one each. cache_ahead_init names an entry,
 * cache_fetch_ahead reads all the named entries of caches that share one
 * transport together, and cache_get_ahead then answers exactly as
 * cache_get would, asking the transport again only for what the fetch
 * could not tell (an entry not cached is loaded and stored as by
 * cache_get, under its single-flight lock). */
#define CACHE_AHEAD_MAX 8

struct cache_ahead {
	struct cache *cache; /* NULL: no entry, cache_get_ahead loads directly */
	const char *id;      /* the caller's, kept until cache_get_ahead */
	int got;             /* private: the fetch's result */
	struct buf raw;      /* private */
};

/* Names the entry of id in c (c may be NULL). */
void cache_ahead_init(struct cache_ahead *a, struct cache *c, const char *id);

/* Reads the n entries (n <= CACHE_AHEAD_MAX) in one transport call when
 * their caches share the transport; otherwise each is left to
 * cache_get_ahead. */
void cache_fetch_ahead(struct cache_ahead *const *a, int n);

/* cache_get for a's entry, using what cache_fetch_ahead read. */
int cache_get_ahead(struct cache_ahead *a, cache_load_fn *load, void *ctx, struct buf *value);

/* Frees what a holds. */
void cache_ahead_release(struct cache_ahead *a);

/* Drops id's entry so the next get loads it again (after an update).
 * Returns 0, or -1 when the transport failed (the entry may then live until
 * its TTL). */
int cache_invalidate(struct cache *c, const char *id);

#define CACHE_INVALIDATE_MAX 16

/* The same for n ids (1..CACHE_INVALIDATE_MAX) in one transport call. */
int cache_invalidate_many(struct cache *c, const char *const *ids, int n);

/* Sets id's entry to value with a jittered TTL (after a change, when the
 * caller has the new value: unlike invalidate, a load already in flight
 * cannot put the old value back, since its SET NX finds the key). Returns
 * 0 or -1 as cache_invalidate. */
int cache_put(struct cache *c, const char *id, const struct buf *value);

/* Replaces id's entry by a "not found" entry for ttl_ms (after a delete or a
 * revocation): unlike invalidate, a load already in flight cannot put the
 * old value back. Returns 0 or -1 as cache_invalidate. */
int cache_tombstone(struct cache *c, const char *id, long long ttl_ms);

/* Copies the counters. */
void cache_get_stats(struct cache *c, struct cache_stats *out);

/* Spreads ttl by up to ±pct percent so entries written together do not
 * expire together. rnd is a uniformly random 32-bit value. Returns a TTL
 * of at least 1; ttl <= 0 gives 1. Pure. */
long long cache_ttl_jitter(long long ttl, int pct, uint32_t rnd);

/* The TTL of a cached session: its remaining lifetime, capped at cap, and
 * 0 (do not cache) when it has already expired. Pure. */
long long cache_session_ttl(long long remaining, long long cap);

#endif
