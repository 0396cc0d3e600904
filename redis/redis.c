#include "redis.h"

#include <hiredis/hiredis.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <errno.h>
#include <sys/socket.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../core/clock.h"
#include "../protect/breaker.h"
#include "../protect/retry.h"
#include "sentinel.h"

#define BACKOFF_MIN_MS 50
#define MASTER_CHECK_MS 2000 /* with sentinels: their master is looked up this often */

struct conn {
	struct redis *owner;
	redisContext *ctx;
	long long retry_at_ms; /* no attempt before this (monotonic) */
	long long failed_at_ms; /* when the last failure was recorded */
	long long backoff_ms;
	char errstr[160];
	struct sentinel_addr at; /* with sentinels: the master it is connected to */
	unsigned master_gen;     /* r->master_gen when it connected */
	long long replicas_at_ms; /* with sentinels: when this connection last
				   * counted the master's replicas (ROLE) */
	struct conn *next;     /* every thread's conn, for redis_free */
};

struct redis {
	char *host;
	int port;
	char *password;
	long long connect_timeout_ms, command_timeout_ms, backoff_max_ms;
	int retries;               /* of an idempotent command on a lost link */
	long long retry_backoff_ms;
	/* when any thread's connection last connected or was answered: a
	 * thread backing off from an older failure retries at once */
	_Atomic long long up_at_ms;
	pthread_key_t key;
	pthread_mutex_t mu; /* guards conns */
	struct conn *conns;
	struct breaker *breaker; /* NULL: none */
	struct sentinels *sentinels; /* NULL: host and port are the server */
	long long wait_ms;       /* WAIT's timeout for redis_replicated */
	/* the master the sentinels named last (guarded by mu), and a count of
	 * its changes: a connection made before the last change is to a
	 * master the sentinels have replaced, and is dropped before use */
	struct sentinel_addr master;
	int master_known;
	_Atomic unsigned master_gen;
	_Atomic long long master_check_ms; /* the next periodic look */
	/* how many replicas a publish waits for (guarded by mu): the most
	 * the master of generation replicas_gen has had, lowered only once
	 * it has had fewer for a while (wait_for) */
	int replicas;
	unsigned replicas_gen;
	long long fewer_since_ms; /* since when it has had fewer (0: not) */
};

static struct timeval to_tv(long long ms)
{
	struct timeval tv = { (time_t)(ms / 1000), (suseconds_t)((ms % 1000) * 1000) };
	return tv;
}

static void conn_drop(struct conn *c)
{
	if (c->ctx != NULL)
		redisFree(c->ctx);
	c->ctx = NULL;
}

/* Thread exit: unlink and free this thread's connection. */
static void conn_destroy(void *p)
{
	struct conn *c = p, **pp;
	struct redis *r = c->owner;

	pthread_mutex_lock(&r->mu);
	for (pp = &r->conns; *pp != NULL; pp = &(*pp)->next) {
		if (*pp == c) {
			*pp = c->next;
			break;
		}
	}
	pthread_mutex_unlock(&r->mu);
	conn_drop(c);
	free(c);
}

struct redis *redis_new(const struct redis_opts *o)
{
	struct redis *r = calloc(1, sizeof(*r));
	int none;

	if (r == NULL)
		return NULL;
	if ((r->sentinels = sentinels_new(o, &none)) == NULL && !none)
		goto err;
	r->host = strdup(o->host);
	r->password = strdup(o->password ? o->password : "");
	if (r->host == NULL || r->password == NULL)
		goto err;
	r->port = o->port;
	r->connect_timeout_ms = o->connect_timeout_ms;
	r->command_timeout_ms = o->command_timeout_ms;
	r->backoff_max_ms = o->backoff_max_ms;
	r->retries = o->retries < 0 ? 0 : o->retries > RETRY_MAX ? RETRY_MAX : o->retries;
	r->retry_backoff_ms = o->retry_backoff_ms;
	/* within the command timeout, so that WAIT answers before the socket
	 * gives up on it */
	r->wait_ms = o->command_timeout_ms / 2 > 0 ? o->command_timeout_ms / 2 : 1;
	r->master_check_ms = clock_mono_ms() + MASTER_CHECK_MS;
	if (pthread_key_create(&r->key, conn_destroy) != 0)
		goto err;
	pthread_mutex_init(&r->mu, NULL);
	return r;
err:
	sentinels_free(r->sentinels);
	free(r->host);
	free(r->password);
	free(r);
	return NULL;
}

