/* jwt: HS256 tokens, the keyring, and every way a token can be refused.
 * Tokens with hand-made headers and payloads are signed here with
 * OpenSSL directly, so the verifier is checked against an independent
 * signer. */
#include <CUnit/CUnit.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../auth/jwt.h"
#include "../../core/b64.h"
#include "suites.h"

/* RFC 7515 Appendix A.1: HMAC SHA-256 example. */
#define A1_KEY "AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9CAow"
#define A1_HEADER "eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9"
#define A1_PAYLOAD "eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ"
#define A1_SIG "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
#define A1_TOKEN A1_HEADER "." A1_PAYLOAD "." A1_SIG
#define A1_PAYLOAD_JSON \
	"{\"iss\":\"joe\",\r\n \"exp\":1300819380,\r\n \"http://example.com/is_root\":true}"

#define K1 "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8" /* bytes 0..31 */
#define K2 "ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8" /* bytes 32..63 */
#define HDR_K1 "{\"alg\":\"HS256\",\"typ\":\"JWT\",\"kid\":\"k1\"}"

#define ISS "https://issuer.test"
#define AUD "fcgi_sse"
#define NOW 1500

static const struct jwt_policy policy = { ISS, AUD, 10 };
static struct jwt_keyring *kr12; /* "k1:K1,k2:K2" */
static struct jwt_keyring *kr_a1;

static int suite_init(void)
{
	kr12 = jwt_keyring_parse("k1:" K1 ",k2:" K2, NULL);
	kr_a1 = jwt_keyring_parse("a1:" A1_KEY, NULL);
	return kr12 != NULL && kr_a1 != NULL ? 0 : -1;
}

static int suite_cleanup(void)
{
	jwt_keyring_free(kr12);
	jwt_keyring_free(kr_a1);
	return 0;
}

/* --- helpers --- */

static void b64_append(struct buf *b, const char *s, size_t n)
{
	char *enc = malloc(b64url_encoded_len(n) + 1);

	CU_ASSERT_PTR_NOT_NULL_FATAL(enc);
	b64url_encode((const unsigned char *)s, n, enc);
	buf_puts(b, enc);
	free(enc);
}

/* Appends a token for the header and payload JSON texts, signed with the
 * base64url secret; with secret NULL the signature part stays empty. */
