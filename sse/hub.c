#include "hub.h"

#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "../core/fcgi_record.h"
#include "../core/timefmt.h"
#include "../redis/bus.h"
#include "sse.h"
#include "ring.h"
#include "writer.h"

#define BUCKETS 1024          /* tenant index */
#define TICK_MS 100           /* heartbeat and lifetime resolution */
#define CLOSE_GRACE_MS 2000   /* a graceful end waits this long to flush */
#define EPOLL_BATCH 256
#define REPLAY_BATCH 500      /* history entries per read */
#define RECENT_MAX 1024       /* recent events kept per tenant, to resume from memory */
#define RECENT_BYTES (1 << 20) /* ... and at most this many bytes of them */
#define OUTBOX_MAX 10000      /* control messages kept while the bus is down */

enum end_reason { END_GONE, END_LIFETIME, END_SHUTDOWN, END_SLOW, END_CLOSED, END_ERROR,
		  END_REPLACED, END_REVOKED };

static const char *const reason_names[] = {
	"client_gone", "lifetime", "shutdown", "dropped_slow", "closed_by_publisher", "write_error",
	"replaced", "revoked",
};

struct stream {
	char *tenant, *events, *topics, *key, *auth, *user; /* one allocation: strs */
	char *strs;
	char reqid[40];
	char pos[HUB_ID_MAX + 1];      /* the last tenant event covered ("" unknown) */
	const struct cursor *cur;     /* its tenant's cursor (NULL: none could be made) */
	char resume[HUB_ID_MAX + 1];   /* Last-Event-ID to check, while need_info */
	int live;                     /* has every event up to pos and takes live
				       * events after it; else behind: waiting
				       * on a fetch (in_flight) or for the bus */
	int need_info;                /* the start point is still to be resolved */
	int resume_bad;               /* the Last-Event-ID was not an id */
	int must_fetch;               /* read history after pos before going live */
	int in_flight;                /* 1 while waiting on a fetch */
	struct stream *wnext;         /* the fetch's other waiters */
	int announce;                 /* `event: connected` still to be sent */
	int announced;                /* saw its own replacement notice on the bus */
	char conn[33];                /* random: names this connection on the bus
				       * (a client may reuse its X-Request-Id) */
	char key_hash[33];            /* the key as announced: a stream session id
				       * is a credential, so only a hash travels */
	unsigned bucket;
	struct stream *tprev, *tnext; /* tenant bucket list */
	struct stream *gprev, *gnext; /* every stream */
	struct writer w;              /* its output: the connection's fd and request
				       * id, pending bytes, queued text */
	struct stream *dnext;         /* the hub's list of streams with queued text */
	int dirty;                    /* on that list */
	long long started_ms, next_ping_ms, deadline_ms, close_by_ms;
	long long revoke_at_ms;       /* the login ends: event: revoked (0: never) */
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
	char *strs;             /* CMD_EVENT: one allocation for the fields */
	const char *tenant;
	struct bus_entry e;
	char *who, *who2;       /* CMD_REVOKE_*: session id, or tenant and user */
};

/* Per tenant: the last event id seen (in-process: the last assigned) and,
 * with the bus, the unbroken run of events before it seen since the bus
 * last came up (a ring, oldest at head). */
struct cursor {
	struct cursor *next;
	char id[HUB_ID_MAX + 1];
	unsigned epoch;         /* bus epoch in which id was seen */
	struct ring ring;       /* recent events, so that a client resuming from
				 * an id just seen needs no Redis */
	struct fetch *fetches;  /* bus queries in flight for this tenant */
	char tenant[];          /* flexible: the tenant id */
};

/* A bus query shared by every stream that needs the same answer: the
 * tenant's info, or its history after one id (a reconnect storm asks
 * once, not once per client). */
struct fetch {
	struct fetch *next;
	struct cursor *cur;     /* the tenant; the fetch is on its list */
	int range;              /* 0: info */
	char after[HUB_ID_MAX + 1];
	struct stream *waiters; /* linked by wnext */
};

/* A control message waiting for the bus. */
struct outmsg {
	struct outmsg *next;
	size_t len;
	char msg[];
};

