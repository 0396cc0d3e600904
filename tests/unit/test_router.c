/* router: matching against a local table of routes. */
#include <CUnit/CUnit.h>
#include <string.h>

#include "../../core/router.h"
#include "suites.h"

#define V1 (1u << 1)
#define V2 (1u << 2)
#define M(m) HTTP_METHOD_BIT(HTTP_##m)

static void h_health(struct api_call *c) { (void)c; }
static void h_list(struct api_call *c) { (void)c; }
static void h_create(struct api_call *c) { (void)c; }
static void h_get(struct api_call *c) { (void)c; }
static void h_delete(struct api_call *c) { (void)c; }
static void h_event(struct api_call *c) { (void)c; }
static void h_legacy(struct api_call *c) { (void)c; }

static const struct route routes[] = {
	{ V1 | V2, M(GET), "/health", h_health },
	{ V2, M(GET), "/devices", h_list },
	{ V2, M(POST), "/devices", h_create },
	{ V2, M(GET), "/devices/{id}", h_get },
	{ V2, M(DELETE), "/devices/{id}", h_delete },
	{ V2, M(GET), "/devices/{id}/events/{event}", h_event },
	{ V1, M(GET) | M(PUT), "/legacy", h_legacy },
};

#define N_ROUTES (sizeof(routes) / sizeof(routes[0]))

static enum router_result match(int version, enum http_method method, const char *path,
				struct route_match *m)
{
	return router_match(routes, N_ROUTES, version, method, path, m);
}

/* 1 if param i of m is name=value. */
static int param_is(const struct route_match *m, size_t i, const char *name, const char *value)
{
	return i < m->nparams && m->params[i].name_len == strlen(name) &&
	       memcmp(m->params[i].name, name, m->params[i].name_len) == 0 &&
	       m->params[i].value_len == strlen(value) &&
	       memcmp(m->params[i].value, value, m->params[i].value_len) == 0;
}

static void test_match_static_route(void)
{
	struct route_match m;

	CU_ASSERT_EQUAL(match(2, HTTP_GET, "/health", &m), ROUTER_MATCH);
	CU_ASSERT_PTR_EQUAL(m.route, &routes[0]);
	CU_ASSERT(m.route != NULL && m.route->handler == h_health);
	CU_ASSERT_EQUAL(m.nparams, 0);
	CU_ASSERT_EQUAL(match(1, HTTP_GET, "/health", &m), ROUTER_MATCH);
	CU_ASSERT_PTR_EQUAL(m.route, &routes[0]);
}

static void test_head_allowed_where_get_is(void)
{
	struct route_match m;

	CU_ASSERT_EQUAL(match(2, HTTP_HEAD, "/health", &m), ROUTER_MATCH);
	CU_ASSERT_PTR_EQUAL(m.route, &routes[0]);
	CU_ASSERT_EQUAL(match(2, HTTP_HEAD, "/devices/a1", &m), ROUTER_MATCH);
	CU_ASSERT_PTR_EQUAL(m.route, &routes[3]);
}

static void test_same_path_several_methods(void)
{
	struct route_match m;

	CU_ASSERT_EQUAL(match(2, HTTP_GET, "/devices", &m), ROUTER_MATCH);
	CU_ASSERT_PTR_EQUAL(m.route, &routes[1]);
	CU_ASSERT_EQUAL(match(2, HTTP_POST, "/devices", &m), ROUTER_MATCH);
	CU_ASSERT_PTR_EQUAL(m.route, &routes[2]);
	CU_ASSERT_EQUAL(m.allow, M(GET) | M(HEAD) | M(POST) | M(OPTIONS));
	CU_ASSERT_EQUAL(match(2, HTTP_DELETE, "/devices/x", &m), ROUTER_MATCH);
	CU_ASSERT_PTR_EQUAL(m.route, &routes[4]);
	CU_ASSERT_EQUAL(m.allow, M(GET) | M(HEAD) | M(DELETE) | M(OPTIONS));
}

static void test_not_found(void)
{
	static const char *const paths[] = {
		"/nope", "/", "", "health", "/HEALTH", "/healthz", "/health/x", "/hea",
		"//health", "/devices/a/events", "/devices/a/events/b/c", "/devices/a/b",
	};
	struct route_match m;

	for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
		CU_ASSERT_EQUAL(match(2, HTTP_GET, paths[i], &m), ROUTER_NOT_FOUND);
		CU_ASSERT_PTR_NULL(m.route);
		CU_ASSERT_EQUAL(m.allow, 0);
	}
}

