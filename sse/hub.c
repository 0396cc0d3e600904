#include "hub.h"

#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "../core/fcgi_record.h"
#include "../core/timefmt.h"
#include "sse.h"

#define BUCKETS 1024          /* tenant index */
#define TICK_MS 100           /* heartbeat and lifetime resolution */
#define CLOSE_GRACE_MS 2000   /* a graceful end waits this long to flush */
#define EPOLL_BATCH 256

enum end_reason { END_GONE, END_LIFETIME, END_SHUTDOWN, END_SLOW, END_CLOSED, END_ERROR,
		  END_REPLACED, END_REVOKED };

static const char *const reason_names[] = {
	"client_gone", "lifetime", "shutdown", "dropped_slow", "closed_by_publisher", "write_error",
	"replaced", "revoked",
};

struct stream {
	int fd;
	int request_id;
	char *tenant, *events, *topics, *key, *auth, *user; /* one allocation: strs */
	char *strs;
	char reqid[40];
	char last_id[HUB_ID_MAX + 1];
	unsigned bucket;
	struct stream *tprev, *tnext; /* tenant bucket list */
	struct stream *gprev, *gnext; /* every stream */
	char *pending;                /* unsent bytes, allocated only when needed */
	size_t pending_len, pending_cap;
	long long started_ms, next_ping_ms, deadline_ms, close_by_ms;
	long long revoke_at_ms;       /* the login ends: event: revoked (0: never) */
	long long bytes;
	int closing;                  /* end records queued; close once flushed */
	int dead;                     /* closed; freed at the end of the loop turn */
	int want_out;                 /* EPOLLOUT registered */
	enum end_reason reason;
};

enum cmd_kind { CMD_ADD, CMD_EVENT, CMD_STOP, CMD_REVOKE_SESSION, CMD_REVOKE_USER };

struct cmd {
	enum cmd_kind kind;
	struct cmd *next;
	struct stream *stream;  /* CMD_ADD */
	char *frame;            /* CMD_EVENT: the SSE frame, encoded once */
	size_t frame_len;
	char *tenant, *type, *topic; /* CMD_EVENT, in one allocation with frame */
	int close;
	char *who, *who2;       /* CMD_REVOKE_*: session id, or tenant and user */
};

/* The last event id of one tenant (ids are shown only to that tenant). */
struct tenant_id {
	struct tenant_id *next;
	char id[HUB_ID_MAX + 1];
	char tenant[]; /* flexible: the tenant id */
};

struct hub {
	struct hub_opts o;
	pthread_t thread;
	int ep, wake_fd;
	atomic_int stopping;
	long long grace_ms;
	pthread_mutex_t mu;      /* guards the queue, ids and stats */
	struct cmd *head, *tail;
	struct tenant_id *last_ids[BUCKETS]; /* per tenant, under mu */
	long long last_ms, seq;
	struct hub_stats stats;
	/* owned by the hub thread */
	struct stream *buckets[BUCKETS];
	struct stream *all;
	struct stream *dead; /* closed this turn, freed after it (events may still name them) */
	int count;
};

static long long mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static unsigned hash(const char *s)
{
	unsigned h = 2166136261u;

	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 16777619u;
	return h % BUCKETS;
}

int hub_list_has(const char *list, const char *name)
{
	size_t n = strlen(name);

	if (list == NULL)
		return 1;
	for (const char *p = list; *p;) {
		const char *end = strchr(p, ',');
		size_t len = end ? (size_t)(end - p) : strlen(p);
		if (len == n && memcmp(p, name, n) == 0)
			return 1;
		if (end == NULL)
			break;
		p = end + 1;
	}
	return 0;
}

static void stat_add(struct hub *h, long long *field, long long d)
{
	pthread_mutex_lock(&h->mu);
	*field += d;
	pthread_mutex_unlock(&h->mu);
}

