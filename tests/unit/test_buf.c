/* buf: growth, NUL termination, reset/release and the sticky oom flag. */
#include <CUnit/CUnit.h>
#include <stdint.h>
#include <string.h>

#include "../../core/buf.h"
#include "suites.h"

static void test_empty_buffer_is_empty_string(void)
{
	struct buf b = BUF_INIT;

	CU_ASSERT_PTR_NULL(b.data);
	CU_ASSERT_EQUAL(b.len, 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(buf_str(&b));
	CU_ASSERT_STRING_EQUAL(buf_str(&b), "");
	buf_release(&b);
	CU_ASSERT_STRING_EQUAL(buf_str(&b), "");
}

static void test_append_binary_keeps_nul_and_terminates(void)
{
	struct buf b = BUF_INIT;
	static const char bytes[] = { 'a', '\0', 'b', '\xff' };

	CU_ASSERT_EQUAL(buf_append(&b, bytes, sizeof(bytes)), 0);
	CU_ASSERT_EQUAL(b.len, sizeof(bytes));
	CU_ASSERT_PTR_NOT_NULL_FATAL(b.data);
	CU_ASSERT_EQUAL(memcmp(b.data, bytes, sizeof(bytes)), 0);
	CU_ASSERT_EQUAL(b.data[b.len], '\0');
	CU_ASSERT_EQUAL(b.oom, 0);
	buf_release(&b);
}

static void test_append_zero_bytes(void)
{
	struct buf b = BUF_INIT;

	CU_ASSERT_EQUAL(buf_append(&b, "", 0), 0);
	CU_ASSERT_EQUAL(b.len, 0);
	CU_ASSERT_STRING_EQUAL(buf_str(&b), "");
	CU_ASSERT_EQUAL(buf_puts(&b, "x"), 0);
	CU_ASSERT_EQUAL(buf_append(&b, "yz", 0), 0);
	CU_ASSERT_STRING_EQUAL(buf_str(&b), "x");
	buf_release(&b);
}

static void test_puts_and_printf_concatenate(void)
{
	struct buf b = BUF_INIT;

	CU_ASSERT_EQUAL(buf_puts(&b, "Status: "), 0);
	CU_ASSERT_EQUAL(buf_printf(&b, "%d %s", 404, "Not Found"), 0);
	CU_ASSERT_EQUAL(buf_printf(&b, "%s", ""), 0);
	CU_ASSERT_EQUAL(buf_puts(&b, "\r\n"), 0);
	CU_ASSERT_STRING_EQUAL(buf_str(&b), "Status: 404 Not Found\r\n");
	CU_ASSERT_EQUAL(b.len, strlen("Status: 404 Not Found\r\n"));
	buf_release(&b);
}

static void test_printf_longer_than_initial_capacity(void)
{
	struct buf b = BUF_INIT;
	char big[1001];

	memset(big, 'q', 1000);
	big[1000] = '\0';
	CU_ASSERT_EQUAL(buf_puts(&b, "<"), 0);
	CU_ASSERT_EQUAL(buf_printf(&b, "%s|%05d", big, 42), 0);
	CU_ASSERT_EQUAL(b.len, 1 + 1000 + 1 + 5);
	CU_ASSERT_PTR_NOT_NULL_FATAL(b.data);
	CU_ASSERT_EQUAL(b.data[0], '<');
	CU_ASSERT_EQUAL(memcmp(b.data + 1, big, 1000), 0);
	CU_ASSERT_STRING_EQUAL(b.data + 1001, "|00042");
	buf_release(&b);
}

static void test_many_appends_grow_correctly(void)
{
	struct buf b = BUF_INIT;
	int ok = 1;

	for (int i = 0; i < 10000; i++)
		CU_ASSERT_EQUAL(buf_append(&b, &"0123456789"[i % 10], 1), 0);
	CU_ASSERT_EQUAL_FATAL(b.len, 10000);
	for (size_t i = 0; i < b.len; i++)
		if (b.data[i] != (char)('0' + i % 10))
			ok = 0;
	CU_ASSERT(ok);
	CU_ASSERT_EQUAL(b.data[10000], '\0');
	CU_ASSERT_EQUAL(strlen(buf_str(&b)), 10000);
	buf_release(&b);
}

static void test_reset_keeps_memory_and_clears_oom(void)
{
	struct buf b = BUF_INIT;
	char *before;

	CU_ASSERT_EQUAL(buf_puts(&b, "some text"), 0);
	before = b.data;
	b.oom = 1;
	buf_reset(&b);
	CU_ASSERT_EQUAL(b.len, 0);
	CU_ASSERT_EQUAL(b.oom, 0);
	CU_ASSERT_PTR_EQUAL(b.data, before);
	CU_ASSERT_STRING_EQUAL(buf_str(&b), "");
	CU_ASSERT_EQUAL(buf_puts(&b, "again"), 0);
	CU_ASSERT_STRING_EQUAL(buf_str(&b), "again");
	buf_release(&b);
}

static void test_reset_of_unused_buffer(void)
{
	struct buf b = BUF_INIT;

	buf_reset(&b);
	CU_ASSERT_EQUAL(b.len, 0);
	CU_ASSERT_STRING_EQUAL(buf_str(&b), "");
	buf_release(&b);
}

static void test_release_leaves_reusable_buffer(void)
{
	struct buf b = BUF_INIT;

	CU_ASSERT_EQUAL(buf_puts(&b, "one"), 0);
	buf_release(&b);
	CU_ASSERT_PTR_NULL(b.data);
	CU_ASSERT_EQUAL(b.len, 0);
	CU_ASSERT_EQUAL(b.oom, 0);
	CU_ASSERT_EQUAL(buf_puts(&b, "two"), 0);
	CU_ASSERT_STRING_EQUAL(buf_str(&b), "two");
	buf_release(&b);
	buf_release(&b); /* twice is harmless */
	CU_ASSERT_PTR_NULL(b.data);
}

static void test_oom_is_sticky_until_reset(void)
{
	struct buf b = BUF_INIT;

	CU_ASSERT_EQUAL(buf_puts(&b, "kept"), 0);
	b.oom = 1;
	CU_ASSERT_EQUAL(buf_puts(&b, "lost"), -1);
	CU_ASSERT_EQUAL(buf_append(&b, "lost", 4), -1);
	CU_ASSERT_EQUAL(buf_printf(&b, "%s", "lost"), -1);
	CU_ASSERT_EQUAL(b.oom, 1);
	CU_ASSERT_STRING_EQUAL(buf_str(&b), "kept");
	CU_ASSERT_EQUAL(b.len, 4);
	buf_reset(&b);
	CU_ASSERT_EQUAL(buf_puts(&b, "ok"), 0);
	CU_ASSERT_STRING_EQUAL(buf_str(&b), "ok");
	buf_release(&b);
}

static void test_size_overflow_sets_oom_and_keeps_contents(void)
{
	struct buf b = BUF_INIT;

	CU_ASSERT_EQUAL(buf_puts(&b, "abc"), 0);
	/* The length check must fire before anything is read or allocated. */
	CU_ASSERT_EQUAL(buf_append(&b, "x", SIZE_MAX), -1);
	CU_ASSERT_EQUAL(b.oom, 1);
	CU_ASSERT_EQUAL(b.len, 3);
	CU_ASSERT_STRING_EQUAL(buf_str(&b), "abc");
	CU_ASSERT_EQUAL(buf_append(&b, "x", SIZE_MAX - 3), -1);
	CU_ASSERT_STRING_EQUAL(buf_str(&b), "abc");
	buf_release(&b);
}

static CU_TestInfo tests[] = {
	{ "empty buffer is an empty string", test_empty_buffer_is_empty_string },
	{ "append binary keeps NUL bytes and terminates", test_append_binary_keeps_nul_and_terminates },
	{ "append of zero bytes", test_append_zero_bytes },
	{ "puts and printf concatenate", test_puts_and_printf_concatenate },
	{ "printf longer than the initial capacity", test_printf_longer_than_initial_capacity },
	{ "10000 appends grow correctly", test_many_appends_grow_correctly },
	{ "reset keeps memory and clears oom", test_reset_keeps_memory_and_clears_oom },
	{ "reset of an unused buffer", test_reset_of_unused_buffer },
	{ "release leaves a reusable buffer", test_release_leaves_reusable_buffer },
	{ "oom is sticky until reset", test_oom_is_sticky_until_reset },
	{ "size overflow sets oom and keeps contents", test_size_overflow_sets_oom_and_keeps_contents },
	CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suite[] = {
	{ .pName = "buf", .pTests = tests },
	CU_SUITE_INFO_NULL,
};

int register_buf_tests(void)
{
	return CU_register_suites(suite) == CUE_SUCCESS ? 0 : -1;
}
