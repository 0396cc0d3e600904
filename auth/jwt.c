#include "jwt.h"

#include <json-c/json.h>
#include <limits.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/b64.h"
#include "token_memo.h"

#define MAC_LEN 32                         /* HMAC-SHA256 */
#define MAC_B64_LEN 43                     /* b64url_encoded_len(MAC_LEN) */
#define DEC_MAX (JWT_MAX_LEN / 4 * 3 + 2)  /* bytes any part of a token can decode to */
#define JSON_DEPTH 8                       /* claims nest two deep; refuse more early */
#define RANDOM_KEY_LEN 32
#define MAC_IDLE_MAX 16                    /* keyed contexts kept per key for reuse */
#define B64_CHUNK 192                      /* bytes encoded per step; a multiple of 3 */
#define FGP_MAX 64                         /* SHA-256 in hex */
#define HEADER_FMT "{\"alg\":\"HS256\",\"typ\":\"JWT\",\"kid\":\"%s\"}"
#define HEADER_MAX (sizeof(HEADER_FMT) + JWT_KID_MAX)
#define HEADER64_MAX (HEADER_MAX / 3 * 4 + 4)

/* Keyed HMAC contexts that finished a MAC, ready to restart without
 * another EVP_MAC_CTX_dup (which costs several allocations). */
struct mac_pool {
	pthread_mutex_t lock;
	int n;
	EVP_MAC_CTX *idle[MAC_IDLE_MAX];
};

/* The keyring keeps no copy of a secret: mac is keyed with it and OpenSSL
 * wipes its copies when the context is freed. mac itself is only ever
 * duplicated, which reads it, so one keyring serves all threads; the
 * duplicates are recycled through pool. */
struct jwt_key {
	char kid[JWT_KID_MAX + 1];
	char header64[HEADER64_MAX]; /* the header jwt_sign writes, base64url */
	size_t header64_len;
	EVP_MAC_CTX *mac;
	struct mac_pool *pool;
};

struct jwt_keyring {
	unsigned long long serial; /* unique per keyring made: token_memo's key */
	EVP_MAC *hmac;
	int nkeys;
	struct jwt_key keys[JWT_MAX_KEYS]; /* keys[0] signs */
};

static void set_err(struct buf *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void set_err(struct buf *err, const char *fmt, ...)
{
	char msg[160];
	va_list ap;

	if (err == NULL)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	buf_puts(err, msg);
}

static int kid_valid(const char *kid, size_t n)
{
	if (n == 0 || n > JWT_KID_MAX)
		return 0;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)kid[i];

		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
		      (c >= '0' && c <= '9') || c == '_' || c == '-'))
			return 0;
	}
	return 1;
}

static const struct jwt_key *keyring_find(const struct jwt_keyring *kr, const char *kid,
					  size_t n)
{
	for (int i = 0; i < kr->nkeys; i++) {
		if (strlen(kr->keys[i].kid) == n && memcmp(kr->keys[i].kid, kid, n) == 0)
			return &kr->keys[i];
	}
	return NULL;
}

/* Precomputes the header of k's tokens: signing copies it, and
 * verification recognises it without parsing JSON. */
static void key_header_init(struct jwt_key *k)
{
	char json[HEADER_MAX];
	int n = snprintf(json, sizeof(json), HEADER_FMT, k->kid);

	b64url_encode((const unsigned char *)json, (size_t)n, k->header64);
	k->header64_len = b64url_encoded_len((size_t)n);
}

static struct jwt_keyring *keyring_new(void)
{
	struct jwt_keyring *kr = calloc(1, sizeof(*kr));

	static _Atomic unsigned long long serials;

	if (kr == NULL)
		return NULL;
	kr->serial = ++serials;
	kr->hmac = EVP_MAC_fetch(NULL, "HMAC", NULL);
	if (kr->hmac == NULL) {
		free(kr);
		return NULL;
	}
	return kr;
}

/* Frees what k holds; k is empty afterwards. */
static void key_release(struct jwt_key *k)
{
	if (k->pool != NULL) {
		while (k->pool->n > 0)
			EVP_MAC_CTX_free(k->pool->idle[--k->pool->n]);
		pthread_mutex_destroy(&k->pool->lock);
		free(k->pool);
	}
	EVP_MAC_CTX_free(k->mac);
	memset(k, 0, sizeof(*k));
}

