/* buf: a growable byte buffer, always NUL-terminated.
 *
 * Leaf module: depends on libc only. A buffer that failed to grow keeps its
 * old contents and sets `oom`; later appends are no-ops, so callers may check
 * once at the end instead of after every append. */
#ifndef FCGI_SSE_BUF_H
#define FCGI_SSE_BUF_H

#include <stdarg.h>
#include <stddef.h>

struct buf {
	char *data; /* NUL-terminated; NULL until the first append */
	size_t len;
	size_t _cap;
	int oom; /* 1 once an allocation failed */
};

#define BUF_INIT { NULL, 0, 0, 0 }

/* Appends n bytes. Returns 0, or -1 (and sets oom) when memory ran out. */
int buf_append(struct buf *b, const void *p, size_t n);

/* Appends a NUL-terminated string. Same result as buf_append. */
int buf_puts(struct buf *b, const char *s);

/* Appends printf-formatted text. Same result as buf_append. */
int buf_printf(struct buf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Empties the buffer but keeps its memory for reuse; clears oom. */
void buf_reset(struct buf *b);

/* Frees the memory; the buffer is empty and reusable afterwards. */
void buf_release(struct buf *b);

/* Writes the whole buffer to fd (a blocking descriptor), retrying on EINTR
 * and short writes. Returns 0, or -1 when write failed or the buffer is
 * out of memory (nothing, or part, was written). */
int buf_write_all(const struct buf *b, int fd);

/* Returns the contents as a string ("" when empty); valid until the next
 * append, reset or release. */
const char *buf_str(const struct buf *b);

#endif
