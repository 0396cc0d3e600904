/* cookie: reading one cookie from a Cookie request header (RFC 6265
 * §5.4 form "a=b; c=d"). Pure. */
#ifndef FCGI_SSE_COOKIE_H
#define FCGI_SSE_COOKIE_H

#include <stddef.h>

/* Finds the first cookie called name in header (may be NULL). Returns 1 and
 * points *val and *len into header (an optional pair of double quotes removed),
 * or 0 when absent. */
int cookie_find(const char *header, const char *name, const char **val, size_t *len);

#endif
