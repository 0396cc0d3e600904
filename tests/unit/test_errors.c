/* errors: the API error map and the problem+json renderer. */
#include <CUnit/CUnit.h>
#include <json-c/json.h>
#include <stdio.h>
#include <string.h>

#include "../../core/errors.h"
#include "../../core/http.h"
#include "suites.h"

/* The public contract, written out by hand so that an edit of the map that
 * renames a code or changes a status fails here. */
static const struct {
	enum api_error err;
	int status;
	const char *code;
} contract[] = {
	{ API_ERR_REQUEST_MALFORMED_JSON, 400, "request.malformed_json" },
	{ API_ERR_REQUEST_INVALID_FIELD, 400, "request.invalid_field" },
	{ API_ERR_REQUEST_INVALID_ID, 400, "request.invalid_id" },
	{ API_ERR_REQUEST_INVALID_QUERY, 400, "request.invalid_query" },
	{ API_ERR_AUTH_MISSING_TOKEN, 401, "auth.missing_token" },
	{ API_ERR_AUTH_INVALID_TOKEN, 401, "auth.invalid_token" },
	{ API_ERR_AUTH_TOKEN_EXPIRED, 401, "auth.token_expired" },
	{ API_ERR_AUTH_SESSION_REVOKED, 401, "auth.session_revoked" },
	{ API_ERR_AUTH_FINGERPRINT_MISMATCH, 401, "auth.fingerprint_mismatch" },
	{ API_ERR_AUTH_INVALID_CREDENTIALS, 401, "auth.invalid_credentials" },
	{ API_ERR_EVENTS_INVALID_SESSION, 401, "events.invalid_session" },
	{ API_ERR_AUTH_FORBIDDEN, 403, "auth.forbidden" },
	{ API_ERR_INTERNAL_FORBIDDEN, 403, "internal.forbidden" },
	{ API_ERR_RESOURCE_NOT_FOUND, 404, "resource.not_found" },
	{ API_ERR_API_UNKNOWN_VERSION, 404, "api.unknown_version" },
	{ API_ERR_ROUTE_NOT_FOUND, 404, "route.not_found" },
	{ API_ERR_ROUTE_METHOD_NOT_ALLOWED, 405, "route.method_not_allowed" },
	{ API_ERR_RESOURCE_CONFLICT, 409, "resource.conflict" },
	{ API_ERR_API_VERSION_SUNSET, 410, "api.version_sunset" },
	{ API_ERR_REQUEST_TOO_LARGE, 413, "request.too_large" },
	{ API_ERR_REQUEST_UNSUPPORTED_MEDIA_TYPE, 415, "request.unsupported_media_type" },
	{ API_ERR_RATE_LIMITED, 429, "rate.limited" },
	{ API_ERR_INTERNAL_ERROR, 500, "internal.error" },
	{ API_ERR_DEPENDENCY_UNAVAILABLE, 503, "dependency.unavailable" },
	{ API_ERR_SERVER_SHUTTING_DOWN, 503, "server.shutting_down" },
	{ API_ERR_SERVER_BUSY, 503, "server.busy" },
};

#define N_CONTRACT (sizeof(contract) / sizeof(contract[0]))

/* Renders err and parses the result; the caller puts the object. */
static struct json_object *render_parsed(enum api_error err, const char *detail,
					 const char *request_id)
{
	struct buf out = BUF_INIT;
	struct json_object *o = NULL;

	if (api_error_render(err, detail, request_id, &out) == 0)
		o = json_tokener_parse(buf_str(&out));
	buf_release(&out);
	return o;
}

static const char *get_str(struct json_object *o, const char *key)
{
	struct json_object *v;

	if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_string))
		return NULL;
	return json_object_get_string(v);
}

static int code_shape_ok(const char *code)
{
	const char *dot = strchr(code, '.');

	if (dot == NULL || dot == code || dot[1] == '\0' || strchr(dot + 1, '.') != NULL)
		return 0;
	for (const char *p = code; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || *p == '_' || *p == '.'))
			return 0;
	return 1;
}

static void test_contract_covers_every_entry(void)
{
	CU_ASSERT_EQUAL(N_CONTRACT, API_ERR__COUNT);
}

