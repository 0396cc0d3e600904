/* timefmt: RFC 3339 and IMF-fixdate formatting, RFC 3339 parsing. */
#include <CUnit/CUnit.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "../../core/timefmt.h"
#include "suites.h"

static void test_rfc3339_known_values(void)
{
	char out[TIMEFMT_RFC3339_LEN + 1];

	CU_ASSERT_STRING_EQUAL(timefmt_rfc3339(0, out), "1970-01-01T00:00:00Z");
	CU_ASSERT_STRING_EQUAL(timefmt_rfc3339(784111777, out), "1994-11-06T08:49:37Z");
	CU_ASSERT_STRING_EQUAL(timefmt_rfc3339(951782400, out), "2000-02-29T00:00:00Z");
	CU_ASSERT_STRING_EQUAL(timefmt_rfc3339(1814313600, out), "2027-06-30T00:00:00Z");
	CU_ASSERT_STRING_EQUAL(timefmt_rfc3339(2147483648LL, out), "2038-01-19T03:14:08Z");
	CU_ASSERT_STRING_EQUAL(timefmt_rfc3339(-1, out), "1969-12-31T23:59:59Z");
	CU_ASSERT_EQUAL(strlen(out), TIMEFMT_RFC3339_LEN);
	CU_ASSERT_PTR_EQUAL(timefmt_rfc3339(1, out), out);
}

static void test_rfc3339_ms_known_values(void)
{
	char out[TIMEFMT_RFC3339_MS_LEN + 1];
	struct timespec a = { 784111777, 123456789 }, b = { 0, 0 }, c = { 0, 999999999 },
			d = { 1709208000, 5000000 };

	CU_ASSERT_STRING_EQUAL(timefmt_rfc3339_ms(&a, out), "1994-11-06T08:49:37.123Z");
	CU_ASSERT_EQUAL(strlen(out), TIMEFMT_RFC3339_MS_LEN);
	CU_ASSERT_STRING_EQUAL(timefmt_rfc3339_ms(&b, out), "1970-01-01T00:00:00.000Z");
	CU_ASSERT_STRING_EQUAL(timefmt_rfc3339_ms(&c, out), "1970-01-01T00:00:00.999Z");
	CU_ASSERT_STRING_EQUAL(timefmt_rfc3339_ms(&d, out), "2024-02-29T12:00:00.005Z");
}

static void test_imf_fixdate_known_values(void)
{
	char out[TIMEFMT_IMF_LEN + 1];

	CU_ASSERT_STRING_EQUAL(timefmt_imf_fixdate(784111777, out),
			       "Sun, 06 Nov 1994 08:49:37 GMT");
	CU_ASSERT_EQUAL(strlen(out), TIMEFMT_IMF_LEN);
	CU_ASSERT_STRING_EQUAL(timefmt_imf_fixdate(0, out), "Thu, 01 Jan 1970 00:00:00 GMT");
	CU_ASSERT_STRING_EQUAL(timefmt_imf_fixdate(1814313600, out),
			       "Wed, 30 Jun 2027 00:00:00 GMT");
	CU_ASSERT_STRING_EQUAL(timefmt_imf_fixdate(1788220800, out),
			       "Tue, 01 Sep 2026 00:00:00 GMT");
	CU_ASSERT_STRING_EQUAL(timefmt_imf_fixdate(951782400, out),
			       "Tue, 29 Feb 2000 00:00:00 GMT");
	CU_ASSERT_STRING_EQUAL(timefmt_imf_fixdate(-1, out), "Wed, 31 Dec 1969 23:59:59 GMT");
}

static int parses_to(const char *s, time_t want)
{
	time_t t = (time_t)-12345;

	return timefmt_parse_rfc3339(s, &t) == 0 && t == want;
}

static void test_parse_accepts_z_offsets_fractions(void)
{
	CU_ASSERT(parses_to("1994-11-06T08:49:37Z", 784111777));
	CU_ASSERT(parses_to("1994-11-06T09:49:37+01:00", 784111777));
	CU_ASSERT(parses_to("1994-11-06T03:19:37-05:30", 784111777));
	CU_ASSERT(parses_to("1994-11-06T08:49:37+00:00", 784111777));
	CU_ASSERT(parses_to("1994-11-06T08:49:37-00:00", 784111777));
	CU_ASSERT(parses_to("1994-11-07T07:49:37+23:00", 784111777));
	CU_ASSERT(parses_to("1994-11-06T08:49:37.1Z", 784111777));
	CU_ASSERT(parses_to("1994-11-06T08:49:37.123456789Z", 784111777));
	CU_ASSERT(parses_to("1994-11-06T09:49:37.5+01:00", 784111777));
	CU_ASSERT(parses_to("2027-06-30T00:00:00Z", 1814313600));
	CU_ASSERT(parses_to("1970-01-01T00:00:00Z", 0));
	CU_ASSERT(parses_to("1969-12-31T23:59:59Z", -1));
}

static void test_parse_accepts_date_only(void)
{
	CU_ASSERT(parses_to("1994-11-06", 784080000));
	CU_ASSERT(parses_to("2027-06-30", 1814313600));
	CU_ASSERT(parses_to("2026-09-01", 1788220800));
}

