/* auth: credential primitives shared by every protected route. Pure.
 *
 * The Authorization header parser, the constant-time secret comparison,
 * roles and the fingerprint hash. JWTs are in jwt.h, passwords in
 * password.h. */
#ifndef FCGI_SSE_AUTH_H
#define FCGI_SSE_AUTH_H

#include <stddef.h>

enum auth_bearer {
	AUTH_BEARER_OK,
	AUTH_BEARER_MISSING,   /* no header: 401 auth.missing_token */
	AUTH_BEARER_MALFORMED, /* not "Bearer <token68>": 401 auth.invalid_token */
};

#define AUTH_TOKEN_MAX 8192

/* Parses an Authorization header value. On AUTH_BEARER_OK, *tok and *len
 * delimit the token inside header (not copied). The scheme is matched
 * case-insensitively; the token must be RFC 7235 token68 and at most
 * AUTH_TOKEN_MAX bytes. */
enum auth_bearer auth_bearer_parse(const char *header, const char **tok, size_t *len);

/* Compares a presented secret with the expected one in time that depends
 * on neither content nor length (both are hashed first). Returns 1 when
 * equal; an empty expected secret never matches. */
int auth_secret_equal(const char *given, const char *expected);

/* Roles, each including the ones below it: viewer (read), operator
 * (viewer + device writes + telemetry), admin (operator + users, audit,
 * sessions of others). */
#define AUTH_ROLE_VIEWER 1
#define AUTH_ROLE_OPERATOR 2
#define AUTH_ROLE_ADMIN 3

/* Returns the level of a role name (AUTH_ROLE_*), or 0 for an unknown one. */
int auth_role_level(const char *role);

/* Name of the fingerprint cookie (API.md §3). */
#define AUTH_FGP_COOKIE "__Host-fgp"
#define AUTH_FGP_HEX_LEN 64

/* Writes the lowercase SHA-256 hex of cookie[0..len) and a NUL to hex
 * (AUTH_FGP_HEX_LEN + 1 bytes): the token's `fgp` claim. */
void auth_fingerprint_hash(const char *cookie, size_t len, char *hex);

/* 1 when the cookie value (len bytes) hashes to want (a token's fgp
 * claim, AUTH_FGP_HEX_LEN hex digits), compared in constant time. The last
 * cookie a thread checked is remembered with its hash, so a client's next
 * request costs a compare instead of a SHA-256. */
int auth_fingerprint_matches(const char *cookie, size_t len, const char *want);

#endif
