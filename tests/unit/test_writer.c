/* writer: one stream's FastCGI output, over a real socketpair. */
#include <CUnit/CUnit.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../../core/fcgi_record.h"
#include "../../sse/writer.h"
#include "suites.h"

struct rec {
	int type, request_id;
	size_t len;
	char *content;
};

/* Opens a non-blocking pair: sv[0] for the writer, sv[1] the peer. */
static void pair(int sv[2])
{
	CU_ASSERT_FATAL(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
	CU_ASSERT_FATAL(fcntl(sv[0], F_SETFL, fcntl(sv[0], F_GETFL) | O_NONBLOCK) == 0);
}

/* Reads everything the peer has now (non-blocking) into out. */
static size_t drain(int fd, char *out, size_t cap)
{
	size_t got = 0;
	ssize_t n;

	while (got < cap && (n = recv(fd, out + got, cap - got, MSG_DONTWAIT)) > 0)
		got += (size_t)n;
	return got;
}

/* Splits raw bytes into records; returns how many (at most max). */
static int records(const char *p, size_t n, struct rec *r, int max)
{
	int k = 0;

	while (n >= FCGI_RECORD_HEADER && k < max) {
		const unsigned char *h = (const unsigned char *)p;
		size_t len = (size_t)h[4] << 8 | h[5], pad = h[6];
		if (h[0] != 1 || n < FCGI_RECORD_HEADER + len + pad)
			break;
		r[k].type = h[1];
		r[k].request_id = h[2] << 8 | h[3];
		r[k].len = len;
		r[k].content = (char *)p + FCGI_RECORD_HEADER;
		k++;
		p += FCGI_RECORD_HEADER + len + pad;
		n -= FCGI_RECORD_HEADER + len + pad;
	}
	CU_ASSERT_EQUAL(n, 0); /* nothing left over: whole records only */
	return k;
}

static void test_queued_text_goes_out_as_one_record(void)
{
	static char raw[4096];
	struct writer w;
	struct rec r[8];
	int sv[2];
	size_t n;

	pair(sv);
	CU_ASSERT_FATAL(writer_init(&w, sv[0], 7, 65536, NULL, 0) == 0);
	CU_ASSERT_EQUAL(writer_queue(&w, "id: 1\ndata: a\n\n", 15), 0);
	CU_ASSERT_EQUAL(writer_queue(&w, "id: 2\ndata: b\n\n", 15), 0);
	CU_ASSERT_EQUAL(writer_queue(&w, "id: 3\ndata: c\n\n", 15), 0);
	CU_ASSERT_TRUE(writer_has_queued(&w));
	CU_ASSERT_EQUAL(drain(sv[1], raw, sizeof(raw)), 0); /* nothing before the commit */
	CU_ASSERT_EQUAL(writer_commit(&w), 0);
	CU_ASSERT_FALSE(writer_has_queued(&w));
	n = drain(sv[1], raw, sizeof(raw));
	CU_ASSERT_EQUAL_FATAL(records(raw, n, r, 8), 1);
	CU_ASSERT_EQUAL(r[0].type, FCGI_TYPE_STDOUT);
	CU_ASSERT_EQUAL(r[0].request_id, 7);
	CU_ASSERT_EQUAL(r[0].len, 45);
	CU_ASSERT_EQUAL(memcmp(r[0].content, "id: 1\ndata: a\n\nid: 2\ndata: b\n\nid: 3\ndata: c\n\n", 45), 0);
	CU_ASSERT_EQUAL(writer_commit(&w), 0); /* nothing queued: nothing sent */
	CU_ASSERT_EQUAL(drain(sv[1], raw, sizeof(raw)), 0);
	writer_release(&w);
	close(sv[0]);
	close(sv[1]);
}

/* Text sent at once follows what was queued before it; over 65,535 bytes
 * it is split into records, and the head given at init goes first. */
static void test_order_split_and_head(void)
{
	static char raw[200000], big[70000];
	struct writer w;
	struct rec r[8];
	int sv[2];
	size_t n, total = 0;

	pair(sv);
	memset(big, 'x', sizeof(big));
	CU_ASSERT_FATAL(writer_init(&w, sv[0], 1, 1 << 20, "HEAD", 4) == 0);
	CU_ASSERT_TRUE(writer_wants_out(&w));
	CU_ASSERT_EQUAL(writer_flush(&w), 0);
	CU_ASSERT_FALSE(writer_wants_out(&w));
	CU_ASSERT_EQUAL(writer_queue(&w, "first", 5), 0);
	CU_ASSERT_EQUAL(writer_text(&w, big, sizeof(big)), 0);
	n = drain(sv[1], raw, sizeof(raw));
	CU_ASSERT_FATAL(n > 4);
	CU_ASSERT_EQUAL(memcmp(raw, "HEAD", 4), 0);
	CU_ASSERT_EQUAL_FATAL(records(raw + 4, n - 4, r, 8), 3);
	CU_ASSERT_EQUAL(r[0].len, 5);
	CU_ASSERT_EQUAL(memcmp(r[0].content, "first", 5), 0);
	CU_ASSERT_EQUAL(r[1].len, FCGI_RECORD_MAX_CONTENT);
	CU_ASSERT_EQUAL(r[2].len, sizeof(big) - FCGI_RECORD_MAX_CONTENT);
	for (int i = 1; i < 3; i++) {
		total += r[i].len;
		for (size_t j = 0; j < r[i].len; j++)
			if (r[i].content[j] != 'x') {
				CU_FAIL("content changed");
				break;
			}
	}
	CU_ASSERT_EQUAL(total, sizeof(big));
	CU_ASSERT_EQUAL(w.bytes, (long long)(4 + 8 + 5 + 3 + 8 + 65535 + 1 + 8 + 4465 + 7));
	writer_release(&w);
	close(sv[0]);
	close(sv[1]);
}

/* A peer that does not read: bytes wait (wants_out), up to the bound, then
 * WRITER_FULL; once it reads, a flush drains them, in order. */
static void test_slow_peer_fills_the_bound_then_drains(void)
{
	static char raw[1 << 20];
	char chunk[1000];
	struct writer w;
	int sv[2], rc = 0, sent = 0, small = 4096;
	size_t n, got = 0;

	pair(sv);
	setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof(small));
	CU_ASSERT_FATAL(writer_init(&w, sv[0], 1, 64 * 1024, NULL, 0) == 0);
	memset(chunk, 'y', sizeof(chunk));
	while (sent < 10000 && (rc = writer_text(&w, chunk, sizeof(chunk))) == 0)
		sent++;
	CU_ASSERT_EQUAL(rc, WRITER_FULL);
	CU_ASSERT_TRUE(writer_wants_out(&w));
	CU_ASSERT(w.pending_len <= 64 * 1024);
	CU_ASSERT_EQUAL(writer_queue(&w, chunk, sizeof(chunk) * 70), WRITER_FULL);
	/* the peer reads everything; the writer flushes what waits */
	for (int i = 0; i < 1000 && writer_wants_out(&w); i++) {
		got += drain(sv[1], raw + got, sizeof(raw) - got);
		CU_ASSERT_EQUAL_FATAL(writer_flush(&w), 0);
	}
	got += drain(sv[1], raw + got, sizeof(raw) - got);
	CU_ASSERT_FALSE(writer_wants_out(&w));
	CU_ASSERT_PTR_NULL(w.pending); /* an idle stream holds no buffer */
	n = (size_t)sent * (8 + sizeof(chunk));
	CU_ASSERT_EQUAL(got, n); /* every record that was accepted, whole */
	writer_release(&w);
	close(sv[0]);
	close(sv[1]);
}

static void test_a_gone_peer_is_an_error(void)
{
	struct writer w;
	int sv[2];

	pair(sv);
	CU_ASSERT_FATAL(writer_init(&w, sv[0], 1, 65536, NULL, 0) == 0);
	close(sv[1]);
	CU_ASSERT_EQUAL(writer_text(&w, "x", 1), WRITER_ERROR);
	CU_ASSERT_EQUAL(writer_queue(&w, "x", 1), 0);
	CU_ASSERT_EQUAL(writer_commit(&w), WRITER_ERROR);
	writer_release(&w);
	close(sv[0]);
}

static CU_TestInfo tests[] = {
	{ "queued text goes out as one record", test_queued_text_goes_out_as_one_record },
	{ "order, records split at 65,535 bytes, head first", test_order_split_and_head },
	{ "a slow peer fills the bound, then drains", test_slow_peer_fills_the_bound_then_drains },
	{ "a gone peer is an error", test_a_gone_peer_is_an_error },
	CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suite[] = {
	{ "writer", NULL, NULL, NULL, NULL, tests },
	CU_SUITE_INFO_NULL,
};

int register_writer_tests(void)
{
	return CU_register_suites(suite) == CUE_SUCCESS ? 0 : -1;
}
