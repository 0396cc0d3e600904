/* http: the request model from CGI parameters and the response written
 * through a sink. */
#include <CUnit/CUnit.h>
#include <string.h>

#include "../../core/http.h"
#include "../../core/reqid.h"
#include "suites.h"

struct param {
	const char *name, *value;
};

/* A param function over a { NULL, NULL }-terminated table. */
static const char *table_param(void *ctx, const char *name)
{
	for (const struct param *p = ctx; p->name != NULL; p++)
		if (strcmp(p->name, name) == 0)
			return p->value;
	return NULL;
}

/* A sink that appends to a buffer and counts calls, failing on demand. */
struct test_sink {
	struct buf out;
	int writes, flushes;
	int fail_write, fail_flush;
};

static int sink_write(void *ctx, const char *p, size_t n)
{
	struct test_sink *s = ctx;

	s->writes++;
	if (s->fail_write)
		return -1;
	return buf_append(&s->out, p, n);
}

static int sink_flush(void *ctx)
{
	struct test_sink *s = ctx;

	s->flushes++;
	return s->fail_flush ? -1 : 0;
}

static int is_generated_id(const char *s)
{
	if (strlen(s) != REQID_GENERATED_LEN)
		return 0;
	for (; *s; s++)
		if (!((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'f')))
			return 0;
	return 1;
}

/* Initialises req from table; asserts success. */
static int init_req(struct http_request *req, const struct param *table)
{
	int rc = http_request_init(req, table_param, (void *)table);

	CU_ASSERT_EQUAL(rc, 0);
	return rc;
}

static void test_request_uri_with_query(void)
{
	const struct param t[] = {
		{ "REQUEST_METHOD", "GET" },
		{ "REQUEST_URI", "/api/v2/health?x=1&y=a%20b" },
		{ "SCRIPT_NAME", "/ignored" },
		{ NULL, NULL },
	};
	struct http_request req;

	if (init_req(&req, t) != 0)
		return;
	CU_ASSERT_STRING_EQUAL(req.path, "/api/v2/health");
	CU_ASSERT_STRING_EQUAL(req.query, "x=1&y=a%20b");
	CU_ASSERT_EQUAL(req.method, HTTP_GET);
	CU_ASSERT_STRING_EQUAL(req.method_name, "GET");
	CU_ASSERT_EQUAL(req.content_length, -1);
	CU_ASSERT_PTR_NULL(req.route);
	CU_ASSERT_EQUAL(req.api_version, 0);
	http_request_release(&req);
	CU_ASSERT_PTR_NULL(req.path);
}

static void test_request_uri_without_query(void)
{
	const struct param t[] = {
		{ "REQUEST_METHOD", "DELETE" },
		{ "REQUEST_URI", "/api/v1/devices/42" },
		{ NULL, NULL },
	};
	const struct param t2[] = {
		{ "REQUEST_URI", "/a?" },
		{ NULL, NULL },
	};
	struct http_request req;

	if (init_req(&req, t) == 0) {
		CU_ASSERT_STRING_EQUAL(req.path, "/api/v1/devices/42");
		CU_ASSERT_PTR_NOT_NULL(req.query);
		CU_ASSERT_STRING_EQUAL(req.query, "");
		CU_ASSERT_EQUAL(req.method, HTTP_DELETE);
		http_request_release(&req);
	}
	if (init_req(&req, t2) == 0) {
		CU_ASSERT_STRING_EQUAL(req.path, "/a");
		CU_ASSERT_STRING_EQUAL(req.query, "");
		/* no method at all */
		CU_ASSERT_EQUAL(req.method, HTTP_OTHER);
		CU_ASSERT_STRING_EQUAL(req.method_name, "");
		http_request_release(&req);
	}
}

static void test_request_fallback_script_name_path_info(void)
{
	const struct param t[] = {
		{ "REQUEST_METHOD", "POST" },
		{ "SCRIPT_NAME", "/api" },
		{ "PATH_INFO", "/v2/devices" },
		{ "QUERY_STRING", "limit=5" },
		{ NULL, NULL },
	};
	const struct param t2[] = {
		{ "REQUEST_URI", "" },
		{ "SCRIPT_NAME", "/api/v2/health" },
		{ "QUERY_STRING", "" },
		{ NULL, NULL },
	};
	const struct param t3[] = { { NULL, NULL } };
	struct http_request req;

	if (init_req(&req, t) == 0) {
		CU_ASSERT_STRING_EQUAL(req.path, "/api/v2/devices");
		CU_ASSERT_STRING_EQUAL(req.query, "limit=5");
		CU_ASSERT_EQUAL(req.method, HTTP_POST);
		http_request_release(&req);
	}
	if (init_req(&req, t2) == 0) {
		CU_ASSERT_STRING_EQUAL(req.path, "/api/v2/health");
		CU_ASSERT_STRING_EQUAL(req.query, "");
		http_request_release(&req);
	}
	if (init_req(&req, t3) == 0) {
		CU_ASSERT_STRING_EQUAL(req.path, "/");
		CU_ASSERT_STRING_EQUAL(req.query, "");
		CU_ASSERT_EQUAL(req.content_length, -1);
		CU_ASSERT(is_generated_id(req.request_id));
		http_request_release(&req);
	}
}

