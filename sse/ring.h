/* ring: a tenant's most recent events, each encoded once for streams,
 * oldest first, bounded by a count and by bytes of encoded events. The hub
 * keeps one per tenant so that a client resuming from an id it has just
 * seen gets what follows from memory. An unbroken run: on any failure the
 * ring empties rather than keep a hole. Pure (no I/O, no locking). */
#ifndef FCGI_SSE_RING_H
#define FCGI_SSE_RING_H

#include <stddef.h>

#include "../core/buf.h"
#include "../redis/bus.h"

/* One event as streams get it: encoded once. */
struct frames {
	struct buf event, close; /* close: `event: close`, for close events */
};

/* Encodes e for streams. Returns 0, or -1 when the encoder refuses it
 * (f is then empty). */
int frames_encode(struct frames *f, const struct bus_entry *e);
void frames_release(struct frames *f);

/* A kept event: id, type, topic and close (data is not kept: the frames
 * hold it encoded). */
struct recent {
	struct bus_entry e;
	struct frames f;
	char strs[];
};

struct ring {
	struct recent **slot;   /* max slots, allocated on the first push */
	unsigned max, head, len;
	size_t bytes, max_bytes;
};

void ring_init(struct ring *r, unsigned max, size_t max_bytes);

/* Drops every event (the slots stay allocated). */
void ring_clear(struct ring *r);

/* ring_clear, and frees the slots. */
void ring_release(struct ring *r);

/* Appends e, taking f (left empty), dropping the oldest beyond the bounds
 * (an event larger than max_bytes is kept alone). Returns 0, or -1 when
 * out of memory: the ring is then empty and f released. */
int ring_push(struct ring *r, const struct bus_entry *e, struct frames *f);

/* The position of the event with this id (0: the oldest), or -1. Searches
 * from the newest: a resuming client is usually near the end. */
long ring_find(const struct ring *r, const char *id);

/* The event at position i (0 <= i < len). */
const struct recent *ring_at(const struct ring *r, unsigned i);

#endif
