#include "ring.h"

#include <stdlib.h>
#include <string.h>

#include "sse.h"

int frames_encode(struct frames *f, const struct bus_entry *e)
{
	memset(f, 0, sizeof(*f));
	if (sse_event(&f->event, e->id, e->type, e->data, e->len) == 0 &&
	    (!e->close || sse_event(&f->close, e->id, "close", "{}", 2) == 0))
		return 0;
	frames_release(f);
	return -1;
}

void frames_release(struct frames *f)
{
	buf_release(&f->event);
	buf_release(&f->close);
}

void ring_init(struct ring *r, unsigned max, size_t max_bytes)
{
	memset(r, 0, sizeof(*r));
	r->max = max ? max : 1;
	r->max_bytes = max_bytes;
}

static void recent_free(struct recent *e)
{
	frames_release(&e->f);
	free(e);
}

void ring_clear(struct ring *r)
{
	for (unsigned i = 0; i < r->len; i++)
		recent_free(r->slot[(r->head + i) % r->max]);
	r->head = r->len = 0;
	r->bytes = 0;
}

void ring_release(struct ring *r)
{
	ring_clear(r);
	free(r->slot);
	r->slot = NULL;
}

int ring_push(struct ring *r, const struct bus_entry *e, struct frames *f)
{
	size_t li = strlen(e->id) + 1, lt = strlen(e->type) + 1, lp = e->topic ? strlen(e->topic) + 1 : 0;
	struct recent *n;

	if ((r->slot == NULL && (r->slot = calloc(r->max, sizeof(*r->slot))) == NULL) ||
	    (n = malloc(sizeof(*n) + li + lt + lp)) == NULL) {
		ring_clear(r);
		frames_release(f);
		return -1;
	}
	n->e = (struct bus_entry){ memcpy(n->strs, e->id, li), memcpy(n->strs + li, e->type, lt),
				   lp ? memcpy(n->strs + li + lt, e->topic, lp) : NULL, NULL, 0, e->close };
	n->f = *f;
	memset(f, 0, sizeof(*f));
	while (r->len > 0 && (r->len == r->max || r->bytes + n->f.event.len > r->max_bytes)) {
		struct recent *old = r->slot[r->head];
		r->bytes -= old->f.event.len;
		recent_free(old);
		r->head = (r->head + 1) % r->max;
		r->len--;
	}
	r->slot[(r->head + r->len) % r->max] = n;
	r->len++;
	r->bytes += n->f.event.len;
	return 0;
}

long ring_find(const struct ring *r, const char *id)
{
	for (unsigned i = r->len; i-- > 0;)
		if (strcmp(r->slot[(r->head + i) % r->max]->e.id, id) == 0)
			return (long)i;
	return -1;
}

const struct recent *ring_at(const struct ring *r, unsigned i)
{
	return r->slot[(r->head + i) % r->max];
}
