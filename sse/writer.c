#include "writer.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "../core/fcgi_record.h"

/* iovecs of one commit: up to this many records in one sendmsg */
#define RECORDS_PER_WRITE 64

int writer_init(struct writer *w, int fd, int request_id, size_t max, const void *head,
		size_t head_len)
{
	memset(w, 0, sizeof(*w));
	w->fd = fd;
	w->request_id = request_id;
	w->max = max;
	if (head_len == 0)
		return 0;
	if ((w->pending = malloc(head_len)) == NULL)
		return -1;
	memcpy(w->pending, head, head_len);
	w->pending_len = w->pending_cap = head_len;
	w->bytes = (long long)head_len;
	return 0;
}

void writer_release(struct writer *w)
{
	free(w->pending);
	w->pending = NULL;
	w->pending_len = w->pending_cap = 0;
	buf_release(&w->queued);
}

static int reserve(struct writer *w, size_t extra)
{
	size_t need = w->pending_len + extra, cap;
	char *p;

	if (need > w->max)
		return WRITER_FULL;
	if (need <= w->pending_cap)
		return 0;
	cap = w->pending_cap ? w->pending_cap : 1024;
	while (cap < need)
		cap *= 2;
	if (cap > w->max)
		cap = w->max;
	if ((p = realloc(w->pending, cap)) == NULL)
		return WRITER_FULL;
	w->pending = p;
	w->pending_cap = cap;
	return 0;
}

/* Straight to the socket when nothing is pending; the rest into pending. */
static int put(struct writer *w, struct iovec *iov, int cnt)
{
	size_t total = 0, done = 0;
	int rc;

	for (int i = 0; i < cnt; i++)
		total += iov[i].iov_len;
	if (w->pending_len == 0) {
		/* sendmsg for MSG_NOSIGNAL: a gone peer is EPIPE here, whatever
		 * the process does with SIGPIPE */
		struct msghdr mh = { .msg_iov = iov, .msg_iovlen = (size_t)cnt };
		ssize_t n;
		do
			n = sendmsg(w->fd, &mh, MSG_NOSIGNAL);
		while (n < 0 && errno == EINTR);
		if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)
			return WRITER_ERROR;
		done = n > 0 ? (size_t)n : 0;
	}
	w->bytes += (long long)total;
	if (done == total)
		return 0;
	if ((rc = reserve(w, total - done)) < 0)
		return rc;
	for (int i = 0; i < cnt; i++) {
		size_t len = iov[i].iov_len;
		const char *p = iov[i].iov_base;
		if (done >= len) {
			done -= len;
			continue;
		}
		memcpy(w->pending + w->pending_len, p + done, len - done);
		w->pending_len += len - done;
		done = 0;
	}
	return 0;
}

/* p[0..n) as STDOUT records, RECORDS_PER_WRITE to a write. */
static int put_text(struct writer *w, const char *p, size_t n)
{
	static const char zeros[8];
	unsigned char hdr[RECORDS_PER_WRITE][FCGI_RECORD_HEADER];
	struct iovec iov[RECORDS_PER_WRITE * 3];
	int rc;

	while (n > 0) {
		int cnt = 0;
		for (int r = 0; r < RECORDS_PER_WRITE && n > 0; r++) {
			size_t chunk = n > FCGI_RECORD_MAX_CONTENT ? FCGI_RECORD_MAX_CONTENT : n;
			size_t pad = fcgi_record_header(hdr[r], FCGI_TYPE_STDOUT, w->request_id, chunk);
			iov[cnt++] = (struct iovec){ hdr[r], FCGI_RECORD_HEADER };
			iov[cnt++] = (struct iovec){ (void *)p, chunk };
			if (pad)
				iov[cnt++] = (struct iovec){ (void *)zeros, pad };
			p += chunk;
			n -= chunk;
		}
		if ((rc = put(w, iov, cnt)) < 0)
			return rc;
	}
	return 0;
}

int writer_commit(struct writer *w)
{
	int rc;

	if (w->queued.len == 0)
		return 0;
	rc = put_text(w, w->queued.data, w->queued.len);
	buf_reset(&w->queued);
	return rc;
}

int writer_iov(struct writer *w, struct iovec *iov, int cnt)
{
	int rc = writer_commit(w);

	return rc < 0 ? rc : put(w, iov, cnt);
}

int writer_text(struct writer *w, const char *p, size_t n)
{
	int rc = writer_commit(w);

	return rc < 0 ? rc : put_text(w, p, n);
}

int writer_queue(struct writer *w, const char *p, size_t n)
{
	/* framing adds 16 bytes at most per record: bound the text the same */
	if (w->pending_len + w->queued.len + n > w->max)
		return WRITER_FULL;
	return buf_append(&w->queued, p, n) == 0 ? 0 : WRITER_ERROR;
}

int writer_has_queued(const struct writer *w)
{
	return w->queued.len > 0;
}

int writer_flush(struct writer *w)
{
	while (w->pending_len > 0) {
		ssize_t n = send(w->fd, w->pending, w->pending_len, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		if (n <= 0)
			return WRITER_ERROR;
		memmove(w->pending, w->pending + n, w->pending_len - (size_t)n);
		w->pending_len -= (size_t)n;
	}
	if (w->pending_len == 0 && w->pending != NULL) {
		/* idle streams hold no buffer: thousands of them add up */
		free(w->pending);
		w->pending = NULL;
		w->pending_cap = 0;
	}
	return 0;
}

int writer_wants_out(const struct writer *w)
{
	return w->pending_len > 0;
}

size_t writer_buffered(const struct writer *w)
{
	return w->pending_len + w->queued.len;
}