static void enqueue(struct hub *h, struct cmd *c)
{
	uint64_t one = 1;

	pthread_mutex_lock(&h->mu);
	c->next = NULL;
	if (h->tail)
		h->tail->next = c;
	else
		h->head = c;
	h->tail = c;
	pthread_mutex_unlock(&h->mu);
	/* EAGAIN only when the counter is saturated: the hub is awake anyway */
	ssize_t w = write(h->wake_fd, &one, sizeof(one));
	(void)w;
}

/* ---------------------------------------------------------------- writing */

static int reserve(struct stream *s, size_t extra, size_t max)
{
	size_t need = s->pending_len + extra, cap;
	char *p;

	if (need > max)
		return -1;
	if (need <= s->pending_cap)
		return 0;
	cap = s->pending_cap ? s->pending_cap : 1024;
	while (cap < need)
		cap *= 2;
	if (cap > max)
		cap = max;
	if ((p = realloc(s->pending, cap)) == NULL)
		return -1;
	s->pending = p;
	s->pending_cap = cap;
	return 0;
}

static void set_out(struct hub *h, struct stream *s, int on)
{
	struct epoll_event ev = { EPOLLIN | EPOLLRDHUP | (on ? EPOLLOUT : 0), { .ptr = s } };

	if (s->want_out == on)
		return;
	s->want_out = on;
	epoll_ctl(h->ep, EPOLL_CTL_MOD, s->fd, &ev);
}

/* Writes what is pending. Returns 0, or -1 when the connection failed. */
static int flush(struct hub *h, struct stream *s)
{
	while (s->pending_len > 0) {
		ssize_t n = write(s->fd, s->pending, s->pending_len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		if (n <= 0)
			return -1;
		memmove(s->pending, s->pending + n, s->pending_len - (size_t)n);
		s->pending_len -= (size_t)n;
	}
	if (s->pending_len == 0 && s->pending != NULL) {
		/* idle streams hold no buffer: thousands of them add up */
		free(s->pending);
		s->pending = NULL;
		s->pending_cap = 0;
	}
	set_out(h, s, s->pending_len > 0);
	return 0;
}

/* Sends iov (already FastCGI-framed): straight to the socket when nothing is
 * pending, the rest into the stream's buffer. Returns 0, -1 on a write
 * error, -2 when the buffer would exceed its bound. */
static int send_iov(struct hub *h, struct stream *s, struct iovec *iov, int cnt)
{
	size_t total = 0, done = 0;

	for (int i = 0; i < cnt; i++)
		total += iov[i].iov_len;
	if (s->pending_len == 0) {
		ssize_t n;
		do
			n = writev(s->fd, iov, cnt);
		while (n < 0 && errno == EINTR);
		if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)
			return -1;
		done = n > 0 ? (size_t)n : 0;
	}
	s->bytes += (long long)total;
	if (done == total)
		return 0;
	if (reserve(s, total - done, h->o.max_buffer) < 0)
		return -2;
	for (int i = 0; i < cnt; i++) {
		size_t len = iov[i].iov_len;
		const char *p = iov[i].iov_base;
		if (done >= len) {
			done -= len;
			continue;
		}
		memcpy(s->pending + s->pending_len, p + done, len - done);
		s->pending_len += len - done;
		done = 0;
	}
	set_out(h, s, 1);
	return 0;
}

/* Sends SSE text as FCGI_STDOUT records. */
static int send_text(struct hub *h, struct stream *s, const char *p, size_t n)
{
	static const char zeros[8];

	while (n > 0) {
		size_t chunk = n > FCGI_RECORD_MAX_CONTENT ? FCGI_RECORD_MAX_CONTENT : n;
		unsigned char hdr[FCGI_RECORD_HEADER];
		size_t pad = fcgi_record_header(hdr, FCGI_TYPE_STDOUT, s->request_id, chunk);
		struct iovec iov[3] = { { hdr, sizeof(hdr) }, { (void *)p, chunk }, { (void *)zeros, pad } };
		int rc = send_iov(h, s, iov, pad ? 3 : 2);
		if (rc < 0)
			return rc;
		p += chunk;
		n -= chunk;
	}
	return 0;
}

