/* cache: TTL jitter, the session TTL, and lookups ahead over an in-memory
 * transport that counts its calls. */
#include <CUnit/CUnit.h>
#include <limits.h>
#include <stdint.h>
#include <string.h>

#include "../../cache/cache.h"
#include "suites.h"

/* A fixed sequence of spread-out 32-bit values (xorshift32). */
static uint32_t next_rnd(uint32_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 17;
	*s ^= *s << 5;
	return *s;
}

struct range {
	long long lo, hi;
	int bad;
};

/* Applies the jitter over rnd = 0..9999, UINT32_MAX, UINT32_MAX-1, 2^31 and
 * 100000 xorshift values; records the range and whether anything fell
 * outside [min, max]. */
static struct range sweep(long long ttl, int pct, long long min, long long max)
{
	static const uint32_t edges[] = { 0, 1, UINT32_MAX, UINT32_MAX - 1, 0x80000000u,
					  0x7fffffffu };
	struct range r = { LLONG_MAX, LLONG_MIN, 0 };
	uint32_t s = 2463534242u;

	for (long i = 0; i < 10000 + 6 + 100000; i++) {
		uint32_t rnd = i < 10000 ? (uint32_t)i :
			       i < 10006 ? edges[i - 10000] : next_rnd(&s);
		long long v = cache_ttl_jitter(ttl, pct, rnd);

		if (v < min || v > max)
			r.bad = 1;
		if (v < r.lo)
			r.lo = v;
		if (v > r.hi)
			r.hi = v;
	}
	return r;
}

static void test_jitter_within_pct(void)
{
	struct range r = sweep(1000, 10, 900, 1100);

	CU_ASSERT_FALSE(r.bad);
	/* both sides, and both extremes, are reached */
	CU_ASSERT_EQUAL(r.lo, 900);
	CU_ASSERT_EQUAL(r.hi, 1100);
	r = sweep(3600, 25, 2700, 4500);
	CU_ASSERT_FALSE(r.bad);
	CU_ASSERT(r.lo < 3600 && r.hi > 3600);
	r = sweep(86400, 100, 1, 172800);
	CU_ASSERT_FALSE(r.bad);
	CU_ASSERT(r.lo < 86400 && r.hi > 86400);
}

static void test_jitter_edges_of_rnd(void)
{
	long long a = cache_ttl_jitter(1000, 10, 0), b = cache_ttl_jitter(1000, 10, UINT32_MAX);

	CU_ASSERT(a >= 900 && a <= 1100);
	CU_ASSERT(b >= 900 && b <= 1100);
}

static void test_jitter_small_ttl_stays_positive(void)
{
	struct range r = sweep(1, 100, 1, 2);

	CU_ASSERT_FALSE(r.bad);
	r = sweep(3, 50, 2, 4);
	CU_ASSERT_FALSE(r.bad);
	r = sweep(5, 10, 5, 5); /* 10% of 5 is less than one unit */
	CU_ASSERT_FALSE(r.bad);
}

static void test_jitter_nonpositive_ttl_is_one(void)
{
	CU_ASSERT_EQUAL(cache_ttl_jitter(0, 10, 12345), 1);
	CU_ASSERT_EQUAL(cache_ttl_jitter(-5, 10, 12345), 1);
	CU_ASSERT_EQUAL(cache_ttl_jitter(LLONG_MIN, 10, UINT32_MAX), 1);
	CU_ASSERT_EQUAL(cache_ttl_jitter(0, 0, 0), 1);
}

static void test_jitter_pct_zero_unchanged(void)
{
	struct range r = sweep(1000, 0, 1000, 1000);

	CU_ASSERT_FALSE(r.bad);
	CU_ASSERT_EQUAL(cache_ttl_jitter(LLONG_MAX, 0, 7), LLONG_MAX);
}

