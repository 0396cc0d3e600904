/* clock: the monotonic clock in milliseconds, for timeouts, backoffs,
 * leases and durations (never for wall-clock times: timefmt.h). */
#ifndef FCGI_SSE_CLOCK_H
#define FCGI_SSE_CLOCK_H

/* CLOCK_MONOTONIC in ms. */
long long clock_mono_ms(void);

#endif
