/* auth: credential primitives shared by every protected route. Pure.
 *
 * Today: the Authorization header parser and the constant-time secret
 * comparison. JWT issue/verify and password hashing join this module with
 * the auth issue (#3). */
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

#endif
