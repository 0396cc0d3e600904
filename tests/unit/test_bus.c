/* bus: ids (pure), and publishing, history reads, fan-out and link
 * recovery against the real redis-server of tests/unit/run.sh
 * (FCGI_SSE_TEST_REDIS_PORT). */
#include <CUnit/CUnit.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

#include "../../redis/bus.h"
#include "suites.h"
#include "testutil.h"

#define MAX_SEEN 16

/* What the callbacks saw. */
struct seen {
	int up, lost, events, controls, infos, ranges, failed;
	char tenant[64], ids[MAX_SEEN][BUS_ID_MAX + 1], data[MAX_SEEN][64], topic[64];
	int close;
	char control[64];
	struct bus_info info;
	int range_n;
	char range_trimmed[BUS_ID_MAX + 1];
	char range_ids[MAX_SEEN][BUS_ID_MAX + 1], range_types[MAX_SEEN][16];
};

static void cb_up(void *ctx)
{
	((struct seen *)ctx)->up++;
}

static void cb_lost(void *ctx)
{
	((struct seen *)ctx)->lost++;
}

static void cb_event(void *ctx, const char *tenant, const struct bus_entry *e)
{
	struct seen *s = ctx;

	if (s->events < MAX_SEEN) {
		snprintf(s->ids[s->events], sizeof(s->ids[0]), "%s", e->id);
		snprintf(s->data[s->events], sizeof(s->data[0]), "%.*s", (int)e->len, e->data);
	}
	snprintf(s->tenant, sizeof(s->tenant), "%s", tenant);
	snprintf(s->topic, sizeof(s->topic), "%s", e->topic ? e->topic : "(none)");
	s->close = e->close;
	s->events++;
}

static void cb_control(void *ctx, const struct busmsg *m)
{
	struct seen *s = ctx;

	snprintf(s->control, sizeof(s->control), "%d %s", (int)m->kind, m->login ? m->login : "-");
	s->controls++;
}

static void cb_info(void *ctx, void *tag, const struct bus_info *in)
{
	struct seen *s = ctx;

	(void)tag;
	if (in == NULL)
		s->failed++;
	else
		s->info = *in;
	s->infos++;
}

static void cb_range(void *ctx, void *tag, const char *trimmed, const struct bus_entry *es, size_t n,
		     int ok)
{
	struct seen *s = ctx;

	(void)tag;
	if (!ok)
		s->failed++;
	snprintf(s->range_trimmed, sizeof(s->range_trimmed), "%s", trimmed ? trimmed : "(none)");
	s->range_n = (int)n;
	for (size_t i = 0; i < n && i < MAX_SEEN; i++) {
		snprintf(s->range_ids[i], sizeof(s->range_ids[0]), "%s", es[i].id);
		snprintf(s->range_types[i], sizeof(s->range_types[0]), "%s", es[i].type);
	}
	s->ranges++;
}

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Runs the loop until *flag >= want or ms pass. Returns 1 if reached. */
static int run_until(struct bus *b, int ep, const int *flag, int want, long long ms)
{
	long long end = now_ms() + ms;
	struct epoll_event evs[8];

	while (*flag < want && now_ms() < end) {
		int n = epoll_wait(ep, evs, 8, 20);
		for (int i = 0; i < n; i++)
			bus_on_io(b, evs[i].data.ptr, evs[i].events);
		bus_tick(b, now_ms());
	}
	return *flag >= want;
}

static struct bus *open_link(int port, int ep, struct seen *s)
{
	const struct redis_opts o = { "127.0.0.1", port, "", 200, 200, 200, 0, 0, NULL, NULL, NULL };
	const struct bus_handlers h = { s, cb_up, cb_lost, cb_event, cb_control, cb_info, cb_range };

	memset(s, 0, sizeof(*s));
	return bus_open(&o, ep, &h);
}

/* A client for publishing and a link that is up, on one epoll set. */
struct fixture {
	int port, ep;
	struct redis *r;
	struct bus *b;
	struct seen s;
};