static void test_jitter_wide_span_covers_both_sides(void)
{
	/* span = 5e9 units: more offsets than a 32-bit rnd can index directly */
	const long long ttl = 10000000000LL;
	struct range r = sweep(ttl, 50, ttl / 2, ttl + ttl / 2);

	CU_ASSERT_FALSE(r.bad);
	CU_ASSERT(r.lo < ttl);
	CU_ASSERT(r.hi > ttl);
}

static void test_session_ttl(void)
{
	CU_ASSERT_EQUAL(cache_session_ttl(0, 300), 0);
	CU_ASSERT_EQUAL(cache_session_ttl(-1, 300), 0);
	CU_ASSERT_EQUAL(cache_session_ttl(LLONG_MIN, 300), 0);
	CU_ASSERT_EQUAL(cache_session_ttl(1, 300), 1);
	CU_ASSERT_EQUAL(cache_session_ttl(299, 300), 299);
	CU_ASSERT_EQUAL(cache_session_ttl(300, 300), 300);
	CU_ASSERT_EQUAL(cache_session_ttl(301, 300), 300);
	CU_ASSERT_EQUAL(cache_session_ttl(LLONG_MAX, 300), 300);
}

/* ---- lookups ahead ---- */

#define FAKE_KEYS 8

struct fake_kv {
	char key[FAKE_KEYS][64];
	struct buf val[FAKE_KEYS];
	int n;
	int down;
	int gets, mgets, mget_keys, sets;
};

static int fake_find(struct fake_kv *f, const char *key)
{
	for (int i = 0; i < f->n; i++)
		if (strcmp(f->key[i], key) == 0)
			return i;
	return -1;
}

static int fake_get(void *ctx, const char *key, struct buf *out)
{
	struct fake_kv *f = ctx;
	int i = fake_find(f, key);

	f->gets++;
	if (f->down)
		return -1;
	if (i < 0)
		return 0;
	buf_reset(out);
	buf_append(out, f->val[i].data, f->val[i].len);
	return 1;
}

static int fake_mget(void *ctx, const char *const *keys, int n, struct buf *out, int *found)
{
	struct fake_kv *f = ctx;

	f->mgets++;
	f->mget_keys += n;
	if (f->down)
		return -1;
	for (int k = 0; k < n; k++) {
		int i = fake_find(f, keys[k]);

		found[k] = i >= 0;
		if (i >= 0) {
			buf_reset(&out[k]);
			buf_append(&out[k], f->val[i].data, f->val[i].len);
		}
	}
	return 0;
}

static int fake_set(void *ctx, const char *key, const char *val, size_t len, long long ttl_ms, int nx)
{
	struct fake_kv *f = ctx;
	int i = fake_find(f, key);

	(void)ttl_ms;
	f->sets++;
	if (f->down)
		return -1;
	if (i >= 0 && nx)
		return 0;
	if (i < 0) {
		if (f->n == FAKE_KEYS)
			return -1;
		i = f->n++;
		snprintf(f->key[i], sizeof(f->key[i]), "%s", key);
		f->val[i] = (struct buf)BUF_INIT;
	}
	buf_reset(&f->val[i]);
	buf_append(&f->val[i], val, len);
	return 1;
}

static int fake_del(void *ctx, const char *const *keys, int n)
{
	(void)ctx, (void)keys, (void)n;
	return 0;
}

static void fake_release(struct fake_kv *f)
{
	for (int i = 0; i < f->n; i++)
		buf_release(&f->val[i]);
}

static struct cache *fake_cache(struct fake_kv *f, const char *prefix, int with_mget)
{
	const struct cache_kv kv = { fake_get, with_mget ? fake_mget : NULL, fake_set, fake_del, f };
	const struct cache_opts o = { prefix, 60000, 10, 5000 };

	return cache_new(&kv, &o);
}

struct counted_source {
	int calls;
	const char *value; /* NULL: not found */
	int fail;
};