void redis_free(struct redis *r)
{
	struct conn *c, *next;

	if (r == NULL)
		return;
	pthread_setspecific(r->key, NULL);
	pthread_mutex_lock(&r->mu);
	for (c = r->conns; c != NULL; c = next) {
		next = c->next;
		conn_drop(c);
		free(c);
	}
	r->conns = NULL;
	pthread_mutex_unlock(&r->mu);
	pthread_key_delete(r->key);
	pthread_mutex_destroy(&r->mu);
	OPENSSL_cleanse(r->password, strlen(r->password));
	free(r->password);
	free(r->host);
	sentinels_free(r->sentinels);
	free(r);
}

static struct conn *thread_conn(struct redis *r)
{
	struct conn *c = pthread_getspecific(r->key);

	if (c != NULL)
		return c;
	if ((c = calloc(1, sizeof(*c))) == NULL)
		return NULL;
	c->owner = r;
	if (pthread_setspecific(r->key, c) != 0) {
		free(c);
		return NULL;
	}
	pthread_mutex_lock(&r->mu);
	c->next = r->conns;
	r->conns = c;
	pthread_mutex_unlock(&r->mu);
	return c;
}

/* Records a failure and schedules the next attempt. */
static void fail(struct conn *c, const char *what)
{
	struct redis *r = c->owner;
	uint32_t jitter = 0;

	snprintf(c->errstr, sizeof(c->errstr), "%s", what);
	conn_drop(c);
	c->failed_at_ms = clock_mono_ms();
	c->backoff_ms = c->backoff_ms ? c->backoff_ms * 2 : BACKOFF_MIN_MS;
	if (c->backoff_ms > r->backoff_max_ms)
		c->backoff_ms = r->backoff_max_ms;
	RAND_bytes((unsigned char *)&jitter, sizeof(jitter));
	/* up to +25%, so threads and processes do not retry in step */
	c->retry_at_ms = c->failed_at_ms + c->backoff_ms + (long long)(jitter % (uint32_t)(c->backoff_ms / 4 + 1));
}

/* Records m as the sentinels' master; a change makes every connection
 * to the one before stale. Returns the generation of m. */
static unsigned learn_master(struct redis *r, const struct sentinel_addr *m)
{
	unsigned gen;

	pthread_mutex_lock(&r->mu);
	if (r->master_known && !sentinel_addr_eq(&r->master, m))
		atomic_fetch_add(&r->master_gen, 1);
	r->master = *m;
	r->master_known = 1;
	gen = atomic_load(&r->master_gen);
	pthread_mutex_unlock(&r->mu);
	return gen;
}

/* With sentinels, every MASTER_CHECK_MS, by the first thread to come by
 * (the others go on): whether the sentinels name another master now. A
 * replaced master keeps taking reads and writes on our connections until
 * the sentinels demote it (8 s or more later), and what is written there
 * then is lost: caches' invalidations, quotas. One sentinel asked (the
 * next one next time if it fails): at worst the connect timeout and two
 * command timeouts, for one request every MASTER_CHECK_MS. */
static void check_master(struct redis *r)
{
	long long now = clock_mono_ms(), due = atomic_load(&r->master_check_ms);
	struct sentinel_addr m;
	char err[160];

	if (now < due || !atomic_compare_exchange_strong(&r->master_check_ms, &due, now + MASTER_CHECK_MS))
		return;
	if (sentinels_ask(r->sentinels, 1, NULL, &m, err, sizeof(err)) == 0)
		learn_master(r, &m);
}

/* With sentinels: the master they name now (every connect asks again, so
 * a failover is followed). Each sentinel is asked in turn: at most the
 * connect timeout and two command timeouts each (redis/sentinel.h). */
static redisContext *connect_ctx(struct redis *r, struct conn *c)
{
	if (r->sentinels != NULL) {
		if (sentinels_ask(r->sentinels, 0, NULL, &c->at, c->errstr, sizeof(c->errstr)) < 0)
			return NULL;
		c->master_gen = learn_master(r, &c->at);
		return redisConnectWithTimeout(c->at.host, c->at.port, to_tv(r->connect_timeout_ms));
	}
	if (strncmp(r->host, "unix:", 5) == 0)
		return redisConnectUnixWithTimeout(r->host + 5, to_tv(r->connect_timeout_ms));
	return redisConnectWithTimeout(r->host, r->port, to_tv(r->connect_timeout_ms));
}