static int fixture_up(struct fixture *f)
{
	f->port = test_redis_port();
	f->ep = epoll_create1(0);
	f->r = f->port > 0 ? test_redis_client(f->port) : NULL;
	f->b = f->r != NULL && f->ep >= 0 ? open_link(f->port, f->ep, &f->s) : NULL;
	return f->b != NULL && run_until(f->b, f->ep, &f->s.up, 1, 3000) ? 0 : -1;
}

static void fixture_release(struct fixture *f)
{
	bus_free(f->b);
	redis_free(f->r);
	if (f->ep >= 0)
		close(f->ep);
}

static void unique_tenant(char *out, size_t n, const char *what)
{
	snprintf(out, n, "t-%s-%ld-%lld", what, (long)getpid(), now_ms());
}

static void test_ids(void)
{
	uint64_t ms, seq;

	CU_ASSERT_EQUAL(bus_id_parse("1795306000123-7", &ms, &seq), 0);
	CU_ASSERT_EQUAL(ms, 1795306000123ULL);
	CU_ASSERT_EQUAL(seq, 7);
	CU_ASSERT_EQUAL(bus_id_parse("18446744073709551615-18446744073709551615", &ms, &seq), 0);
	CU_ASSERT_EQUAL(ms, UINT64_MAX);
	CU_ASSERT_EQUAL(bus_id_parse("18446744073709551616-0", &ms, &seq), -1); /* overflow */
	CU_ASSERT_EQUAL(bus_id_parse("0-0", &ms, &seq), 0);
	CU_ASSERT_EQUAL(bus_id_parse("12", &ms, &seq), -1);
	CU_ASSERT_EQUAL(bus_id_parse("-1", &ms, &seq), -1);
	CU_ASSERT_EQUAL(bus_id_parse("1-", &ms, &seq), -1);
	CU_ASSERT_EQUAL(bus_id_parse("1-2-3", &ms, &seq), -1);
	CU_ASSERT_EQUAL(bus_id_parse("1x-2", &ms, &seq), -1);
	CU_ASSERT_EQUAL(bus_id_parse(" 1-2", &ms, &seq), -1);
	CU_ASSERT_EQUAL(bus_id_parse("", &ms, &seq), -1);
	CU_ASSERT(bus_id_cmp("9-0", "10-0") < 0); /* numeric, not string order */
	CU_ASSERT(bus_id_cmp("10-2", "10-10") < 0);
	CU_ASSERT(bus_id_cmp("10-10", "10-2") > 0);
	CU_ASSERT_EQUAL(bus_id_cmp("5-5", "5-5"), 0);
	CU_ASSERT(bus_id_cmp("0-0", "0-1") < 0);
}