static void token_make(struct buf *out, const char *header, const char *payload,
		       const char *secret)
{
	unsigned char key[JWT_KEY_MAX], mac[32];
	size_t start = out->len, keylen, maclen;
	char sig[44];

	b64_append(out, header, strlen(header));
	buf_puts(out, ".");
	b64_append(out, payload, strlen(payload));
	buf_puts(out, ".");
	if (secret == NULL)
		return;
	CU_ASSERT_EQUAL_FATAL(b64url_decode(secret, strlen(secret), key, &keylen), 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(EVP_Q_mac(NULL, "HMAC", NULL, "SHA256", NULL, key, keylen,
					       (const unsigned char *)out->data + start,
					       out->len - start - 1, mac, sizeof(mac), &maclen));
	b64url_encode(mac, sizeof(mac), sig);
	buf_puts(out, sig);
}

static enum jwt_result verify_sig(const struct jwt_keyring *kr, const char *token)
{
	return jwt_verify_signature(kr, token, strlen(token), NULL);
}

static void expect_sig(const struct jwt_keyring *kr, const char *token, enum jwt_result want)
{
	enum jwt_result r = verify_sig(kr, token);

	CU_ASSERT_EQUAL(r, want);
	if (r != want)
		fprintf(stderr, "\n  token %s: got \"%s\", want \"%s\"\n", token,
			jwt_result_str(r), jwt_result_str(want));
}

/* The A.1 token with its header replaced by the base64url of header. */
static void expect_a1_header(const char *header, enum jwt_result want)
{
	struct buf t = BUF_INIT;

	b64_append(&t, header, strlen(header));
	buf_puts(&t, "." A1_PAYLOAD "." A1_SIG);
	expect_sig(kr_a1, t.data, want);
	buf_release(&t);
}

static const char *const base_claims[][2] = {
	{ "iss", "\"" ISS "\"" }, { "sub", "\"u1\"" },  { "aud", "\"" AUD "\"" },
	{ "tid", "\"t1\"" },      { "sid", "\"s1\"" },  { "jti", "\"j1\"" },
	{ "roles", "[\"admin\",\"user\"]" },
	{ "iat", "1000" },        { "nbf", "1000" },    { "exp", "2000" },
};

/* The payload of base_claims with name's value replaced by the JSON text
 * value, added when not there, or removed when value is NULL. */
static void payload_build(struct buf *out, const char *name, const char *value)
{
	int found = 0;

	buf_puts(out, "{");
	for (size_t i = 0; i < sizeof(base_claims) / sizeof(base_claims[0]); i++) {
		const char *v = base_claims[i][1];

		if (strcmp(base_claims[i][0], name) == 0) {
			found = 1;
			v = value;
		}
		if (v != NULL)
			buf_printf(out, "%s\"%s\":%s", out->len > 1 ? "," : "", base_claims[i][0], v);
	}
	if (!found && value != NULL)
		buf_printf(out, ",\"%s\":%s", name, value);
	buf_puts(out, "}");
}

static enum jwt_result verify_claim(const char *name, const char *value,
				    const struct jwt_policy *p, long long now,
				    struct jwt_claims *c)
{
	struct buf payload = BUF_INIT, t = BUF_INIT;
	enum jwt_result r;

	payload_build(&payload, name, value);
	token_make(&t, HDR_K1, payload.data, K1);
	r = jwt_verify(kr12, t.data, t.len, p, now, c);
	buf_release(&payload);
	buf_release(&t);
	return r;
}

static void expect_claim_at(const char *name, const char *value, long long now,
			    enum jwt_result want)
{
	struct jwt_claims c;
	enum jwt_result r = verify_claim(name, value, &policy, now, &c);

	CU_ASSERT_EQUAL(r, want);
	if (r != want)
		fprintf(stderr, "\n  %s=%s at %lld: got \"%s\", want \"%s\"\n", name,
			value ? value : "(absent)", now, jwt_result_str(r), jwt_result_str(want));
}

static void expect_claim(const char *name, const char *value, enum jwt_result want)
{
	expect_claim_at(name, value, NOW, want);
}

static void claims_fill(struct jwt_claims *c)
{
	memset(c, 0, sizeof(*c));
	strcpy(c->sub, "user-42");
	strcpy(c->tid, "tenant-7");
	strcpy(c->sid, "sess-\"quoted\"\\back/slash");
	strcpy(c->jti, "j-\xc3\xa9t\xc3\xa9");
	strcpy(c->iss, ISS);
	strcpy(c->aud, AUD);
	strcpy(c->fgp, "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08");
	strcpy(c->roles[0], "admin");
	strcpy(c->roles[1], "user");
	c->nroles = 2;
	c->iat = 1000;
	c->nbf = 1000;
	c->exp = 2000;
}

/* --- RFC 7515 A.1 and tampering --- */

static void test_rfc7515_a1(void)
{
	struct buf payload = BUF_INIT;
	struct jwt_keyring *padded;
	struct jwt_claims c;

	buf_puts(&payload, "kept:");
	CU_ASSERT_EQUAL(jwt_verify_signature(kr_a1, A1_TOKEN, strlen(A1_TOKEN), &payload), JWT_OK);
	CU_ASSERT_STRING_EQUAL(buf_str(&payload), "kept:" A1_PAYLOAD_JSON);
	buf_release(&payload);
	/* the same key written with padding */
	padded = jwt_keyring_parse("a1:" A1_KEY "==", NULL);
	CU_ASSERT_PTR_NOT_NULL_FATAL(padded);
	expect_sig(padded, A1_TOKEN, JWT_OK);
	jwt_keyring_free(padded);
	/* valid signature, but none of our claims */
	CU_ASSERT_EQUAL(jwt_verify(kr_a1, A1_TOKEN, strlen(A1_TOKEN), &policy, NOW, &c),
			JWT_MISSING_CLAIM);
	/* the A.1 header has no kid: only the signing key is tried */
	expect_sig(kr12, A1_TOKEN, JWT_BAD_SIGNATURE);
}

static void test_tampered_payload_and_signature(void)
{
	char t[] = A1_TOKEN;
	size_t hl = strlen(A1_HEADER), pl = strlen(A1_PAYLOAD), n = strlen(t);
	const size_t at[] = { hl + 1, hl + 1 + pl / 2, hl + pl }; /* first, middle, last */

	for (size_t i = 0; i < sizeof(at) / sizeof(at[0]); i++) {
		char saved = t[at[i]];

		/* A <-> Q keeps the trailing bits of a final character valid */
		t[at[i]] = saved == 'A' ? 'Q' : 'A';
		expect_sig(kr_a1, t, JWT_BAD_SIGNATURE);
		t[at[i]] = saved;
	}
	expect_sig(kr_a1, t, JWT_OK);
	t[n - 20] = t[n - 20] == 'A' ? 'B' : 'A';
	expect_sig(kr_a1, t, JWT_BAD_SIGNATURE);
	strcpy(t, A1_TOKEN);
	t[n - 43] = t[n - 43] == 'A' ? 'B' : 'A';
	expect_sig(kr_a1, t, JWT_BAD_SIGNATURE);
	strcpy(t, A1_TOKEN);
	t[0] = 'f'; /* header still base64url, now not JSON */
	expect_sig(kr_a1, t, JWT_MALFORMED);
}

static void test_alg_must_be_hs256(void)
{
	struct buf t = BUF_INIT;

	expect_a1_header("{\"typ\":\"JWT\",\r\n \"alg\":\"HS256\"}", JWT_OK);
	expect_a1_header("{\"typ\":\"JWT\",\r\n \"alg\":\"none\"}", JWT_BAD_ALG);
	expect_a1_header("{\"typ\":\"JWT\",\r\n \"alg\":\"None\"}", JWT_BAD_ALG);
	expect_a1_header("{\"typ\":\"JWT\",\r\n \"alg\":\"HS512\"}", JWT_BAD_ALG);
	expect_a1_header("{\"typ\":\"JWT\",\r\n \"alg\":\"HS384\"}", JWT_BAD_ALG);
	expect_a1_header("{\"typ\":\"JWT\",\r\n \"alg\":\"RS256\"}", JWT_BAD_ALG);
	expect_a1_header("{\"typ\":\"JWT\",\r\n \"alg\":\"hs256\"}", JWT_BAD_ALG);
	expect_a1_header("{\"typ\":\"JWT\",\r\n \"alg\":\"HS256 \"}", JWT_BAD_ALG);
	expect_a1_header("{\"typ\":\"JWT\",\r\n \"alg\":\"HS256\\u0000\"}", JWT_BAD_ALG);
	expect_a1_header("{\"typ\":\"JWT\",\r\n \"alg\":\"\"}", JWT_BAD_ALG);
	expect_a1_header("{\"typ\":\"JWT\"}", JWT_BAD_ALG);
	expect_a1_header("{}", JWT_BAD_ALG);
	expect_a1_header("{\"alg\":256}", JWT_BAD_ALG);
	expect_a1_header("{\"alg\":null}", JWT_BAD_ALG);
	expect_a1_header("{\"alg\":true}", JWT_BAD_ALG);
	expect_a1_header("{\"alg\":[\"HS256\"]}", JWT_BAD_ALG);
	expect_a1_header("{\"alg\":{\"name\":\"HS256\"}}", JWT_BAD_ALG);
	/* the last duplicate wins in the parser; either way not HS256 */
	expect_a1_header("{\"alg\":\"HS256\",\"alg\":\"none\"}", JWT_BAD_ALG);
	/* alg none with no signature at all */
	token_make(&t, "{\"alg\":\"none\",\"typ\":\"JWT\"}", A1_PAYLOAD_JSON, NULL);
	expect_sig(kr_a1, t.data, JWT_BAD_ALG);
	buf_reset(&t);
	token_make(&t, "{\"alg\":\"none\"}", "{\"sub\":\"admin\"}", NULL);
	expect_sig(kr12, t.data, JWT_BAD_ALG);
	buf_release(&t);
}

static void test_kid_selects_key(void)
{
	struct buf t = BUF_INIT;
	struct jwt_keyring *kr_a1_named = jwt_keyring_parse("x:" K1 ",a1:" A1_KEY, NULL);

	CU_ASSERT_PTR_NOT_NULL_FATAL(kr_a1_named);
	expect_a1_header("{\"alg\":\"HS256\",\"kid\":\"nope\"}", JWT_UNKNOWN_KID);
	expect_a1_header("{\"alg\":\"HS256\",\"kid\":\"A1\"}", JWT_UNKNOWN_KID);
	expect_a1_header("{\"alg\":\"HS256\",\"kid\":\"a1 \"}", JWT_UNKNOWN_KID);
	expect_a1_header("{\"alg\":\"HS256\",\"kid\":\"\"}", JWT_UNKNOWN_KID);
	expect_a1_header("{\"alg\":\"HS256\",\"kid\":\"a1\\u0000\"}", JWT_UNKNOWN_KID);
	expect_a1_header("{\"alg\":\"HS256\",\"kid\":"
			 "\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"}",
			 JWT_UNKNOWN_KID);
	expect_a1_header("{\"alg\":\"HS256\",\"kid\":1}", JWT_MALFORMED);
	expect_a1_header("{\"alg\":\"HS256\",\"kid\":null}", JWT_MALFORMED);
	/* critical extensions are not understood, so refused */
	expect_a1_header("{\"alg\":\"HS256\",\"crit\":[\"exp\"],\"exp\":1}", JWT_MALFORMED);

	/* A.1 key as the second key: found by kid, not tried without one */
	token_make(&t, "{\"alg\":\"HS256\",\"kid\":\"a1\"}", A1_PAYLOAD_JSON, A1_KEY);
	expect_sig(kr_a1_named, t.data, JWT_OK);
	expect_sig(kr_a1_named, A1_TOKEN, JWT_BAD_SIGNATURE);
	buf_reset(&t);
	/* no kid: the signing key (k1) only */
	token_make(&t, "{\"alg\":\"HS256\"}", "{}", K1);
	expect_sig(kr12, t.data, JWT_OK);
	buf_reset(&t);
	token_make(&t, "{\"alg\":\"HS256\"}", "{}", K2);
	expect_sig(kr12, t.data, JWT_BAD_SIGNATURE);
	buf_reset(&t);
	/* a kid naming the other key's secret */
	token_make(&t, "{\"alg\":\"HS256\",\"kid\":\"k2\"}", "{}", K1);
	expect_sig(kr12, t.data, JWT_BAD_SIGNATURE);
	buf_release(&t);
	jwt_keyring_free(kr_a1_named);
}