/* ---------------------------------------------------------------- lifecycle */

static void unlink_stream(struct hub *h, struct stream *s)
{
	if (s->tprev)
		s->tprev->tnext = s->tnext;
	else
		h->buckets[s->bucket] = s->tnext;
	if (s->tnext)
		s->tnext->tprev = s->tprev;
	if (s->gprev)
		s->gprev->gnext = s->gnext;
	else
		h->all = s->gnext;
	if (s->gnext)
		s->gnext->gprev = s->gprev;
	h->count--;
}

static void log_end(struct hub *h, const struct stream *s)
{
	struct json_object *f;

	if (!log_enabled(h->o.log, LOG_INFO))
		return;
	f = json_object_new_object();
	json_object_object_add(f, "request_id", json_object_new_string(s->reqid));
	json_object_object_add(f, "reason", json_object_new_string(reason_names[s->reason]));
	json_object_object_add(f, "duration_ms", json_object_new_int64(mono_ms() - s->started_ms));
	json_object_object_add(f, "bytes", json_object_new_int64(s->bytes));
	log_json(h->o.log, LOG_INFO, "stream_end", f);
}

/* Closes a stream now; its memory is freed at the end of the loop turn,
 * since later events of the same epoll batch may still point at it. */
static void destroy(struct hub *h, struct stream *s)
{
	unlink_stream(h, s);
	close(s->fd);
	s->fd = -1;
	s->dead = 1;
	log_end(h, s);
	pthread_mutex_lock(&h->mu);
	h->stats.open--;
	h->stats.closed++;
	if (s->reason == END_SLOW)
		h->stats.dropped_slow++;
	pthread_mutex_unlock(&h->mu);
	free(s->pending);
	s->pending = NULL;
	s->gnext = h->dead;
	h->dead = s;
}

static void free_dead(struct hub *h)
{
	while (h->dead != NULL) {
		struct stream *s = h->dead;
		h->dead = s->gnext;
		free(s->strs);
		free(s);
	}
}

/* Ends a stream. Gracefully: the end records are queued and the stream is
 * closed once they are written (or after CLOSE_GRACE_MS). */
static void end_stream(struct hub *h, struct stream *s, enum end_reason why, int graceful)
{
	struct buf end = BUF_INIT;

	if (s->closing)
		return;
	s->reason = why;
	if (graceful && fcgi_record_end(&end, s->request_id, 0) == 0) {
		struct iovec iov = { end.data, end.len };
		if (send_iov(h, s, &iov, 1) == 0 && s->pending_len > 0) {
			s->closing = 1;
			s->close_by_ms = mono_ms() + CLOSE_GRACE_MS;
			buf_release(&end);
			return;
		}
	}
	buf_release(&end);
	destroy(h, s);
}

static void fail_stream(struct hub *h, struct stream *s, int rc)
{
	s->closing = 0;
	end_stream(h, s, rc == -2 ? END_SLOW : END_ERROR, 0);
}

/* One connection per stream session: an older stream with s's key ends. */
static void replace_older(struct hub *h, const struct stream *s)
{
	struct stream *o, *next;

	if (s->key == NULL)
		return;
	for (o = h->buckets[s->bucket]; o != NULL; o = next) {
		next = o->tnext;
		if (o != s && o->key != NULL && !o->closing && strcmp(o->key, s->key) == 0 &&
		    strcmp(o->tenant, s->tenant) == 0)
			end_stream(h, o, END_REPLACED, 1);
	}
}

