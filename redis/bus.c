#include "bus.h"

#include <errno.h>
#include <hiredis/hiredis.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <time.h>

#include "../core/clock.h"
#include "sentinel.h"

#define KEY_MAX 320
#define PING_EVERY_MS 1000
#define BACKOFF_MIN_MS 50
#define QUEUE_MIN 64
#define SENTINEL_POLL_MS 2000  /* the sentinels are asked for the master this often */

/* ---------------------------------------------------------------- scripts */

/* KEYS: history, watermark. ARGV: max_len, min_id ("0": no age limit),
 * type, topic ("" none), close ("0"/"1"), data, tenant, channel, batch.
 * Trims first (recording the newest id removed), then appends and
 * publishes (the event message of busmsg.h, as busmsg_event writes it):
 * one script, so the channel order is the history order.
 * Nothing here walks the stream: a full history is trimmed by `batch`
 * entries at a time (1% of max_len, at most 100), so one publish in
 * `batch` reads that many entries from the head and the others none;
 * entries past the age limit go at most `batch` per publish, found from
 * the head (XRANGE - (min_id stops at the first entry that is young
 * enough, at once when there is none). */
static const char publish_lua[] =
	"local cut = nil\n"
	"local n = redis.call('XLEN', KEYS[1])\n"
	"local batch = tonumber(ARGV[9])\n"
	"local over = n + 1 - tonumber(ARGV[1])\n"
	"if over > 0 then\n"
	"  local k = over + batch - 1\n"
	"  if k > n then k = n end\n"
	"  local old = redis.call('XRANGE', KEYS[1], '-', '+', 'COUNT', k)\n"
	"  cut = old[#old][1]\n"
	"  redis.call('XTRIM', KEYS[1], 'MAXLEN', '=', n - k)\n"
	"  n = n - k\n"
	"end\n"
	"if ARGV[2] ~= '0' and n > 0 then\n"
	"  local old = redis.call('XRANGE', KEYS[1], '-', '(' .. ARGV[2], 'COUNT', batch)\n"
	"  if #old > 0 then\n"
	"    cut = old[#old][1]\n"
	"    redis.call('XTRIM', KEYS[1], 'MAXLEN', '=', n - #old)\n"
	"  end\n"
	"end\n"
	"if cut then redis.call('SET', KEYS[2], cut) end\n"
	"local id = redis.call('XADD', KEYS[1], '*', 't', ARGV[3], 'p', ARGV[4], 'c', ARGV[5], 'd', ARGV[6])\n"
	"redis.call('PUBLISH', ARGV[8], 'E\\n' .. ARGV[7] .. '\\n' .. id .. '\\n' .. ARGV[3] .. '\\n' ..\n"
	"  ARGV[4] .. '\\n' .. ARGV[5] .. '\\n' .. ARGV[6])\n"
	"return id\n";

/* KEYS: history, watermark. Returns {exists, last id, first id, trimmed id}. */
static const char info_lua[] =
	"local cut = redis.call('GET', KEYS[2]) or '0-0'\n"
	"if redis.call('EXISTS', KEYS[1]) == 0 then return {0, '0-0', '0-0', cut} end\n"
	"local info = redis.call('XINFO', 'STREAM', KEYS[1])\n"
	"local last, first = '0-0', '0-0'\n"
	"for i = 1, #info, 2 do\n"
	"  if info[i] == 'last-generated-id' then last = info[i + 1]\n"
	"  elseif info[i] == 'first-entry' and info[i + 1] then first = info[i + 1][1] end\n"
	"end\n"
	"return {1, last, first, cut}\n";

/* KEYS: history, watermark. ARGV: "(" after, count. Returns {trimmed id,
 * entries}: one step, so the two agree. */
static const char range_lua[] =
	"local cut = redis.call('GET', KEYS[2]) or '0-0'\n"
	"return {cut, redis.call('XRANGE', KEYS[1], ARGV[1], '+', 'COUNT', ARGV[2])}\n";

/* KEYS: history. ARGV: id. Returns the topic of that entry when it is a
 * close event, "" otherwise (not one, or not in the history). */