static void test_truncated_and_extra_parts(void)
{
	char t[] = A1_TOKEN;
	size_t n = strlen(t);

	expect_sig(kr_a1, A1_HEADER "." A1_PAYLOAD ".", JWT_BAD_SIGNATURE);
	expect_sig(kr_a1, A1_HEADER "." A1_PAYLOAD, JWT_MALFORMED);
	expect_sig(kr_a1, A1_HEADER, JWT_MALFORMED);
	expect_sig(kr_a1, A1_TOKEN ".", JWT_MALFORMED);
	expect_sig(kr_a1, A1_TOKEN "." A1_SIG, JWT_MALFORMED);
	expect_sig(kr_a1, A1_HEADER ".." A1_PAYLOAD "." A1_SIG, JWT_MALFORMED);
	expect_sig(kr_a1, "." A1_PAYLOAD "." A1_SIG, JWT_MALFORMED);
	expect_sig(kr_a1, A1_HEADER ".." A1_SIG, JWT_BAD_SIGNATURE);
	expect_sig(kr_a1, "..", JWT_MALFORMED);
	expect_sig(kr_a1, "", JWT_MALFORMED);
	CU_ASSERT_EQUAL(jwt_verify_signature(kr_a1, NULL, 0, NULL), JWT_MALFORMED);
	/* the last character dropped: "...EjX" has stray low bits */
	t[n - 1] = '\0';
	expect_sig(kr_a1, t, JWT_MALFORMED);
	/* two dropped: a length no encoding has */
	t[n - 2] = '\0';
	expect_sig(kr_a1, t, JWT_MALFORMED);
	/* only the first len bytes count */
	CU_ASSERT_EQUAL(jwt_verify_signature(kr_a1, A1_TOKEN "junk", strlen(A1_TOKEN), NULL),
			JWT_OK);
	/* a signature of a valid encoding but the wrong length */
	expect_sig(kr_a1, A1_HEADER "." A1_PAYLOAD "." A1_SIG "AAAA", JWT_BAD_SIGNATURE);
	expect_sig(kr_a1, A1_HEADER "." A1_PAYLOAD ".AAAA", JWT_BAD_SIGNATURE);
	/* padding or the standard alphabet in the signature */
	expect_sig(kr_a1, A1_TOKEN "=", JWT_MALFORMED);
	expect_sig(kr_a1, A1_HEADER "." A1_PAYLOAD ".dBjftJeZ4CVP+mB92K27uhbUJU1p1r/wW1gFWFOEjXk",
		   JWT_MALFORMED);
}

static void test_too_large(void)
{
	struct buf payload = BUF_INIT, t = BUF_INIT;
	char *big = malloc(JWT_MAX_LEN + 2);
	size_t pad;

	CU_ASSERT_PTR_NOT_NULL_FATAL(big);
	memset(big, 'a', JWT_MAX_LEN + 1);
	big[JWT_MAX_LEN + 1] = '\0';
	expect_sig(kr_a1, big, JWT_TOO_LARGE);
	free(big);

	/* a correctly signed token right at the limit, then just over it */
	for (pad = 2900; pad < 3100; pad++) {
		buf_reset(&payload);
		buf_reset(&t);
		buf_printf(&payload, "{\"pad\":\"%0*d\"}", (int)pad, 0);
		token_make(&t, HDR_K1, payload.data, K1);
		if (t.len >= JWT_MAX_LEN - 1)
			break;
	}
	CU_ASSERT_FATAL(t.len == JWT_MAX_LEN - 1 || t.len == JWT_MAX_LEN);
	expect_sig(kr12, t.data, JWT_OK);
	for (; t.len <= JWT_MAX_LEN; pad++) {
		buf_reset(&payload);
		buf_reset(&t);
		buf_printf(&payload, "{\"pad\":\"%0*d\"}", (int)pad, 0);
		token_make(&t, HDR_K1, payload.data, K1);
	}
	expect_sig(kr12, t.data, JWT_TOO_LARGE);
	buf_release(&payload);
	buf_release(&t);
}

