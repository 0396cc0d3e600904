/* Target: JWT verification (auth/jwt.c) and base64url (core/b64.c).
 *
 * The property that matters: no token is accepted that was not signed
 * with a key of the keyring. Checked three ways:
 * - mode 0: the input is a token. If jwt_verify or jwt_verify_signature
 *   accepts it, the target checks on its own (OpenSSL's HMAC, not
 *   jwt.c's) that its signature is HMAC-SHA256 of "header.payload" under
 *   one of the configured secrets: a fuzzer cannot forge one, so any
 *   acceptance without it is a bug.
 * - mode 1: claims from the input are signed (jwt_sign), the token must
 *   verify with exactly those claims, then it is mutated by the rest of
 *   the input (bytes replaced, inserted, deleted): the mutated token is
 *   refused unless it is byte-identical to the signed one. The same
 *   claims signed with a key outside the keyring (same kid, other secret)
 *   are refused.
 * - mode 2: the input is an auth.jwt_keys spec (jwt_keyring_parse); a
 *   keyring it yields signs a token that it verifies.
 * - mode 3: base64url: whatever b64url_decode accepts encodes back to the
 *   same text (one encoding per value), and encode-then-decode is the
 *   identity. */
#include "fuzz.h"

#include <openssl/evp.h>

#include "../auth/jwt.h"
#include "../core/b64.h"

#define NOW 1700000000LL

static const char *const spec =
	/* 32 and 48 bytes, base64url */
	"k1:MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY,"
	"k2:c2Vjb25kLWtleS1vZi1mb3J0eS1laWdodC1ieXRlcy0uLi4uLi4uLi4uLi4uLi4u";
static const char *const secrets[] = {
	"0123456789abcdef0123456789abcdef",
	"second-key-of-forty-eight-bytes-................",
};
/* kid k1, like the keyring's first key, but another secret */
static const char *const outsider_spec = "k1:b3RoZXItc2VjcmV0LW5vdC1pbi10aGUta2V5cmluZyE";

static struct jwt_keyring *ring, *outsider;
static const struct jwt_policy policy = { "fcgi_sse", "fcgi_sse-api", 30 };

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	struct buf err = BUF_INIT;

	(void)argc, (void)argv;
	ring = jwt_keyring_parse(spec, &err);
	outsider = jwt_keyring_parse(outsider_spec, &err);
	if (ring == NULL || outsider == NULL) {
		fprintf(stderr, "jwt fuzz: keyring: %s\n", buf_str(&err));
		abort();
	}
	buf_release(&err);
	return 0;
}

/* 1 when t[0..n) is "h.p.s" with s the base64url HMAC-SHA256 of "h.p"
 * under one of the secrets. */
static int signed_by_ring(const char *t, size_t n)
{
	const char *d2 = NULL;
	unsigned char mac[EVP_MAX_MD_SIZE];
	char want[64];
	size_t maclen = 0;

	for (size_t i = 0; i < n; i++)
		if (t[i] == '.')
			d2 = t + i;
	if (d2 == NULL)
		return 0;
	for (size_t k = 0; k < sizeof(secrets) / sizeof(secrets[0]); k++) {
		if (EVP_Q_mac(NULL, "HMAC", NULL, "SHA256", NULL, secrets[k], strlen(secrets[k]),
			      (const unsigned char *)t, (size_t)(d2 - t), mac, sizeof(mac),
			      &maclen) == NULL)
			abort();
		b64url_encode(mac, maclen, want);
		if ((size_t)(t + n - d2 - 1) == strlen(want) && memcmp(d2 + 1, want, strlen(want)) == 0)
			return 1;
	}
	return 0;
}

static void mode_token(const char *t, size_t n)
{
	struct jwt_claims c;
	struct buf payload = BUF_INIT;

	if (jwt_verify_signature(ring, t, n, &payload) == JWT_OK)
		FUZZ_CHECK(signed_by_ring(t, n));
	if (jwt_verify(ring, t, n, &policy, NOW, &c) == JWT_OK)
		FUZZ_CHECK(signed_by_ring(t, n));
	buf_release(&payload);
}

/* A printable ASCII string (quotes and backslashes included) of at most
 * max bytes from the input. */
static void take_str(struct fuzz_in *in, char *dst, size_t max, size_t min)
{
	size_t n = fuzz_byte(in) % (max + 1), i;

	if (n < min)
		n = min;
	for (i = 0; i < n; i++)
		dst[i] = (char)(0x20 + fuzz_byte(in) % 95);
	dst[i] = '\0';
}

static int same_claims(const struct jwt_claims *a, const struct jwt_claims *b)
{
	if (a->nroles != b->nroles)
		return 0;
	for (int i = 0; i < a->nroles; i++)
		if (strcmp(a->roles[i], b->roles[i]) != 0)
			return 0;
	return strcmp(a->sub, b->sub) == 0 && strcmp(a->tid, b->tid) == 0 &&
	       strcmp(a->sid, b->sid) == 0 && strcmp(a->jti, b->jti) == 0 &&
	       strcmp(a->iss, b->iss) == 0 && strcmp(a->aud, b->aud) == 0 &&
	       strcmp(a->fgp, b->fgp) == 0 && a->iat == b->iat && a->nbf == b->nbf &&
	       a->exp == b->exp;
}

