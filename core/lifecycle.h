/* lifecycle: the process-wide "we are stopping" state that long-running
 * handlers wait on, so SIGTERM wakes them at once instead of at their next
 * timer. Thread-safe; the stop signal is a pipe that becomes readable, so it
 * can be polled together with a connection. */
#ifndef FCGI_SSE_LIFECYCLE_H
#define FCGI_SSE_LIFECYCLE_H

#include <stdatomic.h>

struct lifecycle {
	atomic_int _stopping;
	int _pipe[2]; /* [0] readable once stopping */
};

enum lifecycle_wake {
	LIFECYCLE_TIMEOUT,   /* the time ran out */
	LIFECYCLE_STOPPING,  /* lifecycle_stop was called */
	LIFECYCLE_PEER_GONE, /* the watched connection was closed by its peer */
};

/* Initialises lc in the running state. Returns 0, or -1 (errno set). */
int lifecycle_init(struct lifecycle *lc);

/* Closes lc's pipe; no thread may be waiting on it. */
void lifecycle_free(struct lifecycle *lc);

/* Marks the process as stopping and wakes every waiter. Idempotent and
 * async-signal-safe. */
void lifecycle_stop(struct lifecycle *lc);

/* Returns 1 once lifecycle_stop has been called, else 0. */
int lifecycle_stopping(struct lifecycle *lc);

/* Waits up to ms milliseconds, until stop, or (when peer_fd >= 0) until the
 * peer of the connection peer_fd closes it. Stopping wins over the other
 * two when both happen. */
enum lifecycle_wake lifecycle_wait(struct lifecycle *lc, int peer_fd, long long ms);

#endif
