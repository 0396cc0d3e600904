/* redis_kv: the Redis client as a cache transport. */
#ifndef FCGI_SSE_REDIS_KV_H
#define FCGI_SSE_REDIS_KV_H

#include "../cache/cache.h"
#include "redis.h"

/* Fills kv with functions that run on r; r must outlive every use. */
void redis_kv(struct redis *r, struct cache_kv *kv);

#endif
