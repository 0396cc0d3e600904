/* sse: the frame encoder, checked by parsing its output the way a browser
 * does (WHATWG HTML §9.2.6). */
#include <CUnit/CUnit.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../sse/sse.h"
#include "suites.h"

#define MAX_EVENTS 8

struct parsed_event {
	char type[128];
	char last_id[300];
	struct buf data;
};

struct parse_result {
	struct parsed_event ev[MAX_EVENTS];
	int n;
	long long retry; /* -1 when no retry field */
	int overflow;
};

struct parser {
	struct buf data;
	char type[128];
	char last_id[300];
};

static void copy_field(char *dst, size_t n, const char *v, size_t len)
{
	if (len >= n)
		len = n - 1;
	memcpy(dst, v, len);
	dst[len] = '\0';
}

static void dispatch(struct parser *p, struct parse_result *r)
{
	struct parsed_event *e;

	if (p->data.len == 0) {
		p->type[0] = '\0';
		return;
	}
	if (r->n == MAX_EVENTS) {
		r->overflow = 1;
	} else {
		e = &r->ev[r->n++];
		snprintf(e->type, sizeof(e->type), "%s", p->type[0] ? p->type : "message");
		snprintf(e->last_id, sizeof(e->last_id), "%s", p->last_id);
		e->data = (struct buf)BUF_INIT;
		/* drop the last LF */
		buf_append(&e->data, p->data.data, p->data.len - 1);
	}
	buf_reset(&p->data);
	p->type[0] = '\0';
}

static void process_line(struct parser *p, struct parse_result *r, const char *line, size_t n)
{
	const char *colon = memchr(line, ':', n);
	const char *v;
	size_t flen, vlen;

	if (n == 0) {
		dispatch(p, r);
		return;
	}
	if (line[0] == ':')
		return;
	if (colon != NULL) {
		flen = (size_t)(colon - line);
		v = colon + 1;
		vlen = n - flen - 1;
		if (vlen > 0 && *v == ' ') {
			v++;
			vlen--;
		}
	} else {
		flen = n;
		v = "";
		vlen = 0;
	}
	if (flen == 5 && memcmp(line, "event", 5) == 0) {
		copy_field(p->type, sizeof(p->type), v, vlen);
	} else if (flen == 4 && memcmp(line, "data", 4) == 0) {
		buf_append(&p->data, v, vlen);
		buf_puts(&p->data, "\n");
	} else if (flen == 2 && memcmp(line, "id", 2) == 0) {
		if (memchr(v, '\0', vlen) == NULL)
			copy_field(p->last_id, sizeof(p->last_id), v, vlen);
	} else if (flen == 5 && memcmp(line, "retry", 5) == 0) {
		int digits = vlen > 0;

		for (size_t i = 0; i < vlen; i++)
			if (v[i] < '0' || v[i] > '9')
				digits = 0;
		if (digits)
			r->retry = strtoll(v, NULL, 10);
	}
}

/* Parses a whole stream; lines end at CRLF, LF or CR. An incomplete last
 * line and an undispatched event are dropped, as at the end of a stream. */
static void sse_parse(const char *s, size_t len, struct parse_result *r)
{
	struct parser p;
	size_t start = 0;

	memset(&p, 0, sizeof(p));
	memset(r, 0, sizeof(*r));
	r->retry = -1;
	for (size_t i = 0; i < len; i++) {
		if (s[i] != '\n' && s[i] != '\r')
			continue;
		process_line(&p, r, s + start, i - start);
		if (s[i] == '\r' && i + 1 < len && s[i + 1] == '\n')
			i++;
		start = i + 1;
	}
	buf_release(&p.data);
}

static void parse_release(struct parse_result *r)
{
	for (int i = 0; i < r->n; i++)
		buf_release(&r->ev[i].data);
}

