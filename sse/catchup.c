#include "catchup.h"

#include "../core/clock.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* A bus query shared by every stream that needs the same answer: the
 * tenant's info, or its history after one id. */
struct fetch {
	struct fetch *next;
	struct cursor *cur;     /* the tenant; the fetch is on its list */
	int range;              /* 0: info */
	unsigned count;         /* range: entries asked for */
	char after[HUB_ID_MAX + 1];
	struct stream *waiters; /* linked by wnext */
};

struct cursor *catchup_cursor(struct catchup *cu, const char *tenant, int create)
{
	unsigned b = stream_bucket(tenant);
	struct cursor *c;
	size_t n = strlen(tenant) + 1;

	for (c = cu->cursors[b]; c != NULL; c = c->next)
		if (strcmp(c->tenant, tenant) == 0)
			return c;
	if (!create || (c = calloc(1, sizeof(*c) + n)) == NULL)
		return NULL;
	memcpy(c->tenant, tenant, n);
	ring_init(&c->ring, CATCHUP_RECENT_MAX, CATCHUP_RECENT_BYTES);
	c->used_ms = clock_mono_ms();
	c->next = cu->cursors[b];
	cu->cursors[b] = c;
	return c;
}

/* The tenant's newest event id seen since the bus last came up, or NULL. */
static const char *cursor_now(struct catchup *cu, const char *tenant)
{
	const struct cursor *c = catchup_cursor(cu, tenant, 0);

	return c != NULL && c->epoch == cu->epoch && c->id[0] ? c->id : NULL;
}

struct cursor *catchup_saw(struct catchup *cu, const char *tenant, const struct bus_entry *e)
{
	struct cursor *c = catchup_cursor(cu, tenant, 1);

	if (c != NULL) {
		if (c->epoch != cu->epoch)
			ring_clear(&c->ring); /* events before this one may be missing */
		snprintf(c->id, sizeof(c->id), "%s", e->id);
		c->epoch = cu->epoch;
		c->used_ms = clock_mono_ms();
	}
	return c;
}

void catchup_count(struct cursor *c, int delta)
{
	c->streams += delta;
	c->used_ms = clock_mono_ms();
}

int catchup_evict_idle(struct catchup *cu, long long now_ms)
{
	int n = 0;

	for (int b = 0; b < STREAM_BUCKETS; b++) {
		struct cursor **pp = &cu->cursors[b];
		while (*pp != NULL) {
			struct cursor *c = *pp;
			if (c->streams > 0 || c->fetches != NULL || now_ms - c->used_ms < CATCHUP_IDLE_MS) {
				pp = &c->next;
				continue;
			}
			*pp = c->next;
			ring_release(&c->ring);
			free(c);
			n++;
		}
	}
	return n;
}

void catchup_keep(struct catchup *cu, struct cursor *c, const struct bus_entry *e,
		  struct frames *f)
{
	if (c == NULL || cu->bus == NULL)
		return;
	if (f != NULL)
		ring_push(&c->ring, e, f); /* on failure it empties: never a hole */
	else
		ring_clear(&c->ring); /* an event it cannot hold: the run is broken */
}

int catchup_paused(struct stream *s)
{
	s->paced = writer_buffered(&s->w) >= s->w.max / CATCHUP_PAUSE_DIV;
	return s->paced;
}

/* ---------------------------------------------------------------- from memory */

/* A full history holds at least max_len - batch + 1 events (bus_trim_batch). */
int catchup_ring_may_replay(long long max_len, long long max_age_ms, const char *from,
			    unsigned after, long long now_ms)
{
	uint64_t ms = 0, seq = 0;

	if (max_len > 0 && (long long)after > max_len - bus_trim_batch(max_len) + 1)
		return 0;
	if (max_age_ms <= 0)
		return 1;
	if (bus_id_parse(from, &ms, &seq) < 0)
		return 0;
	return (long long)ms >= now_ms - max_age_ms;
}

/* If from is the id of an event in the tenant's ring, and the ring answers
 * as Redis would, sends s every later one and returns 1 (s is then at the
 * tenant's newest event, unless it paused: catchup_paused); else 0. */
