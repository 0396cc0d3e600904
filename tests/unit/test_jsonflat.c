/* jsonflat: what it accepts it decodes exactly as json-c does (json-c's
 * own output is the oracle), and it refuses every other shape. */
#include <CUnit/CUnit.h>
#include <json-c/json.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "../../core/jsonf.h"
#include "../../core/jsonflat.h"
#include "suites.h"

struct rec {
	char s[64];
	char t[16];
	long long n;
};

static int rec_decode(const char *p, size_t len, struct rec *r)
{
	const struct jflat_field f[] = {
		{ "s", JFLAT_STR, r->s, sizeof(r->s) },
		{ "t", JFLAT_STR, r->t, sizeof(r->t) },
		{ "n", JFLAT_INT, &r->n, 0 },
	};

	memset(r, 0, sizeof(*r));
	return jflat_decode(p, len, f, 3);
}

/* The general decoder's answer for the same text (jsonf over json-c). */
static int rec_oracle(const char *p, size_t len, struct rec *r)
{
	struct json_tokener *tok = json_tokener_new();
	struct json_object *o = json_tokener_parse_ex(tok, p, (int)len);
	int rc = -1;

	memset(r, 0, sizeof(*r));
	if (o != NULL && json_tokener_get_parse_end(tok) == len &&
	    json_object_is_type(o, json_type_object) && json_object_object_length(o) == 3 &&
	    jsonf_str(o, "s", r->s, sizeof(r->s)) == 0 && jsonf_str(o, "t", r->t, sizeof(r->t)) == 0 &&
	    jsonf_int(o, "n", &r->n) == 0)
		rc = 0;
	json_object_put(o);
	json_tokener_free(tok);
	return rc;
}

static const char *json_of(struct json_object **o, const char *s, const char *t, long long n,
			   int flags)
{
	*o = json_object_new_object();
	json_object_object_add(*o, "s", json_object_new_string(s));
	json_object_object_add(*o, "t", json_object_new_string(t));
	json_object_object_add(*o, "n", json_object_new_int64(n));
	return json_object_to_json_string_ext(*o, flags);
}

static void test_decodes_what_json_c_writes(void)
{
	static const char *const strs[] = {
		"", "plain", "quote \" and backslash \\ and slash /", "tab\tnew\nline\rret\bbs\fff",
		"\x01\x1f controls", "caf\xc3\xa9 \xe2\x82\xac", "astral \xf0\x9f\x98\x80 end",
		"{\"nested\":\"json text\",\"n\":[1,2]}", "\x7f del",
		"exactly sixty-three bytes long, which is the most it may hold.",
	};
	static const long long nums[] = { 0, 1, -1, 42, LLONG_MAX, LLONG_MIN, 1764600000000LL };
	static const int flags[] = { JSON_C_TO_STRING_PLAIN, JSON_C_TO_STRING_SPACED,
				     JSON_C_TO_STRING_PRETTY,
				     JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE };
	int bad = 0, cases = 0;

	for (size_t i = 0; i < sizeof(strs) / sizeof(strs[0]); i++)
		for (size_t j = 0; j < sizeof(nums) / sizeof(nums[0]); j++)
			for (size_t k = 0; k < sizeof(flags) / sizeof(flags[0]); k++) {
				struct json_object *o;
				const char *text = json_of(&o, strs[i], "t", nums[j], flags[k]);
				struct rec got, want;

				if (rec_decode(text, strlen(text), &got) != 0 ||
				    rec_oracle(text, strlen(text), &want) != 0 ||
				    strcmp(got.s, strs[i]) != 0 || strcmp(got.t, "t") != 0 ||
				    got.n != nums[j] || memcmp(&got, &want, sizeof(got)) != 0)
					bad++;
				cases++;
				json_object_put(o);
			}
	CU_ASSERT_EQUAL(bad, 0);
	CU_ASSERT_EQUAL(cases, 10 * 7 * 4);
}

static void test_escapes_json_c_does_not_write(void)
{
	struct rec r;
	static const char surrogate[] = "{\"s\":\"\\ud83d\\ude00 \\u00e9\\u20ac\\/\",\"t\":\"\",\"n\":7}";
	static const char spaced[] = " \n{ \"n\" : -0 ,\"t\":\"x\" , \"s\" : \"\" }\r\n ";

	CU_ASSERT_EQUAL(rec_decode(surrogate, strlen(surrogate), &r), 0);
	CU_ASSERT_STRING_EQUAL(r.s, "\xf0\x9f\x98\x80 \xc3\xa9\xe2\x82\xac/");
	CU_ASSERT_EQUAL(r.n, 7);
	CU_ASSERT_EQUAL(rec_decode(spaced, strlen(spaced), &r), 0);
	CU_ASSERT_EQUAL(r.n, 0);
	CU_ASSERT_STRING_EQUAL(r.t, "x");
}

