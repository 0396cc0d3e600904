/* sse_load: opens N Server-Sent Events streams to 127.0.0.1, publishes M
 * events at R events/s over one keep-alive HTTP connection from a second
 * thread, and reports delivery latency, loss, duplicates, and the servers'
 * CPU time and RSS (from /proc) per delivery and per open stream.
 *
 * Subscribers speak HTTP/1.1 (as browsers do) on non-blocking sockets under
 * one epoll loop: a chunked body is decoded, an identity or close-delimited
 * one read as is. The stream is parsed per the WHATWG event-stream rules
 * (CR, LF or CRLF line ends, `data:` lines joined with LF, dispatch on a
 * blank line). An event counts as a delivery when its data contains
 * "seq":<n> and "t":<ns>, the sequence number and the CLOCK_MONOTONIC time
 * of its publication (same host, so comparable across processes).
 *
 * Cluster runs: --ports P1,P2 spreads the streams round-robin over several
 * front servers (stream i goes to port i % n); publishes still go to --port
 * (or --pub-port). Loss is also reported per subscriber port.
 *
 * Order: with several publishing connections, two events published at the
 * same time may legitimately be stored in either order, so "out of order"
 * counts only real violations: the body template's {after} is the number
 * of events whose publication had been acknowledged (all of 0..after-1)
 * when this one was sent; receiving event a after an event whose "after"
 * exceeds a means a stream got a before-published event late. Reordering of
 * concurrent publishes is reported apart ("inversions").
 *
 * Reconnect storm (--storm-at K): once K events have been sent, every
 * stream is closed at the same moment and all reconnect at once, each
 * naming the last event id it received (the WHATWG "last event ID string":
 * the latest `id:` field seen at a dispatch) in a Last-Event-ID header
 * (--resume header) or a last_event_id query parameter (--resume query). A
 * failed reconnect (refused, non-200, timeout) is retried after
 * --retry-ms. A stream ended by the server after the storm reconnects the
 * same way, as EventSource would. Reported: time until every stream is
 * reconnected, and until each has every event whose publication had been
 * acknowledged when its reconnect was answered ("caught up"); loss,
 * duplicates and order are counted over the whole run, across the storm.
 *
 * usage: sse_load --port P --sub-path PATH --pub-path PATH [options]
 * (sse_load --help lists them). Exits 0 when the run completed (whatever the
 * loss), 1 when it could not run, 2 on a usage error. Prints a block of
 * figures, then one line "kv key=value ..." for scripts. */
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_HEADERS 16
#define MAX_PIDS 64 /* Apache's event MPM: a child per 64 threads */
#define MAX_PORTS 8
#define ID_MAX 160
#define MAX_PUBLISHERS 64
#define MAX_LINE (1 << 20)
#define HEAD_MAX 16384

struct opts {
	int port;
	int pub_port; /* 0: the same as port */
	int ports[MAX_PORTS];	/* subscriber ports; n_ports 0: port alone */
	int n_ports;
	long storm_at;		/* -1: no storm */
	int resume_query;	/* name the last id in the query, not a header */
	double retry_ms;
	double storm_pause_ms;	/* between the drop and the reconnects */
	long streams;
	long events;
	double rate;
	const char *sub_path;
	const char *pub_path;
	const char *sub_headers[MAX_HEADERS];
	int n_sub_headers;
	const char *pub_headers[MAX_HEADERS];
	int n_pub_headers;
	const char *body;
	const char *event_filter;	/* NULL: any event name */
	const char *ready_event;	/* NULL: ready at the first body byte */
	int pids[MAX_PIDS];
	int n_pids;
	int concurrency;
	int publishers;
	double open_timeout;
	double idle;
	double drain;
	double time_limit;
};

/* ---- clock and small vectors ---- */

static int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

struct u32vec {
	uint32_t *v;
	size_t n, cap;
};

static void u32vec_push(struct u32vec *a, uint32_t x)
{
	if (a->n == a->cap) {
		size_t cap = a->cap ? a->cap * 2 : 4096;
		uint32_t *v = realloc(a->v, cap * sizeof(*v));
		if (v == NULL) {
			fprintf(stderr, "sse_load: out of memory\n");
			exit(1);
		}
		a->v = v;
		a->cap = cap;
	}
	a->v[a->n++] = x;
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return (x > y) - (x < y);
}

/* Nearest-rank percentile q (0..1] of sorted v; 0 when empty. */
static uint32_t percentile(const uint32_t *v, size_t n, double q)
{
	size_t k;

	if (n == 0)
		return 0;
	k = (size_t)ceil(q * (double)n);
	if (k < 1)
		k = 1;
	return v[k - 1];
}

/* ---- chunked transfer decoding (RFC 9112 §7.1) ---- */

enum ck_state { CK_SIZE, CK_EXT, CK_SIZE_LF, CK_DATA, CK_DATA_CR, CK_DATA_LF,
		CK_TRAILER, CK_DONE };

struct chunked {
	enum ck_state st;
	uint64_t left;
	size_t trailer_len;
	size_t err_at;		/* where in the last input it failed */
	int sink_failed;	/* it failed in the sink, not in the framing */
};

typedef int (*sink_fn)(void *ctx, const char *p, size_t n);

static int ck_size_done(struct chunked *c)
{
	if (c->left == 0) {
		c->st = CK_TRAILER;
		c->trailer_len = 0;
	} else {
		c->st = CK_DATA;
	}
	return 0;
}

static int ck_control(struct chunked *c, char ch)
{
	switch (c->st) {
	case CK_SIZE:
		if (isxdigit((unsigned char)ch)) {
			int d = isdigit((unsigned char)ch) ? ch - '0' : (tolower(ch) - 'a' + 10);
			if (c->left >> 56)
				return -1;
			c->left = c->left * 16 + (uint64_t)d;
		} else if (ch == ';' || ch == ' ' || ch == '\t') {
			c->st = CK_EXT;
		} else if (ch == '\r') {
			c->st = CK_SIZE_LF;
		} else if (ch == '\n') {
			return ck_size_done(c);
		} else {
			return -1;
		}
		return 0;
	case CK_EXT:
		return ch == '\n' ? ck_size_done(c) : 0;
	case CK_SIZE_LF:
		return ch == '\n' ? ck_size_done(c) : -1;
	case CK_DATA_CR:
	case CK_DATA_LF:
		/* CRLF after the data; a bare LF is tolerated */
		if (c->st == CK_DATA_CR && ch == '\r') {
			c->st = CK_DATA_LF;
			return 0;
		}
		if (ch != '\n')
			return -1;
		c->st = CK_SIZE;
		c->left = 0;
		return 0;
	case CK_TRAILER:
		if (ch == '\n') {
			if (c->trailer_len == 0)
				c->st = CK_DONE;
			c->trailer_len = 0;
		} else if (ch != '\r') {
			c->trailer_len++;
		}
		return 0;
	default:
		return -1;
	}
}

/* Decodes n bytes of a chunked body, passing the data to sink. Returns 1 when
 * the last chunk and trailers have been read, 0 when more is expected, -1 on a
 * malformed body or when the sink fails. */
static int chunked_feed(struct chunked *c, const char *p, size_t n, sink_fn sink, void *ctx)
{
	size_t i = 0;

	while (i < n) {
		if (c->st == CK_DONE)
			return 1;
		if (c->st == CK_DATA) {
			size_t take = n - i;
			if ((uint64_t)take > c->left)
				take = (size_t)c->left;
			if (sink != NULL && sink(ctx, p + i, take) < 0) {
				c->err_at = i;
				c->sink_failed = 1;
				return -1;
			}
			i += take;
			c->left -= take;
			if (c->left == 0)
				c->st = CK_DATA_CR;
			continue;
		}
		if (ck_control(c, p[i++]) < 0) {
			c->err_at = i - 1;
			return -1;
		}
	}
	return c->st == CK_DONE;
}

/* ---- HTTP response head ---- */

struct head {
	int status;
	int chunked;
	int close;
	long long clen;	/* -1: none */
};

static int header_is(const char *line, size_t len, const char *name, const char **val, size_t *vlen)
{
	size_t nl = strlen(name);

	if (len <= nl || line[nl] != ':' || strncasecmp(line, name, nl) != 0)
		return 0;
	*val = line + nl + 1;
	*vlen = len - nl - 1;
	while (*vlen > 0 && (**val == ' ' || **val == '\t'))
		(*val)++, (*vlen)--;
	return 1;
}

static int contains_ci(const char *s, size_t n, const char *word)
{
	size_t wl = strlen(word);

	for (size_t i = 0; i + wl <= n; i++)
		if (strncasecmp(s + i, word, wl) == 0)
			return 1;
	return 0;
}

/* Parses a response head (status line and headers, without the blank line).
 * Returns 0, or -1 when the status line is malformed. */
