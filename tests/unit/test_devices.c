/* api pieces of the data routes that need no server: the device cache
 * value, list cursors, millisecond times. */
#include <CUnit/CUnit.h>
#include <stdio.h>
#include <string.h>

#include "../../api/devices.h"
#include "../../core/timefmt.h"
#include "suites.h"

static void test_device_cache_value_round_trip(void)
{
	struct store_device d, back;
	struct buf v = BUF_INIT;

	memset(&d, 0, sizeof(d));
	snprintf(d.id, sizeof(d.id), "dev_1-x");
	snprintf(d.tenant_id, sizeof(d.tenant_id), "ten-1");
	snprintf(d.name, sizeof(d.name), "Boiler \"1\" \xc3\xa9");
	snprintf(d.status, sizeof(d.status), "maintenance");
	snprintf(d.metadata, sizeof(d.metadata), "{\"a\":[1,2,{\"b\":null}]}");
	d.created_at = 1764583092;
	d.updated_at = 1764583180;
	d.last_seen_at = 1796119200250LL;
	d.version = 7;
	CU_ASSERT_EQUAL_FATAL(devices_encode(&d, &v), 0);
	CU_ASSERT_EQUAL_FATAL(devices_decode(v.data, v.len, &back), 0);
	CU_ASSERT_EQUAL(memcmp(&d, &back, sizeof(d)), 0);
	/* what this build cannot read is refused, never half-read */
	CU_ASSERT_EQUAL(devices_decode("{}", 2, &back), -1);
	CU_ASSERT_EQUAL(devices_decode("not json", 8, &back), -1);
	CU_ASSERT_EQUAL(devices_decode(v.data, v.len / 2, &back), -1);
	buf_reset(&v);
	buf_puts(&v, "{\"id\":\"x\",\"tenant_id\":\"t\",\"name\":\"n\",\"status\":\"online\","
		     "\"metadata\":\"{}\",\"created_at\":1,\"updated_at\":1,\"last_seen_at\":0,"
		     "\"version\":\"7\"}");
	CU_ASSERT_EQUAL(devices_decode(v.data, v.len, &back), -1); /* a string version */
	buf_release(&v);
}

static void test_cursors_are_opaque_and_of_one_kind(void)
{
	char c[128], v[STORE_ID_MAX + 1], big[STORE_ID_MAX + 8];

	api_cursor_encode('d', "dev-42", c, sizeof(c));
	CU_ASSERT_PTR_NULL(strstr(c, "dev-42"));
	CU_ASSERT_EQUAL(api_cursor_decode('d', c, v, sizeof(v)), 0);
	CU_ASSERT_STRING_EQUAL(v, "dev-42");
	CU_ASSERT_EQUAL(api_cursor_decode('a', c, v, sizeof(v)), -1); /* another list's */
	CU_ASSERT_EQUAL(api_cursor_decode('d', "", v, sizeof(v)), -1);
	CU_ASSERT_EQUAL(api_cursor_decode('d', "ZDo", v, sizeof(v)), -1);  /* "d:" and nothing */
	CU_ASSERT_EQUAL(api_cursor_decode('d', "ZDp4AA", v, sizeof(v)), -1); /* "d:x\0" */
	CU_ASSERT_EQUAL(api_cursor_decode('d', "!!!!", v, sizeof(v)), -1);
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	api_cursor_encode('d', big, c, sizeof(c)); /* does not fit: nothing */
	CU_ASSERT_STRING_EQUAL(c, "");
	api_cursor_encode('a', "12345", c, 4); /* cap too small: nothing */
	CU_ASSERT_STRING_EQUAL(c, "");
}

static void test_times_in_milliseconds(void)
{
	char s[TIMEFMT_RFC3339_MS_LEN + 1];
	long long ms;

	CU_ASSERT_EQUAL(timefmt_parse_rfc3339_ms("2026-12-01T10:00:00.250Z", &ms), 0);
	CU_ASSERT_EQUAL(ms, 1796119200250LL);
	CU_ASSERT_STRING_EQUAL(timefmt_rfc3339_ms_of(ms, s), "2026-12-01T10:00:00.250Z");
	CU_ASSERT_EQUAL(timefmt_parse_rfc3339_ms("2026-12-01T10:00:00.2Z", &ms), 0);
	CU_ASSERT_EQUAL(ms % 1000, 200);
	CU_ASSERT_EQUAL(timefmt_parse_rfc3339_ms("2026-12-01T10:00:00.123999Z", &ms), 0);
	CU_ASSERT_EQUAL(ms % 1000, 123); /* truncated, not rounded */
	CU_ASSERT_EQUAL(timefmt_parse_rfc3339_ms("2026-12-01T11:00:00+01:00", &ms), 0);
	CU_ASSERT_EQUAL(ms, 1796119200000LL);
	CU_ASSERT_EQUAL(timefmt_parse_rfc3339_ms("2026-12-01T10:00:00.Z", &ms), -1);
	CU_ASSERT_EQUAL(timefmt_parse_rfc3339_ms("yesterday", &ms), -1);
	CU_ASSERT_STRING_EQUAL(timefmt_rfc3339_ms_of(0, s), "1970-01-01T00:00:00.000Z");
}

static CU_TestInfo tests[] = {
	{ "device cache value round trip", test_device_cache_value_round_trip },
	{ "cursors are opaque and of one kind", test_cursors_are_opaque_and_of_one_kind },
	{ "times in milliseconds", test_times_in_milliseconds },
	CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suite[] = {
	{ "devices", NULL, NULL, NULL, NULL, tests },
	CU_SUITE_INFO_NULL,
};

int register_devices_tests(void)
{
	return CU_register_suites(suite) == CUE_SUCCESS ? 0 : -1;
}
