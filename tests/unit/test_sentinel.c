/* sentinel: the list of sentinels and its order (pure), and asking them,
 * against a fake sentinel on loopback (it also plays the master it names:
 * ROLE, WAIT and one chosen answer to everything else) and against the
 * real redis-server of tests/unit/run.sh (FCGI_SSE_TEST_REDIS_PORT). */
#include <CUnit/CUnit.h>
#include <arpa/inet.h>
#include <fcntl.h>
#include <hiredis/hiredis.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "../../core/buf.h"
#include "../../core/clock.h"
#include "../../redis/redis.h"
#include "../../redis/sentinel.h"
#include "suites.h"
#include "testutil.h"

/* ------------------------------------------------------------ pure */

static void test_parse_list(void)
{
	struct sentinel_addr v[4];
	char long_host[300];

	CU_ASSERT_EQUAL(sentinel_parse_list(NULL, v, 4), 0);
	CU_ASSERT_EQUAL(sentinel_parse_list("", v, 4), 0);
	CU_ASSERT_EQUAL_FATAL(sentinel_parse_list("s1.example:26379,10.0.0.2:1", v, 4), 2);
	CU_ASSERT_STRING_EQUAL(v[0].host, "s1.example");
	CU_ASSERT_EQUAL(v[0].port, 26379);
	CU_ASSERT_STRING_EQUAL(v[1].host, "10.0.0.2");
	CU_ASSERT_EQUAL(v[1].port, 1);
	CU_ASSERT_EQUAL(sentinel_parse_list("h:65535", v, 4), 1);
	static const char *const bad[] = { "h", "h:", ":1", "h:0", "h:65536", "h:1,", ",h:1", "h:1,,h:2",
					   "h:1:2", "h:x1", "h:1x", "h:-1", "h:123456", "a:1,b:2,c:3,d:4,e:5" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		CU_ASSERT_EQUAL(sentinel_parse_list(bad[i], v, 4), -1);
	memset(long_host, 'a', sizeof(long_host));
	snprintf(long_host + SENTINEL_HOST_MAX, sizeof(long_host) - SENTINEL_HOST_MAX, ":1");
	CU_ASSERT_EQUAL(sentinel_parse_list(long_host, v, 4), 1); /* 255 bytes of host */
	snprintf(long_host + SENTINEL_HOST_MAX, sizeof(long_host) - SENTINEL_HOST_MAX, "a:1");
	CU_ASSERT_EQUAL(sentinel_parse_list(long_host, v, 4), -1);
}

static void test_addr_of_an_answer(void)
{
	struct sentinel_addr a = { "untouched", 7 };

	CU_ASSERT_EQUAL(sentinel_addr_of("10.1.2.3", 8, "6379", 4, &a), 0);
	CU_ASSERT_STRING_EQUAL(a.host, "10.1.2.3");
	CU_ASSERT_EQUAL(a.port, 6379);
	CU_ASSERT_EQUAL(sentinel_addr_of("", 0, "6379", 4, &a), -1);
	CU_ASSERT_EQUAL(sentinel_addr_of("h\0x", 3, "6379", 4, &a), -1);
	CU_ASSERT_EQUAL(sentinel_addr_of("h", 1, "", 0, &a), -1);
	CU_ASSERT_EQUAL(sentinel_addr_of("h", 1, "0", 1, &a), -1);
	CU_ASSERT_EQUAL(sentinel_addr_of("h", 1, "65536", 5, &a), -1);
	CU_ASSERT_EQUAL(sentinel_addr_of("h", 1, "63 79", 5, &a), -1);
	/* a failed parse leaves the address as it was */
	CU_ASSERT_STRING_EQUAL(a.host, "10.1.2.3");
	CU_ASSERT_EQUAL(a.port, 6379);
}

static void order_of(const struct sentinel_addr *v, int n, char *out)
{
	for (int i = 0; i < n; i++)
		out[i] = v[i].host[0];
	out[n] = '\0';
}

static void test_promote_and_rotate(void)
{
	struct sentinel_addr v[4];
	char got[8];

	CU_ASSERT_EQUAL_FATAL(sentinel_parse_list("a:1,b:2,c:3,d:4", v, 4), 4);
	sentinel_promote(v, 4, 2);
	order_of(v, 4, got);
	CU_ASSERT_STRING_EQUAL(got, "cabd");
	CU_ASSERT_EQUAL(v[0].port, 3);
	sentinel_promote(v, 4, 0);
	sentinel_promote(v, 4, 4); /* out of range: nothing */
	sentinel_promote(v, 4, -1);
	order_of(v, 4, got);
	CU_ASSERT_STRING_EQUAL(got, "cabd");
	sentinel_rotate(v, 4, 1);
	order_of(v, 4, got);
	CU_ASSERT_STRING_EQUAL(got, "abdc");
	sentinel_rotate(v, 4, 3);
	order_of(v, 4, got);
	CU_ASSERT_STRING_EQUAL(got, "cabd");
	sentinel_rotate(v, 4, 4);
	order_of(v, 4, got);
	CU_ASSERT_STRING_EQUAL(got, "cabd");
	sentinel_rotate(v, 1, 1);
	CU_ASSERT_STRING_EQUAL(v[0].host, "c");
	CU_ASSERT_TRUE(sentinel_addr_eq(&v[1], &(struct sentinel_addr){ "a", 1 }));
	CU_ASSERT_FALSE(sentinel_addr_eq(&v[1], &(struct sentinel_addr){ "a", 2 }));
	CU_ASSERT_FALSE(sentinel_addr_eq(&v[1], &(struct sentinel_addr){ "b", 1 }));
}

static void test_new_without_or_with_a_bad_list(void)
{
	struct redis_opts o = { "127.0.0.1", 6379, "", 200, 200, 200, 0, 0, NULL, NULL, NULL };
	struct sentinels *s;
	int none = -1;

	CU_ASSERT_PTR_NULL(sentinels_new(&o, &none));
	CU_ASSERT_EQUAL(none, 1);
	o.sentinels = "";
	CU_ASSERT_PTR_NULL(sentinels_new(&o, &none));
	CU_ASSERT_EQUAL(none, 1);
	o.sentinels = "nohost";
	CU_ASSERT_PTR_NULL(sentinels_new(&o, &none));
	CU_ASSERT_EQUAL(none, 0);
	o.sentinels = "127.0.0.1:26379";
	s = sentinels_new(&o, &none);
	CU_ASSERT_PTR_NOT_NULL(s);
	CU_ASSERT_EQUAL(none, 0);
	sentinels_free(s);
}

/* ------------------------------------------------------------ a fake sentinel */

/* Answers SENTINEL with its own address, or with nil when `unknown`; ROLE
 * with "master" or "slave"; WAIT with `acks`; anything else with `other`
 * (a RESP reply). Up to FAKE_CONNS connections at once. */
struct fake {
	int lfd, port;
	_Atomic int accepted;
	_Atomic int stop;
	_Atomic int acks;
	_Atomic int unknown, replica;
	const char *_Atomic other;
	pthread_t thread;
};

static void fake_reply(struct fake *f, int fd, const char *cmd, size_t n)
{
	char out[128];

	if (memmem(cmd, n, "SENTINEL", 8))
		snprintf(out, sizeof(out), atomic_load(&f->unknown) ? "*-1\r\n" : "*2\r\n$9\r\n127.0.0.1\r\n$%d\r\n%d\r\n",
			 f->port >= 10000 ? 5 : 4, f->port);
	else if (memmem(cmd, n, "ROLE", 4))
		snprintf(out, sizeof(out), atomic_load(&f->replica) ? "*5\r\n$5\r\nslave\r\n$1\r\nx\r\n:1\r\n$9\r\nconnected\r\n:0\r\n"
								    : "*3\r\n$6\r\nmaster\r\n:0\r\n*0\r\n");
	else if (memmem(cmd, n, "WAIT", 4))
		snprintf(out, sizeof(out), ":%d\r\n", atomic_load(&f->acks));
	else
		snprintf(out, sizeof(out), "%s", atomic_load(&f->other));
	if (write(fd, out, strlen(out)) < 0)
		return;
}

#define FAKE_CONNS 8

static void *fake_main(void *arg)
{
	struct fake *f = arg;
	struct pollfd p[FAKE_CONNS + 1];
	int n = 1;

	p[0] = (struct pollfd){ f->lfd, POLLIN, 0 };
	while (!atomic_load(&f->stop)) {
		char buf[4096];
		ssize_t got;
		int fd;

		if (poll(p, (nfds_t)n, 20) <= 0)
			continue;
		if ((p[0].revents & POLLIN) && n <= FAKE_CONNS && (fd = accept(f->lfd, NULL, NULL)) >= 0) {
			atomic_fetch_add(&f->accepted, 1);
			p[n++] = (struct pollfd){ fd, POLLIN, 0 };
		}
		for (int i = 1; i < n; i++) {
			if (!p[i].revents)
				continue;
			if ((got = read(p[i].fd, buf, sizeof(buf))) > 0) {
				fake_reply(f, p[i].fd, buf, (size_t)got);
				continue;
			}
			close(p[i].fd);
			p[i--] = p[--n];
		}
	}
	for (int i = 1; i < n; i++)
		close(p[i].fd);
	return NULL;
}

static int fake_start(struct fake *f)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	socklen_t len = sizeof(a);

	memset(f, 0, sizeof(*f));
	atomic_store(&f->other, "+OK\r\n");
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if ((f->lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0)) < 0 ||
	    bind(f->lfd, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(f->lfd, 16) < 0 ||
	    getsockname(f->lfd, (struct sockaddr *)&a, &len) < 0)
		return -1;
	f->port = ntohs(a.sin_port);
	return pthread_create(&f->thread, NULL, fake_main, f) == 0 ? 0 : -1;
}

