#include "stream.h"

#include <errno.h>
#include <stdatomic.h>
#include <json-c/json.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "../core/fcgi_record.h"
#include "../core/timefmt.h"
#include "sse.h"

static const char *const reason_names[] = {
	"client_gone", "lifetime", "shutdown", "dropped_slow", "closed_by_publisher", "write_error",
	"replaced", "revoked", "client_closed",
};

unsigned stream_bucket(const char *tenant)
{
	unsigned h = 2166136261u;

	for (; *tenant; tenant++)
		h = (h ^ (unsigned char)*tenant) * 16777619u;
	return h % STREAM_BUCKETS;
}

void stream_stat_add(struct registry *r, long long *field, long long d)
{
	pthread_mutex_lock(r->mu);
	*field += d;
	pthread_mutex_unlock(r->mu);
}

/* ---------------------------------------------------------------- creating */

/* A lifetime within the jitter: only shorter, never longer than the bound. */
static long long lifetime(const struct hub_opts *o)
{
	uint32_t rnd = 0;
	long long span;

	if (o->max_lifetime_ms <= 0)
		return 0;
	span = o->max_lifetime_ms * o->lifetime_jitter_pct / 100;
	RAND_bytes((unsigned char *)&rnd, sizeof(rnd));
	return o->max_lifetime_ms - (span > 0 ? (long long)(rnd % (uint32_t)(span + 1)) : 0);
}

static void hex16(char *out, const unsigned char *in)
{
	static const char digits[] = "0123456789abcdef";

	for (int i = 0; i < 16; i++) {
		out[2 * i] = digits[in[i] >> 4];
		out[2 * i + 1] = digits[in[i] & 15];
	}
	out[32] = '\0';
}

struct stream *stream_new(const struct hub_opts *o, const struct hub_stream_spec *sp)
{
	const char *src[6] = { sp->tenant_id, sp->events, sp->topics, sp->key, sp->auth_session,
			       sp->user_id };
	char **dst[6];
	size_t total = 0, off = 0;
	struct stream *s = calloc(1, sizeof(*s));
	long long now = clock_mono_ms(), life = lifetime(o);

