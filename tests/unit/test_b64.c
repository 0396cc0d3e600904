/* b64: base64url without padding, against RFC 4648 and OpenSSL. */
#include <CUnit/CUnit.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../core/b64.h"
#include "suites.h"

static void expect_encode(const void *in, size_t n, const char *want)
{
	char out[80];

	CU_ASSERT_EQUAL_FATAL(b64url_encoded_len(n), strlen(want));
	memset(out, 'X', sizeof(out));
	b64url_encode(in, n, out);
	CU_ASSERT_STRING_EQUAL(out, want);
}

static void expect_decode(const char *in, const void *want, size_t n)
{
	unsigned char out[64];
	size_t len = 999;

	CU_ASSERT_EQUAL(b64url_decoded_max(strlen(in)), n);
	CU_ASSERT_EQUAL_FATAL(b64url_decode(in, strlen(in), out, &len), 0);
	CU_ASSERT_EQUAL_FATAL(len, n);
	CU_ASSERT(memcmp(out, want, n) == 0);
}

static void expect_reject(const char *in)
{
	unsigned char out[64];
	size_t len = 999;

	CU_ASSERT_EQUAL(b64url_decode(in, strlen(in), out, &len), -1);
	CU_ASSERT_EQUAL(len, 999);
}

static void test_rfc4648_vectors(void)
{
	static const struct {
		const char *plain, *enc;
	} v[] = {
		{ "", "" },         { "f", "Zg" },         { "fo", "Zm8" },
		{ "foo", "Zm9v" },  { "foob", "Zm9vYg" },  { "fooba", "Zm9vYmE" },
		{ "foobar", "Zm9vYmFy" },
	};

	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		expect_encode(v[i].plain, strlen(v[i].plain), v[i].enc);
		expect_decode(v[i].enc, v[i].plain, strlen(v[i].plain));
	}
}

static void test_url_alphabet(void)
{
	static const unsigned char fbff[] = { 0xfb, 0xff };
	static const unsigned char all[] = { 0x00, 0x10, 0x83, 0x10, 0x51, 0x87, 0x20, 0x92,
					     0x8b, 0x30, 0xd3, 0x8f, 0x41, 0x14, 0x93, 0x51,
					     0x55, 0x97, 0x61, 0x96, 0x9b, 0x71, 0xd7, 0x9f,
					     0x82, 0x18, 0xa3, 0x92, 0x59, 0xa7, 0xa2, 0x9a,
					     0xab, 0xb2, 0xdb, 0xaf, 0xc3, 0x1c, 0xb3, 0xd3,
					     0x5d, 0xb7, 0xe3, 0x9e, 0xbb, 0xf3, 0xdf, 0xbf };
	const char *alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

	expect_encode(fbff, sizeof(fbff), "-_8");
	expect_decode("-_8", fbff, sizeof(fbff));
	expect_encode(all, sizeof(all), alphabet);
	expect_decode(alphabet, all, sizeof(all));
}

/* The standard encoding from OpenSSL, turned into unpadded base64url. */
static void reference_encode(const unsigned char *in, size_t n, char *out)
{
	int len = EVP_EncodeBlock((unsigned char *)out, in, (int)n);

	while (len > 0 && out[len - 1] == '=')
		len--;
	out[len] = '\0';
	for (int i = 0; i < len; i++) {
		if (out[i] == '+')
			out[i] = '-';
		else if (out[i] == '/')
			out[i] = '_';
	}
}

static void test_round_trip_random(void)
{
	unsigned char in[300], dec[300];
	char enc[401], ref[405];
	size_t n, len;

	srand(4648);
	for (int round = 0; round < 2000; round++) {
		n = round < 301 ? (size_t)round : (size_t)rand() % 301;
		for (size_t i = 0; i < n; i++)
			in[i] = (unsigned char)rand();
		b64url_encode(in, n, enc);
		reference_encode(in, n, ref);
		CU_ASSERT_EQUAL_FATAL(strlen(enc), b64url_encoded_len(n));
		CU_ASSERT_STRING_EQUAL_FATAL(enc, ref);
		CU_ASSERT_EQUAL_FATAL(b64url_decoded_max(strlen(enc)), n);
		CU_ASSERT_EQUAL_FATAL(b64url_decode(enc, strlen(enc), dec, &len), 0);
		CU_ASSERT_EQUAL_FATAL(len, n);
		CU_ASSERT_FATAL(memcmp(in, dec, n) == 0);
	}
}

static void test_decode_uses_only_n(void)
{
	unsigned char out[8];
	size_t len;

	/* "Zm9vYmFy" cut at 4: the rest is not read */
	CU_ASSERT_EQUAL(b64url_decode("Zm9vYmFy", 4, out, &len), 0);
	CU_ASSERT_EQUAL(len, 3);
	CU_ASSERT(memcmp(out, "foo", 3) == 0);
	CU_ASSERT_EQUAL(b64url_decode("Zm9v!!!!", 4, out, &len), 0);
}

static void test_reject_padding_and_std_alphabet(void)
{
	expect_reject("Zg==");
	expect_reject("Zm8=");
	expect_reject("Zg=");
	expect_reject("====");
	expect_reject("Zm9v=");
	expect_reject("+_8");
	expect_reject("-/8");
	expect_reject("++++");
	expect_reject("////");
}

static void test_reject_whitespace_and_junk(void)
{
	unsigned char out[8];
	size_t len;

	expect_reject("Zm9 v");
	expect_reject(" Zm9v");
	expect_reject("Zm9v\n");
	expect_reject("Zm\t9v");
	expect_reject("Zm9v\r\nYmFy");
	expect_reject("Zm.v");
	expect_reject("Zm9\xc3\xa9");
	/* an embedded NUL is not a character of the alphabet */
	CU_ASSERT_EQUAL(b64url_decode("Zm\0v", 4, out, &len), -1);
}

static void test_reject_length_1_mod_4(void)
{
	expect_reject("Z");
	expect_reject("Zm9vY");
	expect_reject("Zm9vYmFyZ");
}

static void test_reject_noncanonical_trailing_bits(void)
{
	/* "f" is Zg; Zh..Zv carry the same byte with nonzero unused bits */
	expect_decode("Zg", "f", 1);
	expect_reject("Zh");
	expect_reject("Zi");
	expect_reject("Zv");
	/* "fo" is Zm8; Zm9 has nonzero unused bits */
	expect_decode("Zm8", "fo", 2);
	expect_reject("Zm9");
	expect_reject("Zm-");
	expect_reject("-_9");
	expect_reject("__");
	expect_reject("___");
}

static CU_TestInfo tests[] = {
	{ "RFC 4648 test vectors, url alphabet unpadded", test_rfc4648_vectors },
	{ "'-' and '_' and the whole alphabet", test_url_alphabet },
	{ "random round trips 0..300 bytes match OpenSSL", test_round_trip_random },
	{ "decode reads only n characters", test_decode_uses_only_n },
	{ "padding, '+' and '/' refused", test_reject_padding_and_std_alphabet },
	{ "whitespace and other bytes refused", test_reject_whitespace_and_junk },
	{ "length 1 mod 4 refused", test_reject_length_1_mod_4 },
	{ "non-canonical trailing bits refused", test_reject_noncanonical_trailing_bits },
	CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suite[] = {
	{ "b64", NULL, NULL, NULL, NULL, tests },
	CU_SUITE_INFO_NULL,
};

int register_b64_tests(void)
{
	return CU_register_suites(suite) == CUE_SUCCESS ? 0 : -1;
}