static void test_parts_must_be_json_objects(void)
{
	static const char *const bad[] = {
		"not json", "", "[]", "\"str\"", "42", "null", "{", "{\"a\":1", "{\"a\":1}x",
		"{\"a\":1}{\"b\":2}", "{\"a\":'b'}", "{\"a\":1,}", "{\"a\":\"\xff\"}",
		"{\"a\":[[[[[[[[[[[[1]]]]]]]]]]]]}",
	};
	struct buf t = BUF_INIT;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		/* as the header, signed */
		buf_reset(&t);
		token_make(&t, bad[i], "{}", K1);
		expect_sig(kr12, t.data, JWT_MALFORMED);
		/* as the payload, correctly signed */
		buf_reset(&t);
		token_make(&t, HDR_K1, bad[i], K1);
		expect_sig(kr12, t.data, JWT_MALFORMED);
	}
	/* parts that are not base64url */
	expect_sig(kr_a1, "eyJ!." A1_PAYLOAD "." A1_SIG, JWT_MALFORMED);
	expect_sig(kr_a1, A1_HEADER "=." A1_PAYLOAD "." A1_SIG, JWT_MALFORMED);
	expect_sig(kr_a1, A1_HEADER " ." A1_PAYLOAD "." A1_SIG, JWT_MALFORMED);
	buf_release(&t);
}

/* --- signing --- */

static void test_sign_verify_round_trip(void)
{
	struct jwt_claims in, out;
	struct buf t = BUF_INIT, payload = BUF_INIT;
	unsigned char hdr[128];
	size_t n;
	const char *tok;

	claims_fill(&in);
	buf_puts(&t, "Bearer ");
	CU_ASSERT_EQUAL_FATAL(jwt_sign(kr12, &in, &t), 0);
	tok = t.data + 7;
	CU_ASSERT(strncmp(t.data, "Bearer ", 7) == 0);
	/* the header is exactly the documented one */
	CU_ASSERT_EQUAL_FATAL(b64url_decode(tok, (size_t)(strchr(tok, '.') - tok), hdr, &n), 0);
	CU_ASSERT(n == strlen(HDR_K1) && memcmp(hdr, HDR_K1, n) == 0);

	memset(&out, 0x55, sizeof(out));
	CU_ASSERT_EQUAL_FATAL(jwt_verify(kr12, tok, strlen(tok), &policy, NOW, &out), JWT_OK);
	CU_ASSERT_STRING_EQUAL(out.sub, in.sub);
	CU_ASSERT_STRING_EQUAL(out.tid, in.tid);
	CU_ASSERT_STRING_EQUAL(out.sid, in.sid);
	CU_ASSERT_STRING_EQUAL(out.jti, in.jti);
	CU_ASSERT_STRING_EQUAL(out.iss, in.iss);
	CU_ASSERT_STRING_EQUAL(out.aud, in.aud);
	CU_ASSERT_STRING_EQUAL(out.fgp, in.fgp);
	CU_ASSERT_EQUAL(out.nroles, 2);
	CU_ASSERT_STRING_EQUAL(out.roles[0], "admin");
	CU_ASSERT_STRING_EQUAL(out.roles[1], "user");
	CU_ASSERT_EQUAL(out.iat, 1000);
	CU_ASSERT_EQUAL(out.nbf, 1000);
	CU_ASSERT_EQUAL(out.exp, 2000);

	/* the payload names every claim, aud as a string */
	CU_ASSERT_EQUAL(jwt_verify_signature(kr12, tok, strlen(tok), &payload), JWT_OK);
	CU_ASSERT_PTR_NOT_NULL(strstr(payload.data, "\"aud\":\"" AUD "\""));
	CU_ASSERT_PTR_NOT_NULL(strstr(payload.data, "\"roles\":[\"admin\",\"user\"]"));
	CU_ASSERT_PTR_NOT_NULL(strstr(payload.data, "\"fgp\":"));
	buf_release(&payload);
	buf_release(&t);
}

static void test_sign_without_fgp_and_roles(void)
{
	struct jwt_claims in, out;
	struct buf t = BUF_INIT, payload = BUF_INIT;

	claims_fill(&in);
	in.fgp[0] = '\0';
	in.nroles = 0;
	CU_ASSERT_EQUAL_FATAL(jwt_sign(kr12, &in, &t), 0);
	CU_ASSERT_EQUAL(jwt_verify_signature(kr12, t.data, t.len, &payload), JWT_OK);
	CU_ASSERT_PTR_NULL(strstr(buf_str(&payload), "fgp"));
	CU_ASSERT_PTR_NOT_NULL(strstr(buf_str(&payload), "\"roles\":[]"));
	memset(&out, 0x55, sizeof(out));
	CU_ASSERT_EQUAL(jwt_verify(kr12, t.data, t.len, &policy, NOW, &out), JWT_OK);
	CU_ASSERT_STRING_EQUAL(out.fgp, "");
	CU_ASSERT_EQUAL(out.nroles, 0);
	buf_release(&payload);
	buf_release(&t);
}

static void test_sign_refuses_bad_role_count(void)
{
	struct jwt_claims in;
	struct buf t = BUF_INIT;

	claims_fill(&in);
	buf_puts(&t, "prefix");
	in.nroles = JWT_MAX_ROLES + 1;
	CU_ASSERT_EQUAL(jwt_sign(kr12, &in, &t), -1);
	in.nroles = -1;
	CU_ASSERT_EQUAL(jwt_sign(kr12, &in, &t), -1);
	CU_ASSERT_STRING_EQUAL(buf_str(&t), "prefix");
	buf_release(&t);
}

