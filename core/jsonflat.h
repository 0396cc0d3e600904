/* jsonflat: a fast, strict decoder for the flat JSON objects this program
 * writes itself (cache entries: a session, a device), where json-c's
 * general parser (allocations, a hash table, a locale switch per parse)
 * was a tenth of a cached read.
 *
 * It accepts exactly one shape: one object whose members are the named
 * fields, each once, strings or integers as declared, and nothing else.
 * Anything it does not accept (another member, a duplicate, a float, a
 * null, nesting, bad syntax) is refused, and the caller decodes with
 * json-c instead: the fast path never decides differently from the general
 * one, it only answers first. Pure; leaf module. */
#ifndef FCGI_SSE_JSONFLAT_H
#define FCGI_SSE_JSONFLAT_H

#include <stddef.h>

enum jflat_type { JFLAT_STR, JFLAT_INT };

struct jflat_field {
	const char *name;
	enum jflat_type type;
	void *dst;  /* char[cap] for JFLAT_STR, long long for JFLAT_INT */
	size_t cap; /* JFLAT_STR: bytes with the NUL */
};

#define JFLAT_FIELDS_MAX 32

/* Decodes p[0..n) into the nf fields (nf <= JFLAT_FIELDS_MAX). Returns 0
 * when every field was present once with its type (strings unescaped,
 * without NUL, fitting cap), or -1 (the destinations may then hold
 * partial results). */
int jflat_decode(const char *p, size_t n, const struct jflat_field *f, int nf);

#endif
