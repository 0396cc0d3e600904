/* The read-through cache and the session service against a real
 * redis-server (port in FCGI_SSE_TEST_REDIS_PORT, started by
 * tests/unit/run.sh) and a real SQLite file. */
#include <CUnit/CUnit.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../../cache/cache.h"
#include "../../redis/redis.h"
#include "../../redis/redis_kv.h"
#include "../../session/sessions.h"
#include "../../store/store.h"
#include "suites.h"
#include "testutil.h"

static struct redis *connect_redis(int port)
{
	const struct redis_opts o = { "127.0.0.1", port, "", 200, 200, 1000, 0, 0, NULL, NULL, NULL };

	return redis_new(&o);
}

static struct cache *make_cache(struct redis *r, const char *prefix, long long neg_ms)
{
	const struct cache_opts o = { prefix, 60000, 10, neg_ms };
	struct cache_kv kv;

	redis_kv(r, &kv);
	return cache_new(&kv, &o);
}

/* A loader that counts its calls and answers from a fixed table. */
struct fake_source {
	atomic_int calls;
	const char *value; /* NULL: not found */
	int fail;
	int delay_ms;
	struct cache *tombstone_during_load; /* simulate a concurrent delete */
};

static int fake_load(void *ctx, const char *id, struct buf *value, long long *ttl_ms)
{
	struct fake_source *f = ctx;

	atomic_fetch_add(&f->calls, 1);
	if (f->delay_ms)
		usleep((useconds_t)f->delay_ms * 1000);
	if (f->tombstone_during_load)
		cache_tombstone(f->tombstone_during_load, id, 60000);
	if (f->fail)
		return -1;
	if (f->value == NULL)
		return 0;
	*ttl_ms = 30000;
	buf_puts(value, f->value);
	return 1;
}

static char *unique(const char *stem)
{
	static char id[64];
	static int n;

	snprintf(id, sizeof(id), "%s-%ld-%d", stem, (long)getpid(), ++n);
	return id;
}

static void test_redis_is_there(void)
{
	struct redis *r;

	CU_ASSERT_FATAL(test_redis_port() > 0);
	r = connect_redis(test_redis_port());
	CU_ASSERT_EQUAL(redis_ping(r), 0);
	redis_free(r);
}

static void test_mget(void)
{
	struct redis *r = connect_redis(test_redis_port());
	char k1[96], k2[96], k3[96];
	const char *keys[3] = { k1, k2, k3 };
	struct buf out[3] = { BUF_INIT, BUF_INIT, BUF_INIT };
	int found[3] = { -1, -1, -1 };

	snprintf(k1, sizeof(k1), "ut:%s", unique("mget"));
	snprintf(k2, sizeof(k2), "ut:%s", unique("mget"));
	snprintf(k3, sizeof(k3), "ut:%s", unique("mget"));
	CU_ASSERT_EQUAL(redis_set(r, k1, "one", 3, 60000, 0), 1);
	CU_ASSERT_EQUAL(redis_set(r, k3, "th\0ree", 6, 60000, 0), 1);
	buf_puts(&out[1], "untouched");
	CU_ASSERT_EQUAL(redis_mget(r, keys, 3, out, found), 0);
	CU_ASSERT_EQUAL(found[0], 1);
	CU_ASSERT_EQUAL(found[1], 0);
	CU_ASSERT_EQUAL(found[2], 1);
	CU_ASSERT_STRING_EQUAL(buf_str(&out[0]), "one");
	CU_ASSERT_STRING_EQUAL(buf_str(&out[1]), "untouched");
	CU_ASSERT_EQUAL(out[2].len, 6);
	CU_ASSERT_EQUAL(memcmp(out[2].data, "th\0ree", 6), 0);
	CU_ASSERT_EQUAL(redis_mget(r, keys, 0, out, found), -1);
	CU_ASSERT_EQUAL(redis_mget(r, keys, REDIS_MGET_MAX + 1, out, found), -1);
	for (int i = 0; i < 3; i++)
		buf_release(&out[i]);
	redis_free(r);
}