struct hub {
	struct hub_opts o;
	pthread_t thread;
	int ep, wake_fd;
	atomic_int stopping;
	long long grace_ms;
	pthread_mutex_t mu;      /* guards the queue, id assignment and stats */
	struct cmd *head, *tail;
	long long last_ms, seq;  /* in-process ids */
	struct hub_stats stats;
	/* owned by the hub thread */
	int bus_mode;            /* set at start: events come from the bus */
	int bus_warned;          /* bus_unreachable was logged */
	long long started_ms;
	struct bus *bus;         /* NULL: in-process only */
	unsigned epoch;          /* bumped each time the bus comes up */
	struct cursor *cursors[BUCKETS];
	struct outmsg *outbox, **outbox_tail;
	int outbox_len;
	struct stream *buckets[BUCKETS];
	struct stream *all;
	struct stream *dirty;    /* streams with queued text this pass (dnext) */
	struct stream *dead;     /* closed this turn, freed after it (events may still name them) */
	struct stream *zombies;  /* closed, but a bus answer still names them */
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

/* Asks for (or stops asking for) writability. Returns 0, or -1 when epoll
 * refused: the stream cannot be written any more and must fail, or its
 * pending bytes would wait forever. */
static int set_out(struct hub *h, struct stream *s, int on)
{
	struct epoll_event ev = { EPOLLIN | EPOLLRDHUP | (on ? EPOLLOUT : 0), { .ptr = s } };

	if (s->want_out == on)
		return 0;
	if (epoll_ctl(h->ep, EPOLL_CTL_MOD, s->w.fd, &ev) < 0)
		return -1;
	s->want_out = on;
	return 0;
}

static int sync_out(struct hub *h, struct stream *s)
{
	return set_out(h, s, writer_wants_out(&s->w));
}

/* Writes what is pending. Returns 0, or -1 when the connection failed. */
static int flush(struct hub *h, struct stream *s)
{
	if (writer_flush(&s->w) < 0)
		return -1;
	return sync_out(h, s);
}

/* Sends iov (already FastCGI-framed) after anything queued. Returns 0, -1
 * on a write error, -2 when the buffer would exceed its bound. */
static int send_iov(struct hub *h, struct stream *s, struct iovec *iov, int cnt)
{
	int rc = writer_iov(&s->w, iov, cnt);

	if (rc < 0)
		return rc;
	return sync_out(h, s);
}

/* Sends SSE text as FCGI_STDOUT records now, after anything queued. */
static int send_text(struct hub *h, struct stream *s, const char *p, size_t n)
{
	int rc = writer_text(&s->w, p, n);

	if (rc < 0)
		return rc;
	return sync_out(h, s);
}

/* Queues SSE text: every event a stream gets in one pass of the loop goes
 * out as one record in one write when the pass ends (commit_queued). */
static int queue_text(struct hub *h, struct stream *s, const char *p, size_t n)
{
	int rc = writer_queue(&s->w, p, n);

	if (rc < 0)
		return rc;
	if (!s->dirty) {
		s->dirty = 1;
		s->dnext = h->dirty;
		h->dirty = s;
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
	json_object_object_add(f, "bytes", json_object_new_int64(s->w.bytes));
	log_json(h->o.log, LOG_INFO, "stream_end", f);
}

/* Closes a stream now; its memory is freed at the end of the loop turn,
 * since later events of the same epoll batch may still point at it. */
static void destroy(struct hub *h, struct stream *s)
{
	unlink_stream(h, s);
	close(s->w.fd);
	s->w.fd = -1;
	s->dead = 1;
	log_end(h, s);
	pthread_mutex_lock(&h->mu);
	h->stats.open--;
	h->stats.closed++;
	if (s->reason == END_SLOW)
		h->stats.dropped_slow++;
	pthread_mutex_unlock(&h->mu);
	writer_release(&s->w);
	s->gnext = h->dead;
	h->dead = s;
}

static void stream_free(struct stream *s)
{
	writer_release(&s->w);
	free(s->strs);
	free(s);
}

/* Frees the streams closed this turn; those a bus answer still names wait
 * among the zombies until it has come. */
static void free_dead(struct hub *h)
{
	struct stream **pp;

	while (h->dead != NULL) {
		struct stream *s = h->dead;
		h->dead = s->gnext;
		if (s->in_flight > 0) {
			s->gnext = h->zombies;
			h->zombies = s;
		} else {
			stream_free(s);
		}
	}
	for (pp = &h->zombies; *pp != NULL;) {
		struct stream *s = *pp;
		if (s->in_flight == 0) {
			*pp = s->gnext;
			stream_free(s);
		} else {
			pp = &s->gnext;
		}
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
	if (graceful && fcgi_record_end(&end, s->w.request_id, 0) == 0) {
		struct iovec iov = { end.data, end.len };
		if (send_iov(h, s, &iov, 1) == 0 && writer_wants_out(&s->w)) {
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

/* ---------------------------------------------------------------- cursors */

/* The tenant's cursor, created on first use (NULL when out of memory). */
static struct cursor *cursor_get(struct hub *h, const char *tenant, int create)
{
	unsigned b = hash(tenant);
	struct cursor *c;
	size_t n = strlen(tenant) + 1;

	for (c = h->cursors[b]; c != NULL; c = c->next)
		if (strcmp(c->tenant, tenant) == 0)
			return c;
	if (!create || (c = calloc(1, sizeof(*c) + n)) == NULL)
		return NULL;
	memcpy(c->tenant, tenant, n);
	ring_init(&c->ring, RECENT_MAX, RECENT_BYTES);
	c->next = h->cursors[b];
	h->cursors[b] = c;
	return c;
}

/* The tenant's newest event id seen since the bus last came up, or NULL. */
static const char *cursor_now(struct hub *h, const char *tenant)
{
	const struct cursor *c = cursor_get(h, tenant, 0);

	return c != NULL && c->epoch == h->epoch && c->id[0] ? c->id : NULL;
}

/* ---------------------------------------------------------------- frames */

static int send_frame(struct hub *h, struct stream *s, const char *event, const char *data,
		      size_t len)
{
	struct buf f = BUF_INIT;
	int rc = -1;

	if (sse_event(&f, s->pos[0] ? s->pos : NULL, event, data, len) == 0)
		rc = send_text(h, s, f.data, f.len);
	buf_release(&f);
	return rc;
}

/* A ping, shutdown, revoked or reset: data is the server time. */
static int send_control(struct hub *h, struct stream *s, const char *event)
{
	char data[80], when[TIMEFMT_RFC3339_LEN + 1];

	snprintf(data, sizeof(data), "{\"time\":\"%s\"}", timefmt_rfc3339(time(NULL), when));
	return send_frame(h, s, event, data, strlen(data));
}

/* `event: connected`, with the id the stream starts from once known. */
static int send_connected(struct hub *h, struct stream *s)
{
	char data[96];

	s->announce = 0;
	snprintf(data, sizeof(data), "{\"connection_id\":\"%s\"}", s->reqid);
	return send_frame(h, s, "connected", data, strlen(data));
}

static int event_matches(const struct stream *s, const struct bus_entry *e)
{
	if (!hub_list_has(s->events, e->type))
		return 0;
	if (s->topics == NULL)
		return 1;
	return e->topic != NULL && hub_list_has(s->topics, e->topic);
}

/* s->pos = id, without printf: this runs per stream per event. */
static void set_pos(struct stream *s, const char *id)
{
	size_t n = strlen(id);

	if (n > HUB_ID_MAX)
		n = HUB_ID_MAX;
	memcpy(s->pos, id, n);
	s->pos[n] = '\0';
}

/* Whether the event (ms, seq) comes after pos, as bus_id_cmp would say,
 * with the event's id parsed once for every stream. */
static int after_pos(uint64_t ms, uint64_t seq, const char *pos)
{
	uint64_t pm = 0, ps = 0;

	bus_id_parse(pos, &pm, &ps);
	return ms != pm ? ms > pm : seq > ps;
}

/* Moves s past the event, sending it when it matches (and ending s after
 * a close for its topic). f NULL: the event could not be encoded and is
 * skipped. Returns 1 when sent. */
static int give(struct hub *h, struct stream *s, const struct bus_entry *e, const struct frames *f)
{
	int rc;

	set_pos(s, e->id);
	if (f == NULL || !event_matches(s, e))
		return 0;
	if ((rc = queue_text(h, s, f->event.data, f->event.len)) < 0) {
		fail_stream(h, s, rc);
		return 0;
	}
	if (e->close && s->topics != NULL && e->topic != NULL) {
		if ((rc = queue_text(h, s, f->close.data, f->close.len)) < 0)
			fail_stream(h, s, rc);
		else
			end_stream(h, s, END_CLOSED, 1);
	}
	return 1;
}

/* ---------------------------------------------------------------- recent events */

/* Whether Redis surely still holds every event after from, given `after`
 * of them are known: then memory may answer for it, and the answer is the
 * same as any process would give. Otherwise Redis is asked. A full history
 * holds at least max_len - batch + 1 events (bus_trim_batch). */
static int ring_may_replay(const struct hub *h, const char *from, unsigned after)
{
	uint64_t ms = 0, seq = 0;
	struct timespec ts;

	if (h->o.history_max_len > 0 &&
	    (long long)after > h->o.history_max_len - bus_trim_batch(h->o.history_max_len) + 1)
		return 0;
	if (h->o.history_max_age_ms <= 0)
		return 1;
	clock_gettime(CLOCK_REALTIME, &ts);
	bus_id_parse(from, &ms, &seq);
	return (long long)ms >= (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000 - h->o.history_max_age_ms;
}

/* If from is the id of an event in the tenant's ring, sends s every later
 * one and returns 1 (s is then at the tenant's newest event); else 0. */
static int ring_replay(struct hub *h, struct stream *s, const char *from)
{
	const struct cursor *c = cursor_get(h, s->tenant, 0);
	long long sent = 0;
	long at;
	unsigned i;

	if (c == NULL || c->epoch != h->epoch || c->ring.len == 0 ||
	    (at = ring_find(&c->ring, from)) < 0 ||
	    !ring_may_replay(h, from, c->ring.len - 1 - (unsigned)at))
		return 0;
	for (i = (unsigned)at + 1; i < c->ring.len && !s->closing && !s->dead; i++) {
		const struct recent *r = ring_at(&c->ring, i);
		sent += give(h, s, &r->e, r->f.event.len ? &r->f : NULL);
	}
	stat_add(h, &h->stats.replayed, sent);
	return 1;
}

/* ---------------------------------------------------------------- sync */

/* Puts s on the tenant's fetch for the same question, asking the bus only
 * when there is none yet. Returns 0, or -1 when the bus refused. */
static int ask(struct hub *h, struct stream *s, int range)
{
	struct cursor *c = cursor_get(h, s->tenant, 1);
	struct fetch *f;
	int rc;

	if (c == NULL)
		return -1;
	for (f = c->fetches; f != NULL; f = f->next)
		if (f->range == range && (!range || strcmp(f->after, s->pos) == 0))
			break;
	if (f == NULL) {
		if ((f = calloc(1, sizeof(*f))) == NULL)
			return -1;
		f->range = range;
		f->cur = c;
		snprintf(f->after, sizeof(f->after), "%s", range ? s->pos : "");
		rc = range ? bus_query_range(h->bus, s->tenant, s->pos, REPLAY_BATCH, f)
			   : bus_query_info(h->bus, s->tenant, f);
		if (rc < 0) {
			free(f);
			return -1;
		}
		f->next = c->fetches;
		c->fetches = f;
	}
	s->wnext = f->waiters;
	f->waiters = s;
	s->in_flight = 1;
	return 0;
}

/* Takes an answered fetch off its tenant's list; returns its waiters. */
static struct stream *fetch_done(struct fetch *f)
{
	struct fetch **pp;
	struct stream *w = f->waiters;

	for (pp = &f->cur->fetches; *pp != NULL; pp = &(*pp)->next)
		if (*pp == f) {
			*pp = f->next;
			break;
		}
	free(f);
	return w;
}

/* Brings a stream that is not live one step closer: resolve where it
 * starts, read history after pos, or go live. Every path that ends a bus
 * answer comes back here, so a stream is never left behind. */
static void stream_sync(struct hub *h, struct stream *s)
{
	const char *cur;

	if (s->in_flight > 0 || s->closing || s->dead)
		return;
	s->live = 0;
	if (!bus_is_up(h->bus))
		return;
	if (s->need_info) {
		cur = cursor_now(h, s->tenant);
		if (s->resume[0] && ring_replay(h, s, s->resume)) {
			/* an id this process has just seen: nothing was lost */
			s->need_info = 0;
			s->must_fetch = 0;
		} else if (s->resume[0] || s->resume_bad || cur == NULL) {
			ask(h, s, 0); /* refused: the next tick asks again */
			return;
		} else {
			/* a fresh stream of a tenant being followed: start at its newest */
			s->need_info = 0;
			snprintf(s->pos, sizeof(s->pos), "%s", cur);
			if (s->announce && send_connected(h, s) < 0) {
				fail_stream(h, s, -1);
				return;
			}
		}
		if (s->closing || s->dead)
			return;
	}
	cur = cursor_now(h, s->tenant);
	if (!s->must_fetch && cur != NULL && bus_id_cmp(cur, s->pos) > 0)
		ring_replay(h, s, s->pos); /* live events passed it: from memory if it can */
	if (s->closing || s->dead)
		return;
	if (s->must_fetch || (cur != NULL && bus_id_cmp(cur, s->pos) > 0)) {
		if (ask(h, s, 1) == 0)
			s->must_fetch = 0;
		return;
	}
	s->live = 1;
}

/* Whether a client at id L missed events the history no longer has. */
static int must_reset(const char *l, const struct bus_info *in)
{
	int zero = bus_id_cmp(l, "0-0") == 0;

	if (!in->exists)
		return !zero; /* no history at all: it was lost */
	if (bus_id_cmp(l, in->trimmed_id) < 0 || bus_id_cmp(l, in->last_id) > 0)
		return 1;
	/* before the oldest kept but not the newest trimmed: not an id of
	 * this history (Redis lost its data) */
	return !zero && bus_id_cmp(l, in->first_id) < 0 && bus_id_cmp(l, in->trimmed_id) != 0;
}

static void info_to(struct hub *h, struct stream *s, const struct bus_info *in)
{
	int reset = 0, rc = 0;

	if (in != NULL) {
		s->need_info = 0;
		if (s->resume[0] && !s->resume_bad && !must_reset(s->resume, in)) {
			snprintf(s->pos, sizeof(s->pos), "%s", s->resume);
			s->must_fetch = 1;
		} else if (s->resume[0] || s->resume_bad) {
			/* events after the client's id are gone: reset, then what
			 * history still holds (from the newest trimmed id) */
			reset = 1;
			snprintf(s->pos, sizeof(s->pos), "%s", in->exists ? in->trimmed_id : "0-0");
			s->must_fetch = 1;
		} else {
			snprintf(s->pos, sizeof(s->pos), "%s", in->last_id);
		}
		if (s->announce)
			rc = send_connected(h, s);
		if (rc == 0 && reset) {
			rc = send_control(h, s, "reset");
			stat_add(h, &h->stats.resets, 1);
		}
		if (rc < 0) {
			fail_stream(h, s, rc);
			return;
		}
	}
	stream_sync(h, s);
}

static void on_bus_info(void *ctx, void *tag, const struct bus_info *in)
{
	struct stream *s, *next;

	for (s = fetch_done(tag); s != NULL; s = next) {
		next = s->wnext;
		s->in_flight = 0;
		if (!s->dead && !s->closing)
			info_to(ctx, s, in);
	}
}

/* History after s's position (the fetch's `after`), encoded once in fs. If
 * the history was trimmed past that position, events were lost: reset
 * from the trimmed id first; what follows it is exactly what came back. */
static void range_to(struct hub *h, struct stream *s, const char *trimmed,
		     const struct bus_entry *es, const struct frames *fs, size_t n)
{
	long long sent = 0;
	int rc;

	if (bus_id_cmp(s->pos, trimmed) < 0) {
		snprintf(s->pos, sizeof(s->pos), "%s", trimmed);
		if ((rc = send_control(h, s, "reset")) < 0) {
			fail_stream(h, s, rc);
			return;
		}
		stat_add(h, &h->stats.resets, 1);
	}
	for (size_t i = 0; i < n && !s->closing && !s->dead; i++)
		if (bus_id_cmp(es[i].id, s->pos) > 0)
			sent += give(h, s, &es[i], fs[i].event.len ? &fs[i] : NULL);
	stat_add(h, &h->stats.replayed, sent);
	if (n == REPLAY_BATCH)
		s->must_fetch = 1;
	stream_sync(h, s);
}

static void on_bus_range(void *ctx, void *tag, const char *trimmed, const struct bus_entry *es,
			 size_t n, int ok)
{
	struct hub *h = ctx;
	struct stream *s, *next, *w = fetch_done(tag);
	struct frames *fs = ok ? calloc(n ? n : 1, sizeof(*fs)) : NULL;

	for (size_t i = 0; fs != NULL && i < n; i++)
		frames_encode(&fs[i], &es[i]); /* a refused one stays empty: skipped */
	for (s = w; s != NULL; s = next) {
		next = s->wnext;
		s->in_flight = 0;
		if (s->dead || s->closing)
			continue;
		if (fs == NULL) {
			s->must_fetch = 1;
			stream_sync(h, s);
		} else {
			range_to(h, s, trimmed, es, fs, n);
		}
	}
	for (size_t i = 0; fs != NULL && i < n; i++)
		frames_release(&fs[i]);
	free(fs);
}

/* ---------------------------------------------------------------- live events */

static void on_event(struct hub *h, const char *tenant, const struct bus_entry *e)
{
	struct cursor *c = cursor_get(h, tenant, 1);
	struct stream *s, *next;
	struct frames f;
	int ok_f = frames_encode(&f, e) == 0;
	long long n = 0;
	uint64_t ems = 0, eseq = 0;

	bus_id_parse(e->id, &ems, &eseq);

	if (c != NULL) {
		if (c->epoch != h->epoch)
			ring_clear(&c->ring); /* events before this one may be missing */
		snprintf(c->id, sizeof(c->id), "%s", e->id);
		c->epoch = h->epoch;
	}
	for (s = h->buckets[hash(tenant)]; s != NULL; s = next) {
		next = s->tnext; /* s may end below */
		if (s->closing || !s->live ||
		    (c != NULL && s->cur != NULL ? s->cur != c : strcmp(s->tenant, tenant) != 0) ||
		    (s->pos[0] && !after_pos(ems, eseq, s->pos)))
			continue;
		n += give(h, s, e, ok_f ? &f : NULL);
	}
	if (c != NULL && h->bus != NULL && ok_f)
		ring_push(&c->ring, e, &f); /* on failure it empties: never a hole */
	else if (c != NULL && h->bus != NULL)
		ring_clear(&c->ring); /* an event it cannot hold: the run is broken */
	frames_release(&f);
	pthread_mutex_lock(&h->mu);
	h->stats.published++;
	h->stats.delivered += n;
	pthread_mutex_unlock(&h->mu);
}

static void on_bus_event(void *ctx, const char *tenant, const struct bus_entry *e)
{
	on_event(ctx, tenant, e);
}

/* ---------------------------------------------------------------- control */

/* Queues a control message for every process; sent when the bus is up. */
static void outbox_push(struct hub *h, const char *msg, size_t len)
{
	struct outmsg *m;

	if (h->bus == NULL)
		return;
	if (h->outbox == NULL && bus_send_control(h->bus, msg, len) == 0)
		return;
	if (h->outbox_len >= OUTBOX_MAX || (m = malloc(sizeof(*m) + len)) == NULL) {
		log_text(h->o.log, LOG_WARN, "bus_control_dropped", "outbox full");
		return;
	}
	m->next = NULL;
	m->len = len;
	memcpy(m->msg, msg, len);
	*h->outbox_tail = m;
	h->outbox_tail = &m->next;
	h->outbox_len++;
}

static void outbox_flush(struct hub *h)
{
	while (h->outbox != NULL && bus_send_control(h->bus, h->outbox->msg, h->outbox->len) == 0) {
		struct outmsg *m = h->outbox;
		h->outbox = m->next;
		if (h->outbox == NULL)
			h->outbox_tail = &h->outbox;
		h->outbox_len--;
		free(m);
	}
}

/* The stream session key of s now belongs to s, in every process. */
static void announce_key(struct hub *h, const struct stream *s)
{
	struct buf m = BUF_INIT;

	if (busmsg_key(&m, s->tenant, s->key_hash, s->conn) == 0)
		outbox_push(h, m.data, m.len);
	buf_release(&m);
}

/* Another process (or this one) announced conn for key (hashed): streams
 * with that key whose own announcement came earlier are older, and end. */
static void replace_remote(struct hub *h, const char *tenant, const char *key, const char *conn)
{
	struct stream *s, *next;

	for (s = h->buckets[hash(tenant)]; s != NULL; s = next) {
		next = s->tnext;
		if (s->closing || s->key == NULL || strcmp(s->key_hash, key) != 0 ||
		    strcmp(s->tenant, tenant) != 0)
			continue;
		if (strcmp(s->conn, conn) == 0)
			s->announced = 1;
		else if (s->announced)
			end_stream(h, s, END_REPLACED, 1);
	}
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

/* Revocations and stream keys from any process (busmsg.h). */
static void on_bus_control(void *ctx, const struct busmsg *m)
{
	struct hub *h = ctx;

	switch (m->kind) {
	case BUSMSG_REVOKE_LOGIN:
		revoke_matching(h, m->login, NULL, NULL);
		break;
	case BUSMSG_REVOKE_USER:
		revoke_matching(h, NULL, m->tenant, m->user);
		break;
	case BUSMSG_KEY:
		replace_remote(h, m->tenant, m->key, m->conn);
		break;
	default:
		break;
	}
}

static void on_bus_up(void *ctx)
{
	struct hub *h = ctx;
	struct stream *s, *next;

	h->epoch++;
	pthread_mutex_lock(&h->mu);
	h->stats.bus_up = 1;
	if (h->epoch > 1)
		h->stats.bus_reconnects++;
	pthread_mutex_unlock(&h->mu);
	log_text(h->o.log, h->epoch > 1 ? LOG_WARN : LOG_INFO, "bus_up",
		 h->epoch > 1 ? "reconnected: streams catch up from history" : "subscribed");
	outbox_flush(h);
	/* whatever was published while the bus was away is in history */
	for (s = h->all; s != NULL; s = next) {
		next = s->gnext;
		if (s->closing || s->tenant[0] == '\0')
			continue;
		if (!s->need_info)
			s->must_fetch = 1;
		stream_sync(h, s);
	}
}

static void on_bus_lost(void *ctx)
{
	struct hub *h = ctx;

	stat_add(h, &h->stats.bus_up, -1);
	log_text(h->o.log, LOG_WARN, "bus_lost", "Redis unreachable: streams stay open, publishing is refused");
}

/* ---------------------------------------------------------------- adding */

static void add_stream(struct hub *h, struct stream *s)
{
	struct epoll_event ev = { EPOLLIN | EPOLLRDHUP, { .ptr = s } };
	const struct cursor *c;

	s->bucket = hash(s->tenant);
	s->cur = s->tenant[0] ? cursor_get(h, s->tenant, 1) : NULL;
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
	if (epoll_ctl(h->ep, EPOLL_CTL_ADD, s->w.fd, &ev) < 0) {
		end_stream(h, s, END_ERROR, 0);
		return;
	}
	if (s->key != NULL)
		announce_key(h, s);
	if (s->tenant[0] == '\0') {
		s->live = 1; /* gets no events: nothing to catch up */
	} else if (h->bus == NULL) {
		c = cursor_get(h, s->tenant, 0);
		snprintf(s->pos, sizeof(s->pos), "%s", c != NULL ? c->id : "0-0");
		s->live = 1;
	} else {
		s->need_info = 1;
	}
	if (s->announce && (s->pos[0] || s->resume[0]) && !s->resume_bad) {
		if (s->resume[0])
			snprintf(s->pos, sizeof(s->pos), "%s", s->resume);
		if (send_connected(h, s) < 0) {
			fail_stream(h, s, -1);
			return;
		}
	}
	/* the head (and connected) are in pending: push them out now */
	if (flush(h, s) < 0) {
		end_stream(h, s, END_GONE, 0);
		return;
	}
	if (h->bus != NULL && s->need_info)
		stream_sync(h, s);
}

/* ---------------------------------------------------------------- timers */

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
		if (!s->live && !s->in_flight && h->bus != NULL && bus_is_up(h->bus)) {
			stream_sync(h, s); /* a query that could not be sent: try again */
			if (s->closing || s->dead)
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
	struct buf m = BUF_INIT;

	switch (c->kind) {
	case CMD_ADD:
		add_stream(h, c->stream);
		break;
	case CMD_EVENT:
		on_event(h, c->tenant, &c->e);
		break;
	case CMD_STOP:
		*stop = 1;
		begin_shutdown(h);
		break;
	case CMD_REVOKE_SESSION:
		revoke_matching(h, c->who, NULL, NULL);
		busmsg_revoke_login(&m, c->who);
		break;
	case CMD_REVOKE_USER:
		revoke_matching(h, NULL, c->who, c->who2);
		busmsg_revoke_user(&m, c->who, c->who2);
		break;
	}
	if (m.len > 0 && !m.oom)
		outbox_push(h, m.data, m.len);
	buf_release(&m);
	free(c->strs);
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
		ssize_t n = read(s->w.fd, scratch, sizeof(scratch));
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
		} else if (s->closing && !writer_wants_out(&s->w)) {
			destroy(h, s);
		}
	}
}

/* The end of a pass: every stream's queued events go out, one record and
 * one write per stream. */
static void commit_queued(struct hub *h)
{
	while (h->dirty != NULL) {
		struct stream *s = h->dirty;
		int rc;
		h->dirty = s->dnext;
		s->dirty = 0;
		if (s->dead || !writer_has_queued(&s->w))
			continue;
		if ((rc = writer_commit(&s->w)) < 0 || (rc = sync_out(h, s)) < 0)
			fail_stream(h, s, rc);
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
			void *ptr = evs[i].data.ptr;
			if (ptr == NULL) {
				if (drain_commands(h) && !stopping) {
					stopping = 1;
					stop_by = mono_ms() + h->grace_ms;
				}
			} else if (h->bus != NULL && bus_owns(h->bus, ptr)) {
				bus_on_io(h->bus, ptr, evs[i].events);
			} else {
				on_io(h, ptr, evs[i].events);
			}
		}
		now = mono_ms();
		if (now >= next_tick) {
			next_tick = now + TICK_MS;
			if (h->bus != NULL)
				bus_tick(h->bus, now);
			if (h->bus != NULL && h->epoch == 0 && !h->bus_warned && now - h->started_ms > 2000) {
				/* never up since start: say so once (after that, lost/up say it) */
				h->bus_warned = 1;
				log_text(h->o.log, LOG_WARN, "bus_unreachable",
					 "Redis unreachable since start: streams wait, publishing is refused");
			}
			if (!stopping)
				tick(h, now);
		}
		commit_queued(h);
		free_dead(h);
		if (stopping && (h->all == NULL || now >= stop_by))
			break;
	}
	while (h->all != NULL) {
		h->all->reason = END_SHUTDOWN;
		destroy(h, h->all);
	}
	bus_free(h->bus); /* no answers will come: zombies and fetches can go */
	h->bus = NULL;
	for (int b = 0; b < BUCKETS; b++)
		for (struct cursor *c = h->cursors[b]; c != NULL; c = c->next)
			while (c->fetches != NULL)
				fetch_done(c->fetches);
	for (struct stream *s = h->dead; s != NULL; s = s->gnext)
		s->in_flight = 0;
	for (struct stream *s = h->zombies; s != NULL; s = s->gnext)
		s->in_flight = 0;
	free_dead(h);
	return NULL;
}

/* ---------------------------------------------------------------- public */

struct hub *hub_start(const struct hub_opts *o, struct buf *err)
{
	struct hub *h = calloc(1, sizeof(*h));
	struct epoll_event ev = { EPOLLIN, { .ptr = NULL } };
	const struct bus_handlers bh = { h, on_bus_up, on_bus_lost, on_bus_event, on_bus_control,
					 on_bus_info, on_bus_range };

	if (h == NULL) {
		buf_puts(err, "out of memory");
		return NULL;
	}
	h->o = *o;
	h->o.redis = NULL; /* the bus keeps its own copy */
	h->outbox_tail = &h->outbox;
	h->stats.bus_up = o->redis == NULL;
	h->bus_mode = o->redis != NULL;
	h->started_ms = mono_ms();
	h->ep = epoll_create1(EPOLL_CLOEXEC);
	h->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	pthread_mutex_init(&h->mu, NULL);
	if (h->ep < 0 || h->wake_fd < 0 || epoll_ctl(h->ep, EPOLL_CTL_ADD, h->wake_fd, &ev) < 0)
		goto err;
	if (o->redis != NULL && (h->bus = bus_open(o->redis, h->ep, &bh)) == NULL) {
		errno = ENOMEM;
		goto err;
	}
	if (pthread_create(&h->thread, NULL, hub_main, h) != 0)
		goto err;
	return h;
err:
	buf_printf(err, "hub: %s", strerror(errno));
	bus_free(h->bus);
	if (h->ep >= 0)
		close(h->ep);
	if (h->wake_fd >= 0)
		close(h->wake_fd);
	pthread_mutex_destroy(&h->mu);
	free(h);
	return NULL;
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
	if (writer_init(&s->w, sp->fd, sp->request_id, h->o.max_buffer, sp->head, sp->head_len) < 0)
		goto err;
	s->announce = sp->announce;
	if (s->key != NULL) {
		unsigned char md[SHA256_DIGEST_LENGTH], rnd[16] = { 0 };
		RAND_bytes(rnd, sizeof(rnd));
		for (int i = 0; i < 16; i++)
			snprintf(s->conn + 2 * i, 3, "%02x", rnd[i]);
		SHA256((const unsigned char *)s->key, strlen(s->key), md);
		for (int i = 0; i < 16; i++)
			snprintf(s->key_hash + 2 * i, 3, "%02x", md[i]);
	}
	if (sp->resume_from != NULL && *sp->resume_from) {
		uint64_t ms, seq;
		if (strlen(sp->resume_from) <= HUB_ID_MAX && bus_id_parse(sp->resume_from, &ms, &seq) == 0)
			snprintf(s->resume, sizeof(s->resume), "%s", sp->resume_from);
		else
			s->resume_bad = 1;
	}
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
	int full, fl;

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
	/* the hub's thread never blocks on one stream: refuse an fd that
	 * cannot be made non-blocking */
	if ((fl = fcntl(sp->fd, F_GETFL)) < 0 ||
	    (!(fl & O_NONBLOCK) && fcntl(sp->fd, F_SETFL, fl | O_NONBLOCK) < 0)) {
		int err = errno;
		stat_add(h, &h->stats.open, -1);
		errno = err;
		return -1;
	}
	/* the head goes out as FCGI_STDOUT records like everything else */
	fcgi_record_stdout(&framed, sp->request_id, sp->head, sp->head_len);
	spec.head = framed.data;
	spec.head_len = framed.len;
	s = framed.oom ? NULL : new_stream(h, &spec);
	buf_release(&framed);
	if (s == NULL || (c = calloc(1, sizeof(*c))) == NULL) {
		if (s != NULL)
			stream_free(s);
		stat_add(h, &h->stats.open, -1);
		errno = ENOMEM;
		return -1;
	}
	stat_add(h, &h->stats.opened, 1);
	c->kind = CMD_ADD;
	c->stream = s;
	enqueue(h, c);
	return 0;
}

/* Assigns the next in-process id: "<unix ms>-<seq>", increasing even if the
 * clock steps back. Caller holds h->mu. */
static void next_id(struct hub *h, char *id)
{
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
}

int hub_publish(struct hub *h, const struct hub_event *e, char *id)
{
	struct cmd *c;
	size_t lt = strlen(e->tenant_id) + 1, ly = strlen(e->type) + 1,
	       lp = e->topic ? strlen(e->topic) + 1 : 0, li = HUB_ID_MAX + 1;
	char *p;

	if (h->bus_mode || atomic_load(&h->stopping) || (c = calloc(1, sizeof(*c))) == NULL)
		return -1;
	if ((p = c->strs = malloc(li + lt + ly + lp + e->len + 1)) == NULL) {
		free(c);
		return -1;
	}
	/* the id is assigned and queued under one lock, so queue order is id order */
	c->e.id = p;
	c->tenant = memcpy(p + li, e->tenant_id, lt);
	c->e.type = memcpy(p + li + lt, e->type, ly);
	c->e.topic = lp ? memcpy(p + li + lt + ly, e->topic, lp) : NULL;
	c->e.data = memcpy(p + li + lt + ly + lp, e->data, e->len);
	p[li + lt + ly + lp + e->len] = '\0';
	c->e.len = e->len;
	c->e.close = e->close;
	c->kind = CMD_EVENT;
	pthread_mutex_lock(&h->mu);
	next_id(h, c->strs);
	memcpy(id, c->strs, strlen(c->strs) + 1);
	pthread_mutex_unlock(&h->mu);
	enqueue(h, c);
	return 0;
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
			close(c->stream->w.fd);
			stream_free(c->stream);
		}
		free(c->strs);
		free(c->who);
		free(c);
	}
	for (int b = 0; b < BUCKETS; b++) {
		struct cursor *t, *tn;
		for (t = h->cursors[b]; t != NULL; t = tn) {
			tn = t->next;
			ring_release(&t->ring);
			free(t);
		}
	}
	while (h->outbox != NULL) {
		struct outmsg *m = h->outbox;
		h->outbox = m->next;
		free(m);
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