static int head_parse(const char *h, size_t len, struct head *out)
{
	const char *end = h + len, *line = h;
	int first = 1;

	memset(out, 0, sizeof(*out));
	out->clen = -1;
	while (line < end) {
		const char *eol = memchr(line, '\n', (size_t)(end - line));
		size_t ll = (size_t)((eol ? eol : end) - line);
		const char *v;
		size_t vl;
		if (ll > 0 && line[ll - 1] == '\r')
			ll--;
		if (first) {
			if (ll < 12 || strncmp(line, "HTTP/1.", 7) != 0)
				return -1;
			out->status = atoi(line + 9);
			out->close = line[7] == '0';
			first = 0;
		} else if (header_is(line, ll, "Transfer-Encoding", &v, &vl)) {
			out->chunked = contains_ci(v, vl, "chunked");
		} else if (header_is(line, ll, "Content-Length", &v, &vl)) {
			out->clen = strtoll(v, NULL, 10);
		} else if (header_is(line, ll, "Connection", &v, &vl)) {
			if (contains_ci(v, vl, "close"))
				out->close = 1;
			else if (contains_ci(v, vl, "keep-alive"))
				out->close = 0;
		}
		line = eol ? eol + 1 : end;
	}
	return first ? -1 : 0;
}

/* Offset just past the blank line ending the head in buf[0..n), or 0. */
static size_t head_end(const char *buf, size_t n)
{
	for (size_t i = 0; i + 1 < n; i++) {
		if (buf[i] != '\n')
			continue;
		if (buf[i + 1] == '\n')
			return i + 2;
		if (buf[i + 1] == '\r' && i + 2 < n && buf[i + 2] == '\n')
			return i + 3;
	}
	return 0;
}

/* ---- event-stream parsing (WHATWG HTML §9.2.6) ---- */

struct sse_parser {
	char *line;
	size_t line_len, line_cap;
	char *data;
	size_t data_len, data_cap;
	char event[64];
	char idbuf[ID_MAX];	/* the last event ID buffer */
	char *last_id;		/* where a dispatch sets the last event ID string */
	int last_cr;
	int started;	/* a leading BOM is stripped once */
};

typedef void (*event_fn)(void *ctx, const char *name, const char *data, size_t len);

static int grow(char **p, size_t *cap, size_t need)
{
	size_t c = *cap ? *cap : 256;
	char *n;

	if (need <= *cap)
		return 0;
	if (need > MAX_LINE)
		return -1;
	while (c < need)
		c *= 2;
	n = realloc(*p, c);
	if (n == NULL)
		return -1;
	*p = n;
	*cap = c;
	return 0;
}

static void sse_dispatch(struct sse_parser *sp, event_fn fn, void *ctx)
{
	/* the last event ID string is set even when no event fires */
	if (sp->last_id != NULL)
		memcpy(sp->last_id, sp->idbuf, strlen(sp->idbuf) + 1);
	if (sp->data_len > 0) {
		sp->data_len--;	/* the LF after the last data line */
		sp->data[sp->data_len] = '\0';
		fn(ctx, sp->event[0] ? sp->event : "message", sp->data, sp->data_len);
	}
	sp->data_len = 0;
	sp->event[0] = '\0';
}

static int sse_field(struct sse_parser *sp, const char *f, size_t fl, const char *v, size_t vl)
{
	if (fl == 5 && memcmp(f, "event", 5) == 0) {
		size_t n = vl < sizeof(sp->event) - 1 ? vl : sizeof(sp->event) - 1;
		memcpy(sp->event, v, n);
		sp->event[n] = '\0';
	} else if (fl == 2 && memcmp(f, "id", 2) == 0) {
		/* an id with NUL is ignored; a longer one than we keep is cut,
		 * which a reconnect would then show as a wrong id */
		size_t n = vl < sizeof(sp->idbuf) - 1 ? vl : sizeof(sp->idbuf) - 1;
		if (memchr(v, '\0', vl) == NULL) {
			memcpy(sp->idbuf, v, n);
			sp->idbuf[n] = '\0';
		}
	} else if (fl == 4 && memcmp(f, "data", 4) == 0) {
		if (grow(&sp->data, &sp->data_cap, sp->data_len + vl + 2) < 0)
			return -1;
		memcpy(sp->data + sp->data_len, v, vl);
		sp->data_len += vl;
		sp->data[sp->data_len++] = '\n';
	}
	/* retry: the reconnect delay here is --retry-ms */
	return 0;
}

static int sse_line(struct sse_parser *sp, event_fn fn, void *ctx)
{
	const char *l = sp->line, *colon;
	size_t n = sp->line_len;

	if (!sp->started) {
		sp->started = 1;
		if (n >= 3 && memcmp(l, "\xEF\xBB\xBF", 3) == 0)
			l += 3, n -= 3;
	}
	if (n == 0) {
		sse_dispatch(sp, fn, ctx);
		return 0;
	}
	if (l[0] == ':')
		return 0;
	colon = memchr(l, ':', n);
	if (colon == NULL)
		return sse_field(sp, l, n, "", 0);
	{
		const char *v = colon + 1;
		size_t vl = n - (size_t)(v - l);
		if (vl > 0 && *v == ' ')
			v++, vl--;
		return sse_field(sp, l, (size_t)(colon - l), v, vl);
	}
}

/* Feeds n bytes of the event stream; fn is called for each dispatched event.
 * Returns 0, or -1 on a line longer than MAX_LINE or out of memory. */
static int sse_feed(struct sse_parser *sp, const char *p, size_t n, event_fn fn, void *ctx)
{
	size_t i = 0;

	while (i < n) {
		size_t j = i;
		while (j < n && p[j] != '\n' && p[j] != '\r')
			j++;
		if (j > i) {
			if (grow(&sp->line, &sp->line_cap, sp->line_len + (j - i) + 1) < 0)
				return -1;
			memcpy(sp->line + sp->line_len, p + i, j - i);
			sp->line_len += j - i;
			sp->last_cr = 0;
		}
		if (j == n)
			break;
		if (p[j] == '\n' && sp->last_cr && j == i) {
			sp->last_cr = 0;	/* the LF of a CRLF */
		} else {
			if (sse_line(sp, fn, ctx) < 0)
				return -1;
			sp->line_len = 0;
			sp->last_cr = p[j] == '\r';
		}
		i = j + 1;
	}
	return 0;
}

static void sse_free(struct sse_parser *sp)
{
	free(sp->line);
	free(sp->data);
	memset(sp, 0, sizeof(*sp));
}

/* A fresh parser for a new connection of a client whose last event ID
 * string is in last_id (kept across connections, as EventSource does). */
static void sse_begin(struct sse_parser *sp, char *last_id)
{
	memset(sp, 0, sizeof(*sp));
	sp->last_id = last_id;
	snprintf(sp->idbuf, sizeof(sp->idbuf), "%s", last_id);
}

/* ---- run state ---- */

enum conn_state { ST_IDLE, ST_CONNECTING, ST_HEAD, ST_BODY, ST_FAILED, ST_CLOSED };

/* before the storm; dropped and not yet back; back (ready again) */
enum phase { PH_FIRST, PH_RECONNECTING, PH_BACK };

/* What one subscriber keeps across its connections. */
struct client {
	unsigned char *seen;	/* one bit per sequence number */
	uint64_t deliveries;
	char last_id[ID_MAX];	/* the last event ID string */
	long long max_seq;	/* highest seq received (-1) */
	long long max_after;	/* highest "after" of a received event (-1) */
	uint64_t prev_id[4];	/* the last event's id as numbers (see id_parse) */
	int has_prev_id;
	long prefix;		/* every event below it received or never published */
	int port_idx;
	int counted;		/* was ready once: one of ready_total */
	enum phase phase;
	int64_t retry_at;	/* 0, or when to connect again */
	int retry_first;	/* that is the storm's reconnect, after a pause */
	int64_t t_back;		/* ready again after the storm */
	long catchup_target;	/* events acknowledged when it was back */
	int64_t t_caught;	/* had every one of them */
};

struct conn {
	int fd;
	enum conn_state st;
	int ready;
	int body_mode;	/* 0 close-delimited, 1 chunked, 2 content-length */
	long long body_left;
	size_t sent;
	char *head;
	size_t head_len;
	int64_t deadline;
	struct chunked ck;
	struct sse_parser sp;
	char *req;	/* this connection's request */
	size_t req_len;
	struct client k;	/* survives reconnects */
};

struct pubs;

/* Counters that the storm report shows as "during the reconnects". */
struct fails {
	long status_count[600];
	long fail_connect, fail_timeout, fail_proto;
};

struct run {
	struct opts o;
	int ep;
	struct conn *c;
	struct pubs *ps;
	long next_open, in_flight, open, failed, closed_early, ready_total;
	struct fails f;
	uint64_t deliveries, duplicates, other_events, bad_seq, events_seen;
	uint64_t out_of_order, inversions;
	uint64_t id_regressions, id_mismatches, id_unparsed;
	uint64_t resets;	/* `event: reset`: the resume point was out of history */
	/* how open streams ended: EOF, an error (reset), the last chunk, a
	 * malformed body (bad chunking, or an event line over MAX_LINE) */
	long end_eof, end_error, end_last_chunk, end_malformed;
	char (*seq_id)[48];	/* the id each seq first arrived with */
	uint64_t port_deliveries[MAX_PORTS];
	long port_ready[MAX_PORTS];
	struct u32vec lat_us;
	int64_t recv_now;
	struct conn *cur;
	/* the storm */
	int storm_done;
	int64_t t_storm, t_last_retry_scan;
	long storm_sent, storm_clients, back, caught, pending_retries;
	long storm_retries, storm_closed_by_server, storm_failures;
	struct fails f_before;
};

/* One publishing connection; its thread alone writes it until joined. */
struct pub {
	const struct opts *o;
	struct pubs *all;
	int index;
	long ok, errors;
	int64_t t_first, t_last, t_last_send;
	struct u32vec rtt_us;
	char first_error[240];
};

