/* bus: the event bus that every process sharing one Redis joins.
 *
 * History: each tenant's events live in a Redis Stream
 * ("fcgi_sse:{<tenant>}:events"), bounded in length and age; the stream id
 * of an event is its SSE id, the same in every process. Entries trimmed
 * from the front leave a watermark ("fcgi_sse:{<tenant>}:trimmed", the
 * newest id removed), so a reader can tell "nothing after my id was lost"
 * from "some of it was".
 *
 * Fan-out: one publish is one Lua script that appends to the history and
 * PUBLISHes the event on one channel, atomically, so the channel carries
 * every event in history order. Control messages (revocations and the
 * like, opaque to the bus) share the channel.
 *
 * Two sides:
 * - bus_publish: blocking, from any request thread, through struct redis.
 * - struct bus: a non-blocking link for one event loop (the hub's): one
 *   subscriber connection and one query connection, registered in the
 *   caller's epoll set, reconnecting with backoff. It hands decoded
 *   events, history reads and control messages to callbacks.
 * With Redis Sentinel (redis_opts.sentinels), each (re)connect of the link
 * first asks one sentinel where the master is (redis/sentinel.h;
 * blocking, in the loop's thread: see find_master in bus.c for the worst
 * case), and ROLE must say master before up(); every 2 s the link asks
 * again and reconnects at once when the master moved. bus_publish then
 * accepts an event only once a replica acknowledged it (redis_replicated).
 * hiredis stays inside redis/. hiredis writes with write(2): the process
 * must ignore SIGPIPE (fcgi_sse.c does), or a Redis that goes away kills it. */
#ifndef FCGI_SSE_BUS_H
#define FCGI_SSE_BUS_H

#include <stddef.h>
#include <stdint.h>

#include "busmsg.h"
#include "redis.h"

#define BUS_ID_MAX 47         /* "<ms>-<seq>", two 64-bit numbers */
#define BUS_CHANNEL "fcgi_sse:bus"

/* One event, as published and as read back. */
struct bus_entry {
	const char *id;         /* stream id; ignored by bus_publish */
	const char *type;
	const char *topic;      /* NULL: none */
	const char *data;
	size_t len;
	int close;
};

struct bus_history {
	long long max_len;      /* entries kept per tenant, >= 1 */
	long long max_age_ms;   /* entries older than this are trimmed; 0: no limit */
};

/* How many entries a full history is trimmed by at once: 1% of max_len,
 * 1 to 100. A tenant's history holds between max_len - batch + 1 and max_len
 * entries once full, so that trimming costs nothing on most publishes. */
long long bus_trim_batch(long long max_len);

/* Appends e to the tenant's history and publishes it to every process, in
 * one atomic step. Writes the new id to id (BUS_ID_MAX + 1 bytes).
 * Returns 0, or -1 when Redis is unavailable (nothing was published), or,
 * with sentinels, when no replica acknowledged it in time (it was
 * published, but a failover could lose it: the caller treats it as not
 * accepted, and a retry may publish it twice). */
int bus_publish(struct redis *r, const struct bus_history *h, const char *tenant,
		const struct bus_entry *e, char *id);

/* Whether the event id of the tenant's history is a close event (published
 * with close: true), and for which topic. Returns 1 with its topic in topic
 * (cap bytes), 0 when it is not one (or not in the history, or id is not an
 * id), -1 when Redis is unavailable. Blocking, as bus_publish. */
int bus_close_topic(struct redis *r, const char *tenant, const char *id, char *topic, size_t cap);

/* What a reader needs to resume in a tenant's history. Ids are "0-0" when
 * absent. */
struct bus_info {
	int exists;                       /* the history stream exists */
	char last_id[BUS_ID_MAX + 1];     /* newest id ever added */
	char first_id[BUS_ID_MAX + 1];    /* oldest id still kept */
	char trimmed_id[BUS_ID_MAX + 1];  /* newest id trimmed away */
};

/* Callbacks, run on the loop thread from bus_on_io and bus_tick. */
struct bus_handlers {
	void *ctx;
	/* The link is up: subscribed, and queries may be sent. Every event
	 * published from now on will be passed to event(), in order, until
	 * lost() is called. */
	void (*up)(void *ctx);
	/* The link failed; queries in flight were answered as failed first.
	 * Events published until the next up() may never reach event(). */
	void (*lost)(void *ctx);
	void (*event)(void *ctx, const char *tenant, const struct bus_entry *e);
	/* a control message (busmsg.h: not an event, not invalid) */
	void (*control)(void *ctx, const struct busmsg *m);
	/* answers, in the order asked; info NULL / ok 0: the query failed */
	void (*info)(void *ctx, void *tag, const struct bus_info *info);
	void (*range)(void *ctx, void *tag, const char *trimmed_id, const struct bus_entry *entries,
		      size_t n, int ok);
};

struct bus;

/* Creates the link and starts connecting. Its sockets are added to epfd
 * with data.ptr values for which bus_owns() is true. Returns NULL when out
 * of memory. o is copied. */
struct bus *bus_open(const struct redis_opts *o, int epfd, const struct bus_handlers *h);

/* Closes both connections (no callbacks) and frees the link. */
void bus_free(struct bus *b);

/* 1 if ptr (an epoll data.ptr) belongs to the bus. */
int bus_owns(const struct bus *b, const void *ptr);

/* Handles readiness of one of the bus's sockets. */
void bus_on_io(struct bus *b, void *ptr, uint32_t events);

/* Timers: reconnects after backoff, keep-alive pings, stalled queries.
 * Call at least every 100 ms. */
void bus_tick(struct bus *b, long long now_ms);

/* 1 between up() and lost(). */
int bus_is_up(const struct bus *b);

/* Asks for the tenant's bus_info; the answer goes to info(tag). Returns 0,
 * or -1 when the link is down (no callback will come). */
int bus_query_info(struct bus *b, const char *tenant, void *tag);

/* Asks for up to count entries of the tenant's history after id (exclusive),
 * and, read in the same atomic step, the newest id trimmed so far: if that
 * is after id, entries between were lost. The answer goes to range(tag).
 * Returns 0 or -1 as bus_query_info. */
int bus_query_range(struct bus *b, const char *tenant, const char *after, int count, void *tag);

/* Publishes a control message (written with busmsg.h) to every process
 * (this one included). Returns 0 when queued on a live link, -1 when the
 * link is down. */
int bus_send_control(struct bus *b, const char *msg, size_t len);

/* Parses "<ms>-<seq>" (decimal, each fitting 64 bits). Returns 0 or -1. */
int bus_id_parse(const char *id, uint64_t *ms, uint64_t *seq);

/* Compares two valid ids: <0, 0, >0. */
int bus_id_cmp(const char *a, const char *b);

#endif