	if (s == NULL)
		return NULL;
	dst[0] = &s->tenant, dst[1] = &s->events, dst[2] = &s->topics;
	dst[3] = &s->key, dst[4] = &s->auth, dst[5] = &s->user;
	for (int i = 0; i < 6; i++)
		total += src[i] ? strlen(src[i]) + 1 : 0;
	if ((s->strs = malloc(total ? total : 1)) == NULL)
		goto err;
	for (int i = 0; i < 6; i++) {
		size_t n = src[i] ? strlen(src[i]) + 1 : 0;
		*dst[i] = n ? memcpy(s->strs + off, src[i], n) : NULL;
		off += n;
	}
	if (writer_init(&s->w, sp->fd, sp->request_id, o->max_buffer, sp->head, sp->head_len) < 0)
		goto err;
	s->announce = sp->announce;
	s->retry_ms = sp->retry_ms;
	s->heartbeat_ms = o->heartbeat_ms;
	if (sp->peer != NULL) {
		s->peer = *sp->peer;
		s->has_peer = 1;
		s->peer_shared = sp->peer_shared != 0;
	}
	if (s->key != NULL) {
		unsigned char md[SHA256_DIGEST_LENGTH], rnd[16] = { 0 };
		RAND_bytes(rnd, sizeof(rnd));
		hex16(s->conn, rnd);
		SHA256((const unsigned char *)s->key, strlen(s->key), md);
		hex16(s->key_hash, md);
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
	s->next_ping_ms = now + o->heartbeat_ms;
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

void stream_free(struct stream *s)
{
	writer_release(&s->w);
	free(s->strs);
	free(s);
}

static unsigned peer_bucket(const struct peer_conn *c)
{
	const unsigned char *p = (const unsigned char *)c;
	unsigned h = 2166136261u;

	for (size_t i = 0; i < sizeof(*c); i++)
		h = (h ^ p[i]) * 16777619u;
	return h % STREAM_PEER_BUCKETS;
}

int registry_end_peer(struct registry *r, const struct peer_conn *c, enum end_reason why,
		      long long before_ms)
{
	struct stream *s, *next;
	int n = 0;

	for (s = r->peers[peer_bucket(c)]; s != NULL; s = next) {
		next = s->pnext; /* s may be unlinked below */
		if (!s->closing && s->started_ms < before_ms && memcmp(&s->peer, c, sizeof(*c)) == 0) {
			stream_end(r, s, why, 1);
			n++;
		}
	}
	return n;
}

int registry_add(struct registry *r, struct stream *s)
{
	struct epoll_event ev = { EPOLLIN | EPOLLRDHUP, { .ptr = s } };

	s->bucket = stream_bucket(s->tenant);
	s->tnext = r->buckets[s->bucket];
	if (s->tnext)
		s->tnext->tprev = s;
	r->buckets[s->bucket] = s;
	s->gnext = r->all;
	if (s->gnext)
		s->gnext->gprev = s;
	r->all = s;
	if (s->has_peer) {
		struct stream **head = &r->peers[peer_bucket(&s->peer)];
		s->pnext = *head;
		if (s->pnext)
			s->pnext->pprev = s;
		*head = s;
		atomic_fetch_add(peer_conn_v4(&s->peer) ? &r->peers_v4 : &r->peers_v6, 1);
		if (s->peer_shared)
			atomic_fetch_add(&r->peers_shared, 1);
	}
	registry_schedule(r, s);
	r->count++;
	if (r->on_count != NULL && s->tenant[0])
		r->on_count(r->count_ctx, s, 1);
	if (epoll_ctl(r->ep, EPOLL_CTL_ADD, s->w.fd, &ev) < 0) {
		stream_end(r, s, END_ERROR, 0);
		return -1;
	}
	return 0;
}

/* ---------------------------------------------------------------- writing */

/* Asks for (or stops asking for) writability. Returns 0, or -1 when epoll
 * refused: the stream cannot be written any more and must fail, or its
 * pending bytes would wait forever. */
static int set_out(struct registry *r, struct stream *s, int on)
{
	struct epoll_event ev = { EPOLLIN | EPOLLRDHUP | (on ? EPOLLOUT : 0), { .ptr = s } };

	if (s->want_out == on)
		return 0;
	if (epoll_ctl(r->ep, EPOLL_CTL_MOD, s->w.fd, &ev) < 0)
		return -1;
	s->want_out = on;
	return 0;
}

static int sync_out(struct registry *r, struct stream *s)
{
	return set_out(r, s, writer_wants_out(&s->w));
}

int stream_flush(struct registry *r, struct stream *s)
{
	if (writer_flush(&s->w) < 0)
		return -1;
	return sync_out(r, s);
}

/* Sends iov (already FastCGI-framed) after anything queued. */
static int send_iov(struct registry *r, struct stream *s, struct iovec *iov, int cnt)
{
	int rc = writer_iov(&s->w, iov, cnt);

	if (rc < 0)
		return rc;
	return sync_out(r, s);
}

int stream_send(struct registry *r, struct stream *s, const char *p, size_t n)
{
	int rc = writer_text(&s->w, p, n);

	if (rc < 0)
		return rc;
	return sync_out(r, s);
}

int stream_queue(struct registry *r, struct stream *s, const char *p, size_t n)
{
	int rc = writer_queue(&s->w, p, n);

	if (rc < 0)
		return rc;
	if (!s->dirty) {
		s->dirty = 1;
		s->dnext = r->dirty;
		r->dirty = s;
	}
	return 0;
}

/* A paced stream whose output went below a quarter of its bound: its
 * catch-up may go on (sse/catchup.h). */
static void note_drained(struct registry *r, struct stream *s)
{
	if (s->paced && !s->drained && !s->dead && !s->closing &&
	    writer_buffered(&s->w) < s->w.max / 4) {
		s->drained = 1;
		s->rnext = r->drained;
		r->drained = s;
	}
}

struct stream *registry_take_drained(struct registry *r)
{
	struct stream *d = r->drained;

	r->drained = NULL;
	for (struct stream *s = d; s != NULL; s = s->rnext)
		s->drained = 0;
	return d;
}

void registry_commit(struct registry *r)
{
	while (r->dirty != NULL) {
		struct stream *s = r->dirty;
		int rc;
		r->dirty = s->dnext;
		s->dirty = 0;
		if (s->dead || !writer_has_queued(&s->w))
			continue;
		if ((rc = writer_commit(&s->w)) < 0 || (rc = sync_out(r, s)) < 0)
			stream_fail(r, s, rc);
		else
			note_drained(r, s);
	}
}

/* ---------------------------------------------------------------- frames */

int stream_send_frame(struct registry *r, struct stream *s, const char *event, const char *data,
		      size_t len)
{
	struct buf f = BUF_INIT;
	int rc = -1;

	if (sse_event(&f, s->pos[0] ? s->pos : NULL, event, data, len) == 0)
		rc = stream_send(r, s, f.data, f.len);
	buf_release(&f);
	return rc;
}

int stream_send_control(struct registry *r, struct stream *s, const char *event)
{
	char data[80], when[TIMEFMT_RFC3339_LEN + 1];

	snprintf(data, sizeof(data), "{\"time\":\"%s\"}", timefmt_rfc3339(time(NULL), when));
	return stream_send_frame(r, s, event, data, strlen(data));
}

int stream_send_connected(struct registry *r, struct stream *s)
{
	char data[160];

	s->announce = 0;
	/* what EventSource does not show a page: its retry and the heartbeat
	 * a client's monitor should expect */
	snprintf(data, sizeof(data), "{\"connection_id\":\"%s\",\"retry_ms\":%lld,\"heartbeat_ms\":%lld}",
		 s->reqid, s->retry_ms, s->heartbeat_ms);
	return stream_send_frame(r, s, "connected", data, strlen(data));
}

int stream_matches(const struct stream *s, const struct bus_entry *e)
{
	if (!hub_list_has(s->events, e->type))
		return 0;
	if (s->topics == NULL)
		return 1;
	return e->topic != NULL && hub_list_has(s->topics, e->topic);
}

void stream_set_pos(struct stream *s, const char *id)
{
	size_t n = strlen(id);

	if (n > HUB_ID_MAX)
		n = HUB_ID_MAX;
	memcpy(s->pos, id, n);
	s->pos[n] = '\0';
}

int stream_give(struct registry *r, struct stream *s, const struct bus_entry *e,
		const struct frames *f)
{
	int rc;

	stream_set_pos(s, e->id);
	if (f == NULL || !stream_matches(s, e))
		return 0;
	if ((rc = stream_queue(r, s, f->event.data, f->event.len)) < 0) {
		pthread_mutex_lock(r->mu);
		r->stats->dropped++;
		pthread_mutex_unlock(r->mu);
		stream_fail(r, s, rc);
		return 0;
	}
	if (e->close && s->topics != NULL && e->topic != NULL) {
		if ((rc = stream_queue(r, s, f->close.data, f->close.len)) < 0)
			stream_fail(r, s, rc);
		else
			stream_end(r, s, END_CLOSED, 1);
	}
	return 1;
}

/* ---------------------------------------------------------------- the wheel */

static void wheel_unlink(struct stream *s)
{
	if (s->tmhead == NULL)
		return;
	if (s->tmprev)
		s->tmprev->tmnext = s->tmnext;
	else
		*s->tmhead = s->tmnext;
	if (s->tmnext)
		s->tmnext->tmprev = s->tmprev;
	s->tmprev = s->tmnext = NULL;
	s->tmhead = NULL;
}

static void wheel_push(struct stream **head, struct stream *s)
{
	s->tmprev = NULL;
	s->tmnext = *head;
	if (s->tmnext)
		s->tmnext->tmprev = s;
	*head = s;
	s->tmhead = head;
}

static struct stream **wheel_slot(struct registry *r, long long at_ms)
{
	return &r->wheel[(unsigned long long)at_ms / STREAM_TICK_MS % STREAM_WHEEL_SLOTS];
}

void registry_schedule(struct registry *r, struct stream *s)
{
	long long at;

	wheel_unlink(s);
	if (s->dead)
		return;
	if (s->closing) {
		at = s->close_by_ms;
	} else if (!s->live) {
		at = 0;
	} else {
		at = s->next_ping_ms;
		if (s->deadline_ms && s->deadline_ms < at)
			at = s->deadline_ms;
		if (s->revoke_at_ms && s->revoke_at_ms < at)
			at = s->revoke_at_ms;
	}
	if (at < r->wheel_ms)
		at = r->wheel_ms; /* past: the slot the next take begins with */
	s->visit_ms = at;
	wheel_push(wheel_slot(r, at), s);
}

/* Moves the streams of a slot that are due at now to the due list; those
 * a turn or more ahead stay. */
static void take_slot(struct registry *r, struct stream **slot, long long now)
{
	struct stream *s, *next;

	for (s = *slot; s != NULL; s = next) {
		next = s->tmnext;
		if (s->visit_ms <= now) {
			wheel_unlink(s);
			wheel_push(&r->due, s);
		}
	}
}

void registry_take_due(struct registry *r, long long now)
{
	long long first = now / STREAM_TICK_MS * STREAM_TICK_MS;

	if (r->wheel_ms == 0 || first - r->wheel_ms >= (long long)STREAM_WHEEL_SLOTS * STREAM_TICK_MS) {
		for (int i = 0; i < STREAM_WHEEL_SLOTS; i++) /* the first take, or a long stall */
			take_slot(r, &r->wheel[i], now);
	} else {
		for (long long t = r->wheel_ms; t <= first; t += STREAM_TICK_MS)
			take_slot(r, wheel_slot(r, t), now);
	}
	/* now's own slot again next time: it holds visits later in this tick */
	r->wheel_ms = first;
}

struct stream *registry_next_due(struct registry *r)
{
	struct stream *s = r->due;

	if (s != NULL)
		wheel_unlink(s);
	return s;
}

/* ---------------------------------------------------------------- ending */

static void unlink_stream(struct registry *r, struct stream *s)
{
	if (s->tprev)
		s->tprev->tnext = s->tnext;
	else
		r->buckets[s->bucket] = s->tnext;
	if (s->tnext)
		s->tnext->tprev = s->tprev;
	if (s->gprev)
		s->gprev->gnext = s->gnext;
	else
		r->all = s->gnext;
	if (s->gnext)
		s->gnext->gprev = s->gprev;
	if (s->has_peer) {
		if (s->pprev)
			s->pprev->pnext = s->pnext;
		else
			r->peers[peer_bucket(&s->peer)] = s->pnext;
		if (s->pnext)
			s->pnext->pprev = s->pprev;
		atomic_fetch_sub(peer_conn_v4(&s->peer) ? &r->peers_v4 : &r->peers_v6, 1);
		if (s->peer_shared)
			atomic_fetch_sub(&r->peers_shared, 1);
	}
	wheel_unlink(s);
	r->count--;
	if (r->on_count != NULL && s->tenant[0])
		r->on_count(r->count_ctx, s, -1);
}

static void log_end(struct registry *r, const struct stream *s)
{
	struct json_object *f;

	if (!log_enabled(r->log, LOG_INFO))
		return;
	f = json_object_new_object();
	json_object_object_add(f, "request_id", json_object_new_string(s->reqid));
	json_object_object_add(f, "reason", json_object_new_string(reason_names[s->reason]));
	json_object_object_add(f, "duration_ms", json_object_new_int64(clock_mono_ms() - s->started_ms));
	json_object_object_add(f, "bytes", json_object_new_int64(s->w.bytes));
	log_json(r->log, LOG_INFO, "stream_end", f);
}

void stream_destroy(struct registry *r, struct stream *s)
{
	unlink_stream(r, s);
	close(s->w.fd);
	s->w.fd = -1;
	s->dead = 1;
	log_end(r, s);
	pthread_mutex_lock(r->mu);
	r->stats->open--;
	r->stats->closed++;
	if (s->reason == END_SLOW)
		r->stats->dropped_slow++;
	pthread_mutex_unlock(r->mu);
	writer_release(&s->w);
	s->gnext = r->dead;
	r->dead = s;
}

void registry_free_dead(struct registry *r)
{
	struct stream **pp;

	while (r->dead != NULL) {
		struct stream *s = r->dead;
		r->dead = s->gnext;
		if (s->in_flight > 0) {
			s->gnext = r->zombies;
			r->zombies = s;
		} else {
			stream_free(s);
		}
	}
	for (pp = &r->zombies; *pp != NULL;) {
		struct stream *s = *pp;
		if (s->in_flight == 0) {
			*pp = s->gnext;
			stream_free(s);
		} else {
			pp = &s->gnext;
		}
	}
}

void stream_end(struct registry *r, struct stream *s, enum end_reason why, int graceful)
{
	struct buf end = BUF_INIT;

	if (s->closing)
		return;
	s->reason = why;
	if (graceful && fcgi_record_end(&end, s->w.request_id, 0) == 0) {
		struct iovec iov = { end.data, end.len };
		if (send_iov(r, s, &iov, 1) == 0 && writer_wants_out(&s->w)) {
			s->closing = 1;
			s->close_by_ms = clock_mono_ms() + STREAM_CLOSE_GRACE_MS;
			registry_schedule(r, s);
			buf_release(&end);
			return;
		}
	}
	buf_release(&end);
	stream_destroy(r, s);
}

void stream_fail(struct registry *r, struct stream *s, int rc)
{
	s->closing = 0;
	stream_end(r, s, rc == WRITER_FULL ? END_SLOW : END_ERROR, 0);
}

void stream_revoke(struct registry *r, struct stream *s)
{
	int rc = stream_send_control(r, s, "revoked");

	if (rc < 0)
		stream_fail(r, s, rc);
	else
		stream_end(r, s, END_REVOKED, 1);
}

/* ---------------------------------------------------------------- events */

void stream_on_io(struct registry *r, struct stream *s, uint32_t ev)
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
			stream_end(r, s, END_GONE, 0);
			return;
		}
	}
	if (ev & (EPOLLHUP | EPOLLERR | EPOLLRDHUP)) {
		s->closing = 0;
		stream_end(r, s, END_GONE, 0);
		return;
	}
	if (ev & EPOLLOUT) {
		if (stream_flush(r, s) < 0) {
			s->closing = 0;
			stream_end(r, s, END_GONE, 0);
		} else if (s->closing && !writer_wants_out(&s->w)) {
			stream_destroy(r, s);
		} else {
			note_drained(r, s);
		}
	}
}

int stream_due(struct registry *r, struct stream *s, long long now)
{
	if (s->closing) {
		if (now >= s->close_by_ms)
			stream_destroy(r, s);
		return 0;
	}
	if (s->revoke_at_ms && now >= s->revoke_at_ms) {
		stream_revoke(r, s);
		return 0;
	}
	if (s->deadline_ms && now >= s->deadline_ms) {
		/* a planned end, not a failure: the client reconnects after its
		 * retry and resumes (a page need not show it as a lost link) */
		if (stream_send_control(r, s, "lifetime") < 0)
			stream_end(r, s, END_LIFETIME, 0);
		else
			stream_end(r, s, END_LIFETIME, 1);
		return 0;
	}
	return 1;
}

void stream_ping_due(struct registry *r, struct stream *s, long long now, long long heartbeat_ms)
{
	int rc;

	if (s->closing || s->dead || now < s->next_ping_ms)
		return;
	s->next_ping_ms = now + heartbeat_ms;
	if ((rc = stream_send_control(r, s, "ping")) < 0)
		stream_fail(r, s, rc);
}
