/* Target: the SSE encoder (sse/sse.c) and the stream writer's framing
 * (sse/writer.c), against a client written here from the WHATWG HTML
 * "event stream interpretation" algorithm (§9.2.6).
 *
 * The input is a list of calls: sse_event with an id (or none), an event
 * name and data of any bytes, sse_comment, sse_retry. Each call's output
 * goes to a real socket through a writer (sent at once or queued and
 * committed, through a small send buffer, so output also waits in the
 * writer), the other end decodes the FastCGI records and hands the bytes
 * to the client. Then:
 * - a call the encoder refuses by its contract (id over 256 bytes or with
 *   CR or LF, event name empty, over 64 bytes or with CR or LF, data with
 *   a NUL; a comment with CR or LF) is refused and adds nothing;
 * - the client sees one event per accepted sse_event, in order, with its
 *   type, its data with every CRLF, CR and LF as one LF (the encoder
 *   splits lines there), and the id of the last event that had one;
 * - no other field: no id, event, data or retry a payload did not ask
 *   for, and a retry only from sse_retry (a negative one is ignored).
 * The client works on bytes: a browser decodes UTF-8 first, which
 * replaces bad sequences but never creates or swallows a CR or LF.
 *
 * Input: per call a flags byte, then for events the id and the name
 * (NUL-terminated) and data (two length bytes, then that many). */
#include "fuzz.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../core/fcgi_record.h"
#include "../sse/sse.h"
#include "../sse/writer.h"

#define MAX_EVENTS 64
#define REQUEST_ID 7

struct event {
	char *type, *data, *id;
	size_t data_len;
};

struct client {
	struct event ev[MAX_EVENTS + 1];
	int n;
	long long retry; /* -1: never set */
	int bad_field;   /* a field no call asked for */
};

static char *dup_n(const char *p, size_t n)
{
	char *s = malloc(n + 1);

	FUZZ_CHECK(s != NULL);
	if (n > 0)
		memcpy(s, p, n);
	s[n] = '\0';
	return s;
}

/* WHATWG: lines end at CRLF, LF or CR; "field: value" with one optional
 * space; data joined by LF; an event is dispatched on a blank line when
 * its data buffer is not empty. */
static void client_parse(struct client *c, const char *s, size_t n)
{
	struct buf data = BUF_INIT;
	char *type = dup_n("", 0), *last_id = dup_n("", 0), *id_buf = dup_n("", 0);
	size_t i = 0;

	c->retry = -1;
	if (n >= 3 && memcmp(s, "\xef\xbb\xbf", 3) == 0)
		i = 3;
	while (i < n) {
		size_t start = i, end, flen, vstart;
		const char *line, *colon;

		while (i < n && s[i] != '\r' && s[i] != '\n')
			i++;
		if (i == n)
			break; /* an unterminated last line is discarded */
		end = i;
		if (s[i] == '\r' && i + 1 < n && s[i + 1] == '\n')
			i++;
		i++;
		line = s + start;
		if (end == start) { /* dispatch */
			free(last_id);
			last_id = dup_n(id_buf, strlen(id_buf));
			if (data.len > 0) {
				struct event *e = &c->ev[c->n < MAX_EVENTS ? c->n++ : MAX_EVENTS];
				free(e->type), free(e->data), free(e->id);
				e->data = dup_n(data.data, data.len - 1); /* the last LF */
				e->data_len = data.len - 1;
				e->type = dup_n(*type ? type : "message", strlen(*type ? type : "message"));
				e->id = dup_n(last_id, strlen(last_id));
			}
			buf_reset(&data);
			free(type);
			type = dup_n("", 0);
			continue;
		}
		if (line[0] == ':')
			continue; /* a comment */
		colon = memchr(line, ':', end - start);
		flen = colon ? (size_t)(colon - line) : end - start;
		vstart = colon ? flen + 1 : end - start;
		if (colon && vstart < end - start && line[vstart] == ' ')
			vstart++;
		if (flen == 5 && memcmp(line, "event", 5) == 0) {
			free(type);
			type = dup_n(line + vstart, end - start - vstart);
		} else if (flen == 4 && memcmp(line, "data", 4) == 0) {
			buf_append(&data, line + vstart, end - start - vstart);
			buf_append(&data, "\n", 1);
		} else if (flen == 2 && memcmp(line, "id", 2) == 0) {
			if (memchr(line + vstart, '\0', end - start - vstart) == NULL) {
				free(id_buf);
				id_buf = dup_n(line + vstart, end - start - vstart);
			}
		} else if (flen == 5 && memcmp(line, "retry", 5) == 0) {
			size_t k, vl = end - start - vstart;
			long long v = 0;
			for (k = 0; k < vl && line[vstart + k] >= '0' && line[vstart + k] <= '9'; k++)
				v = v * 10 + (line[vstart + k] - '0');
			if (vl > 0 && k == vl)
				c->retry = v;
		} else {
			c->bad_field = 1;
		}
	}
	buf_release(&data);
	free(type);
	free(last_id);
	free(id_buf);
}