/* Adds a key named kid[0..n) keyed with secret; secret stays the
 * caller's. Returns 0, or -1 when OpenSSL failed. */
static int keyring_add(struct jwt_keyring *kr, const char *kid, size_t n,
		       const unsigned char *secret, size_t len)
{
	struct jwt_key *k = &kr->keys[kr->nkeys];
	char digest[] = "SHA256";
	OSSL_PARAM params[] = {
		OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
		OSSL_PARAM_construct_end(),
	};

	k->pool = calloc(1, sizeof(*k->pool));
	if (k->pool == NULL || pthread_mutex_init(&k->pool->lock, NULL) != 0) {
		free(k->pool);
		k->pool = NULL;
		return -1;
	}
	k->mac = EVP_MAC_CTX_new(kr->hmac);
	if (k->mac == NULL || EVP_MAC_init(k->mac, secret, len, params) != 1)
		goto err;
	memcpy(k->kid, kid, n);
	k->kid[n] = '\0';
	key_header_init(k);
	kr->nkeys++;
	return 0;
err:
	key_release(k);
	return -1;
}

/* Decodes a secret, base64url with optional padding, into
 * out[JWT_KEY_MAX]. Returns its length, or 0 when it is not base64url or
 * decodes to too many bytes. */
static size_t secret_decode(const char *s, size_t n, unsigned char *out)
{
	size_t pad = 0, len;

	while (pad < 2 && pad < n && s[n - 1 - pad] == '=')
		pad++;
	if (pad > 0 && n % 4 != 0)
		return 0;
	n -= pad;
	if (n > b64url_encoded_len(JWT_KEY_MAX) || b64url_decode(s, n, out, &len) < 0)
		return 0;
	return len;
}

/* Adds the key "kid:secret" in s[0..n), the pos'th of the spec. Messages
 * name the key by position only: the text may hold a secret. */
static int keyring_add_spec(struct jwt_keyring *kr, const char *s, size_t n, int pos,
			    struct buf *err)
{
	unsigned char secret[JWT_KEY_MAX];
	const char *colon = memchr(s, ':', n);
	size_t kidlen, len;
	int rc = -1;

	if (kr->nkeys == JWT_MAX_KEYS) {
		set_err(err, "more than %d keys", JWT_MAX_KEYS);
		return -1;
	}
	if (colon == NULL) {
		set_err(err, "key %d: expected kid:secret", pos);
		return -1;
	}
	kidlen = (size_t)(colon - s);
	if (!kid_valid(s, kidlen)) {
		set_err(err, "key %d: kid must be 1..%d characters of A-Z a-z 0-9 _ -", pos,
			JWT_KID_MAX);
		return -1;
	}
	if (keyring_find(kr, s, kidlen) != NULL) {
		set_err(err, "key %d: duplicate kid", pos);
		return -1;
	}
	len = secret_decode(colon + 1, n - kidlen - 1, secret);
	if (len < JWT_KEY_MIN || len > JWT_KEY_MAX)
		set_err(err, "key %d: secret must be base64url of %d..%d bytes", pos, JWT_KEY_MIN,
			JWT_KEY_MAX);
	else if (keyring_add(kr, s, kidlen, secret, len) < 0)
		set_err(err, "key %d: cannot set up HMAC-SHA256", pos);
	else
		rc = 0;
	OPENSSL_cleanse(secret, sizeof(secret));
	return rc;
}

struct jwt_keyring *jwt_keyring_parse(const char *spec, struct buf *err)
{
	struct jwt_keyring *kr;
	const char *p = spec, *end;
	int pos = 1;

	if (spec == NULL || *spec == '\0') {
		set_err(err, "no keys");
		return NULL;
	}
	kr = keyring_new();
	if (kr == NULL) {
		set_err(err, "cannot set up HMAC-SHA256");
		return NULL;
	}
	for (;;) {
		end = strchr(p, ',');
		if (end == NULL)
			end = p + strlen(p);
		if (keyring_add_spec(kr, p, (size_t)(end - p), pos++, err) < 0)
			goto err;
		if (*end == '\0')
			return kr;
		p = end + 1;
	}
err:
	jwt_keyring_free(kr);
	return NULL;
}

