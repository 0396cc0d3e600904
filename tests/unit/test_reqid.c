/* reqid: sanity of client ids and generated ids. */
#include <CUnit/CUnit.h>
#include <string.h>

#include "../../core/reqid.h"
#include "suites.h"

static void test_sane_ids(void)
{
	char max[65];

	memset(max, 'a', 64);
	max[64] = '\0';
	CU_ASSERT_TRUE(reqid_is_sane("a"));
	CU_ASSERT_TRUE(reqid_is_sane("abc-123"));
	CU_ASSERT_TRUE(reqid_is_sane("ABC.def_ghi:jkl-0123456789"));
	CU_ASSERT_TRUE(reqid_is_sane("0f8fad5b-d9cb-469f-a165-70867728950e"));
	CU_ASSERT_TRUE(reqid_is_sane(max));
}

static void test_insane_ids(void)
{
	static const char *const bad[] = {
		"", " ", "a b", "a\r\nX-Injected: 1", "a\n", "\ta", "a/b", "a%20b",
		"a\"b", "a,b", "a;b", "<script>", "\xc3\xa9", "a\x7f", "a+b", "a=b",
	};
	char long_id[66];

	memset(long_id, 'a', 65);
	long_id[65] = '\0';
	CU_ASSERT_FALSE(reqid_is_sane(NULL));
	CU_ASSERT_FALSE(reqid_is_sane(long_id));
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		CU_ASSERT_FALSE(reqid_is_sane(bad[i]));
}

static int is_lower_hex(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return 0;
	return 1;
}

static void test_generate_shape(void)
{
	char out[REQID_GENERATED_LEN + 2];

	memset(out, 'X', sizeof(out));
	CU_ASSERT_EQUAL_FATAL(reqid_generate(out), 0);
	CU_ASSERT_EQUAL(out[REQID_GENERATED_LEN], '\0');
	CU_ASSERT_EQUAL(out[REQID_GENERATED_LEN + 1], 'X'); /* no write past the end */
	CU_ASSERT_EQUAL(strlen(out), REQID_GENERATED_LEN);
	CU_ASSERT(is_lower_hex(out, REQID_GENERATED_LEN));
	CU_ASSERT_TRUE(reqid_is_sane(out));
}

static void test_generate_distinct(void)
{
	enum { N = 200 };
	static char ids[N][REQID_GENERATED_LEN + 1];
	int dup = 0, all_ok = 1;

	for (int i = 0; i < N; i++)
		if (reqid_generate(ids[i]) != 0 || !is_lower_hex(ids[i], REQID_GENERATED_LEN))
			all_ok = 0;
	for (int i = 0; i < N; i++)
		for (int j = i + 1; j < N; j++)
			if (strcmp(ids[i], ids[j]) == 0)
				dup = 1;
	CU_ASSERT(all_ok);
	CU_ASSERT_FALSE(dup);
}

static CU_TestInfo tests[] = {
	{ "sane ids", test_sane_ids },
	{ "insane ids", test_insane_ids },
	{ "generated id: 32 lowercase hex", test_generate_shape },
	{ "generated ids are distinct", test_generate_distinct },
	CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suite[] = {
	{ .pName = "reqid", .pTests = tests },
	CU_SUITE_INFO_NULL,
};

int register_reqid_tests(void)
{
	return CU_register_suites(suite) == CUE_SUCCESS ? 0 : -1;
}
