/* retry: the pauses before retries stay in their bounds for any random
 * value, and grow with the retry. */
#include <CUnit/CUnit.h>
#include <stdint.h>

#include "../../protect/retry.h"
#include "suites.h"

static void test_pauses_stay_in_their_bounds(void)
{
	static const uint32_t rnds[] = { 0, 1, 7, 10, 11, 12345, 0x7fffffffu, 0xffffffffu };
	int lo_seen = 0, hi_seen = 0;

	for (size_t i = 0; i < sizeof(rnds) / sizeof(rnds[0]); i++) {
		long long d1 = retry_delay_ms(1, 10, rnds[i]), d2 = retry_delay_ms(2, 10, rnds[i]);

		CU_ASSERT(d1 >= 5 && d1 <= 10);
		CU_ASSERT(d2 >= 10 && d2 <= 20);
		lo_seen |= d1 == 5;
		hi_seen |= d1 == 10;
	}
	CU_ASSERT(lo_seen && hi_seen); /* both ends are reachable */
	/* past RETRY_MAX: the last pause, not a longer one */
	CU_ASSERT(retry_delay_ms(RETRY_MAX + 3, 10, 0xffffffffu) <= 10LL << (RETRY_MAX - 1));
	CU_ASSERT_EQUAL(retry_delay_ms(0, 10, 5), 0);
	CU_ASSERT_EQUAL(retry_delay_ms(1, 0, 5), 0);
}

static CU_TestInfo tests[] = {
	{ "pauses stay in their bounds", test_pauses_stay_in_their_bounds },
	CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suite[] = {
	{ "retry", NULL, NULL, NULL, NULL, tests },
	CU_SUITE_INFO_NULL,
};

int register_retry_tests(void)
{
	return CU_register_suites(suite) == CUE_SUCCESS ? 0 : -1;
}
