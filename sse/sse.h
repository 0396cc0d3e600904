/* sse: the Server-Sent Events frame encoder (WHATWG HTML §9.2). Pure.
 *
 * Fields that the protocol cannot carry safely are refused rather than
 * mangled: an id or event name containing CR, LF or NUL, or an empty event
 * name. Data is split at every LF, CR and CRLF into several `data:` lines,
 * so a payload can never inject fields. */
#ifndef FCGI_SSE_SSE_H
#define FCGI_SSE_SSE_H

#include <stddef.h>

#include "../core/buf.h"

/* Appends "retry: <ms>\n\n". Returns 0, or -1 when memory ran out. */
int sse_retry(struct buf *out, long long ms);

/* Appends one event: "id:" (when id is not NULL), "event:", one "data:"
 * line per line of data[0..len), then a blank line. Returns 0, or -1 when
 * id or event is unsafe or memory ran out (out is then unchanged). */
int sse_event(struct buf *out, const char *id, const char *event,
	      const char *data, size_t len);

/* Appends a comment line ": text\n\n"; same rules for text as for data on
 * one line (CR and LF are refused). Returns 0 or -1. */
int sse_comment(struct buf *out, const char *text);

/* Returns 1 if s is usable as an event name or id (no CR, LF, NUL; event
 * names also non-empty and at most 64 bytes). */
int sse_name_ok(const char *s);

#endif