static void test_get_or_load_then_hit(void)
{
	struct redis *r = connect_redis(test_redis_port());
	struct cache *c = make_cache(r, "ut:", 5000);
	struct fake_source src = { .value = "{\"v\":1}" };
	struct buf v = BUF_INIT, raw = BUF_INIT;
	struct cache_stats st;
	char key[96];
	const char *id = unique("hit");

	CU_ASSERT_EQUAL(cache_get(c, id, fake_load, &src, &v), 1);
	CU_ASSERT_STRING_EQUAL(buf_str(&v), "{\"v\":1}");
	CU_ASSERT_EQUAL(cache_get(c, id, fake_load, &src, &v), 1);
	CU_ASSERT_STRING_EQUAL(buf_str(&v), "{\"v\":1}");
	CU_ASSERT_EQUAL(atomic_load(&src.calls), 1);
	snprintf(key, sizeof(key), "ut:%s", id);
	CU_ASSERT_EQUAL(redis_get(r, key, &raw), 1);
	CU_ASSERT_STRING_EQUAL(buf_str(&raw), "+{\"v\":1}");
	cache_get_stats(c, &st);
	CU_ASSERT_EQUAL(st.hits, 1);
	CU_ASSERT_EQUAL(st.misses, 1);
	CU_ASSERT_EQUAL(st.loads, 1);
	buf_release(&v);
	buf_release(&raw);
	cache_free(c);
	redis_free(r);
}

static void test_misses_are_cached_briefly(void)
{
	struct redis *r = connect_redis(test_redis_port());
	struct cache *c = make_cache(r, "ut:", 150);
	struct fake_source src = { .value = NULL };
	struct buf v = BUF_INIT;
	const char *id = unique("neg");

	CU_ASSERT_EQUAL(cache_get(c, id, fake_load, &src, &v), 0);
	CU_ASSERT_EQUAL(cache_get(c, id, fake_load, &src, &v), 0);
	CU_ASSERT_EQUAL(atomic_load(&src.calls), 1);
	usleep(400 * 1000); /* past the negative TTL (+10% jitter) */
	src.value = "now here";
	CU_ASSERT_EQUAL(cache_get(c, id, fake_load, &src, &v), 1);
	CU_ASSERT_STRING_EQUAL(buf_str(&v), "now here");
	CU_ASSERT_EQUAL(atomic_load(&src.calls), 2);
	buf_release(&v);
	cache_free(c);
	redis_free(r);
}

static void test_invalidate_and_tombstone(void)
{
	struct redis *r = connect_redis(test_redis_port());
	struct cache *c = make_cache(r, "ut:", 5000);
	struct fake_source src = { .value = "one" };
	struct buf v = BUF_INIT;
	char id[64];

	snprintf(id, sizeof(id), "%s", unique("inv"));
	CU_ASSERT_EQUAL(cache_get(c, id, fake_load, &src, &v), 1);
	src.value = "two";
	CU_ASSERT_EQUAL(cache_invalidate(c, id), 0);
	CU_ASSERT_EQUAL(cache_get(c, id, fake_load, &src, &v), 1);
	CU_ASSERT_STRING_EQUAL(buf_str(&v), "two");
	CU_ASSERT_EQUAL(atomic_load(&src.calls), 2);
	CU_ASSERT_EQUAL(cache_tombstone(c, id, 60000), 0);
	CU_ASSERT_EQUAL(cache_get(c, id, fake_load, &src, &v), 0);
	CU_ASSERT_EQUAL(atomic_load(&src.calls), 2); /* the tombstone answered */
	buf_release(&v);
	cache_free(c);
	redis_free(r);
}

static void test_slow_load_cannot_overwrite_a_tombstone(void)
{
	struct redis *r = connect_redis(test_redis_port());
	struct cache *c = make_cache(r, "ut:", 5000);
	struct fake_source src = { .value = "stale", .tombstone_during_load = NULL };
	struct buf v = BUF_INIT;
	char id[64];

	snprintf(id, sizeof(id), "%s", unique("race"));
	src.tombstone_during_load = c;
	/* the load itself returns the old value... */
	CU_ASSERT_EQUAL(cache_get(c, id, fake_load, &src, &v), 1);
	/* ...but the revocation that happened meanwhile is what stays cached */
	src.tombstone_during_load = NULL;
	CU_ASSERT_EQUAL(cache_get(c, id, fake_load, &src, &v), 0);
	CU_ASSERT_EQUAL(atomic_load(&src.calls), 1);
	buf_release(&v);
	cache_free(c);
	redis_free(r);
}

struct herd {
	struct cache *c;
	struct fake_source *src;
	const char *id;
	int rc;
};

