#include "quota.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/buf.h"
#include "../core/reqid.h"
#include "../redis/redis.h"

#define KEY_MAX (2 * COUNTS_ID_MAX + 32)
#define SYNC_BATCH 6 /* hashes per sync call: 3 + 2 * 6 arguments */
#define PROC_PREFIX "fcgi_sse:proc:"

/* KEYS[1] the tenant's hash, KEYS[2] the user's (absent: no user).
 * ARGV: nonce, max tenant, max user, liveness key prefix, lease ms. */
static const char open_lua[] =
	"local function live(key)\n"
	"  local f = redis.call('HGETALL', key)\n"
	"  local sum = 0\n"
	"  for i = 1, #f, 2 do\n"
	"    if f[i] == ARGV[1] or redis.call('EXISTS', ARGV[4] .. f[i]) == 1 then\n"
	"      sum = sum + tonumber(f[i + 1])\n"
	"    else\n"
	"      redis.call('HDEL', key, f[i])\n"
	"    end\n"
	"  end\n"
	"  return sum\n"
	"end\n"
	"local mt, mu = tonumber(ARGV[2]), tonumber(ARGV[3])\n"
	"if mt > 0 and live(KEYS[1]) >= mt then return 't' end\n"
	"if #KEYS > 1 and mu > 0 and live(KEYS[2]) >= mu then return 'u' end\n"
	"redis.call('SET', ARGV[4] .. ARGV[1], '1', 'PX', ARGV[5])\n"
	"for i = 1, #KEYS do\n"
	"  redis.call('HINCRBY', KEYS[i], ARGV[1], 1)\n"
	"  redis.call('PEXPIRE', KEYS[i], 4 * tonumber(ARGV[5]))\n"
	"end\n"
	"return 'ok'\n";

/* KEYS: hashes; ARGV: nonce, liveness key, lease ms, then a count per key
 * (0: this process's field is removed). */
static const char sync_lua[] =
	"redis.call('SET', ARGV[2], '1', 'PX', ARGV[3])\n"
	"for i = 1, #KEYS do\n"
	"  local n = tonumber(ARGV[3 + i])\n"
	"  if n > 0 then\n"
	"    redis.call('HSET', KEYS[i], ARGV[1], n)\n"
	"    redis.call('PEXPIRE', KEYS[i], 4 * tonumber(ARGV[3]))\n"
	"  else\n"
	"    redis.call('HDEL', KEYS[i], ARGV[1])\n"
	"  end\n"
	"end\n"
	"return 'ok'\n";

struct quota {
	struct redis *redis;
	long long lease_ms;
	char nonce[REQID_GENERATED_LEN + 1];
	char open_sha[REDIS_SHA_HEX_LEN + 1], sync_sha[REDIS_SHA_HEX_LEN + 1];
	char (*last)[KEY_MAX]; /* hashes the last sync wrote a count into */
	size_t nlast;
	/* hashes quota_open counted a stream in since the last sync: a stream
	 * that opened and ended in between is in no sync's counts, and its
	 * field must still go back to zero */
	pthread_mutex_t mu;
	char (*opened)[KEY_MAX];
	size_t nopened, capopened;
};

/* Notes a hash quota_open counted in (best effort: out of memory, the
 * field waits for the process's lease to run out). */
static void note_opened(struct quota *q, const char *key)
{
	pthread_mutex_lock(&q->mu);
	for (size_t i = 0; i < q->nopened; i++)
		if (strcmp(q->opened[i], key) == 0)
			goto out;
	if (q->nopened == q->capopened) {
		size_t cap = q->capopened ? 2 * q->capopened : 16;
		char (*v)[KEY_MAX] = realloc(q->opened, cap * KEY_MAX);
		if (v == NULL)
			goto out;
		q->opened = v;
		q->capopened = cap;
	}
	memcpy(q->opened[q->nopened++], key, KEY_MAX);
out:
	pthread_mutex_unlock(&q->mu);
}

struct quota *quota_new(struct redis *r, long long lease_ms)
{
	struct quota *q = calloc(1, sizeof(*q));

	if (q == NULL || reqid_generate(q->nonce) < 0) {
		free(q);
		return NULL;
	}
	q->redis = r;
	q->lease_ms = lease_ms > 0 ? lease_ms : 1;
	pthread_mutex_init(&q->mu, NULL);
	redis_script_sha(open_lua, q->open_sha);
	redis_script_sha(sync_lua, q->sync_sha);
	return q;
}

void quota_free(struct quota *q)
{
	if (q == NULL)
		return;
	free(q->last);
	free(q->opened);
	pthread_mutex_destroy(&q->mu);
	free(q);
}

static void hash_key(const char *tenant, const char *user, char *out)
{
	if (user[0])
		snprintf(out, KEY_MAX, "fcgi_sse:squ:{%s}:%s", tenant, user);
	else
		snprintf(out, KEY_MAX, "fcgi_sse:sqt:{%s}", tenant);
}