static void add_stream(struct hub *h, struct stream *s)
{
	struct epoll_event ev = { EPOLLIN | EPOLLRDHUP, { .ptr = s } };

	s->bucket = hash(s->tenant);
	s->tnext = h->buckets[s->bucket];
	if (s->tnext)
		s->tnext->tprev = s;
	h->buckets[s->bucket] = s;
	s->gnext = h->all;
	if (s->gnext)
		s->gnext->gprev = s;
	h->all = s;
	h->count++;
	replace_older(h, s);
	if (epoll_ctl(h->ep, EPOLL_CTL_ADD, s->fd, &ev) < 0) {
		end_stream(h, s, END_ERROR, 0);
		return;
	}
	/* the head was stashed in pending by hub_add: push it out now */
	if (flush(h, s) < 0)
		end_stream(h, s, END_GONE, 0);
}

/* ---------------------------------------------------------------- events */

static int matches(const struct stream *s, const struct cmd *c)
{
	if (s->closing || strcmp(s->tenant, c->tenant) != 0 || !hub_list_has(s->events, c->type))
		return 0;
	if (s->topics == NULL)
		return 1;
	return c->topic != NULL && hub_list_has(s->topics, c->topic);
}

static void deliver(struct hub *h, struct cmd *c, const char *id)
{
	struct stream *s, *next;
	struct buf close_frame = BUF_INIT;
	long long n = 0;
	int rc;

	if (c->close)
		sse_event(&close_frame, id, "close", "{}", 2);

	for (s = h->buckets[hash(c->tenant)]; s != NULL; s = next) {
		next = s->tnext; /* s may be freed below */
		if (!matches(s, c))
			continue;
		rc = send_text(h, s, c->frame, c->frame_len);
		if (rc < 0) {
			fail_stream(h, s, rc);
			continue;
		}
		n++;
		memcpy(s->last_id, id, strlen(id) + 1);
		if (c->close && s->topics != NULL && c->topic != NULL) {
			if (close_frame.oom || send_text(h, s, close_frame.data, close_frame.len) < 0)
				fail_stream(h, s, -1);
			else
				end_stream(h, s, END_CLOSED, 1);
		}
	}
	buf_release(&close_frame);
	stat_add(h, &h->stats.delivered, n);
}

/* Sends a ping (or, when stopping, the shutdown event) to one stream. */
static int send_control(struct hub *h, struct stream *s, const char *event)
{
	char data[80], when[TIMEFMT_RFC3339_LEN + 1];
	struct buf frame = BUF_INIT;
	int rc;

	snprintf(data, sizeof(data), "{\"time\":\"%s\"}", timefmt_rfc3339(time(NULL), when));
	if (sse_event(&frame, s->last_id, event, data, strlen(data)) < 0) {
		buf_release(&frame);
		return -1;
	}
	rc = send_text(h, s, frame.data, frame.len);
	buf_release(&frame);
	return rc;
}

/* The stream's credentials are gone: say so, then end it. */
static void revoke_stream(struct hub *h, struct stream *s)
{
	int rc = send_control(h, s, "revoked");

	if (rc < 0)
		fail_stream(h, s, rc);
	else
		end_stream(h, s, END_REVOKED, 1);
}

static void revoke_matching(struct hub *h, const char *auth, const char *tenant, const char *user)
{
	struct stream *s, *next;

	for (s = h->all; s != NULL; s = next) {
		next = s->gnext;
		if (s->closing)
			continue;
		if (auth != NULL ? (s->auth != NULL && strcmp(s->auth, auth) == 0)
				 : (s->user != NULL && strcmp(s->user, user) == 0 &&
				    strcmp(s->tenant, tenant) == 0))
			revoke_stream(h, s);
	}
}