static void test_request_content_length(void)
{
	static const struct {
		const char *text;
		long long want;
	} cases[] = {
		{ "0", 0 }, { "42", 42 }, { "1048576", 1048576 },
		{ "9223372036854775807", 9223372036854775807LL },
		{ NULL, -1 }, { "", -1 }, { "abc", -1 }, { "12abc", -1 }, { "-5", -1 },
		{ "+5", -1 }, { " 5", -1 }, { "5 ", -1 }, { "0x10", -1 }, { "1e3", -1 },
		{ "99999999999999999999999", -1 },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct param t[] = {
			{ "REQUEST_URI", "/" },
			{ cases[i].text ? "CONTENT_LENGTH" : "X_UNUSED", cases[i].text },
			{ NULL, NULL },
		};
		struct http_request req;

		if (init_req(&req, t) != 0)
			continue;
		CU_ASSERT_EQUAL(req.content_length, cases[i].want);
		http_request_release(&req);
	}
}

static void test_request_id_sane_is_kept(void)
{
	static const char *const ids[] = {
		"abc", "req-123.abc:X_9",
		"0123456789012345678901234567890123456789012345678901234567890123",
	};

	for (size_t i = 0; i < sizeof(ids) / sizeof(ids[0]); i++) {
		const struct param t[] = {
			{ "REQUEST_URI", "/" },
			{ "HTTP_X_REQUEST_ID", ids[i] },
			{ NULL, NULL },
		};
		struct http_request req;

		if (init_req(&req, t) != 0)
			continue;
		CU_ASSERT_STRING_EQUAL(req.request_id, ids[i]);
		http_request_release(&req);
	}
}

static void test_request_id_insane_is_replaced(void)
{
	static const char *const ids[] = {
		"01234567890123456789012345678901234567890123456789012345678901234",
		"has space", "a\r\nSet-Cookie: x=1", "", "a\"b", "\xc3\xa9",
	};
	char first[HTTP_REQUEST_ID_MAX + 1] = "";

	for (size_t i = 0; i < sizeof(ids) / sizeof(ids[0]); i++) {
		const struct param t[] = {
			{ "REQUEST_URI", "/" },
			{ "HTTP_X_REQUEST_ID", ids[i] },
			{ NULL, NULL },
		};
		struct http_request req;

		if (init_req(&req, t) != 0)
			continue;
		CU_ASSERT(is_generated_id(req.request_id));
		CU_ASSERT_STRING_NOT_EQUAL(req.request_id, ids[i]);
		CU_ASSERT_STRING_NOT_EQUAL(req.request_id, first);
		memcpy(first, req.request_id, sizeof(first));
		http_request_release(&req);
	}
}

static void test_request_param_lookup(void)
{
	const struct param t[] = {
		{ "REQUEST_URI", "/" },
		{ "HTTP_API_VERSION", "1" },
		{ NULL, NULL },
	};
	struct http_request req;

	if (init_req(&req, t) != 0)
		return;
	CU_ASSERT_PTR_NOT_NULL(http_request_param(&req, "HTTP_API_VERSION"));
	if (http_request_param(&req, "HTTP_API_VERSION") != NULL)
		CU_ASSERT_STRING_EQUAL(http_request_param(&req, "HTTP_API_VERSION"), "1");
	CU_ASSERT_PTR_NULL(http_request_param(&req, "HTTP_AUTHORIZATION"));
	http_request_release(&req);
}

