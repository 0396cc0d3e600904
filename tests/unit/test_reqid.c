/* reqid: sanity of client ids and generated ids. */
#include <CUnit/CUnit.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../../core/reqid.h"
#include "suites.h"

static void test_sane_ids(void)
{
	char max[65];

	memset(max, 'a', 64);
	max[64] = '\0';
	CU_ASSERT_TRUE(reqid_is_sane("a"));
	CU_ASSERT_TRUE(reqid_is_sane("abc-123"));
	CU_ASSERT_TRUE(reqid_is_sane("ABC.def_ghi:jkl-0123456789"));
	CU_ASSERT_TRUE(reqid_is_sane("0f8fad5b-d9cb-469f-a165-70867728950e"));
	CU_ASSERT_TRUE(reqid_is_sane(max));
}

static void test_insane_ids(void)
{
	static const char *const bad[] = {
		"", " ", "a b", "a\r\nX-Injected: 1", "a\n", "\ta", "a/b", "a%20b",
		"a\"b", "a,b", "a;b", "<script>", "\xc3\xa9", "a\x7f", "a+b", "a=b",
	};
	char long_id[66];

	memset(long_id, 'a', 65);
	long_id[65] = '\0';
	CU_ASSERT_FALSE(reqid_is_sane(NULL));
	CU_ASSERT_FALSE(reqid_is_sane(long_id));
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		CU_ASSERT_FALSE(reqid_is_sane(bad[i]));
}

static int is_lower_hex(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return 0;
	return 1;
}

static void test_generate_shape(void)
{
	char out[REQID_GENERATED_LEN + 2];

	memset(out, 'X', sizeof(out));
	CU_ASSERT_EQUAL_FATAL(reqid_generate(out), 0);
	CU_ASSERT_EQUAL(out[REQID_GENERATED_LEN], '\0');
	CU_ASSERT_EQUAL(out[REQID_GENERATED_LEN + 1], 'X'); /* no write past the end */
	CU_ASSERT_EQUAL(strlen(out), REQID_GENERATED_LEN);
	CU_ASSERT(is_lower_hex(out, REQID_GENERATED_LEN));
	CU_ASSERT_TRUE(reqid_is_sane(out));
}

static void test_generate_distinct(void)
{
	enum { N = 200 };
	static char ids[N][REQID_GENERATED_LEN + 1];
	int dup = 0, all_ok = 1;

	for (int i = 0; i < N; i++)
		if (reqid_generate(ids[i]) != 0 || !is_lower_hex(ids[i], REQID_GENERATED_LEN))
			all_ok = 0;
	for (int i = 0; i < N; i++)
		for (int j = i + 1; j < N; j++)
			if (strcmp(ids[i], ids[j]) == 0)
				dup = 1;
	CU_ASSERT(all_ok);
	CU_ASSERT_FALSE(dup);
}

/* Threads draw from generators of their own: their ids must not meet
 * (nor repeat within one), and a forked child must not repeat its
 * parent's sequence. */
enum { PER_THREAD = 2000, THREADS = 4 };
static char thread_ids[THREADS * PER_THREAD + 2][REQID_GENERATED_LEN + 1];

static void *draw(void *arg)
{
	char (*ids)[REQID_GENERATED_LEN + 1] = arg;

	for (int i = 0; i < PER_THREAD; i++)
		if (reqid_generate(ids[i]) != 0)
			ids[i][0] = '\0';
	return NULL;
}

static int cmp_id(const void *a, const void *b)
{
	return strcmp(a, b);
}

static void test_generate_distinct_across_threads_and_fork(void)
{
	pthread_t t[THREADS];
	int fds[2], status, dup = 0;
	const size_t n = THREADS * PER_THREAD + 2;
	pid_t pid;

	for (int i = 0; i < THREADS; i++)
		CU_ASSERT_FATAL(pthread_create(&t[i], NULL, draw, thread_ids[i * PER_THREAD]) == 0);
	for (int i = 0; i < THREADS; i++)
		pthread_join(t[i], NULL);
	/* this thread draws one id, forks, and both draw the next */
	CU_ASSERT_EQUAL_FATAL(reqid_generate(thread_ids[n - 2]), 0);
	CU_ASSERT_FATAL(pipe(fds) == 0);
	pid = fork();
	CU_ASSERT_FATAL(pid >= 0);
	if (pid == 0) {
		char id[REQID_GENERATED_LEN + 1];
		_exit(reqid_generate(id) == 0 &&
			      write(fds[1], id, sizeof(id)) == (ssize_t)sizeof(id) ? 0 : 1);
	}
	CU_ASSERT_EQUAL(read(fds[0], thread_ids[n - 1], REQID_GENERATED_LEN + 1),
			REQID_GENERATED_LEN + 1);
	CU_ASSERT_EQUAL(waitpid(pid, &status, 0), pid);
	CU_ASSERT(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	close(fds[0]);
	close(fds[1]);
	{
		char next[REQID_GENERATED_LEN + 1];
		CU_ASSERT_EQUAL(reqid_generate(next), 0);
		CU_ASSERT_STRING_NOT_EQUAL(next, thread_ids[n - 1]); /* the parent's next one */
	}
	qsort(thread_ids, n, sizeof(thread_ids[0]), cmp_id);
	for (size_t i = 0; i < n; i++) {
		CU_ASSERT(is_lower_hex(thread_ids[i], REQID_GENERATED_LEN));
		if (i > 0 && strcmp(thread_ids[i - 1], thread_ids[i]) == 0)
			dup = 1;
	}
	CU_ASSERT_FALSE(dup);
}

static CU_TestInfo tests[] = {
	{ "sane ids", test_sane_ids },
	{ "insane ids", test_insane_ids },
	{ "generated id: 32 lowercase hex", test_generate_shape },
	{ "generated ids are distinct", test_generate_distinct },
	{ "generated ids: distinct across threads and a fork", test_generate_distinct_across_threads_and_fork },
	CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suite[] = {
	{ .pName = "reqid", .pTests = tests },
	CU_SUITE_INFO_NULL,
};

int register_reqid_tests(void)
{
	return CU_register_suites(suite) == CUE_SUCCESS ? 0 : -1;
}