struct jwt_keyring *jwt_keyring_random(const char *kid)
{
	unsigned char secret[RANDOM_KEY_LEN];
	struct jwt_keyring *kr;

	if (kid == NULL || !kid_valid(kid, strlen(kid)))
		return NULL;
	kr = keyring_new();
	if (kr == NULL)
		return NULL;
	if (RAND_bytes(secret, sizeof(secret)) != 1 ||
	    keyring_add(kr, kid, strlen(kid), secret, sizeof(secret)) < 0) {
		jwt_keyring_free(kr);
		kr = NULL;
	}
	OPENSSL_cleanse(secret, sizeof(secret));
	return kr;
}

void jwt_keyring_free(struct jwt_keyring *kr)
{
	if (kr == NULL)
		return;
	for (int i = 0; i < kr->nkeys; i++)
		key_release(&kr->keys[i]);
	EVP_MAC_free(kr->hmac);
	OPENSSL_cleanse(kr, sizeof(*kr));
	free(kr);
}

const char *jwt_keyring_signing_kid(const struct jwt_keyring *kr)
{
	return kr->keys[0].kid;
}

/* Returns a context keyed with k, ready for a new MAC, or NULL. */
static EVP_MAC_CTX *mac_take(const struct jwt_key *k)
{
	EVP_MAC_CTX *ctx = NULL;

	pthread_mutex_lock(&k->pool->lock);
	if (k->pool->n > 0)
		ctx = k->pool->idle[--k->pool->n];
	pthread_mutex_unlock(&k->pool->lock);
	if (ctx == NULL)
		return EVP_MAC_CTX_dup(k->mac);
	/* With no key, init restarts HMAC with the key the context holds. */
	if (EVP_MAC_init(ctx, NULL, 0, NULL) != 1) {
		EVP_MAC_CTX_free(ctx);
		return NULL;
	}
	return ctx;
}

/* Keeps ctx, which mac_take gave for k, for reuse; frees it when the
 * pool is full. */
static void mac_give(const struct jwt_key *k, EVP_MAC_CTX *ctx)
{
	pthread_mutex_lock(&k->pool->lock);
	if (k->pool->n < MAC_IDLE_MAX) {
		k->pool->idle[k->pool->n++] = ctx;
		ctx = NULL;
	}
	pthread_mutex_unlock(&k->pool->lock);
	EVP_MAC_CTX_free(ctx);
}

/* Computes HMAC-SHA256 of data[0..n) with k into out. Returns 0 or -1. */
static int mac_compute(const struct jwt_key *k, const char *data, size_t n,
		       unsigned char out[MAC_LEN])
{
	EVP_MAC_CTX *ctx = mac_take(k);
	size_t outl = 0;

	if (ctx == NULL)
		return -1;
	if (EVP_MAC_update(ctx, (const unsigned char *)data, n) != 1 ||
	    EVP_MAC_final(ctx, out, &outl, MAC_LEN) != 1 || outl != MAC_LEN) {
		EVP_MAC_CTX_free(ctx);
		return -1;
	}
	mac_give(k, ctx);
	return 0;
}

/* --- signing --- */

static int append_b64(struct buf *out, const void *p, size_t n)
{
	char chunk[B64_CHUNK / 3 * 4 + 1];
	const unsigned char *s = p;
	size_t k;

	while (n > 0) {
		k = n < B64_CHUNK ? n : B64_CHUNK;
		b64url_encode(s, k, chunk);
		if (buf_append(out, chunk, b64url_encoded_len(k)) < 0)
			return -1;
		s += k;
		n -= k;
	}
	return 0;
}

/* Adds v under key to o; v is o's afterwards, or freed. */
static int json_add(json_object *o, const char *key, json_object *v)
{
	if (v == NULL || json_object_object_add(o, key, v) != 0) {
		json_object_put(v);
		return -1;
	}
	return 0;
}

static int json_add_str(json_object *o, const char *key, const char *s, size_t size)
{
	return json_add(o, key, json_object_new_string_len(s, (int)strnlen(s, size)));
}

static json_object *roles_to_json(const struct jwt_claims *c)
{
	json_object *a = json_object_new_array();
	json_object *v;

	for (int i = 0; a != NULL && i < c->nroles; i++) {
		v = json_object_new_string_len(c->roles[i],
					       (int)strnlen(c->roles[i], sizeof(c->roles[i])));
		if (v == NULL || json_object_array_add(a, v) != 0) {
			json_object_put(v);
			json_object_put(a);
			a = NULL;
		}
	}
	return a;
}

