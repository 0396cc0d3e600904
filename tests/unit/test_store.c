/* store: placeholder suite, replaced by the real tests. */
#include <CUnit/CUnit.h>

#include "suites.h"

static CU_TestInfo tests[] = {
	CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suite[] = {
	{ "store", NULL, NULL, NULL, NULL, tests },
	CU_SUITE_INFO_NULL,
};

int register_store_tests(void)
{
	return CU_register_suites(suite) == CUE_SUCCESS ? 0 : -1;
}
