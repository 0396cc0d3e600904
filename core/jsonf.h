/* jsonf: typed fields out of a json-c object, for decoding values this
 * program wrote (cache entries) into fixed-size structs. Leaf module. */
#ifndef FCGI_SSE_JSONF_H
#define FCGI_SSE_JSONF_H

#include <json-c/json.h>
#include <stddef.h>

/* Copies string member name of o into dst (cap bytes with the NUL).
 * Returns 0, or -1 when it is absent, not a string, holds a NUL or does
 * not fit. */
int jsonf_str(struct json_object *o, const char *name, char *dst, size_t cap);

/* Copies integer member name of o into *dst. 0, or -1 when absent or not
 * an integer. */
int jsonf_int(struct json_object *o, const char *name, long long *dst);

#endif