static void test_method_parse_and_name(void)
{
	static const struct {
		const char *name;
		enum http_method m;
	} known[] = {
		{ "GET", HTTP_GET }, { "HEAD", HTTP_HEAD }, { "POST", HTTP_POST },
		{ "PUT", HTTP_PUT }, { "PATCH", HTTP_PATCH }, { "DELETE", HTTP_DELETE },
		{ "OPTIONS", HTTP_OPTIONS },
	};
	static const char *const other[] = {
		"get", "Get", "", "GETX", "GE", "TRACE", "CONNECT", " GET", "GET ",
	};

	for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++) {
		CU_ASSERT_EQUAL(http_method_parse(known[i].name), known[i].m);
		CU_ASSERT_STRING_EQUAL(http_method_name(known[i].m), known[i].name);
	}
	for (size_t i = 0; i < sizeof(other) / sizeof(other[0]); i++)
		CU_ASSERT_EQUAL(http_method_parse(other[i]), HTTP_OTHER);
	CU_ASSERT_EQUAL(http_method_parse(NULL), HTTP_OTHER);
	CU_ASSERT_STRING_EQUAL(http_method_name(HTTP_OTHER), "OTHER");
	CU_ASSERT_PTR_NOT_NULL(http_method_name((enum http_method)99));
}

static void test_response_header_validation(void)
{
	static const char *const bad_names[] = {
		"", "X Test", "X:Test", "X-Test:", "X\r", "X\n", "X(1)", "X/Y", "\xc3\xa9",
		"X\"", "X@", "X[", "X{",
	};
	static const char *const bad_values[] = {
		"a\rb", "a\nb", "a\r\nSet-Cookie: x=1", "\n", "\r", "trailing\r\n",
	};
	struct http_response resp;

	http_response_init(&resp, NULL);
	CU_ASSERT_EQUAL(resp.status, 200);
	CU_ASSERT_EQUAL(http_response_header(&resp, "X-Test", "a b; c=\"d\""), 0);
	CU_ASSERT_EQUAL(http_response_header(&resp, "x!#$%&'*+-.^_`|~9", "v"), 0);
	CU_ASSERT_EQUAL(http_response_header(&resp, "X-Empty", ""), 0);
	CU_ASSERT_STRING_EQUAL(buf_str(&resp.headers),
			       "X-Test: a b; c=\"d\"\r\nx!#$%&'*+-.^_`|~9: v\r\nX-Empty: \r\n");
	for (size_t i = 0; i < sizeof(bad_names) / sizeof(bad_names[0]); i++)
		CU_ASSERT_EQUAL(http_response_header(&resp, bad_names[i], "v"), -1);
	for (size_t i = 0; i < sizeof(bad_values) / sizeof(bad_values[0]); i++)
		CU_ASSERT_EQUAL(http_response_header(&resp, "X-Bad", bad_values[i]), -1);
	/* nothing was added by the refused calls */
	CU_ASSERT_STRING_EQUAL(buf_str(&resp.headers),
			       "X-Test: a b; c=\"d\"\r\nx!#$%&'*+-.^_`|~9: v\r\nX-Empty: \r\n");
	http_response_release(&resp);
}

static void test_response_send_200(void)
{
	struct test_sink s = { BUF_INIT, 0, 0, 0, 0 };
	const struct http_sink sink = { sink_write, sink_flush, &s, -1, NULL };
	struct http_response resp;

	http_response_init(&resp, &sink);
	CU_ASSERT_EQUAL(http_response_header(&resp, "X-Test", "yes"), 0);
	buf_puts(&resp.body, "hello");
	CU_ASSERT_EQUAL(http_response_send(&resp), 0);
	CU_ASSERT_STRING_EQUAL(buf_str(&s.out),
			       "Status: 200 OK\r\nContent-Length: 5\r\nX-Test: yes\r\n\r\nhello");
	CU_ASSERT_EQUAL(s.writes, 1); /* head and body in one write */
	CU_ASSERT_EQUAL(s.flushes, 0); /* the server's finish sends it with the end record */
	CU_ASSERT_EQUAL(resp.sent, 1);
	CU_ASSERT_EQUAL(resp.failed, 0);
	CU_ASSERT_EQUAL(resp.bytes_sent, 5);
	http_response_release(&resp);
	buf_release(&s.out);
}

static void test_response_json(void)
{
	struct test_sink s = { BUF_INIT, 0, 0, 0, 0 };
	const struct http_sink sink = { sink_write, sink_flush, &s, -1, NULL };
	struct http_response resp;
	static const char body[] = "{\"status\":\"ok\"}";

	http_response_init(&resp, &sink);
	buf_puts(&resp.body, "stale");
	CU_ASSERT_EQUAL(http_response_json(&resp, 201, body), 0);
	CU_ASSERT_EQUAL(resp.status, 201);
	CU_ASSERT_STRING_EQUAL(buf_str(&resp.body), body);
	CU_ASSERT_EQUAL(http_response_send(&resp), 0);
	CU_ASSERT_STRING_EQUAL(buf_str(&s.out),
			       "Status: 201 Created\r\nContent-Length: 15\r\n"
			       "Content-Type: application/json\r\n\r\n{\"status\":\"ok\"}");
	http_response_release(&resp);
	buf_release(&s.out);
}