static void *herd_member(void *arg)
{
	struct herd *h = arg;
	struct buf v = BUF_INIT;

	h->rc = cache_get(h->c, h->id, fake_load, h->src, &v);
	if (h->rc == 1 && strcmp(buf_str(&v), "hot") != 0)
		h->rc = -2;
	buf_release(&v);
	return NULL;
}

static void test_stampede_loads_once(void)
{
	struct redis *r = connect_redis(test_redis_port());
	struct cache *c = make_cache(r, "ut:", 5000);
	struct fake_source src = { .value = "hot", .delay_ms = 100 };
	struct herd h[8];
	pthread_t t[8];
	char id[64];

	snprintf(id, sizeof(id), "%s", unique("herd"));
	for (int i = 0; i < 8; i++) {
		h[i] = (struct herd){ c, &src, id, 0 };
		CU_ASSERT_EQUAL_FATAL(pthread_create(&t[i], NULL, herd_member, &h[i]), 0);
	}
	for (int i = 0; i < 8; i++) {
		pthread_join(t[i], NULL);
		CU_ASSERT_EQUAL(h[i].rc, 1);
	}
	CU_ASSERT_EQUAL(atomic_load(&src.calls), 1);
	cache_free(c);
	redis_free(r); /* the threads' connections closed at their exit */
}

static void test_dead_redis_falls_through_to_the_source(void)
{
	struct redis *r = connect_redis(1); /* nothing listens on port 1 */
	struct cache *c = make_cache(r, "ut:", 5000);
	struct fake_source src = { .value = "from store" };
	struct buf v = BUF_INIT;
	struct cache_stats st;

	for (int i = 0; i < 5; i++) {
		CU_ASSERT_EQUAL(cache_get(c, "k", fake_load, &src, &v), 1);
		CU_ASSERT_STRING_EQUAL(buf_str(&v), "from store");
	}
	CU_ASSERT_EQUAL(atomic_load(&src.calls), 5);
	CU_ASSERT_EQUAL(cache_invalidate(c, "k"), -1);
	CU_ASSERT_EQUAL(redis_ping(r), -1);
	CU_ASSERT_STRING_NOT_EQUAL(redis_errstr(r), "");
	cache_get_stats(c, &st);
	CU_ASSERT(st.kv_errors >= 5);
	src.fail = 1;
	CU_ASSERT_EQUAL(cache_get(c, "k", fake_load, &src, &v), -1);
	buf_release(&v);
	cache_free(c);
	redis_free(r);
}

/* --- sessions over a real store and Redis --- */

struct fixture {
	char dir[64];
	char path[96];
	struct store *st;
	struct redis *r;
	struct cache *c;
	struct sessions *s;
	struct store_user u;
};

static int fixture_open(struct fixture *f)
{
	struct buf err = BUF_INIT;
	struct store_tenant t;
	long long now = (long long)time(NULL);

	memset(f, 0, sizeof(*f));
	snprintf(f->dir, sizeof(f->dir), "/tmp/fcgi_sse_ut_sess.XXXXXX");
	if (mkdtemp(f->dir) == NULL)
		return -1;
	snprintf(f->path, sizeof(f->path), "%s/s.db", f->dir);
	f->st = store_open_sqlite(f->path, 2000, &err);
	buf_release(&err);
	if (f->st == NULL || store_tenant_create(f->st, "acme", now, &t) != STORE_OK)
		return -1;
	snprintf(f->u.tenant_id, sizeof(f->u.tenant_id), "%s", t.id);
	snprintf(f->u.username, sizeof(f->u.username), "ana");
	snprintf(f->u.role, sizeof(f->u.role), "viewer");
	snprintf(f->u.password_hash, sizeof(f->u.password_hash), "x");
	f->u.created_at = now;
	if (store_user_create(f->st, &f->u) != STORE_OK)
		return -1;
	f->r = connect_redis(test_redis_port());
	f->c = make_cache(f->r, "ut-sess:", 5000);
	f->s = sessions_new(f->st, f->c, 3600, 60000);
	return f->s ? 0 : -1;
}

static void fixture_close(struct fixture *f)
{
	const char *suffix[] = { "", "-wal", "-shm" };
	char p[128];

	sessions_free(f->s);
	cache_free(f->c);
	redis_free(f->r);
	store_close(f->st);
	for (int i = 0; i < 3; i++) {
		snprintf(p, sizeof(p), "%s%s", f->path, suffix[i]);
		unlink(p);
	}
	rmdir(f->dir);
}

