/* query: URL query parameters. */
#include <CUnit/CUnit.h>
#include <string.h>

#include "../../core/query.h"
#include "suites.h"

static int get_is(const char *q, const char *name, int want_rc, const char *want)
{
	struct buf v = BUF_INIT;
	int rc = query_get(q, name, &v), ok = rc == want_rc && (want == NULL || strcmp(buf_str(&v), want) == 0);

	buf_release(&v);
	return ok;
}

static void test_get(void)
{
	CU_ASSERT_TRUE(get_is("a=1&b=2", "b", 1, "2"));
	CU_ASSERT_TRUE(get_is("a=1&b=2", "a", 1, "1"));
	CU_ASSERT_TRUE(get_is("a=1&b=2", "c", 0, ""));
	CU_ASSERT_TRUE(get_is("", "a", 0, ""));
	CU_ASSERT_TRUE(get_is("a", "a", 1, ""));
	CU_ASSERT_TRUE(get_is("a=", "a", 1, ""));
	CU_ASSERT_TRUE(get_is("a=x%20y+z", "a", 1, "x y z"));
	CU_ASSERT_TRUE(get_is("a=%2C%3a", "a", 1, ",:"));
	CU_ASSERT_TRUE(get_is("a=1&a=2", "a", 1, "1"));
	CU_ASSERT_TRUE(get_is("&&a=1&", "a", 1, "1"));
	CU_ASSERT_TRUE(get_is("%61=1", "a", 1, "1")); /* names are decoded too */
}

static void test_malformed(void)
{
	CU_ASSERT_TRUE(get_is("a=%", "a", -1, NULL));
	CU_ASSERT_TRUE(get_is("a=%2", "a", -1, NULL));
	CU_ASSERT_TRUE(get_is("a=%zz", "a", -1, NULL));
	CU_ASSERT_TRUE(get_is("a=%00", "a", -1, NULL));
	CU_ASSERT_TRUE(get_is("b=%G1&a=1", "a", -1, NULL)); /* anywhere in the query */
}

static void test_only(void)
{
	static const char *const allowed[] = { "events", "topics", NULL };
	const char *u = NULL;
	size_t n = 0;

	CU_ASSERT_EQUAL(query_only("events=a&topics=b", allowed, &u, &n), 1);
	CU_ASSERT_EQUAL(query_only("", allowed, &u, &n), 1);
	CU_ASSERT_EQUAL(query_only("events=a&token=secret", allowed, &u, &n), 0);
	CU_ASSERT_EQUAL(n, 5);
	CU_ASSERT_EQUAL(strncmp(u, "token", n), 0);
	CU_ASSERT_EQUAL(query_only("events=%zz", allowed, &u, &n), -1);
}

static CU_TestInfo tests[] = {
	{ "get: values, decoding, first wins", test_get },
	{ "get: malformed escapes are errors", test_malformed },
	{ "only: unknown parameters are named", test_only },
	CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suite[] = {
	{ "query", NULL, NULL, NULL, NULL, tests },
	CU_SUITE_INFO_NULL,
};

int register_query_tests(void)
{
	return CU_register_suites(suite) == CUE_SUCCESS ? 0 : -1;
}