static int counted_load(void *ctx, const char *id, struct buf *value, long long *ttl_ms)
{
	struct counted_source *src = ctx;

	(void)id, (void)ttl_ms;
	src->calls++;
	if (src->fail)
		return -1;
	if (src->value == NULL)
		return 0;
	buf_puts(value, src->value);
	return 1;
}

/* Two caches on one transport: one call reads both; a hit, a "not found"
 * entry and an entry not cached each answer as cache_get would. */
static void test_ahead_one_call_for_all(void)
{
	struct fake_kv f = { 0 };
	struct cache *a = fake_cache(&f, "a:", 1), *b = fake_cache(&f, "b:", 1);
	struct counted_source src = { 0, "loaded", 0 };
	struct cache_ahead x, y, z, *all[3] = { &x, &y, &z };
	struct buf v = BUF_INIT;
	struct cache_stats st;

	fake_set(&f, "a:1", "+one", 4, 1000, 0);
	fake_set(&f, "b:2", "-", 1, 1000, 0);
	f.sets = 0;
	cache_ahead_init(&x, a, "1");
	cache_ahead_init(&y, b, "2");
	cache_ahead_init(&z, b, "3");
	cache_fetch_ahead(all, 3);
	CU_ASSERT_EQUAL(f.mgets, 1);
	CU_ASSERT_EQUAL(f.mget_keys, 3);
	CU_ASSERT_EQUAL(cache_get_ahead(&x, counted_load, &src, &v), 1);
	CU_ASSERT_STRING_EQUAL(buf_str(&v), "one");
	CU_ASSERT_EQUAL(cache_get_ahead(&y, counted_load, &src, &v), 0);
	CU_ASSERT_EQUAL(src.calls, 0);
	CU_ASSERT_EQUAL(f.gets, 0); /* the hits asked nothing more */
	/* not cached: looked up again under the single-flight lock, loaded,
	 * stored with NX */
	CU_ASSERT_EQUAL(cache_get_ahead(&z, counted_load, &src, &v), 1);
	CU_ASSERT_STRING_EQUAL(buf_str(&v), "loaded");
	CU_ASSERT_EQUAL(src.calls, 1);
	CU_ASSERT_EQUAL(f.gets, 1);
	CU_ASSERT_EQUAL(f.sets, 1);
	CU_ASSERT(fake_find(&f, "b:3") >= 0);
	cache_get_stats(b, &st);
	CU_ASSERT_EQUAL(st.negative_hits, 1);
	CU_ASSERT_EQUAL(st.misses, 1);
	cache_get_stats(a, &st);
	CU_ASSERT_EQUAL(st.hits, 1);
	for (int i = 0; i < 3; i++)
		cache_ahead_release(all[i]);
	buf_release(&v);
	cache_free(a);
	cache_free(b);
	fake_release(&f);
}

/* The transport down: every entry is loaded from the source, nothing is
 * stored, the failure is counted once per cache entry. */
static void test_ahead_transport_down(void)
{
	struct fake_kv f = { .down = 1 };
	struct cache *a = fake_cache(&f, "a:", 1);
	struct counted_source src = { 0, "from store", 0 };
	struct cache_ahead x, y, *all[2] = { &x, &y };
	struct buf v = BUF_INIT;
	struct cache_stats st;

	cache_ahead_init(&x, a, "1");
	cache_ahead_init(&y, a, "2");
	cache_fetch_ahead(all, 2);
	CU_ASSERT_EQUAL(f.mgets, 1);
	CU_ASSERT_EQUAL(cache_get_ahead(&x, counted_load, &src, &v), 1);
	CU_ASSERT_STRING_EQUAL(buf_str(&v), "from store");
	src.fail = 1;
	CU_ASSERT_EQUAL(cache_get_ahead(&y, counted_load, &src, &v), -1);
	CU_ASSERT_EQUAL(src.calls, 2);
	CU_ASSERT_EQUAL(f.gets + f.sets, 0);
	cache_get_stats(a, &st);
	CU_ASSERT_EQUAL(st.kv_errors, 2);
	CU_ASSERT_EQUAL(st.load_errors, 1);
	cache_ahead_release(&x);
	cache_ahead_release(&y);
	buf_release(&v);
	cache_free(a);
	fake_release(&f);
}