static void test_key_rotation(void)
{
	struct jwt_keyring *kr21 = jwt_keyring_parse("k2:" K2 ",k1:" K1, NULL);
	struct jwt_keyring *kr2 = jwt_keyring_parse("k2:" K2, NULL);
	struct jwt_keyring *kr1wrong = jwt_keyring_parse("k1:" K2, NULL);
	struct jwt_claims in, out;
	struct buf t = BUF_INIT;

	CU_ASSERT_FATAL(kr21 != NULL && kr2 != NULL && kr1wrong != NULL);
	CU_ASSERT_STRING_EQUAL(jwt_keyring_signing_kid(kr12), "k1");
	CU_ASSERT_STRING_EQUAL(jwt_keyring_signing_kid(kr21), "k2");
	claims_fill(&in);
	CU_ASSERT_EQUAL_FATAL(jwt_sign(kr12, &in, &t), 0);
	CU_ASSERT_EQUAL(jwt_verify(kr12, t.data, t.len, &policy, NOW, &out), JWT_OK);
	CU_ASSERT_EQUAL(jwt_verify(kr21, t.data, t.len, &policy, NOW, &out), JWT_OK);
	CU_ASSERT_EQUAL(jwt_verify(kr2, t.data, t.len, &policy, NOW, &out), JWT_UNKNOWN_KID);
	CU_ASSERT_EQUAL(jwt_verify(kr1wrong, t.data, t.len, &policy, NOW, &out),
			JWT_BAD_SIGNATURE);
	/* after the rotation new tokens name k2, which the old ring knows too */
	buf_reset(&t);
	CU_ASSERT_EQUAL_FATAL(jwt_sign(kr21, &in, &t), 0);
	CU_ASSERT_EQUAL(jwt_verify(kr12, t.data, t.len, &policy, NOW, &out), JWT_OK);
	CU_ASSERT_EQUAL(jwt_verify(kr2, t.data, t.len, &policy, NOW, &out), JWT_OK);
	buf_release(&t);
	jwt_keyring_free(kr21);
	jwt_keyring_free(kr2);
	jwt_keyring_free(kr1wrong);
}

/* A token verified before (this thread's memo) is still checked against
 * the clock, the policy and the keyring on every use. */
static void test_memo_rechecks_clock_policy_and_keyring(void)
{
	const struct jwt_policy other_aud = { ISS, "someone-else", 10 }, other_iss = { "x", AUD, 10 };
	struct jwt_keyring *a = jwt_keyring_parse("k1:" K1, NULL), *b;
	struct jwt_claims in, first, again;
	struct buf t = BUF_INIT;
	char *bad;

	CU_ASSERT_FATAL(a != NULL);
	claims_fill(&in);
	CU_ASSERT_EQUAL_FATAL(jwt_sign(a, &in, &t), 0);
	CU_ASSERT_EQUAL(jwt_verify(a, t.data, t.len, &policy, 1500, &first), JWT_OK);
	CU_ASSERT_EQUAL(jwt_verify(a, t.data, t.len, &policy, 1500, &again), JWT_OK);
	CU_ASSERT_EQUAL(memcmp(&first, &again, sizeof(first)), 0);
	CU_ASSERT_STRING_EQUAL(again.sid, in.sid);
	CU_ASSERT_EQUAL(jwt_verify(a, t.data, t.len, &policy, 2100, &again), JWT_EXPIRED);
	CU_ASSERT_EQUAL(jwt_verify(a, t.data, t.len, &policy, 500, &again), JWT_NOT_YET_VALID);
	CU_ASSERT_EQUAL(jwt_verify(a, t.data, t.len, &other_aud, 1500, &again), JWT_BAD_AUDIENCE);
	CU_ASSERT_EQUAL(jwt_verify(a, t.data, t.len, &other_iss, 1500, &again), JWT_BAD_ISSUER);
	CU_ASSERT_EQUAL(jwt_verify(a, t.data, t.len, &policy, 1500, &again), JWT_OK);
	/* one byte off, same length: not the memoized token */
	bad = strndup(t.data, t.len);
	CU_ASSERT_FATAL(bad != NULL);
	bad[t.len - 1] = bad[t.len - 1] == 'A' ? 'B' : 'A';
	CU_ASSERT_EQUAL(jwt_verify(a, bad, t.len, &policy, 1500, &again), JWT_BAD_SIGNATURE);
	bad[t.len - 1] = t.data[t.len - 1];
	bad[t.len / 2] = bad[t.len / 2] == 'A' ? 'B' : 'A';
	CU_ASSERT_NOT_EQUAL(jwt_verify(a, bad, t.len, &policy, 1500, &again), JWT_OK);
	/* a new keyring, likely at the old one's address, with another secret
	 * under the same kid: the memo of the old one must not answer */
	jwt_keyring_free(a);
	b = jwt_keyring_parse("k1:" K2, NULL);
	CU_ASSERT_FATAL(b != NULL);
	CU_ASSERT_EQUAL(jwt_verify(b, t.data, t.len, &policy, 1500, &again), JWT_BAD_SIGNATURE);
	jwt_keyring_free(b);
	free(bad);
	buf_release(&t);
}

static void test_keyring_random(void)
{
	struct jwt_keyring *a = jwt_keyring_random("boot"), *b = jwt_keyring_random("boot");
	struct jwt_claims in, out;
	struct buf t = BUF_INIT;

	CU_ASSERT_FATAL(a != NULL && b != NULL);
	CU_ASSERT_STRING_EQUAL(jwt_keyring_signing_kid(a), "boot");
	claims_fill(&in);
	CU_ASSERT_EQUAL_FATAL(jwt_sign(a, &in, &t), 0);
	CU_ASSERT_EQUAL(jwt_verify(a, t.data, t.len, &policy, NOW, &out), JWT_OK);
	CU_ASSERT_EQUAL(jwt_verify(b, t.data, t.len, &policy, NOW, &out), JWT_BAD_SIGNATURE);
	CU_ASSERT_PTR_NULL(jwt_keyring_random(NULL));
	CU_ASSERT_PTR_NULL(jwt_keyring_random(""));
	CU_ASSERT_PTR_NULL(jwt_keyring_random("bad kid"));
	CU_ASSERT_PTR_NULL(jwt_keyring_random("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"));
	jwt_keyring_free(NULL);
	buf_release(&t);
	jwt_keyring_free(a);
	jwt_keyring_free(b);
}