static void fake_stop(struct fake *f)
{
	atomic_store(&f->stop, 1);
	pthread_join(f->thread, NULL);
	close(f->lfd);
}

/* A loopback port nothing listens on (bound, never listened, closed). */
static int closed_port(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	socklen_t len = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM, 0), port = -1;

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 &&
	    getsockname(fd, (struct sockaddr *)&a, &len) == 0)
		port = ntohs(a.sin_port);
	if (fd >= 0)
		close(fd);
	return port;
}

static void test_the_first_answer_wins_and_goes_first(void)
{
	struct fake f;
	char list[64], err[160];
	struct redis_opts o = { "unused", 1, "", 200, 200, 200, 0, 0, list, "mymaster", NULL };
	struct sentinel_addr m = { "", 0 };
	struct sentinels *s;
	int none, dead = closed_port();

	CU_ASSERT_FATAL(fake_start(&f) == 0 && dead > 0);
	snprintf(list, sizeof(list), "127.0.0.1:%d,127.0.0.1:%d", dead, f.port);
	CU_ASSERT_PTR_NOT_NULL_FATAL(s = sentinels_new(&o, &none));
	CU_ASSERT_EQUAL(sentinels_ask(s, 0, NULL, &m, err, sizeof(err)), 0);
	CU_ASSERT_STRING_EQUAL(m.host, "127.0.0.1");
	CU_ASSERT_EQUAL(m.port, f.port);
	/* the one that answered is asked first now: one try is enough */
	CU_ASSERT_EQUAL(sentinels_ask(s, 1, NULL, &m, err, sizeof(err)), 0);
	CU_ASSERT_EQUAL(atomic_load(&f.accepted), 2);
	/* a master it does not know is no answer */
	atomic_store(&f.unknown, 1);
	CU_ASSERT_EQUAL(sentinels_ask(s, 1, NULL, &m, err, sizeof(err)), -1);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "no master named mymaster"));
	sentinels_free(s);
	fake_stop(&f);
}