static void test_parse_leap_years(void)
{
	time_t t;

	CU_ASSERT(parses_to("2000-02-29", 951782400));
	CU_ASSERT(parses_to("2024-02-29T12:00:00Z", 1709208000));
	CU_ASSERT_EQUAL(timefmt_parse_rfc3339("2023-02-29", &t), -1);
	CU_ASSERT_EQUAL(timefmt_parse_rfc3339("2023-02-29T00:00:00Z", &t), -1);
	CU_ASSERT_EQUAL(timefmt_parse_rfc3339("1900-02-29", &t), -1);
	CU_ASSERT_EQUAL(timefmt_parse_rfc3339("2100-02-29T00:00:00Z", &t), -1);
	CU_ASSERT_EQUAL(timefmt_parse_rfc3339("2024-02-30", &t), -1);
}

static void test_parse_rejects_bad_forms(void)
{
	static const char *const bad[] = {
		"", "2027", "2027-06", "27-06-30", "2027-6-30", "2027/06/30",
		"2027-13-01", "2027-00-10", "2027-06-00", "2027-06-31", "2027-04-31",
		"2027-01-32", "2027-06-30T", "2027-06-30T00:00Z", "2027-06-30T00:00:00",
		"2027-06-30 00:00:00Z", "2027-06-30T24:00:00Z", "2027-06-30T23:60:00Z",
		"2027-06-30T23:59:61Z", "2027-06-30T0:00:00Z", "2027-06-30T00:00:00.Z",
		"2027-06-30T00:00:00+0100", "2027-06-30T00:00:00+1:00",
		"2027-06-30T00:00:00+24:00", "2027-06-30T00:00:00+01:60",
		"2027-06-30T00:00:00+01", "2027-06-30T00:00:00UTC",
		"2027-06-30T00:00:00Zjunk", "2027-06-30T00:00:00Z ", " 2027-06-30",
		"2027-06-30x", "2027-06-30 ", "2027-06-30T00:00:00.123", "+2027-06-30",
		"2027-06-30T00:00:00ZZ", "2027-06-30T00:00:00+01:00Z", "abcd-ef-gh",
		"2027-06-30T00:00:00,5Z",
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		time_t t = 42;
		int rc = timefmt_parse_rfc3339(bad[i], &t);

		CU_ASSERT_EQUAL(rc, -1);
		if (rc != -1)
			fprintf(stderr, "\n  accepted bad date-time \"%s\"\n", bad[i]);
	}
}

static void test_format_parse_round_trip(void)
{
	char out[TIMEFMT_RFC3339_LEN + 1];
	int ok = 1;

	for (long long t = -86400LL * 365; t < 4102444800LL; t += 86399LL * 13 + 7) {
		time_t back = 0;

		if (timefmt_parse_rfc3339(timefmt_rfc3339((time_t)t, out), &back) != 0 ||
		    back != (time_t)t)
			ok = 0;
	}
	CU_ASSERT(ok);
}

static int tm_differs(time_t t)
{
	struct tm want, got;

	if (gmtime_r(&t, &want) == NULL)
		return 0; /* outside what gmtime_r can say */
	timefmt_utc(t, &got);
	return got.tm_year != want.tm_year || got.tm_mon != want.tm_mon ||
	       got.tm_mday != want.tm_mday || got.tm_hour != want.tm_hour ||
	       got.tm_min != want.tm_min || got.tm_sec != want.tm_sec ||
	       got.tm_wday != want.tm_wday || got.tm_yday != want.tm_yday;
}

/* gmtime_r is the oracle: every day from 1600 to 2500 at a few times of
 * day, the edges, and a million spread-out values. */
static void test_utc_matches_gmtime(void)
{
	static const time_t edges[] = { 0, -1, 1, 86399, 86400, -86400, -86401, 951782400,
					951868800, 2147483647LL, 2147483648LL, -2147483648LL,
					253402300799LL, -62135596800LL, 4102444800LL };
	uint64_t s = 88172645463325252ULL;
	int bad = 0;

	for (size_t i = 0; i < sizeof(edges) / sizeof(edges[0]); i++)
		bad += tm_differs(edges[i]);
	for (time_t d = -11676096000LL; d < 16725225600LL; d += 86400)
		bad += tm_differs(d) + tm_differs(d + 1) + tm_differs(d + 43210) + tm_differs(d + 86399);
	for (int i = 0; i < 1000000; i++) {
		s ^= s << 13, s ^= s >> 7, s ^= s << 17;
		bad += tm_differs((time_t)(s % 200000000000ULL) - 100000000000LL);
	}
	CU_ASSERT_EQUAL(bad, 0);
}

static CU_TestInfo tests[] = {
	{ "utc: gmtime_r's fields without its lock", test_utc_matches_gmtime },
	{ "rfc3339 known values", test_rfc3339_known_values },
	{ "rfc3339_ms known values", test_rfc3339_ms_known_values },
	{ "imf_fixdate known values", test_imf_fixdate_known_values },
	{ "parse accepts Z, offsets and fractions", test_parse_accepts_z_offsets_fractions },
	{ "parse accepts a date only", test_parse_accepts_date_only },
	{ "parse knows leap years", test_parse_leap_years },
	{ "parse rejects bad forms and trailing junk", test_parse_rejects_bad_forms },
	{ "format then parse round trip", test_format_parse_round_trip },
	CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suite[] = {
	{ .pName = "timefmt", .pTests = tests },
	CU_SUITE_INFO_NULL,
};

int register_timefmt_tests(void)
{
	return CU_register_suites(suite) == CUE_SUCCESS ? 0 : -1;
}