static int ring_replay(struct catchup *cu, struct stream *s, const char *from)
{
	const struct cursor *c = catchup_cursor(cu, s->tenant, 0);
	struct timespec ts;
	long long sent = 0;
	long at;
	unsigned i;

	clock_gettime(CLOCK_REALTIME, &ts);
	if (c == NULL || c->epoch != cu->epoch || c->ring.len == 0 ||
	    (at = ring_find(&c->ring, from)) < 0 ||
	    !catchup_ring_may_replay(cu->history_max_len, cu->history_max_age_ms, from,
				     c->ring.len - 1 - (unsigned)at,
				     (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000))
		return 0;
	for (i = (unsigned)at + 1; i < c->ring.len && !s->closing && !s->dead && !catchup_paused(s); i++) {
		const struct recent *r = ring_at(&c->ring, i);
		sent += stream_give(cu->reg, s, &r->e, r->f.event.len ? &r->f : NULL);
	}
	stream_stat_add(cu->reg, &cu->reg->stats->replayed, sent);
	return 1;
}

/* ---------------------------------------------------------------- fetches */

/* Puts s on the tenant's fetch for the same question, asking the bus only
 * when there is none yet. Returns 0, or -1 when the bus refused. */
static int ask(struct catchup *cu, struct stream *s, int range)
{
	struct cursor *c = catchup_cursor(cu, s->tenant, 1);
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
		f->count = s->batch ? s->batch : CATCHUP_RANGE_BATCH;
		snprintf(f->after, sizeof(f->after), "%s", range ? s->pos : "");
		rc = range ? bus_query_range(cu->bus, s->tenant, s->pos, f->count, f)
			   : bus_query_info(cu->bus, s->tenant, f);
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

void catchup_abandon(struct catchup *cu)
{
	for (int b = 0; b < STREAM_BUCKETS; b++)
		for (struct cursor *c = cu->cursors[b]; c != NULL; c = c->next)
			while (c->fetches != NULL)
				fetch_done(c->fetches);
}

/* ---------------------------------------------------------------- sync */

void catchup_sync(struct catchup *cu, struct stream *s)
{
	const char *cur;

	if (s->in_flight > 0 || s->closing || s->dead)
		return;
	if (s->live) {
		s->live = 0;
		registry_schedule(cu->reg, s); /* the tick sends it again if need be */
	}
	if (!bus_is_up(cu->bus) || catchup_paused(s))
		return; /* paused: the hub calls again once it has drained */
	if (s->need_info) {
		cur = cursor_now(cu, s->tenant);
		if (s->resume[0] && ring_replay(cu, s, s->resume)) {
			/* an id this process has just seen: nothing was lost */
			s->need_info = 0;
			s->must_fetch = 0;
		} else if (s->resume[0] || s->resume_bad || cur == NULL) {
			ask(cu, s, 0); /* refused: the next tick asks again */
			return;
		} else {
			/* a fresh stream of a tenant being followed: start at its newest */
			s->need_info = 0;
			snprintf(s->pos, sizeof(s->pos), "%s", cur);
			if (s->announce && stream_send_connected(cu->reg, s) < 0) {
				stream_fail(cu->reg, s, WRITER_ERROR);
				return;
			}
		}
		if (s->closing || s->dead)
			return;
	}
	cur = cursor_now(cu, s->tenant);
	if (!s->must_fetch && cur != NULL && bus_id_cmp(cur, s->pos) > 0)
		ring_replay(cu, s, s->pos); /* live events passed it: from memory if it can */
	if (s->closing || s->dead || s->paced)
		return;
	if (s->must_fetch || (cur != NULL && bus_id_cmp(cur, s->pos) > 0)) {
		if (ask(cu, s, 1) == 0)
			s->must_fetch = 0;
		return;
	}
	s->live = 1;
}

void catchup_start(struct catchup *cu, struct stream *s)
{
	struct registry *r = cu->reg;

	if (s->tenant[0] == '\0') {
		s->live = 1; /* gets no events: nothing to catch up */
	} else if (cu->bus == NULL) {
		const struct cursor *c = catchup_cursor(cu, s->tenant, 0);
		snprintf(s->pos, sizeof(s->pos), "%s", c != NULL ? c->id : "0-0");
		s->live = 1;
	} else {
		s->need_info = 1;
	}
	if (s->announce && (s->pos[0] || s->resume[0]) && !s->resume_bad) {
		if (s->resume[0])
			snprintf(s->pos, sizeof(s->pos), "%s", s->resume);
		if (stream_send_connected(r, s) < 0) {
			stream_fail(r, s, WRITER_ERROR);
			return;
		}
	}
	/* the head (and connected) are in pending: push them out now */
	if (stream_flush(r, s) < 0) {
		stream_end(r, s, END_GONE, 0);
		return;
	}
	if (cu->bus != NULL && s->need_info)
		catchup_sync(cu, s);
}

void catchup_resync(struct catchup *cu)
{
	struct stream *s, *next;

	for (s = cu->reg->all; s != NULL; s = next) {
		next = s->gnext;
		if (s->closing || s->tenant[0] == '\0')
			continue;
		if (!s->need_info)
			s->must_fetch = 1;
		catchup_sync(cu, s);
	}
}

/* ---------------------------------------------------------------- answers */

int catchup_must_reset(const char *l, const struct bus_info *in)
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

static void info_to(struct catchup *cu, struct stream *s, const struct bus_info *in)
{
	struct registry *r = cu->reg;
	int reset = 0, rc = 0;

	if (in != NULL) {
		s->need_info = 0;
		if (s->resume[0] && !s->resume_bad && !catchup_must_reset(s->resume, in)) {
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
			rc = stream_send_connected(r, s);
		if (rc == 0 && reset) {
			rc = stream_send_control(r, s, "reset");
			stream_stat_add(r, &r->stats->resets, 1);
		}
		if (rc < 0) {
			stream_fail(r, s, rc);
			return;
		}
	}
	catchup_sync(cu, s);
}

void catchup_on_info(struct catchup *cu, void *tag, const struct bus_info *in)
{
	struct stream *s, *next;

	for (s = fetch_done(tag); s != NULL; s = next) {
		next = s->wnext;
		s->in_flight = 0;
		if (!s->dead && !s->closing)
			info_to(cu, s, in);
	}
}

/* History after s's position (the fetch's `after`), encoded once in fs. If
 * the history was trimmed past that position, events were lost: reset
 * from the trimmed id first; what follows it is exactly what came back. */
static void range_to(struct catchup *cu, struct stream *s, const char *trimmed,
		     const struct bus_entry *es, const struct frames *fs, size_t n, unsigned asked)
{
	struct registry *r = cu->reg;
	long long sent = 0;
	int rc;

	if (bus_id_cmp(s->pos, trimmed) < 0) {
		snprintf(s->pos, sizeof(s->pos), "%s", trimmed);
		if ((rc = stream_send_control(r, s, "reset")) < 0) {
			stream_fail(r, s, rc);
			return;
		}
		stream_stat_add(r, &r->stats->resets, 1);
	}
	for (size_t i = 0; i < n && !s->closing && !s->dead; i++) {
		if (catchup_paused(s)) {
			/* the rest is asked again, from s->pos, and the next read
			 * asks for about what it took: a slow reader's backlog is
			 * not read from Redis again and again */
			s->must_fetch = 1;
			s->batch = i > CATCHUP_RANGE_MIN ? (unsigned)i : CATCHUP_RANGE_MIN;
			break;
		}
		if (bus_id_cmp(es[i].id, s->pos) > 0)
			sent += stream_give(r, s, &es[i], fs[i].event.len ? &fs[i] : NULL);
	}
	stream_stat_add(r, &r->stats->replayed, sent);
	if (!s->paced && s->batch && (s->batch *= 2) >= CATCHUP_RANGE_BATCH)
		s->batch = 0; /* it kept up: back to full reads */
	if (n >= asked)
		s->must_fetch = 1;
	catchup_sync(cu, s);
}

void catchup_on_range(struct catchup *cu, void *tag, const char *trimmed,
		      const struct bus_entry *es, size_t n, int ok)
{
	unsigned asked = ((struct fetch *)tag)->count;
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
			catchup_sync(cu, s);
		} else {
			range_to(cu, s, trimmed, es, fs, n, asked);
		}
	}
	for (size_t i = 0; fs != NULL && i < n; i++)
		frames_release(&fs[i]);
	free(fs);
}

void catchup_free(struct catchup *cu)
{
	for (int b = 0; b < STREAM_BUCKETS; b++) {
		struct cursor *c, *next;
		for (c = cu->cursors[b]; c != NULL; c = next) {
			next = c->next;
			while (c->fetches != NULL)
				fetch_done(c->fetches);
			ring_release(&c->ring);
			free(c);
		}
		cu->cursors[b] = NULL;
	}
}