/* The publishers share one schedule: event seq is due at start + seq / rate
 * and goes out on connection seq % n. */
struct pubs {
	struct pub p[MAX_PUBLISHERS];
	pthread_t th[MAX_PUBLISHERS];
	int n;
	int64_t start;
	atomic_int stop;
	atomic_int done;
	atomic_long sent;		/* publishes begun */
	atomic_uchar *acked;		/* per seq: 0 pending, 1 ok, 2 failed */
	atomic_long prefix;		/* every seq below it answered */
	long events;
};

/* Every seq below the returned number has been answered (any thread). */
static long acked_prefix(struct pubs *ps)
{
	long p = atomic_load(&ps->prefix), q = p;

	while (q < ps->events && atomic_load(&ps->acked[q]) != 0)
		q++;
	while (p < q && !atomic_compare_exchange_weak(&ps->prefix, &p, q))
		;
	return q;
}

static volatile sig_atomic_t interrupted;

static void on_signal(int sig)
{
	(void)sig;
	interrupted = 1;
}

/* Finds "key": followed by an integer in s; returns 1 and stores it, or 0. */
static int json_int(const char *s, size_t n, const char *key, long long *out)
{
	size_t kl = strlen(key);

	for (size_t i = 0; i + kl < n; i++) {
		const char *q;
		char *end;
		if (s[i] != '"' || strncmp(s + i + 1, key, kl) != 0 || s[i + 1 + kl] != '"')
			continue;
		q = s + i + kl + 2;
		while (q < s + n && (*q == ' ' || *q == '\t'))
			q++;
		if (q >= s + n || *q != ':')
			continue;
		q++;
		errno = 0;
		*out = strtoll(q, &end, 10);
		if (end != q && errno == 0)
			return 1;
	}
	return 0;
}

static int seen_bit(const struct client *k, long long seq)
{
	return (k->seen[seq >> 3] >> (seq & 7)) & 1;
}

/* A client back after the storm is caught up once it has every event that
 * had been acknowledged when its reconnect was answered. */
static void check_caught(struct run *r, struct conn *c)
{
	struct client *k = &c->k;

	if (k->phase != PH_BACK || k->t_caught != 0)
		return;
	while (k->prefix < r->o.events &&
	       (seen_bit(k, k->prefix) || atomic_load(&r->ps->acked[k->prefix]) == 2))
		k->prefix++;
	if (k->prefix >= k->catchup_target) {
		k->t_caught = r->recv_now;
		r->caught++;
	}
}

/* The stream has just become open (its ready event or first body byte). */
static void became_ready(struct run *r, struct conn *c)
{
	struct client *k = &c->k;

	c->ready = 1;
	r->in_flight--;
	r->open++;
	if (!k->counted) {
		k->counted = 1;
		r->ready_total++;
		r->port_ready[k->port_idx]++;
	} else if (k->phase == PH_RECONNECTING) {
		k->phase = PH_BACK;
		k->t_back = r->recv_now;
		k->catchup_target = acked_prefix(r->ps);
		r->back++;
		check_caught(r, c);
	}
}

/* An event id as up to 4 numbers (the digit runs: "1795306004567-2" and
 * nchan's "1795310778:2" both order that way). Returns how many, 0 when none
 * or too many. */
static int id_parse(const char *id, uint64_t out[4])
{
	int n = 0;

	memset(out, 0, 4 * sizeof(*out));
	for (const char *p = id; *p;) {
		char *end;
		if (!isdigit((unsigned char)*p)) {
			p++;
			continue;
		}
		if (n == 4)
			return 0;
		out[n++] = strtoull(p, &end, 10);
		p = end;
	}
	return n;
}

/* Diagnostics, not the verdict (ids are opaque to a client): does each
 * stream see ids rise, and does an event carry one id everywhere? */
static void check_id(struct run *r, struct client *k, long long seq)
{
	uint64_t v[4];

	if (r->seq_id[seq][0] == '\0')
		snprintf(r->seq_id[seq], sizeof(r->seq_id[seq]), "%.47s", k->last_id);
	else if (strncmp(r->seq_id[seq], k->last_id, sizeof(r->seq_id[seq]) - 1) != 0)
		r->id_mismatches++;
	if (id_parse(k->last_id, v) == 0) {
		r->id_unparsed++;
		return;
	}
	if (k->has_prev_id && memcmp(v, k->prev_id, sizeof(v)) != 0) {
		int i = 0;
		while (i < 4 && v[i] == k->prev_id[i])
			i++;
		if (i < 4 && v[i] < k->prev_id[i])
			r->id_regressions++;
	} else if (k->has_prev_id) {
		r->id_regressions++;	/* the same id for another event */
	}
	memcpy(k->prev_id, v, sizeof(v));
	k->has_prev_id = 1;
}

static void on_event(void *ctx, const char *name, const char *data, size_t len)
{
	struct run *r = ctx;
	struct conn *c = r->cur;
	struct client *k = &c->k;
	long long seq, t, after;

	r->events_seen++;
	if (!c->ready && r->o.ready_event != NULL && strcmp(name, r->o.ready_event) == 0)
		became_ready(r, c);
	if (r->o.event_filter != NULL && strcmp(name, r->o.event_filter) != 0) {
		r->other_events++;
		if (strcmp(name, "reset") == 0)
			r->resets++;
		return;
	}
	if (!json_int(data, len, "seq", &seq) || !json_int(data, len, "t", &t)) {
		r->other_events++;
		return;
	}
	if (seq < 0 || seq >= r->o.events || k->seen == NULL) {
		r->bad_seq++;
		return;
	}
	if (seen_bit(k, seq)) {
		r->duplicates++;
		return;
	}
	k->seen[seq >> 3] |= (unsigned char)(1u << (seq & 7));
	k->deliveries++;
	r->deliveries++;
	r->port_deliveries[k->port_idx]++;
	/* order: a before-published event arriving late is a violation; two
	 * concurrent publishes may come either way (an inversion) */
	if (seq < k->max_after)
		r->out_of_order++;
	else if (seq < k->max_seq)
		r->inversions++;
	if (seq > k->max_seq)
		k->max_seq = seq;
	if (json_int(data, len, "after", &after) && after > k->max_after)
		k->max_after = after;
	check_id(r, k, seq);
	{
		int64_t lat = r->recv_now - t;
		if (lat < 0)
			lat = 0;
		u32vec_push(&r->lat_us, (uint32_t)(lat / 1000 > UINT32_MAX ? UINT32_MAX : lat / 1000));
	}
	check_caught(r, c);
}

static int body_sink(void *ctx, const char *p, size_t n)
{
	struct run *r = ctx;

	if (n > 0 && !r->cur->ready && r->o.ready_event == NULL)
		became_ready(r, r->cur);
	return sse_feed(&r->cur->sp, p, n, on_event, r);
}

/* ---- subscriber connections ---- */

/* Closes the connection. ST_IDLE: dropped on purpose (the storm);
 * ST_CLOSED: ended by the server after being open; ST_FAILED: never open.
 * After the storm, any of the latter two connects again after --retry-ms,
 * as EventSource would. */
static void conn_close(struct run *r, struct conn *c, enum conn_state st)
{
	if (c->fd >= 0) {
		epoll_ctl(r->ep, EPOLL_CTL_DEL, c->fd, NULL);
		close(c->fd);
		c->fd = -1;
	}
	if (c->st == ST_CONNECTING || c->st == ST_HEAD || (c->st == ST_BODY && !c->ready))
		r->in_flight--;
	if (c->ready && c->st == ST_BODY && st == ST_CLOSED)
		r->closed_early++;
	if (c->ready)
		r->open--;
	if (st == ST_FAILED && !r->storm_done)
		r->failed++;
	if (r->storm_done && c->k.counted && st != ST_IDLE) {
		if (st == ST_FAILED)
			r->storm_failures++;
		else
			r->storm_closed_by_server++;
		if (c->k.phase == PH_BACK && st == ST_CLOSED)
			c->k.phase = PH_RECONNECTING;	/* must come back again */
		c->k.retry_at = now_ns() + (int64_t)(r->o.retry_ms * 1e6);
		r->pending_retries++;
	}
	c->st = st;
	c->ready = 0;
	free(c->head);
	c->head = NULL;
	free(c->req);
	c->req = NULL;
	sse_free(&c->sp);
}

static int port_of(const struct run *r, const struct conn *c)
{
	return r->o.n_ports > 0 ? r->o.ports[c->k.port_idx] : r->o.port;
}

/* Percent-encodes s into out (for the last_event_id query parameter). */
static size_t url_encode(const char *s, char *out, size_t cap)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t n = 0;

	for (; *s && n + 4 < cap; s++) {
		unsigned char ch = (unsigned char)*s;
		if (isalnum(ch) || ch == '-' || ch == '_' || ch == '.' || ch == '~') {
			out[n++] = (char)ch;
		} else {
			out[n++] = '%';
			out[n++] = hex[ch >> 4];
			out[n++] = hex[ch & 15];
		}
	}
	out[n] = '\0';
	return n;
}

