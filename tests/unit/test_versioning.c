/* versioning: which version a request addresses and the headers of v1. */
#include <CUnit/CUnit.h>
#include <string.h>

#include "../../versioning/versioning.h"
#include "suites.h"

#define DEPRECATION 1788220800 /* 2026-09-01T00:00:00Z */
#define SUNSET 1814313600      /* 2027-06-30T00:00:00Z */

static const struct version_policy policy = {
	DEPRECATION, SUNSET, "/api/v2/", "https://fcgi-sse.dev/docs/api/v1-deprecation",
};

/* Resolves and checks an OK result. */
static void expect_ok(const char *path, const char *header, int version,
		      const char *rest, int from_path)
{
	struct version_resolution r;

	CU_ASSERT_EQUAL_FATAL(versioning_resolve(path, header, &r), VERSION_OK);
	CU_ASSERT_EQUAL(r.version, version);
	CU_ASSERT_PTR_NOT_NULL_FATAL(r.rest);
	CU_ASSERT_STRING_EQUAL(r.rest, rest);
	CU_ASSERT_EQUAL(r.from_path, from_path);
}

static void test_versioned_paths(void)
{
	expect_ok("/api/v2/x", NULL, 2, "/x", 1);
	expect_ok("/api/v1/x", NULL, 1, "/x", 1);
	expect_ok("/api/v1/devices/42/events", NULL, 1, "/devices/42/events", 1);
	expect_ok("/api/v2", NULL, 2, "/", 1);
	expect_ok("/api/v2/", NULL, 2, "/", 1);
}

static void test_unversioned_paths(void)
{
	expect_ok("/api/x", NULL, 2, "/x", 0);
	expect_ok("/api/x", "1", 1, "/x", 0);
	expect_ok("/api/x", "2", 2, "/x", 0);
	expect_ok("/api", NULL, 2, "/", 0);
	expect_ok("/api/", NULL, 2, "/", 0);
	expect_ok("/api/vx/y", NULL, 2, "/vx/y", 0);
	expect_ok("/api/v/y", NULL, 2, "/v/y", 0);
	expect_ok("/api/v1x/y", NULL, 2, "/v1x/y", 0);
	expect_ok("/api/version", NULL, 2, "/version", 0);
}

static void test_rest_points_into_path(void)
{
	const char *path = "/api/v1/health";
	struct version_resolution r;

	CU_ASSERT_EQUAL_FATAL(versioning_resolve(path, NULL, &r), VERSION_OK);
	CU_ASSERT_PTR_EQUAL(r.rest, path + 7);
}

static void test_path_version_wins_over_header(void)
{
	expect_ok("/api/v1/x", "2", 1, "/x", 1);
	expect_ok("/api/v2/x", "1", 2, "/x", 1);
	expect_ok("/api/v2/x", "9", 2, "/x", 1);
	expect_ok("/api/v2/x", "abc", 2, "/x", 1);
}

static void test_unknown_versions(void)
{
	static const struct {
		const char *path, *header;
	} cases[] = {
		{ "/api/x", "9" }, { "/api/x", "abc" }, { "/api/x", "" }, { "/api/x", "0" },
		{ "/api/x", "01" }, { "/api/x", " 1" }, { "/api/x", "1 " }, { "/api/x", "v1" },
		{ "/api/x", "3" }, { "/api/x", "1.0" }, { "/api/v9/x", NULL }, { "/api/v0/x", NULL },
		{ "/api/v01/x", NULL }, { "/api/v02/x", NULL }, { "/api/v3/x", NULL },
		{ "/api/v10/x", NULL }, { "/api/v99999999999/x", NULL }, { "/api/v9", NULL },
		{ "/api/v9/x", "1" },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct version_resolution r;

		CU_ASSERT_EQUAL(versioning_resolve(cases[i].path, cases[i].header, &r),
				VERSION_UNKNOWN);
	}
}

static void test_not_api(void)
{
	static const char *const paths[] = {
		"/apix", "/apix/v1/x", "/", "", "/ap", "/API/v1/x", "api/v1/x", "/v1/api",
		"/health",
	};

	for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
		struct version_resolution r;

		CU_ASSERT_EQUAL(versioning_resolve(paths[i], "1", &r), VERSION_NOT_API);
	}
}

/* The value of header name in resp, copied into out (or "" when absent). */
static int header_value(const struct http_response *resp, const char *name,
			char *out, size_t n)
{
	const char *h = buf_str(&resp->headers);
	size_t len = strlen(name);

	out[0] = '\0';
	while (*h) {
		const char *eol = strstr(h, "\r\n");

		if (eol == NULL)
			return 0;
		if (strncmp(h, name, len) == 0 && h[len] == ':' && h[len + 1] == ' ') {
			size_t vlen = (size_t)(eol - (h + len + 2));

			if (vlen >= n)
				vlen = n - 1;
			memcpy(out, h + len + 2, vlen);
			out[vlen] = '\0';
			return 1;
		}
		h = eol + 2;
	}
	return 0;
}