static const char close_of_lua[] =
	"local e = redis.call('XRANGE', KEYS[1], ARGV[1], ARGV[1])\n"
	"if #e == 0 then return '' end\n"
	"local c, p = '0', ''\n"
	"for i = 1, #e[1][2], 2 do\n"
	"  local k = e[1][2][i]\n"
	"  if k == 'c' then c = e[1][2][i + 1] elseif k == 'p' then p = e[1][2][i + 1] end\n"
	"end\n"
	"if c == '1' then return p end\n"
	"return ''\n";

static char publish_sha[REDIS_SHA_HEX_LEN + 1];
static char close_of_sha[REDIS_SHA_HEX_LEN + 1];
static pthread_once_t sha_once = PTHREAD_ONCE_INIT;

static void compute_sha(void)
{
	redis_script_sha(publish_lua, publish_sha);
	redis_script_sha(close_of_lua, close_of_sha);
}

static void keys(const char *tenant, char *hist, char *mark)
{
	snprintf(hist, KEY_MAX, "fcgi_sse:{%s}:events", tenant);
	snprintf(mark, KEY_MAX, "fcgi_sse:{%s}:trimmed", tenant);
}

long long bus_trim_batch(long long max_len)
{
	long long b = max_len / 100;

	return b < 1 ? 1 : b > 100 ? 100 : b;
}

int bus_publish(struct redis *r, const struct bus_history *h, const char *tenant,
		const struct bus_entry *e, char *id)
{
	char hist[KEY_MAX], mark[KEY_MAX], maxlen[24], minid[48];
	struct buf out = BUF_INIT;
	const char *topic = e->topic ? e->topic : "";
	char batch[24];
	const char *argv[11];
	size_t lens[11];
	int rc;

	pthread_once(&sha_once, compute_sha);
	keys(tenant, hist, mark);
	snprintf(maxlen, sizeof(maxlen), "%lld", h->max_len > 0 ? h->max_len : 1);
	if (h->max_age_ms > 0) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		long long cutoff = (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000 - h->max_age_ms;
		snprintf(minid, sizeof(minid), "%lld-0", cutoff > 0 ? cutoff : 0);
	} else {
		snprintf(minid, sizeof(minid), "0");
	}
	argv[0] = hist, argv[1] = mark, argv[2] = maxlen, argv[3] = minid;
	argv[4] = e->type, argv[5] = topic, argv[6] = e->close ? "1" : "0";
	argv[7] = e->data, argv[8] = tenant, argv[9] = BUS_CHANNEL;
	snprintf(batch, sizeof(batch), "%lld", bus_trim_batch(h->max_len));
	argv[10] = batch;
	for (int i = 0; i < 11; i++)
		lens[i] = i == 7 ? e->len : strlen(argv[i]);
	rc = redis_script(r, publish_sha, publish_lua, 2, 11, argv, lens, &out);
	/* with sentinels, an event is accepted only once a replica has it too:
	 * a failover promotes a replica, and writes the old master had not
	 * sent it yet would be gone (the event answered 202, or its outbox
	 * row deleted, and then lost). Refused so, it was published all the
	 * same: the caller's retry (or the outbox's) makes it at least once. */
	if (rc == 1 && redis_replicated(r) < 0)
		rc = -1;
	if (rc == 1 && out.len <= BUS_ID_MAX) {
		memcpy(id, out.data, out.len);
		id[out.len] = '\0';
	}
	rc = rc == 1 && out.len <= BUS_ID_MAX ? 0 : -1;
	buf_release(&out);
	return rc;
}

int bus_close_topic(struct redis *r, const char *tenant, const char *id, char *topic, size_t cap)
{
	char hist[KEY_MAX], mark[KEY_MAX];
	struct buf out = BUF_INIT;
	const char *argv[2] = { hist, id };
	size_t lens[2];
	uint64_t ms, seq;
	int rc;

	if (bus_id_parse(id, &ms, &seq) < 0)
		return 0;
	pthread_once(&sha_once, compute_sha);
	keys(tenant, hist, mark);
	lens[0] = strlen(hist);
	lens[1] = strlen(id);
	rc = redis_script(r, close_of_sha, close_of_lua, 1, 2, argv, lens, &out);
	if (rc != 1) {
		buf_release(&out);
		return -1;
	}
	rc = out.len > 0 && out.len < cap;
	if (rc) {
		memcpy(topic, out.data, out.len);
		topic[out.len] = '\0';
	}
	buf_release(&out);
	return rc;
}