/* --- claims --- */

static void test_time_boundaries(void)
{
	/* exp 2000, leeway 10: valid before 2010 */
	expect_claim_at("exp", "2000", 2009, JWT_OK);
	expect_claim_at("exp", "2000", 2010, JWT_EXPIRED);
	expect_claim_at("exp", "2000", 1000000, JWT_EXPIRED);
	/* nbf (and iat) 1000: valid from 990 */
	expect_claim_at("nbf", "1000", 990, JWT_OK);
	expect_claim_at("nbf", "1000", 989, JWT_NOT_YET_VALID);
	expect_claim_at("nbf", "1200", 1189, JWT_NOT_YET_VALID);
	expect_claim_at("nbf", "1200", 1190, JWT_OK);
	/* iat in the future beyond the leeway */
	expect_claim_at("iat", "1200", 1189, JWT_NOT_YET_VALID);
	expect_claim_at("iat", "1200", 1190, JWT_OK);
	/* no overflow at the ends of the range */
	expect_claim_at("exp", "9223372036854775807", NOW, JWT_OK);
	expect_claim_at("nbf", "-9223372036854775808", NOW, JWT_OK);
	expect_claim_at("iat", "-9223372036854775808", NOW, JWT_OK);
	expect_claim_at("exp", "-9223372036854775808", NOW, JWT_EXPIRED);
	expect_claim_at("nbf", "9223372036854775807", NOW, JWT_NOT_YET_VALID);
}

static void test_time_without_leeway(void)
{
	const struct jwt_policy strict = { ISS, AUD, 0 };
	struct jwt_claims c;

	CU_ASSERT_EQUAL(verify_claim("exp", "2000", &strict, 1999, &c), JWT_OK);
	CU_ASSERT_EQUAL(verify_claim("exp", "2000", &strict, 2000, &c), JWT_EXPIRED);
	CU_ASSERT_EQUAL(verify_claim("nbf", "1000", &strict, 999, &c), JWT_NOT_YET_VALID);
	CU_ASSERT_EQUAL(verify_claim("nbf", "1000", &strict, 1000, &c), JWT_OK);
}

static void test_issuer(void)
{
	const struct jwt_policy no_iss = { NULL, AUD, 10 };
	struct jwt_claims c;

	expect_claim("iss", "\"https://evil.test\"", JWT_BAD_ISSUER);
	expect_claim("iss", "\"HTTPS://ISSUER.TEST\"", JWT_BAD_ISSUER);
	expect_claim("iss", "\"" ISS "/\"", JWT_BAD_ISSUER);
	expect_claim("iss", "\"https://issuer.tes\"", JWT_BAD_ISSUER);
	expect_claim("iss", "\"\"", JWT_BAD_ISSUER);
	expect_claim("iss", "[\"" ISS "\"]", JWT_MALFORMED);
	CU_ASSERT_EQUAL(verify_claim("iss", "\"" ISS "\"", &no_iss, NOW, &c), JWT_BAD_ISSUER);
}

static void test_audience(void)
{
	const struct jwt_policy no_aud = { ISS, NULL, 10 };
	struct jwt_claims c;

	expect_claim("aud", "\"other\"", JWT_BAD_AUDIENCE);
	expect_claim("aud", "\"" AUD "2\"", JWT_BAD_AUDIENCE);
	expect_claim("aud", "\"\"", JWT_BAD_AUDIENCE);
	expect_claim("aud", "[\"other\"]", JWT_BAD_AUDIENCE);
	expect_claim("aud", "[]", JWT_BAD_AUDIENCE);
	expect_claim("aud", "[\"" AUD "\"]", JWT_OK);
	expect_claim("aud", "[\"" AUD "\",1]", JWT_MALFORMED);
	expect_claim("aud", "[[\"" AUD "\"]]", JWT_MALFORMED);
	expect_claim("aud", "42", JWT_MALFORMED);
	expect_claim("aud", "{\"aud\":\"" AUD "\"}", JWT_MALFORMED);
	memset(&c, 0, sizeof(c));
	CU_ASSERT_EQUAL(verify_claim("aud", "[\"other\",\"" AUD "\",\"third\"]", &policy, NOW, &c),
			JWT_OK);
	CU_ASSERT_STRING_EQUAL(c.aud, AUD);
	CU_ASSERT_EQUAL(verify_claim("aud", "\"" AUD "\"", &no_aud, NOW, &c), JWT_BAD_AUDIENCE);
}

static void test_missing_claims(void)
{
	static const char *const required[] = {
		"iss", "sub", "aud", "tid", "sid", "jti", "roles", "iat", "nbf", "exp",
	};
	struct jwt_claims c;

	for (size_t i = 0; i < sizeof(required) / sizeof(required[0]); i++)
		expect_claim(required[i], NULL, JWT_MISSING_CLAIM);
	/* fgp is optional; unknown claims are ignored */
	expect_claim("fgp", NULL, JWT_OK);
	expect_claim("extra", "{\"nested\":[1,2]}", JWT_OK);
	memset(&c, 0x55, sizeof(c));
	CU_ASSERT_EQUAL(verify_claim("fgp", NULL, &policy, NOW, &c), JWT_OK);
	CU_ASSERT_STRING_EQUAL(c.fgp, "");
}

