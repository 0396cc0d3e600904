/* lifecycle: stop wakes waiters at once, a closed peer is noticed, and a
 * quiet wait times out. */
#include <CUnit/CUnit.h>
#include <pthread.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../../core/lifecycle.h"
#include "suites.h"

static void test_timeout_when_nothing_happens(void)
{
	struct lifecycle lc;

	CU_ASSERT_EQUAL_FATAL(lifecycle_init(&lc), 0);
	CU_ASSERT_EQUAL(lifecycle_stopping(&lc), 0);
	CU_ASSERT_EQUAL(lifecycle_wait(&lc, -1, 20), LIFECYCLE_TIMEOUT);
	lifecycle_free(&lc);
}

static void *stop_later(void *arg)
{
	usleep(20 * 1000);
	lifecycle_stop(arg);
	return NULL;
}

static void test_stop_wakes_a_waiter(void)
{
	struct lifecycle lc;
	pthread_t t;

	CU_ASSERT_EQUAL_FATAL(lifecycle_init(&lc), 0);
	CU_ASSERT_EQUAL_FATAL(pthread_create(&t, NULL, stop_later, &lc), 0);
	/* an hour-long wait must end with the stop, not the timer */
	CU_ASSERT_EQUAL(lifecycle_wait(&lc, -1, 3600 * 1000LL), LIFECYCLE_STOPPING);
	pthread_join(t, NULL);
	CU_ASSERT_EQUAL(lifecycle_stopping(&lc), 1);
	/* stopping stays readable for every later wait, and stop is idempotent */
	lifecycle_stop(&lc);
	CU_ASSERT_EQUAL(lifecycle_wait(&lc, -1, 3600 * 1000LL), LIFECYCLE_STOPPING);
	lifecycle_free(&lc);
}

static void test_peer_close_is_noticed(void)
{
	struct lifecycle lc;
	int sv[2];

	CU_ASSERT_EQUAL_FATAL(lifecycle_init(&lc), 0);
	CU_ASSERT_EQUAL_FATAL(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	CU_ASSERT_EQUAL(lifecycle_wait(&lc, sv[0], 20), LIFECYCLE_TIMEOUT);
	/* unread data from the peer is not a close */
	CU_ASSERT_EQUAL(write(sv[1], "x", 1), 1);
	CU_ASSERT_EQUAL(lifecycle_wait(&lc, sv[0], 20), LIFECYCLE_TIMEOUT);
	close(sv[1]);
	CU_ASSERT_EQUAL(lifecycle_wait(&lc, sv[0], 3600 * 1000LL), LIFECYCLE_PEER_GONE);
	/* stopping wins when both hold */
	lifecycle_stop(&lc);
	CU_ASSERT_EQUAL(lifecycle_wait(&lc, sv[0], 3600 * 1000LL), LIFECYCLE_STOPPING);
	close(sv[0]);
	lifecycle_free(&lc);
}

static CU_TestInfo tests[] = {
	{ "wait times out when nothing happens", test_timeout_when_nothing_happens },
	{ "stop wakes a waiter at once", test_stop_wakes_a_waiter },
	{ "a peer closing the connection is noticed", test_peer_close_is_noticed },
	CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suite[] = {
	{ "lifecycle", NULL, NULL, NULL, NULL, tests },
	CU_SUITE_INFO_NULL,
};

int register_lifecycle_tests(void)
{
	return CU_register_suites(suite) == CUE_SUCCESS ? 0 : -1;
}
