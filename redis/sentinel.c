#include "sentinel.h"

#include <hiredis/hiredis.h>
#include <openssl/crypto.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

/* ---------------------------------------------------------------- pure */

static int port_of(const char *p, size_t n)
{
	long v = 0;

	if (n == 0 || n > 5)
		return -1;
	for (size_t i = 0; i < n; i++) {
		if (p[i] < '0' || p[i] > '9')
			return -1;
		v = v * 10 + (p[i] - '0');
	}
	return v >= 1 && v <= 65535 ? (int)v : -1;
}

int sentinel_addr_of(const char *host, size_t host_len, const char *port, size_t port_len,
		     struct sentinel_addr *out)
{
	int p = port_of(port, port_len);

	if (host_len == 0 || host_len > SENTINEL_HOST_MAX || memchr(host, '\0', host_len) || p < 0)
		return -1;
	memcpy(out->host, host, host_len);
	out->host[host_len] = '\0';
	out->port = p;
	return 0;
}

int sentinel_parse_list(const char *s, struct sentinel_addr *out, int cap)
{
	int n = 0;

	if (s == NULL || *s == '\0')
		return 0;
	for (;;) {
		const char *end = strchr(s, ','), *colon;
		size_t len = end ? (size_t)(end - s) : strlen(s);

		/* the last colon: a host has none (no IPv6 literals) */
		colon = memrchr(s, ':', len);
		if (n == cap || colon == NULL || memchr(s, ':', (size_t)(colon - s)) ||
		    sentinel_addr_of(s, (size_t)(colon - s), colon + 1, (size_t)(s + len - colon - 1),
				     &out[n]) < 0)
			return -1;
		n++;
		if (end == NULL)
			return n;
		s = end + 1;
	}
}

static void move_to_back(struct sentinel_addr *v, int n, int i)
{
	struct sentinel_addr t = v[i];

	memmove(&v[i], &v[i + 1], (size_t)(n - i - 1) * sizeof(*v));
	v[n - 1] = t;
}

void sentinel_promote(struct sentinel_addr *v, int n, int i)
{
	struct sentinel_addr t;

	if (i <= 0 || i >= n)
		return;
	t = v[i];
	memmove(&v[1], &v[0], (size_t)i * sizeof(*v));
	v[0] = t;
}

void sentinel_rotate(struct sentinel_addr *v, int n, int k)
{
	if (n <= 1)
		return;
	for (int j = 0; j < k % n; j++)
		move_to_back(v, n, 0);
}

int sentinel_addr_eq(const struct sentinel_addr *a, const struct sentinel_addr *b)
{
	return a->port == b->port && strcmp(a->host, b->host) == 0;
}

/* ---------------------------------------------------------------- the set */

struct sentinels {
	pthread_mutex_t mu;            /* guards the order of v */
	struct sentinel_addr v[SENTINEL_MAX];
	int n;
	char *master, *password;
	long long connect_timeout_ms, command_timeout_ms;
};

struct sentinels *sentinels_new(const struct redis_opts *o, int *none)
{
	struct sentinels *s;

	*none = o->sentinels == NULL || *o->sentinels == '\0';
	if (*none || (s = calloc(1, sizeof(*s))) == NULL)
		return NULL;
	s->n = sentinel_parse_list(o->sentinels, s->v, SENTINEL_MAX);
	s->master = strdup(o->sentinel_master && *o->sentinel_master ? o->sentinel_master : "fcgi_sse");
	s->password = strdup(o->sentinel_password ? o->sentinel_password : "");
	if (s->n < 1 || s->master == NULL || s->password == NULL) {
		free(s->master);
		free(s->password);
		free(s);
		return NULL;
	}
	s->connect_timeout_ms = o->connect_timeout_ms;
	s->command_timeout_ms = o->command_timeout_ms;
	pthread_mutex_init(&s->mu, NULL);
	return s;
}

void sentinels_free(struct sentinels *s)
{
	if (s == NULL)
		return;
	pthread_mutex_destroy(&s->mu);
	OPENSSL_cleanse(s->password, strlen(s->password));
	free(s->password);
	free(s->master);
	free(s);
}

void sentinels_close(struct redisContext *keep)
{
	if (keep != NULL)
		redisFree(keep);
}

static struct timeval to_tv(long long ms)
{
	struct timeval tv = { (time_t)(ms / 1000), (suseconds_t)((ms % 1000) * 1000) };
	return tv;
}

static redisContext *connect_one(const struct sentinels *s, const struct sentinel_addr *a,
				 char *err, size_t cap)
{
	redisContext *c = redisConnectWithTimeout(a->host, a->port, to_tv(s->connect_timeout_ms));

	if (c == NULL || c->err || redisSetTimeout(c, to_tv(s->command_timeout_ms)) != REDIS_OK) {
		snprintf(err, cap, "sentinel %s:%d: %s", a->host, a->port,
			 c ? c->errstr : "out of memory");
		if (c != NULL)
			redisFree(c);
		return NULL;
	}
	if (*s->password) {
		redisReply *rep = redisCommand(c, "AUTH %s", s->password);
		int ok = rep != NULL && rep->type == REDIS_REPLY_STATUS;

		if (rep != NULL)
			freeReplyObject(rep);
		if (!ok) {
			snprintf(err, cap, "sentinel %s:%d: AUTH failed", a->host, a->port);
			redisFree(c);
			return NULL;
		}
	}
	return c;
}

