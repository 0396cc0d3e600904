/* Target: Redis replies as the hub's bus link decodes them (redis/bus.c).
 *
 * Arbitrary bytes go through hiredis's own reader (redisReaderCreate,
 * redisReaderFeed, redisReaderGetReply: the RESP parser the link's
 * redisGetReplyFromReader uses), and each reply it yields goes to the
 * decoder the link would hand it to: on_sub_reply for the subscriber
 * connection (pub/sub messages, then busmsg_parse), or on_query_reply
 * for the query connection with an info (the EVAL of info_lua) or a
 * range (range_lua: the trimmed id and the XRANGE entries) in flight.
 * Those decoders are static, so bus.c is compiled into this target.
 *
 * The callbacks check what a decoded answer promises (ids are strings
 * of at most BUS_ID_MAX bytes, an entry has an id and a type, its data
 * and length lie inside the reply) and do with it what the hub does
 * (sse/catchup.c: frames_encode each entry, compare ids).
 *
 * Input: one byte choosing the connection and the query, then the reply
 * bytes. */
#include "fuzz.h"

#include <hiredis/hiredis.h>

#include "../redis/bus.c"
#include "../sse/ring.h"

static int ids_ok(const char *id)
{
	uint64_t ms, seq;

	FUZZ_CHECK(id != NULL && strlen(id) <= BUS_ID_MAX);
	return bus_id_parse(id, &ms, &seq) == 0;
}

static void use_entry(const struct bus_entry *e)
{
	struct frames f;

	FUZZ_CHECK(e->id != NULL && e->type != NULL && e->data != NULL);
	if (frames_encode(&f, e) == 0) {
		FUZZ_CHECK(f.event.len > 0);
		FUZZ_CHECK(!e->close || f.close.len > 0);
	}
	frames_release(&f);
}

static void on_up(void *ctx)
{
	(void)ctx;
}

static void on_lost(void *ctx)
{
	(void)ctx;
}

static void on_event(void *ctx, const char *tenant, const struct bus_entry *e)
{
	(void)ctx;
	FUZZ_CHECK(tenant != NULL);
	use_entry(e);
}

static void on_control(void *ctx, const struct busmsg *m)
{
	(void)ctx;
	FUZZ_CHECK(m->kind != BUSMSG_INVALID && m->kind != BUSMSG_EVENT);
}

static void on_info(void *ctx, void *tag, const struct bus_info *in)
{
	(void)ctx;
	FUZZ_CHECK(tag == (void *)1);
	if (in == NULL)
		return;
	ids_ok(in->last_id);
	ids_ok(in->first_id);
	ids_ok(in->trimmed_id);
	(void)bus_id_cmp(in->last_id, in->trimmed_id);
}

static void on_range(void *ctx, void *tag, const char *trimmed, const struct bus_entry *es,
		     size_t n, int ok)
{
	(void)ctx;
	FUZZ_CHECK(tag == (void *)2);
	if (!ok) {
		FUZZ_CHECK(trimmed == NULL && es == NULL && n == 0);
		return;
	}
	ids_ok(trimmed);
	for (size_t i = 0; i < n; i++) {
		use_entry(&es[i]);
		(void)bus_id_cmp(es[i].id, trimmed);
	}
}

/* hiredis 0.14's reader allocates an array as long as the reply says
 * before any element arrives (1.x bounds this with maxelements): "*4000000000"
 * is an out-of-memory in hiredis, not in the decoders under test, and a
 * real Redis never sends it. Inputs that announce an aggregate larger
 * than this are skipped. */
#define MAX_ELEMENTS 4096

static int huge_aggregate(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned long long v = 0;
		size_t j = i + 1;
		if (p[i] != '*')
			continue;
		while (j < n && p[j] >= '0' && p[j] <= '9' && v <= MAX_ELEMENTS)
			v = v * 10 + (p[j++] - '0');
		if (v > MAX_ELEMENTS)
			return 1;
	}
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct bus_handlers h = { NULL,     on_up,   on_lost, on_event,
					       on_control, on_info, on_range };
	struct fuzz_in in = { data, size };
	unsigned how = fuzz_byte(&in) % 4;
	redisReader *rd = redisReaderCreate();
	struct bus *b = calloc(1, sizeof(*b));
	void *reply;
	int reps = 0;

	FUZZ_CHECK(rd != NULL && b != NULL);
	if (huge_aggregate(in.p, in.n)) {
		free(b);
		redisReaderFree(rd);
		return 0;
	}
	b->h = h;
	b->sub.bus = b->q.bus = b;
	FUZZ_CHECK(redisReaderFeed(rd, (const char *)in.p, in.n) == REDIS_OK);
	while (reps++ < 64 && redisReaderGetReply(rd, &reply) == REDIS_OK && reply != NULL) {
		if (how == 0) {
			on_sub_reply(b, reply);
		} else {
			enum q_kind k = how == 1 ? Q_INFO : how == 2 ? Q_RANGE : Q_AUTH;
			FUZZ_CHECK(push_query(b, k, (void *)(uintptr_t)(how == 3 ? 0 : how)) == 0);
			on_query_reply(b, reply);
			FUZZ_CHECK(b->qlen == 0);
		}
		freeReplyObject(reply);
	}
	free(b->queue);
	free(b);
	redisReaderFree(rd);
	return 0;
}