enum quota_result quota_open(struct quota *q, const char *tenant, const char *user,
			     long long max_tenant, long long max_user)
{
	char kt[KEY_MAX], ku[KEY_MAX], mt[24], mu[24], lease[24];
	const char *argv[7] = { kt, ku, q->nonce, mt, mu, PROC_PREFIX, lease };
	size_t lens[7];
	int nkeys = user != NULL && user[0] ? 2 : 1;
	struct buf out = BUF_INIT;
	enum quota_result r = QUOTA_UNAVAILABLE;

	if (max_tenant <= 0 && max_user <= 0)
		return QUOTA_OK;
	hash_key(tenant, "", kt);
	hash_key(tenant, nkeys == 2 ? user : "", ku);
	snprintf(mt, sizeof(mt), "%lld", max_tenant);
	snprintf(mu, sizeof(mu), "%lld", max_user);
	snprintf(lease, sizeof(lease), "%lld", q->lease_ms);
	if (nkeys == 1) /* no user key: the arguments move up one */
		memmove(&argv[1], &argv[2], 5 * sizeof(argv[0]));
	for (int i = 0; i < nkeys + 5; i++)
		lens[i] = strlen(argv[i]);
	if (redis_script(q->redis, q->open_sha, open_lua, nkeys, nkeys + 5, argv, lens, &out) == 1)
		r = strcmp(buf_str(&out), "ok") == 0  ? QUOTA_OK
		    : strcmp(buf_str(&out), "t") == 0 ? QUOTA_TENANT_FULL
		    : strcmp(buf_str(&out), "u") == 0 ? QUOTA_USER_FULL
						       : QUOTA_UNAVAILABLE;
	if (r == QUOTA_OK) {
		note_opened(q, kt);
		if (nkeys == 2)
			note_opened(q, ku);
	}
	buf_release(&out);
	return r;
}

static int sync_batch(struct quota *q, char (*keys)[KEY_MAX], const long long *n, size_t k)
{
	const char *argv[3 + 2 * SYNC_BATCH];
	size_t lens[3 + 2 * SYNC_BATCH];
	char proc[KEY_MAX], lease[24], num[SYNC_BATCH][24];
	struct buf out = BUF_INIT;
	int rc;

	snprintf(proc, sizeof(proc), PROC_PREFIX "%s", q->nonce);
	snprintf(lease, sizeof(lease), "%lld", q->lease_ms);
	for (size_t i = 0; i < k; i++) {
		argv[i] = keys[i];
		snprintf(num[i], sizeof(num[i]), "%lld", n[i]);
	}
	argv[k] = q->nonce, argv[k + 1] = proc, argv[k + 2] = lease;
	for (size_t i = 0; i < k; i++)
		argv[k + 3 + i] = num[i];
	for (size_t i = 0; i < 2 * k + 3; i++)
		lens[i] = strlen(argv[i]);
	rc = redis_script(q->redis, q->sync_sha, sync_lua, (int)k, (int)(2 * k + 3), argv, lens, &out) == 1 ? 0 : -1;
	buf_release(&out);
	return rc;
}

/* Whether key is among the first n of keys. */
static int has_key(char (*keys)[KEY_MAX], size_t n, const char *key)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(keys[i], key) == 0)
			return 1;
	return 0;
}

int quota_sync(struct quota *q, const struct count_entry *e, size_t n)
{
	char (*keys)[KEY_MAX], (*opened)[KEY_MAX];
	long long *counts;
	size_t k = 0, nopened;
	int rc = 0;

	pthread_mutex_lock(&q->mu);
	opened = q->opened, nopened = q->nopened;
	q->opened = NULL, q->nopened = q->capopened = 0;
	pthread_mutex_unlock(&q->mu);
	keys = calloc(n + q->nlast + nopened + 1, KEY_MAX);
	counts = calloc(n + q->nlast + nopened + 1, sizeof(*counts));
	if (keys == NULL || counts == NULL) {
		free(keys);
		free(counts);
		free(opened);
		return -1;
	}
	for (size_t i = 0; i < n; i++, k++) {
		hash_key(e[i].tenant, e[i].user, keys[k]);
		counts[k] = e[i].n;
	}
	/* what the last sync counted, or an open since, and this one does
	 * not: back to zero */
	for (size_t i = 0; i < q->nlast + nopened; i++) {
		const char *key = i < q->nlast ? q->last[i] : opened[i - q->nlast];
		if (!has_key(keys, k, key)) {
			memcpy(keys[k], key, KEY_MAX);
			counts[k++] = 0;
		}
	}
	for (size_t i = 0; i < k && rc == 0; i += SYNC_BATCH)
		rc = sync_batch(q, keys + i, counts + i, k - i < SYNC_BATCH ? k - i : SYNC_BATCH);
	if (k == 0) /* nothing open: still alive */
		rc = sync_batch(q, keys, counts, 0);
	if (rc == 0) {
		free(q->last);
		q->last = keys; /* the first n are this sync's counts */
		q->nlast = n;
		keys = NULL;
	} else {
		for (size_t i = 0; i < nopened; i++) /* the next sync zeroes them */
			note_opened(q, opened[i]);
	}
	free(opened);
	free(keys);
	free(counts);
	return rc;
}
