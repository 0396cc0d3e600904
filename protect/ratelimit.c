#include "ratelimit.h"

#include <limits.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../core/buf.h"
#include "../redis/redis.h"

#define KEY_MAX 200
#define STRIPES 64

/* KEYS[1] the key; ARGV: T and tau in microseconds, consume (1/0).
 * Returns "<allowed> <TAT - now in microseconds>". */
static const char gcra_lua[] =
	"local t = redis.call('TIME')\n"
	"local now = tonumber(t[1]) * 1000000 + tonumber(t[2])\n"
	"local T, tau = tonumber(ARGV[1]), tonumber(ARGV[2])\n"
	"local tat = tonumber(redis.call('GET', KEYS[1])) or 0\n"
	"if tat < now then tat = now end\n"
	"local ok = 0\n"
	"if tat + T - now <= tau then\n"
	"  ok = 1\n"
	"  if ARGV[3] == '1' then\n"
	"    tat = tat + T\n"
	"    redis.call('SET', KEYS[1], string.format('%d', tat), 'PX', math.ceil((tat - now) / 1000) + 1)\n"
	"  end\n"
	"end\n"
	"return string.format('%d %d', ok, tat - now)\n";

struct slot {
	uint64_t hash; /* 0: empty */
	long long tat_us;
};

struct ratelimit {
	struct redis *redis;
	char sha[REDIS_SHA_HEX_LEN + 1];
	size_t mask;
	struct slot *slots;
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
	if ((rl->slots = calloc(n, sizeof(*rl->slots))) == NULL) {
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

static int check_redis(struct ratelimit *rl, const char *key, const struct rl_rule *rule,
		       int consume, struct rl_result *out)
{
	char k[KEY_MAX + 32], ts[24], taus[24];
	const char *argv[4] = { k, ts, taus, consume ? "1" : "0" };
	size_t lens[4];
	long long tau, t = tokens_us(rule, &tau), ahead;
	struct buf reply = BUF_INIT;
	int allowed, rc = -1;

	snprintf(k, sizeof(k), "fcgi_sse:rl:%.*s", KEY_MAX, key);
	snprintf(ts, sizeof(ts), "%lld", t);
	snprintf(taus, sizeof(taus), "%lld", tau);
	for (int i = 0; i < 4; i++)
		lens[i] = strlen(argv[i]);
	if (redis_script(rl->redis, rl->sha, gcra_lua, 1, 4, argv, lens, &reply) == 1 &&
	    sscanf(buf_str(&reply), "%d %lld", &allowed, &ahead) == 2) {
		memset(out, 0, sizeof(*out));
		derive(allowed == 1, ahead, t, tau, out);
		rc = 0;
	}
	buf_release(&reply);
	return rc;
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
