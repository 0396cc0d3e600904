/* auth: the Authorization header parser and the secret comparison. */
#include <CUnit/CUnit.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../auth/auth.h"
#include "suites.h"

/* Parses h expecting OK with token want; checks the token points into h. */
static void expect_token(const char *h, const char *want)
{
	const char *tok = NULL;
	size_t len = 0;

	CU_ASSERT_EQUAL_FATAL(auth_bearer_parse(h, &tok, &len), AUTH_BEARER_OK);
	CU_ASSERT_EQUAL(len, strlen(want));
	CU_ASSERT(tok >= h && tok + len <= h + strlen(h));
	CU_ASSERT(tok != NULL && memcmp(tok, want, strlen(want)) == 0);
}

static void expect_malformed(const char *h)
{
	const char *tok = NULL;
	size_t len = 0;
	enum auth_bearer r = auth_bearer_parse(h, &tok, &len);

	CU_ASSERT_EQUAL(r, AUTH_BEARER_MALFORMED);
	if (r != AUTH_BEARER_MALFORMED)
		fprintf(stderr, "\n  accepted Authorization \"%s\"\n", h);
}

static void test_bearer_ok(void)
{
	expect_token("Bearer abc", "abc");
	expect_token("Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.sig-_~+/",
		     "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.sig-_~+/");
	expect_token("Bearer 0123456789", "0123456789");
}

static void test_bearer_scheme_case_insensitive(void)
{
	expect_token("bearer abc", "abc");
	expect_token("BEARER abc", "abc");
	expect_token("bEaReR abc", "abc");
}

static void test_bearer_padding(void)
{
	expect_token("Bearer abc=", "abc=");
	expect_token("Bearer abc==", "abc==");
	expect_malformed("Bearer ab=c");
	expect_malformed("Bearer =abc");
	expect_malformed("Bearer abc=d=");
}

static void test_bearer_padding_alone_is_not_a_token(void)
{
	/* token68 = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"=" */
	expect_malformed("Bearer =");
	expect_malformed("Bearer ===");
}

static void test_bearer_missing(void)
{
	const char *tok = NULL;
	size_t len = 0;

	CU_ASSERT_EQUAL(auth_bearer_parse(NULL, &tok, &len), AUTH_BEARER_MISSING);
	CU_ASSERT_EQUAL(auth_bearer_parse("", &tok, &len), AUTH_BEARER_MISSING);
}

static void test_bearer_malformed(void)
{
	expect_malformed("Bearer");
	expect_malformed("Bearer ");
	expect_malformed("Bearer   ");
	expect_malformed("Bearerabc");
	expect_malformed("Bearer\tabc");
	expect_malformed("Basic x");
	expect_malformed("Basic dXNlcjpwYXNz");
	expect_malformed("Bear abc");
	expect_malformed("Bearers abc");
	expect_malformed("Token abc");
	expect_malformed(" Bearer abc");
	expect_malformed("Bearer abc def");
	expect_malformed("Bearer abc,def");
	expect_malformed("Bearer abc, Basic x");
	expect_malformed("Bearer abc ");
	expect_malformed("Bearer abc\r\n");
	expect_malformed("Bearer a\"bc\"");
	expect_malformed("Bearer a;b");
	expect_malformed("Bearer a@b");
	expect_malformed("Bearer \xc3\xa9");
	expect_malformed("Bearer a%20b");
}

static void test_bearer_length_limit(void)
{
	char *h = malloc(7 + AUTH_TOKEN_MAX + 2);
	const char *tok = NULL;
	size_t len = 0;

	CU_ASSERT_PTR_NOT_NULL_FATAL(h);
	memcpy(h, "Bearer ", 7);
	memset(h + 7, 'a', AUTH_TOKEN_MAX);
	h[7 + AUTH_TOKEN_MAX] = '\0';
	CU_ASSERT_EQUAL(auth_bearer_parse(h, &tok, &len), AUTH_BEARER_OK);
	CU_ASSERT_EQUAL(len, AUTH_TOKEN_MAX);
	h[7 + AUTH_TOKEN_MAX] = 'a';
	h[7 + AUTH_TOKEN_MAX + 1] = '\0';
	CU_ASSERT_EQUAL(auth_bearer_parse(h, &tok, &len), AUTH_BEARER_MALFORMED);
	/* padding counts towards the limit too */
	h[7 + AUTH_TOKEN_MAX] = '=';
	CU_ASSERT_EQUAL(auth_bearer_parse(h, &tok, &len), AUTH_BEARER_MALFORMED);
	free(h);
}

