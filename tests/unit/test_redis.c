/* The request-path Redis client (redis/redis.c) against a redis-server of
 * the test's own, started and stopped here on a free loopback port, so
 * that the outage and the return are real. */
#include <CUnit/CUnit.h>
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../../redis/redis.h"
#include "suites.h"

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

static int free_port(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	socklen_t len = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM, 0), port = 0;

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 &&
	    getsockname(fd, (struct sockaddr *)&a, &len) == 0)
		port = ntohs(a.sin_port);
	if (fd >= 0)
		close(fd);
	return port;
}

static int port_open(int port)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	int fd = socket(AF_INET, SOCK_STREAM, 0), ok;

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ok = fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
	if (fd >= 0)
		close(fd);
	return ok;
}

/* Starts redis-server on port and waits until it accepts; returns its pid
 * or -1. */
static pid_t start_redis(int port)
{
	char p[16];
	pid_t pid;

	snprintf(p, sizeof(p), "%d", port);
	if ((pid = fork()) == 0) {
		int null = open("/dev/null", O_WRONLY);
		if (null >= 0) {
			dup2(null, 1);
			dup2(null, 2);
		}
		execlp("redis-server", "redis-server", "--port", p, "--bind", "127.0.0.1", "--save", "",
		       "--appendonly", "no", "--dir", "/tmp", "--loglevel", "warning",
		       (char *)NULL);
		_exit(127);
	}
	for (int i = 0; pid > 0 && i < 200; i++) {
		if (port_open(port))
			return pid;
		sleep_ms(25);
	}
	if (pid > 0) {
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
	}
	return -1;
}

struct pinger {
	struct redis *r;
	int rc;
};

static void *ping_once(void *arg)
{
	struct pinger *p = arg;

	p->rc = redis_ping(p->r);
	return NULL;
}

/* A listener on port that hangs up on every connection, as a Redis going
 * down does; returns its fd or -1. */
static int hang_up_listener(int port)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0), one = 1;

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0)
		return -1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(fd, 16) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

/* Hangs up on the connections waiting; returns how many there were. */
static int hang_up(int lfd)
{
	int n = 0, fd;

	while ((fd = accept(lfd, NULL, NULL)) >= 0) {
		close(fd);
		n++;
	}
	return n;
}

/* One thread's attempts fail until its backoff is long (the 6th failed
 * attempt leaves 1,600 ms or more to wait); Redis comes back; another
 * thread (no backoff of its own) reaches it. The first thread's next call
 * must reach Redis too, at once, not fail for the rest of a backoff about
 * an outage that is over. The attempts are counted where they land, so
 * the test knows the backoff it set up without timing it. */
static void test_backoff_ends_once_another_thread_reached_redis(void)
{
	const int port = free_port();
	const struct redis_opts o = { "127.0.0.1", port, "", 200, 200, 10000, 0, 0, NULL, NULL, NULL };
	struct redis *r;
	struct pinger other;
	pthread_t t;
	pid_t pid;
	int lfd, attempts = 0, fails = 0;

	CU_ASSERT_FATAL(port > 0);
	lfd = hang_up_listener(port);
	CU_ASSERT_FATAL(lfd >= 0);
	r = redis_new(&o);
	CU_ASSERT_FATAL(r != NULL);
	/* backoff after each failed attempt: 50, 100, 200, 400, 800, 1600 ms
	 * (each + up to 25%); calls in between fail without an attempt */
	for (int i = 0; attempts < 6 && i < 2000; i++) {
		CU_ASSERT_EQUAL(redis_ping(r), -1);
		attempts += hang_up(lfd);
		sleep_ms(5);
	}
	CU_ASSERT_FATAL(attempts == 6);
	close(lfd);
	pid = start_redis(port);
	CU_ASSERT_FATAL(pid > 0);
	other.r = r;
	other.rc = -2;
	CU_ASSERT_FATAL(pthread_create(&t, NULL, ping_once, &other) == 0);
	pthread_join(t, NULL);
	CU_ASSERT_EQUAL(other.rc, 0);
	/* this thread: answered at once, every time */
	for (int i = 0; i < 5; i++)
		if (redis_ping(r) != 0)
			fails++;
	CU_ASSERT_EQUAL(fails, 0);
	CU_ASSERT_STRING_EQUAL(redis_errstr(r), "");
	redis_free(r);
	kill(pid, SIGTERM);
	waitpid(pid, NULL, 0);
}