static int authenticate(struct conn *c)
{
	redisReply *rep;
	int ok;

	if (*c->owner->password == '\0')
		return 0;
	rep = redisCommand(c->ctx, "AUTH %s", c->owner->password);
	ok = rep != NULL && rep->type == REDIS_REPLY_STATUS;
	if (rep != NULL)
		freeReplyObject(rep);
	return ok ? 0 : -1;
}

/* 1 when the server has closed the connection (or sent something no
 * command asked for): a Redis restart leaves every idle connection so. One
 * non-blocking peek; a live idle connection has nothing to read. */
static int conn_stale(const struct conn *c)
{
	char byte;
	ssize_t n = recv(c->ctx->fd, &byte, 1, MSG_PEEK | MSG_DONTWAIT);

	if (n < 0)
		return errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR;
	return 1;
}

static void mark_up(struct redis *r)
{
	atomic_store_explicit(&r->up_at_ms, clock_mono_ms(), memory_order_relaxed);
}

/* Returns a usable connection for this thread, or NULL (failure recorded,
 * or still backing off). The backoff is skipped once another thread has
 * reached Redis since this one failed: Redis is back, and a request must
 * not fail for a backoff that was about an outage already over; and when
 * `now` is set: a retry right after a lost link. */
/* The replicas a publish waits for, given that c's master has `seen`
 * now (its ROLE). Every one, not one: the sentinels may promote any of
 * them, and one still copying the old master after another's promotion
 * began acknowledges writes the new master never gets (the multi-host
 * test lost 19-20 accepted events a failover that way with two replicas
 * and WAIT 1). The promoted one stops acknowledging once promoted, so such
 * a write times out. More replicas count at once; fewer only once there
 * have been fewer for two looks (2 x MASTER_CHECK_MS) with the sentinels
 * naming the same master all along: a promoted replica leaves its old
 * master at once, and until the sentinels name the new master (about a
 * second later) a connection made to the old one would otherwise count
 * the one left as all (the test lost 7 events that way). The count is the
 * process's, not a connection's, for that reason. A replica that dies
 * holds publishing up for those two looks. At least one; seen < 0: no
 * new count, the one held. */
static int wait_for(struct redis *r, const struct conn *c, int seen)
{
	long long now = clock_mono_ms();
	int n;

	pthread_mutex_lock(&r->mu);
	if (seen < 0) {
		/* nothing learnt */
	} else if (r->replicas_gen != c->master_gen || r->replicas == 0) {
		r->replicas = seen, r->replicas_gen = c->master_gen, r->fewer_since_ms = 0;
	} else if (seen >= r->replicas) {
		r->replicas = seen, r->fewer_since_ms = 0;
	} else if (r->fewer_since_ms == 0) {
		r->fewer_since_ms = now;
	} else if (now - r->fewer_since_ms >= 2 * MASTER_CHECK_MS &&
		   c->master_gen == atomic_load(&r->master_gen)) {
		r->replicas = seen, r->fewer_since_ms = 0;
	}
	n = r->replicas > 1 ? r->replicas : 1;
	pthread_mutex_unlock(&r->mu);
	return n;
}

static struct conn *ready(struct redis *r, int now)
{
	struct conn *c = thread_conn(r);
	int role, replicas = 0;

	if (c == NULL)
		return NULL;
	if (r->sentinels != NULL && c->ctx != NULL)
		check_master(r);
	if (c->ctx != NULL && !conn_stale(c) &&
	    (r->sentinels == NULL || c->master_gen == atomic_load(&r->master_gen)))
		return c;
	/* a connection the server closed (or to a master the sentinels have
	 * replaced) is replaced at once, before a command is sent on it: that
	 * is no failure, and no reason to fail a request */
	conn_drop(c);
	if (!now && clock_mono_ms() < c->retry_at_ms &&
	    atomic_load_explicit(&r->up_at_ms, memory_order_relaxed) < c->failed_at_ms)
		return NULL;
	c->errstr[0] = '\0';
	c->ctx = connect_ctx(r, c);
	if (c->ctx == NULL || c->ctx->err) {
		char why[sizeof(c->errstr)];
		snprintf(why, sizeof(why), "%s", c->ctx ? c->ctx->errstr : c->errstr[0] ? c->errstr : "out of memory");
		fail(c, why);
		return NULL;
	}
	if (redisSetTimeout(c->ctx, to_tv(r->command_timeout_ms)) != REDIS_OK ||
	    authenticate(c) < 0) {
		fail(c, "setup or AUTH failed");
		return NULL;
	}
	/* a sentinel's view can be stale: a server that is no master (yet,
	 * or any more) is no connection */
	if (r->sentinels != NULL && (role = sentinel_is_master(c->ctx, &replicas)) != 1) {
		fail(c, role == 0 ? "the sentinels' master is no master (ROLE)" : "no answer to ROLE");
		return NULL;
	}
	if (r->sentinels != NULL) {
		wait_for(r, c, replicas);
		c->replicas_at_ms = clock_mono_ms();
	}
	c->backoff_ms = 0;
	c->errstr[0] = '\0';
	mark_up(r);
	return c;
}

