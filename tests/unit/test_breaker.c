/* breaker: closed -> open -> half-open -> closed, on the caller's clock. */
#include <CUnit/CUnit.h>

#include "../../protect/breaker.h"
#include "suites.h"

static const struct breaker_opts opts = { 3, 1000, 500, 2 }; /* 3 in 1 s, open 0.5 s, 2 trials */

static void test_opens_after_failures_in_the_window(void)
{
	struct breaker *b = breaker_new(&opts);

	CU_ASSERT_FATAL(b != NULL);
	CU_ASSERT_TRUE(breaker_allow(b, 0));
	breaker_failure(b, 0);
	breaker_failure(b, 600);
	breaker_failure(b, 1700); /* the first is out of the window by now */
	CU_ASSERT_EQUAL(breaker_state(b, 1700), BREAKER_CLOSED);
	breaker_failure(b, 1800); /* 600, 1700, 1800: still 1200 ms apart */
	CU_ASSERT_EQUAL(breaker_state(b, 1800), BREAKER_CLOSED);
	breaker_failure(b, 1900); /* 1700, 1800, 1900 */
	CU_ASSERT_EQUAL(breaker_state(b, 1900), BREAKER_OPEN);
	CU_ASSERT_FALSE(breaker_allow(b, 2000));
	CU_ASSERT_EQUAL(breaker_opened(b), 1);
	CU_ASSERT_STRING_EQUAL(breaker_state_name(BREAKER_OPEN), "open");
	breaker_free(b);
}

static void test_half_open_trials_close_or_reopen(void)
{
	struct breaker *b = breaker_new(&opts);

	for (int i = 0; i < 3; i++)
		breaker_failure(b, 100);
	CU_ASSERT_EQUAL(breaker_state(b, 599), BREAKER_OPEN);
	CU_ASSERT_EQUAL(breaker_state(b, 600), BREAKER_HALF_OPEN);
	CU_ASSERT_TRUE(breaker_allow(b, 600));  /* two trials at a time */
	CU_ASSERT_TRUE(breaker_allow(b, 600));
	CU_ASSERT_FALSE(breaker_allow(b, 600));
	breaker_failure(b, 610);                /* a trial failed: open again */
	CU_ASSERT_EQUAL(breaker_state(b, 610), BREAKER_OPEN);
	CU_ASSERT_FALSE(breaker_allow(b, 1000));
	CU_ASSERT_EQUAL(breaker_opened(b), 2);
	CU_ASSERT_TRUE(breaker_allow(b, 1110));  /* half-open again */
	breaker_success(b, 1120);
	CU_ASSERT_EQUAL(breaker_state(b, 1120), BREAKER_CLOSED);
	CU_ASSERT_TRUE(breaker_allow(b, 1120));
	/* closed afresh: old failures do not count */
	breaker_failure(b, 1130);
	breaker_failure(b, 1140);
	CU_ASSERT_EQUAL(breaker_state(b, 1140), BREAKER_CLOSED);
	breaker_free(b);
}

static CU_TestInfo tests[] = {
	{ "opens after its failures within the window", test_opens_after_failures_in_the_window },
	{ "half-open: trials close it or open it again", test_half_open_trials_close_or_reopen },
	CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suite[] = {
	{ .pName = "breaker", .pTests = tests },
	CU_SUITE_INFO_NULL,
};

int register_breaker_tests(void)
{
	return CU_register_suites(suite) == CUE_SUCCESS ? 0 : -1;
}
