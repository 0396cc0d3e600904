#include "ratelimit.h"

#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../core/clock.h"
#include "../core/buf.h"
#include "../redis/redis.h"

#define KEY_MAX 200
#define STRIPES 64

/* KEYS[1] the key; ARGV: T and tau in microseconds, n tokens wanted (0:
 * only look). Grants as many of the n as the bucket holds. Returns
 * "<granted> <TAT - now after> <tokens there were>", microseconds. */
static const char gcra_lua[] =
	"local t = redis.call('TIME')\n"
	"local now = tonumber(t[1]) * 1000000 + tonumber(t[2])\n"
	"local T, tau, n = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])\n"
	"local tat = tonumber(redis.call('GET', KEYS[1])) or 0\n"
	"if tat < now then tat = now end\n"
	"local room = math.floor((tau - (tat - now)) / T)\n"
	"if room < 0 then room = 0 end\n"
	"local k = math.min(n, room)\n"
	"if k > 0 then\n"
	"  tat = tat + k * T\n"
	"  redis.call('SET', KEYS[1], string.format('%d', tat), 'PX', math.ceil((tat - now) / 1000) + 1)\n"
	"end\n"
	"return string.format('%d %d %d', k, tat - now, room)\n";

struct slot {
	uint64_t hash; /* 0: empty */
	long long tat_us;
};

/* Tokens this process took from a shared bucket ahead of its requests. */
struct lease {
	uint64_t hash;          /* 0: empty */
	long long tokens;       /* left in the lease */
	long long used;         /* taken from this lease */
	long long expires_ms;   /* monotonic */
	long long remaining;    /* the shared bucket's, when the lease was granted */
	long long reset_s;
};

struct ratelimit {
	struct redis *redis;
	char sha[REDIS_SHA_HEX_LEN + 1];
	size_t mask;
	struct slot *slots;    /* the fallback while Redis is unreachable */
	struct lease *leases;  /* same size and stripes as slots */
	_Atomic unsigned long long calls;
	pthread_mutex_t stripes[STRIPES];
};

static long long tokens_us(const struct rl_rule *r, long long *tau)
{
	*tau = r->window_s * 1000000;
	return *tau / r->limit > 0 ? *tau / r->limit : 1;
}

/* The answer for a key whose TAT is ahead_us past now, after the decision. */
static void derive(int allowed, long long ahead_us, long long t, long long tau, struct rl_result *out)
{
	if (ahead_us < 0)
		ahead_us = 0;
	out->allowed = allowed;
	out->remaining = allowed ? (tau - ahead_us) / t : 0;
	if (out->remaining < 0)
		out->remaining = 0;
	out->reset_s = (ahead_us + 999999) / 1000000;
	out->retry_after_s = 0;
	if (!allowed) {
		long long wait = ahead_us + t - tau;
		out->retry_after_s = wait > 0 ? (wait + 999999) / 1000000 : 1;
		if (out->retry_after_s < 1)
			out->retry_after_s = 1;
	}
}

void rl_gcra(long long *tat_us, long long now_us, const struct rl_rule *r, int consume,
	     struct rl_result *out)
{
	long long tau, t = tokens_us(r, &tau), tat = *tat_us > now_us ? *tat_us : now_us;
	int allowed = tat + t - now_us <= tau;

	memset(out, 0, sizeof(*out));
	if (allowed && consume) {
		tat += t;
		*tat_us = tat;
	}
	derive(allowed, tat - now_us, t, tau, out);
}

struct ratelimit *ratelimit_new(struct redis *r, int local_slots)
{
	struct ratelimit *rl = calloc(1, sizeof(*rl));
	size_t n = 1;

	if (rl == NULL)
		return NULL;
	while (n < (size_t)(local_slots > 0 ? local_slots : 1))
		n <<= 1;
	if ((rl->slots = calloc(n, sizeof(*rl->slots))) == NULL ||
	    (rl->leases = calloc(n, sizeof(*rl->leases))) == NULL) {
		free(rl->slots);
		free(rl);
		return NULL;
	}
	rl->mask = n - 1;
	rl->redis = r;
	redis_script_sha(gcra_lua, rl->sha);
	for (int i = 0; i < STRIPES; i++)
		pthread_mutex_init(&rl->stripes[i], NULL);
	return rl;
}

void ratelimit_free(struct ratelimit *rl)
{
	if (rl == NULL)
		return;
	for (int i = 0; i < STRIPES; i++)
		pthread_mutex_destroy(&rl->stripes[i]);
	free(rl->slots);
	free(rl->leases);
	free(rl);
}

static uint64_t hash64(const char *s)
{
	uint64_t h = 1469598103934665603ULL; /* FNV-1a */

	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ULL;
	return h ? h : 1;
}