static void tick(struct hub *h, long long now)
{
	struct stream *s, *next;
	int rc;

	for (s = h->all; s != NULL; s = next) {
		next = s->gnext;
		if (s->closing) {
			if (now >= s->close_by_ms)
				destroy(h, s);
			continue;
		}
		if (s->revoke_at_ms && now >= s->revoke_at_ms) {
			revoke_stream(h, s);
			continue;
		}
		if (s->deadline_ms && now >= s->deadline_ms) {
			end_stream(h, s, END_LIFETIME, 1);
			continue;
		}
		if (now >= s->next_ping_ms) {
			s->next_ping_ms = now + h->o.heartbeat_ms;
			if ((rc = send_control(h, s, "ping")) < 0)
				fail_stream(h, s, rc);
		}
	}
}

static void begin_shutdown(struct hub *h)
{
	struct stream *s, *next;
	int rc;

	for (s = h->all; s != NULL; s = next) {
		next = s->gnext;
		if (s->closing)
			continue;
		if ((rc = send_control(h, s, "shutdown")) < 0)
			fail_stream(h, s, rc);
		else
			end_stream(h, s, END_SHUTDOWN, 1);
	}
}

/* ---------------------------------------------------------------- loop */

static void run_cmd(struct hub *h, struct cmd *c, int *stop)
{
	char id[HUB_ID_MAX + 1];

	switch (c->kind) {
	case CMD_ADD:
		add_stream(h, c->stream);
		break;
	case CMD_EVENT:
		/* the id is the first line of the frame: "id: <id>\n" */
		snprintf(id, sizeof(id), "%.*s", (int)strcspn(c->frame + 4, "\n"), c->frame + 4);
		deliver(h, c, id);
		free(c->frame);
		break;
	case CMD_STOP:
		*stop = 1;
		begin_shutdown(h);
		break;
	case CMD_REVOKE_SESSION:
		revoke_matching(h, c->who, NULL, NULL);
		break;
	case CMD_REVOKE_USER:
		revoke_matching(h, NULL, c->who, c->who2);
		break;
	}
	free(c->who);
	free(c);
}

static int drain_commands(struct hub *h)
{
	struct cmd *c, *next;
	uint64_t n;
	int stop = 0;

	if (read(h->wake_fd, &n, sizeof(n)) < 0 && errno != EAGAIN)
		return 0;
	pthread_mutex_lock(&h->mu);
	c = h->head;
	h->head = h->tail = NULL;
	pthread_mutex_unlock(&h->mu);
	for (; c != NULL; c = next) {
		next = c->next;
		run_cmd(h, c, &stop);
	}
	return stop;
}

static void on_io(struct hub *h, struct stream *s, uint32_t ev)
{
	char scratch[512];

	if (s->dead)
		return;
	if (ev & EPOLLIN) {
		/* the front server sends nothing after the request; EOF or
		 * anything else (an FCGI_ABORT_REQUEST) ends the stream */
		ssize_t n = read(s->fd, scratch, sizeof(scratch));
		if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
			s->closing = 0;
			end_stream(h, s, END_GONE, 0);
			return;
		}
	}
	if (ev & (EPOLLHUP | EPOLLERR | EPOLLRDHUP)) {
		s->closing = 0;
		end_stream(h, s, END_GONE, 0);
		return;
	}
	if (ev & EPOLLOUT) {
		if (flush(h, s) < 0) {
			s->closing = 0;
			end_stream(h, s, END_GONE, 0);
		} else if (s->closing && s->pending_len == 0) {
			destroy(h, s);
		}
	}
}

static void *hub_main(void *arg)
{
	struct hub *h = arg;
	struct epoll_event evs[EPOLL_BATCH];
	long long next_tick = mono_ms() + TICK_MS, stop_by = 0;
	int stopping = 0;

	for (;;) {
		long long now = mono_ms();
		int n = epoll_wait(h->ep, evs, EPOLL_BATCH, next_tick > now ? (int)(next_tick - now) : 0);

		for (int i = 0; i < n; i++) {
			if (evs[i].data.ptr == NULL) {
				if (drain_commands(h) && !stopping) {
					stopping = 1;
					stop_by = mono_ms() + h->grace_ms;
				}
			} else {
				on_io(h, evs[i].data.ptr, evs[i].events);
			}
		}
		now = mono_ms();
		if (now >= next_tick) {
			next_tick = now + TICK_MS;
			if (!stopping)
				tick(h, now);
		}
		free_dead(h);
		if (stopping && (h->all == NULL || now >= stop_by))
			break;
	}
	while (h->all != NULL) {
		h->all->reason = END_SHUTDOWN;
		destroy(h, h->all);
	}
	free_dead(h);
	return NULL;
}

