/* session: random ids and their shape check. */
#include <CUnit/CUnit.h>
#include <stdlib.h>
#include <string.h>

#include "../../session/session.h"
#include "suites.h"

#define N_IDS 1000

static const char alphabet[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static int cmp_ids(const void *a, const void *b)
{
	return strcmp(a, b);
}

static void test_new_ids_shape_and_distinct(void)
{
	static char ids[N_IDS][SESSION_ID_LEN + 1];
	int seen_last[64] = { 0 }, seen_any[64] = { 0 };
	int all_ok = 1, dup = 0, distinct_last = 0, distinct_any = 0;

	for (int i = 0; i < N_IDS; i++) {
		if (session_id_new(ids[i]) != 0 || strlen(ids[i]) != SESSION_ID_LEN ||
		    strspn(ids[i], alphabet) != SESSION_ID_LEN || !session_id_valid(ids[i])) {
			all_ok = 0;
			continue;
		}
		for (int j = 0; j < SESSION_ID_LEN - 1; j++)
			seen_any[strchr(alphabet, ids[i][j]) - alphabet] = 1;
		seen_last[strchr(alphabet, ids[i][SESSION_ID_LEN - 1]) - alphabet] = 1;
	}
	CU_ASSERT(all_ok);
	qsort(ids, N_IDS, sizeof(ids[0]), cmp_ids);
	for (int i = 1; i < N_IDS; i++)
		if (strcmp(ids[i - 1], ids[i]) == 0)
			dup = 1;
	CU_ASSERT_FALSE(dup);
	for (int c = 0; c < 64; c++) {
		distinct_last += seen_last[c];
		distinct_any += seen_any[c];
	}
	/* 21000 random characters use the whole alphabet; the last character
	 * carries 2 bits, so it takes exactly the 4 values A, Q, g, w */
	CU_ASSERT_EQUAL(distinct_any, 64);
	CU_ASSERT_EQUAL(distinct_last, 4);
	CU_ASSERT(seen_last[0] && seen_last[16] && seen_last[32] && seen_last[48]);
}

static void test_valid_accepts_good_shapes(void)
{
	CU_ASSERT_TRUE(session_id_valid("AAAAAAAAAAAAAAAAAAAAAA"));
	CU_ASSERT_TRUE(session_id_valid("AAAAAAAAAAAAAAAAAAAAAQ"));
	CU_ASSERT_TRUE(session_id_valid("abcdefghijklmnopqrstug"));
	CU_ASSERT_TRUE(session_id_valid("-_-_-_-_-_0123456789Aw"));
}

static void test_valid_rejects_wrong_lengths(void)
{
	CU_ASSERT_FALSE(session_id_valid(""));
	CU_ASSERT_FALSE(session_id_valid("A"));
	CU_ASSERT_FALSE(session_id_valid("AAAAAAAAAAAAAAAAAAAAA"));   /* 21 */
	CU_ASSERT_FALSE(session_id_valid("AAAAAAAAAAAAAAAAAAAAAAA")); /* 23 */
	CU_ASSERT_FALSE(session_id_valid("AAAAAAAAAAAAAAAAAAAAAA=="));
}

static void test_valid_rejects_bad_chars(void)
{
	static const char *const bad[] = {
		"AAAAAAAAAA+AAAAAAAAAAA", "AAAAAAAAAA/AAAAAAAAAAA", "AAAAAAAAAA=AAAAAAAAAAA",
		"AAAAAAAAAA.AAAAAAAAAAA", "AAAAAAAAAA AAAAAAAAAAA", "AAAAAAAAAA%AAAAAAAAAAA",
		"AAAAAAAAAA\nAAAAAAAAAAA", "AAAAAAAAAAAAAAAAAAAA\xc3\xa9",
		"AAAAAAAAAAAAAAAAAAAAA=",
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		CU_ASSERT_FALSE(session_id_valid(bad[i]));
}

static void test_valid_rejects_nonzero_low_bits(void)
{
	char id[SESSION_ID_LEN + 1];
	int accepted = 0;

	memset(id, 'A', SESSION_ID_LEN);
	id[SESSION_ID_LEN] = '\0';
	for (int c = 0; c < 64; c++) {
		id[SESSION_ID_LEN - 1] = alphabet[c];
		if (session_id_valid(id)) {
			accepted++;
			CU_ASSERT_EQUAL(c & 15, 0);
		}
	}
	CU_ASSERT_EQUAL(accepted, 4);
	CU_ASSERT_FALSE(session_id_valid("AAAAAAAAAAAAAAAAAAAAAB"));
	CU_ASSERT_FALSE(session_id_valid("AAAAAAAAAAAAAAAAAAAAA_"));
	CU_ASSERT_FALSE(session_id_valid("AAAAAAAAAAAAAAAAAAAAAh"));
}

static CU_TestInfo tests[] = {
	{ "1000 new ids: shape, valid, distinct", test_new_ids_shape_and_distinct },
	{ "valid accepts good shapes", test_valid_accepts_good_shapes },
	{ "valid rejects wrong lengths", test_valid_rejects_wrong_lengths },
	{ "valid rejects bad characters", test_valid_rejects_bad_chars },
	{ "valid rejects a last char with nonzero low bits", test_valid_rejects_nonzero_low_bits },
	CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suite[] = {
	{ .pName = "session", .pTests = tests },
	CU_SUITE_INFO_NULL,
};

int register_session_tests(void)
{
	return CU_register_suites(suite) == CUE_SUCCESS ? 0 : -1;
}