/* ---------------------------------------------------------------- ids */

static int parse_u64(const char *s, size_t n, uint64_t *out)
{
	uint64_t v = 0;

	if (n == 0 || n > 20)
		return -1;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		uint64_t d = (uint64_t)(s[i] - '0');
		if (v > (UINT64_MAX - d) / 10)
			return -1;
		v = v * 10 + d;
	}
	*out = v;
	return 0;
}

int bus_id_parse(const char *id, uint64_t *ms, uint64_t *seq)
{
	const char *dash = strchr(id, '-');

	if (dash == NULL || parse_u64(id, (size_t)(dash - id), ms) < 0 ||
	    parse_u64(dash + 1, strlen(dash + 1), seq) < 0)
		return -1;
	return 0;
}

int bus_id_cmp(const char *a, const char *b)
{
	uint64_t am = 0, as = 0, bm = 0, bs = 0;

	bus_id_parse(a, &am, &as);
	bus_id_parse(b, &bm, &bs);
	if (am != bm)
		return am < bm ? -1 : 1;
	return as < bs ? -1 : as > bs;
}

/* ---------------------------------------------------------------- link */

enum q_kind { Q_IGNORE, Q_AUTH, Q_INFO, Q_RANGE };

struct query {
	enum q_kind kind;
	void *tag;
	long long sent_ms;
};

struct bconn {
	struct bus *bus;
	redisContext *ctx;
	int want_out;
};

struct bus {
	struct redis_opts o;
	char *host, *password;
	struct bus_handlers h;
	int epfd;
	struct bconn sub, q;
	int up, subscribed;
	int broken;                    /* epoll refused a change: fail at the next tick */
	unsigned gen;                  /* bumped by every failure */
	long long retry_at_ms, backoff_ms, stall_ms;
	long long ping_sent_ms;        /* sub: unanswered PING (0: none) */
	long long last_ping_ms;
	struct query *queue;           /* query connection, in order */
	size_t qhead, qlen, qcap;
	/* Redis Sentinel (NULL: o.host and o.port are the server) */
	struct sentinels *sentinels;
	struct redisContext *sentinel; /* kept to the one that answered last */
	struct sentinel_addr master;   /* what the link connects to */
	long long poll_at_ms;          /* the next look at the sentinels' master */
	int role_ok;                   /* sub: ROLE said master */
};

int bus_owns(const struct bus *b, const void *ptr)
{
	return ptr == &b->sub || ptr == &b->q;
}

int bus_is_up(const struct bus *b)
{
	return b->up;
}

static void watch(struct bconn *c, int out)
{
	struct epoll_event ev = { EPOLLIN | (out ? EPOLLOUT : 0), { .ptr = c } };

	if (c->ctx == NULL || c->want_out == out)
		return;
	/* epoll refusing means this connection will never be written or
	 * read again: the next tick fails the link, which reconnects */
	if (epoll_ctl(c->bus->epfd, EPOLL_CTL_MOD, c->ctx->fd, &ev) < 0)
		c->bus->broken = 1;
	else
		c->want_out = out;
}

static void conn_close(struct bconn *c)
{
	if (c->ctx == NULL)
		return;
	epoll_ctl(c->bus->epfd, EPOLL_CTL_DEL, c->ctx->fd, NULL);
	redisFree(c->ctx);
	c->ctx = NULL;
	c->want_out = 0;
}

static int push_query(struct bus *b, enum q_kind kind, void *tag)
{
	if (b->qlen == b->qcap) {
		size_t cap = b->qcap ? b->qcap * 2 : QUEUE_MIN;
		struct query *nq = malloc(cap * sizeof(*nq));
		if (nq == NULL)
			return -1;
		for (size_t i = 0; i < b->qlen; i++)
			nq[i] = b->queue[(b->qhead + i) % b->qcap];
		free(b->queue);
		b->queue = nq;
		b->qcap = cap;
		b->qhead = 0;
	}
	b->queue[(b->qhead + b->qlen) % b->qcap] = (struct query){ kind, tag, clock_mono_ms() };
	b->qlen++;
	return 0;
}

static struct query pop_query(struct bus *b)
{
	struct query q = b->queue[b->qhead];

