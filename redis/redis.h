/* redis: a small synchronous Redis client over hiredis for request paths.
 *
 * Each thread gets its own connection, made on first use with the connect
 * timeout; every command has the command timeout. After a failure the
 * thread's connection is dropped and not retried until a backoff (doubling,
 * with jitter, up to backoff_max_ms) has passed: until then calls fail at
 * once. So a request never waits on a dead or slow Redis for longer than
 * one timeout, and callers fall back to the store. Recovery is shared:
 * once any thread has connected to or been answered by Redis after a
 * thread's failure, that thread skips the rest of its backoff, so when
 * Redis comes back the whole process uses it again as soon as one request
 * (at most backoff_max_ms + 25% after the outage) has found it.
 * Idempotent commands (GET, MGET, DEL, PING, a plain SET) whose connection
 * was lost mid-command are made again on a new one, up to `retries` times
 * after jittered pauses (protect/retry.h); a timeout is not retried, nor
 * are scripts and SET NX.
 *
 * With Redis Sentinel (opts.sentinels), every connect first asks the
 * sentinels for the master (redis/sentinel.h) and confirms with ROLE that
 * it is one; an error reply saying the server is no longer a usable master
 * (READONLY, LOADING, MASTERDOWN: a failover under way) fails the command
 * and drops the connection as a lost link does, so the next attempt after
 * the backoff finds the new master. hiredis stays inside this module. */
#ifndef FCGI_SSE_REDIS_H
#define FCGI_SSE_REDIS_H

#include <stddef.h>

#include "../core/buf.h"

struct redis_opts {
	const char *host;          /* numeric address or name; or "unix:/path" */
	int port;
	const char *password;      /* "" for none */
	long long connect_timeout_ms;
	long long command_timeout_ms;
	long long backoff_max_ms;
	int retries;               /* 0..RETRY_MAX (protect/retry.h); 0: none */
	long long retry_backoff_ms;
	/* Redis Sentinel: "host:port,..." (NULL or "": none, host and port
	 * are the server); the master's name; the sentinels' own password
	 * (NULL or "": none) */
	const char *sentinels;
	const char *sentinel_master;
	const char *sentinel_password;
};

struct redis;

/* Creates the client (no connection yet). Returns NULL when out of memory. */
struct redis *redis_new(const struct redis_opts *o);

/* Puts every command of r behind breaker b (protect/breaker.h; NULL:
 * none): while it is open, commands fail at once without touching Redis,
 * and callers fall back as when Redis is down. Set before any command. */
struct breaker;
void redis_set_breaker(struct redis *r, struct breaker *b);

/* Closes every thread's connection and frees the client. No call may be
 * running. */
void redis_free(struct redis *r);

/* GET key. Returns 1 and sets *out (replacing its contents) when the key
 * exists, 0 when it does not, -1 when Redis is unavailable. */
int redis_get(struct redis *r, const char *key, struct buf *out);

/* SET key value PX ttl_ms [NX]. Returns 1 when set, 0 when NX found the
 * key already there, -1 when Redis is unavailable. */
int redis_set(struct redis *r, const char *key, const char *val, size_t len,
	      long long ttl_ms, int nx);

#define REDIS_MGET_MAX 8 /* keys in one MGET */

/* MGET of n keys (1..REDIS_MGET_MAX) in one round trip. Sets found[i] to 1
 * with the value in out[i] (replacing its contents), or 0 when key i does
 * not exist. Returns 0, or -1 when Redis is unavailable or n is out of
 * range. */
int redis_mget(struct redis *r, const char *const *keys, int n, struct buf *out, int *found);

#define REDIS_DEL_MAX 16 /* keys in one DEL */

/* DEL of n keys (1..REDIS_DEL_MAX) in one command. Returns 0 (whether or
 * not they existed), -1 when unavailable or n is out of range. */
int redis_del(struct redis *r, const char *const *keys, int n);

/* Runs a Lua script: EVALSHA sha, and EVAL script when Redis does not have
 * it cached yet. keys then args, as in EVAL. Returns 1 with a string or
 * status result in *out (replacing its contents), 0 for another result
 * type, -1 when Redis is unavailable or the script failed. */
int redis_script(struct redis *r, const char *sha, const char *script, int nkeys, int nargs,
		 const char *const *argv, const size_t *lens, struct buf *out);

/* The SHA-1 of a script as EVALSHA names it (40 hex digits and a NUL). */
#define REDIS_SHA_HEX_LEN 40
void redis_script_sha(const char *script, char hex[REDIS_SHA_HEX_LEN + 1]);

/* PING. Returns 0 when Redis answers, -1 otherwise. */
int redis_ping(struct redis *r);

/* With sentinels configured (redis_opts.sentinels): WAIT for every
 * replica the master has (its ROLE, counted again every 2 s; at least
 * one), within half the command timeout, on the calling thread's
 * connection, so that the writes it made there are on whichever replica
 * the sentinels promote and a failover cannot lose them (replication is asynchronous: a master that dies or is replaced
 * may take its last writes with it). Call right after the write, with no
 * other command of this thread between. Returns 0 when they all
 * acknowledged them (or without sentinels: nothing is done); -1 when none
 * did in time, a master without replicas included, or the connection is
 * gone (redis_errstr says which): the writes were made on the master but
 * may be lost in a failover. After such a -1 the sentinels are asked
 * whether the server is still their master; if not, the connection is
 * dropped (the next command finds the new one). */
int redis_replicated(struct redis *r);

/* A short description of the calling thread's last failure ("" if none). */
const char *redis_errstr(struct redis *r);

#endif
