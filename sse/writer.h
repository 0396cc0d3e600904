/* writer: one stream's output on a non-blocking FastCGI connection.
 *
 * SSE text goes out as FCGI_STDOUT records. What the socket does not take
 * at once waits in a buffer of the writer's (bounded: past the bound the
 * stream is too slow and must be dropped), to be written when the socket is
 * writable. Text may also be queued: everything queued during one pass of
 * the caller's event loop goes out as one record in one write when the pass
 * commits it, so a burst of events costs a stream one record and one
 * system call, while a lone event goes out at the end of its own pass, no
 * later. Every write that does not queue first commits what is queued, so
 * the order of the bytes is the order of the calls. No epoll inside: the
 * caller polls for writability while writer_wants_out() is true. */
#ifndef FCGI_SSE_WRITER_H
#define FCGI_SSE_WRITER_H

#include <stddef.h>
#include <sys/uio.h>

#include "../core/buf.h"

#define WRITER_ERROR (-1) /* the connection failed */
#define WRITER_FULL (-2)  /* the buffer bound would be passed: too slow */

struct writer {
	int fd;
	int request_id;
	size_t max;             /* bound on unsent bytes (pending + queued) */
	char *pending;          /* framed bytes not yet taken by the socket */
	size_t pending_len, pending_cap;
	struct buf queued;      /* SSE text queued this pass, not yet framed */
	long long bytes;        /* everything written or buffered, framed */
};

/* Sets w up for fd; head (already framed, e.g. the response head as a
 * STDOUT record) is buffered, to go out with the first flush. Returns 0 or
 * -1 when out of memory. */
int writer_init(struct writer *w, int fd, int request_id, size_t max, const void *head,
		size_t head_len);

/* Frees the buffers (the fd stays open). */
void writer_release(struct writer *w);

/* Sends iov (already framed), after anything queued. Returns 0,
 * WRITER_ERROR or WRITER_FULL. */
int writer_iov(struct writer *w, struct iovec *iov, int cnt);

/* Sends SSE text now as STDOUT records, after anything queued. Returns as
 * writer_iov. */
int writer_text(struct writer *w, const char *p, size_t n);

/* Queues SSE text for writer_commit. Returns 0, WRITER_FULL (the bound),
 * or WRITER_ERROR when out of memory. */
int writer_queue(struct writer *w, const char *p, size_t n);

/* 1 when text is queued. */
int writer_has_queued(const struct writer *w);

/* Sends what is queued as one record (or several when over 65,535 bytes)
 * in one write. Returns as writer_iov. */
int writer_commit(struct writer *w);

/* Writes what is buffered, as far as the socket takes it. Returns 0 or
 * WRITER_ERROR. */
int writer_flush(struct writer *w);

/* 1 while bytes wait for the socket to be writable. */
int writer_wants_out(const struct writer *w);

/* The unsent bytes, pending and queued (what max bounds). */
size_t writer_buffered(const struct writer *w);

#endif
