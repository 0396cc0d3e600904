/* catchup: where each stream starts and how it gets from there to live.
 *
 * Per tenant a cursor holds the newest event id seen since the bus last
 * came up and, in a ring (sse/ring.h), the unbroken run of events before
 * it. A stream that opens fresh starts at its tenant's newest event; one
 * that resumes from a Last-Event-ID, or fell behind while Redis was away,
 * is brought forward from the ring when the ring surely answers as Redis
 * would, else from the tenant's history on the bus: the start point
 * (bus_query_info) and then the events after it (bus_query_range), read in
 * batches until the stream has caught up with the live events, with no gap
 * and no duplicate. A client whose events the history no longer has gets
 * `event: reset` first. Streams that need the same answer share one bus
 * query (a fetch): a reconnect storm asks once, not once per client.
 *
 * Runs on the hub's thread. Without a bus (in-process hub) there is no
 * history: cursors only hold the last id assigned. */
#ifndef FCGI_SSE_CATCHUP_H
#define FCGI_SSE_CATCHUP_H

#include "../redis/bus.h"
#include "ring.h"
#include "stream.h"

#define CATCHUP_RANGE_BATCH 500      /* history entries per read, at most */
#define CATCHUP_RANGE_MIN 8          /* ... and at least, once a read paused */
#define CATCHUP_RECENT_MAX 1024      /* recent events kept per tenant */
#define CATCHUP_RECENT_BYTES (1 << 20) /* ... and at most this many bytes */

struct fetch;

struct cursor {
	struct cursor *next;
	char id[HUB_ID_MAX + 1];
	unsigned epoch;         /* bus epoch in which id was seen */
	struct ring ring;       /* recent events, so that a client resuming from
				 * an id just seen needs no Redis */
	struct fetch *fetches;  /* bus queries in flight for this tenant */
	int streams;            /* open streams naming it (stream.cur) */
	long long used_ms;      /* monotonic: its last event, or a stream's start or end */
	char tenant[];          /* flexible: the tenant id */
};

struct catchup {
	struct registry *reg;
	struct bus *bus;                /* NULL: in-process, no history */
	long long history_max_len;      /* as published (bus_history), so that */
	long long history_max_age_ms;   /* memory answers as Redis would */
	unsigned epoch;                 /* bumped each time the bus comes up */
	struct cursor *cursors[STREAM_BUCKETS];
};

/* The tenant's cursor; created on first use when create is set. NULL when
 * there is none (or out of memory). */
struct cursor *catchup_cursor(struct catchup *cu, const char *tenant, int create);

/* A stream just added to the registry: sets where it starts, sends
 * `event: connected` and the head, and starts catching up. s may have
 * ended on return (s->dead or s->closing). */
void catchup_start(struct catchup *cu, struct stream *s);

/* Brings a stream that is not live one step closer: resolve where it
 * starts, read history after its position, or go live. Every path that
 * ends a bus answer comes back here, so a stream is never left behind. */
void catchup_sync(struct catchup *cu, struct stream *s);

/* A live event of tenant: its cursor moves to e. Returns the cursor
 * (NULL when none could be made), to be given to catchup_keep after the
 * fan-out. */
struct cursor *catchup_saw(struct catchup *cu, const char *tenant, const struct bus_entry *e);

/* Keeps e in the cursor's ring, taking f (left empty; NULL: e could not
 * be encoded, and the ring's run is broken). */
void catchup_keep(struct catchup *cu, struct cursor *c, const struct bus_entry *e,
		  struct frames *f);

/* The bus came up again (after catchup.epoch was bumped): whatever was
 * published while it was away is in history, so every stream catches up. */
void catchup_resync(struct catchup *cu);

/* Bus answers (redis/bus.h handlers; tag is the fetch). */
void catchup_on_info(struct catchup *cu, void *tag, const struct bus_info *in);
void catchup_on_range(struct catchup *cu, void *tag, const char *trimmed,
		      const struct bus_entry *es, size_t n, int ok);

/* The bus is gone for good (shutdown): forgets every fetch; the streams
 * waiting on them are not touched. */
void catchup_abandon(struct catchup *cu);

/* A stream of the cursor's tenant started (+1) or ended (-1). */
void catchup_count(struct cursor *c, int delta);

/* Frees the cursors no stream names, with no bus query in flight, unused
 * for CATCHUP_IDLE_MS: a process would otherwise keep a cursor, and a ring
 * of up to CATCHUP_RECENT_BYTES, for every tenant it ever saw. Returns how
 * many it freed. */
#define CATCHUP_IDLE_MS (10 * 60 * 1000)
int catchup_evict_idle(struct catchup *cu, long long now_ms);

/* Frees the cursors. */
void catchup_free(struct catchup *cu);

/* Whether s, catching up, waits for its output to drain: a stream is
 * given history only while less than half its buffer bound is unsent, so
 * a client resuming after a long absence is sent its backlog as fast as it
 * reads instead of being dropped as too slow. Sets or clears s->paced.
 * The hub calls catchup_sync again once a paced stream's output has
 * drained below a quarter (registry_take_drained). */
int catchup_paused(struct stream *s);
#define CATCHUP_PAUSE_DIV 2

/* Pure, for tests. Whether a client at id l missed events the history
 * described by in no longer has. */
int catchup_must_reset(const char *l, const struct bus_info *in);

/* Whether Redis surely still holds every event after from, given that
 * `after` of them are known (in memory) and the history bounds; now_ms is
 * the Unix time in ms. Then memory may answer for it. */
int catchup_ring_may_replay(long long max_len, long long max_age_ms, const char *from,
			    unsigned after, long long now_ms);

#endif
