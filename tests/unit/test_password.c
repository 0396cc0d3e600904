/* password: PBKDF2-HMAC-SHA256 hashing and its encoded form. Iteration
 * counts stay small so that the suite is fast. */
#include <CUnit/CUnit.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../auth/password.h"
#include "../../core/b64.h"
#include "suites.h"

#define ITER PASSWORD_ITER_MIN

static void test_hash_then_verify(void)
{
	char h[PASSWORD_HASH_MAX];

	CU_ASSERT_EQUAL_FATAL(password_hash("correct horse", ITER, h), 0);
	CU_ASSERT(strncmp(h, "pbkdf2-sha256$1000$", 19) == 0);
	CU_ASSERT(strlen(h) < PASSWORD_HASH_MAX);
	CU_ASSERT_EQUAL(password_verify("correct horse", h), 1);
	CU_ASSERT_EQUAL(password_verify("correct horsf", h), 0);
	CU_ASSERT_EQUAL(password_verify("correct hors", h), 0);
	CU_ASSERT_EQUAL(password_verify("", h), 0);
	CU_ASSERT_EQUAL(password_verify(NULL, h), 0);
}

static void test_empty_and_long_passwords(void)
{
	char h[PASSWORD_HASH_MAX], *pw = malloc(PASSWORD_MAX_LEN + 2);

	CU_ASSERT_PTR_NOT_NULL_FATAL(pw);
	CU_ASSERT_EQUAL_FATAL(password_hash("", ITER, h), 0);
	CU_ASSERT_EQUAL(password_verify("", h), 1);
	CU_ASSERT_EQUAL(password_verify("x", h), 0);

	memset(pw, 'p', PASSWORD_MAX_LEN);
	pw[PASSWORD_MAX_LEN] = '\0';
	CU_ASSERT_EQUAL_FATAL(password_hash(pw, ITER, h), 0);
	CU_ASSERT_EQUAL(password_verify(pw, h), 1);
	/* one byte more is refused, and never matches */
	pw[PASSWORD_MAX_LEN] = 'p';
	pw[PASSWORD_MAX_LEN + 1] = '\0';
	CU_ASSERT_EQUAL(password_hash(pw, ITER, h), -1);
	CU_ASSERT_EQUAL(password_verify(pw, h), 0);
	free(pw);
}

static void test_salt_makes_hashes_differ(void)
{
	char a[PASSWORD_HASH_MAX], b[PASSWORD_HASH_MAX];

	CU_ASSERT_EQUAL_FATAL(password_hash("same", ITER, a), 0);
	CU_ASSERT_EQUAL_FATAL(password_hash("same", ITER, b), 0);
	CU_ASSERT_STRING_NOT_EQUAL(a, b);
	/* the salts differ, not only the hashes */
	CU_ASSERT(strncmp(a, b, 19 + 22) != 0);
	CU_ASSERT_EQUAL(password_verify("same", a), 1);
	CU_ASSERT_EQUAL(password_verify("same", b), 1);
}

static void test_iterations_are_stored_and_used(void)
{
	char h[PASSWORD_HASH_MAX], other[PASSWORD_HASH_MAX];

	CU_ASSERT_EQUAL_FATAL(password_hash("pw", 5000, h), 0);
	CU_ASSERT(strncmp(h, "pbkdf2-sha256$5000$", 19) == 0);
	CU_ASSERT_EQUAL(password_verify("pw", h), 1);
	/* the same salt and hash claimed at another count no longer match */
	snprintf(other, sizeof(other), "pbkdf2-sha256$4999$%s", h + 19);
	CU_ASSERT_EQUAL(password_verify("pw", other), 0);
}

static void test_hash_iterations_out_of_range(void)
{
	char h[PASSWORD_HASH_MAX];

	CU_ASSERT_EQUAL(password_hash("pw", PASSWORD_ITER_MIN - 1, h), -1);
	CU_ASSERT_EQUAL(password_hash("pw", 0, h), -1);
	CU_ASSERT_EQUAL(password_hash("pw", -1, h), -1);
	CU_ASSERT_EQUAL(password_hash("pw", PASSWORD_ITER_MAX + 1L, h), -1);
	CU_ASSERT_EQUAL(password_hash(NULL, ITER, h), -1);
}

/* A known answer computed here with OpenSSL directly: the encoded form
 * is exactly what the header documents. */
static void test_known_encoding(void)
{
	const unsigned char *salt = (const unsigned char *)"0123456789abcdef";
	unsigned char dk[32];
	char s64[23], d64[44], stored[PASSWORD_HASH_MAX];

	CU_ASSERT_FATAL(PKCS5_PBKDF2_HMAC("secret", 6, salt, 16, 1234, EVP_sha256(), 32, dk) == 1);
	b64url_encode(salt, 16, s64);
	b64url_encode(dk, 32, d64);
	snprintf(stored, sizeof(stored), "pbkdf2-sha256$1234$%s$%s", s64, d64);
	CU_ASSERT_EQUAL(password_verify("secret", stored), 1);
	CU_ASSERT_EQUAL(password_verify("Secret", stored), 0);
}

static void test_tampered_hash(void)
{
	char h[PASSWORD_HASH_MAX];
	size_t n;

	CU_ASSERT_EQUAL_FATAL(password_hash("pw", ITER, h), 0);
	n = strlen(h);
	/* change the first hash character: still a valid encoding */
	h[n - 43] = h[n - 43] == 'A' ? 'B' : 'A';
	CU_ASSERT_EQUAL(password_verify("pw", h), 0);
	CU_ASSERT_EQUAL_FATAL(password_hash("pw", ITER, h), 0);
	/* and the first salt character */
	h[19] = h[19] == 'A' ? 'B' : 'A';
	CU_ASSERT_EQUAL(password_verify("pw", h), 0);
}

