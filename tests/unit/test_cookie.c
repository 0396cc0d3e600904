/* cookie: finding one cookie in a Cookie header. */
#include <CUnit/CUnit.h>
#include <string.h>

#include "../../core/cookie.h"
#include "suites.h"

static int found(const char *hdr, const char *name, const char *want)
{
	const char *v;
	size_t n;

	if (!cookie_find(hdr, name, &v, &n))
		return want == NULL;
	return want != NULL && n == strlen(want) && memcmp(v, want, n) == 0;
}

static void test_finds_among_others(void)
{
	CU_ASSERT_TRUE(found("a=1", "a", "1"));
	CU_ASSERT_TRUE(found("a=1; b=2; c=3", "b", "2"));
	CU_ASSERT_TRUE(found("a=1;b=2", "b", "2"));
	CU_ASSERT_TRUE(found("  a=1 ;  b=two words  ", "b", "two words"));
	CU_ASSERT_TRUE(found("x=\"quoted\"", "x", "quoted"));
	CU_ASSERT_TRUE(found("__Host-fgp=abc_-123; other=x", "__Host-fgp", "abc_-123"));
	CU_ASSERT_TRUE(found("a=; b=2", "a", ""));
	CU_ASSERT_TRUE(found("a=1; a=2", "a", "1")); /* the first wins */
}

static void test_no_false_matches(void)
{
	CU_ASSERT_TRUE(found(NULL, "a", NULL));
	CU_ASSERT_TRUE(found("", "a", NULL));
	CU_ASSERT_TRUE(found("ab=1", "a", NULL));    /* prefix of another name */
	CU_ASSERT_TRUE(found("xa=1", "a", NULL));    /* suffix of another name */
	CU_ASSERT_TRUE(found("a", "a", NULL));       /* no '=' */
	CU_ASSERT_TRUE(found("b=a=1", "a", NULL));   /* inside a value */
	CU_ASSERT_TRUE(found("a=1", "", NULL));
}

static CU_TestInfo tests[] = {
	{ "finds a cookie among others", test_finds_among_others },
	{ "no false matches", test_no_false_matches },
	CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suite[] = {
	{ "cookie", NULL, NULL, NULL, NULL, tests },
	CU_SUITE_INFO_NULL,
};

int register_cookie_tests(void)
{
	return CU_register_suites(suite) == CUE_SUCCESS ? 0 : -1;
}
