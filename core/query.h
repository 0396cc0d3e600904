/* query: reading parameters from a URL query string
 * ("a=1&b=x%20y&c"). Pure. '+' is a space (form encoding), %XX is
 * decoded; a malformed escape or a decoded NUL makes the query invalid. */
#ifndef FCGI_SSE_QUERY_H
#define FCGI_SSE_QUERY_H

#include "buf.h"

/* Finds the first parameter called name. Returns 1 and puts its decoded
 * value in out (replacing its contents; "" for "c" or "c="), 0 when absent,
 * -1 when the query is malformed anywhere. */
int query_get(const char *query, const char *name, struct buf *out);

/* Returns 1 if every parameter name in query is one of allowed
 * (NULL-terminated), 0 otherwise (*unknown points at the first other name,
 * not NUL-terminated, *unknown_len its length), -1 when malformed. */
int query_only(const char *query, const char *const *allowed, const char **unknown,
	       size_t *unknown_len);

#endif