static json_object *claims_to_json(const struct jwt_claims *c)
{
	json_object *o = json_object_new_object();
	int rc = 0;

	if (o == NULL)
		return NULL;
	rc |= json_add_str(o, "iss", c->iss, sizeof(c->iss));
	rc |= json_add_str(o, "sub", c->sub, sizeof(c->sub));
	rc |= json_add_str(o, "aud", c->aud, sizeof(c->aud));
	rc |= json_add_str(o, "tid", c->tid, sizeof(c->tid));
	rc |= json_add_str(o, "sid", c->sid, sizeof(c->sid));
	rc |= json_add_str(o, "jti", c->jti, sizeof(c->jti));
	rc |= json_add(o, "roles", roles_to_json(c));
	rc |= json_add(o, "iat", json_object_new_int64(c->iat));
	rc |= json_add(o, "nbf", json_object_new_int64(c->nbf));
	rc |= json_add(o, "exp", json_object_new_int64(c->exp));
	if (c->fgp[0] != '\0')
		rc |= json_add_str(o, "fgp", c->fgp, sizeof(c->fgp));
	if (rc != 0) {
		json_object_put(o);
		return NULL;
	}
	return o;
}

/* Appends header.payload.signature for payload to out. */
static int append_token(const struct jwt_key *k, const char *payload, struct buf *out)
{
	char sig[MAC_B64_LEN + 1];
	unsigned char mac[MAC_LEN];
	size_t start = out->len;

	if (buf_append(out, k->header64, k->header64_len) < 0 || buf_puts(out, ".") < 0 ||
	    append_b64(out, payload, strlen(payload)) < 0)
		return -1;
	if (mac_compute(k, out->data + start, out->len - start, mac) < 0)
		return -1;
	b64url_encode(mac, MAC_LEN, sig);
	if (buf_puts(out, ".") < 0 || buf_puts(out, sig) < 0)
		return -1;
	return 0;
}

int jwt_sign(const struct jwt_keyring *kr, const struct jwt_claims *c, struct buf *out)
{
	size_t start = out->len;
	json_object *o;
	const char *payload;
	int rc = -1;

	/* A role count out of range is the caller's bug: refuse, don't guess. */
	if (c->nroles < 0 || c->nroles > JWT_MAX_ROLES)
		return -1;
	o = claims_to_json(c);
	if (o == NULL)
		return -1;
	payload = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
						    JSON_C_TO_STRING_NOSLASHESCAPE);
	if (payload != NULL)
		rc = append_token(&kr->keys[0], payload, out);
	json_object_put(o);
	if (rc < 0 && out->data != NULL) { /* leave out as it was */
		out->len = start;
		out->data[start] = '\0';
	}
	return rc;
}

/* --- verification --- */

struct token_parts {
	const char *header, *payload, *sig;
	size_t header_len, payload_len, sig_len;
};

/* Splits t[0..len) at its two dots; a third dot is an error. */
static enum jwt_result token_split(const char *t, size_t len, struct token_parts *tp)
{
	const char *end = t + len, *d1, *d2;

	d1 = memchr(t, '.', len);
	if (d1 == NULL)
		return JWT_MALFORMED;
	d2 = memchr(d1 + 1, '.', (size_t)(end - d1 - 1));
	if (d2 == NULL || memchr(d2 + 1, '.', (size_t)(end - d2 - 1)) != NULL)
		return JWT_MALFORMED;
	tp->header = t;
	tp->header_len = (size_t)(d1 - t);
	tp->payload = d1 + 1;
	tp->payload_len = (size_t)(d2 - d1 - 1);
	tp->sig = d2 + 1;
	tp->sig_len = (size_t)(end - d2 - 1);
	return JWT_OK;
}

/* Parses s[0..n) as exactly one JSON object, strictly. Returns it (the
 * caller's), or NULL. */
