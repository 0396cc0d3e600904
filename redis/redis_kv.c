#include "redis_kv.h"

static int kv_get(void *ctx, const char *key, struct buf *out)
{
	return redis_get(ctx, key, out);
}

static int kv_mget(void *ctx, const char *const *keys, int n, struct buf *out, int *found)
{
	return redis_mget(ctx, keys, n, out, found);
}

static int kv_set(void *ctx, const char *key, const char *val, size_t len,
		  long long ttl_ms, int nx)
{
	return redis_set(ctx, key, val, len, ttl_ms, nx);
}

static int kv_del(void *ctx, const char *const *keys, int n)
{
	return redis_del(ctx, keys, n);
}

void redis_kv(struct redis *r, struct cache_kv *kv)
{
	kv->get = kv_get;
	kv->mget = kv_mget;
	kv->set = kv_set;
	kv->del = kv_del;
	kv->ctx = r;
}
