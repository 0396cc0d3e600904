/* busmsg: the bus channel's messages, written and read back (pure). */
#include <CUnit/CUnit.h>
#include <string.h>

#include "../../redis/busmsg.h"
#include "suites.h"

/* Parses a copy of s (n bytes) into m, keeping the copy in buf. */
static enum busmsg_kind parse(const char *s, size_t n, char *copy, struct busmsg *m)
{
	memcpy(copy, s, n);
	return busmsg_parse(copy, n, m);
}

static void test_event_round_trip(void)
{
	static const char data[] = "{\"a\":\"x\\ny\"}\nraw\nline\n";
	struct buf b = BUF_INIT;
	struct busmsg m;
	char copy[256];

	CU_ASSERT_EQUAL_FATAL(busmsg_event(&b, "t1", "17-3", "task.done", "task:7", 1, data, sizeof(data) - 1), 0);
	CU_ASSERT_EQUAL(b.len, strlen("E\nt1\n17-3\ntask.done\ntask:7\n1\n") + sizeof(data) - 1);
	CU_ASSERT_EQUAL_FATAL(parse(b.data, b.len, copy, &m), BUSMSG_EVENT);
	CU_ASSERT_STRING_EQUAL(m.tenant, "t1");
	CU_ASSERT_STRING_EQUAL(m.id, "17-3");
	CU_ASSERT_STRING_EQUAL(m.type, "task.done");
	CU_ASSERT_STRING_EQUAL(m.topic, "task:7");
	CU_ASSERT_EQUAL(m.close, 1);
	CU_ASSERT_EQUAL(m.len, sizeof(data) - 1);
	CU_ASSERT_EQUAL(memcmp(m.data, data, m.len), 0);
	/* no topic, empty data, not a close */
	CU_ASSERT_EQUAL_FATAL(busmsg_event(&b, "t1", "1-0", "x", NULL, 0, "", 0), 0);
	CU_ASSERT_EQUAL_FATAL(parse(b.data, b.len, copy, &m), BUSMSG_EVENT);
	CU_ASSERT_PTR_NULL(m.topic);
	CU_ASSERT_EQUAL(m.close, 0);
	CU_ASSERT_EQUAL(m.len, 0);
	buf_release(&b);
}

static void test_control_round_trips(void)
{
	struct buf b = BUF_INIT;
	struct busmsg m;
	char copy[256];

	CU_ASSERT_EQUAL_FATAL(busmsg_revoke_login(&b, "sess-1"), 0);
	CU_ASSERT_EQUAL_FATAL(parse(b.data, b.len, copy, &m), BUSMSG_REVOKE_LOGIN);
	CU_ASSERT_STRING_EQUAL(m.login, "sess-1");
	CU_ASSERT_EQUAL_FATAL(busmsg_revoke_user(&b, "t1", "u-9"), 0);
	CU_ASSERT_EQUAL_FATAL(parse(b.data, b.len, copy, &m), BUSMSG_REVOKE_USER);
	CU_ASSERT_STRING_EQUAL(m.tenant, "t1");
	CU_ASSERT_STRING_EQUAL(m.user, "u-9");
	CU_ASSERT_EQUAL_FATAL(busmsg_key(&b, "t1", "abcdef", "conn-2"), 0);
	CU_ASSERT_EQUAL_FATAL(parse(b.data, b.len, copy, &m), BUSMSG_KEY);
	CU_ASSERT_STRING_EQUAL(m.tenant, "t1");
	CU_ASSERT_STRING_EQUAL(m.key, "abcdef");
	CU_ASSERT_STRING_EQUAL(m.conn, "conn-2");
	CU_ASSERT_EQUAL_FATAL(busmsg_probe(&b, "n0nce", 1764600000123LL), 0);
	CU_ASSERT_EQUAL_FATAL(parse(b.data, b.len, copy, &m), BUSMSG_PROBE);
	CU_ASSERT_STRING_EQUAL(m.nonce, "n0nce");
	CU_ASSERT_EQUAL(m.sent_ms, 1764600000123LL);
	buf_release(&b);
}

/* What the hub must never act on: unknown kinds, missing or extra fields. */
static void test_malformed_is_invalid(void)
{
	static const char *const bad[] = {
		"", "E", "E\n", "E\nt\n1-0\ntype\ntopic\n1", /* no data field */
		"E\nt\n1-0\ntype\ntopic\n2\ndata", "E\nt\n1-0\ntype\ntopic\n11\ndata",
		"R", "R\nlogin\nextra", "U\nt", "U\nt\nu\nx", "K\nt\nk", "K\nt\nk\nc\nx",
		"X\nwhatever", "RR\nx", "P\nn", "P\nn\n12x", "P\n\n12", "P\nn\n-1", "P\nn\n1\n2",
	};
	struct busmsg m;
	char copy[64];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		CU_ASSERT_EQUAL(parse(bad[i], strlen(bad[i]), copy, &m), BUSMSG_INVALID);
		CU_ASSERT_EQUAL(m.kind, BUSMSG_INVALID);
		CU_ASSERT_PTR_NULL(m.tenant);
	}
	/* an empty login is a field: the hub matches nothing with it */
	CU_ASSERT_EQUAL(parse("R\n", 2, copy, &m), BUSMSG_REVOKE_LOGIN);
}

static CU_TestInfo tests[] = {
	{ "an event round trip, data with newlines", test_event_round_trip },
	{ "control messages round trip", test_control_round_trips },
	{ "malformed messages are invalid", test_malformed_is_invalid },
	CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suite[] = {
	{ "busmsg", NULL, NULL, NULL, NULL, tests },
	CU_SUITE_INFO_NULL,
};

int register_busmsg_tests(void)
{
	return CU_register_suites(suite) == CUE_SUCCESS ? 0 : -1;
}