/* One get-master-addr-by-name on c. Returns 0 with *out, -1 with err. */
static int ask_one(const struct sentinels *s, redisContext *c, const struct sentinel_addr *a,
		   struct sentinel_addr *out, char *err, size_t cap)
{
	redisReply *rep = redisCommand(c, "SENTINEL get-master-addr-by-name %s", s->master);
	int rc = -1;

	if (rep == NULL)
		snprintf(err, cap, "sentinel %s:%d: %s", a->host, a->port,
			 c->errstr[0] ? c->errstr : "no reply");
	else if (rep->type == REDIS_REPLY_NIL)
		snprintf(err, cap, "sentinel %s:%d: no master named %s", a->host, a->port, s->master);
	else if (rep->type == REDIS_REPLY_ERROR)
		snprintf(err, cap, "sentinel %s:%d: %.100s", a->host, a->port, rep->str);
	else if (rep->type != REDIS_REPLY_ARRAY || rep->elements != 2 ||
		 rep->element[0]->type != REDIS_REPLY_STRING ||
		 rep->element[1]->type != REDIS_REPLY_STRING ||
		 sentinel_addr_of(rep->element[0]->str, rep->element[0]->len, rep->element[1]->str,
				  rep->element[1]->len, out) < 0)
		snprintf(err, cap, "sentinel %s:%d: an answer that is no address", a->host, a->port);
	else
		rc = 0;
	if (rep != NULL)
		freeReplyObject(rep);
	return rc;
}

static int index_of(const struct sentinels *s, const struct sentinel_addr *a)
{
	for (int i = 0; i < s->n; i++)
		if (sentinel_addr_eq(&s->v[i], a))
			return i;
	return -1;
}

/* After a round: the sentinel that answered (NULL: none) to the front; the
 * `failed` ones asked before it to the back when not all were asked. Looked
 * up by address, as other threads may have reordered the list meanwhile. */
static void reorder(struct sentinels *s, const struct sentinel_addr *tried, int failed,
		    const struct sentinel_addr *answered, int all)
{
	int j;

	pthread_mutex_lock(&s->mu);
	for (int i = 0; !all && i < failed; i++)
		if ((j = index_of(s, &tried[i])) >= 0)
			move_to_back(s->v, s->n, j);
	if (answered != NULL && (j = index_of(s, answered)) >= 0)
		sentinel_promote(s->v, s->n, j);
	pthread_mutex_unlock(&s->mu);
}

int sentinels_ask(struct sentinels *s, int tries, struct redisContext **keep,
		  struct sentinel_addr *master, char *err, size_t cap)
{
	struct sentinel_addr order[SENTINEL_MAX];
	int n;

	pthread_mutex_lock(&s->mu);
	n = s->n;
	memcpy(order, s->v, (size_t)n * sizeof(*order));
	pthread_mutex_unlock(&s->mu);
	if (tries < 1 || tries > n)
		tries = n;
	snprintf(err, cap, "no sentinel asked");
	for (int i = 0; i < tries; i++) {
		int kept = i == 0 && keep != NULL && *keep != NULL;
		redisContext *c = kept ? *keep : connect_one(s, &order[i], err, cap);

		if (c != NULL && ask_one(s, c, &order[i], master, err, cap) == 0) {
			if (keep != NULL && !kept) {
				sentinels_close(*keep);
				*keep = c;
			} else if (keep == NULL) {
				redisFree(c);
			}
			reorder(s, order, i, &order[i], tries == n);
			return 0;
		}
		if (c != NULL)
			redisFree(c);
		if (kept)
			*keep = NULL;
	}
	reorder(s, order, tries, NULL, tries == n);
	return -1;
}

int sentinel_is_master(struct redisContext *c, int *replicas)
{
	redisReply *rep = redisCommand(c, "ROLE");
	int rc;

	if (rep == NULL)
		return -1;
	if (rep->type != REDIS_REPLY_ARRAY || rep->elements < 1 ||
	    rep->element[0]->type != REDIS_REPLY_STRING)
		rc = rep->type == REDIS_REPLY_ERROR ? 0 : -1;
	else
		rc = strcmp(rep->element[0]->str, "master") == 0;
	/* a master's ROLE: "master", its offset, [[ip, port, offset], ...] */
	if (rc == 1 && replicas != NULL)
		*replicas = rep->elements >= 3 && rep->element[2]->type == REDIS_REPLY_ARRAY
				    ? (int)rep->element[2]->elements : 0;
	freeReplyObject(rep);
	return rc;
}