/* This connection's GET: after the storm it names the last event id. */
static int conn_request(struct run *r, struct conn *c)
{
	const struct opts *o = &r->o;
	int resume = c->k.phase != PH_FIRST && c->k.last_id[0] != '\0';
	char enc[3 * ID_MAX + 1] = "";
	size_t cap = 1024 + strlen(o->sub_path) + 4 * ID_MAX, n;

	for (int i = 0; i < o->n_sub_headers; i++)
		cap += strlen(o->sub_headers[i]) + 2;
	if ((c->req = malloc(cap)) == NULL)
		return -1;
	if (resume && o->resume_query)
		url_encode(c->k.last_id, enc, sizeof(enc));
	n = (size_t)snprintf(c->req, cap, "GET %s%s%s%s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n"
			     "Accept: text/event-stream\r\nCache-Control: no-cache\r\n", o->sub_path,
			     enc[0] ? (strchr(o->sub_path, '?') ? "&" : "?") : "",
			     enc[0] ? "last_event_id=" : "", enc, port_of(r, c));
	if (resume && !o->resume_query)
		n += (size_t)snprintf(c->req + n, cap - n, "Last-Event-ID: %s\r\n", c->k.last_id);
	for (int i = 0; i < o->n_sub_headers; i++)
		n += (size_t)snprintf(c->req + n, cap - n, "%s\r\n", o->sub_headers[i]);
	n += (size_t)snprintf(c->req + n, cap - n, "\r\n");
	c->req_len = n;
	return 0;
}

/* Starts a connection for client idx (the first, or a reconnect). Returns
 * -1 when it could not even begin (nothing is counted then). */
static int conn_start(struct run *r, long idx)
{
	struct conn *c = &r->c[idx];
	struct client k = c->k;
	struct sockaddr_in sa;
	struct epoll_event ev;

	memset(c, 0, sizeof(*c));
	c->k = k;
	c->k.retry_at = 0;
	if (c->k.seen == NULL) {
		c->k.port_idx = r->o.n_ports > 0 ? (int)(idx % r->o.n_ports) : 0;
		c->k.max_seq = c->k.max_after = -1;
		if ((c->k.seen = calloc((size_t)(r->o.events + 7) / 8, 1)) == NULL) {
			c->fd = -1;
			return -1;
		}
	}
	sse_begin(&c->sp, c->k.last_id);
	if (conn_request(r, c) < 0) {
		c->fd = -1;
		return -1;
	}
	c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (c->fd < 0)
		goto fail;
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t)port_of(r, c));
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (connect(c->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 && errno != EINPROGRESS)
		goto fail;
	ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP;
	ev.data.u64 = (uint64_t)idx;
	if (epoll_ctl(r->ep, EPOLL_CTL_ADD, c->fd, &ev) < 0)
		goto fail;
	c->st = ST_CONNECTING;
	c->deadline = now_ns() + (int64_t)(r->o.open_timeout * 1e9);
	r->in_flight++;
	return 0;
fail:
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	free(c->req);
	c->req = NULL;
	return -1;
}

static void conn_send(struct run *r, struct conn *c, uint64_t idx)
{
	int err = 0;
	socklen_t el = sizeof(err);
	struct epoll_event ev;

	if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &el) < 0 || err != 0) {
		r->f.fail_connect++;
		conn_close(r, c, ST_FAILED);
		return;
	}
	while (c->sent < c->req_len) {
		ssize_t w = send(c->fd, c->req + c->sent, c->req_len - c->sent, MSG_NOSIGNAL);
		if (w < 0 && errno == EAGAIN)
			return;
		if (w <= 0) {
			r->f.fail_connect++;
			conn_close(r, c, ST_FAILED);
			return;
		}
		c->sent += (size_t)w;
	}
	c->st = ST_HEAD;
	free(c->req);
	c->req = NULL;
	ev.events = EPOLLIN | EPOLLRDHUP;
	ev.data.u64 = idx;
	epoll_ctl(r->ep, EPOLL_CTL_MOD, c->fd, &ev);
}

/* Shows where a chunked body went wrong (stderr; the first few only). */
static void dump_malformed(struct run *r, const struct conn *c, const char *p, size_t n)
{
	size_t at = c->ck.err_at < n ? c->ck.err_at : n;
	size_t from = at > 300 ? at - 300 : 0, to = at + 200 < n ? at + 200 : n;

	fprintf(stderr, "sse_load: stream %ld (port %d, %s) malformed body: %s, chunk state %d, "
		"%llu left; %" PRIu64 " deliveries so far; bytes %zu..%zu of a %zu-byte read, "
		"failure at %zu:\n", (long)(c - r->c), port_of(r, c),
		c->k.phase == PH_FIRST ? "first connection" : "after the storm",
		c->ck.sink_failed ? "event-stream line too long" : "bad chunk framing",
		(int)c->ck.st, (unsigned long long)c->ck.left, c->k.deliveries, from, to, n, at);
	for (size_t i = from; i < to; i++) {
		unsigned char ch = (unsigned char)p[i];
		if (i == at)
			fputs("<<HERE>>", stderr);
		if (ch == '\n')
			fputs("\\n\n", stderr);
		else if (ch == '\r')
			fputs("\\r", stderr);
		else if (ch < 32 || ch > 126)
			fprintf(stderr, "\\x%02x", ch);
		else
			fputc(ch, stderr);
	}
	fputs("\n--\n", stderr);
}

/* Body bytes of an open stream. Returns -1 when the stream must close. */
static int conn_body(struct run *r, struct conn *c, const char *p, size_t n)
{
	int rc = 0;

	r->cur = c;
	if (c->body_mode == 1) {
		rc = chunked_feed(&c->ck, p, n, body_sink, r);
		if (rc == 1) {
			rc = -1;	/* the server ended the stream */
			r->end_last_chunk += c->ready;
		} else if (rc < 0) {
			r->end_malformed += c->ready;
			if (r->end_malformed <= 3)
				dump_malformed(r, c, p, n);
		}
	} else {
		if (c->body_mode == 2) {
			if ((long long)n > c->body_left)
				n = (size_t)c->body_left;
			c->body_left -= (long long)n;
		}
		rc = body_sink(r, p, n);
		if (c->body_mode == 2 && c->body_left == 0)
			rc = -1;
	}
	return rc;
}

static int conn_head(struct run *r, struct conn *c, const char *p, size_t n)
{
	size_t end, old = c->head_len, take = n;
	struct head h;

	if (c->head == NULL && (c->head = malloc(HEAD_MAX)) == NULL)
		return -1;
	if (old + take > HEAD_MAX)
		take = HEAD_MAX - old;
	memcpy(c->head + old, p, take);
	c->head_len += take;
	end = head_end(c->head, c->head_len);
	if (end == 0)
		return c->head_len >= HEAD_MAX ? (r->f.fail_proto++, -1) : 0;
	if (head_parse(c->head, end, &h) < 0) {
		r->f.fail_proto++;
		return -1;
	}
	if (h.status >= 0 && h.status < 600)
		r->f.status_count[h.status]++;
	if (h.status != 200)
		return -1;
	c->st = ST_BODY;
	c->body_mode = h.chunked ? 1 : h.clen >= 0 ? 2 : 0;
	c->body_left = h.clen;
	/* the rest of this read is body: a reconnect's answer can bring its
	 * whole replay with the head, more than the head buffer holds (the end
	 * lies in this read, or the previous call would have found it) */
	free(c->head);
	c->head = NULL;
	return n > end - old ? conn_body(r, c, p + (end - old), n - (end - old)) : 0;
}

static void conn_readable(struct run *r, struct conn *c)
{
	char buf[65536];

	for (;;) {
		ssize_t n = read(c->fd, buf, sizeof(buf));
		int rc;
		if (n < 0 && errno == EAGAIN)
			return;
		if (n <= 0) {
			if (!c->ready)
				r->f.fail_proto++;
			else if (n == 0)
				r->end_eof++;
			else
				r->end_error++;
			conn_close(r, c, c->ready ? ST_CLOSED : ST_FAILED);
			return;
		}
		r->recv_now = now_ns();
		if (c->st == ST_HEAD)
			rc = conn_head(r, c, buf, (size_t)n);
		else
			rc = conn_body(r, c, buf, (size_t)n);
		if (rc < 0) {
			conn_close(r, c, c->ready ? ST_CLOSED : ST_FAILED);
			return;
		}
		/* a short read drained the socket; epoll (level-triggered)
		 * reports more, which saves a read() that would say EAGAIN */
		if ((size_t)n < sizeof(buf))
			return;
	}
}