	b->qhead = (b->qhead + 1) % b->qcap;
	b->qlen--;
	return q;
}

static void answer_failed(struct bus *b, const struct query *q)
{
	if (q->kind == Q_INFO)
		b->h.info(b->h.ctx, q->tag, NULL);
	else if (q->kind == Q_RANGE)
		b->h.range(b->h.ctx, q->tag, NULL, NULL, 0, 0);
}

/* Drops both connections: queries in flight fail, lost() if it was up,
 * and a reconnect is scheduled after a growing, jittered backoff. */
static void link_fail(struct bus *b)
{
	int was_up = b->up;
	uint32_t jitter = 0;

	b->gen++;
	b->up = b->subscribed = b->role_ok = 0;
	b->broken = 0;
	b->ping_sent_ms = 0;
	conn_close(&b->sub);
	conn_close(&b->q);
	while (b->qlen > 0) {
		struct query q = pop_query(b);
		answer_failed(b, &q);
	}
	if (was_up)
		b->h.lost(b->h.ctx);
	b->backoff_ms = b->backoff_ms ? b->backoff_ms * 2 : BACKOFF_MIN_MS;
	if (b->backoff_ms > b->o.backoff_max_ms)
		b->backoff_ms = b->o.backoff_max_ms;
	RAND_bytes((unsigned char *)&jitter, sizeof(jitter));
	b->retry_at_ms = clock_mono_ms() + b->backoff_ms + (long long)(jitter % (uint32_t)(b->backoff_ms / 4 + 1));
}

static int append(struct bconn *c, int argc, const char **argv, const size_t *lens)
{
	if (c->ctx == NULL || redisAppendCommandArgv(c->ctx, argc, argv, lens) != REDIS_OK)
		return -1;
	watch(c, 1); /* written when the loop reports the socket writable */
	return 0;
}

static int append_auth(struct bus *b, struct bconn *c)
{
	const char *argv[2] = { "AUTH", b->password };
	const size_t lens[2] = { 4, strlen(b->password) };

	return *b->password ? append(c, 2, argv, lens) : 0;
}

static redisContext *connect_nb(const struct bus *b)
{
	if (b->sentinels != NULL)
		return redisConnectNonBlock(b->master.host, b->master.port);
	if (strncmp(b->host, "unix:", 5) == 0)
		return redisConnectUnixNonBlock(b->host + 5);
	return redisConnectNonBlock(b->host, b->o.port);
}

static int conn_open(struct bus *b, struct bconn *c)
{
	struct epoll_event ev = { EPOLLIN | EPOLLOUT, { .ptr = c } };

	c->ctx = connect_nb(b);
	if (c->ctx == NULL || c->ctx->err) {
		if (c->ctx != NULL)
			redisFree(c->ctx);
		c->ctx = NULL;
		return -1;
	}
	c->want_out = 1;
	if (epoll_ctl(b->epfd, EPOLL_CTL_ADD, c->ctx->fd, &ev) < 0) {
		redisFree(c->ctx);
		c->ctx = NULL;
		return -1;
	}
	return 0;
}

/* With sentinels: where the master is now. Blocking, in the loop's
 * thread: one sentinel per attempt (the next attempt, after the backoff,
 * asks the next one), on the connection kept to the last one that
 * answered when it is still open: one round trip then, at worst the
 * connect timeout and two command timeouts. Returns 0 or -1. */
static int find_master(struct bus *b)
{
	char err[160];

	b->poll_at_ms = clock_mono_ms() + SENTINEL_POLL_MS;
	return sentinels_ask(b->sentinels, 1, &b->sentinel, &b->master, err, sizeof(err));
}

static void link_open(struct bus *b)
{
	const char *sub[2] = { "SUBSCRIBE", BUS_CHANNEL };
	const size_t sublen[2] = { 9, strlen(BUS_CHANNEL) };
	const char *role[1] = { "ROLE" };
	const size_t rolelen[1] = { 4 };

	/* with sentinels, ROLE goes ahead of SUBSCRIBE: a sentinel's view can
	 * be stale, and up() must wait for the server to say it is the master */
	if ((b->sentinels != NULL && find_master(b) < 0) ||
	    conn_open(b, &b->sub) < 0 || conn_open(b, &b->q) < 0 || append_auth(b, &b->sub) < 0 ||
	    (b->sentinels != NULL && append(&b->sub, 1, role, rolelen) < 0) ||
	    append(&b->sub, 2, sub, sublen) < 0 || append_auth(b, &b->q) < 0 ||
	    (*b->password && push_query(b, Q_AUTH, NULL) < 0)) {
		link_fail(b);
		return;
	}
	b->last_ping_ms = clock_mono_ms();
}