/* ---------------------------------------------------------------- public */

struct hub *hub_start(const struct hub_opts *o, struct buf *err)
{
	struct hub *h = calloc(1, sizeof(*h));
	struct epoll_event ev = { EPOLLIN, { .ptr = NULL } };

	if (h == NULL) {
		buf_puts(err, "out of memory");
		return NULL;
	}
	h->o = *o;
	h->ep = epoll_create1(EPOLL_CLOEXEC);
	h->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	pthread_mutex_init(&h->mu, NULL);
	if (h->ep < 0 || h->wake_fd < 0 || epoll_ctl(h->ep, EPOLL_CTL_ADD, h->wake_fd, &ev) < 0 ||
	    pthread_create(&h->thread, NULL, hub_main, h) != 0) {
		buf_printf(err, "hub: %s", strerror(errno));
		if (h->ep >= 0)
			close(h->ep);
		if (h->wake_fd >= 0)
			close(h->wake_fd);
		pthread_mutex_destroy(&h->mu);
		free(h);
		return NULL;
	}
	return h;
}

static long long lifetime(const struct hub *h)
{
	uint32_t rnd = 0;
	long long span;

	if (h->o.max_lifetime_ms <= 0)
		return 0;
	span = h->o.max_lifetime_ms * h->o.lifetime_jitter_pct / 100;
	RAND_bytes((unsigned char *)&rnd, sizeof(rnd));
	/* only shorter, never longer than the configured bound */
	return h->o.max_lifetime_ms - (span > 0 ? (long long)(rnd % (uint32_t)(span + 1)) : 0);
}

static struct stream *new_stream(const struct hub *h, const struct hub_stream_spec *sp)
{
	const char *src[6] = { sp->tenant_id, sp->events, sp->topics, sp->key, sp->auth_session,
			       sp->user_id };
	char **dst[6];
	size_t total = 0, off = 0;
	struct stream *s = calloc(1, sizeof(*s));
	long long now = mono_ms(), life = lifetime(h);

	if (s == NULL)
		return NULL;
	dst[0] = &s->tenant, dst[1] = &s->events, dst[2] = &s->topics;
	dst[3] = &s->key, dst[4] = &s->auth, dst[5] = &s->user;
	for (int i = 0; i < 6; i++)
		total += src[i] ? strlen(src[i]) + 1 : 0;
	if ((s->strs = malloc(total)) == NULL)
		goto err;
	for (int i = 0; i < 6; i++) {
		size_t n = src[i] ? strlen(src[i]) + 1 : 0;
		*dst[i] = n ? memcpy(s->strs + off, src[i], n) : NULL;
		off += n;
	}
	if ((s->pending = malloc(sp->head_len ? sp->head_len : 1)) == NULL)
		goto err;
	memcpy(s->pending, sp->head, sp->head_len);
	s->pending_len = s->pending_cap = sp->head_len;
	s->bytes = (long long)sp->head_len;
	s->fd = sp->fd;
	s->request_id = sp->request_id;
	snprintf(s->reqid, sizeof(s->reqid), "%s", sp->request_log_id ? sp->request_log_id : "");
	s->started_ms = now;
	s->next_ping_ms = now + h->o.heartbeat_ms;
	s->deadline_ms = life ? now + life : 0;
	if (sp->auth_expires > 0) {
		long long left_ms = (sp->auth_expires - (long long)time(NULL)) * 1000;
		s->revoke_at_ms = now + (left_ms > 0 ? left_ms : 0);
		if (s->revoke_at_ms == 0)
			s->revoke_at_ms = 1;
	}
	return s;
err:
	if (s != NULL)
		free(s->strs);
	free(s);
	return NULL;
}