static void test_secret_equal(void)
{
	char long_a[10001], long_b[10001];

	memset(long_a, 'k', 10000);
	long_a[10000] = '\0';
	memcpy(long_b, long_a, sizeof(long_b));
	CU_ASSERT_EQUAL(auth_secret_equal("s3cret", "s3cret"), 1);
	CU_ASSERT_EQUAL(auth_secret_equal(long_a, long_b), 1);
	CU_ASSERT_EQUAL(auth_secret_equal("s3cret", "s3crex"), 0);
	CU_ASSERT_EQUAL(auth_secret_equal("S3CRET", "s3cret"), 0);
	CU_ASSERT_EQUAL(auth_secret_equal("s3cre", "s3cret"), 0);
	CU_ASSERT_EQUAL(auth_secret_equal("s3crett", "s3cret"), 0);
	CU_ASSERT_EQUAL(auth_secret_equal("", "s3cret"), 0);
	long_b[9999] = 'j';
	CU_ASSERT_EQUAL(auth_secret_equal(long_a, long_b), 0);
}

static void test_secret_empty_expected_never_matches(void)
{
	CU_ASSERT_EQUAL(auth_secret_equal("", ""), 0);
	CU_ASSERT_EQUAL(auth_secret_equal("x", ""), 0);
	CU_ASSERT_EQUAL(auth_secret_equal(NULL, ""), 0);
}

static void test_secret_null_given(void)
{
	CU_ASSERT_EQUAL(auth_secret_equal(NULL, "s3cret"), 0);
}

/* SHA-256("abc"), FIPS 180-2 appendix B.1 */
#define ABC_HEX "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"

static void test_fingerprint_matches(void)
{
	char hex[AUTH_FGP_HEX_LEN + 1], longer[300];

	auth_fingerprint_hash("abc", 3, hex);
	CU_ASSERT_STRING_EQUAL(hex, ABC_HEX);
	CU_ASSERT_TRUE(auth_fingerprint_matches("abc", 3, ABC_HEX));
	CU_ASSERT_TRUE(auth_fingerprint_matches("abc", 3, ABC_HEX)); /* remembered */
	CU_ASSERT_FALSE(auth_fingerprint_matches("abd", 3, ABC_HEX)); /* same length, other */
	CU_ASSERT_FALSE(auth_fingerprint_matches("ab", 2, ABC_HEX));
	CU_ASSERT_FALSE(auth_fingerprint_matches("abc", 3, "ba7816bf"));  /* short claim */
	CU_ASSERT_FALSE(auth_fingerprint_matches("abc", 3, ""));
	CU_ASSERT_FALSE(auth_fingerprint_matches("", 0, ABC_HEX));
	/* after another cookie, the first one is hashed again and still matches */
	CU_ASSERT_TRUE(auth_fingerprint_matches("abc", 3, ABC_HEX));
	memset(longer, 'x', sizeof(longer)); /* too long to remember: hashed each time */
	auth_fingerprint_hash(longer, sizeof(longer), hex);
	CU_ASSERT_TRUE(auth_fingerprint_matches(longer, sizeof(longer), hex));
	CU_ASSERT_TRUE(auth_fingerprint_matches(longer, sizeof(longer), hex));
	longer[0] = 'y';
	CU_ASSERT_FALSE(auth_fingerprint_matches(longer, sizeof(longer), hex));
}

static CU_TestInfo tests[] = {
	{ "fingerprint: hash and constant-time match, remembered per thread", test_fingerprint_matches },
	{ "bearer: valid tokens", test_bearer_ok },
	{ "bearer: scheme is case-insensitive", test_bearer_scheme_case_insensitive },
	{ "bearer: '=' padding only at the end", test_bearer_padding },
	{ "bearer: padding alone is not a token68", test_bearer_padding_alone_is_not_a_token },
	{ "bearer: missing header", test_bearer_missing },
	{ "bearer: malformed headers", test_bearer_malformed },
	{ "bearer: AUTH_TOKEN_MAX", test_bearer_length_limit },
	{ "secret_equal: equal, unequal, different lengths", test_secret_equal },
	{ "secret_equal: empty expected never matches", test_secret_empty_expected_never_matches },
	{ "secret_equal: NULL given", test_secret_null_given },
	CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suite[] = {
	{ .pName = "auth", .pTests = tests },
	CU_SUITE_INFO_NULL,
};

int register_auth_tests(void)
{
	return CU_register_suites(suite) == CUE_SUCCESS ? 0 : -1;
}
