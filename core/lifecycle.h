/* lifecycle: the process-wide "we are stopping" state that long-running
 * handlers wait on, so SIGTERM wakes them at once instead of at their next
 * timer. Thread-safe. */
#ifndef FCGI_SSE_LIFECYCLE_H
#define FCGI_SSE_LIFECYCLE_H

#include <pthread.h>

struct lifecycle {
	pthread_mutex_t _mu;
	pthread_cond_t _cv; /* CLOCK_MONOTONIC */
	int _stopping;
};

/* Initialises lc in the running state. Returns 0 or -1. */
int lifecycle_init(struct lifecycle *lc);

/* Destroys lc; no thread may be waiting on it. */
void lifecycle_free(struct lifecycle *lc);

/* Marks the process as stopping and wakes every waiter. Idempotent. */
void lifecycle_stop(struct lifecycle *lc);

/* Returns 1 once lifecycle_stop has been called, else 0. */
int lifecycle_stopping(struct lifecycle *lc);

/* Waits up to ms milliseconds or until stop. Returns 1 if stopping, 0 when
 * the time ran out. */
int lifecycle_wait(struct lifecycle *lc, long long ms);

#endif
