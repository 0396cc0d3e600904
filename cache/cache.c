#include "cache.h"

long long cache_ttl_jitter(long long ttl, int pct, uint32_t rnd)
{
	long long span, off;

	if (ttl <= 0)
		return 1;
	if (pct <= 0)
		return ttl;
	if (pct > 100)
		pct = 100;
	span = ttl * pct / 100; /* offsets in [-span, +span] */
	if (span == 0)
		return ttl;
	off = (long long)(rnd % (uint32_t)(2 * span + 1 > 0xffffffffLL ? 0xffffffffu
									: (uint32_t)(2 * span + 1))) - span;
	return ttl + off < 1 ? 1 : ttl + off;
}

long long cache_session_ttl(long long remaining, long long cap)
{
	if (remaining <= 0)
		return 0;
	return remaining < cap ? remaining : cap;
}