struct bus *bus_open(const struct redis_opts *o, int epfd, const struct bus_handlers *h)
{
	struct bus *b = calloc(1, sizeof(*b));
	int none;

	if (b == NULL)
		return NULL;
	b->o = *o;
	b->o.sentinels = b->o.sentinel_master = b->o.sentinel_password = NULL; /* copied below */
	b->host = strdup(o->host);
	b->password = strdup(o->password ? o->password : "");
	b->sentinels = sentinels_new(o, &none);
	if (b->host == NULL || b->password == NULL || (b->sentinels == NULL && !none)) {
		bus_free(b);
		return NULL;
	}
	b->h = *h;
	b->epfd = epfd;
	b->sub.bus = b->q.bus = b;
	/* a history read for a reconnect storm may take a while; a Redis that
	 * does not answer for this long is treated as gone */
	b->stall_ms = o->command_timeout_ms * 10 > 2000 ? o->command_timeout_ms * 10 : 2000;
	pthread_once(&sha_once, compute_sha);
	link_open(b);
	return b;
}

void bus_free(struct bus *b)
{
	if (b == NULL)
		return;
	conn_close(&b->sub);
	conn_close(&b->q);
	sentinels_close(b->sentinel);
	sentinels_free(b->sentinels);
	free(b->queue);
	free(b->host);
	free(b->password);
	free(b);
}

/* ---------------------------------------------------------------- replies */

static const redisReply *elem(const redisReply *r, size_t i, int type)
{
	if (r == NULL || r->type != REDIS_REPLY_ARRAY || i >= r->elements ||
	    r->element[i]->type != type)
		return NULL;
	return r->element[i];
}

/* "E\n<tenant>\n<id>\n<type>\n<topic>\n<close>\n<data>" */
static void on_message(struct bus *b, const char *p, size_t n)
{
	struct busmsg m;
	char *copy;

	if ((copy = malloc(n + 1)) == NULL)
		return;
	memcpy(copy, p, n);
	switch (busmsg_parse(copy, n, &m)) {
	case BUSMSG_EVENT: {
		const struct bus_entry e = { m.id, m.type, m.topic, m.data, m.len, m.close };
		b->h.event(b->h.ctx, m.tenant, &e);
		break;
	}
	case BUSMSG_INVALID:
		break;
	default:
		b->h.control(b->h.ctx, &m);
	}
	free(copy);
}

/* Returns 0, or -1 when the reply makes no sense (the link is dropped). */
static int on_sub_reply(struct bus *b, const redisReply *r)
{
	const redisReply *kind = elem(r, 0, REDIS_REPLY_STRING);

	if (r->type == REDIS_REPLY_STATUS) /* AUTH */
		return 0;
	if (kind == NULL)
		return -1;
	if (strcmp(kind->str, "message") == 0) {
		const redisReply *m = elem(r, 2, REDIS_REPLY_STRING);
		if (m != NULL)
			on_message(b, m->str, m->len);
		return 0;
	}
	if (strcmp(kind->str, "pong") == 0) {
		b->ping_sent_ms = 0;
		return 0;
	}
	if (b->sentinels != NULL && !b->subscribed && !b->role_ok) {
		/* ROLE's answer, first: "master", or "slave" / "sentinel" */
		b->role_ok = strcmp(kind->str, "master") == 0;
		return b->role_ok ? 0 : -1;
	}
	if (strcmp(kind->str, "subscribe") == 0 && !b->subscribed) {
		b->subscribed = 1;
		b->up = 1;
		b->backoff_ms = 0;
		b->h.up(b->h.ctx);
		return 0;
	}
	return 0;
}

