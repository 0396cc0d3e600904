/* stream: one open event stream and the registry of them all, with their
 * lifetimes.
 *
 * A stream is a FastCGI connection the hub owns: its output (sse/writer),
 * its filters and position in its tenant's events, its deadlines (the
 * lifetime, the end of its login, the next heartbeat) and how it ends. The
 * registry indexes the open streams by tenant and as one list, registers
 * them with the hub's epoll set, keeps the list of streams with text queued
 * in this pass of the loop, and frees closed streams only when nothing can
 * name them any more (the rest of an epoll batch, a bus answer in flight).
 *
 * Everything here runs on the hub's thread; only the counters are shared,
 * under the registry's lock. */
#ifndef FCGI_SSE_STREAM_H
#define FCGI_SSE_STREAM_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "../core/clock.h"
#include "../core/log.h"
#include "../redis/bus.h"
#include "hub.h"
#include "ring.h"
#include "writer.h"

#define STREAM_BUCKETS 1024    /* tenant index */
#define STREAM_PEER_BUCKETS 4096 /* index by the client's connection (has_peer) */
#define STREAM_CLOSE_GRACE_MS 2000 /* a graceful end waits this long to flush */
#define STREAM_TICK_MS 100        /* the hub's tick: heartbeat and lifetime resolution */
#define STREAM_WHEEL_SLOTS 1024   /* the timer wheel's, a tick each (102.4 s around) */

enum end_reason { END_GONE, END_LIFETIME, END_SHUTDOWN, END_SLOW, END_CLOSED, END_ERROR,
		  END_REPLACED, END_REVOKED, END_PEER_CLOSED };

struct cursor; /* sse/catchup.h: the tenant's position in its events */

struct stream {
	char *tenant, *events, *topics, *key, *auth, *user; /* one allocation: strs */
	char *strs;
	char reqid[40];
	long long retry_ms, heartbeat_ms; /* told in `event: connected` */
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
	int paced;                    /* catching up, waiting for its output to
				       * drain (catchup_paused) */
	unsigned batch;               /* history entries to ask for at once (0:
				       * CATCHUP_RANGE_BATCH); smaller after a pause */
	struct stream *rnext;         /* the registry's drained list */
	int drained;                  /* on it */
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
	struct stream *dnext;         /* the registry's streams with queued text */
	int dirty;                    /* on that list */
	long long started_ms, next_ping_ms, deadline_ms, close_by_ms;
	long long revoke_at_ms;       /* the login ends: event: revoked (0: never) */
	int closing;                  /* end records queued; close once flushed */
	int dead;                     /* closed; freed once nothing names it */
	int want_out;                 /* EPOLLOUT registered */
	enum end_reason reason;
	int has_peer;                 /* peer names its front-server connection */
	int peer_shared;              /* ... and it is HTTP/2 (hub_stream_spec) */
	struct peer_conn peer;
	struct stream *pprev, *pnext; /* the registry's peer bucket list */
	struct stream *tmprev, *tmnext; /* its list in the registry's timer
					 * wheel, or its due list (tmhead) */
	struct stream **tmhead;       /* the head of that list; NULL: on none */
	long long visit_ms;           /* when the tick looks at it next */
};

struct registry {
	int ep;                       /* the hub's epoll set */
	const struct logger *log;
	pthread_mutex_t *mu;          /* guards stats (shared with the hub) */
	struct hub_stats *stats;
	struct stream *buckets[STREAM_BUCKETS];
	struct stream *peers[STREAM_PEER_BUCKETS];
	_Atomic int peers_v4, peers_v6; /* streams in peers by their connection's
					 * local address family (read by the
					 * hub's peer thread) */
	_Atomic int peers_shared;       /* those of them on HTTP/2 connections */
	struct stream *all;
	int count;
	struct stream *dirty;         /* streams with queued text this pass (dnext) */
	struct stream *drained;       /* paced streams whose output drained below
				       * their resume mark (rnext): the caller
				       * catches them up again (registry_take_drained) */
	/* the tick looks only at the streams that have something due: each
	 * open stream is in the slot of its visit_ms (registry_schedule) */
	struct stream *wheel[STREAM_WHEEL_SLOTS];
	long long wheel_ms;           /* the start of the first slot the next
				       * registry_take_due looks in (0: none
				       * taken yet, it looks in all) */
	struct stream *due;           /* what registry_take_due took (tmnext) */
	struct stream *dead;          /* closed this turn (events may still name them) */
	struct stream *zombies;       /* closed, but a bus answer still names them */
	/* told of each stream of a tenant added (+1) and ended (-1): the
	 * counts behind the cluster-wide stream quotas (NULL: none) */
	void (*on_count)(void *ctx, const struct stream *s, int delta);
	void *count_ctx;
};

/* The bucket of a tenant in registry.buckets. */
unsigned stream_bucket(const char *tenant);

/* Adds d to a counter under the lock. */
void stream_stat_add(struct registry *r, long long *field, long long d);