static void test_trailing_slash_not_matched(void)
{
	struct route_match m;

	CU_ASSERT_EQUAL(match(2, HTTP_GET, "/health/", &m), ROUTER_NOT_FOUND);
	CU_ASSERT_PTR_NULL(m.route);
	CU_ASSERT_EQUAL(match(2, HTTP_GET, "/devices/abc/", &m), ROUTER_NOT_FOUND);
	CU_ASSERT_EQUAL(match(2, HTTP_GET, "/devices/abc/events/e1/", &m), ROUTER_NOT_FOUND);
}

static void test_method_not_allowed(void)
{
	struct route_match m;

	CU_ASSERT_EQUAL(match(2, HTTP_POST, "/health", &m), ROUTER_METHOD_NOT_ALLOWED);
	CU_ASSERT_PTR_NULL(m.route);
	CU_ASSERT_EQUAL(m.allow, M(GET) | M(HEAD) | M(OPTIONS));
	CU_ASSERT_EQUAL(match(2, HTTP_OTHER, "/health", &m), ROUTER_METHOD_NOT_ALLOWED);
	CU_ASSERT_EQUAL(m.allow, M(GET) | M(HEAD) | M(OPTIONS));
	CU_ASSERT_EQUAL(match(2, HTTP_PUT, "/devices", &m), ROUTER_METHOD_NOT_ALLOWED);
	CU_ASSERT_EQUAL(m.allow, M(GET) | M(HEAD) | M(POST) | M(OPTIONS));
	CU_ASSERT_EQUAL(match(2, HTTP_PATCH, "/devices/abc", &m), ROUTER_METHOD_NOT_ALLOWED);
	CU_ASSERT_EQUAL(m.allow, M(GET) | M(HEAD) | M(DELETE) | M(OPTIONS));
	CU_ASSERT_EQUAL(match(1, HTTP_DELETE, "/legacy", &m), ROUTER_METHOD_NOT_ALLOWED);
	CU_ASSERT_EQUAL(m.allow, M(GET) | M(HEAD) | M(PUT) | M(OPTIONS));
}

static void test_options_lists_allowed_methods(void)
{
	struct route_match m;

	CU_ASSERT_EQUAL(match(2, HTTP_OPTIONS, "/devices", &m), ROUTER_MATCH);
	CU_ASSERT_EQUAL(m.allow, M(GET) | M(HEAD) | M(POST) | M(OPTIONS));
}

static void test_version_bits_respected(void)
{
	struct route_match m;

	CU_ASSERT_EQUAL(match(2, HTTP_GET, "/legacy", &m), ROUTER_NOT_FOUND);
	CU_ASSERT_EQUAL(match(1, HTTP_GET, "/legacy", &m), ROUTER_MATCH);
	CU_ASSERT_PTR_EQUAL(m.route, &routes[6]);
	CU_ASSERT_EQUAL(match(1, HTTP_PUT, "/legacy", &m), ROUTER_MATCH);
	CU_ASSERT_EQUAL(match(1, HTTP_GET, "/devices", &m), ROUTER_NOT_FOUND);
	CU_ASSERT_EQUAL(match(1, HTTP_GET, "/devices/abc", &m), ROUTER_NOT_FOUND);
	CU_ASSERT_EQUAL(match(1, HTTP_GET, "/devices/a.b", &m), ROUTER_NOT_FOUND);
	CU_ASSERT_EQUAL(match(3, HTTP_GET, "/health", &m), ROUTER_NOT_FOUND);
	CU_ASSERT_EQUAL(match(0, HTTP_GET, "/health", &m), ROUTER_NOT_FOUND);
	CU_ASSERT_EQUAL(match(-1, HTTP_GET, "/health", &m), ROUTER_NOT_FOUND);
	CU_ASSERT_EQUAL(match(32, HTTP_GET, "/health", &m), ROUTER_NOT_FOUND);
	CU_ASSERT_EQUAL(match(1000, HTTP_GET, "/health", &m), ROUTER_NOT_FOUND);
}