static void answer_info(struct bus *b, void *tag, const redisReply *r)
{
	struct bus_info in = { 0, "0-0", "0-0", "0-0" };
	const redisReply *ex = elem(r, 0, REDIS_REPLY_INTEGER);
	char *dst[3] = { in.last_id, in.first_id, in.trimmed_id };

	if (ex == NULL) {
		b->h.info(b->h.ctx, tag, NULL);
		return;
	}
	in.exists = ex->integer != 0;
	for (size_t i = 0; i < 3; i++) {
		const redisReply *s = elem(r, i + 1, REDIS_REPLY_STRING);
		if (s != NULL && s->len <= BUS_ID_MAX) {
			memcpy(dst[i], s->str, s->len);
			dst[i][s->len] = '\0';
		}
	}
	b->h.info(b->h.ctx, tag, &in);
}

/* One history entry: [id, [field, value, ...]]. Returns 0 or -1. */
static int entry_of(const redisReply *r, struct bus_entry *e)
{
	const redisReply *id = elem(r, 0, REDIS_REPLY_STRING), *kv = elem(r, 1, REDIS_REPLY_ARRAY);

	if (id == NULL || kv == NULL)
		return -1;
	memset(e, 0, sizeof(*e));
	e->id = id->str;
	e->data = "null";
	e->len = 4;
	for (size_t i = 0; i + 1 < kv->elements; i += 2) {
		const redisReply *k = elem(kv, i, REDIS_REPLY_STRING), *v = elem(kv, i + 1, REDIS_REPLY_STRING);
		if (k == NULL || v == NULL || k->len != 1)
			continue;
		if (k->str[0] == 't')
			e->type = v->str;
		else if (k->str[0] == 'p')
			e->topic = v->len ? v->str : NULL;
		else if (k->str[0] == 'c')
			e->close = v->str[0] == '1';
		else if (k->str[0] == 'd')
			e->data = v->str, e->len = v->len;
	}
	return e->type != NULL ? 0 : -1;
}

/* {trimmed id, [entry, ...]} */
static void answer_range(struct bus *b, void *tag, const redisReply *r)
{
	const redisReply *cut = elem(r, 0, REDIS_REPLY_STRING), *list = elem(r, 1, REDIS_REPLY_ARRAY);
	char trimmed[BUS_ID_MAX + 1];
	struct bus_entry *es;
	size_t n = 0;

	if (cut == NULL || list == NULL || cut->len > BUS_ID_MAX ||
	    (es = calloc(list->elements ? list->elements : 1, sizeof(*es))) == NULL) {
		b->h.range(b->h.ctx, tag, NULL, NULL, 0, 0);
		return;
	}
	memcpy(trimmed, cut->str, cut->len);
	trimmed[cut->len] = '\0';
	for (size_t i = 0; i < list->elements; i++)
		if (entry_of(list->element[i], &es[n]) == 0)
			n++;
	b->h.range(b->h.ctx, tag, trimmed, es, n, 1);
	free(es);
}

static int on_query_reply(struct bus *b, const redisReply *r)
{
	struct query q;

	if (b->qlen == 0)
		return -1;
	q = pop_query(b);
	switch (q.kind) {
	case Q_AUTH:
		return r->type == REDIS_REPLY_ERROR ? -1 : 0;
	case Q_IGNORE:
		return 0;
	case Q_INFO:
		answer_info(b, q.tag, r);
		return 0;
	case Q_RANGE:
		answer_range(b, q.tag, r);
		return 0;
	}
	return 0;
}

static void on_readable(struct bus *b, struct bconn *c)
{
	unsigned gen = b->gen;
	void *reply;

	if (redisBufferRead(c->ctx) != REDIS_OK) {
		link_fail(b);
		return;
	}
	for (;;) {
		int rc;
		if (redisGetReplyFromReader(c->ctx, &reply) != REDIS_OK) {
			link_fail(b);
			return;
		}
		if (reply == NULL)
			return;
		rc = c == &b->sub ? on_sub_reply(b, reply) : on_query_reply(b, reply);
		freeReplyObject(reply);
		if (gen != b->gen) /* a callback's call failed the link: c is gone */
			return;
		if (rc < 0) {
			link_fail(b);
			return;
		}
	}
}

static void on_writable(struct bus *b, struct bconn *c)
{
	int done = 0;

	if (redisBufferWrite(c->ctx, &done) != REDIS_OK) {
		link_fail(b);
		return;
	}
	if (done)
		watch(c, 0);
}

