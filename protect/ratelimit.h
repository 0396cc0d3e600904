/* ratelimit: GCRA (the generic cell rate algorithm: a token bucket kept
 * as one timestamp) shared by every process through one Redis script, with
 * a per-process table while Redis is unavailable.
 *
 * A rule allows `limit` requests per `window_s`, all of them at once at
 * most (the bucket holds `limit`). A key's state is its theoretical
 * arrival time (TAT): the moment its bucket is full again. A request is
 * allowed when TAT + T - now <= tau, with T = window / limit (one token)
 * and tau = window (the whole bucket); taking one moves TAT by T. Redis's
 * clock decides in the shared case, so processes on hosts whose clocks
 * differ still agree. */
#ifndef FCGI_SSE_RATELIMIT_H
#define FCGI_SSE_RATELIMIT_H

#include <stddef.h>

struct redis;

struct rl_rule {
	const char *name;   /* the policy's name in the headers: "reads" */
	long long limit;    /* requests per window; <= 0: unlimited */
	long long window_s; /* >= 1 */
};

struct rl_result {
	int allowed;
	long long remaining;      /* requests allowed now, after this one */
	long long reset_s;        /* seconds until the bucket is full again */
	long long retry_after_s;  /* when refused: seconds until one is allowed (>= 1) */
	int local;                /* decided by this process's table (Redis unavailable) */
};

/* One GCRA step on *tat_ms (0: a key never seen) at now_ms. consume 0
 * only looks (for limits on failures, taken after the outcome is known).
 * Fills out; *tat_ms moves only when a request is allowed and consumed.
 * Pure. */
void rl_gcra(long long *tat_ms, long long now_ms, const struct rl_rule *r, int consume,
	     struct rl_result *out);

struct ratelimit;

/* A limiter over r (NULL: this process's table only). local_slots: the
 * size of the fallback table (rounded up to a power of two). */
struct ratelimit *ratelimit_new(struct redis *r, int local_slots);
void ratelimit_free(struct ratelimit *rl);

/* Applies rule to key (at most 200 bytes; longer keys are cut): through
 * Redis when it answers, else the local table. An unlimited rule allows
 * without asking anything. */
void ratelimit_check(struct ratelimit *rl, const char *key, const struct rl_rule *rule,
		     int consume, struct rl_result *out);

/* ratelimit_check with consume for the many requests of one key on the
 * request path: tokens come from the shared bucket in leases, sized to
 * what this process used of the last one (at most limit/16) and valid
 * RATELIMIT_LEASE_MS, so Redis is asked once per lease, not per request.
 * Leases come out of the bucket, so all processes together never admit
 * more than the limit; the price is the other way: a process may refuse
 * while another still holds leased tokens, and tokens left unused when a
 * lease expires are lost to the window (at most a lease per process and
 * key). remaining counts the shared bucket at the last lease plus this
 * process's lease. */
#define RATELIMIT_LEASE_MS 250
void ratelimit_take(struct ratelimit *rl, const char *key, const struct rl_rule *rule,
		    struct rl_result *out);

/* Calls of the Redis script so far (answered or not). */
unsigned long long ratelimit_redis_calls(struct ratelimit *rl);

/* The header values of draft-ietf-httpapi-ratelimit-headers (-10):
 * RateLimit-Policy `"<name>";q=<limit>;w=<window>` and RateLimit
 * `"<name>";r=<remaining>;t=<reset>`. */
void ratelimit_policy_header(const struct rl_rule *r, char *out, size_t cap);
void ratelimit_state_header(const struct rl_rule *r, const struct rl_result *res, char *out,
			    size_t cap);

#endif