static void on_conn_event(struct run *r, const struct epoll_event *ev)
{
	uint64_t idx = ev->data.u64;
	struct conn *c = &r->c[idx];

	if (c->fd < 0)
		return;
	if (c->st == ST_CONNECTING) {
		if (ev->events & (EPOLLOUT | EPOLLERR | EPOLLHUP))
			conn_send(r, c, idx);
		if (c->st == ST_CONNECTING || c->fd < 0)
			return;
	}
	if (ev->events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
		conn_readable(r, c);
}

/* Waits up to ms for socket events and handles them. */
static void poll_once(struct run *r, int ms)
{
	struct epoll_event evs[256];
	int n = epoll_wait(r->ep, evs, 256, ms);

	for (int i = 0; i < n; i++)
		on_conn_event(r, &evs[i]);
}

static void expire_pending(struct run *r)
{
	int64_t t = now_ns();

	for (long i = 0; i < r->next_open; i++) {
		struct conn *c = &r->c[i];
		if (c->fd >= 0 && !c->ready && c->deadline < t) {
			r->f.fail_timeout++;
			conn_close(r, c, ST_FAILED);
		}
	}
}

/* Opens the streams, at most o.concurrency in flight. Returns when all are
 * open or failed, or at the deadline. */
static void open_streams(struct run *r, int64_t deadline)
{
	int64_t last_expire = 0;

	while (!interrupted && now_ns() < deadline) {
		while (r->next_open < r->o.streams && r->in_flight < r->o.concurrency) {
			if (conn_start(r, r->next_open) < 0) {
				r->f.fail_connect++;
				r->failed++;
				r->c[r->next_open].st = ST_FAILED;
			}
			r->next_open++;
		}
		if (r->next_open == r->o.streams && r->in_flight == 0)
			return;
		poll_once(r, 20);
		if (now_ns() - last_expire > 100000000) {
			expire_pending(r);
			last_expire = now_ns();
		}
	}
}

static void serve_for(struct run *r, double seconds)
{
	int64_t end = now_ns() + (int64_t)(seconds * 1e9);

	while (!interrupted && now_ns() < end)
		poll_once(r, 20);
}

/* ---- the reconnect storm ---- */

/* Every open stream drops its connection at once, then all reconnect at
 * once naming their last event id. Streams that never opened stay out. */
static void storm(struct run *r)
{
	r->storm_done = 1;
	r->t_storm = now_ns();
	r->storm_sent = atomic_load(&r->ps->sent);
	r->f_before = r->f;
	for (long i = 0; i < r->o.streams; i++) {
		struct conn *c = &r->c[i];
		if (!c->k.counted)
			continue;
		r->storm_clients++;
		if (c->fd >= 0)
			conn_close(r, c, ST_IDLE);
		c->k.phase = PH_RECONNECTING;
	}
	for (long i = 0; i < r->o.streams; i++) {
		struct conn *c = &r->c[i];
		if (!c->k.counted)
			continue;
		if (r->o.storm_pause_ms > 0) {
			c->k.retry_at = r->t_storm + (int64_t)(r->o.storm_pause_ms * 1e6);
			c->k.retry_first = 1;
			r->pending_retries++;
			continue;
		}
		if (conn_start(r, i) < 0) {
			r->f.fail_connect++;
			r->storm_failures++;
			c->k.retry_at = now_ns() + (int64_t)(r->o.retry_ms * 1e6);
			r->pending_retries++;
		}
	}
}

/* After the storm: connect again the clients whose retry is due, and time
 * out reconnects that hang. */
static void storm_service(struct run *r)
{
	int64_t t = now_ns();

	if (t - r->t_last_retry_scan < 5000000)
		return;
	r->t_last_retry_scan = t;
	expire_pending(r);
	if (r->pending_retries == 0)
		return;
	for (long i = 0; i < r->o.streams; i++) {
		struct conn *c = &r->c[i];
		if (c->fd >= 0 || c->k.retry_at == 0 || c->k.retry_at > t)
			continue;
		r->pending_retries--;
		if (!c->k.retry_first)
			r->storm_retries++;
		c->k.retry_first = 0;
		if (conn_start(r, i) < 0) {
			r->f.fail_connect++;
			r->storm_failures++;
			c->k.retry_at = t + (int64_t)(r->o.retry_ms * 1e6);
			r->pending_retries++;
		}
	}
}

/* ---- publisher ---- */

static int pub_connect(int port)
{
	struct sockaddr_in sa;
	struct timeval tv = { 10, 0 };
	int one = 1;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -1;
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t)port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

/* Expands the body template: {seq}, {t} and {after} become the numbers. */
static size_t pub_body(const char *tpl, long seq, int64_t t, long after, char *out, size_t cap)
{
	size_t n = 0;

	for (const char *p = tpl; *p && n + 32 < cap; ) {
		if (strncmp(p, "{seq}", 5) == 0) {
			n += (size_t)snprintf(out + n, cap - n, "%ld", seq);
			p += 5;
		} else if (strncmp(p, "{t}", 3) == 0) {
			n += (size_t)snprintf(out + n, cap - n, "%" PRId64, t);
			p += 3;
		} else if (strncmp(p, "{after}", 7) == 0) {
			n += (size_t)snprintf(out + n, cap - n, "%ld", after);
			p += 7;
		} else {
			out[n++] = *p++;
		}
	}
	out[n] = '\0';
	return n;
}

static int send_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
		if (w <= 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

struct capture {
	char *buf;
	size_t n, cap;
};

static int capture_sink(void *ctx, const char *p, size_t n)
{
	struct capture *k = ctx;
	size_t take = n < k->cap - 1 - k->n ? n : k->cap - 1 - k->n;

	memcpy(k->buf + k->n, p, take);
	k->n += take;
	k->buf[k->n] = '\0';
	return 0;
}

/* Reads one response; returns its status (body in k), or -1 when the
 * connection failed. *close_after tells whether the server closes it. */
static int pub_response(int fd, struct capture *k, int *close_after)
{
	char buf[16384];
	size_t have = 0, end = 0;
	struct head h;
	struct chunked ck;

	while (end == 0) {
		ssize_t n = recv(fd, buf + have, sizeof(buf) - have, 0);
		if (n <= 0)
			return -1;
		have += (size_t)n;
		end = head_end(buf, have);
		if (end == 0 && have == sizeof(buf))
			return -1;
	}
	if (head_parse(buf, end, &h) < 0)
		return -1;
	*close_after = h.close;
	if (h.status == 204 || h.status == 304 || h.status < 200)
		return h.status;
	memset(&ck, 0, sizeof(ck));
	for (size_t off = end;;) {
		size_t avail = have - off;
		if (h.chunked) {
			int rc = chunked_feed(&ck, buf + off, avail, capture_sink, k);
			if (rc != 0)
				return rc < 0 ? -1 : h.status;
		} else {
			if (h.clen >= 0 && (long long)avail > h.clen)
				avail = (size_t)h.clen;
			capture_sink(k, buf + off, avail);
			if (h.clen >= 0) {
				h.clen -= (long long)avail;
				if (h.clen == 0)
					return h.status;
			}
		}
		ssize_t n = recv(fd, buf, sizeof(buf), 0);
		if (n == 0 && h.clen < 0 && !h.chunked) {
			*close_after = 1;
			return h.status;
		}
		if (n <= 0)
			return -1;
		have = (size_t)n;
		off = 0;
	}
}

static void pub_record_error(struct pub *p, long seq, int status, const char *body)
{
	p->errors++;
	if (p->first_error[0] == '\0')
		snprintf(p->first_error, sizeof(p->first_error), "seq %ld: status %d %.160s",
			 seq, status, body);
}

static int pub_one(struct pub *p, int *fd, long seq)
{
	const struct opts *o = p->o;
	char body[4096], req[8192], resp[512];
	struct capture k = { resp, 0, sizeof(resp) };
	size_t bl, rl;
	int64_t t;
	int status, close_after = 0;
	long after = acked_prefix(p->all);

	resp[0] = '\0';
	atomic_fetch_add(&p->all->sent, 1);
	if (*fd < 0 && (*fd = pub_connect(o->pub_port ? o->pub_port : o->port)) < 0) {
		pub_record_error(p, seq, -1, "connect failed");
		return -1;
	}
	t = now_ns();
	bl = pub_body(o->body, seq, t, after, body, sizeof(body));
	rl = (size_t)snprintf(req, sizeof(req),
			      "POST %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nContent-Length: %zu\r\n",
			      o->pub_path, o->port, bl);
	for (int i = 0; i < o->n_pub_headers && rl < sizeof(req); i++)
		rl += (size_t)snprintf(req + rl, sizeof(req) - rl, "%s\r\n", o->pub_headers[i]);
	if (rl + bl + 3 >= sizeof(req)) {
		pub_record_error(p, seq, -1, "request too large");
		return -1;
	}
	memcpy(req + rl, "\r\n", 2);
	memcpy(req + rl + 2, body, bl);
	rl += 2 + bl;
	if (p->t_first == 0)
		p->t_first = t;
	p->t_last_send = t;
	if (send_all(*fd, req, rl) < 0 || (status = pub_response(*fd, &k, &close_after)) < 0) {
		close(*fd);
		*fd = -1;
		pub_record_error(p, seq, -1, "connection failed");
		return -1;
	}
	p->t_last = now_ns();
	u32vec_push(&p->rtt_us, (uint32_t)((p->t_last - t) / 1000));
	if (close_after) {
		close(*fd);
		*fd = -1;
	}
	if (status < 200 || status > 299) {
		pub_record_error(p, seq, status, resp);
		return -1;
	}
	p->ok++;
	return 0;
}

static void *pub_main(void *arg)
{
	struct pub *p = arg;
	const struct opts *o = p->o;
	int fd = -1;

	for (long seq = p->index; seq < o->events && !p->all->stop; seq += p->all->n) {
		int64_t due = p->all->start + (int64_t)((double)seq * 1e9 / o->rate);
		struct timespec ts = { (time_t)(due / 1000000000), (long)(due % 1000000000) };
		while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
			;
		atomic_store(&p->all->acked[seq], pub_one(p, &fd, seq) == 0 ? 1 : 2);
	}
	if (fd >= 0)
		close(fd);
	atomic_fetch_add(&p->all->done, 1);
	return NULL;
}

/* ---- /proc sampling ---- */

struct sample {
	long long cpu_us[MAX_PIDS];
	long long rss_kib[MAX_PIDS];
	struct rusage self;
};

/* CPU time (utime + stime of the whole process, µs) and VmRSS (KiB) of pid,
 * or -1 in both when it is gone. */
static void proc_sample(int pid, long long *cpu_us, long long *rss_kib)
{
	char path[64], buf[2048], *p;
	unsigned long long ut = 0, st = 0;
	FILE *f;
	size_t n;

	*cpu_us = *rss_kib = -1;
	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	if ((f = fopen(path, "r")) == NULL)
		return;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	/* fields after the command name, which may contain spaces: state is 3 */
	p = strrchr(buf, ')');
	if (p == NULL || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu",
				&ut, &st) != 2)
		return;
	*cpu_us = (long long)((ut + st) * 1000000ULL / (unsigned long long)sysconf(_SC_CLK_TCK));
	snprintf(path, sizeof(path), "/proc/%d/status", pid);
	if ((f = fopen(path, "r")) == NULL)
		return;
	while (fgets(buf, sizeof(buf), f) != NULL)
		if (sscanf(buf, "VmRSS: %lld kB", rss_kib) == 1)
			break;
	fclose(f);
}

static void take_sample(const struct opts *o, struct sample *s)
{
	for (int i = 0; i < o->n_pids; i++)
		proc_sample(o->pids[i], &s->cpu_us[i], &s->rss_kib[i]);
	getrusage(RUSAGE_SELF, &s->self);
}

static long long self_cpu_us(const struct rusage *u)
{
	return (long long)u->ru_utime.tv_sec * 1000000 + u->ru_utime.tv_usec +
	       (long long)u->ru_stime.tv_sec * 1000000 + u->ru_stime.tv_usec;
}

/* ---- report ---- */

static double per(double x, double n)
{
	return n > 0 ? x / n : 0;
}

/* Sums the publishers' figures into tot (which owns the merged vector). */
static void pubs_merge(struct pubs *ps, struct pub *tot)
{
	memset(tot, 0, sizeof(*tot));
	for (int i = 0; i < ps->n; i++) {
		struct pub *p = &ps->p[i];
		tot->ok += p->ok;
		tot->errors += p->errors;
		if (p->t_first != 0 && (tot->t_first == 0 || p->t_first < tot->t_first))
			tot->t_first = p->t_first;
		if (p->t_last_send > tot->t_last_send)
			tot->t_last_send = p->t_last_send;
		for (size_t k = 0; k < p->rtt_us.n; k++)
			u32vec_push(&tot->rtt_us, p->rtt_us.v[k]);
		if (tot->first_error[0] == '\0')
			memcpy(tot->first_error, p->first_error, sizeof(tot->first_error));
	}
}

static void report(struct run *r, struct pub *p, const struct sample s[3], double elapsed)
{
	const struct opts *o = &r->o;
	uint64_t expected = (uint64_t)r->ready_total * (uint64_t)o->events;
	uint64_t loss = expected > r->deliveries ? expected - r->deliveries : 0;
	/* n sends span n - 1 intervals */
	double pub_secs = (double)(p->t_last_send - p->t_first) / 1e9;
	double achieved = per((double)(p->ok + p->errors - 1), pub_secs);
	long long rss_total = 0, cpu_pub = 0, cpu_open = 0;
	uint32_t l50, l99, lmax, r50, r99;
	char kv_pids[MAX_PIDS * 80] = "", kv_more[2048] = "";
	size_t kvl = 0, kml = 0;
	const struct fails *f0 = r->storm_done ? &r->f_before : &r->f;
	long long rss_end = 0;
	long incomplete = 0, failed_delivered = 0;
	uint64_t missing = 0;

	qsort(r->lat_us.v, r->lat_us.n, sizeof(uint32_t), cmp_u32);
	qsort(p->rtt_us.v, p->rtt_us.n, sizeof(uint32_t), cmp_u32);
	l50 = percentile(r->lat_us.v, r->lat_us.n, 0.50);
	l99 = percentile(r->lat_us.v, r->lat_us.n, 0.99);
	lmax = r->lat_us.n ? r->lat_us.v[r->lat_us.n - 1] : 0;
	r50 = percentile(p->rtt_us.v, p->rtt_us.n, 0.50);
	r99 = percentile(p->rtt_us.v, p->rtt_us.n, 0.99);

	/* every stream must end with every acknowledged event */
	for (long i = 0; i < o->streams; i++) {
		const struct client *k = &r->c[i].k;
		uint64_t m = 0;
		if (!k->counted)
			continue;
		for (long q = 0; q < o->events; q++)
			if (atomic_load(&r->ps->acked[q]) == 1 && !seen_bit(k, q))
				m++;
		missing += m;
		incomplete += m > 0;
	}
	/* a publish answered with an error whose event reached streams all the
	 * same (the server stored it, then failed or timed out answering) */
	for (long q = 0; q < o->events; q++) {
		if (atomic_load(&r->ps->acked[q]) != 2)
			continue;
		for (long i = 0; i < o->streams; i++) {
			const struct client *k = &r->c[i].k;
			if (k->counted && seen_bit(k, q)) {
				failed_delivered++;
				break;
			}
		}
	}
	printf("sse_load: %ld streams to 127.0.0.1:%d GET %s; %ld events at %.1f/s to POST %s"
	       " (%d connection%s)\n", o->streams, o->port, o->sub_path, o->events, o->rate,
	       o->pub_path, o->publishers, o->publishers == 1 ? "" : "s");
	printf("  streams open:         %ld of %ld (failed %ld: connect %ld, timeout %ld, "
	       "protocol %ld, status", r->ready_total, o->streams, r->failed,
	       f0->fail_connect, f0->fail_timeout, f0->fail_proto);
	for (int st = 0; st < 600; st++)
		if (f0->status_count[st] > 0 && st != 200)
			printf(" %d x%ld", st, f0->status_count[st]);
	printf("); closed during the run %ld", r->closed_early);
	if (r->closed_early > 0)
		printf(" (EOF %ld, error %ld, last chunk %ld, malformed body %ld)", r->end_eof,
		       r->end_error, r->end_last_chunk, r->end_malformed);
	printf("\n");
	printf("  events published:     %ld ok, %ld errors; achieved %.1f/s (target %.1f/s); "
	       "publish round trip p50 %.3f ms, p99 %.3f ms\n", (long)p->ok, (long)p->errors,
	       achieved, o->rate, r50 / 1e3, r99 / 1e3);
	if (p->first_error[0])
		printf("  first publish error:  %s\n", p->first_error);
	if (p->errors > 0) {
		int ranges = 0;
		printf("  failed publishes:     %ld of the %ld answered with an error reached streams all the same;"
		       " seqs", failed_delivered, (long)p->errors);
		for (long q = 0; q < o->events && ranges < 8; q++) {
			long e = q;
			if (atomic_load(&r->ps->acked[q]) != 2)
				continue;
			while (e + 1 < o->events && atomic_load(&r->ps->acked[e + 1]) == 2)
				e++;
			printf(e > q ? " %ld-%ld" : " %ld", q, e);
			ranges++;
			q = e;
		}
		printf("%s\n", ranges == 8 ? " ..." : "");
	}
	printf("  deliveries:           %" PRIu64 " of %" PRIu64 " expected\n", r->deliveries, expected);
	printf("  loss:                 %" PRIu64 " (%.3f%%)\n", loss, 100.0 * per((double)loss, (double)expected));
	printf("  duplicates:           %" PRIu64 " (other events %" PRIu64 " of which reset %" PRIu64
	       ", bad seq %" PRIu64 ")\n", r->duplicates, r->other_events, r->resets, r->bad_seq);
	printf("  order:                %" PRIu64 " out of order (acknowledged before another was sent,"
	       " received after it); %" PRIu64 " inversions (concurrent publishes, either order)\n",
	       r->out_of_order, r->inversions);
	printf("  event ids:            %" PRIu64 " went backwards on a stream, %" PRIu64
	       " differed from the id the same event had elsewhere, %" PRIu64 " had no digits\n",
	       r->id_regressions, r->id_mismatches, r->id_unparsed);
	printf("  streams incomplete:   %ld of %ld miss some of the %ld acknowledged events"
	       " (%" PRIu64 " missing in all)\n", incomplete, r->ready_total, (long)p->ok, missing);
	for (int i = 0; i < o->n_ports; i++) {
		uint64_t e = (uint64_t)r->port_ready[i] * (uint64_t)o->events;
		uint64_t l = e > r->port_deliveries[i] ? e - r->port_deliveries[i] : 0;
		printf("  port %-5d            %ld streams open, %" PRIu64 " deliveries of %" PRIu64
		       ", loss %" PRIu64 " (%.3f%%)\n", o->ports[i], r->port_ready[i],
		       r->port_deliveries[i], e, l, 100.0 * per((double)l, (double)e));
		kml += (size_t)snprintf(kv_more + kml, sizeof(kv_more) - kml,
					" port_streams_%d=%ld port_loss_%d=%" PRIu64, i, r->port_ready[i], i, l);
	}
	printf("  latency p50/p99/max:  %.3f / %.3f / %.3f ms\n", l50 / 1e3, l99 / 1e3, lmax / 1e3);
	if (r->storm_done) {
		struct u32vec back = { 0 }, caught = { 0 };
		long s503 = r->f.status_count[503] - r->f_before.status_count[503];
		for (long i = 0; i < o->streams; i++) {
			const struct client *k = &r->c[i].k;
			if (k->counted && k->t_back != 0)
				u32vec_push(&back, (uint32_t)((k->t_back - r->t_storm) / 1000));
			if (k->counted && k->t_caught != 0)
				u32vec_push(&caught, (uint32_t)((k->t_caught - r->t_storm) / 1000));
		}
		qsort(back.v, back.n, sizeof(uint32_t), cmp_u32);
		qsort(caught.v, caught.n, sizeof(uint32_t), cmp_u32);
		printf("  storm:                at %ld events sent, %ld streams dropped at once and"
		       " reconnected %s with their last id (%s)\n", r->storm_sent, r->storm_clients,
		       o->storm_pause_ms > 0 ? "after a pause" : "at once",
		       o->resume_query ? "last_event_id= query" : "Last-Event-ID header");
		if (o->storm_pause_ms > 0)
			printf("    pause:              %.0f ms between the drop and the reconnects\n",
			       o->storm_pause_ms);
		printf("    back (open again):  %ld of %ld; p50/p99/max %.1f / %.1f / %.1f ms after the drop\n",
		       r->back, r->storm_clients, percentile(back.v, back.n, 0.5) / 1e3,
		       percentile(back.v, back.n, 0.99) / 1e3, back.n ? back.v[back.n - 1] / 1e3 : 0);
		printf("    caught up:          %ld of %ld; p50/p99/max %.1f / %.1f / %.1f ms after the drop\n",
		       r->caught, r->storm_clients, percentile(caught.v, caught.n, 0.5) / 1e3,
		       percentile(caught.v, caught.n, 0.99) / 1e3, caught.n ? caught.v[caught.n - 1] / 1e3 : 0);
		printf("    reconnect failures: %ld (connect %ld, timeout %ld, protocol %ld, status",
		       r->storm_failures, r->f.fail_connect - r->f_before.fail_connect,
		       r->f.fail_timeout - r->f_before.fail_timeout, r->f.fail_proto - r->f_before.fail_proto);
		for (int st = 0; st < 600; st++)
			if (r->f.status_count[st] != r->f_before.status_count[st] && st != 200)
				printf(" %d x%ld", st, r->f.status_count[st] - r->f_before.status_count[st]);
		printf("); retries %ld; streams ended by the server afterwards %ld\n",
		       r->storm_retries, r->storm_closed_by_server);
		kml += (size_t)snprintf(kv_more + kml, sizeof(kv_more) - kml,
			" storm_at=%ld storm_clients=%ld storm_back=%ld storm_back_p50_ms=%.1f"
			" storm_back_max_ms=%.1f storm_caught=%ld storm_caught_p50_ms=%.1f"
			" storm_caught_p99_ms=%.1f storm_caught_max_ms=%.1f storm_failures=%ld"
			" storm_retries=%ld storm_503=%ld storm_closed_by_server=%ld",
			r->storm_sent, r->storm_clients, r->back, percentile(back.v, back.n, 0.5) / 1e3,
			back.n ? back.v[back.n - 1] / 1e3 : 0, r->caught,
			percentile(caught.v, caught.n, 0.5) / 1e3, percentile(caught.v, caught.n, 0.99) / 1e3,
			caught.n ? caught.v[caught.n - 1] / 1e3 : 0, r->storm_failures, r->storm_retries,
			s503, r->storm_closed_by_server);
		free(back.v);
		free(caught.v);
	}
	for (int i = 0; i < o->n_pids; i++) {
		long long drss = s[1].rss_kib[i] - s[0].rss_kib[i];
		long long dcpu = s[2].cpu_us[i] - s[1].cpu_us[i];
		long long ocpu = s[1].cpu_us[i] - s[0].cpu_us[i];
		rss_total += drss;
		if (s[2].rss_kib[i] > 0)
			rss_end += s[2].rss_kib[i];
		cpu_pub += dcpu;
		cpu_open += ocpu;
		printf("  pid %-7d RSS %lld -> %lld -> %lld KiB: %.2f KiB per open stream; "
		       "CPU %.2f us per delivery, %.1f us per stream opened\n", o->pids[i],
		       s[0].rss_kib[i], s[1].rss_kib[i], s[2].rss_kib[i],
		       per((double)drss, (double)r->ready_total), per((double)dcpu, (double)r->deliveries),
		       per((double)ocpu, (double)r->ready_total));
		if (kvl < sizeof(kv_pids))
			kvl += (size_t)snprintf(kv_pids + kvl, sizeof(kv_pids) - kvl,
					" rss_kib_per_stream_%d=%.3f cpu_us_per_delivery_%d=%.3f",
					o->pids[i], per((double)drss, (double)r->ready_total),
					o->pids[i], per((double)dcpu, (double)r->deliveries));
	}
	printf("  servers (summed):     %.2f KiB RSS per open stream, %.2f us CPU per delivery, "
	       "%.1f us CPU per stream opened; RSS at the end %lld KiB\n",
	       per((double)rss_total, (double)r->ready_total), per((double)cpu_pub, (double)r->deliveries),
	       per((double)cpu_open, (double)r->ready_total), rss_end);
	printf("  sse_load itself:      %.2f us CPU per delivery; run %.1f s\n",
	       per((double)(self_cpu_us(&s[2].self) - self_cpu_us(&s[1].self)), (double)r->deliveries),
	       elapsed);
	printf("kv streams=%ld streams_open=%ld streams_failed=%ld streams_closed=%ld events=%ld "
	       "published=%ld publish_errors=%ld deliveries=%" PRIu64 " expected=%" PRIu64
	       " loss=%" PRIu64 " duplicates=%" PRIu64 " lat_p50_ms=%.3f lat_p99_ms=%.3f"
	       " lat_max_ms=%.3f rss_kib_per_stream=%.3f cpu_us_per_delivery=%.3f"
	       " cpu_us_per_open=%.1f rate_target=%.1f rate_achieved=%.1f pub_rtt_p50_ms=%.3f"
	       " pub_rtt_p99_ms=%.3f out_of_order=%" PRIu64 " inversions=%" PRIu64
	       " streams_incomplete=%ld missing=%" PRIu64 " rss_end_kib=%lld id_regressions=%" PRIu64
	       " id_mismatches=%" PRIu64 " resets=%" PRIu64 " failed_publishes_delivered=%ld%s%s\n",
	       o->streams, r->ready_total, r->failed, r->closed_early, o->events, (long)p->ok,
	       (long)p->errors, r->deliveries, expected, loss, r->duplicates, l50 / 1e3, l99 / 1e3,
	       lmax / 1e3, per((double)rss_total, (double)r->ready_total),
	       per((double)cpu_pub, (double)r->deliveries), per((double)cpu_open, (double)r->ready_total),
	       o->rate, achieved, r50 / 1e3, r99 / 1e3, r->out_of_order, r->inversions, incomplete,
	       missing, rss_end, r->id_regressions, r->id_mismatches, r->resets, failed_delivered, kv_more, kv_pids);
	fflush(stdout);
}

/* ---- options ---- */

static void usage(FILE *to)
{
	fputs("usage: sse_load --port P --sub-path PATH --pub-path PATH [options]\n"
	      "  --streams N          subscriber streams (1000)\n"
	      "  --events M           events to publish (1000)\n"
	      "  --rate R             events per second (100)\n"
	      "  --sub-header 'K: V'  extra subscriber request header (repeatable)\n"
	      "  --pub-header 'K: V'  extra publish request header (repeatable)\n"
	      "  --body TEMPLATE      publish body; {seq}, {t} and {after} are replaced\n"
	      "                       (default {\"seq\":{seq},\"t\":{t},\"after\":{after}})\n"
	      "  --ports P1,P2        spread the streams over these ports (stream i on\n"
	      "                       port i %% n); publishes still go to --port/--pub-port\n"
	      "  --storm-at K         once K events are sent, drop every stream at once and\n"
	      "                       reconnect all, naming the last event id received\n"
	      "  --resume header|query  how a reconnect names it: Last-Event-ID (header,\n"
	      "                       default) or the last_event_id query parameter\n"
	      "  --retry-ms MS        delay before retrying a failed reconnect (500)\n"
	      "  --storm-pause-ms MS  wait this long between the drop and the reconnects (0),\n"
	      "                       so that the reconnects must replay MS of events\n"
	      "  --event NAME         count only events of this name (default: any)\n"
	      "  --ready-event NAME   a stream is open once this event arrives\n"
	      "                       (default: at its first body byte)\n"
	      "  --pids P1,P2         server processes to sample in /proc\n"
	      "  --pub-port Q         publish to port Q instead of P (a second front server)\n"
	      "  --publishers K       publishing keep-alive connections (1); event n\n"
	      "                       goes out on connection n % K, on one schedule\n"
	      "  --concurrency C      streams being opened at once (100)\n"
	      "  --open-timeout S     per stream (15)\n"
	      "  --idle S             wait with all streams open before sampling (2)\n"
	      "  --drain S            wait for deliveries after the last publish (10)\n"
	      "  --time-limit S       stop the whole run after S seconds (default: derived)\n",
	      to);
}

static int parse_pids(struct opts *o, const char *s)
{
	char *end;

	while (*s) {
		long v = strtol(s, &end, 10);
		if (end == s || v <= 0 || o->n_pids == MAX_PIDS)
			return -1;
		o->pids[o->n_pids++] = (int)v;
		s = *end == ',' ? end + 1 : end;
		if (*end != ',' && *end != '\0')
			return -1;
	}
	return 0;
}

static int parse_ports(struct opts *o, const char *s)
{
	char *end;

	while (*s) {
		long v = strtol(s, &end, 10);
		if (end == s || v <= 0 || v > 65535 || o->n_ports == MAX_PORTS)
			return -1;
		o->ports[o->n_ports++] = (int)v;
		if (*end != ',' && *end != '\0')
			return -1;
		s = *end == ',' ? end + 1 : end;
	}
	return 0;
}

static int add_header(const char **list, int *n, const char *h)
{
	if (*n == MAX_HEADERS || strchr(h, ':') == NULL || strpbrk(h, "\r\n") != NULL)
		return -1;
	list[(*n)++] = h;
	return 0;
}

static int parse_opts(int argc, char **argv, struct opts *o)
{
	static const struct option lo[] = {
		{ "port", 1, NULL, 'p' }, { "streams", 1, NULL, 'n' }, { "events", 1, NULL, 'm' },
		{ "rate", 1, NULL, 'r' }, { "sub-path", 1, NULL, 's' }, { "pub-path", 1, NULL, 'P' },
		{ "sub-header", 1, NULL, 'H' }, { "pub-header", 1, NULL, 'X' },
		{ "body", 1, NULL, 'b' }, { "event", 1, NULL, 'e' }, { "ready-event", 1, NULL, 'R' },
		{ "pids", 1, NULL, 'c' }, { "concurrency", 1, NULL, 'C' },
		{ "publishers", 1, NULL, 'K' }, { "pub-port", 1, NULL, 'Q' },
		{ "open-timeout", 1, NULL, 'o' }, { "idle", 1, NULL, 'i' }, { "drain", 1, NULL, 'd' },
		{ "time-limit", 1, NULL, 'L' }, { "ports", 1, NULL, 'T' },
		{ "storm-at", 1, NULL, 'S' }, { "resume", 1, NULL, 'E' }, { "retry-ms", 1, NULL, 'Y' },
		{ "storm-pause-ms", 1, NULL, 'Z' },
		{ "help", 0, NULL, 'h' }, { NULL, 0, NULL, 0 }
	};
	int ch;

	memset(o, 0, sizeof(*o));
	o->streams = 1000;
	o->events = 1000;
	o->rate = 100;
	o->body = "{\"seq\":{seq},\"t\":{t},\"after\":{after}}";
	o->storm_at = -1;
	o->retry_ms = 500;
	o->concurrency = 100;
	o->publishers = 1;
	o->open_timeout = 15;
	o->idle = 2;
	o->drain = 10;
	while ((ch = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		int bad = 0;
		switch (ch) {
		case 'p': o->port = atoi(optarg); break;
		case 'Q': o->pub_port = atoi(optarg); break;
		case 'n': o->streams = atol(optarg); break;
		case 'm': o->events = atol(optarg); break;
		case 'r': o->rate = atof(optarg); break;
		case 's': o->sub_path = optarg; break;
		case 'P': o->pub_path = optarg; break;
		case 'H': bad = add_header(o->sub_headers, &o->n_sub_headers, optarg); break;
		case 'X': bad = add_header(o->pub_headers, &o->n_pub_headers, optarg); break;
		case 'b': o->body = optarg; break;
		case 'e': o->event_filter = optarg; break;
		case 'R': o->ready_event = optarg; break;
		case 'c': bad = parse_pids(o, optarg); break;
		case 'C': o->concurrency = atoi(optarg); break;
		case 'K': o->publishers = atoi(optarg); break;
		case 'o': o->open_timeout = atof(optarg); break;
		case 'i': o->idle = atof(optarg); break;
		case 'd': o->drain = atof(optarg); break;
		case 'L': o->time_limit = atof(optarg); break;
		case 'T': bad = parse_ports(o, optarg); break;
		case 'S': o->storm_at = atol(optarg); break;
		case 'E':
			bad = strcmp(optarg, "header") != 0 && strcmp(optarg, "query") != 0;
			o->resume_query = strcmp(optarg, "query") == 0;
			break;
		case 'Y': o->retry_ms = atof(optarg); break;
		case 'Z': o->storm_pause_ms = atof(optarg); break;
		case 'h': usage(stdout); exit(0);
		default: return -1;
		}
		if (bad) {
			fprintf(stderr, "sse_load: bad option value \"%s\"\n", optarg);
			return -1;
		}
	}
	if (optind != argc || o->port <= 0 || o->port > 65535 || o->sub_path == NULL ||
	    o->pub_path == NULL || o->streams < 0 || o->events < 0 || o->rate <= 0 ||
	    o->concurrency < 1 || o->publishers < 1 || o->publishers > MAX_PUBLISHERS ||
	    o->open_timeout <= 0 || o->idle < 0 || o->drain < 0 || o->retry_ms < 0 || o->storm_pause_ms < 0 ||
	    (o->storm_at >= 0 && o->storm_at >= o->events))
		return -1;
	if (o->time_limit <= 0)
		o->time_limit = 60 + o->open_timeout + (double)o->streams / 50 + o->idle +
				2 * (double)o->events / o->rate + o->drain;
	return 0;
}

static void raise_nofile(long need)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && (rlim_t)(need + 32) > rl.rlim_cur)
		fprintf(stderr, "sse_load: open files limit %llu is below %ld streams\n",
			(unsigned long long)rl.rlim_cur, need);
}

