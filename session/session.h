/* session: identifiers of server-side sessions (auth sessions and one-time
 * stream sessions). 128 random bits, base64url, so ids cannot be guessed
 * and are safe in a path or a query string.
 *
 * The session store and its read-through cache join this module with the
 * auth issue (#3). */
#ifndef FCGI_SSE_SESSION_H
#define FCGI_SSE_SESSION_H

#define SESSION_ID_LEN 22 /* 16 bytes in unpadded base64url */

/* Writes a new random id and a NUL into out (SESSION_ID_LEN + 1 bytes).
 * Returns 0, or -1 when the random source failed (out is then ""). */
int session_id_new(char *out);

/* Returns 1 if s has the exact shape of an id from session_id_new. Pure. */
int session_id_valid(const char *s);

#endif