static void test_refuses_other_shapes(void)
{
	static const char *const bad[] = {
		"", "{}", "[]", "null", "{\"s\":\"a\",\"t\":\"b\"}",                    /* n missing */
		"{\"s\":\"a\",\"t\":\"b\",\"n\":1,\"x\":2}",                             /* unknown */
		"{\"s\":\"a\",\"s\":\"a\",\"t\":\"b\",\"n\":1}",                         /* duplicate */
		"{\"s\":\"a\",\"t\":\"b\",\"n\":1.5}", "{\"s\":\"a\",\"t\":\"b\",\"n\":1e3}",
		"{\"s\":\"a\",\"t\":\"b\",\"n\":01}", "{\"s\":\"a\",\"t\":\"b\",\"n\":-}",
		"{\"s\":\"a\",\"t\":\"b\",\"n\":9223372036854775808}",                   /* overflow */
		"{\"s\":\"a\",\"t\":\"b\",\"n\":-9223372036854775809}",
		"{\"s\":null,\"t\":\"b\",\"n\":1}", "{\"s\":1,\"t\":\"b\",\"n\":1}",
		"{\"s\":\"a\",\"t\":\"b\",\"n\":\"1\"}", "{\"s\":{},\"t\":\"b\",\"n\":1}",
		"{\"s\":\"a\",\"t\":\"b\",\"n\":1} x", "{\"s\":\"a\",\"t\":\"b\",\"n\":1",
		"{\"s\":\"a\",\"t\":\"b\",\"n\":1,}", "{\"s\":\"a\" \"t\":\"b\",\"n\":1}",
		"{\"s\":\"a\\x\",\"t\":\"b\",\"n\":1}", "{\"s\":\"a\\u12\",\"t\":\"b\",\"n\":1}",
		"{\"s\":\"\\u0000\",\"t\":\"b\",\"n\":1}",                               /* NUL */
		"{\"s\":\"\\ud83d\",\"t\":\"b\",\"n\":1}", "{\"s\":\"\\ude00\",\"t\":\"b\",\"n\":1}",
		"{\"s\":\"\\ud83d\\u0041\",\"t\":\"b\",\"n\":1}",
		"{\"s\":\"raw\ttab\",\"t\":\"b\",\"n\":1}",                              /* control */
		"{\"s\":\"a\",\"t\":\"sixteen bytes!!!\",\"n\":1}",                      /* > cap */
		"{\"s\":\"a\",\"t\":\"\\u20ac\\u20ac\\u20ac\\u20ac\\u20ac\\u20ac\",\"n\":1}", /* 18 bytes */
		"{\"s\":\"unterminated,\"t\":\"b\",\"n\":1}", "{'s':\"a\",\"t\":\"b\",\"n\":1}",
	};
	int accepted = 0;
	struct rec r;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (rec_decode(bad[i], strlen(bad[i]), &r) == 0) {
			accepted++;
			fprintf(stderr, "jsonflat accepted: %s\n", bad[i]);
		}
	CU_ASSERT_EQUAL(accepted, 0);
	/* fifteen bytes fit t's sixteen, escaped or not */
	{
		static const char fit[] = "{\"s\":\"\",\"t\":\"fifteen bytes!!\",\"n\":1}";
		static const char fit_esc[] = "{\"s\":\"\",\"t\":\"\\u20ac\\u20ac\\u20ac\\u20ac\\u20ac\",\"n\":1}";
		CU_ASSERT_EQUAL(rec_decode(fit, strlen(fit), &r), 0);
		CU_ASSERT_EQUAL(strlen(r.t), 15);
		CU_ASSERT_EQUAL(rec_decode(fit_esc, strlen(fit_esc), &r), 0);
		CU_ASSERT_EQUAL(strlen(r.t), 15);
	}
	CU_ASSERT_EQUAL(jflat_decode("{}", 2, NULL, 0), -1);
}

static uint32_t xorshift(uint32_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 17;
	*s ^= *s << 5;
	return *s;
}

/* Random damage to a valid entry: whenever the fast path still accepts
 * the text, json-c must read the same values from it. */
static void test_mutations_agree_with_json_c(void)
{
	static const char alphabet[] = "{}[]\":,\\/ u0123456789abcdefnrt-+.eE\x01\x7f\xc3\xa9";
	struct json_object *o;
	const char *text = json_of(&o, "caf\xc3\xa9 \"q\" \\ /x", "tt", -1234567, JSON_C_TO_STRING_PLAIN);
	size_t n = strlen(text);
	char m[128];
	uint32_t seed = 2463534242u;
	int accepted = 0, disagree = 0;

	CU_ASSERT_FATAL(n < sizeof(m));
	for (int i = 0; i < 200000; i++) {
		size_t len = n;
		struct rec got, want;

		memcpy(m, text, n);
		for (int k = 1 + (int)(xorshift(&seed) % 3); k > 0; k--) {
			size_t at = xorshift(&seed) % len;
			switch (xorshift(&seed) % 3) {
			case 0: /* replace */
				m[at] = alphabet[xorshift(&seed) % (sizeof(alphabet) - 1)];
				break;
			case 1: /* delete */
				memmove(m + at, m + at + 1, len - at - 1);
				len--;
				break;
			default: /* insert */
				if (len + 1 < sizeof(m)) {
					memmove(m + at + 1, m + at, len - at);
					m[at] = alphabet[xorshift(&seed) % (sizeof(alphabet) - 1)];
					len++;
				}
			}
		}
		if (rec_decode(m, len, &got) != 0)
			continue;
		accepted++;
		if (rec_oracle(m, len, &want) != 0 || memcmp(&got, &want, sizeof(got)) != 0)
			disagree++;
	}
	json_object_put(o);
	CU_ASSERT_EQUAL(disagree, 0);
	CU_ASSERT(accepted > 100); /* the damage often leaves a valid entry */
}

static CU_TestInfo tests[] = {
	{ "decodes what json-c writes, as json-c reads it", test_decodes_what_json_c_writes },
	{ "escapes json-c does not write, and spacing", test_escapes_json_c_does_not_write },
	{ "refuses every other shape", test_refuses_other_shapes },
	{ "random damage: accepted means json-c agrees", test_mutations_agree_with_json_c },
	CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suite[] = {
	{ .pName = "jsonflat", .pTests = tests },
	CU_SUITE_INFO_NULL,
};

int register_jsonflat_tests(void)
{
	return CU_register_suites(suite) == CUE_SUCCESS ? 0 : -1;
}