/* data with CRLF, CR and LF each as one LF */
static char *normalise(const char *p, size_t n, size_t *out_len)
{
	char *s = malloc(n + 1);
	size_t o = 0;

	FUZZ_CHECK(s != NULL);
	for (size_t i = 0; i < n; i++) {
		if (p[i] == '\r') {
			s[o++] = '\n';
			if (i + 1 < n && p[i + 1] == '\n')
				i++;
		} else {
			s[o++] = p[i];
		}
	}
	s[o] = '\0';
	*out_len = o;
	return s;
}

/* The peer's end: reads what there is, appends it to got. */
static void drain(int fd, struct buf *got)
{
	char chunk[8192];
	ssize_t n;

	while ((n = read(fd, chunk, sizeof(chunk))) > 0)
		buf_append(got, chunk, (size_t)n);
	FUZZ_CHECK(n == 0 || errno == EAGAIN || errno == EWOULDBLOCK);
}

/* The writer's result, with the socket drained until it has taken it. */
static void settle(struct writer *w, int peer, struct buf *got, int rc)
{
	FUZZ_CHECK(rc == 0);
	for (int k = 0; writer_wants_out(w); k++) {
		FUZZ_CHECK(k < 100000);
		drain(peer, got);
		FUZZ_CHECK(writer_flush(w) == 0);
	}
	drain(peer, got);
}

/* STDOUT records back into text. */
static void unframe(const struct buf *rec, struct buf *text)
{
	const unsigned char *p = (const unsigned char *)rec->data;
	size_t n = rec->len;

	while (n > 0) {
		size_t clen, plen;

		FUZZ_CHECK(n >= 8 && p[0] == 1 && p[1] == FCGI_TYPE_STDOUT);
		FUZZ_CHECK(((p[2] << 8) | p[3]) == REQUEST_ID);
		clen = (size_t)p[4] << 8 | p[5];
		plen = p[6];
		FUZZ_CHECK(clen > 0 && (clen + plen) % 8 == 0 && n >= 8 + clen + plen);
		buf_append(text, p + 8, clen);
		p += 8 + clen + plen;
		n -= 8 + clen + plen;
	}
}

