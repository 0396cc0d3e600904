/* api/jsontext.c: the token check in front of json-c for request bodies
 * (UTF-8 by RFC 3629, tokens by RFC 8259, integers json-c holds exactly). */
#include <CUnit/CUnit.h>
#include <json-c/json.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "../../api/jsontext.h"
#include "suites.h"

#define CHECK(lit) jsontext_check((lit), sizeof(lit) - 1)

/* The reference: decodes by the bit patterns, then applies RFC 3629's
 * limits to the code point (an independent statement of the rule). */
static size_t utf8_oracle(const unsigned char *p, size_t n)
{
	static const uint32_t min[5] = { 0, 0, 0x80, 0x800, 0x10000 };
	size_t len;
	uint32_t cp;

	if (n == 0)
		return 0;
	if (p[0] < 0x80)
		return 1;
	if ((p[0] & 0xe0) == 0xc0)
		len = 2, cp = p[0] & 0x1f;
	else if ((p[0] & 0xf0) == 0xe0)
		len = 3, cp = p[0] & 0x0f;
	else if ((p[0] & 0xf8) == 0xf0)
		len = 4, cp = p[0] & 0x07;
	else
		return 0;
	if (n < len)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (p[i] & 0x3f);
	}
	if (cp < min[len] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return len;
}

static void test_utf8_named_sequences(void)
{
	static const struct {
		const char *s;
		size_t want;
	} cases[] = {
		{ "A", 1 },                 { "\xc3\xa9", 2 },          { "\xe2\x82\xac", 3 },
		{ "\xed\x9f\xbf", 3 },      { "\xee\x80\x80", 3 },      { "\xef\xbf\xbf", 3 },
		{ "\xf0\x90\x80\x80", 4 },  { "\xf4\x8f\xbf\xbf", 4 },  { "\xc2\x80", 2 },
		/* not UTF-8: stray continuations, cut sequences, F5-FF */
		{ "\x80", 0 },              { "\xbf", 0 },              { "\xc3", 0 },
		{ "\xe2\x82", 0 },          { "\xf0\x90\x80", 0 },      { "\xe2\x28\xa1", 0 },
		{ "\xf5\x80\x80\x80", 0 },  { "\xff", 0 },              { "\xfe", 0 },
		/* over-long forms */
		{ "\xc0\xaf", 0 },          { "\xc1\xbf", 0 },          { "\xe0\x80\xaf", 0 },
		{ "\xe0\x9f\xbf", 0 },      { "\xf0\x80\x80\xaf", 0 },  { "\xf0\x8f\xbf\xbf", 0 },
		/* surrogates (CESU-8) and beyond U+10FFFF */
		{ "\xed\xa0\x80", 0 },      { "\xed\xbf\xbf", 0 },      { "\xf4\x90\x80\x80", 0 },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const unsigned char *p = (const unsigned char *)cases[i].s;
		size_t n = strlen(cases[i].s);

		CU_ASSERT_EQUAL(jsontext_utf8_seq(p, n), cases[i].want);
		CU_ASSERT_EQUAL(utf8_oracle(p, n), cases[i].want);
	}
}

/* Every sequence of two and three bytes, and every four-byte one whose
 * lead is F0-F7 with each second byte (its last two bytes over the edges
 * of the continuation range): the same length as the reference. */
