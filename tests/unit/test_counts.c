/* counts: per-tenant totals and per-user counts of open streams. */
#include <CUnit/CUnit.h>
#include <stdlib.h>
#include <string.h>

#include "../../sse/counts.h"
#include "suites.h"

static long long find(const struct count_entry *e, size_t n, const char *t, const char *u)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(e[i].tenant, t) == 0 && strcmp(e[i].user, u) == 0)
			return e[i].n;
	return 0;
}

static void test_counts_totals_and_users(void)
{
	struct stream_counts *c = counts_new();
	struct count_entry *e;
	size_t n;

	CU_ASSERT_FATAL(c != NULL);
	counts_add(c, "t1", "ana", 1);
	counts_add(c, "t1", "ana", 1);
	counts_add(c, "t1", "bo", 1);
	counts_add(c, "t2", "", 1); /* a stream without a user counts for its tenant */
	counts_add(c, "t2", NULL, 1);
	CU_ASSERT_EQUAL_FATAL(counts_snapshot(c, &e, &n), 0);
	CU_ASSERT_EQUAL(n, 4); /* t1, t1/ana, t1/bo, t2 */
	CU_ASSERT_EQUAL(find(e, n, "t1", ""), 3);
	CU_ASSERT_EQUAL(find(e, n, "t1", "ana"), 2);
	CU_ASSERT_EQUAL(find(e, n, "t1", "bo"), 1);
	CU_ASSERT_EQUAL(find(e, n, "t2", ""), 2);
	free(e);
	counts_add(c, "t1", "bo", -1);
	counts_add(c, "t2", "", -1);
	counts_add(c, "t2", "", -1);
	counts_add(c, "t3", "x", -1); /* never counted: ignored */
	CU_ASSERT_EQUAL_FATAL(counts_snapshot(c, &e, &n), 0);
	CU_ASSERT_EQUAL(n, 2); /* zero counts are gone */
	CU_ASSERT_EQUAL(find(e, n, "t1", ""), 2);
	CU_ASSERT_EQUAL(find(e, n, "t1", "bo"), 0);
	free(e);
	counts_free(c);
}

static CU_TestInfo tests[] = {
	{ "tenant totals and user counts; zeros dropped", test_counts_totals_and_users },
	CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suite[] = {
	{ .pName = "counts", .pTests = tests },
	CU_SUITE_INFO_NULL,
};

int register_counts_tests(void)
{
	return CU_register_suites(suite) == CUE_SUCCESS ? 0 : -1;
}
