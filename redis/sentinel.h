/* sentinel: finding the current Redis master through Redis Sentinel.
 *
 * A client asks the sentinels it knows, one after another, for the address
 * of the master they monitor under a name (SENTINEL
 * get-master-addr-by-name); the first answer wins, and that sentinel moves
 * to the front of the list, so the next question goes to one known to
 * answer (the Sentinel client guidelines:
 * https://redis.io/docs/latest/develop/reference/sentinel-clients/). A
 * sentinel's view can be stale: the caller confirms with sentinel_is_master
 * (ROLE) on its new connection before it uses it.
 *
 * Blocking, with the connect timeout and the command timeout of the
 * redis_opts for each sentinel asked. A struct sentinels is shared by the
 * threads of its owner (its order is guarded by a mutex). The list parsing
 * and the reordering are pure functions, tested without servers.
 * hiredis stays inside redis/. */
#ifndef FCGI_SSE_SENTINEL_H
#define FCGI_SSE_SENTINEL_H

#include <stddef.h>

#include "redis.h"

#define SENTINEL_MAX 16        /* core/config.c check_sentinels allows as many */
#define SENTINEL_HOST_MAX 255  /* a DNS name */

struct sentinel_addr {
	char host[SENTINEL_HOST_MAX + 1];
	int port;
};

/* Parses "host:port,host:port" (as core/config.c check_sentinels accepts
 * it) into out (cap entries). Returns how many, 0 for "" or NULL, -1 when
 * s is malformed or has more than cap items. */
int sentinel_parse_list(const char *s, struct sentinel_addr *out, int cap);

/* Moves v[i] to the front, the others keeping their order. */
void sentinel_promote(struct sentinel_addr *v, int n, int i);

/* Moves the first k of v to the back, in their order (they were asked
 * and did not answer: the next question starts with the others). */
void sentinel_rotate(struct sentinel_addr *v, int n, int k);

/* The address in a get-master-addr-by-name answer (host and port as the
 * reply's two strings). Returns 0 with *out set, -1 when they are no
 * address. */
int sentinel_addr_of(const char *host, size_t host_len, const char *port, size_t port_len,
		     struct sentinel_addr *out);

/* 1 when two addresses are the same host and port. */
int sentinel_addr_eq(const struct sentinel_addr *a, const struct sentinel_addr *b);

struct sentinels;
struct redisContext;

/* The sentinels of o (o->sentinels, o->sentinel_master,
 * o->sentinel_password, the timeouts), copied. Returns NULL when o names no
 * sentinels (*none set to 1) or when out of memory or the list is
 * malformed (*none 0). */
struct sentinels *sentinels_new(const struct redis_opts *o, int *none);

void sentinels_free(struct sentinels *s);

/* Asks up to `tries` sentinels (in the current order; all when tries < 1
 * or more than there are) for the master's address; the first answer wins
 * and that sentinel goes to the front. The ones that failed before it go
 * to the back when tries is smaller than the list, so the next call
 * starts with a sentinel not yet tried. Each sentinel asked costs at most
 * the connect timeout and two command timeouts (AUTH, the question).
 *
 * keep: NULL, or a connection kept between calls (NULL before the first):
 * when open, it is the front sentinel's and is asked first without a new
 * connect; the connection to the sentinel that answered is left in it
 * (closed and NULL when none answered). Freed with sentinels_close.
 *
 * Returns 0 with *master set, -1 with why in err (cap bytes). */
int sentinels_ask(struct sentinels *s, int tries, struct redisContext **keep,
		  struct sentinel_addr *master, char *err, size_t cap);

/* Closes a connection kept by sentinels_ask (NULL is fine). */
void sentinels_close(struct redisContext *keep);

/* ROLE on an open blocking connection: 1 when the server is a master, 0
 * when it is something else (a replica, a sentinel), -1 when it did not
 * answer. A master's count of connected replicas goes to *replicas
 * (unless NULL). */
int sentinel_is_master(struct redisContext *c, int *replicas);

#endif
