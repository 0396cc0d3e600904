/* token_memo: what this thread last verified, so that a client's next
 * request with the same access token skips the MAC and the JSON parse.
 *
 * An entry is the token's exact bytes with the claims read from it, the
 * keyring (by serial) and the issuer and audience it was checked against.
 * Only tokens that passed every check but the clock are stored; the
 * caller checks the times on every hit. Lookups compare the whole token in
 * constant time, so a hit tells nothing about a stored token that the
 * caller did not already hold. Per thread, so no locks; a few slots per
 * thread, replaced by position (the token's last bytes pick the slot). */
#ifndef FCGI_SSE_TOKEN_MEMO_H
#define FCGI_SSE_TOKEN_MEMO_H

#include <stddef.h>

#include "jwt.h"

#define TOKEN_MEMO_SLOTS 16

/* Returns 1 and fills *out when this thread stored token (len bytes) for
 * serial, iss and aud; 0 otherwise. */
int token_memo_get(unsigned long long serial, const char *iss, const char *aud, const char *token,
		   size_t len, struct jwt_claims *out);

/* Stores token's claims (silently nothing when out of memory or when iss or
 * aud is too long to keep). */
void token_memo_put(unsigned long long serial, const char *iss, const char *aud, const char *token,
		    size_t len, const struct jwt_claims *c);

#endif
