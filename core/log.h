/* log: structured logs, one JSON object per line.
 *
 * Every line has "ts" (RFC 3339, ms), "level" and "msg", then the caller's
 * fields. Values are escaped by the JSON writer, so request data cannot
 * break a line. Callers must never pass secrets or tokens. */
#ifndef FCGI_SSE_LOG_H
#define FCGI_SSE_LOG_H

#include "config.h" /* enum log_level */

struct json_object;

struct logger {
	int level; /* least severe level written */
	int fd;    /* usually 2 */
};

/* Returns 1 if a line at level would be written: check before building
 * fields. */
int log_enabled(const struct logger *lg, int level);

/* Writes one line with a single write(2). fields is a JSON object or NULL;
 * ownership passes to the call (it is freed even when nothing is written). */
void log_json(const struct logger *lg, int level, const char *msg,
	      struct json_object *fields);

/* Writes a line whose only extra field is "detail": text. */
void log_text(const struct logger *lg, int level, const char *msg,
	      const char *text);

/* Formats one line into out without writing it (used by log_json; exposed
 * for tests). now may be NULL for the current time. Returns 0 or -1. */
int log_format(struct buf *out, int level, const char *msg,
	       struct json_object *fields, const struct timespec *now);

#endif