static void test_every_code_maps_to_its_status(void)
{
	for (size_t i = 0; i < N_CONTRACT; i++) {
		CU_ASSERT_EQUAL(api_error_status(contract[i].err), contract[i].status);
		CU_ASSERT_STRING_EQUAL(api_error_code(contract[i].err), contract[i].code);
	}
}

static void test_map_rows_are_consistent(void)
{
#define CHECK_ROW(name, status, code, title)                                   \
	CU_ASSERT_EQUAL(api_error_status(API_ERR_##name), status);             \
	CU_ASSERT_STRING_EQUAL(api_error_code(API_ERR_##name), code);          \
	CU_ASSERT_STRING_EQUAL(api_error_title(API_ERR_##name), title);
	API_ERROR_MAP(CHECK_ROW)
#undef CHECK_ROW
}

static void test_codes_unique_wellformed_and_titled(void)
{
	for (int i = 0; i < API_ERR__COUNT; i++) {
		const char *code = api_error_code((enum api_error)i);
		int st = api_error_status((enum api_error)i);

		CU_ASSERT(code_shape_ok(code));
		CU_ASSERT(st >= 400 && st <= 599);
		CU_ASSERT(strlen(api_error_title((enum api_error)i)) > 0);
		CU_ASSERT_STRING_NOT_EQUAL(http_reason(st), "Unknown");
		for (int j = i + 1; j < API_ERR__COUNT; j++)
			CU_ASSERT_STRING_NOT_EQUAL(code, api_error_code((enum api_error)j));
	}
}

static void test_out_of_range_is_internal_error(void)
{
	CU_ASSERT_EQUAL(api_error_status(API_ERR__COUNT), 500);
	CU_ASSERT_EQUAL(api_error_status((enum api_error)-1), 500);
	CU_ASSERT_STRING_EQUAL(api_error_code(API_ERR__COUNT), "internal.error");
	CU_ASSERT_PTR_NOT_NULL(api_error_title((enum api_error)1000));
}

static void test_from_code_round_trip(void)
{
	for (int i = 0; i < API_ERR__COUNT; i++) {
		enum api_error got = API_ERR__COUNT;

		CU_ASSERT_EQUAL(api_error_from_code(api_error_code((enum api_error)i), &got), 0);
		CU_ASSERT_EQUAL(got, (enum api_error)i);
	}
}

static void test_from_code_unknown(void)
{
	static const char *const bad[] = {
		"nope", "", "auth", "auth.", "AUTH.FORBIDDEN", "auth.forbidden ",
		" auth.forbidden", "auth.forbiddenx", "internal.error\n",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		enum api_error got = API_ERR__COUNT;

		CU_ASSERT_EQUAL(api_error_from_code(bad[i], &got), -1);
		CU_ASSERT_EQUAL(got, API_ERR__COUNT);
	}
}

static void test_render_has_every_member(void)
{
	for (size_t i = 0; i < N_CONTRACT; i++) {
		struct json_object *o = render_parsed(contract[i].err, "some detail", "req-1");
		struct json_object *st;
		char type[128];

		CU_ASSERT_PTR_NOT_NULL_FATAL(o);
		CU_ASSERT(json_object_is_type(o, json_type_object));
		snprintf(type, sizeof(type), "%s%s", API_ERROR_TYPE_BASE, contract[i].code);
		CU_ASSERT_PTR_NOT_NULL(get_str(o, "type"));
		if (get_str(o, "type") != NULL)
			CU_ASSERT_STRING_EQUAL(get_str(o, "type"), type);
		CU_ASSERT_PTR_NOT_NULL(get_str(o, "title"));
		if (get_str(o, "title") != NULL)
			CU_ASSERT_STRING_EQUAL(get_str(o, "title"), api_error_title(contract[i].err));
		CU_ASSERT(json_object_object_get_ex(o, "status", &st) &&
			  json_object_is_type(st, json_type_int) &&
			  json_object_get_int(st) == contract[i].status);
		CU_ASSERT_PTR_NOT_NULL(get_str(o, "code"));
		if (get_str(o, "code") != NULL)
			CU_ASSERT_STRING_EQUAL(get_str(o, "code"), contract[i].code);
		CU_ASSERT_PTR_NOT_NULL(get_str(o, "detail"));
		if (get_str(o, "detail") != NULL)
			CU_ASSERT_STRING_EQUAL(get_str(o, "detail"), "some detail");
		CU_ASSERT_PTR_NOT_NULL(get_str(o, "request_id"));
		if (get_str(o, "request_id") != NULL)
			CU_ASSERT_STRING_EQUAL(get_str(o, "request_id"), "req-1");
		json_object_put(o);
	}
}

static void test_render_null_detail_and_request_id(void)
{
	struct json_object *o = render_parsed(API_ERR_ROUTE_NOT_FOUND, NULL, NULL);

	CU_ASSERT_PTR_NOT_NULL_FATAL(o);
	CU_ASSERT_PTR_NOT_NULL_FATAL(get_str(o, "detail"));
	CU_ASSERT_STRING_EQUAL(get_str(o, "detail"), "Route not found");
	CU_ASSERT_FALSE(json_object_object_get_ex(o, "request_id", NULL));
	json_object_put(o);
}

static void test_render_escapes_detail(void)
{
	static const char detail[] =
		"say \"hi\"\nline2\r\ttab \\ back / slash \xc3\xa9 \xe2\x9c\x93 \x01\x1f end";
	struct buf out = BUF_INIT;
	struct json_object *o;

	CU_ASSERT_EQUAL_FATAL(api_error_render(API_ERR_REQUEST_INVALID_FIELD, detail,
					       "a\"b", &out), 0);
	/* Raw controls would break the body; escaped forms must be there. */
	for (size_t i = 0; i < out.len; i++)
		CU_ASSERT((unsigned char)out.data[i] >= 0x20);
	CU_ASSERT_PTR_NOT_NULL(strstr(buf_str(&out), "say \\\"hi\\\"\\nline2\\r\\t"));
	CU_ASSERT_PTR_NOT_NULL(strstr(buf_str(&out), "tab \\\\ back"));
	CU_ASSERT_PTR_NOT_NULL(strstr(buf_str(&out), "\\u0001\\u001f end"));
	CU_ASSERT_PTR_NOT_NULL(strstr(buf_str(&out), "\"a\\\"b\""));
	o = json_tokener_parse(buf_str(&out));
	CU_ASSERT_PTR_NOT_NULL_FATAL(o);
	CU_ASSERT_PTR_NOT_NULL_FATAL(get_str(o, "detail"));
	CU_ASSERT_STRING_EQUAL(get_str(o, "detail"), detail);
	CU_ASSERT_PTR_NOT_NULL_FATAL(get_str(o, "request_id"));
	CU_ASSERT_STRING_EQUAL(get_str(o, "request_id"), "a\"b");
	json_object_put(o);
	buf_release(&out);
}

static void test_render_appends(void)
{
	struct buf out = BUF_INIT;

	buf_puts(&out, "prefix:");
	CU_ASSERT_EQUAL(api_error_render(API_ERR_SERVER_BUSY, NULL, NULL, &out), 0);
	CU_ASSERT_NSTRING_EQUAL(buf_str(&out), "prefix:{", 8);
	CU_ASSERT_PTR_NOT_NULL(strstr(buf_str(&out), "\"server.busy\""));
	buf_release(&out);
}

static CU_TestInfo tests[] = {
	{ "hand-written contract covers every entry", test_contract_covers_every_entry },
	{ "every code maps to its status", test_every_code_maps_to_its_status },
	{ "map rows are consistent", test_map_rows_are_consistent },
	{ "codes unique, well-formed, titled", test_codes_unique_wellformed_and_titled },
	{ "out-of-range value is internal.error", test_out_of_range_is_internal_error },
	{ "from_code round trip for every entry", test_from_code_round_trip },
	{ "from_code rejects unknown codes", test_from_code_unknown },
	{ "render has type/title/status/code/detail/request_id", test_render_has_every_member },
	{ "render without detail and request id", test_render_null_detail_and_request_id },
	{ "render escapes quotes, newlines, controls, unicode", test_render_escapes_detail },
	{ "render appends to the buffer", test_render_appends },
	CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suite[] = {
	{ .pName = "errors", .pTests = tests },
	CU_SUITE_INFO_NULL,
};

int register_errors_tests(void)
{
	return CU_register_suites(suite) == CUE_SUCCESS ? 0 : -1;
}