/* A new stream from spec (head already framed), its lifetime drawn within
 * the configured jitter. NULL when out of memory. */
struct stream *stream_new(const struct hub_opts *o, const struct hub_stream_spec *sp);

/* Frees a stream that was never added, or is dead (the fd is not closed). */
void stream_free(struct stream *s);

/* Indexes s and registers its fd with epoll. Returns 0, or -1 when epoll
 * refused: s has then been ended. */
int registry_add(struct registry *r, struct stream *s);

/* Ends, gracefully with reason why, the open streams whose client's
 * connection is c (several over one HTTP/2 connection) and that began
 * before before_ms (monotonic): the kernel was asked then, and a stream
 * begun since may be on a new connection with the same addresses and
 * ports (a client's port is free again at once after a reset, and
 * loopback reuses ports quickly: the soak saw a live stream ended so).
 * Returns how many. */
int registry_end_peer(struct registry *r, const struct peer_conn *c, enum end_reason why,
		      long long before_ms);

/* Queues SSE text: everything a stream gets in one pass of the loop goes
 * out as one record in one write at registry_commit. Returns 0,
 * WRITER_FULL or WRITER_ERROR (the caller fails the stream). */
int stream_queue(struct registry *r, struct stream *s, const char *p, size_t n);

/* Sends SSE text now, after anything queued. Returns as stream_queue. */
int stream_send(struct registry *r, struct stream *s, const char *p, size_t n);

/* A frame with the stream's position as its id; a control frame (ping,
 * shutdown, revoked, reset) carries the server time; `event: connected`
 * the connection id. Return as stream_send. */
int stream_send_frame(struct registry *r, struct stream *s, const char *event, const char *data,
		      size_t len);
int stream_send_control(struct registry *r, struct stream *s, const char *event);
int stream_send_connected(struct registry *r, struct stream *s);

/* Writes what is pending. Returns 0, or -1 when the connection failed. */
int stream_flush(struct registry *r, struct stream *s);

/* Ends s. Gracefully: the end records are queued and s closes once they
 * are written (or after STREAM_CLOSE_GRACE_MS); otherwise it closes now. */
void stream_end(struct registry *r, struct stream *s, enum end_reason why, int graceful);

/* Ends s after a failed write (rc WRITER_FULL: dropped as too slow). */
void stream_fail(struct registry *r, struct stream *s, int rc);

/* The stream's credentials are gone: `event: revoked`, then the end. */
void stream_revoke(struct registry *r, struct stream *s);

/* Closes s now (it is freed by registry_free_dead). */
void stream_destroy(struct registry *r, struct stream *s);

/* s's position becomes id (no printf: this runs per stream per event). */
void stream_set_pos(struct stream *s, const char *id);

/* Whether s takes events of e's type and topic. */
int stream_matches(const struct stream *s, const struct bus_entry *e);

/* Moves s past e, queueing it when it matches (and ending s after a close
 * for its topic). f NULL: e could not be encoded and is skipped. Returns 1
 * when queued. */
int stream_give(struct registry *r, struct stream *s, const struct bus_entry *e,
		const struct frames *f);

/* Handles epoll events on s's connection: the client going away, or room
 * to write. */
void stream_on_io(struct registry *r, struct stream *s, uint32_t ev);

/* Its deadlines at now: a closing stream past its grace is closed, a login
 * that ended is revoked, a lifetime that ended ends the stream. Returns 1
 * when s is still open and not closing. */
int stream_due(struct registry *r, struct stream *s, long long now);

/* Sends a heartbeat when one is due. */
void stream_ping_due(struct registry *r, struct stream *s, long long now, long long heartbeat_ms);

/* Puts s in the wheel's slot of the next time its tick has something to
 * do: the end of its close grace while closing; the next tick while it is
 * not live (a catch-up to send again); else the first of its heartbeat,
 * lifetime and login end. Called on add, on each visit, and wherever one
 * of those becomes sooner (a graceful end, a catch-up begun). */
void registry_schedule(struct registry *r, struct stream *s);

/* Takes off the wheel the streams whose visit is due at now, onto
 * r->due; registry_next_due hands them out one by one (NULL: none left).
 * A stream ended meanwhile leaves that list. Each one handed out is on no
 * list until registry_schedule puts it back. */
void registry_take_due(struct registry *r, long long now);
struct stream *registry_next_due(struct registry *r);

/* The end of a pass: each stream's queued text goes out, one record and
 * one write per stream. */
void registry_commit(struct registry *r);

/* The paced streams whose output drained since the last call (a list by
 * rnext, in no order), taken off the registry: a catch-up that paused for
 * a slow reader goes on as soon as it has read, not at the next tick. */
struct stream *registry_take_drained(struct registry *r);

/* Frees the streams closed this turn; those a bus answer still names
 * (in_flight) wait until it has come. */
void registry_free_dead(struct registry *r);

#endif