static void test_one_try_at_a_time_moves_on(void)
{
	struct fake f;
	char list[96], err[160], want[64];
	struct redis_opts o = { "unused", 1, "", 200, 200, 200, 0, 0, list, "fcgi_sse", NULL };
	struct sentinel_addr m;
	struct redisContext *keep = NULL;
	struct sentinels *s;
	int none, d1 = closed_port(), d2 = closed_port();

	CU_ASSERT_FATAL(fake_start(&f) == 0 && d1 > 0 && d2 > 0);
	snprintf(list, sizeof(list), "127.0.0.1:%d,127.0.0.1:%d,127.0.0.1:%d", d1, d2, f.port);
	CU_ASSERT_PTR_NOT_NULL_FATAL(s = sentinels_new(&o, &none));
	CU_ASSERT_EQUAL(sentinels_ask(s, 1, &keep, &m, err, sizeof(err)), -1);
	snprintf(want, sizeof(want), "sentinel 127.0.0.1:%d:", d1);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, want));
	CU_ASSERT_PTR_NULL(keep);
	CU_ASSERT_EQUAL(sentinels_ask(s, 1, &keep, &m, err, sizeof(err)), -1);
	snprintf(want, sizeof(want), "sentinel 127.0.0.1:%d:", d2);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, want));
	CU_ASSERT_EQUAL(sentinels_ask(s, 1, &keep, &m, err, sizeof(err)), 0);
	CU_ASSERT_EQUAL(m.port, f.port);
	CU_ASSERT_PTR_NOT_NULL(keep);
	/* the kept connection is asked again, without a new one */
	CU_ASSERT_EQUAL(sentinels_ask(s, 1, &keep, &m, err, sizeof(err)), 0);
	CU_ASSERT_EQUAL(atomic_load(&f.accepted), 1);
	sentinels_close(keep);
	sentinels_free(s);
	fake_stop(&f);
}

