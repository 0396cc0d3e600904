/* ratelimit: the GCRA arithmetic, the header values, and the shared path
 * through a real redis-server (tests/unit/run.sh starts it) with the local
 * fallback when Redis is unreachable. */
#include <CUnit/CUnit.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "../../protect/ratelimit.h"
#include "../../redis/redis.h"
#include "suites.h"
#include "testutil.h"

#define S 1000000LL /* microseconds per second */

static void test_gcra_burst_then_refill(void)
{
	const struct rl_rule r = { "t", 10, 60 }; /* a token per 6 s, 10 at once */
	long long tat = 0, now = 1000 * S;
	struct rl_result res;

	for (int i = 0; i < 10; i++) {
		rl_gcra(&tat, now, &r, 1, &res);
		CU_ASSERT_TRUE(res.allowed);
		CU_ASSERT_EQUAL(res.remaining, 9 - i);
	}
	CU_ASSERT_EQUAL(res.reset_s, 60); /* full again in 10 tokens' time */
	rl_gcra(&tat, now, &r, 1, &res);
	CU_ASSERT_FALSE(res.allowed);
	CU_ASSERT_EQUAL(res.remaining, 0);
	CU_ASSERT_EQUAL(res.retry_after_s, 6);
	/* a refused request takes nothing: still refused a moment later */
	rl_gcra(&tat, now + 5 * S, &r, 1, &res);
	CU_ASSERT_FALSE(res.allowed);
	CU_ASSERT_EQUAL(res.retry_after_s, 1);
	rl_gcra(&tat, now + 6 * S, &r, 1, &res); /* one token back */
	CU_ASSERT_TRUE(res.allowed);
	CU_ASSERT_EQUAL(res.remaining, 0);
	/* idle for longer than the window: the whole bucket, no more */
	rl_gcra(&tat, now + 1000 * S, &r, 1, &res);
	CU_ASSERT_TRUE(res.allowed);
	CU_ASSERT_EQUAL(res.remaining, 9);
}

static void test_gcra_peek_takes_nothing(void)
{
	const struct rl_rule r = { "t", 2, 10 };
	long long tat = 0, now = 50 * S;
	struct rl_result res;

	for (int i = 0; i < 5; i++) {
		rl_gcra(&tat, now, &r, 0, &res);
		CU_ASSERT_TRUE(res.allowed);
		CU_ASSERT_EQUAL(res.remaining, 2);
	}
	CU_ASSERT_EQUAL(tat, 0);
	rl_gcra(&tat, now, &r, 1, &res);
	rl_gcra(&tat, now, &r, 1, &res);
	rl_gcra(&tat, now, &r, 0, &res);
	CU_ASSERT_FALSE(res.allowed);
	CU_ASSERT_EQUAL(res.retry_after_s, 5);
}

static void test_headers(void)
{
	const struct rl_rule r = { "reads", 600, 60 };
	const struct rl_result res = { 1, 599, 1, 0, 0 };
	char p[64], st[64];

	ratelimit_policy_header(&r, p, sizeof(p));
	ratelimit_state_header(&r, &res, st, sizeof(st));
	CU_ASSERT_STRING_EQUAL(p, "\"reads\";q=600;w=60");
	CU_ASSERT_STRING_EQUAL(st, "\"reads\";r=599;t=1");
}

static void unique_key(char *out, size_t cap, const char *stem)
{
	static int n;

	snprintf(out, cap, "%s-%ld-%d", stem, (long)getpid(), ++n);
}

/* Two limiters (two processes' worth) on one Redis share the bucket. */
static void test_shared_through_redis(void)
{
	const struct redis_opts o = { "127.0.0.1", (int)test_redis_port(), "", 200, 200, 1000, 0, 0, NULL, NULL, NULL };
	struct redis *r1 = redis_new(&o), *r2 = redis_new(&o);
	struct ratelimit *a = ratelimit_new(r1, 16), *b = ratelimit_new(r2, 16);
	const struct rl_rule r = { "shared", 5, 60 };
	struct rl_result res;
	char key[64];
	int allowed = 0;

	CU_ASSERT_FATAL(a != NULL && b != NULL);
	unique_key(key, sizeof(key), "shared");
	for (int i = 0; i < 8; i++) {
		ratelimit_check(i % 2 ? b : a, key, &r, 1, &res);
		CU_ASSERT_FALSE(res.local);
		allowed += res.allowed;
	}
	CU_ASSERT_EQUAL(allowed, 5);
	CU_ASSERT_FALSE(res.allowed);
	CU_ASSERT(res.retry_after_s >= 11 && res.retry_after_s <= 12);
	ratelimit_check(a, key, &r, 0, &res); /* a look agrees and takes nothing */
	CU_ASSERT_FALSE(res.allowed);
	ratelimit_free(a);
	ratelimit_free(b);
	redis_free(r1);
	redis_free(r2);
}