static json_object *json_parse_object(const unsigned char *s, size_t n)
{
	json_tokener *tok;
	json_object *o;

	if (n == 0 || n > INT_MAX)
		return NULL;
	tok = json_tokener_new_ex(JSON_DEPTH);
	if (tok == NULL)
		return NULL;
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
	o = json_tokener_parse_ex(tok, (const char *)s, (int)n);
	if (o != NULL && (json_tokener_get_error(tok) != json_tokener_success ||
			  json_tokener_get_parse_end(tok) != n ||
			  !json_object_is_type(o, json_type_object))) {
		json_object_put(o);
		o = NULL;
	}
	json_tokener_free(tok);
	return o;
}

/* Decodes the base64url part s[0..n) and parses it as a JSON object. */
static json_object *part_decode(const char *s, size_t n, unsigned char dec[DEC_MAX],
				size_t *declen)
{
	if (b64url_decode(s, n, dec, declen) < 0)
		return NULL;
	return json_parse_object(dec, *declen);
}

static int json_string_is(json_object *v, const char *want)
{
	size_t n = strlen(want);

	return json_object_is_type(v, json_type_string) &&
	       (size_t)json_object_get_string_len(v) == n &&
	       memcmp(json_object_get_string(v), want, n) == 0;
}

/* Checks alg and picks the key the header names. */
static enum jwt_result header_check(const struct jwt_keyring *kr, json_object *h,
				    const struct jwt_key **key)
{
	json_object *v;

	if (!json_object_object_get_ex(h, "alg", &v) || !json_string_is(v, "HS256"))
		return JWT_BAD_ALG;
	/* RFC 7515 §4.1.11: extensions we do not understand must not be ignored. */
	if (json_object_object_get_ex(h, "crit", NULL))
		return JWT_MALFORMED;
	if (!json_object_object_get_ex(h, "kid", &v)) {
		*key = &kr->keys[0];
		return JWT_OK;
	}
	if (!json_object_is_type(v, json_type_string))
		return JWT_MALFORMED;
	*key = keyring_find(kr, json_object_get_string(v),
			    (size_t)json_object_get_string_len(v));
	return *key != NULL ? JWT_OK : JWT_UNKNOWN_KID;
}

static enum jwt_result header_verify(const struct jwt_keyring *kr, const struct token_parts *tp,
				     const struct jwt_key **key)
{
	unsigned char dec[DEC_MAX];
	enum jwt_result r;
	json_object *h;
	size_t n;

	/* Our own header, byte for byte: the parser would find the same. */
	for (int i = 0; i < kr->nkeys; i++) {
		const struct jwt_key *k = &kr->keys[i];

		if (tp->header_len == k->header64_len &&
		    memcmp(tp->header, k->header64, k->header64_len) == 0) {
			*key = k;
			return JWT_OK;
		}
	}
	h = part_decode(tp->header, tp->header_len, dec, &n);
	if (h == NULL)
		return JWT_MALFORMED;
	r = header_check(kr, h, key);
	json_object_put(h);
	return r;
}

static enum jwt_result signature_verify(const struct jwt_key *k, const struct token_parts *tp)
{
	unsigned char given[DEC_MAX], want[MAC_LEN];
	size_t n;

	if (b64url_decode(tp->sig, tp->sig_len, given, &n) < 0)
		return JWT_MALFORMED;
	if (n != MAC_LEN)
		return JWT_BAD_SIGNATURE;
	/* Signed input: "header.payload", which ends where the signature starts. */
	if (mac_compute(k, tp->header, (size_t)(tp->sig - 1 - tp->header), want) < 0)
		return JWT_BAD_SIGNATURE;
	return CRYPTO_memcmp(given, want, MAC_LEN) == 0 ? JWT_OK : JWT_BAD_SIGNATURE;
}

/* Verifies everything but the claims. On JWT_OK, *claims is the parsed
 * payload (the caller's) and payload, when not NULL, has its JSON. The
 * payload is decoded only once its MAC has been checked. */
static enum jwt_result token_verify(const struct jwt_keyring *kr, const char *token, size_t len,
				    struct buf *payload, json_object **claims)
{
	unsigned char dec[DEC_MAX];
	const struct jwt_key *key = NULL;
	struct token_parts tp;
	enum jwt_result r;
	size_t n;