static void test_claim_types(void)
{
	expect_claim("exp", "\"2000\"", JWT_MALFORMED);
	expect_claim("exp", "2000.0", JWT_MALFORMED);
	expect_claim("exp", "2e3", JWT_MALFORMED);
	expect_claim("exp", "true", JWT_MALFORMED);
	expect_claim("exp", "null", JWT_MALFORMED);
	expect_claim("exp", "[2000]", JWT_MALFORMED);
	expect_claim("iat", "\"1000\"", JWT_MALFORMED);
	expect_claim("nbf", "{}", JWT_MALFORMED);
	expect_claim("sub", "5", JWT_MALFORMED);
	expect_claim("sub", "null", JWT_MALFORMED);
	expect_claim("sub", "[\"u1\"]", JWT_MALFORMED);
	expect_claim("sub", "\"u\\u00001\"", JWT_MALFORMED);
	expect_claim("tid", "false", JWT_MALFORMED);
	expect_claim("sid", "{}", JWT_MALFORMED);
	expect_claim("jti", "1.5", JWT_MALFORMED);
	expect_claim("fgp", "1", JWT_MALFORMED);
	expect_claim("roles", "\"admin\"", JWT_MALFORMED);
	expect_claim("roles", "{\"admin\":true}", JWT_MALFORMED);
	expect_claim("roles", "[1]", JWT_MALFORMED);
	expect_claim("roles", "[\"admin\",null]", JWT_MALFORMED);
	expect_claim("roles", "[[\"admin\"]]", JWT_MALFORMED);
	expect_claim("roles", "null", JWT_MALFORMED);
}

static void test_claim_lengths(void)
{
	struct buf v = BUF_INIT;

	expect_claim("roles", "[]", JWT_OK);
	expect_claim("roles", "[\"\"]", JWT_MALFORMED);
	expect_claim("roles", "[\"aaaaaaaaaaaaaaaa\"]", JWT_OK);          /* 16 */
	expect_claim("roles", "[\"aaaaaaaaaaaaaaaaa\"]", JWT_MALFORMED);  /* 17 */
	expect_claim("roles", "[\"a\",\"b\",\"c\",\"d\",\"e\",\"f\",\"g\",\"h\"]", JWT_OK);
	expect_claim("roles", "[\"a\",\"b\",\"c\",\"d\",\"e\",\"f\",\"g\",\"h\",\"i\"]",
		     JWT_MALFORMED);
	buf_printf(&v, "\"%0*d\"", JWT_ID_MAX, 0);
	expect_claim("sub", v.data, JWT_OK);
	expect_claim("jti", v.data, JWT_OK);
	buf_reset(&v);
	buf_printf(&v, "\"%0*d\"", JWT_ID_MAX + 1, 0);
	expect_claim("sub", v.data, JWT_MALFORMED);
	expect_claim("tid", v.data, JWT_MALFORMED);
	expect_claim("sid", v.data, JWT_MALFORMED);
	expect_claim("jti", v.data, JWT_MALFORMED);
	buf_reset(&v);
	buf_printf(&v, "\"%0*d\"", JWT_STR_MAX + 1, 0);
	expect_claim("iss", v.data, JWT_MALFORMED);
	expect_claim("aud", v.data, JWT_MALFORMED);
	buf_reset(&v);
	buf_printf(&v, "\"%0*d\"", 64, 0);
	expect_claim("fgp", v.data, JWT_OK);
	buf_reset(&v);
	buf_printf(&v, "\"%0*d\"", 65, 0);
	expect_claim("fgp", v.data, JWT_MALFORMED);
	buf_release(&v);
}

/* --- the keyring spec --- */

/* A secret that must never show up in a message. */
#define SECRET "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3JldA" /* 34 bytes */

static void expect_spec_error(const char *spec)
{
	struct buf err = BUF_INIT;
	struct jwt_keyring *kr = jwt_keyring_parse(spec, &err);

	CU_ASSERT_PTR_NULL(kr);
	CU_ASSERT(err.len > 0);
	CU_ASSERT_PTR_NULL(strstr(buf_str(&err), "c2VjcmV0"));
	CU_ASSERT_PTR_NULL(strstr(buf_str(&err), "AAECAwQF"));
	if (kr != NULL || err.len == 0 || strstr(buf_str(&err), "c2VjcmV0") != NULL)
		fprintf(stderr, "\n  spec \"%s\": \"%s\"\n", spec ? spec : "(null)",
			buf_str(&err));
	jwt_keyring_free(kr);
	buf_release(&err);
}

static void expect_spec_ok(const char *spec)
{
	struct buf err = BUF_INIT;
	struct jwt_keyring *kr = jwt_keyring_parse(spec, &err);

	CU_ASSERT_PTR_NOT_NULL(kr);
	CU_ASSERT_EQUAL(err.len, 0);
	if (kr == NULL)
		fprintf(stderr, "\n  spec refused: \"%s\"\n", buf_str(&err));
	jwt_keyring_free(kr);
	buf_release(&err);
}

static void test_keyring_parse_ok(void)
{
	struct buf spec = BUF_INIT;

	expect_spec_ok("k:" SECRET);
	expect_spec_ok("k:" SECRET "==");
	expect_spec_ok("A-z_09:" K1 ",b:" K2);
	expect_spec_ok("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa:" K1); /* kid of 32 */
	/* 128 bytes of secret */
	expect_spec_ok("k:" "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJygpKissLS4vMDEy"
		       "MzQ1Njc4OTo7PD0-P0BBQkNERUZHSElKS0xNTk9QUVJTVFVWV1hZWltcXV5fYGFiY2RlZmdo"
		       "aWprbG1ub3BxcnN0dXZ3eHl6e3x9fn8");
	for (int i = 0; i < JWT_MAX_KEYS; i++)
		buf_printf(&spec, "%sk%d:%s", i ? "," : "", i, K1);
	expect_spec_ok(spec.data);
	buf_release(&spec);
	/* err may be NULL */
	CU_ASSERT_PTR_NULL(jwt_keyring_parse("", NULL));
}