/* Redis restarts while a thread's connection is idle: the thread's next
 * call must be answered by the new server, not fail on the connection the
 * old one closed. */
static void test_a_connection_closed_by_a_restart_is_replaced(void)
{
	const int port = free_port();
	const struct redis_opts o = { "127.0.0.1", port, "", 200, 200, 10000, 0, 0, NULL, NULL, NULL };
	struct redis *r;
	pid_t pid;

	CU_ASSERT_FATAL(port > 0);
	pid = start_redis(port);
	CU_ASSERT_FATAL(pid > 0);
	r = redis_new(&o);
	CU_ASSERT_FATAL(r != NULL);
	CU_ASSERT_EQUAL(redis_ping(r), 0);
	kill(pid, SIGTERM);
	waitpid(pid, NULL, 0);
	pid = start_redis(port);
	CU_ASSERT_FATAL(pid > 0);
	CU_ASSERT_EQUAL(redis_ping(r), 0);
	CU_ASSERT_STRING_EQUAL(redis_errstr(r), "");
	redis_free(r);
	kill(pid, SIGTERM);
	waitpid(pid, NULL, 0);
}

/* ------------------------------------------------------------ a fake peer */

/* A stand-in for Redis that treats each connection as its plan says, to
 * make the failures a real server makes only by accident: */
enum fake_step {
	FAKE_HANG_UP,   /* read a command, then close: a link lost mid-command */
	FAKE_ANSWER,    /* answer every command with the bulk string "hello" */
	FAKE_SILENT,    /* read a command and never answer: a timeout */
};

struct fake {
	int lfd;
	enum fake_step plan[4]; /* for the 1st, 2nd, ... connection; then FAKE_ANSWER */
	_Atomic int accepted;
	_Atomic int stop;
	pthread_t thread;
};

static void fake_serve(struct fake *f, int fd, enum fake_step step)
{
	char buf[4096];
	ssize_t n;

	while ((n = read(fd, buf, sizeof(buf))) > 0) {
		if (step == FAKE_HANG_UP)
			break;
		if (step == FAKE_ANSWER && write(fd, "$5\r\nhello\r\n", 11) != 11)
			break;
		if (atomic_load(&f->stop))
			break;
	}
	close(fd);
}

static void *fake_main(void *arg)
{
	struct fake *f = arg;

	while (!atomic_load(&f->stop)) {
		struct pollfd p = { f->lfd, POLLIN, 0 };
		int fd, k;

		if (poll(&p, 1, 20) <= 0 || (fd = accept(f->lfd, NULL, NULL)) < 0)
			continue;
		k = atomic_fetch_add(&f->accepted, 1);
		fcntl(fd, F_SETFL, 0);
		/* a silent peer is read until the client gives up and closes */
		fake_serve(f, fd, k < 4 ? f->plan[k] : FAKE_ANSWER);
	}
	return NULL;
}

static int fake_start(struct fake *f, int port)
{
	f->lfd = hang_up_listener(port);
	atomic_store(&f->accepted, 0);
	atomic_store(&f->stop, 0);
	return f->lfd >= 0 && pthread_create(&f->thread, NULL, fake_main, f) == 0 ? 0 : -1;
}

static void fake_stop(struct fake *f)
{
	atomic_store(&f->stop, 1);
	pthread_join(f->thread, NULL);
	close(f->lfd);
}

static int get_k(struct redis *r)
{
	struct buf v = BUF_INIT;
	int rc = redis_get(r, "k", &v);

	if (rc == 1 && (v.len != 5 || memcmp(v.data, "hello", 5) != 0))
		rc = -2; /* not the fake's answer */
	buf_release(&v);
	return rc;
}