	if (token == NULL)
		return JWT_MALFORMED;
	if (len > JWT_MAX_LEN)
		return JWT_TOO_LARGE;
	r = token_split(token, len, &tp);
	if (r == JWT_OK)
		r = header_verify(kr, &tp, &key);
	if (r == JWT_OK)
		r = signature_verify(key, &tp);
	if (r != JWT_OK)
		return r;
	*claims = part_decode(tp.payload, tp.payload_len, dec, &n);
	if (*claims == NULL)
		return JWT_MALFORMED;
	if (payload != NULL)
		buf_append(payload, dec, n);
	return JWT_OK;
}

enum jwt_result jwt_verify_signature(const struct jwt_keyring *kr, const char *token,
				     size_t len, struct buf *payload)
{
	json_object *claims = NULL;
	enum jwt_result r = token_verify(kr, token, len, payload, &claims);

	json_object_put(claims);
	return r;
}

/* --- claims --- */

/* Checks that v is a string of min..max bytes without NUL and copies it
 * to dst (max + 1 bytes) when dst is not NULL. */
static enum jwt_result string_take(json_object *v, size_t min, size_t max, char *dst)
{
	const char *s;
	size_t n;

	if (!json_object_is_type(v, json_type_string))
		return JWT_MALFORMED;
	s = json_object_get_string(v);
	n = (size_t)json_object_get_string_len(v);
	if (n < min || n > max || memchr(s, '\0', n) != NULL)
		return JWT_MALFORMED;
	if (dst != NULL) {
		memcpy(dst, s, n);
		dst[n] = '\0';
	}
	return JWT_OK;
}

static const struct {
	const char *name;
	size_t off, max;
} string_claims[] = {
	{ "sub", offsetof(struct jwt_claims, sub), JWT_ID_MAX },
	{ "tid", offsetof(struct jwt_claims, tid), JWT_ID_MAX },
	{ "sid", offsetof(struct jwt_claims, sid), JWT_ID_MAX },
	{ "jti", offsetof(struct jwt_claims, jti), JWT_ID_MAX },
	{ "iss", offsetof(struct jwt_claims, iss), JWT_STR_MAX },
};

static const struct {
	const char *name;
	size_t off;
} time_claims[] = {
	{ "iat", offsetof(struct jwt_claims, iat) },
	{ "nbf", offsetof(struct jwt_claims, nbf) },
	{ "exp", offsetof(struct jwt_claims, exp) },
};

static enum jwt_result read_strings(json_object *o, struct jwt_claims *c)
{
	enum jwt_result r;
	json_object *v;

	for (size_t i = 0; i < sizeof(string_claims) / sizeof(string_claims[0]); i++) {
		if (!json_object_object_get_ex(o, string_claims[i].name, &v))
			return JWT_MISSING_CLAIM;
		r = string_take(v, 0, string_claims[i].max, (char *)c + string_claims[i].off);
		if (r != JWT_OK)
			return r;
	}
	if (json_object_object_get_ex(o, "fgp", &v))
		return string_take(v, 0, FGP_MAX, c->fgp);
	return JWT_OK;
}

static enum jwt_result read_times(json_object *o, struct jwt_claims *c)
{
	json_object *v;
	long long t;

	for (size_t i = 0; i < sizeof(time_claims) / sizeof(time_claims[0]); i++) {
		if (!json_object_object_get_ex(o, time_claims[i].name, &v))
			return JWT_MISSING_CLAIM;
		if (!json_object_is_type(v, json_type_int))
			return JWT_MALFORMED;
		t = (long long)json_object_get_int64(v);
		memcpy((char *)c + time_claims[i].off, &t, sizeof(t));
	}
	return JWT_OK;
}

static enum jwt_result read_roles(json_object *o, struct jwt_claims *c)
{
	enum jwt_result r;
	json_object *v;
	size_t n;

	if (!json_object_object_get_ex(o, "roles", &v))
		return JWT_MISSING_CLAIM;
	if (!json_object_is_type(v, json_type_array))
		return JWT_MALFORMED;
	n = json_object_array_length(v);
	if (n > JWT_MAX_ROLES)
		return JWT_MALFORMED;
	for (size_t i = 0; i < n; i++) {
		r = string_take(json_object_array_get_idx(v, i), 1, JWT_ROLE_MAX, c->roles[i]);
		if (r != JWT_OK)
			return r;
	}
	c->nroles = (int)n;
	return JWT_OK;
}

/* aud is a string or an array of strings; one of them must be want, which
 * is then copied to c->aud. */