static void test_a_plain_redis_is_no_sentinel_but_a_master(void)
{
	int port = test_redis_port();
	char list[64], err[160];
	struct redis_opts o = { "unused", 1, "", 200, 200, 200, 0, 0, list, "fcgi_sse", NULL };
	struct sentinel_addr m;
	struct redisContext *keep = NULL;
	redisContext *ctx;
	struct sentinels *s;
	int none, replicas = -1;

	CU_ASSERT_FATAL(port > 0);
	snprintf(list, sizeof(list), "127.0.0.1:%d", port);
	CU_ASSERT_PTR_NOT_NULL_FATAL(s = sentinels_new(&o, &none));
	CU_ASSERT_EQUAL(sentinels_ask(s, 0, &keep, &m, err, sizeof(err)), -1);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "ERR")); /* unknown command */
	sentinels_free(s);
	/* and ROLE says it is a master */
	ctx = redisConnect("127.0.0.1", port);
	CU_ASSERT_FATAL(ctx != NULL && !ctx->err);
	CU_ASSERT_EQUAL(sentinel_is_master(ctx, &replicas), 1);
	CU_ASSERT_EQUAL(replicas, 0); /* the test's Redis has none */
	redisFree(ctx);
}

/* ------------------------------------------------------------ the client */

static struct redis *client_of(struct fake *f, char *list, size_t cap)
{
	struct redis_opts o = { "unused", 1, "", 200, 200, 5000, 0, 0, list, "fcgi_sse", NULL };

	snprintf(list, cap, "127.0.0.1:%d", f->port);
	return redis_new(&o);
}

static int get(struct redis *r)
{
	struct buf v = BUF_INIT;
	int rc = redis_get(r, "k", &v);

	buf_release(&v);
	return rc;
}

/* Waits for the monotonic clock's next millisecond: a failure recorded in
 * the same millisecond as the last success would not back off (redis.c
 * takes Redis as back since then). */
static void next_ms(void)
{
	long long t = clock_mono_ms();

	while (clock_mono_ms() == t)
		nanosleep(&(struct timespec){ 0, 100 * 1000L }, NULL);
}

