/* floor: the least a FastCGI fan-out responder can do, as the floor under
 * fcgi_sse's figures behind the same lighttpd settings (issue #10).
 *
 * One thread, one epoll loop, a unix socket. A GET whose URI holds
 * "/events/stream" stays open as a stream (head, `retry:`, `event:
 * connected`); a POST whose URI ends in "/events" takes the body's "data"
 * value and writes it to every open stream as one event (`id: <n>-0`,
 * `event:` the body's type), then answers 202 {"id":"<n>-0"}; a POST to
 * ".../auth/login" answers a token and a fingerprint cookie so that
 * bench/sse.sh logs in as with fcgi_sse; anything else is 404. No auth, no
 * Redis, no history, no filters: what remains is FastCGI and the front
 * server. Streams are written with sse/writer, as fcgi_sse's hub does.
 *
 * usage: floor SOCKET_PATH */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "../core/buf.h"
#include "../core/fcgi_record.h"
#include "../sse/writer.h"

#define MAX_BUFFER (256 * 1024)

struct conn {
	int fd;
	int request_id;
	struct buf in;          /* bytes read, not yet parsed */
	struct buf params, body;
	int params_done, stdin_done;
	int stream;             /* held open as a stream */
	int dead;               /* closed; freed after this epoll batch */
	struct conn *dnext;
	struct writer w;
	struct conn *next, *prev; /* streams */
};

static int ep;
static struct conn *streams;
static struct conn *dead;  /* closed this batch: later events may name them */
static long long next_id = 1;

/* Closes c now; its memory goes after the epoll batch (free_dead). */
static void conn_free(struct conn *c)
{
	if (c->dead)
		return;
	c->dead = 1;
	if (c->stream) {
		if (c->prev)
			c->prev->next = c->next;
		else
			streams = c->next;
		if (c->next)
			c->next->prev = c->prev;
		writer_release(&c->w);
	}
	close(c->fd);
	c->dnext = dead;
	dead = c;
}

static void free_dead(void)
{
	while (dead != NULL) {
		struct conn *c = dead;
		dead = c->dnext;
		buf_release(&c->in);
		buf_release(&c->params);
		buf_release(&c->body);
		free(c);
	}
}

/* The value of param name in FastCGI name-value pairs, or NULL. */
static const char *param(const struct buf *p, const char *name, size_t *vlen)
{
	const unsigned char *s = (const unsigned char *)p->data, *end = s + p->len;
	size_t want = strlen(name);

	while (s < end) {
		size_t len[2];
		for (int i = 0; i < 2; i++) {
			if (s >= end)
				return NULL;
			if (*s & 0x80) {
				if (end - s < 4)
					return NULL;
				len[i] = ((size_t)(s[0] & 0x7f) << 24) | ((size_t)s[1] << 16) | ((size_t)s[2] << 8) | s[3];
				s += 4;
			} else {
				len[i] = *s++;
			}
		}
		if ((size_t)(end - s) < len[0] + len[1])
			return NULL;
		if (len[0] == want && memcmp(s, name, want) == 0) {
			*vlen = len[1];
			return (const char *)s + len[0];
		}
		s += len[0] + len[1];
	}
	return NULL;
}

/* A whole response (head and body), then the end of the request. */
static void respond(struct conn *c, const char *head_and_body)
{
	struct buf out = BUF_INIT;

	fcgi_record_stdout(&out, c->request_id, head_and_body, strlen(head_and_body));
	fcgi_record_end(&out, c->request_id, 0);
	if (buf_write_all(&out, c->fd) < 0)
		perror("floor: write");
	buf_release(&out);
}

/* The JSON value after "key": in s, up to the body's last '}' for data. */
static int field(const char *s, size_t n, const char *key, const char **v, size_t *vlen)
{
	char pat[32];
	const char *p;

	snprintf(pat, sizeof(pat), "\"%s\":", key);
	if ((p = memmem(s, n, pat, strlen(pat))) == NULL)
		return -1;
	p += strlen(pat);
	if (strcmp(key, "data") == 0) {
		const char *last = s + n;
		while (last > p && last[-1] != '}')
			last--;
		if (last <= p)
			return -1;
		*v = p;
		*vlen = (size_t)(last - 1 - p); /* the body's own closing brace */
		return 0;
	}
	if (*p != '"')
		return -1;
	*v = ++p;
	while (p < s + n && *p != '"')
		p++;
	*vlen = (size_t)(p - *v);
	return 0;
}

static void publish(struct conn *c)
{
	const char *data, *type;
	size_t dlen, tlen;
	char id[32], ans[160];
	struct buf f = BUF_INIT;
	struct conn *s, *next;

	if (field(c->body.data, c->body.len, "data", &data, &dlen) < 0 ||
	    field(c->body.data, c->body.len, "type", &type, &tlen) < 0) {
		respond(c, "Status: 400 Bad Request\r\nContent-Type: application/json\r\n\r\n{}");
		return;
	}
	snprintf(id, sizeof(id), "%lld-0", next_id++);
	buf_printf(&f, "id: %s\nevent: %.*s\ndata: %.*s\n\n", id, (int)tlen, type, (int)dlen, data);
	for (s = streams; s != NULL; s = next) {
		next = s->next;
		if (writer_text(&s->w, f.data, f.len) < 0) {
			conn_free(s);
			continue;
		}
		if (writer_wants_out(&s->w)) {
			struct epoll_event ev = { EPOLLIN | EPOLLOUT, { .ptr = s } };
			epoll_ctl(ep, EPOLL_CTL_MOD, s->fd, &ev);
		}
	}
	buf_release(&f);
	snprintf(ans, sizeof(ans), "Status: 202 Accepted\r\nContent-Type: application/json\r\n\r\n{\"id\":\"%s\"}", id);
	respond(c, ans);
}