static void mode_mutate(struct fuzz_in *in)
{
	struct jwt_claims c, got;
	struct buf tok = BUF_INIT, other = BUF_INIT;
	char *m;
	size_t len;

	memset(&c, 0, sizeof(c));
	take_str(in, c.sub, JWT_ID_MAX, 0);
	take_str(in, c.tid, JWT_ID_MAX, 0);
	take_str(in, c.sid, JWT_ID_MAX, 0);
	take_str(in, c.jti, JWT_ID_MAX, 0);
	if (fuzz_byte(in) & 1)
		take_str(in, c.fgp, 64, 0);
	strcpy(c.iss, policy.iss);
	strcpy(c.aud, policy.aud);
	c.nroles = (int)(fuzz_byte(in) % (JWT_MAX_ROLES + 1));
	for (int i = 0; i < c.nroles; i++)
		take_str(in, c.roles[i], JWT_ROLE_MAX, 1);
	c.iat = NOW - (long long)fuzz_byte(in);
	c.nbf = c.iat;
	c.exp = NOW + 1 + (long long)fuzz_byte(in) * 60;

	FUZZ_CHECK(jwt_sign(ring, &c, &tok) == 0);
	FUZZ_CHECK(jwt_verify(ring, tok.data, tok.len, &policy, NOW, &got) == JWT_OK);
	FUZZ_CHECK(same_claims(&c, &got));
	FUZZ_CHECK(jwt_sign(outsider, &c, &other) == 0);
	FUZZ_CHECK(jwt_verify(ring, other.data, other.len, &policy, NOW, &got) != JWT_OK);
	FUZZ_CHECK(jwt_verify_signature(ring, other.data, other.len, NULL) != JWT_OK);

	/* mutations: (op, position, byte) triples */
	m = malloc(tok.len + in->n + 1);
	FUZZ_CHECK(m != NULL);
	memcpy(m, tok.data, tok.len);
	len = tok.len;
	while (in->n >= 3) {
		unsigned op = fuzz_byte(in) % 3, pos = fuzz_byte(in) << 8, b;
		pos = (pos | fuzz_byte(in)) % (unsigned)(len + 1);
		b = in->n ? fuzz_byte(in) : 'A';
		if (op == 0 && pos < len) {
			m[pos] = (char)b;
		} else if (op == 1) {
			memmove(m + pos + 1, m + pos, len - pos);
			m[pos] = (char)b;
			len++;
		} else if (op == 2 && pos < len) {
			memmove(m + pos, m + pos + 1, len - pos - 1);
			len--;
		}
	}
	if (jwt_verify(ring, m, len, &policy, NOW, &got) == JWT_OK ||
	    jwt_verify_signature(ring, m, len, NULL) == JWT_OK)
		FUZZ_CHECK(len == tok.len && memcmp(m, tok.data, len) == 0);
	free(m);
	buf_release(&tok);
	buf_release(&other);
}

static void mode_keyring(const char *s)
{
	struct buf err = BUF_INIT, tok = BUF_INIT;
	struct jwt_keyring *kr = jwt_keyring_parse(s, &err);
	struct jwt_claims c, got;

	if (kr == NULL) {
		FUZZ_CHECK(err.len > 0);
		buf_release(&err);
		return;
	}
	memset(&c, 0, sizeof(c));
	strcpy(c.sub, "u1");
	strcpy(c.tid, "t1");
	strcpy(c.iss, policy.iss);
	strcpy(c.aud, policy.aud);
	c.iat = c.nbf = NOW;
	c.exp = NOW + 60;
	FUZZ_CHECK(jwt_sign(kr, &c, &tok) == 0);
	FUZZ_CHECK(jwt_verify(kr, tok.data, tok.len, &policy, NOW, &got) == JWT_OK);
	/* the fuzzing keyring's secrets are not these */
	FUZZ_CHECK(jwt_verify_signature(ring, tok.data, tok.len, NULL) != JWT_OK ||
		   signed_by_ring(tok.data, tok.len));
	jwt_keyring_free(kr);
	buf_release(&tok);
	buf_release(&err);
}

static void mode_b64(const char *s, size_t n)
{
	unsigned char *dec = malloc(b64url_decoded_max(n) + 1);
	char *enc = malloc(b64url_encoded_len(n) + 1);
	unsigned char *back = malloc(n + 1);
	size_t dn = 0, bn = 0;

	FUZZ_CHECK(dec != NULL && enc != NULL && back != NULL);
	if (b64url_decode(s, n, dec, &dn) == 0) {
		char *again = malloc(b64url_encoded_len(dn) + 1);
		FUZZ_CHECK(again != NULL && dn <= b64url_decoded_max(n));
		b64url_encode(dec, dn, again);
		FUZZ_CHECK(strlen(again) == n && memcmp(again, s, n) == 0);
		free(again);
	}
	b64url_encode((const unsigned char *)s, n, enc);
	FUZZ_CHECK(strlen(enc) == b64url_encoded_len(n));
	FUZZ_CHECK(b64url_decode(enc, strlen(enc), back, &bn) == 0);
	FUZZ_CHECK(bn == n && (n == 0 || memcmp(back, s, n) == 0));
	free(dec);
	free(enc);
	free(back);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_in in = { data, size };
	unsigned mode = fuzz_byte(&in) % 4;
	char *s;
	size_t n;

	if (mode == 1) {
		mode_mutate(&in);
		return 0;
	}
	s = fuzz_rest(&in, &n);
	if (mode == 0)
		mode_token(s, n);
	else if (mode == 2)
		mode_keyring(s);
	else
		mode_b64(s, n);
	free(s);
	return 0;
}