/* Keeps serving the streams while publishing, then until every open stream
 * has every event or the drain time has passed. */
static void publish_phase(struct run *r, struct pubs *ps, int64_t deadline)
{
	int64_t drain_end = 0;

	while (!interrupted && now_ns() < deadline) {
		uint64_t want = (uint64_t)r->ready_total * (uint64_t)r->o.events;
		poll_once(r, r->storm_done ? 5 : 20);
		if (r->o.storm_at >= 0 && !r->storm_done && atomic_load(&ps->sent) >= r->o.storm_at)
			storm(r);
		if (r->storm_done)
			storm_service(r);
		if (ps->done < ps->n)
			continue;
		if (drain_end == 0)
			drain_end = now_ns() + (int64_t)(r->o.drain * 1e9);
		if (r->deliveries >= want || now_ns() >= drain_end)
			break;
	}
	ps->stop = 1;
}

int main(int argc, char **argv)
{
	static struct run r;
	static struct pubs ps;
	struct pub tot;
	struct sample s[3];
	int64_t t0, deadline;

	if (parse_opts(argc, argv, &r.o) < 0) {
		usage(stderr);
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	raise_nofile(r.o.streams + 16);
	r.ep = epoll_create1(EPOLL_CLOEXEC);
	r.c = calloc((size_t)r.o.streams + 1, sizeof(*r.c));
	ps.events = r.o.events;
	ps.acked = calloc((size_t)r.o.events + 1, sizeof(*ps.acked));
	r.ps = &ps;
	r.seq_id = calloc((size_t)r.o.events + 1, sizeof(*r.seq_id));
	if (r.ep < 0 || r.c == NULL || ps.acked == NULL || r.seq_id == NULL) {
		fprintf(stderr, "sse_load: %s\n", strerror(errno));
		return 1;
	}
	for (long i = 0; i < r.o.streams; i++)
		r.c[i].fd = -1;
	t0 = now_ns();
	deadline = t0 + (int64_t)(r.o.time_limit * 1e9);
	memset(s, 0, sizeof(s));
	take_sample(&r.o, &s[0]);
	open_streams(&r, deadline);
	serve_for(&r, r.o.idle);
	take_sample(&r.o, &s[1]);
	ps.start = now_ns();
	for (int i = 0; i < r.o.publishers; i++) {
		ps.p[i].o = &r.o;
		ps.p[i].all = &ps;
		ps.p[i].index = i;
	}
	ps.n = r.o.publishers;
	for (int i = 0; i < ps.n; i++) {
		if (pthread_create(&ps.th[i], NULL, pub_main, &ps.p[i]) != 0) {
			fprintf(stderr, "sse_load: pthread_create failed\n");
			return 1;
		}
	}
	publish_phase(&r, &ps, deadline);
	for (int i = 0; i < ps.n; i++)
		pthread_join(ps.th[i], NULL);
	take_sample(&r.o, &s[2]);
	pubs_merge(&ps, &tot);
	if (now_ns() >= deadline || interrupted)
		fprintf(stderr, "sse_load: stopped early (%s)\n",
			interrupted ? "signal" : "time limit");
	report(&r, &tot, s, (double)(now_ns() - t0) / 1e9);
	for (long i = 0; i < r.o.streams; i++) {
		if (r.c[i].fd >= 0)
			close(r.c[i].fd);
		sse_free(&r.c[i].sp);
		free(r.c[i].head);
		free(r.c[i].req);
		free(r.c[i].k.seen);
	}
	free(r.c);
	free(ps.acked);
	free(r.seq_id);
	free(r.lat_us.v);
	free(tot.rtt_us.v);
	for (int i = 0; i < ps.n; i++)
		free(ps.p[i].rtt_us.v);
	close(r.ep);
	return 0;
}