static void test_utf8_agrees_with_the_reference(void)
{
	static const unsigned char edge[] = { 0x00, 0x7f, 0x80, 0x81, 0xa0, 0xbf, 0xc0, 0xff };
	unsigned char b[4];
	unsigned long disagree = 0, valid = 0;

	for (unsigned a = 0; a < 256; a++)
		for (unsigned c = 0; c < 256; c++)
			for (unsigned d = 0; d < 256; d++) {
				b[0] = (unsigned char)a, b[1] = (unsigned char)c, b[2] = (unsigned char)d;
				disagree += jsontext_utf8_seq(b, 3) != utf8_oracle(b, 3);
				if (d == 0)
					disagree += jsontext_utf8_seq(b, 2) != utf8_oracle(b, 2);
				valid += utf8_oracle(b, 3) == 3;
			}
	for (unsigned a = 0xf0; a < 0xf8; a++)
		for (unsigned c = 0; c < 256; c++)
			for (size_t x = 0; x < sizeof(edge); x++)
				for (size_t y = 0; y < sizeof(edge); y++) {
					b[0] = (unsigned char)a, b[1] = (unsigned char)c;
					b[2] = edge[x], b[3] = edge[y];
					disagree += jsontext_utf8_seq(b, 4) != utf8_oracle(b, 4);
				}
	CU_ASSERT_EQUAL(disagree, 0);
	/* one valid three-byte sequence per code point of U+0800-FFFF but
	 * the 2048 surrogates: the loops saw them all */
	CU_ASSERT_EQUAL(valid, 0xf800 - 0x800);
}

static void test_accepts_json(void)
{
	CU_ASSERT_EQUAL(CHECK("{\"a\":1}"), JSONTEXT_OK);
	CU_ASSERT_EQUAL(CHECK(" {\"a\" : [1, -0, 0.5, 1e5, 1E+5, -1.25e-3, 0e0]}\r\n\t"), JSONTEXT_OK);
	CU_ASSERT_EQUAL(CHECK("[true,false,null]"), JSONTEXT_OK);
	CU_ASSERT_EQUAL(CHECK("\"\\\" \\\\ \\/ \\b \\f \\n \\r \\t \\u00e9 \\uD83D\\uDE00 \\u0000\""),
			JSONTEXT_OK);
	CU_ASSERT_EQUAL(CHECK("{\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\":\"\x7f\"}"), JSONTEXT_OK);
	CU_ASSERT_EQUAL(CHECK(""), JSONTEXT_OK); /* (no token: json-c refuses it) */
	/* the ends of the range json-c holds, and doubles of any size */
	CU_ASSERT_EQUAL(CHECK("[18446744073709551615,-9223372036854775808,9223372036854775807]"),
			JSONTEXT_OK);
	CU_ASSERT_EQUAL(CHECK("[1e23,-1e23,99999999999999999999999.0,1e308,1e999]"), JSONTEXT_OK);
}

