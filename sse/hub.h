/* hub: the home of open event streams, not tied to threads.
 *
 * A worker validates a stream request and hands its FastCGI connection to
 * the hub; one epoll thread then owns it: it writes FCGI_STDOUT records
 * itself, non-blocking, sends heartbeats, ends streams at their lifetime,
 * notices clients that go away, and fans published events out to the
 * matching streams. Every stream has a bounded output buffer: a client that
 * stops reading is dropped when it fills, never allowed to stall the rest.
 *
 * With a Redis (hub_opts.redis) the hub joins the event bus (redis/bus.h):
 * events come from every process sharing that Redis, in history order, and
 * a stream that starts from an id (Last-Event-ID) or misses events while
 * Redis is away catches up from the tenant's history before it goes live,
 * with no gap and no duplicate. Revocations and stream-session
 * replacements reach every process. Without one (unit tests), hub_publish
 * feeds events in-process and there is no history.
 *
 * Thread-safe: hub_add, hub_publish and hub_revoke_* may be called from any
 * thread. */
#ifndef FCGI_SSE_HUB_H
#define FCGI_SSE_HUB_H

#include <stddef.h>

#include "../core/buf.h"
#include "../core/log.h"
#include "../redis/bus.h"
#include "peerwatch.h"

#define HUB_ID_MAX BUS_ID_MAX /* event ids: "<unix ms>-<seq>" (Redis Stream ids) */
#define HUB_LIST_MAX 512      /* events=/topics= lists, bytes */

struct hub_opts {
	long long heartbeat_ms;
	long long max_lifetime_ms;   /* 0: streams live until closed */
	int lifetime_jitter_pct;     /* ± spread of the lifetime, 0..50 */
	size_t max_buffer;           /* unsent bytes per stream before it is dropped */
	int max_streams;
	const struct logger *log;
	const struct redis_opts *redis; /* the bus; NULL: in-process only */
	long long history_max_len;      /* as published (bus_history), so that a */
	long long history_max_age_ms;   /* resume from memory answers as one from
					 * Redis would; 0: no bound */
	long long peer_check_ms;        /* look for clients that closed (sse/peerwatch)
					 * this often; 0: never */
};

struct hub_stream_spec {
	int fd;                 /* FastCGI connection; non-blocking is set by the hub */
	int request_id;         /* FastCGI request id */
	const char *tenant_id;  /* "" : this stream gets no published events */
	const char *events;     /* comma list of event types, or NULL for all */
	const char *topics;     /* comma list of topics, or NULL for all */
	const char *key;        /* a newer stream with the same key (and tenant)
				 * replaces this one; NULL: none */
	const char *auth_session; /* the login behind the stream (NULL: none) */
	const char *user_id;      /* its user (NULL: none) */
	long long auth_expires;   /* Unix seconds when the login ends (0: never) */
	const char *request_log_id; /* X-Request-Id: the log line and the
				     * connection id of `event: connected` */
	int announce;           /* send `event: connected` with the stream's
				 * starting id once it is known */
	const char *resume_from;  /* Last-Event-ID as the client sent it (NULL:
				   * start with the next event). An id that is
				   * not one, or older than the history kept,
				   * gets `event: reset` */
	long long retry_ms;     /* the `retry:` in head: told in `event: connected` */
	const struct peer_conn *peer; /* the client's TCP connection to the front
				       * server, as it names it (NULL: unknown) */
	int peer_shared;        /* that connection is HTTP/2: other requests
				 * share it, and the front server may close it
				 * without leaving it in CLOSE_WAIT */
	const char *head;       /* CGI head and first SSE frames, sent at once */
	size_t head_len;
};

struct hub_event {
	const char *tenant_id;
	const char *type;       /* validated by the caller (sse_name_ok) */
	const char *topic;      /* NULL when none */
	const char *data;       /* JSON; newlines are split by the encoder */
	size_t len;
	int close;              /* end the streams subscribed to exactly topic */
};

struct hub_stats {
	long long open, opened, closed, dropped_slow, published, delivered;
	long long replayed;     /* events sent from history (resume, catch-up) */
	long long dropped;      /* events a stream took but could not queue: its
				   buffer was full (it is then dropped as slow,
				   and resumes from history when it reconnects) */
	long long resets;       /* `event: reset` sent */
	long long bus_up;       /* 1 while the bus is up (always 1 without one) */
	long long bus_reconnects;
	long long probe_age_ms; /* since this process's last probe came back through
				   the bus; -1: none yet; 0 without a bus */
	long long probe_rtt_ms; /* that probe's publish-to-receive time */
};

struct hub;

/* Starts the hub thread. Returns NULL with a message in err. */
struct hub *hub_start(const struct hub_opts *o, struct buf *err);

/* Hands a stream over. Returns 0 when the hub took the connection (it will
 * close it), or -1 when it refused (stopping or full; errno EAGAIN or
 * ESHUTDOWN) and the caller still owns fd. */
int hub_add(struct hub *h, const struct hub_stream_spec *s);

/* In-process only (no hub_opts.redis): queues an event for every matching
 * stream of its tenant and writes its id to id (HUB_ID_MAX + 1 bytes).
 * Returns 0, or -1 (stopping, out of memory, or the hub has a bus: publish
 * with bus_publish then). */
int hub_publish(struct hub *h, const struct hub_event *e, char *id);

/* Ends, with `event: revoked`, every stream opened under the login
 * auth_session (a logout), here and, through the bus, in every process
 * (sent when the bus is up, kept until then). Returns 0, or -1 when the
 * hub is stopping. */
int hub_revoke_session(struct hub *h, const char *auth_session);

/* The same for every stream of a user of a tenant (sessions revoked by an
 * admin). */
int hub_revoke_user(struct hub *h, const char *tenant_id, const char *user_id);

/* Returns 1 once hub_stop has begun. */
int hub_stopping(struct hub *h);

/* Sends `event: shutdown` to every stream, lets them flush for up to
 * grace_ms, closes them all and joins the hub thread. Call once. */
void hub_stop(struct hub *h, long long grace_ms);

/* Frees a stopped hub. */
void hub_free(struct hub *h);

/* Copies the counters. */
void hub_get_stats(struct hub *h, struct hub_stats *out);

/* The open streams per tenant and user (sse/counts.h), for the quotas. */
struct stream_counts;
struct stream_counts *hub_counts(struct hub *h);

/* Returns 1 if name is a member of the comma list (NULL list: every name). */
int hub_list_has(const char *list, const char *name);

#endif