void bus_on_io(struct bus *b, void *ptr, uint32_t events)
{
	struct bconn *c = ptr;
	unsigned gen = b->gen;

	if (c->ctx == NULL)
		return;
	if (events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
		on_readable(b, c);
		if (gen != b->gen)
			return;
	}
	if (events & EPOLLOUT)
		on_writable(b, c);
}

/* With sentinels, every SENTINEL_POLL_MS: whether they name another master
 * now. A failover does not always close our connections to the old master
 * (a partition, or an old master that comes back still thinking it is
 * one), and events published on the new one would never reach us. Polled
 * rather than subscribed to (+switch-master): one round trip on the kept
 * connection every 2 s, no third connection to keep in the loop, and a
 * switch missed while a subscription was down cannot go unseen. Returns 1
 * when it failed the link for a reconnect to the new master (at once). */
static int master_moved(struct bus *b, long long now)
{
	struct sentinel_addr was = b->master;

	if (find_master(b) < 0) {
		b->master = was; /* no answer: the link's own checks say whether it works */
		return 0;
	}
	if (sentinel_addr_eq(&b->master, &was))
		return 0;
	link_fail(b);
	b->backoff_ms = 0;
	b->retry_at_ms = now;
	return 1;
}

void bus_tick(struct bus *b, long long now)
{
	if (b->sub.ctx == NULL) {
		if (now >= b->retry_at_ms)
			link_open(b);
		return;
	}
	if (b->sentinels != NULL && now >= b->poll_at_ms && master_moved(b, now))
		return;
	if (b->broken || (b->ping_sent_ms && now - b->ping_sent_ms > b->stall_ms) ||
	    (b->qlen > 0 && now - b->queue[b->qhead].sent_ms > b->stall_ms) ||
	    (!b->subscribed && now - b->last_ping_ms > b->stall_ms)) {
		link_fail(b);
		return;
	}
	if (b->subscribed && !b->ping_sent_ms && now - b->last_ping_ms >= PING_EVERY_MS) {
		const char *argv[1] = { "PING" };
		const size_t lens[1] = { 4 };
		b->last_ping_ms = b->ping_sent_ms = now;
		if (append(&b->sub, 1, argv, lens) < 0)
			link_fail(b);
	}
}

/* ---------------------------------------------------------------- queries */

static int query(struct bus *b, enum q_kind kind, void *tag, int argc, const char **argv,
		 const size_t *lens)
{
	if (!b->up || push_query(b, kind, tag) < 0)
		return -1;
	if (append(&b->q, argc, argv, lens) < 0) {
		b->qlen--; /* never sent: no answer will come */
		return -1;
	}
	return 0;
}

int bus_query_info(struct bus *b, const char *tenant, void *tag)
{
	char hist[KEY_MAX], mark[KEY_MAX];
	const char *argv[5] = { "EVAL", info_lua, "2", hist, mark };
	size_t lens[5];

	keys(tenant, hist, mark);
	for (int i = 0; i < 5; i++)
		lens[i] = strlen(argv[i]);
	return query(b, Q_INFO, tag, 5, argv, lens);
}

int bus_query_range(struct bus *b, const char *tenant, const char *after, int count, void *tag)
{
	char hist[KEY_MAX], mark[KEY_MAX], from[BUS_ID_MAX + 2], cnt[16];
	const char *argv[7] = { "EVAL", range_lua, "2", hist, mark, from, cnt };
	size_t lens[7];

	keys(tenant, hist, mark);
	snprintf(from, sizeof(from), "(%s", after);
	snprintf(cnt, sizeof(cnt), "%d", count);
	for (int i = 0; i < 7; i++)
		lens[i] = strlen(argv[i]);
	return query(b, Q_RANGE, tag, 7, argv, lens);
}

int bus_send_control(struct bus *b, const char *msg, size_t len)
{
	const char *argv[3] = { "PUBLISH", BUS_CHANNEL, msg };
	const size_t lens[3] = { 7, strlen(BUS_CHANNEL), len };

	if (len > 0 && msg[0] == 'E')
		return -1; /* reserved for events */
	return query(b, Q_IGNORE, NULL, 3, argv, lens);
}