static void test_params_extracted(void)
{
	struct route_match m;
	const char *path = "/devices/dev-1_A/events/ev9";

	CU_ASSERT_EQUAL_FATAL(match(2, HTTP_GET, path, &m), ROUTER_MATCH);
	CU_ASSERT_PTR_EQUAL(m.route, &routes[5]);
	CU_ASSERT_EQUAL_FATAL(m.nparams, 2);
	CU_ASSERT(param_is(&m, 0, "id", "dev-1_A"));
	CU_ASSERT(param_is(&m, 1, "event", "ev9"));
	/* values point into the path */
	CU_ASSERT_PTR_EQUAL(m.params[0].value, path + strlen("/devices/"));
	CU_ASSERT_EQUAL_FATAL(match(2, HTTP_GET, "/devices/42", &m), ROUTER_MATCH);
	CU_ASSERT_EQUAL(m.nparams, 1);
	CU_ASSERT(param_is(&m, 0, "id", "42"));
}

static void test_invalid_ids(void)
{
	char long_id[80], max_id[80];
	struct route_match m;
	static const char *const bad[] = {
		"/devices/a%20b", "/devices/a.b", "/devices/..", "/devices/a+b",
		"/devices/%2e", "/devices/\xc3\xa9", "/devices/a:b", "/devices/a~b",
		"/devices//events/e1", "/devices/ok/events/bad.id",
	};

	strcpy(long_id, "/devices/");
	memset(long_id + 9, 'a', 65);
	long_id[9 + 65] = '\0';
	strcpy(max_id, "/devices/");
	memset(max_id + 9, 'a', 64);
	max_id[9 + 64] = '\0';
	CU_ASSERT_EQUAL(match(2, HTTP_GET, long_id, &m), ROUTER_INVALID_ID);
	CU_ASSERT_PTR_NULL(m.route);
	CU_ASSERT_EQUAL(match(2, HTTP_GET, max_id, &m), ROUTER_MATCH);
	CU_ASSERT(m.nparams == 1 && m.params[0].value_len == 64);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		CU_ASSERT_EQUAL(match(2, HTTP_GET, bad[i], &m), ROUTER_INVALID_ID);
		CU_ASSERT_PTR_NULL(m.route);
	}
	/* whatever the method */
	CU_ASSERT_EQUAL(match(2, HTTP_DELETE, "/devices/a.b", &m), ROUTER_INVALID_ID);
}

static void test_allow_header_text(void)
{
	struct buf out = BUF_INIT;

	router_allow_header(M(GET) | M(HEAD) | M(OPTIONS), &out);
	CU_ASSERT_STRING_EQUAL(buf_str(&out), "GET, HEAD, OPTIONS");
	buf_reset(&out);
	router_allow_header(M(OPTIONS) | M(POST) | M(GET) | M(HEAD), &out);
	CU_ASSERT_STRING_EQUAL(buf_str(&out), "GET, HEAD, POST, OPTIONS");
	buf_reset(&out);
	router_allow_header(M(GET) | M(HEAD) | M(POST) | M(PUT) | M(PATCH) | M(DELETE) |
				    M(OPTIONS) | M(OTHER), &out);
	CU_ASSERT_STRING_EQUAL(buf_str(&out), "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS");
	buf_reset(&out);
	router_allow_header(M(DELETE), &out);
	CU_ASSERT_STRING_EQUAL(buf_str(&out), "DELETE");
	buf_reset(&out);
	router_allow_header(0, &out);
	CU_ASSERT_STRING_EQUAL(buf_str(&out), "");
	buf_release(&out);
}

static CU_TestInfo tests[] = {
	{ "match a static route", test_match_static_route },
	{ "HEAD is allowed where GET is", test_head_allowed_where_get_is },
	{ "same path, several methods", test_same_path_several_methods },
	{ "not found", test_not_found },
	{ "trailing slash is not matched", test_trailing_slash_not_matched },
	{ "405 with the allow mask", test_method_not_allowed },
	{ "OPTIONS sees the allow mask", test_options_lists_allowed_methods },
	{ "version bits respected", test_version_bits_respected },
	{ "{id} params extracted", test_params_extracted },
	{ "invalid ids", test_invalid_ids },
	{ "Allow header text", test_allow_header_text },
	CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suite[] = {
	{ .pName = "router", .pTests = tests },
	CU_SUITE_INFO_NULL,
};

int register_router_tests(void)
{
	return CU_register_suites(suite) == CUE_SUCCESS ? 0 : -1;
}