static long long wall_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (long long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* The table keeps one key per slot: a key that lands on another's slot
 * starts afresh (the fallback bounds memory, not precision). */
static void check_local(struct ratelimit *rl, const char *key, const struct rl_rule *rule,
			int consume, struct rl_result *out)
{
	uint64_t h = hash64(key);
	size_t i = (size_t)h & rl->mask;
	pthread_mutex_t *mu = &rl->stripes[i % STRIPES];
	struct slot *s = &rl->slots[i];

	pthread_mutex_lock(mu);
	if (s->hash != h) {
		s->hash = h;
		s->tat_us = 0;
	}
	rl_gcra(&s->tat_us, wall_us(), rule, consume, out);
	pthread_mutex_unlock(mu);
	out->local = 1;
}

/* Takes up to n tokens (0: looks) from key's shared bucket. Returns the
 * number granted, or -1 when Redis did not answer; *room gets the tokens
 * there were and *ahead_us the bucket's TAT - now afterwards. */
static long long take_redis(struct ratelimit *rl, const char *key, const struct rl_rule *rule,
			    long long n, long long *room, long long *ahead_us)
{
	char k[KEY_MAX + 32], ts[24], taus[24], ns[24];
	const char *argv[4] = { k, ts, taus, ns };
	size_t lens[4];
	long long tau, t = tokens_us(rule, &tau), granted = -1;
	struct buf reply = BUF_INIT;

	snprintf(k, sizeof(k), "fcgi_sse:rl:%.*s", KEY_MAX, key);
	snprintf(ts, sizeof(ts), "%lld", t);
	snprintf(taus, sizeof(taus), "%lld", tau);
	snprintf(ns, sizeof(ns), "%lld", n);
	for (int i = 0; i < 4; i++)
		lens[i] = strlen(argv[i]);
	atomic_fetch_add_explicit(&rl->calls, 1, memory_order_relaxed);
	if (redis_script(rl->redis, rl->sha, gcra_lua, 1, 4, argv, lens, &reply) != 1 ||
	    sscanf(buf_str(&reply), "%lld %lld %lld", &granted, ahead_us, room) != 3)
		granted = -1;
	buf_release(&reply);
	return granted;
}

static int check_redis(struct ratelimit *rl, const char *key, const struct rl_rule *rule,
		       int consume, struct rl_result *out)
{
	long long tau, t = tokens_us(rule, &tau), room, ahead;
	long long granted = take_redis(rl, key, rule, consume ? 1 : 0, &room, &ahead);

	if (granted < 0)
		return -1;
	memset(out, 0, sizeof(*out));
	derive(consume ? granted == 1 : room >= 1, ahead, t, tau, out);
	return 0;
}

void ratelimit_check(struct ratelimit *rl, const char *key, const struct rl_rule *rule,
		     int consume, struct rl_result *out)
{
	memset(out, 0, sizeof(*out));
	if (rule->limit <= 0 || rule->window_s <= 0) {
		out->allowed = 1;
		out->remaining = LLONG_MAX;
		return;
	}
	if (rl->redis != NULL && check_redis(rl, key, rule, consume, out) == 0)
		return;
	check_local(rl, key, rule, consume, out);
}

void ratelimit_policy_header(const struct rl_rule *r, char *out, size_t cap)
{
	snprintf(out, cap, "\"%s\";q=%lld;w=%lld", r->name, r->limit, r->window_s);
}

void ratelimit_state_header(const struct rl_rule *r, const struct rl_result *res, char *out,
			    size_t cap)
{
	snprintf(out, cap, "\"%s\";r=%lld;t=%lld", r->name, res->remaining, res->reset_s);
}

/* How many tokens to lease: one at first; then what the last lease served
 * (twice that when it ran dry before it expired), at most limit/16. */
static long long lease_size(const struct lease *l, int same_key, long long now,
			    const struct rl_rule *rule)
{
	long long cap = rule->limit / 16 > 1 ? rule->limit / 16 : 1, want = 1;

	if (same_key)
		want = l->tokens == 0 && now < l->expires_ms ? 2 * l->used : l->used + 1;
	return want < 1 ? 1 : want > cap ? cap : want;
}

void ratelimit_take(struct ratelimit *rl, const char *key, const struct rl_rule *rule,
		    struct rl_result *out)
{
	uint64_t h = hash64(key);
	size_t i = (size_t)h & rl->mask;
	pthread_mutex_t *mu = &rl->stripes[i % STRIPES];
	struct lease *l = &rl->leases[i];
	long long now = clock_mono_ms(), want, granted, room, ahead, tau, t;

	memset(out, 0, sizeof(*out));
	if (rule->limit <= 0 || rule->window_s <= 0) {
		out->allowed = 1;
		out->remaining = LLONG_MAX;
		return;
	}
	if (rl->redis == NULL) {
		check_local(rl, key, rule, 1, out);
		return;
	}
	pthread_mutex_lock(mu);
	if (l->hash == h && l->tokens > 0 && now < l->expires_ms) {
		l->tokens--;
		l->used++;
		out->allowed = 1;
		out->remaining = l->remaining + l->tokens;
		out->reset_s = l->reset_s;
		pthread_mutex_unlock(mu);
		return;
	}
	want = lease_size(l, l->hash == h, now, rule);
	pthread_mutex_unlock(mu);
	granted = take_redis(rl, key, rule, want, &room, &ahead);
	if (granted < 0) {
		check_local(rl, key, rule, 1, out);
		return;
	}
	t = tokens_us(rule, &tau);
	derive(granted > 0, ahead, t, tau, out);
	pthread_mutex_lock(mu);
	l->hash = h;
	l->tokens = granted > 0 ? granted - 1 : 0;
	l->used = granted > 0 ? 1 : 0;
	l->expires_ms = now + RATELIMIT_LEASE_MS;
	l->remaining = out->remaining;
	l->reset_s = out->reset_s;
	out->remaining += l->tokens;
	pthread_mutex_unlock(mu);
}

unsigned long long ratelimit_redis_calls(struct ratelimit *rl)
{
	return atomic_load_explicit(&rl->calls, memory_order_relaxed);
}
