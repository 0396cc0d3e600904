/* retry: bounded retries with jittered backoff, for idempotent calls only.
 *
 * A caller that saw a transient failure (a connection lost mid-command, a
 * lock that was busy for a moment) may make the call again up to
 * RETRY_MAX times; before retry n (1, 2) it pauses for a random time in
 * [base << (n - 1)) / 2, base << (n - 1)]: half fixed, so the dependency
 * gets a moment, half random, so threads and processes do not retry in
 * step. */
#ifndef FCGI_SSE_RETRY_H
#define FCGI_SSE_RETRY_H

#include <stdint.h>

#define RETRY_MAX 2

/* The pause before retry n (1..RETRY_MAX) in ms, for a random value rnd. */
long long retry_delay_ms(int n, long long base_ms, uint32_t rnd);

/* Sleeps the pause before retry n (a per-thread random source). */
void retry_pause(int n, long long base_ms);

#endif