static void test_response_head_keeps_length_without_body(void)
{
	struct test_sink s = { BUF_INIT, 0, 0, 0, 0 };
	const struct http_sink sink = { sink_write, sink_flush, &s, -1, NULL };
	struct http_response resp;

	http_response_init(&resp, &sink);
	resp.head_only = 1;
	buf_puts(&resp.body, "hello");
	CU_ASSERT_EQUAL(http_response_send(&resp), 0);
	CU_ASSERT_STRING_EQUAL(buf_str(&s.out), "Status: 200 OK\r\nContent-Length: 5\r\n\r\n");
	CU_ASSERT_EQUAL(resp.bytes_sent, 0);
	http_response_release(&resp);
	buf_release(&s.out);
}

static void test_response_204_and_304_have_no_length_or_body(void)
{
	static const int codes[] = { 204, 304 };
	static const char *const want[] = {
		"Status: 204 No Content\r\nAllow: GET\r\n\r\n",
		"Status: 304 Not Modified\r\nAllow: GET\r\n\r\n",
	};

	for (size_t i = 0; i < 2; i++) {
		struct test_sink s = { BUF_INIT, 0, 0, 0, 0 };
		const struct http_sink sink = { sink_write, sink_flush, &s, -1, NULL };
		struct http_response resp;

		http_response_init(&resp, &sink);
		resp.status = codes[i];
		http_response_header(&resp, "Allow", "GET");
		buf_puts(&resp.body, "must not be sent");
		CU_ASSERT_EQUAL(http_response_send(&resp), 0);
		CU_ASSERT_STRING_EQUAL(buf_str(&s.out), want[i]);
		CU_ASSERT_PTR_NULL(strstr(buf_str(&s.out), "Content-Length"));
		CU_ASSERT_EQUAL(resp.bytes_sent, 0);
		http_response_release(&resp);
		buf_release(&s.out);
	}
}

static void test_response_head_function(void)
{
	struct http_response resp;
	struct buf out = BUF_INIT;

	http_response_init(&resp, NULL);
	resp.status = 404;
	http_response_header(&resp, "A", "b");
	CU_ASSERT_EQUAL(http_response_head(&resp, 0, &out), 0);
	CU_ASSERT_STRING_EQUAL(buf_str(&out), "Status: 404 Not Found\r\nContent-Length: 0\r\nA: b\r\n\r\n");
	buf_reset(&out);
	CU_ASSERT_EQUAL(http_response_head(&resp, -1, &out), 0);
	CU_ASSERT_STRING_EQUAL(buf_str(&out), "Status: 404 Not Found\r\nA: b\r\n\r\n");
	buf_release(&out);
	http_response_release(&resp);
}

static void test_response_failing_sink(void)
{
	struct test_sink s = { BUF_INIT, 0, 0, 1, 0 };
	struct test_sink f = { BUF_INIT, 0, 0, 0, 1 };
	const struct http_sink sink = { sink_write, sink_flush, &s, -1, NULL };
	const struct http_sink fsink = { sink_write, sink_flush, &f, -1, NULL };
	struct http_response resp;

	http_response_init(&resp, &sink);
	buf_puts(&resp.body, "x");
	CU_ASSERT_EQUAL(http_response_send(&resp), -1);
	CU_ASSERT_EQUAL(resp.failed, 1);
	CU_ASSERT_EQUAL(resp.bytes_sent, 0);
	/* once failed, later writes fail without touching the sink */
	s.writes = 0;
	CU_ASSERT_EQUAL(http_stream_write(&resp, "y", 1), -1);
	CU_ASSERT_EQUAL(s.writes, 0);
	http_response_release(&resp);

	http_response_init(&resp, &fsink);
	CU_ASSERT_EQUAL(http_stream_begin(&resp), -1);
	CU_ASSERT_EQUAL(resp.failed, 1);
	http_response_release(&resp);
	buf_release(&f.out);

	http_response_init(&resp, NULL);
	CU_ASSERT_EQUAL(http_response_send(&resp), -1);
	CU_ASSERT_EQUAL(resp.failed, 1);
	http_response_release(&resp);
}