static void test_history_trim_and_reads(void)
{
	int port = test_redis_port(), ep = epoll_create1(0);
	const struct bus_history hist = { 3, 0 };
	char tenant[96], ids[5][BUS_ID_MAX + 1];
	struct redis *r;
	struct seen s;
	struct bus *b;

	CU_ASSERT_FATAL(port > 0 && ep >= 0);
	r = test_redis_client(port);
	CU_ASSERT_FATAL(r != NULL);
	unique_tenant(tenant, sizeof(tenant), "hist");
	for (int i = 0; i < 5; i++) {
		char data[32], type[16];
		snprintf(data, sizeof(data), "{\"n\":%d}", i);
		snprintf(type, sizeof(type), "type%d", i);
		const struct bus_entry e = { NULL, type, i == 4 ? "task:1" : NULL, data, strlen(data), i == 4 };
		CU_ASSERT_EQUAL_FATAL(bus_publish(r, &hist, tenant, &e, ids[i]), 0);
		if (i > 0)
			CU_ASSERT(bus_id_cmp(ids[i - 1], ids[i]) < 0);
	}
	b = open_link(port, ep, &s);
	CU_ASSERT_FATAL(b != NULL);
	CU_ASSERT_FATAL(run_until(b, ep, &s.up, 1, 3000));
	CU_ASSERT(bus_is_up(b));

	/* 3 kept (ids 2..4); the newest trimmed is ids[1] */
	CU_ASSERT_EQUAL(bus_query_info(b, tenant, NULL), 0);
	CU_ASSERT_FATAL(run_until(b, ep, &s.infos, 1, 3000));
	CU_ASSERT_EQUAL(s.failed, 0);
	CU_ASSERT(s.info.exists);
	CU_ASSERT_STRING_EQUAL(s.info.last_id, ids[4]);
	CU_ASSERT_STRING_EQUAL(s.info.first_id, ids[2]);
	CU_ASSERT_STRING_EQUAL(s.info.trimmed_id, ids[1]);

	/* exclusive of the given id, in order, fields back as published */
	CU_ASSERT_EQUAL(bus_query_range(b, tenant, ids[2], 10, NULL), 0);
	CU_ASSERT_FATAL(run_until(b, ep, &s.ranges, 1, 3000));
	CU_ASSERT_EQUAL_FATAL(s.range_n, 2);
	CU_ASSERT_STRING_EQUAL(s.range_ids[0], ids[3]);
	CU_ASSERT_STRING_EQUAL(s.range_ids[1], ids[4]);
	CU_ASSERT_STRING_EQUAL(s.range_types[1], "type4");
	CU_ASSERT_STRING_EQUAL(s.range_trimmed, ids[1]); /* read with the entries */
	CU_ASSERT_EQUAL(bus_query_range(b, tenant, "0-0", 1, NULL), 0); /* COUNT honoured */
	CU_ASSERT_FATAL(run_until(b, ep, &s.ranges, 2, 3000));
	CU_ASSERT_EQUAL(s.range_n, 1);
	CU_ASSERT_STRING_EQUAL(s.range_ids[0], ids[2]);

	/* a tenant with no history */
	s.infos = 0;
	CU_ASSERT_EQUAL(bus_query_info(b, "t-never-published", NULL), 0);
	CU_ASSERT_FATAL(run_until(b, ep, &s.infos, 1, 3000));
	CU_ASSERT_FALSE(s.info.exists);
	CU_ASSERT_STRING_EQUAL(s.info.last_id, "0-0");
	CU_ASSERT_STRING_EQUAL(s.info.trimmed_id, "0-0");
	bus_free(b);
	redis_free(r);
	close(ep);
}

static void test_live_events_and_control(void)
{
	const struct bus_history hist = { 100, 3600000 };
	char tenant[96], id[BUS_ID_MAX + 1];
	struct fixture f;
	/* data with newlines and the field separator survives the channel */
	const char data[] = "{\"a\":\"x\\ny\"}\nraw\nline";
	const struct bus_entry e = { NULL, "task.done", "task:7", data, sizeof(data) - 1, 1 };

	CU_ASSERT_FATAL(fixture_up(&f) == 0);
	unique_tenant(tenant, sizeof(tenant), "live");
	CU_ASSERT_EQUAL_FATAL(bus_publish(f.r, &hist, tenant, &e, id), 0);
	CU_ASSERT_FATAL(run_until(f.b, f.ep, &f.s.events, 1, 3000));
	CU_ASSERT_STRING_EQUAL(f.s.tenant, tenant);
	CU_ASSERT_STRING_EQUAL(f.s.ids[0], id);
	CU_ASSERT_STRING_EQUAL(f.s.data[0], data);
	CU_ASSERT_STRING_EQUAL(f.s.topic, "task:7");
	CU_ASSERT_EQUAL(f.s.close, 1);

	CU_ASSERT_EQUAL(bus_send_control(f.b, "R\nlogin-1", 9), 0);
	CU_ASSERT_FATAL(run_until(f.b, f.ep, &f.s.controls, 1, 3000));
	CU_ASSERT_EQUAL(f.s.controls, 1);
	{
		char want[32];
		snprintf(want, sizeof(want), "%d login-1", (int)BUSMSG_REVOKE_LOGIN);
		CU_ASSERT_STRING_EQUAL(f.s.control, want);
	}
	CU_ASSERT_EQUAL(bus_send_control(f.b, "E\nforged", 8), -1); /* events only by publish */
	fixture_release(&f);
}

