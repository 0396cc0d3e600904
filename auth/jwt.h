/* jwt: JSON Web Tokens, HS256 only (RFC 7519, RFC 7515), with a keyring
 * for rotation. Leaf module: OpenSSL and json-c inside, nothing from the
 * application.
 *
 * Signing uses the keyring's first key and names it in the `kid` header.
 * Verification pins alg to "HS256" (`none` and every other alg are
 * refused), selects the key by `kid` (a token without `kid` is checked
 * against the signing key only), compares the MAC in constant time, then
 * checks the claims. */
#ifndef FCGI_SSE_JWT_H
#define FCGI_SSE_JWT_H

#include <stddef.h>

#include "../core/buf.h"

#define JWT_MAX_LEN 4096   /* longer tokens are refused unparsed */
#define JWT_KEY_MIN 32     /* bytes of secret per key, at least */
#define JWT_KEY_MAX 128
#define JWT_KID_MAX 32
#define JWT_MAX_KEYS 8
#define JWT_MAX_ROLES 8
#define JWT_ROLE_MAX 16
#define JWT_ID_MAX 64      /* sub, tid, sid, jti */
#define JWT_STR_MAX 128    /* iss, aud */

enum jwt_result {
	JWT_OK,
	JWT_MALFORMED,        /* not three base64url parts of JSON objects, or a claim of the wrong type */
	JWT_TOO_LARGE,        /* longer than JWT_MAX_LEN */
	JWT_BAD_ALG,          /* alg is not exactly "HS256" */
	JWT_UNKNOWN_KID,      /* no key with that kid */
	JWT_BAD_SIGNATURE,
	JWT_EXPIRED,          /* now >= exp + leeway */
	JWT_NOT_YET_VALID,    /* now < nbf - leeway (or iat in the future beyond leeway) */
	JWT_BAD_ISSUER,
	JWT_BAD_AUDIENCE,
	JWT_MISSING_CLAIM,    /* a required claim is absent */
};

struct jwt_keyring;

struct jwt_claims {
	char sub[JWT_ID_MAX + 1];  /* user id */
	char tid[JWT_ID_MAX + 1];  /* tenant id */
	char sid[JWT_ID_MAX + 1];  /* auth session id */
	char jti[JWT_ID_MAX + 1];  /* token id */
	char iss[JWT_STR_MAX + 1];
	char aud[JWT_STR_MAX + 1];
	char fgp[65];              /* SHA-256 hex of the fingerprint cookie; "" when absent */
	char roles[JWT_MAX_ROLES][JWT_ROLE_MAX + 1];
	int nroles;
	long long iat, nbf, exp;   /* Unix seconds */
};

struct jwt_policy {
	const char *iss;     /* required issuer */
	const char *aud;     /* required audience (aud may be a string or an array holding it) */
	long long leeway_s;  /* clock skew allowed on exp, nbf and iat */
};

/* Parses "kid:secret,kid:secret" (secrets base64url, padding optional,
 * each decoding to JWT_KEY_MIN..JWT_KEY_MAX bytes; kids 1..JWT_KID_MAX of
 * [A-Za-z0-9_-], distinct; at most JWT_MAX_KEYS). The first key signs.
 * Returns a keyring, or NULL with a message in err (never a secret). */
struct jwt_keyring *jwt_keyring_parse(const char *spec, struct buf *err);

/* A keyring with one key of random bytes named kid (for processes started
 * without configured keys). Returns NULL when memory or randomness failed. */
struct jwt_keyring *jwt_keyring_random(const char *kid);

/* Frees the keyring and wipes its secrets. NULL is fine. */
void jwt_keyring_free(struct jwt_keyring *kr);

/* Returns the kid of the signing key; static for the keyring's life. */
const char *jwt_keyring_signing_kid(const struct jwt_keyring *kr);

/* Appends a signed token for c (header {"alg":"HS256","typ":"JWT","kid":...};
 * payload with every claim of c, roles as an array, fgp only when set, aud
 * as a string) to out. Returns 0, or -1 when memory ran out. */
int jwt_sign(const struct jwt_keyring *kr, const struct jwt_claims *c, struct buf *out);

/* Checks token[0..len): size, structure, alg, kid and signature only. On
 * JWT_OK, appends the decoded payload JSON to payload (may be NULL).
 * Thread-safe: a keyring may be shared by all threads. */
enum jwt_result jwt_verify_signature(const struct jwt_keyring *kr, const char *token,
				     size_t len, struct buf *payload);

/* jwt_verify_signature, then the claims: sub, tid, sid, jti, iss, aud,
 * iat, nbf, exp and roles are required with the right JSON types (fgp is
 * optional), iss and aud must match p, time checks against now with
 * p->leeway_s. On JWT_OK fills *out. */
enum jwt_result jwt_verify(const struct jwt_keyring *kr, const char *token, size_t len,
			   const struct jwt_policy *p, long long now, struct jwt_claims *out);

/* Returns a short fixed description of r ("bad signature"); static. */
const char *jwt_result_str(enum jwt_result r);

#endif