/* Redis unreachable: the process's own table decides, with the same rule. */
static void test_local_fallback(void)
{
	const struct redis_opts o = { "127.0.0.1", 1, "", 100, 100, 1000, 0, 0, NULL, NULL, NULL }; /* nothing listens */
	struct redis *dead = redis_new(&o);
	struct ratelimit *rl = ratelimit_new(dead, 8), *none = ratelimit_new(NULL, 8);
	const struct rl_rule r = { "local", 3, 60 }, off = { "off", 0, 60 };
	struct rl_result res;
	int allowed = 0;

	for (int i = 0; i < 5; i++) {
		ratelimit_check(rl, "k", &r, 1, &res);
		CU_ASSERT_TRUE(res.local);
		allowed += res.allowed;
	}
	CU_ASSERT_EQUAL(allowed, 3);
	ratelimit_check(rl, "other", &r, 1, &res); /* its own bucket */
	CU_ASSERT_TRUE(res.allowed);
	ratelimit_check(none, "k", &r, 1, &res); /* another process's table */
	CU_ASSERT_TRUE(res.allowed);
	for (int i = 0; i < 100; i++) {
		ratelimit_check(rl, "k", &off, 1, &res); /* a limit of 0: unlimited */
		CU_ASSERT_TRUE(res.allowed);
	}
	ratelimit_free(rl);
	ratelimit_free(none);
	redis_free(dead);
}

/* Leases: two limiters on one bucket admit no more than the limit
 * together, lose at most a lease each, and ask Redis once per lease. */
static void test_leases_share_the_bucket(void)
{
	const struct redis_opts o = { "127.0.0.1", (int)test_redis_port(), "", 200, 200, 1000, 0, 0, NULL, NULL, NULL };
	struct redis *r1 = redis_new(&o), *r2 = redis_new(&o);
	struct ratelimit *a = ratelimit_new(r1, 16), *b = ratelimit_new(r2, 16);
	const struct rl_rule r = { "lease", 32, 60 }, big = { "big", 1600, 60 };
	struct rl_result res;
	char key[64];
	int allowed = 0;

	unique_key(key, sizeof(key), "lease");
	for (int i = 0; i < 60; i++) {
		ratelimit_take(i % 2 ? b : a, key, &r, &res);
		allowed += res.allowed;
	}
	CU_ASSERT(allowed <= 32);
	CU_ASSERT(allowed >= 32 - 2 * 2); /* a lease is at most 32/16 tokens */
	CU_ASSERT_FALSE(res.allowed);
	CU_ASSERT(res.retry_after_s >= 1);
	/* a busy key: leases grow to limit/16, so 1,000 requests ask Redis a
	 * few dozen times, not a thousand */
	unique_key(key, sizeof(key), "busy");
	allowed = 0;
	{
		unsigned long long before = ratelimit_redis_calls(a);
		for (int i = 0; i < 1000; i++) {
			ratelimit_take(a, key, &big, &res);
			allowed += res.allowed;
		}
		CU_ASSERT_EQUAL(allowed, 1000);
		CU_ASSERT(ratelimit_redis_calls(a) - before <= 30);
		CU_ASSERT(res.remaining >= 1600 - 1000 - 100 && res.remaining <= 600);
	}
	ratelimit_free(a);
	ratelimit_free(b);
	redis_free(r1);
	redis_free(r2);
}

static void test_leases_fall_back_when_redis_is_down(void)
{
	const struct redis_opts o = { "127.0.0.1", 1, "", 100, 100, 1000, 0, 0, NULL, NULL, NULL };
	struct redis *dead = redis_new(&o);
	struct ratelimit *rl = ratelimit_new(dead, 8);
	const struct rl_rule r = { "local", 4, 60 };
	struct rl_result res;
	int allowed = 0;

	for (int i = 0; i < 6; i++) {
		ratelimit_take(rl, "k", &r, &res);
		CU_ASSERT_TRUE(res.local);
		allowed += res.allowed;
	}
	CU_ASSERT_EQUAL(allowed, 4);
	ratelimit_free(rl);
	redis_free(dead);
}

static CU_TestInfo tests[] = {
	{ "leases: shared bucket, bounded loss, one Redis call per lease", test_leases_share_the_bucket },
	{ "leases: Redis unreachable, the local table decides", test_leases_fall_back_when_redis_is_down },
	{ "gcra: a burst of limit, then a token per window/limit", test_gcra_burst_then_refill },
	{ "gcra: a look takes nothing", test_gcra_peek_takes_nothing },
	{ "RateLimit-Policy and RateLimit values", test_headers },
	{ "two limiters share a bucket through Redis", test_shared_through_redis },
	{ "Redis unreachable: the local table decides", test_local_fallback },
	CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suite[] = {
	{ .pName = "ratelimit", .pTests = tests },
	CU_SUITE_INFO_NULL,
};

int register_ratelimit_tests(void)
{
	return CU_register_suites(suite) == CUE_SUCCESS ? 0 : -1;
}