/* No batch call, a single entry, transports that differ, or no cache at
 * all: each entry is read on its own and the answers are the same. */
static void test_ahead_falls_back_to_single_reads(void)
{
	struct fake_kv f = { 0 }, g = { 0 };
	struct cache *plain = fake_cache(&f, "p:", 0), *a = fake_cache(&f, "a:", 1),
		     *other = fake_cache(&g, "o:", 1);
	struct counted_source src = { 0, "loaded", 0 };
	struct cache_ahead x, y, n, *all[3] = { &x, &y, &n };
	struct buf v = BUF_INIT;

	fake_set(&f, "p:1", "+p", 2, 1000, 0);
	fake_set(&g, "o:1", "+o", 2, 1000, 0);
	cache_ahead_init(&x, plain, "1");
	cache_ahead_init(&y, plain, "1");
	cache_fetch_ahead(all, 2); /* no mget */
	CU_ASSERT_EQUAL(f.gets, 0);
	CU_ASSERT_EQUAL(cache_get_ahead(&x, counted_load, &src, &v), 1);
	CU_ASSERT_STRING_EQUAL(buf_str(&v), "p");
	CU_ASSERT_EQUAL(f.gets, 1);
	cache_ahead_release(&x);
	cache_ahead_release(&y);

	cache_ahead_init(&x, a, "9");
	cache_ahead_init(&y, other, "1");
	cache_ahead_init(&n, NULL, "7");
	cache_fetch_ahead(all, 3); /* two transports */
	cache_fetch_ahead(all, 1); /* one entry */
	CU_ASSERT_EQUAL(f.mgets + g.mgets, 0);
	CU_ASSERT_EQUAL(cache_get_ahead(&y, counted_load, &src, &v), 1);
	CU_ASSERT_STRING_EQUAL(buf_str(&v), "o");
	CU_ASSERT_EQUAL(g.gets, 1);
	CU_ASSERT_EQUAL(cache_get_ahead(&x, counted_load, &src, &v), 1);
	CU_ASSERT_EQUAL(src.calls, 1);
	CU_ASSERT_EQUAL(cache_get_ahead(&n, counted_load, &src, &v), 1); /* no cache: the source */
	CU_ASSERT_EQUAL(src.calls, 2);
	for (int i = 0; i < 3; i++)
		cache_ahead_release(all[i]);
	buf_release(&v);
	cache_free(plain);
	cache_free(a);
	cache_free(other);
	fake_release(&f);
	fake_release(&g);
}

static CU_TestInfo tests[] = {
	{ "jitter stays within +-pct and covers both sides", test_jitter_within_pct },
	{ "jitter at rnd 0 and UINT32_MAX", test_jitter_edges_of_rnd },
	{ "jitter of a small ttl stays positive", test_jitter_small_ttl_stays_positive },
	{ "ttl <= 0 gives 1", test_jitter_nonpositive_ttl_is_one },
	{ "pct 0 leaves ttl unchanged", test_jitter_pct_zero_unchanged },
	{ "jitter wider than 2^32 covers both sides", test_jitter_wide_span_covers_both_sides },
	{ "session ttl", test_session_ttl },
	{ "ahead: one transport call reads every entry", test_ahead_one_call_for_all },
	{ "ahead: transport down, entries come from the source", test_ahead_transport_down },
	{ "ahead: single reads without a batch call", test_ahead_falls_back_to_single_reads },
	CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suite[] = {
	{ .pName = "cache", .pTests = tests },
	CU_SUITE_INFO_NULL,
};

int register_cache_tests(void)
{
	return CU_register_suites(suite) == CUE_SUCCESS ? 0 : -1;
}