static void test_stream_begin_and_writes(void)
{
	struct test_sink s = { BUF_INIT, 0, 0, 0, 0 };
	const struct http_sink sink = { sink_write, sink_flush, &s, -1, NULL };
	struct http_response resp;
	int flushes;

	http_response_init(&resp, &sink);
	http_response_header(&resp, "Content-Type", "text/event-stream");
	CU_ASSERT_EQUAL(http_stream_begin(&resp), 0);
	CU_ASSERT_EQUAL(resp.streaming, 1);
	CU_ASSERT_EQUAL(resp.sent, 1);
	CU_ASSERT_STRING_EQUAL(buf_str(&s.out),
			       "Status: 200 OK\r\nContent-Type: text/event-stream\r\n\r\n");
	CU_ASSERT(s.flushes >= 1);
	flushes = s.flushes;
	buf_reset(&s.out);
	CU_ASSERT_EQUAL(http_stream_write(&resp, "data: a\n\n", 9), 0);
	CU_ASSERT(s.flushes > flushes); /* each write reaches the client at once */
	flushes = s.flushes;
	CU_ASSERT_EQUAL(http_stream_write(&resp, "data: bc\n\n", 10), 0);
	CU_ASSERT(s.flushes > flushes);
	CU_ASSERT_STRING_EQUAL(buf_str(&s.out), "data: a\n\ndata: bc\n\n");
	CU_ASSERT_EQUAL(resp.bytes_sent, 19);
	CU_ASSERT_EQUAL(resp.failed, 0);
	/* the client goes away */
	s.fail_write = 1;
	CU_ASSERT_EQUAL(http_stream_write(&resp, "data: d\n\n", 9), -1);
	CU_ASSERT_EQUAL(resp.failed, 1);
	CU_ASSERT_EQUAL(resp.bytes_sent, 19);
	http_response_release(&resp);
	buf_release(&s.out);
}

static void test_peer_fd(void)
{
	struct test_sink s = { BUF_INIT, 0, 0, 0, 0 };
	const struct http_sink sink = { sink_write, sink_flush, &s, 7, NULL };
	struct http_response resp;

	http_response_init(&resp, &sink);
	CU_ASSERT_EQUAL(http_response_peer_fd(&resp), 7);
	http_response_release(&resp);
	http_response_init(&resp, NULL);
	CU_ASSERT_EQUAL(http_response_peer_fd(&resp), -1);
	http_response_release(&resp);
}

static void test_reason_phrases(void)
{
	static const int codes[] = { 200, 201, 204, 304, 400, 401, 403, 404, 405, 409,
				     410, 413, 415, 429, 500, 503, 299, 999, -1 };

	CU_ASSERT_STRING_EQUAL(http_reason(200), "OK");
	CU_ASSERT_STRING_EQUAL(http_reason(404), "Not Found");
	CU_ASSERT_STRING_EQUAL(http_reason(405), "Method Not Allowed");
	CU_ASSERT_STRING_EQUAL(http_reason(410), "Gone");
	CU_ASSERT_STRING_EQUAL(http_reason(503), "Service Unavailable");
	for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++) {
		const char *r = http_reason(codes[i]);

		CU_ASSERT_PTR_NOT_NULL_FATAL(r);
		CU_ASSERT(strlen(r) > 0);
		CU_ASSERT_PTR_NULL(strpbrk(r, "\r\n"));
	}
}

static CU_TestInfo tests[] = {
	{ "request: REQUEST_URI with query", test_request_uri_with_query },
	{ "request: REQUEST_URI without query", test_request_uri_without_query },
	{ "request: SCRIPT_NAME + PATH_INFO + QUERY_STRING fallback", test_request_fallback_script_name_path_info },
	{ "request: CONTENT_LENGTH parsing", test_request_content_length },
	{ "request: sane X-Request-Id is kept", test_request_id_sane_is_kept },
	{ "request: insane X-Request-Id is replaced", test_request_id_insane_is_replaced },
	{ "request: param lookup", test_request_param_lookup },
	{ "method parse and name", test_method_parse_and_name },
	{ "response: header names and values validated", test_response_header_validation },
	{ "response: send 200", test_response_send_200 },
	{ "response: json body", test_response_json },
	{ "response: HEAD keeps Content-Length without body", test_response_head_keeps_length_without_body },
	{ "response: 204/304 without length or body", test_response_204_and_304_have_no_length_or_body },
	{ "response: head with and without length", test_response_head_function },
	{ "response: failing sink sets failed", test_response_failing_sink },
	{ "stream: begin and writes", test_stream_begin_and_writes },
	{ "peer fd from the sink", test_peer_fd },
	{ "reason phrases", test_reason_phrases },
	CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suite[] = {
	{ .pName = "http", .pTests = tests },
	CU_SUITE_INFO_NULL,
};

int register_http_tests(void)
{
	return CU_register_suites(suite) == CUE_SUCCESS ? 0 : -1;
}
