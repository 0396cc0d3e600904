/* reqid: request ids. Pure except for the random source. */
#ifndef FCGI_SSE_REQID_H
#define FCGI_SSE_REQID_H

#include <stddef.h>

#define REQID_GENERATED_LEN 32

/* Returns 1 if s is a sane client-supplied request id: 1..64 characters of
 * [A-Za-z0-9._:-]. Anything else is replaced by a generated id. */
int reqid_is_sane(const char *s);

/* Writes a new id (128 bits, lowercase hex) and a NUL into out, which holds
 * REQID_GENERATED_LEN + 1 bytes: unique, random-looking, not secret (a
 * per-thread generator seeded from the OS's). Returns 0, or -1 when the
 * random source failed. */
int reqid_generate(char *out);

#endif