/* What a browser must see for payload: every CRLF, CR and LF as LF. */
static void normalise(const char *s, size_t len, struct buf *out)
{
	for (size_t i = 0; i < len; i++) {
		if (s[i] == '\r') {
			buf_puts(out, "\n");
			if (i + 1 < len && s[i + 1] == '\n')
				i++;
		} else {
			buf_append(out, &s[i], 1);
		}
	}
	if (out->data == NULL)
		buf_puts(out, "");
}

/* 1 if every line of s (split at LF) is "", "data: ...", "id: ..." or
 * "event: ...", and s has no CR. */
static int lines_well_formed(const char *s, size_t len)
{
	size_t start = 0;

	if (memchr(s, '\r', len) != NULL || len == 0 || s[len - 1] != '\n')
		return 0;
	for (size_t i = 0; i < len; i++) {
		const char *line = s + start;
		size_t n = i - start;

		if (s[i] != '\n')
			continue;
		start = i + 1;
		if (n == 0)
			continue;
		if (!((n >= 6 && memcmp(line, "data: ", 6) == 0) ||
		      (n >= 4 && memcmp(line, "id: ", 4) == 0) ||
		      (n >= 7 && memcmp(line, "event: ", 7) == 0)))
			return 0;
	}
	return 1;
}

static void test_round_trip_payloads(void)
{
	static const struct {
		const char *p;
		size_t len;
	} payloads[] = {
#define P(s) { s, sizeof(s) - 1 }
		P("hello"), P("a\nb"), P("a\rb"), P("a\r\nb"), P("a\n\rb"), P("a\r\rb"),
		P("a\r\n\r\nb"), P("one\ntwo\rthree\r\nfour"), P("\nleading"),
		P("trailing\n"), P("trailing\r"), P("trailing\r\n"), P("\n"), P("\r"),
		P("\r\n"), P("\n\n\n"), P(""), P("\nevent: evil\nid: 9"),
		P("x\r\nevent: evil\r\n\r\ndata: injected"), P("data: x"), P(": comment"),
		P(" leading space"), P("  two spaces"), P("retry: 1"), P("{\"a\":[1,2]}"),
		P("\xe2\x9c\x93 unicode \xc3\xa9"), P("\n\nid: 1\n\nevent: x\n\n"),
#undef P
	};

	for (size_t i = 0; i < sizeof(payloads) / sizeof(payloads[0]); i++) {
		struct buf out = BUF_INIT, want = BUF_INIT;
		struct parse_result r;
		int ok;

		CU_ASSERT_EQUAL(sse_event(&out, "7", "update", payloads[i].p, payloads[i].len), 0);
		CU_ASSERT(lines_well_formed(out.data, out.len));
		sse_parse(out.data, out.len, &r);
		normalise(payloads[i].p, payloads[i].len, &want);
		ok = r.n == 1 && !r.overflow && strcmp(r.ev[0].type, "update") == 0 &&
		     strcmp(r.ev[0].last_id, "7") == 0 && r.ev[0].data.len == want.len &&
		     memcmp(buf_str(&r.ev[0].data), buf_str(&want), want.len) == 0;
		CU_ASSERT(ok);
		if (!ok)
			fprintf(stderr, "\n  payload %zu did not round-trip: %d events\n", i, r.n);
		CU_ASSERT_EQUAL(r.retry, -1);
		parse_release(&r);
		buf_release(&out);
		buf_release(&want);
	}
}

static void test_exact_frame(void)
{
	struct buf out = BUF_INIT;

	CU_ASSERT_EQUAL(sse_event(&out, "42", "ping", "a\r\nb", 4), 0);
	CU_ASSERT_STRING_EQUAL(buf_str(&out), "id: 42\nevent: ping\ndata: a\ndata: b\n\n");
	buf_reset(&out);
	CU_ASSERT_EQUAL(sse_event(&out, NULL, "ping", "", 0), 0);
	CU_ASSERT_STRING_EQUAL(buf_str(&out), "event: ping\ndata: \n\n");
	buf_release(&out);
}