static void test_link_recovers_after_the_connection_is_killed(void)
{
	const struct bus_history hist = { 100, 0 };
	const struct bus_entry e = { NULL, "after", NULL, "1", 1, 0 };
	char tenant[96], id[BUS_ID_MAX + 1];
	struct fixture f;

	CU_ASSERT_FATAL(fixture_up(&f) == 0);
	unique_tenant(tenant, sizeof(tenant), "kill");
	test_redis_command(f.port, TEST_KILL_SUBSCRIBERS);
	CU_ASSERT_FATAL(run_until(f.b, f.ep, &f.s.lost, 1, 3000));
	CU_ASSERT_FALSE(bus_is_up(f.b));
	CU_ASSERT_EQUAL(bus_query_info(f.b, tenant, NULL), -1); /* down: no answer will come */
	CU_ASSERT_FATAL(run_until(f.b, f.ep, &f.s.up, 2, 5000));
	CU_ASSERT(bus_is_up(f.b));
	CU_ASSERT_EQUAL_FATAL(bus_publish(f.r, &hist, tenant, &e, id), 0);
	CU_ASSERT_FATAL(run_until(f.b, f.ep, &f.s.events, 1, 3000));
	CU_ASSERT_STRING_EQUAL(f.s.ids[0], id);
	fixture_release(&f);
}

static void test_publish_without_redis_fails(void)
{
	/* port 1 on loopback: nothing listens */
	struct redis *r = test_redis_client(1);
	const struct bus_history hist = { 100, 0 };
	const struct bus_entry e = { NULL, "x", NULL, "1", 1, 0 };
	char id[BUS_ID_MAX + 1] = "";

	CU_ASSERT_FATAL(r != NULL);
	CU_ASSERT_EQUAL(bus_publish(r, &hist, "t-none", &e, id), -1);
	CU_ASSERT_STRING_EQUAL(id, "");
	redis_free(r);
}

/* The tenant's bus_info and history length (a range read of everything),
 * through the fixture's link, into f->s. */
static void read_history(struct fixture *f, const char *tenant, int *len)
{
	f->s.infos = f->s.ranges = 0;
	CU_ASSERT_EQUAL(bus_query_info(f->b, tenant, NULL), 0);
	CU_ASSERT(run_until(f->b, f->ep, &f->s.infos, 1, 3000));
	CU_ASSERT_EQUAL(bus_query_range(f->b, tenant, "0-0", 100000, NULL), 0);
	CU_ASSERT(run_until(f->b, f->ep, &f->s.ranges, 1, 3000));
	*len = f->s.range_n;
}

static int publish_n(struct redis *r, const struct bus_history *h, const char *tenant, int n,
		     char (*ids)[BUS_ID_MAX + 1])
{
	for (int i = 0; i < n; i++) {
		const struct bus_entry e = { NULL, "t", NULL, "{}", 2, 0 };
		if (bus_publish(r, h, tenant, &e, ids[i]) < 0)
			return -1;
	}
	return 0;
}

/* A full history is trimmed a batch (1% of max_len) at a time: its length
 * stays within [max_len - batch + 1, max_len], and the watermark is exactly
 * the newest id removed, the first id kept its successor. */