void redis_set_breaker(struct redis *r, struct breaker *b)
{
	r->breaker = b;
}

/* The reply was lost with the connection itself (the server closed or
 * reset it mid-command): a new connection may well succeed. A timeout is
 * not such a loss: the command's time is spent, and it may still run. */
static int link_lost(const redisContext *ctx, int err_no)
{
	return ctx->err == REDIS_ERR_EOF ||
	       (ctx->err == REDIS_ERR_IO && (err_no == ECONNRESET || err_no == EPIPE));
}

/* An error reply that says the server is no master we can use: a demoted
 * master refusing writes (READONLY), a replica still loading or cut off
 * from its master. Such a connection is as good as a lost one. */
static int not_master(const redisReply *rep)
{
	static const char *const kinds[] = { "READONLY", "LOADING", "MASTERDOWN" };

	if (rep->type != REDIS_REPLY_ERROR)
		return 0;
	for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
		if (rep->len >= strlen(kinds[i]) && strncmp(rep->str, kinds[i], strlen(kinds[i])) == 0)
			return 1;
	return 0;
}

/* A command Redis answered: the connection and Redis are fine, whatever
 * the answer, unless the answer says the server is not the master any
 * more: then the connection is dropped as after a failure (the next
 * attempt, after the backoff, asks the sentinels again) and the command
 * fails. Returns rep, or NULL (freed) for an error reply. */
static redisReply *answered(struct redis *r, struct conn *c, redisReply *rep)
{
	if (not_master(rep)) {
		char why[sizeof(c->errstr)];
		snprintf(why, sizeof(why), "%.*s", (int)rep->len, rep->str);
		freeReplyObject(rep);
		fail(c, why);
		if (r->breaker != NULL)
			breaker_failure(r->breaker, clock_mono_ms());
		return NULL;
	}
	if (r->breaker != NULL)
		breaker_success(r->breaker, clock_mono_ms());
	mark_up(r);
	if (rep->type == REDIS_REPLY_ERROR) {
		snprintf(c->errstr, sizeof(c->errstr), "%.*s", (int)rep->len, rep->str);
		freeReplyObject(rep);
		return NULL;
	}
	return rep;
}

/* Runs one command; returns the reply (caller frees) or NULL on failure.
 * An open breaker fails it before anything is sent. An idempotent command
 * whose link was lost is made again on a new connection, up to r->retries
 * times after jittered pauses (protect/retry.h); each failed attempt is
 * one failure for the breaker. */
static redisReply *command(struct redis *r, int argc, const char **argv, const size_t *lens,
			   int idempotent)
{
	for (int retry = 0;; retry++) {
		struct conn *c;
		redisReply *rep;
		int lost;

		if (r->breaker != NULL && !breaker_allow(r->breaker, clock_mono_ms())) {
			if ((c = thread_conn(r)) != NULL)
				snprintf(c->errstr, sizeof(c->errstr), "circuit breaker open");
			return NULL;
		}
		if ((c = ready(r, retry > 0)) == NULL) {
			if (r->breaker != NULL)
				breaker_failure(r->breaker, clock_mono_ms());
			return NULL;
		}
		errno = 0;
		if ((rep = redisCommandArgv(c->ctx, argc, argv, lens)) != NULL)
			return answered(r, c, rep);
		lost = link_lost(c->ctx, errno);
		fail(c, c->ctx->errstr[0] ? c->ctx->errstr : "no reply");
		if (r->breaker != NULL)
			breaker_failure(r->breaker, clock_mono_ms());
		if (!idempotent || !lost || retry >= r->retries)
			return NULL;
		retry_pause(retry + 1, r->retry_backoff_ms);
	}
}