static void test_apply_v2(void)
{
	struct http_response resp;
	char v[256];

	http_response_init(&resp, NULL);
	CU_ASSERT_EQUAL(versioning_apply(&policy, 2, SUNSET + 1000, &resp), 0);
	CU_ASSERT(header_value(&resp, "API-Version", v, sizeof(v)));
	CU_ASSERT_STRING_EQUAL(v, "2");
	CU_ASSERT_FALSE(header_value(&resp, "Deprecation", v, sizeof(v)));
	CU_ASSERT_FALSE(header_value(&resp, "Sunset", v, sizeof(v)));
	CU_ASSERT_FALSE(header_value(&resp, "Link", v, sizeof(v)));
	http_response_release(&resp);
}

static void test_apply_v1_headers(void)
{
	struct http_response resp;
	char v[512];

	http_response_init(&resp, NULL);
	CU_ASSERT_EQUAL(versioning_apply(&policy, 1, SUNSET - 1, &resp), 0);
	CU_ASSERT(header_value(&resp, "API-Version", v, sizeof(v)));
	CU_ASSERT_STRING_EQUAL(v, "1");
	CU_ASSERT(header_value(&resp, "Deprecation", v, sizeof(v)));
	CU_ASSERT_STRING_EQUAL(v, "@1788220800");
	CU_ASSERT(header_value(&resp, "Sunset", v, sizeof(v)));
	CU_ASSERT_STRING_EQUAL(v, "Wed, 30 Jun 2027 00:00:00 GMT");
	CU_ASSERT(header_value(&resp, "Link", v, sizeof(v)));
	CU_ASSERT_STRING_EQUAL(v, "</api/v2/>; rel=\"successor-version\", "
				  "<https://fcgi-sse.dev/docs/api/v1-deprecation>; rel=\"deprecation\"");
	http_response_release(&resp);
}

static void test_apply_sunset_boundary(void)
{
	static const struct {
		long long now;
		int want;
	} cases[] = {
		{ 0, 0 }, { DEPRECATION, 0 }, { SUNSET - 1, 0 }, { SUNSET, 1 },
		{ SUNSET + 1, 1 }, { SUNSET + 86400LL * 365 * 10, 1 },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct http_response resp;
		char v[64];

		http_response_init(&resp, NULL);
		CU_ASSERT_EQUAL(versioning_apply(&policy, 1, (time_t)cases[i].now, &resp),
				cases[i].want);
		/* the headers are there either way, so the 410 carries them */
		CU_ASSERT(header_value(&resp, "Sunset", v, sizeof(v)));
		http_response_release(&resp);
	}
}

static void test_apply_v1_long_urls_not_truncated(void)
{
	/* Both URLs may be 512 characters (config: api.v1_*_url). */
	char succ[513], dep[513], v[2048];
	struct version_policy p = policy;
	struct http_response resp;

	memcpy(succ, "https://example.com/", 20);
	memset(succ + 20, 's', 512 - 20);
	succ[512] = '\0';
	memcpy(dep, "https://example.com/", 20);
	memset(dep + 20, 'd', 512 - 20);
	dep[512] = '\0';
	p.v1_successor_url = succ;
	p.v1_deprecation_url = dep;
	http_response_init(&resp, NULL);
	CU_ASSERT_EQUAL(versioning_apply(&p, 1, SUNSET - 1, &resp), 0);
	CU_ASSERT(header_value(&resp, "Link", v, sizeof(v)));
	CU_ASSERT_PTR_NOT_NULL(strstr(v, succ));
	CU_ASSERT_PTR_NOT_NULL(strstr(v, dep));
	CU_ASSERT(strlen(v) > strlen("rel=\"deprecation\"") &&
		  strcmp(v + strlen(v) - strlen("rel=\"deprecation\""), "rel=\"deprecation\"") == 0);
	http_response_release(&resp);
}

static CU_TestInfo tests[] = {
	{ "versioned paths", test_versioned_paths },
	{ "unversioned paths default to 2 or the header", test_unversioned_paths },
	{ "rest points into the path", test_rest_points_into_path },
	{ "path version wins over the header", test_path_version_wins_over_header },
	{ "unknown versions", test_unknown_versions },
	{ "not under /api", test_not_api },
	{ "apply v2: API-Version only", test_apply_v2 },
	{ "apply v1: Deprecation, Sunset, Link", test_apply_v1_headers },
	{ "apply v1: 1 at and after sunset, 0 before", test_apply_sunset_boundary },
	{ "apply v1: long URLs are not truncated in Link", test_apply_v1_long_urls_not_truncated },
	CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suite[] = {
	{ .pName = "versioning", .pTests = tests },
	CU_SUITE_INFO_NULL,
};

int register_versioning_tests(void)
{
	return CU_register_suites(suite) == CUE_SUCCESS ? 0 : -1;
}