static void test_readonly_drops_the_connection_and_asks_again(void)
{
	struct fake f;
	char list[64];
	struct redis *r;
	long long until;
	int rc = -1;

	CU_ASSERT_FATAL(fake_start(&f) == 0);
	atomic_store(&f.other, "$5\r\nhello\r\n");
	CU_ASSERT_PTR_NOT_NULL_FATAL(r = client_of(&f, list, sizeof(list)));
	CU_ASSERT_EQUAL(get(r), 1);
	CU_ASSERT_EQUAL(atomic_load(&f.accepted), 2); /* the sentinel, then the master */
	atomic_store(&f.other, "-READONLY You can't write against a read only replica.\r\n");
	next_ms();
	CU_ASSERT_EQUAL(get(r), -1);
	CU_ASSERT_EQUAL(strncmp(redis_errstr(r), "READONLY", 8), 0);
	/* dropped: the next call backs off rather than using it */
	atomic_store(&f.other, "$5\r\nhello\r\n");
	CU_ASSERT_EQUAL(get(r), -1);
	CU_ASSERT_EQUAL(atomic_load(&f.accepted), 2);
	/* after the backoff (50 ms and jitter): the sentinel, then the master */
	until = clock_mono_ms() + 2000;
	while (clock_mono_ms() < until && (rc = get(r)) != 1)
		nanosleep(&(struct timespec){ 0, 10 * 1000000L }, NULL);
	CU_ASSERT_EQUAL(rc, 1);
	CU_ASSERT_EQUAL(atomic_load(&f.accepted), 4);
	redis_free(r);
	fake_stop(&f);
}

static void test_a_server_that_is_no_master_is_not_used(void)
{
	struct fake f;
	char list[64];
	struct redis *r;

	CU_ASSERT_FATAL(fake_start(&f) == 0);
	atomic_store(&f.replica, 1);
	atomic_store(&f.other, "$5\r\nhello\r\n");
	CU_ASSERT_PTR_NOT_NULL_FATAL(r = client_of(&f, list, sizeof(list)));
	CU_ASSERT_EQUAL(get(r), -1);
	CU_ASSERT_PTR_NOT_NULL(strstr(redis_errstr(r), "ROLE"));
	redis_free(r);
	fake_stop(&f);
}

static void test_replicated_needs_a_replica_to_acknowledge(void)
{
	struct fake f;
	char list[64];
	struct redis *r, *plain;

	CU_ASSERT_FATAL(fake_start(&f) == 0);
	atomic_store(&f.other, "$5\r\nhello\r\n");
	CU_ASSERT_PTR_NOT_NULL_FATAL(r = client_of(&f, list, sizeof(list)));
	CU_ASSERT_EQUAL(redis_replicated(r), -1); /* no connection: no write to wait for */
	CU_ASSERT_EQUAL(get(r), 1);
	atomic_store(&f.acks, 1);
	CU_ASSERT_EQUAL(redis_replicated(r), 0);
	atomic_store(&f.acks, 0);
	CU_ASSERT_EQUAL(redis_replicated(r), -1);
	CU_ASSERT_PTR_NOT_NULL(strstr(redis_errstr(r), "WAIT"));
	/* the sentinels still name it: the connection stays */
	CU_ASSERT_EQUAL(get(r), 1);
	CU_ASSERT_EQUAL(atomic_load(&f.accepted), 3); /* + the sentinel asked after WAIT */
	redis_free(r);
	/* without sentinels there is nothing to wait for */
	CU_ASSERT_PTR_NOT_NULL_FATAL(plain = test_redis_client(f.port));
	CU_ASSERT_EQUAL(redis_replicated(plain), 0);
	redis_free(plain);
	fake_stop(&f);
}

static CU_TestInfo tests[] = {
	{ "the list of sentinels", test_parse_list },
	{ "an answer's address", test_addr_of_an_answer },
	{ "promote and rotate", test_promote_and_rotate },
	{ "no list, or a bad one", test_new_without_or_with_a_bad_list },
	{ "the first answer wins and goes first", test_the_first_answer_wins_and_goes_first },
	{ "one try at a time moves on", test_one_try_at_a_time_moves_on },
	{ "a plain redis is no sentinel", test_a_plain_redis_is_no_sentinel_but_a_master },
	{ "READONLY drops the connection and asks again", test_readonly_drops_the_connection_and_asks_again },
	{ "a server that is no master is not used", test_a_server_that_is_no_master_is_not_used },
	{ "replicated needs a replica to acknowledge", test_replicated_needs_a_replica_to_acknowledge },
	CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suite[] = {
	{ "sentinel", NULL, NULL, NULL, NULL, tests },
	CU_SUITE_INFO_NULL,
};

int register_sentinel_tests(void)
{
	return CU_register_suites(suite) == CUE_SUCCESS ? 0 : -1;
}