int hub_add(struct hub *h, const struct hub_stream_spec *sp)
{
	struct cmd *c;
	struct stream *s;
	struct buf framed = BUF_INIT;
	struct hub_stream_spec spec = *sp;
	int full;

	if (atomic_load(&h->stopping)) {
		errno = ESHUTDOWN;
		return -1;
	}
	pthread_mutex_lock(&h->mu);
	full = h->stats.open >= h->o.max_streams;
	if (!full)
		h->stats.open++; /* reserved now, so concurrent adds respect the bound */
	pthread_mutex_unlock(&h->mu);
	if (full) {
		errno = EAGAIN;
		return -1;
	}
	/* the head goes out as FCGI_STDOUT records like everything else */
	fcgi_record_stdout(&framed, sp->request_id, sp->head, sp->head_len);
	spec.head = framed.data;
	spec.head_len = framed.len;
	s = framed.oom ? NULL : new_stream(h, &spec);
	buf_release(&framed);
	if (s != NULL)
		hub_last_id(h, sp->tenant_id, s->last_id); /* pings carry it until an event */
	if (s == NULL || (c = calloc(1, sizeof(*c))) == NULL) {
		if (s != NULL) {
			free(s->pending);
			free(s->strs);
			free(s);
		}
		stat_add(h, &h->stats.open, -1);
		errno = ENOMEM;
		return -1;
	}
	fcntl(sp->fd, F_SETFL, fcntl(sp->fd, F_GETFL) | O_NONBLOCK);
	stat_add(h, &h->stats.opened, 1);
	c->kind = CMD_ADD;
	c->stream = s;
	enqueue(h, c);
	return 0;
}

/* The tenant's last-id slot, created on first use. Caller holds h->mu.
 * NULL when out of memory. */
static struct tenant_id *tenant_slot(struct hub *h, const char *tenant, int create)
{
	unsigned b = hash(tenant);
	struct tenant_id *t;
	size_t n = strlen(tenant) + 1;

	for (t = h->last_ids[b]; t != NULL; t = t->next)
		if (strcmp(t->tenant, tenant) == 0)
			return t;
	if (!create || (t = malloc(sizeof(*t) + n)) == NULL)
		return NULL;
	memcpy(t->tenant, tenant, n);
	memcpy(t->id, "0-0", 4);
	t->next = h->last_ids[b];
	h->last_ids[b] = t;
	return t;
}

/* Assigns the next id: "<unix ms>-<seq>", increasing even if the clock
 * steps back, and records it as the tenant's last. Caller holds h->mu. */