static void test_injection_payload_is_one_event(void)
{
	static const char evil[] = "\nevent: evil\nid: 9";
	struct buf out = BUF_INIT;
	struct parse_result r;

	CU_ASSERT_EQUAL_FATAL(sse_event(&out, "1", "update", evil, sizeof(evil) - 1), 0);
	CU_ASSERT_PTR_NULL(strstr(buf_str(&out), "\nevent: evil"));
	CU_ASSERT_PTR_NULL(strstr(buf_str(&out), "\nid: 9"));
	sse_parse(out.data, out.len, &r);
	CU_ASSERT_EQUAL_FATAL(r.n, 1);
	CU_ASSERT_STRING_EQUAL(r.ev[0].type, "update");
	CU_ASSERT_STRING_EQUAL(r.ev[0].last_id, "1");
	CU_ASSERT_STRING_EQUAL(buf_str(&r.ev[0].data), evil);
	parse_release(&r);
	buf_release(&out);
}

static void test_many_lines(void)
{
	struct buf payload = BUF_INIT, out = BUF_INIT;
	struct parse_result r;

	for (int i = 0; i < 1000; i++)
		buf_puts(&payload, i % 3 == 0 ? "\r\n" : i % 3 == 1 ? "x\r" : "y\n");
	CU_ASSERT_EQUAL(sse_event(&out, NULL, "bulk", payload.data, payload.len), 0);
	CU_ASSERT(lines_well_formed(out.data, out.len));
	sse_parse(out.data, out.len, &r);
	CU_ASSERT_EQUAL(r.n, 1);
	if (r.n == 1) {
		struct buf want = BUF_INIT;

		normalise(payload.data, payload.len, &want);
		CU_ASSERT_STRING_EQUAL(buf_str(&r.ev[0].data), buf_str(&want));
		CU_ASSERT_STRING_EQUAL(r.ev[0].last_id, "");
		buf_release(&want);
	}
	parse_release(&r);
	buf_release(&payload);
	buf_release(&out);
}

static void test_sequence_of_events(void)
{
	struct buf out = BUF_INIT;
	struct parse_result r;

	CU_ASSERT_EQUAL(sse_retry(&out, 2500), 0);
	CU_ASSERT_EQUAL(sse_event(&out, "1", "a", "first", 5), 0);
	CU_ASSERT_EQUAL(sse_comment(&out, "keepalive"), 0);
	CU_ASSERT_EQUAL(sse_event(&out, NULL, "b", "second\nline", 11), 0);
	CU_ASSERT_EQUAL(sse_event(&out, "", "c", "third", 5), 0);
	sse_parse(out.data, out.len, &r);
	CU_ASSERT_EQUAL(r.retry, 2500);
	CU_ASSERT_EQUAL_FATAL(r.n, 3);
	CU_ASSERT_STRING_EQUAL(r.ev[0].type, "a");
	CU_ASSERT_STRING_EQUAL(buf_str(&r.ev[0].data), "first");
	CU_ASSERT_STRING_EQUAL(r.ev[0].last_id, "1");
	CU_ASSERT_STRING_EQUAL(r.ev[1].type, "b");
	CU_ASSERT_STRING_EQUAL(buf_str(&r.ev[1].data), "second\nline");
	CU_ASSERT_STRING_EQUAL(r.ev[1].last_id, "1"); /* no id: the last one stays */
	CU_ASSERT_STRING_EQUAL(r.ev[2].last_id, "");  /* empty id resets it */
	parse_release(&r);
	buf_release(&out);
}

static void expect_refused(const char *id, const char *event)
{
	struct buf out = BUF_INIT, empty = BUF_INIT;

	buf_puts(&out, "prefix\n\n");
	CU_ASSERT_EQUAL(sse_event(&out, id, event, "data", 4), -1);
	CU_ASSERT_EQUAL(out.len, 8);
	CU_ASSERT_STRING_EQUAL(buf_str(&out), "prefix\n\n");
	CU_ASSERT_EQUAL(sse_event(&empty, id, event, "data", 4), -1);
	CU_ASSERT_EQUAL(empty.len, 0);
	CU_ASSERT_STRING_EQUAL(buf_str(&empty), "");
	buf_release(&out);
	buf_release(&empty);
}