int redis_get(struct redis *r, const char *key, struct buf *out)
{
	const char *argv[2] = { "GET", key };
	const size_t lens[2] = { 3, strlen(key) };
	redisReply *rep = command(r, 2, argv, lens, 1);
	int rc;

	if (rep == NULL)
		return -1;
	if (rep->type == REDIS_REPLY_NIL) {
		rc = 0;
	} else if (rep->type == REDIS_REPLY_STRING) {
		buf_reset(out);
		rc = buf_append(out, rep->str, rep->len) == 0 ? 1 : -1;
	} else {
		rc = -1;
	}
	freeReplyObject(rep);
	return rc;
}

#define KEYS_COMMAND_MAX 16 /* the most keys of MGET and DEL */

/* verb with n keys (1..max); the reply, or NULL as command(). */
static redisReply *keys_command(struct redis *r, const char *verb, const char *const *keys, int n,
				int max)
{
	const char *argv[KEYS_COMMAND_MAX + 1] = { verb };
	size_t lens[KEYS_COMMAND_MAX + 1] = { strlen(verb) };

	if (n < 1 || n > max || n > KEYS_COMMAND_MAX)
		return NULL;
	for (int i = 0; i < n; i++) {
		argv[i + 1] = keys[i];
		lens[i + 1] = strlen(keys[i]);
	}
	return command(r, n + 1, argv, lens, 1); /* MGET, DEL */
}

int redis_mget(struct redis *r, const char *const *keys, int n, struct buf *out, int *found)
{
	redisReply *rep = keys_command(r, "MGET", keys, n, REDIS_MGET_MAX);
	int rc = 0;

	if (rep == NULL)
		return -1;
	if (rep->type != REDIS_REPLY_ARRAY || rep->elements != (size_t)n)
		rc = -1;
	for (int i = 0; rc == 0 && i < n; i++) {
		const redisReply *e = rep->element[i];

		found[i] = e->type == REDIS_REPLY_STRING;
		if (found[i]) {
			buf_reset(&out[i]);
			if (buf_append(&out[i], e->str, e->len) < 0)
				rc = -1;
		} else if (e->type != REDIS_REPLY_NIL) {
			rc = -1;
		}
	}
	freeReplyObject(rep);
	return rc;
}

int redis_set(struct redis *r, const char *key, const char *val, size_t len,
	      long long ttl_ms, int nx)
{
	char ttl[24];
	const char *argv[6] = { "SET", key, val, "PX", ttl, "NX" };
	size_t lens[6];
	redisReply *rep;
	int rc;

	snprintf(ttl, sizeof(ttl), "%lld", ttl_ms > 0 ? ttl_ms : 1);
	lens[0] = 3;
	lens[1] = strlen(key);
	lens[2] = len;
	lens[3] = 2;
	lens[4] = strlen(ttl);
	lens[5] = 2;
	/* SET NX made again after a lost reply could find its own key and
	 * answer "taken": only a plain SET is idempotent */
	if ((rep = command(r, nx ? 6 : 5, argv, lens, !nx)) == NULL)
		return -1;
	rc = rep->type == REDIS_REPLY_STATUS ? 1 : rep->type == REDIS_REPLY_NIL ? 0 : -1;
	freeReplyObject(rep);
	return rc;
}

int redis_del(struct redis *r, const char *const *keys, int n)
{
	redisReply *rep = keys_command(r, "DEL", keys, n, REDIS_DEL_MAX);

	if (rep == NULL)
		return -1;
	freeReplyObject(rep);
	return 0;
}

void redis_script_sha(const char *script, char hex[REDIS_SHA_HEX_LEN + 1])
{
	static const char digits[] = "0123456789abcdef";
	unsigned char md[SHA_DIGEST_LENGTH];

	SHA1((const unsigned char *)script, strlen(script), md);
	for (int i = 0; i < SHA_DIGEST_LENGTH; i++) {
		hex[2 * i] = digits[md[i] >> 4];
		hex[2 * i + 1] = digits[md[i] & 15];
	}
	hex[REDIS_SHA_HEX_LEN] = '\0';
}

int redis_ping(struct redis *r)
{
	const char *argv[1] = { "PING" };
	const size_t lens[1] = { 4 };
	redisReply *rep = command(r, 1, argv, lens, 1);

	if (rep == NULL)
		return -1;
	freeReplyObject(rep);
	return 0;
}

/* After a WAIT no replica answered: whether the sentinels still name the
 * server c is connected to. A master the sentinels have replaced keeps
 * its connections until they demote it, refusing nothing meanwhile: such
 * a connection is dropped, and the next attempt finds the new master. */