static void test_full_history_trims_in_batches_with_an_exact_watermark(void)
{
	const struct bus_history hist = { 300, 0 }; /* batch 3 */
	static char ids[320][BUS_ID_MAX + 1];
	char tenant[96];
	struct fixture f;
	int len;

	CU_ASSERT_EQUAL(bus_trim_batch(300), 3);
	CU_ASSERT_EQUAL(bus_trim_batch(3), 1);
	CU_ASSERT_EQUAL(bus_trim_batch(10000), 100);
	CU_ASSERT_EQUAL(bus_trim_batch(10000000), 100);
	CU_ASSERT_FATAL(fixture_up(&f) == 0);
	unique_tenant(tenant, sizeof(tenant), "batch");
	CU_ASSERT_FATAL(publish_n(f.r, &hist, tenant, 300, ids) == 0);
	read_history(&f, tenant, &len);
	CU_ASSERT_EQUAL(len, 300);
	CU_ASSERT_STRING_EQUAL(f.s.info.trimmed_id, "0-0");
	/* the 301st: 3 go (ids 0..2), 298 + 1 stay */
	CU_ASSERT_FATAL(publish_n(f.r, &hist, tenant, 1, ids + 300) == 0);
	read_history(&f, tenant, &len);
	CU_ASSERT_EQUAL(len, 298);
	CU_ASSERT_STRING_EQUAL(f.s.info.trimmed_id, ids[2]);
	CU_ASSERT_STRING_EQUAL(f.s.info.first_id, ids[3]);
	CU_ASSERT_STRING_EQUAL(f.s.info.last_id, ids[300]);
	/* two more fit without trimming; the one after trims again */
	CU_ASSERT_FATAL(publish_n(f.r, &hist, tenant, 2, ids + 301) == 0);
	read_history(&f, tenant, &len);
	CU_ASSERT_EQUAL(len, 300);
	CU_ASSERT_STRING_EQUAL(f.s.info.trimmed_id, ids[2]);
	CU_ASSERT_FATAL(publish_n(f.r, &hist, tenant, 1, ids + 303) == 0);
	read_history(&f, tenant, &len);
	CU_ASSERT_EQUAL(len, 298);
	CU_ASSERT_STRING_EQUAL(f.s.info.trimmed_id, ids[5]);
	CU_ASSERT_STRING_EQUAL(f.s.info.first_id, ids[6]);
	CU_ASSERT_STRING_EQUAL(f.s.range_trimmed, ids[5]);
	fixture_release(&f);
}

/* Entries past the age limit go a batch per publish at most, oldest first,
 * each step recording its newest removed id. */
static void test_age_trim_is_bounded_per_publish(void)
{
	const struct bus_history keep = { 300, 0 }, aged = { 300, 400 }; /* batch 3 */
	char ids[16][BUS_ID_MAX + 1], tenant[96];
	struct timespec pause = { 0, 500 * 1000000L };
	struct fixture f;
	int len;

	CU_ASSERT_FATAL(fixture_up(&f) == 0);
	unique_tenant(tenant, sizeof(tenant), "age");
	CU_ASSERT_FATAL(publish_n(f.r, &keep, tenant, 7, ids) == 0);
	nanosleep(&pause, NULL); /* all 7 are now older than 400 ms */
	CU_ASSERT_FATAL(publish_n(f.r, &aged, tenant, 1, ids + 7) == 0);
	read_history(&f, tenant, &len);
	CU_ASSERT_EQUAL(len, 5); /* 3 of the 7 went */
	CU_ASSERT_STRING_EQUAL(f.s.info.trimmed_id, ids[2]);
	CU_ASSERT_STRING_EQUAL(f.s.info.first_id, ids[3]);
	CU_ASSERT_FATAL(publish_n(f.r, &aged, tenant, 1, ids + 8) == 0);
	read_history(&f, tenant, &len);
	CU_ASSERT_EQUAL(len, 3);
	CU_ASSERT_STRING_EQUAL(f.s.info.trimmed_id, ids[5]);
	/* the last old one goes; the new ones (younger than 400 ms) stay */
	CU_ASSERT_FATAL(publish_n(f.r, &aged, tenant, 1, ids + 9) == 0);
	read_history(&f, tenant, &len);
	CU_ASSERT_STRING_EQUAL(f.s.info.trimmed_id, ids[6]);
	CU_ASSERT_STRING_EQUAL(f.s.info.first_id, ids[7]);
	CU_ASSERT_EQUAL(len, 3);
	fixture_release(&f);
}

static CU_TestInfo tests[] = {
	{ "ids parse and compare as numbers", test_ids },
	{ "history is trimmed with a watermark and read back", test_history_trim_and_reads },
	{ "a full history trims in batches, with an exact watermark", test_full_history_trims_in_batches_with_an_exact_watermark },
	{ "age trimming is bounded per publish", test_age_trim_is_bounded_per_publish },
	{ "events and control messages reach the subscriber", test_live_events_and_control },
	{ "the link comes back after its connection is killed", test_link_recovers_after_the_connection_is_killed },
	{ "publishing without Redis fails", test_publish_without_redis_fails },
	CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suite[] = {
	{ "bus", NULL, NULL, NULL, NULL, tests },
	CU_SUITE_INFO_NULL,
};

int register_bus_tests(void)
{
	return CU_register_suites(suite) == CUE_SUCCESS ? 0 : -1;
}
