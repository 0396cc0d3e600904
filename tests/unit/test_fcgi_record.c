/* fcgi_record: FastCGI framing written by hand must match the spec. */
#include <CUnit/CUnit.h>
#include <string.h>

#include "../../core/fcgi_record.h"
#include "suites.h"

static void test_header_and_padding(void)
{
	unsigned char h[8];

	CU_ASSERT_EQUAL(fcgi_record_header(h, FCGI_TYPE_STDOUT, 1, 13), 3);
	CU_ASSERT_EQUAL(h[0], 1);
	CU_ASSERT_EQUAL(h[1], 6);
	CU_ASSERT_EQUAL(h[2], 0);
	CU_ASSERT_EQUAL(h[3], 1);
	CU_ASSERT_EQUAL(h[4], 0);
	CU_ASSERT_EQUAL(h[5], 13);
	CU_ASSERT_EQUAL(h[6], 3);
	CU_ASSERT_EQUAL(fcgi_record_header(h, FCGI_TYPE_STDOUT, 0x1234, 65535), 1);
	CU_ASSERT_EQUAL(h[2], 0x12);
	CU_ASSERT_EQUAL(h[3], 0x34);
	CU_ASSERT_EQUAL(h[4], 0xff);
	CU_ASSERT_EQUAL(h[5], 0xff);
	CU_ASSERT_EQUAL(fcgi_record_header(h, FCGI_TYPE_STDOUT, 1, 16), 0);
}

/* Walks records: returns the concatenated STDOUT content, counts records
 * and checks lengths and alignment. */
static int walk(const struct buf *b, struct buf *content, int *nrec, int *ended)
{
	size_t off = 0;

	*nrec = 0;
	*ended = 0;
	while (off + 8 <= b->len) {
		const unsigned char *h = (const unsigned char *)b->data + off;
		size_t clen = ((size_t)h[4] << 8) | h[5], plen = h[6];
		if (h[0] != 1 || off + 8 + clen + plen > b->len || (clen + plen) % 8 != 0)
			return -1;
		if (h[1] == FCGI_TYPE_STDOUT)
			buf_append(content, b->data + off + 8, clen);
		if (h[1] == FCGI_TYPE_END_REQUEST)
			*ended = 1;
		off += 8 + clen + plen;
		(*nrec)++;
	}
	return off == b->len ? 0 : -1;
}

static void test_stdout_splits_large_content(void)
{
	static char big[200000];
	struct buf out = BUF_INIT, content = BUF_INIT;
	int n, ended;

	for (size_t i = 0; i < sizeof(big); i++)
		big[i] = (char)('a' + i % 26);
	CU_ASSERT_EQUAL(fcgi_record_stdout(&out, 1, big, sizeof(big)), 0);
	CU_ASSERT_EQUAL(walk(&out, &content, &n, &ended), 0);
	CU_ASSERT_EQUAL(n, 4); /* 65535 * 3 + 3395 */
	CU_ASSERT_EQUAL(content.len, sizeof(big));
	CU_ASSERT_EQUAL(memcmp(content.data, big, sizeof(big)), 0);
	CU_ASSERT_FALSE(ended);
	buf_reset(&out);
	CU_ASSERT_EQUAL(fcgi_record_stdout(&out, 1, "", 0), 0);
	CU_ASSERT_EQUAL(out.len, 0); /* an empty STDOUT record would end the stream */
	buf_release(&out);
	buf_release(&content);
}

static void test_end_request(void)
{
	struct buf out = BUF_INIT, content = BUF_INIT;
	int n, ended;

	CU_ASSERT_EQUAL(fcgi_record_end(&out, 7, 0), 0);
	CU_ASSERT_EQUAL(out.len, 8 + 16);
	CU_ASSERT_EQUAL(walk(&out, &content, &n, &ended), 0);
	CU_ASSERT_EQUAL(n, 2);
	CU_ASSERT_TRUE(ended);
	CU_ASSERT_EQUAL(content.len, 0);
	CU_ASSERT_EQUAL((unsigned char)out.data[8 + 1], FCGI_TYPE_END_REQUEST);
	CU_ASSERT_EQUAL((unsigned char)out.data[8 + 3], 7);
	CU_ASSERT_EQUAL((unsigned char)out.data[16 + 4], 0); /* FCGI_REQUEST_COMPLETE */
	buf_release(&out);
	buf_release(&content);
}

static CU_TestInfo tests[] = {
	{ "header fields and padding", test_header_and_padding },
	{ "stdout splits content at 65535 bytes", test_stdout_splits_large_content },
	{ "end: empty stdout and END_REQUEST", test_end_request },
	CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suite[] = {
	{ "fcgi_record", NULL, NULL, NULL, NULL, tests },
	CU_SUITE_INFO_NULL,
};

int register_fcgi_record_tests(void)
{
	return CU_register_suites(suite) == CUE_SUCCESS ? 0 : -1;
}
