#include "breaker.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

struct breaker {
	struct breaker_opts o;
	pthread_mutex_t mu;
	enum breaker_state state;
	atomic_int closed;      /* state == CLOSED, read without the lock: the
				   path of every call while all is well */
	long long fail_at[BREAKER_FAILURES_MAX]; /* ring of the latest failures */
	int nfail, next;
	long long open_until;
	int trials;             /* half-open calls under way */
	unsigned long long opened;
};

struct breaker *breaker_new(const struct breaker_opts *o)
{
	struct breaker *b = calloc(1, sizeof(*b));

	if (b == NULL)
		return NULL;
	b->o = *o;
	if (b->o.failures < 1)
		b->o.failures = 1;
	if (b->o.failures > BREAKER_FAILURES_MAX)
		b->o.failures = BREAKER_FAILURES_MAX;
	if (b->o.probes < 1)
		b->o.probes = 1;
	pthread_mutex_init(&b->mu, NULL);
	atomic_init(&b->closed, 1);
	return b;
}

void breaker_free(struct breaker *b)
{
	if (b == NULL)
		return;
	pthread_mutex_destroy(&b->mu);
	free(b);
}

/* Open ends on its own: the first look after open_ms finds it half-open. */
static void advance(struct breaker *b, long long now)
{
	if (b->state == BREAKER_OPEN && now >= b->open_until) {
		b->state = BREAKER_HALF_OPEN;
		b->trials = 0;
	}
}

static void trip(struct breaker *b, long long now)
{
	b->state = BREAKER_OPEN;
	atomic_store(&b->closed, 0);
	b->open_until = now + b->o.open_ms;
	b->nfail = b->next = 0;
	b->trials = 0;
	b->opened++;
}

int breaker_allow(struct breaker *b, long long now_ms)
{
	int ok;

	if (atomic_load_explicit(&b->closed, memory_order_relaxed))
		return 1;
	pthread_mutex_lock(&b->mu);
	advance(b, now_ms);
	ok = b->state == BREAKER_CLOSED ||
	     (b->state == BREAKER_HALF_OPEN && b->trials < b->o.probes && ++b->trials > 0);
	pthread_mutex_unlock(&b->mu);
	return ok;
}

void breaker_success(struct breaker *b, long long now_ms)
{
	if (atomic_load_explicit(&b->closed, memory_order_relaxed))
		return; /* nothing to change: no lock on the common path */
	pthread_mutex_lock(&b->mu);
	advance(b, now_ms);
	if (b->state == BREAKER_HALF_OPEN) {
		b->state = BREAKER_CLOSED;
		atomic_store(&b->closed, 1);
		b->nfail = b->next = 0;
		b->trials = 0;
	}
	pthread_mutex_unlock(&b->mu);
}

void breaker_failure(struct breaker *b, long long now_ms)
{
	pthread_mutex_lock(&b->mu);
	advance(b, now_ms);
	if (b->state == BREAKER_HALF_OPEN) {
		trip(b, now_ms);
	} else if (b->state == BREAKER_CLOSED) {
		int oldest;

		b->fail_at[b->next] = now_ms;
		b->next = (b->next + 1) % b->o.failures;
		if (b->nfail < b->o.failures)
			b->nfail++;
		/* the ring holds the latest `failures`: the oldest is at next */
		oldest = b->nfail < b->o.failures ? 0 : b->next;
		if (b->nfail == b->o.failures && now_ms - b->fail_at[oldest] <= b->o.window_ms)
			trip(b, now_ms);
	}
	pthread_mutex_unlock(&b->mu);
}

enum breaker_state breaker_state(struct breaker *b, long long now_ms)
{
	enum breaker_state s;

	pthread_mutex_lock(&b->mu);
	advance(b, now_ms);
	s = b->state;
	pthread_mutex_unlock(&b->mu);
	return s;
}

const char *breaker_state_name(enum breaker_state s)
{
	return s == BREAKER_CLOSED ? "closed" : s == BREAKER_OPEN ? "open" : "half_open";
}

unsigned long long breaker_opened(struct breaker *b)
{
	unsigned long long n;

	pthread_mutex_lock(&b->mu);
	n = b->opened;
	pthread_mutex_unlock(&b->mu);
	return n;
}
