/* cache: policy of the read-through cache (API.md §3–4). Pure.
 *
 * Today: TTL arithmetic. The get-or-load cache over Redis (negative
 * caching, stampede guard, invalidation) joins this module with the cache
 * issue (#3). */
#ifndef FCGI_SSE_CACHE_H
#define FCGI_SSE_CACHE_H

#include <stdint.h>

/* Spreads ttl by up to ±pct percent so entries written together do not
 * expire together. rnd is a uniformly random 32-bit value. Returns a TTL
 * of at least 1 (seconds or whatever unit ttl is in); ttl <= 0 gives 1. */
long long cache_ttl_jitter(long long ttl, int pct, uint32_t rnd);

/* The TTL of a cached session: its remaining lifetime, capped at cap, and
 * 0 (do not cache) when it has already expired. */
long long cache_session_ttl(long long remaining, long long cap);

#endif