static int script(struct redis *r)
{
	const char *argv[1] = { "x" };
	const size_t lens[1] = { 1 };
	struct buf v = BUF_INIT;
	int rc = redis_script(r, "0123456789012345678901234567890123456789", "return 1", 0, 1,
			      argv, lens, &v);

	buf_release(&v);
	return rc;
}

static int set_nx(struct redis *r)
{
	return redis_set(r, "k", "v", 1, 1000, 1);
}

/* Runs op once against a fake peer following plan (2 retries at most, a
 * command timeout of timeout_ms); returns op's result and sets *conns to
 * the connections the peer saw. */
static int against_fake(const enum fake_step plan[4], long long timeout_ms,
			int (*op)(struct redis *), int *conns)
{
	const int port = free_port();
	const struct redis_opts o = { "127.0.0.1", port, "", 200, timeout_ms, 10000, 2, 2, NULL, NULL, NULL };
	struct fake f = { .plan = { plan[0], plan[1], plan[2], plan[3] } };
	struct redis *r;
	int rc = -9;

	if (port <= 0 || fake_start(&f, port) != 0)
		return rc;
	if ((r = redis_new(&o)) != NULL) {
		rc = op(r);
		redis_free(r); /* closes what a silent peer is still reading */
	}
	fake_stop(&f);
	*conns = atomic_load(&f.accepted);
	return rc;
}

/* A GET whose link is lost mid-command is made again on a new connection
 * (resilience.retries): the caller gets the value, not a failure; at most
 * 2 retries: a third lost link is a failure. */
static void test_a_read_is_retried_after_a_lost_link_at_most_twice(void)
{
	const enum fake_step twice[4] = { FAKE_HANG_UP, FAKE_HANG_UP, FAKE_ANSWER, FAKE_ANSWER };
	const enum fake_step thrice[4] = { FAKE_HANG_UP, FAKE_HANG_UP, FAKE_HANG_UP, FAKE_ANSWER };
	int conns = 0;

	CU_ASSERT_EQUAL(against_fake(twice, 200, get_k, &conns), 1);
	CU_ASSERT_EQUAL(conns, 3);
	CU_ASSERT_EQUAL(against_fake(thrice, 200, get_k, &conns), -1);
	CU_ASSERT_EQUAL(conns, 3);
}

/* Neither a script (its writes may have run before the link was lost) nor
 * a SET NX (made again, it could find its own key) is retried. */
static void test_non_idempotent_commands_are_not_retried(void)
{
	const enum fake_step once[4] = { FAKE_HANG_UP, FAKE_ANSWER, FAKE_ANSWER, FAKE_ANSWER };
	int conns = 0;

	CU_ASSERT_EQUAL(against_fake(once, 200, script, &conns), -1);
	CU_ASSERT_EQUAL(conns, 1);
	CU_ASSERT_EQUAL(against_fake(once, 200, set_nx, &conns), -1);
	CU_ASSERT_EQUAL(conns, 1);
}

/* A command that timed out is not made again: its time is spent, and a
 * retry would double the wait of every request while Redis is slow. */
static void test_a_timeout_is_not_retried(void)
{
	const enum fake_step silent[4] = { FAKE_SILENT, FAKE_ANSWER, FAKE_ANSWER, FAKE_ANSWER };
	int conns = 0;

	CU_ASSERT_EQUAL(against_fake(silent, 50, get_k, &conns), -1);
	CU_ASSERT_EQUAL(conns, 1);
}

static CU_TestInfo tests[] = {
	{ "a connection closed by a restart is replaced", test_a_connection_closed_by_a_restart_is_replaced },
	{ "a backoff ends once another thread reached Redis", test_backoff_ends_once_another_thread_reached_redis },
	{ "a read is retried after a lost link, at most twice", test_a_read_is_retried_after_a_lost_link_at_most_twice },
	{ "non-idempotent commands are not retried", test_non_idempotent_commands_are_not_retried },
	{ "a timeout is not retried", test_a_timeout_is_not_retried },
	CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suite[] = {
	{ "redis", NULL, NULL, NULL, NULL, tests },
	CU_SUITE_INFO_NULL,
};

int register_redis_tests(void)
{
	return CU_register_suites(suite) == CUE_SUCCESS ? 0 : -1;
}