static void test_keyring_parse_errors(void)
{
	struct buf spec = BUF_INIT;

	expect_spec_error(NULL);
	expect_spec_error("");
	expect_spec_error(SECRET);                   /* no kid at all */
	expect_spec_error(":" SECRET);               /* empty kid */
	expect_spec_error("k1:");                    /* empty secret */
	expect_spec_error("k1:" "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHg"); /* 31 bytes */
	expect_spec_error("k1:c2VjcmV0");            /* "secret" */
	expect_spec_error("k1:" "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJygpKissLS4vMDEy"
			  "MzQ1Njc4OTo7PD0-P0BBQkNERUZHSElKS0xNTk9QUVJTVFVWV1hZWltcXV5fYGFiY2RlZmdo"
			  "aWprbG1ub3BxcnN0dXZ3eHl6e3x9fn-A");   /* 129 bytes */
	expect_spec_error("k1:c2VjcmV0+XNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3JldA"); /* '+' */
	expect_spec_error("k1:c2VjcmV0/XNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3JldA"); /* '/' */
	expect_spec_error("k1:c2VjcmV0 XNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3JldA"); /* space */
	expect_spec_error("k1:" SECRET "=");         /* wrong padding */
	expect_spec_error("k1:" SECRET "B");         /* length 1 mod 4 */
	expect_spec_error("k1:" SECRET "===");
	expect_spec_error("k1:" SECRET ",k1:" K1);   /* duplicate kid */
	expect_spec_error("k1:" K1 ",k2:" K2 ",k1:" SECRET);
	expect_spec_error("k.1:" SECRET);            /* kid characters */
	expect_spec_error("k 1:" SECRET);
	expect_spec_error("k\xc3\xa9:" SECRET);
	expect_spec_error(" k1:" SECRET);
	expect_spec_error("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa:" SECRET); /* kid of 33 */
	expect_spec_error("k1:" SECRET ",");         /* empty entries */
	expect_spec_error(",k1:" SECRET);
	expect_spec_error("k1:" SECRET ",,k2:" K2);
	expect_spec_error("k1:" SECRET ", k2:" K2);
	expect_spec_error("k1:" SECRET ":x");
	for (int i = 0; i <= JWT_MAX_KEYS; i++)     /* too many keys */
		buf_printf(&spec, "%sk%d:%s", i ? "," : "", i, SECRET);
	expect_spec_error(spec.data);
	buf_release(&spec);
}

static void test_result_strings(void)
{
	CU_ASSERT_STRING_EQUAL(jwt_result_str(JWT_BAD_SIGNATURE), "bad signature");
	for (int r = JWT_OK; r <= JWT_MISSING_CLAIM; r++) {
		const char *s = jwt_result_str((enum jwt_result)r);

		CU_ASSERT(s != NULL && *s != '\0');
		for (int o = JWT_OK; o < r; o++)
			CU_ASSERT_STRING_NOT_EQUAL(s, jwt_result_str((enum jwt_result)o));
	}
}

/* --- one keyring, many threads --- */

#define THREADS 4
#define ROUNDS 2000

struct verify_job {
	const char *good, *bad;
	int failures;
};

static void *verify_many(void *arg)
{
	struct verify_job *job = arg;
	struct jwt_claims c;

	for (int i = 0; i < ROUNDS; i++) {
		if (jwt_verify(kr12, job->good, strlen(job->good), &policy, NOW, &c) != JWT_OK ||
		    strcmp(c.sub, "user-42") != 0)
			job->failures++;
		if (jwt_verify(kr12, job->bad, strlen(job->bad), &policy, NOW, &c) !=
		    JWT_BAD_SIGNATURE)
			job->failures++;
	}
	return NULL;
}

static void test_concurrent_verify(void)
{
	struct verify_job jobs[THREADS];
	pthread_t th[THREADS];
	struct buf good = BUF_INIT, bad = BUF_INIT;
	struct jwt_claims in;

	claims_fill(&in);
	CU_ASSERT_EQUAL_FATAL(jwt_sign(kr12, &in, &good), 0);
	buf_append(&bad, good.data, good.len);
	bad.data[bad.len - 5] = bad.data[bad.len - 5] == 'A' ? 'B' : 'A';
	for (int i = 0; i < THREADS; i++) {
		jobs[i] = (struct verify_job){ good.data, bad.data, 0 };
		CU_ASSERT_EQUAL_FATAL(pthread_create(&th[i], NULL, verify_many, &jobs[i]), 0);
	}
	for (int i = 0; i < THREADS; i++) {
		pthread_join(th[i], NULL);
		CU_ASSERT_EQUAL(jobs[i].failures, 0);
	}
	buf_release(&good);
	buf_release(&bad);
}

static CU_TestInfo tests[] = {
	{ "memo: clock, policy and keyring checked on every use", test_memo_rechecks_clock_policy_and_keyring },
	{ "RFC 7515 A.1 verifies", test_rfc7515_a1 },
	{ "tampered payload or signature", test_tampered_payload_and_signature },
	{ "alg must be exactly HS256", test_alg_must_be_hs256 },
	{ "kid selects the key", test_kid_selects_key },
	{ "truncated tokens and extra parts", test_truncated_and_extra_parts },
	{ "tokens over JWT_MAX_LEN", test_too_large },
	{ "header and payload must be JSON objects", test_parts_must_be_json_objects },
	{ "sign then verify, every claim", test_sign_verify_round_trip },
	{ "sign without fgp and roles", test_sign_without_fgp_and_roles },
	{ "sign refuses a bad role count", test_sign_refuses_bad_role_count },
	{ "key rotation by kid", test_key_rotation },
	{ "random keyring", test_keyring_random },
	{ "exp, nbf, iat with leeway", test_time_boundaries },
	{ "exp and nbf without leeway", test_time_without_leeway },
	{ "issuer must match", test_issuer },
	{ "audience string or array", test_audience },
	{ "missing claims", test_missing_claims },
	{ "claims of the wrong type", test_claim_types },
	{ "claim lengths", test_claim_lengths },
	{ "keyring specs accepted", test_keyring_parse_ok },
	{ "keyring spec errors never show secrets", test_keyring_parse_errors },
	{ "result strings", test_result_strings },
	{ "one keyring verifying in many threads", test_concurrent_verify },
	CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suite[] = {
	{ "jwt", suite_init, suite_cleanup, NULL, NULL, tests },
	CU_SUITE_INFO_NULL,
};

int register_jwt_tests(void)
{
	return CU_register_suites(suite) == CUE_SUCCESS ? 0 : -1;
}
