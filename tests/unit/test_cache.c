/* cache: TTL jitter and the session TTL. */
#include <CUnit/CUnit.h>
#include <limits.h>
#include <stdint.h>

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

static CU_TestInfo tests[] = {
	{ "jitter stays within +-pct and covers both sides", test_jitter_within_pct },
	{ "jitter at rnd 0 and UINT32_MAX", test_jitter_edges_of_rnd },
	{ "jitter of a small ttl stays positive", test_jitter_small_ttl_stays_positive },
	{ "ttl <= 0 gives 1", test_jitter_nonpositive_ttl_is_one },
	{ "pct 0 leaves ttl unchanged", test_jitter_pct_zero_unchanged },
	{ "jitter wider than 2^32 covers both sides", test_jitter_wide_span_covers_both_sides },
	{ "session ttl", test_session_ttl },
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