static void drop_if_replaced(struct redis *r, struct conn *c)
{
	struct sentinel_addr m;
	char err[sizeof(c->errstr)];

	if (sentinels_ask(r->sentinels, 0, NULL, &m, err, sizeof(err)) == 0 &&
	    learn_master(r, &m) != c->master_gen)
		fail(c, "the sentinels name another master now");
}

int redis_replicated(struct redis *r)
{
	struct conn *c = pthread_getspecific(r->key);
	char ms[24], need[16];
	const char *argv[3] = { "WAIT", need, ms };
	size_t lens[3] = { 4, 0, 0 };
	redisReply *rep;
	int rc, n, replicas;
	long long now;

	if (r->sentinels == NULL)
		return 0;
	/* only on the connection that made the write: WAIT on a new one
	 * would count the replicas that have that connection's writes (none),
	 * and say yes at once */
	if (c == NULL || c->ctx == NULL) {
		if (c != NULL)
			snprintf(c->errstr, sizeof(c->errstr), "the write's connection is gone: not known to be replicated");
		return -1;
	}
	/* every replica the master has (wait_for), counted again every
	 * MASTER_CHECK_MS */
	replicas = -1;
	if ((now = clock_mono_ms()) - c->replicas_at_ms >= MASTER_CHECK_MS) {
		c->replicas_at_ms = now;
		if (sentinel_is_master(c->ctx, &replicas) != 1)
			replicas = -1;
	}
	n = wait_for(r, c, replicas);
	snprintf(need, sizeof(need), "%d", n);
	snprintf(ms, sizeof(ms), "%lld", r->wait_ms);
	lens[1] = strlen(need);
	lens[2] = strlen(ms);
	if ((rep = redisCommandArgv(c->ctx, 3, argv, lens)) == NULL) {
		fail(c, c->ctx->errstr[0] ? c->ctx->errstr : "no reply to WAIT");
		if (r->breaker != NULL)
			breaker_failure(r->breaker, clock_mono_ms());
		return -1;
	}
	if ((rep = answered(r, c, rep)) == NULL)
		return -1;
	rc = rep->type == REDIS_REPLY_INTEGER && rep->integer >= n ? 0 : -1;
	freeReplyObject(rep);
	if (rc == 0)
		return 0;
	snprintf(c->errstr, sizeof(c->errstr), "%s of %d replicas acknowledged the write within %lld ms (WAIT)",
		 n == 1 ? "none" : "not every one", n, r->wait_ms);
	drop_if_replaced(r, c);
	return -1;
}

const char *redis_errstr(struct redis *r)
{
	struct conn *c = pthread_getspecific(r->key);

	return c != NULL ? c->errstr : "";
}

#define SCRIPT_ARGS_MAX 16

static redisReply *eval(struct redis *r, const char *verb, const char *body, int nkeys, int nargs,
			const char *const *argv, const size_t *lens)
{
	const char *av[SCRIPT_ARGS_MAX + 3];
	size_t al[SCRIPT_ARGS_MAX + 3];
	char nk[12];

	snprintf(nk, sizeof(nk), "%d", nkeys);
	av[0] = verb, al[0] = strlen(verb);
	av[1] = body, al[1] = strlen(body);
	av[2] = nk, al[2] = strlen(nk);
	for (int i = 0; i < nargs; i++) {
		av[3 + i] = argv[i];
		al[3 + i] = lens[i];
	}
	return command(r, nargs + 3, av, al, 0); /* a script's writes may have run */
}

int redis_script(struct redis *r, const char *sha, const char *script, int nkeys, int nargs,
		 const char *const *argv, const size_t *lens, struct buf *out)
{
	redisReply *rep;
	int rc;

	if (nargs > SCRIPT_ARGS_MAX)
		return -1;
	rep = eval(r, "EVALSHA", sha, nkeys, nargs, argv, lens);
	if (rep == NULL && strncmp(redis_errstr(r), "NOSCRIPT", 8) == 0)
		rep = eval(r, "EVAL", script, nkeys, nargs, argv, lens);
	if (rep == NULL)
		return -1;
	rc = 0;
	if (rep->type == REDIS_REPLY_STRING || rep->type == REDIS_REPLY_STATUS) {
		buf_reset(out);
		rc = buf_append(out, rep->str, rep->len) == 0 ? 1 : -1;
	}
	freeReplyObject(rep);
	return rc;
}
