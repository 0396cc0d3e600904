#include "cache.h"

#include <limits.h>

long long cache_ttl_jitter(long long ttl, int pct, uint32_t rnd)
{
	uint64_t span, width, pick;

	if (ttl <= 0)
		return 1;
	if (pct <= 0)
		return ttl;
	if (pct > 100)
		pct = 100;
	/* ttl * pct / 100 without overflowing */
	span = (uint64_t)(ttl / 100 * pct + ttl % 100 * pct / 100);
	if (span == 0)
		return ttl;
	/* scale rnd onto [0, 2*span]: uniform for any span, unlike rnd % width */
	width = 2 * span + 1;
	pick = (uint64_t)(((unsigned __int128)rnd * width) >> 32);
	if (pick >= span)
		return pick - span > (uint64_t)(LLONG_MAX - ttl) ? LLONG_MAX
								  : ttl + (long long)(pick - span);
	return ttl - (long long)(span - pick) < 1 ? 1 : ttl - (long long)(span - pick);
}

long long cache_session_ttl(long long remaining, long long cap)
{
	if (remaining <= 0)
		return 0;
	return remaining < cap ? remaining : cap;
}