/* The request is complete: answer it. Returns 1 when c stays open. */
static int handle(struct conn *c)
{
	size_t ulen = 0, mlen = 0;
	const char *uri = param(&c->params, "REQUEST_URI", &ulen);
	const char *method = param(&c->params, "REQUEST_METHOD", &mlen);
	static const char head[] = "Status: 200 OK\r\nContent-Type: text/event-stream\r\n"
				   "Cache-Control: no-cache\r\n\r\nretry: 2500\n\nid: 0-0\nevent: connected\n"
				   "data: {}\n\n";
	struct buf framed = BUF_INIT;

	if (uri == NULL || method == NULL) {
		respond(c, "Status: 400 Bad Request\r\n\r\n");
		return 0;
	}
	if (mlen == 3 && memcmp(method, "GET", 3) == 0 && memmem(uri, ulen, "/events/stream", 14)) {
		fcgi_record_stdout(&framed, c->request_id, head, sizeof(head) - 1);
		c->stream = 1;
		if (writer_init(&c->w, c->fd, c->request_id, MAX_BUFFER, framed.data, framed.len) < 0 ||
		    writer_flush(&c->w) < 0) {
			buf_release(&framed);
			c->stream = 0;
			return 0;
		}
		buf_release(&framed);
		c->next = streams;
		if (streams)
			streams->prev = c;
		streams = c;
		return 1;
	}
	if (mlen == 4 && memcmp(method, "POST", 4) == 0 && ulen >= 7 &&
	    memcmp(uri + ulen - 7, "/events", 7) == 0) {
		publish(c);
		return 0;
	}
	if (mlen == 4 && memcmp(method, "POST", 4) == 0 && memmem(uri, ulen, "/auth/login", 11)) {
		respond(c, "Status: 200 OK\r\nContent-Type: application/json\r\n"
			   "Set-Cookie: __Host-fgp=floor; Path=/; Secure; HttpOnly\r\n\r\n"
			   "{\"access_token\":\"floor\",\"token_type\":\"Bearer\"}");
		return 0;
	}
	respond(c, "Status: 404 Not Found\r\nContent-Type: application/json\r\n\r\n{}");
	return 0;
}

/* Parses whole records from c->in. Returns -1 to close, 1 to keep c. */
static int on_records(struct conn *c)
{
	size_t off = 0;
	int rc = 1;

	while (c->in.len - off >= FCGI_RECORD_HEADER) {
		const unsigned char *h = (const unsigned char *)c->in.data + off;
		size_t len = (size_t)h[4] << 8 | h[5], pad = h[6];
		const char *content = (const char *)h + FCGI_RECORD_HEADER;
		if (c->in.len - off < FCGI_RECORD_HEADER + len + pad)
			break;
		c->request_id = h[2] << 8 | h[3];
		if (h[1] == 4) { /* PARAMS */
			if (len == 0)
				c->params_done = 1;
			else
				buf_append(&c->params, content, len);
		} else if (h[1] == 5) { /* STDIN */
			if (len == 0)
				c->stdin_done = 1;
			else
				buf_append(&c->body, content, len);
		} else if (h[1] == 2) { /* ABORT */
			return -1;
		}
		off += FCGI_RECORD_HEADER + len + pad;
		if (c->params_done && c->stdin_done && !c->stream) {
			rc = handle(c) ? 1 : -1;
			break;
		}
	}
	memmove(c->in.data, c->in.data + off, c->in.len - off);
	c->in.len -= off;
	return rc;
}

static void on_io(struct conn *c, uint32_t events)
{
	char chunk[16384];

	if (c->dead)
		return;
	if (events & EPOLLOUT) {
		if (writer_flush(&c->w) < 0) {
			conn_free(c);
			return;
		}
		if (!writer_wants_out(&c->w)) {
			struct epoll_event ev = { EPOLLIN, { .ptr = c } };
			epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
		}
	}
	if (events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
		for (;;) {
			ssize_t n = read(c->fd, chunk, sizeof(chunk));
			if (n > 0) {
				if (!c->stream)
					buf_append(&c->in, chunk, (size_t)n);
				continue;
			}
			if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
				conn_free(c);
				return;
			}
			break;
		}
		if (!c->stream && on_records(c) < 0)
			conn_free(c);
	}
}

int main(int argc, char **argv)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	struct epoll_event evs[256], lev = { EPOLLIN, { .ptr = NULL } };
	int lfd;

	if (argc != 2 || strlen(argv[1]) >= sizeof(a.sun_path)) {
		fprintf(stderr, "usage: floor SOCKET_PATH\n");
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	snprintf(a.sun_path, sizeof(a.sun_path), "%s", argv[1]);
	unlink(a.sun_path);
	lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0);
	if (lfd < 0 || bind(lfd, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(lfd, 1024) < 0 ||
	    (ep = epoll_create1(0)) < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &lev) < 0) {
		perror("floor");
		return 1;
	}
	for (;;) {
		int n = epoll_wait(ep, evs, 256, -1);
		for (int i = 0; i < n; i++) {
			if (evs[i].data.ptr == NULL) {
				int fd;
				while ((fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK)) >= 0) {
					struct conn *c = calloc(1, sizeof(*c));
					struct epoll_event ev = { EPOLLIN, { .ptr = c } };
					if (c == NULL) {
						close(fd);
						continue;
					}
					c->fd = fd;
					if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0)
						conn_free(c);
				}
			} else {
				on_io(evs[i].data.ptr, evs[i].events);
			}
		}
		free_dead();
	}
}