static void test_unsafe_id_or_event_refused(void)
{
	char long_name[66];

	memset(long_name, 'e', 65);
	long_name[65] = '\0';
	expect_refused("1\n2", "update");
	expect_refused("1\r2", "update");
	expect_refused("1\r\n", "update");
	expect_refused("\n", "update");
	expect_refused("1", "up\ndate");
	expect_refused("1", "up\rdate");
	expect_refused("1", "update\r\nid: 9");
	expect_refused("1", "");
	expect_refused(NULL, "");
	expect_refused(NULL, "a\n");
	expect_refused("1", long_name);
}

static void test_name_ok(void)
{
	char name64[65], name65[66];

	memset(name64, 'n', 64);
	name64[64] = '\0';
	memset(name65, 'n', 65);
	name65[65] = '\0';
	CU_ASSERT_TRUE(sse_name_ok("ping"));
	CU_ASSERT_TRUE(sse_name_ok("device.updated"));
	CU_ASSERT_TRUE(sse_name_ok(name64));
	CU_ASSERT_FALSE(sse_name_ok(name65));
	CU_ASSERT_FALSE(sse_name_ok(""));
	CU_ASSERT_FALSE(sse_name_ok("a\rb"));
	CU_ASSERT_FALSE(sse_name_ok("a\nb"));
	CU_ASSERT_FALSE(sse_name_ok("\r\n"));
}

static void test_retry(void)
{
	struct buf out = BUF_INIT;
	struct parse_result r;

	CU_ASSERT_EQUAL(sse_retry(&out, 3000), 0);
	CU_ASSERT_STRING_EQUAL(buf_str(&out), "retry: 3000\n\n");
	sse_parse(out.data, out.len, &r);
	CU_ASSERT_EQUAL(r.retry, 3000);
	CU_ASSERT_EQUAL(r.n, 0);
	buf_reset(&out);
	CU_ASSERT_EQUAL(sse_retry(&out, 0), 0);
	CU_ASSERT_STRING_EQUAL(buf_str(&out), "retry: 0\n\n");
	buf_release(&out);
}

static void test_comment(void)
{
	struct buf out = BUF_INIT;
	struct parse_result r;

	CU_ASSERT_EQUAL(sse_comment(&out, "keepalive"), 0);
	CU_ASSERT_STRING_EQUAL(buf_str(&out), ": keepalive\n\n");
	CU_ASSERT_EQUAL(sse_comment(&out, ""), 0);
	CU_ASSERT_STRING_EQUAL(buf_str(&out), ": keepalive\n\n: \n\n");
	sse_parse(out.data, out.len, &r);
	CU_ASSERT_EQUAL(r.n, 0);
	CU_ASSERT_EQUAL(sse_comment(&out, "a\nevent: evil"), -1);
	CU_ASSERT_EQUAL(sse_comment(&out, "a\rb"), -1);
	CU_ASSERT_EQUAL(sse_comment(&out, "\r\n"), -1);
	CU_ASSERT_STRING_EQUAL(buf_str(&out), ": keepalive\n\n: \n\n");
	buf_release(&out);
}

static CU_TestInfo tests[] = {
	{ "payloads round-trip through a WHATWG parser", test_round_trip_payloads },
	{ "exact frame bytes", test_exact_frame },
	{ "injection payload stays one event", test_injection_payload_is_one_event },
	{ "1000 mixed line breaks", test_many_lines },
	{ "sequence of retry, events and comments", test_sequence_of_events },
	{ "unsafe id or event refused, buffer unchanged", test_unsafe_id_or_event_refused },
	{ "name_ok", test_name_ok },
	{ "retry", test_retry },
	{ "comment", test_comment },
	CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suite[] = {
	{ .pName = "sse", .pTests = tests },
	CU_SUITE_INFO_NULL,
};

int register_sse_tests(void)
{
	return CU_register_suites(suite) == CUE_SUCCESS ? 0 : -1;
}