static void next_id(struct hub *h, const char *tenant, char *id)
{
	struct tenant_id *t;

	struct timespec ts;
	long long ms;

	clock_gettime(CLOCK_REALTIME, &ts);
	ms = (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
	if (ms > h->last_ms) {
		h->last_ms = ms;
		h->seq = 0;
	} else {
		h->seq++;
	}
	snprintf(id, HUB_ID_MAX + 1, "%lld-%lld", h->last_ms, h->seq);
	if ((t = tenant_slot(h, tenant, 1)) != NULL)
		memcpy(t->id, id, strlen(id) + 1);
	h->stats.published++;
}

int hub_publish(struct hub *h, const struct hub_event *e, char *id)
{
	struct cmd *c = calloc(1, sizeof(*c));
	struct buf frame = BUF_INIT;
	size_t lt = strlen(e->tenant_id) + 1, ly = strlen(e->type) + 1,
	       lp = e->topic ? strlen(e->topic) + 1 : 0;
	char *strs;

	if (c == NULL || atomic_load(&h->stopping))
		goto err;
	pthread_mutex_lock(&h->mu);
	next_id(h, e->tenant_id, id);
	pthread_mutex_unlock(&h->mu);
	if (sse_event(&frame, id, e->type, e->data, e->len) < 0)
		goto err;
	/* frame and the matching keys in one allocation */
	if ((strs = malloc(frame.len + lt + ly + lp)) == NULL)
		goto err;
	memcpy(strs, frame.data, frame.len);
	c->frame = strs;
	c->frame_len = frame.len;
	c->tenant = memcpy(strs + frame.len, e->tenant_id, lt);
	c->type = memcpy(strs + frame.len + lt, e->type, ly);
	c->topic = lp ? memcpy(strs + frame.len + lt + ly, e->topic, lp) : NULL;
	c->close = e->close;
	c->kind = CMD_EVENT;
	buf_release(&frame);
	enqueue(h, c);
	return 0;
err:
	buf_release(&frame);
	free(c);
	return -1;
}

static int enqueue_revoke(struct hub *h, enum cmd_kind kind, const char *a, const char *b)
{
	size_t la = strlen(a) + 1, lb = b ? strlen(b) + 1 : 0;
	struct cmd *c;

	if (atomic_load(&h->stopping) || (c = calloc(1, sizeof(*c))) == NULL)
		return -1;
	if ((c->who = malloc(la + lb)) == NULL) {
		free(c);
		return -1;
	}
	memcpy(c->who, a, la);
	c->who2 = lb ? memcpy(c->who + la, b, lb) : NULL;
	c->kind = kind;
	enqueue(h, c);
	return 0;
}

int hub_revoke_session(struct hub *h, const char *auth_session)
{
	return enqueue_revoke(h, CMD_REVOKE_SESSION, auth_session, NULL);
}

int hub_revoke_user(struct hub *h, const char *tenant_id, const char *user_id)
{
	return enqueue_revoke(h, CMD_REVOKE_USER, tenant_id, user_id);
}

void hub_last_id(struct hub *h, const char *tenant_id, char *id)
{
	const struct tenant_id *t;

	pthread_mutex_lock(&h->mu);
	t = tenant_slot(h, tenant_id, 0);
	memcpy(id, t ? t->id : "0-0", strlen(t ? t->id : "0-0") + 1);
	pthread_mutex_unlock(&h->mu);
}

int hub_stopping(struct hub *h)
{
	return atomic_load(&h->stopping);
}

void hub_stop(struct hub *h, long long grace_ms)
{
	struct cmd *c = calloc(1, sizeof(*c));

	h->grace_ms = grace_ms;
	atomic_store(&h->stopping, 1);
	if (c != NULL) {
		c->kind = CMD_STOP;
		enqueue(h, c);
	}
	pthread_join(h->thread, NULL);
}

void hub_free(struct hub *h)
{
	struct cmd *c, *next;

	if (h == NULL)
		return;
	for (c = h->head; c != NULL; c = next) { /* commands that came after stop */
		next = c->next;
		if (c->kind == CMD_ADD) {
			close(c->stream->fd);
			free(c->stream->pending);
			free(c->stream->strs);
			free(c->stream);
		}
		free(c->frame);
		free(c->who);
		free(c);
	}
	for (int b = 0; b < BUCKETS; b++) {
		struct tenant_id *t, *tn;
		for (t = h->last_ids[b]; t != NULL; t = tn) {
			tn = t->next;
			free(t);
		}
	}
	close(h->ep);
	close(h->wake_fd);
	pthread_mutex_destroy(&h->mu);
	free(h);
}

void hub_get_stats(struct hub *h, struct hub_stats *out)
{
	pthread_mutex_lock(&h->mu);
	*out = h->stats;
	pthread_mutex_unlock(&h->mu);
}