static enum jwt_result read_audience(json_object *o, const char *want, struct jwt_claims *c)
{
	enum jwt_result r = JWT_BAD_AUDIENCE;
	json_object *v, *e;
	size_t n = 1;

	if (!json_object_object_get_ex(o, "aud", &v))
		return JWT_MISSING_CLAIM;
	if (json_object_is_type(v, json_type_array))
		n = json_object_array_length(v);
	for (size_t i = 0; i < n; i++) {
		e = json_object_is_type(v, json_type_array) ? json_object_array_get_idx(v, i) : v;
		if (string_take(e, 0, JWT_STR_MAX, NULL) != JWT_OK)
			return JWT_MALFORMED;
		if (want != NULL && json_string_is(e, want))
			r = JWT_OK;
	}
	if (r == JWT_OK) /* want matched a string of at most JWT_STR_MAX bytes */
		memcpy(c->aud, want, strlen(want) + 1);
	return r;
}

static long long sat_add(long long a, long long b)
{
	if (b > 0 && a > LLONG_MAX - b)
		return LLONG_MAX;
	if (b < 0 && a < LLONG_MIN - b)
		return LLONG_MIN;
	return a + b;
}

static long long sat_sub(long long a, long long b)
{
	if (b < 0 && a > LLONG_MAX + b)
		return LLONG_MAX;
	if (b > 0 && a < LLONG_MIN + b)
		return LLONG_MIN;
	return a - b;
}

static enum jwt_result check_times(const struct jwt_claims *c, long long leeway, long long now)
{
	if (now >= sat_add(c->exp, leeway))
		return JWT_EXPIRED;
	if (now < sat_sub(c->nbf, leeway) || now < sat_sub(c->iat, leeway))
		return JWT_NOT_YET_VALID;
	return JWT_OK;
}

/* Reads every claim into c and checks them against p, all but the clock. */
static enum jwt_result claims_check(json_object *o, const struct jwt_policy *p, struct jwt_claims *c)
{
	enum jwt_result r;

	r = read_strings(o, c);
	if (r == JWT_OK)
		r = read_times(o, c);
	if (r == JWT_OK)
		r = read_roles(o, c);
	if (r == JWT_OK && (p->iss == NULL || strcmp(c->iss, p->iss) != 0))
		r = JWT_BAD_ISSUER;
	if (r == JWT_OK)
		r = read_audience(o, p->aud, c);
	return r;
}

enum jwt_result jwt_verify(const struct jwt_keyring *kr, const char *token, size_t len,
			   const struct jwt_policy *p, long long now, struct jwt_claims *out)
{
	struct jwt_claims c;
	json_object *o = NULL;
	enum jwt_result r;

	memset(&c, 0, sizeof(c));
	/* a token this thread verified before: the same bytes under the same
	 * keyring and policy carry the same claims; only the clock moved */
	if (token != NULL && len <= JWT_MAX_LEN &&
	    token_memo_get(kr->serial, p->iss, p->aud, token, len, &c)) {
		r = check_times(&c, p->leeway_s, now);
	} else {
		r = token_verify(kr, token, len, NULL, &o);
		if (r == JWT_OK)
			r = claims_check(o, p, &c);
		json_object_put(o);
		if (r == JWT_OK)
			token_memo_put(kr->serial, p->iss, p->aud, token, len, &c);
		if (r == JWT_OK)
			r = check_times(&c, p->leeway_s, now);
	}
	if (r == JWT_OK)
		*out = c;
	return r;
}

const char *jwt_result_str(enum jwt_result r)
{
	switch (r) {
	case JWT_OK: return "ok";
	case JWT_MALFORMED: return "malformed token";
	case JWT_TOO_LARGE: return "token too large";
	case JWT_BAD_ALG: return "algorithm not allowed";
	case JWT_UNKNOWN_KID: return "unknown key id";
	case JWT_BAD_SIGNATURE: return "bad signature";
	case JWT_EXPIRED: return "token expired";
	case JWT_NOT_YET_VALID: return "token not yet valid";
	case JWT_BAD_ISSUER: return "wrong issuer";
	case JWT_BAD_AUDIENCE: return "wrong audience";
	case JWT_MISSING_CLAIM: return "missing claim";
	}
	return "unknown result";
}