static void test_sessions_lifecycle(void)
{
	struct fixture f;
	struct store_session s1, s2, out;
	long long now = (long long)time(NULL);
	int n = -1;

	CU_ASSERT_EQUAL_FATAL(fixture_open(&f), 0);
	CU_ASSERT_EQUAL(sessions_begin(f.s, &f.u, now, &s1), 0);
	CU_ASSERT_EQUAL(sessions_begin(f.s, &f.u, now, &s2), 0);
	CU_ASSERT_EQUAL(s1.expires_at, now + 3600);
	CU_ASSERT_EQUAL(sessions_lookup(f.s, s1.id, now, &out), SESSION_LIVE);
	CU_ASSERT_STRING_EQUAL(out.user_id, f.u.id);
	CU_ASSERT_STRING_EQUAL(out.role, "viewer");
	CU_ASSERT_EQUAL(sessions_lookup(f.s, s1.id, now, &out), SESSION_LIVE); /* cached */
	CU_ASSERT_EQUAL(sessions_lookup(f.s, s1.id, now + 3600, &out), SESSION_GONE); /* expired */
	CU_ASSERT_EQUAL(sessions_lookup(f.s, "no-such-session-id-000", now, &out), SESSION_GONE);
	CU_ASSERT_EQUAL(sessions_revoke(f.s, s1.id, now), 0);
	CU_ASSERT_EQUAL(sessions_lookup(f.s, s1.id, now, &out), SESSION_GONE);
	CU_ASSERT_EQUAL(sessions_lookup(f.s, s2.id, now, &out), SESSION_LIVE);
	CU_ASSERT_EQUAL(sessions_revoke_user(f.s, f.u.tenant_id, f.u.id, now, &n), 0);
	CU_ASSERT_EQUAL(n, 1); /* s1 was already revoked */
	CU_ASSERT_EQUAL(sessions_lookup(f.s, s2.id, now, &out), SESSION_GONE);
	fixture_close(&f);
}

static void test_sessions_encode_decode(void)
{
	struct store_session a = { "sid-1", "uid-2", "tid-3", "admin", 10, 20, 0 }, b;
	struct buf v = BUF_INIT;

	CU_ASSERT_EQUAL(sessions_encode(&a, &v), 0);
	CU_ASSERT_EQUAL(sessions_decode(v.data, v.len, &b), 0);
	CU_ASSERT_STRING_EQUAL(b.id, "sid-1");
	CU_ASSERT_STRING_EQUAL(b.user_id, "uid-2");
	CU_ASSERT_STRING_EQUAL(b.tenant_id, "tid-3");
	CU_ASSERT_STRING_EQUAL(b.role, "admin");
	CU_ASSERT_EQUAL(b.created_at, 10);
	CU_ASSERT_EQUAL(b.expires_at, 20);
	CU_ASSERT_EQUAL(b.revoked_at, 0);
	CU_ASSERT_EQUAL(sessions_decode("{}", 2, &b), -1);
	CU_ASSERT_EQUAL(sessions_decode("not json", 8, &b), -1);
	CU_ASSERT_EQUAL(sessions_decode("{\"id\":1}", 8, &b), -1);
	buf_release(&v);
}

static CU_TestInfo tests[] = {
	{ "a redis-server is there", test_redis_is_there },
	{ "MGET: values, missing keys, binary values, bounds", test_mget },
	{ "get-or-load, then hits without loading", test_get_or_load_then_hit },
	{ "misses are cached briefly", test_misses_are_cached_briefly },
	{ "invalidate reloads; a tombstone answers not found", test_invalidate_and_tombstone },
	{ "a slow load cannot overwrite a tombstone", test_slow_load_cannot_overwrite_a_tombstone },
	{ "a stampede on one key loads once", test_stampede_loads_once },
	{ "a dead Redis falls through to the source", test_dead_redis_falls_through_to_the_source },
	{ "sessions: begin, lookup, expire, revoke, revoke all", test_sessions_lifecycle },
	{ "sessions: cached form round trip", test_sessions_encode_decode },
	CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suite[] = {
	{ "cache+redis", NULL, NULL, NULL, NULL, tests },
	CU_SUITE_INFO_NULL,
};

int register_cache_redis_tests(void)
{
	return CU_register_suites(suite) == CUE_SUCCESS ? 0 : -1;
}