static void test_refuses_what_json_c_takes(void)
{
	static const char *const bad[] = {
		"{'a':1}", "{\"a\":NaN}", "{\"a\":-NaN}", "{\"a\":Infinity}", "{\"a\":-Infinity}",
		"{\"a\":nan}", "{\"a\":1.}", "{\"a\":.5}", "{\"a\":+1}", "{\"a\":01}", "{\"a\":-01}",
		"{\"a\":1e}", "{\"a\":1e+}", "{\"a\":-}", "{\"a\":tru}", "{\"a\":True}", "{\"a\":NULL}",
		"{\"a\":undefined}", "{\"a\":0x10}", "{\"a\":1_000}", "{\"a\":\"x\"/*c*/}",
		"{\"a\":1}//c", "#{}", "{\"a\":\"tab\there\"}", "{\"a\":\"new\nline\"}",
		"{\"a\":\"\x1f\"}", "{\"a\":\"\\x41\"}", "{\"a\":\"\\u12\"}", "{\"a\":\"\\u12G4\"}",
		"{\"a\":\"\\'\"}", "{\"a\":\"open}", "\"\\", "\xef\xbb\xbf{}", "{\"a\":1-2}",
		"{\"a\":truefalse}", "{a:1}", "{\"a\"=1}", "(1)", "{\"a\":`x`}", "{\"a\":1;}",
		"{\"\xc0\xaf\":1}", "{\"a\":\"\xed\xa0\x80\"}", "{\"a\":\"\xf4\x90\x80\x80\"}",
		"{\"a\":\"\xf5\x80\x80\x80\"}", "{\"a\":\"\xe2\x82\"}", "{\"a\":\xc3\xa9}", "\xc2\xa0{}",
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		CU_ASSERT_EQUAL(jsontext_check(bad[i], strlen(bad[i])), JSONTEXT_MALFORMED);
	/* NUL is a byte like any other: raw, it is no JSON anywhere */
	CU_ASSERT_EQUAL(CHECK("{\"a\":1}\0"), JSONTEXT_MALFORMED);
	CU_ASSERT_EQUAL(CHECK("{\"a\":\"nul\0byte\"}"), JSONTEXT_MALFORMED);
	CU_ASSERT_EQUAL(CHECK("\0"), JSONTEXT_MALFORMED);
}

static void test_big_integers(void)
{
	CU_ASSERT_EQUAL(CHECK("{\"n\":18446744073709551616}"), JSONTEXT_BIG_INTEGER);
	CU_ASSERT_EQUAL(CHECK("{\"n\":-9223372036854775809}"), JSONTEXT_BIG_INTEGER);
	CU_ASSERT_EQUAL(CHECK("{\"n\":99999999999999999999999}"), JSONTEXT_BIG_INTEGER);
	CU_ASSERT_EQUAL(CHECK("{\"n\":-99999999999999999999999}"), JSONTEXT_BIG_INTEGER);
	CU_ASSERT_EQUAL(CHECK("{\"m\":{\"k\":[1,2,100000000000000000000]}}"), JSONTEXT_BIG_INTEGER);
	/* a token that is no JSON wins over a big integer before it */
	CU_ASSERT_EQUAL(CHECK("[99999999999999999999999,NaN]"), JSONTEXT_MALFORMED);
	/* in a string it is text */
	CU_ASSERT_EQUAL(CHECK("{\"n\":\"99999999999999999999999\"}"), JSONTEXT_OK);
}

/* The range is json-c's: at its ends json-c holds the number sent, one
 * beyond it holds another (the reason for JSONTEXT_BIG_INTEGER). */
static void test_range_is_what_json_c_holds(void)
{
	struct json_object *o = json_tokener_parse("[18446744073709551615,-9223372036854775808,"
						   "18446744073709551616,-9223372036854775809]");

	CU_ASSERT_PTR_NOT_NULL_FATAL(o);
	CU_ASSERT_STRING_EQUAL(json_object_to_json_string_ext(json_object_array_get_idx(o, 0),
							      JSON_C_TO_STRING_PLAIN),
			       "18446744073709551615");
	CU_ASSERT_EQUAL(json_object_get_int64(json_object_array_get_idx(o, 1)), INT64_MIN);
	CU_ASSERT_STRING_EQUAL(json_object_to_json_string_ext(json_object_array_get_idx(o, 2),
							      JSON_C_TO_STRING_PLAIN),
			       "18446744073709551615");
	CU_ASSERT_EQUAL(json_object_get_int64(json_object_array_get_idx(o, 3)), INT64_MIN);
	json_object_put(o);
}

/* A surrogate escape only as half of a pair: json-c would put U+FFFD for
 * a lone one. */
static void test_lone_surrogates(void)
{
	static const char *const bad[] = {
		"\"\\ud800\"", "\"\\uDBFF\"", "\"\\udc00\"", "\"\\uDFFF x\"",
		"\"\\ud800\\u0041\"", "\"\\ud800\\ud800\"", "\"\\ude00\\ud83d\"",
		"\"\\ud83d\\\"", "\"\\ud83d\\u\"", "\"\\ud83d\\uDE0\"",
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		CU_ASSERT_EQUAL(jsontext_check(bad[i], strlen(bad[i])), JSONTEXT_MALFORMED);
	CU_ASSERT_EQUAL(CHECK("\"\\ud800\\udc00 \\uDBFF\\uDFFF \\uD7FF \\uE000\""), JSONTEXT_OK);
	/* an escaped backslash before "ud800" is no escape of it */
	CU_ASSERT_EQUAL(CHECK("\"\\\\ud800\""), JSONTEXT_OK);
}

/* json-c 0.16 decodes U+1D800 sent as \ud836\udc00 as U+FFFD (the
 * reason for jsontext_pairs_to_utf8); the rewritten text decodes right. */
static void test_pairs_to_utf8(void)
{
	char t[] = "{\"a\":\"x\\ud836\\udc00y\\u00e9\\\\ud83d\\\\ude00\\n\\uD83D\\uDE00\"}";
	const char want[] = "{\"a\":\"x\xf0\x9d\xa0\x80y\\u00e9\\\\ud83d\\\\ude00\\n\xf0\x9f\x98\x80\"}";
	struct json_object *o = json_tokener_parse("\"\\ud836\\udc00\"");
	size_t n;

	CU_ASSERT_PTR_NOT_NULL_FATAL(o);
	CU_ASSERT_STRING_EQUAL(json_object_get_string(o), "\xef\xbf\xbd"); /* json-c's bug */
	json_object_put(o);

	CU_ASSERT_EQUAL(CHECK(t), JSONTEXT_OK);
	n = jsontext_pairs_to_utf8(t, sizeof(t) - 1);
	CU_ASSERT_EQUAL(n, sizeof(want) - 1);
	CU_ASSERT_EQUAL(memcmp(t, want, sizeof(want)), 0); /* NUL written at the end */
	CU_ASSERT_EQUAL(CHECK(want), JSONTEXT_OK);
	o = json_tokener_parse(t);
	CU_ASSERT_PTR_NOT_NULL_FATAL(o);
	CU_ASSERT_STRING_EQUAL(json_object_get_string(json_object_object_get(o, "a")),
			       "x\xf0\x9d\xa0\x80y\xc3\xa9\\ud83d\\ude00\n\xf0\x9f\x98\x80");
	json_object_put(o);

	/* every pair, against the code point it names */
	for (unsigned hi = 0xd800; hi <= 0xdbff; hi++)
		for (unsigned lo = 0xdc00; lo <= 0xdfff; lo += 0x3f) {
			char b[16];
			unsigned cp = 0x10000 + ((hi - 0xd800) << 10) + (lo - 0xdc00);
			const unsigned char e[4] = { (unsigned char)(0xf0 | cp >> 18),
						     (unsigned char)(0x80 | (cp >> 12 & 0x3f)),
						     (unsigned char)(0x80 | (cp >> 6 & 0x3f)),
						     (unsigned char)(0x80 | (cp & 0x3f)) };

			snprintf(b, sizeof(b), "\\u%04x\\u%04X", hi, lo);
			if (jsontext_pairs_to_utf8(b, 12) != 4 || memcmp(b, e, 4) != 0 ||
			    jsontext_utf8_seq(e, 4) != 4) {
				CU_FAIL("a pair not rewritten as its code point");
				return;
			}
		}
}

static CU_TestInfo tests[] = {
	{ "UTF-8: named sequences", test_utf8_named_sequences },
	{ "UTF-8: every short sequence as the reference says", test_utf8_agrees_with_the_reference },
	{ "accepts JSON", test_accepts_json },
	{ "refuses what json-c's strict mode takes", test_refuses_what_json_c_takes },
	{ "integers beyond what json-c holds", test_big_integers },
	{ "the integer range is json-c's", test_range_is_what_json_c_holds },
	{ "lone surrogate escapes", test_lone_surrogates },
	{ "escaped pairs rewritten as UTF-8", test_pairs_to_utf8 },
	CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suite[] = {
	{ .pName = "jsontext", .pTests = tests },
	CU_SUITE_INFO_NULL,
};

int register_jsontext_tests(void)
{
	return CU_register_suites(suite) == CUE_SUCCESS ? 0 : -1;
}
