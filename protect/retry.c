#include "retry.h"

#include <errno.h>
#include <pthread.h>
#include <time.h>

long long retry_delay_ms(int n, long long base_ms, uint32_t rnd)
{
	long long hi, lo;

	if (n < 1 || base_ms <= 0)
		return 0;
	if (n > RETRY_MAX)
		n = RETRY_MAX;
	hi = base_ms << (n - 1);
	lo = hi / 2;
	return lo + (long long)(rnd % (uint64_t)(hi - lo + 1));
}

/* xorshift32 per thread, seeded from the clock and the thread: jitter,
 * not secrets */
static uint32_t next_random(void)
{
	static _Thread_local uint32_t x;

	if (x == 0) {
		struct timespec ts;

		clock_gettime(CLOCK_MONOTONIC, &ts);
		x = (uint32_t)ts.tv_nsec ^ (uint32_t)(uintptr_t)pthread_self() ^ 0x9e3779b9u;
		if (x == 0)
			x = 1;
	}
	x ^= x << 13;
	x ^= x >> 17;
	x ^= x << 5;
	return x;
}

void retry_pause(int n, long long base_ms)
{
	long long ms = retry_delay_ms(n, base_ms, next_random());
	struct timespec ts = { (time_t)(ms / 1000), (long)(ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}