static int name_ok(const char *s, size_t max, int nonempty)
{
	size_t n = strlen(s);

	return n <= max && (!nonempty || n > 0) && strpbrk(s, "\r\n") == NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char head[] = "Status: 200 OK\r\nContent-Type: text/event-stream\r\n\r\n";
	struct fuzz_in in = { data, size };
	struct event want[MAX_EVENTS];
	struct buf framed_head = BUF_INIT, got = BUF_INIT, text = BUF_INIT, out = BUF_INIT;
	struct client cl;
	struct writer w;
	char *last_id = dup_n("", 0);
	long long want_retry = -1;
	int sv[2], nwant = 0, sndbuf = 4096;

	memset(&cl, 0, sizeof(cl));
	FUZZ_CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv) == 0);
	setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf));
	FUZZ_CHECK(fcgi_record_stdout(&framed_head, REQUEST_ID, head, strlen(head)) == 0);
	FUZZ_CHECK(writer_init(&w, sv[0], REQUEST_ID, 1 << 20, framed_head.data,
			       framed_head.len) == 0);

	while (in.n > 0 && nwant < MAX_EVENTS) {
		unsigned flags = fuzz_byte(&in);
		size_t mark;
		int rc;

		buf_reset(&out);
		if ((flags & 0x30) == 0x10) {
			char *t = fuzz_field(&in, 0);
			rc = sse_comment(&out, t);
			FUZZ_CHECK(rc == (strpbrk(t, "\r\n") == NULL ? 0 : -1));
			free(t);
		} else if ((flags & 0x30) == 0x20) {
			long long ms = (long long)(int16_t)(fuzz_byte(&in) << 8 | fuzz_byte(&in));
			FUZZ_CHECK(sse_retry(&out, ms) == 0);
			rc = 0;
			if (ms >= 0)
				want_retry = ms;
		} else {
			char *id = (flags & 1) ? fuzz_field(&in, 0) : NULL, *ev = fuzz_field(&in, 0);
			size_t dlen = (size_t)(fuzz_byte(&in) << 8 | fuzz_byte(&in));
			int ok;

			if (dlen > in.n)
				dlen = in.n;
			ok = (id == NULL || name_ok(id, 256, 0)) && name_ok(ev, 64, 1) &&
			     memchr(in.p, '\0', dlen) == NULL;
			mark = out.len;
			rc = sse_event(&out, id, ev, (const char *)in.p, dlen);
			FUZZ_CHECK(rc == (ok ? 0 : -1));
			if (rc < 0) {
				FUZZ_CHECK(out.len == mark); /* refused, not emitted */
			} else {
				struct event *e = &want[nwant++];
				e->data = normalise((const char *)in.p, dlen, &e->data_len);
				e->type = dup_n(ev, strlen(ev));
				if (id != NULL) {
					free(last_id);
					last_id = dup_n(id, strlen(id));
				}
				e->id = dup_n(last_id, strlen(last_id));
			}
			in.p += dlen;
			in.n -= dlen;
			free(id);
			free(ev);
		}
		if (rc == 0 && out.len > 0) {
			if (flags & 0x40) {
				FUZZ_CHECK(writer_queue(&w, out.data, out.len) == 0);
				if (flags & 0x80)
					settle(&w, sv[1], &got, writer_commit(&w));
			} else {
				settle(&w, sv[1], &got, writer_text(&w, out.data, out.len));
			}
		}
	}
	settle(&w, sv[1], &got, writer_commit(&w));
	settle(&w, sv[1], &got, writer_flush(&w));

	unframe(&got, &text);
	FUZZ_CHECK(text.len >= strlen(head) && memcmp(text.data, head, strlen(head)) == 0);
	client_parse(&cl, text.data + strlen(head), text.len - strlen(head));
	FUZZ_CHECK(!cl.bad_field);
	FUZZ_CHECK(cl.n == nwant);
	FUZZ_CHECK(cl.retry == want_retry);
	for (int i = 0; i < nwant; i++) {
		FUZZ_CHECK(strcmp(cl.ev[i].type, want[i].type) == 0);
		FUZZ_CHECK(cl.ev[i].data_len == want[i].data_len);
		FUZZ_CHECK(memcmp(cl.ev[i].data, want[i].data, want[i].data_len) == 0);
		FUZZ_CHECK(strcmp(cl.ev[i].id, want[i].id) == 0);
		free(want[i].type), free(want[i].data), free(want[i].id);
	}
	for (int i = 0; i <= MAX_EVENTS; i++)
		free(cl.ev[i].type), free(cl.ev[i].data), free(cl.ev[i].id);

	writer_release(&w);
	close(sv[0]);
	close(sv[1]);
	free(last_id);
	buf_release(&framed_head);
	buf_release(&got);
	buf_release(&text);
	buf_release(&out);
	return 0;
}