static void expect_invalid(const char *stored)
{
	int r = password_verify("pw", stored);

	CU_ASSERT_EQUAL(r, -1);
	if (r != -1)
		fprintf(stderr, "\n  accepted stored form \"%s\"\n", stored);
}

static void test_malformed_stored_forms(void)
{
	char good[PASSWORD_HASH_MAX], bad[2 * PASSWORD_HASH_MAX];
	const char *salt, *hash;

	CU_ASSERT_EQUAL_FATAL(password_hash("pw", ITER, good), 0);
	CU_ASSERT_EQUAL_FATAL(password_verify("pw", good), 1);
	salt = good + 19;
	hash = strrchr(good, '$') + 1;

	expect_invalid(NULL);
	expect_invalid("");
	expect_invalid("pbkdf2-sha256");
	expect_invalid("pbkdf2-sha256$");
	expect_invalid("pbkdf2-sha256$1000$");
	expect_invalid("pbkdf2-sha256$1000$$");
	expect_invalid("$2b$12$abcdefghijklmnopqrstuv");

	snprintf(bad, sizeof(bad), "pbkdf2-sha512$1000$%s", salt);
	expect_invalid(bad);
	snprintf(bad, sizeof(bad), "PBKDF2-SHA256$1000$%s", salt);
	expect_invalid(bad);
	snprintf(bad, sizeof(bad), "pbkdf2-sha256$01000$%s", salt);
	expect_invalid(bad);
	snprintf(bad, sizeof(bad), "pbkdf2-sha256$+1000$%s", salt);
	expect_invalid(bad);
	snprintf(bad, sizeof(bad), "pbkdf2-sha256$ 1000$%s", salt);
	expect_invalid(bad);
	snprintf(bad, sizeof(bad), "pbkdf2-sha256$1e3$%s", salt);
	expect_invalid(bad);
	snprintf(bad, sizeof(bad), "pbkdf2-sha256$$%s", salt);
	expect_invalid(bad);
	/* salt: one character short, padded, standard alphabet, bad bits */
	snprintf(bad, sizeof(bad), "pbkdf2-sha256$1000$%.21s$%s", salt, hash);
	expect_invalid(bad);
	snprintf(bad, sizeof(bad), "pbkdf2-sha256$1000$%.22s==$%s", salt, hash);
	expect_invalid(bad);
	snprintf(bad, sizeof(bad), "pbkdf2-sha256$1000$+%.21s$%s", salt + 1, hash);
	expect_invalid(bad);
	snprintf(bad, sizeof(bad), "pbkdf2-sha256$1000$%.21s_$%s", salt, hash);
	expect_invalid(bad);
	/* hash: short, long, padded, trailing bytes, a fourth field */
	snprintf(bad, sizeof(bad), "%.*s", (int)strlen(good) - 1, good);
	expect_invalid(bad);
	snprintf(bad, sizeof(bad), "%sA", good);
	expect_invalid(bad);
	snprintf(bad, sizeof(bad), "%s=", good);
	expect_invalid(bad);
	snprintf(bad, sizeof(bad), "%s\n", good);
	expect_invalid(bad);
	snprintf(bad, sizeof(bad), "%s$", good);
	expect_invalid(bad);
	snprintf(bad, sizeof(bad), " %s", good);
	expect_invalid(bad);
}

static void test_stored_iterations_out_of_range(void)
{
	char good[PASSWORD_HASH_MAX], bad[2 * PASSWORD_HASH_MAX];
	const char *rest;

	CU_ASSERT_EQUAL_FATAL(password_hash("pw", ITER, good), 0);
	rest = good + 19; /* after "pbkdf2-sha256$1000$" */
	snprintf(bad, sizeof(bad), "pbkdf2-sha256$999$%s", rest);
	expect_invalid(bad);
	snprintf(bad, sizeof(bad), "pbkdf2-sha256$0$%s", rest);
	expect_invalid(bad);
	snprintf(bad, sizeof(bad), "pbkdf2-sha256$-1000$%s", rest);
	expect_invalid(bad);
	snprintf(bad, sizeof(bad), "pbkdf2-sha256$10000001$%s", rest);
	expect_invalid(bad);
	snprintf(bad, sizeof(bad), "pbkdf2-sha256$99999999999999999999$%s", rest);
	expect_invalid(bad);
}

static CU_TestInfo tests[] = {
	{ "hash then verify", test_hash_then_verify },
	{ "empty and maximum-length passwords", test_empty_and_long_passwords },
	{ "two hashes of one password differ", test_salt_makes_hashes_differ },
	{ "the stored iteration count is used", test_iterations_are_stored_and_used },
	{ "hash refuses iterations out of range", test_hash_iterations_out_of_range },
	{ "encoded form matches OpenSSL PBKDF2", test_known_encoding },
	{ "tampered hash or salt does not match", test_tampered_hash },
	{ "malformed stored forms are invalid", test_malformed_stored_forms },
	{ "stored iterations out of range are invalid", test_stored_iterations_out_of_range },
	CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suite[] = {
	{ "password", NULL, NULL, NULL, NULL, tests },
	CU_SUITE_INFO_NULL,
};

int register_password_tests(void)
{
	return CU_register_suites(suite) == CUE_SUCCESS ? 0 : -1;
}
