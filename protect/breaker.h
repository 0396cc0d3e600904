/* breaker: a circuit breaker for one dependency.
 *
 * Closed: calls go ahead; `failures` failures within `window_ms` open it.
 * Open: calls fail at once, without touching the dependency, for
 * `open_ms`. Half-open: up to `probes` calls at a time go ahead as trials;
 * a trial's success closes the breaker, its failure opens it again for
 * another `open_ms`. Thread-safe; time is the caller's (monotonic ms). */
#ifndef FCGI_SSE_BREAKER_H
#define FCGI_SSE_BREAKER_H

#define BREAKER_FAILURES_MAX 64

struct breaker_opts {
	int failures;       /* 1..BREAKER_FAILURES_MAX */
	long long window_ms;
	long long open_ms;
	int probes;         /* >= 1 */
};

enum breaker_state { BREAKER_CLOSED, BREAKER_OPEN, BREAKER_HALF_OPEN };

struct breaker;

struct breaker *breaker_new(const struct breaker_opts *o);
void breaker_free(struct breaker *b);

/* 1 when a call may go ahead now (in half-open, it takes a trial slot,
 * given back by its success or failure); 0 when it must fail fast. */
int breaker_allow(struct breaker *b, long long now_ms);

/* The outcome of a call breaker_allow let through. */
void breaker_success(struct breaker *b, long long now_ms);
void breaker_failure(struct breaker *b, long long now_ms);

enum breaker_state breaker_state(struct breaker *b, long long now_ms);
const char *breaker_state_name(enum breaker_state s);

/* Times it opened since start. */
unsigned long long breaker_opened(struct breaker *b);

#endif
