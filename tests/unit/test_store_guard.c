/* store.c's guard (store_set_guard) over a fake backend: which calls are
 * retried and how often, what the breakers of reads and writes let
 * through, and the statement timeout handed to the backend. The guard
 * against a real SQLite file is in test_store.c. */
#include <CUnit/CUnit.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "../../core/log.h"
#include "../../protect/breaker.h"
#include "../../store/backend.h"
#include "../../store/store.h"
#include "suites.h"

struct fake {
	int reads, writes; /* calls that reached the backend */
	int fail;          /* the next `fail` calls fail */
	int transient;     /* ... and their failures are transient */
	long long timeout; /* as the last begin() gave it */
	char err[160];
};

static struct fake fk;

static const char *fk_errstr(void *impl)
{
	return ((struct fake *)impl)->err;
}

static void fk_set_error(void *impl, const char *msg)
{
	snprintf(((struct fake *)impl)->err, sizeof(fk.err), "%s", msg);
}

static void fk_begin(void *impl, long long timeout_ms)
{
	struct fake *f = impl;

	f->timeout = timeout_ms;
	f->err[0] = '\0';
}

static int fk_transient(void *impl)
{
	return ((struct fake *)impl)->transient;
}

static int outcome(struct fake *f)
{
	if (f->fail > 0) {
		f->fail--;
		fk_set_error(f, "fake: failed");
		return STORE_ERROR;
	}
	return STORE_OK;
}

static int fk_tenant_by_id(void *impl, const char *id, struct store_tenant *out)
{
	struct fake *f = impl;

	f->reads++;
	snprintf(out->id, sizeof(out->id), "%s", id);
	return outcome(f);
}

static int fk_tenant_create(void *impl, const struct store_tenant *t)
{
	struct fake *f = impl;

	(void)t;
	f->writes++;
	return outcome(f);
}

static int fk_user_list(void *impl, const char *tenant_id, store_user_fn *fn, void *ctx)
{
	struct fake *f = impl;

	(void)tenant_id, (void)fn, (void)ctx;
	f->reads++;
	return outcome(f);
}

static const struct store_ops fake_ops = {
	.name = "fake",
	.errstr = fk_errstr,
	.set_error = fk_set_error,
	.begin = fk_begin,
	.transient = fk_transient,
	.tenant_create = fk_tenant_create,
	.tenant_by_id = fk_tenant_by_id,
	.user_list = fk_user_list,
};

static int no_user(void *ctx, const struct store_user *u)
{
	(void)ctx, (void)u;
	return 0;
}

/* A fake store with the guard g (breakers as given, 2 retries, 1 ms). */
static struct store fake_store(struct breaker *reads, struct breaker *writes)
{
	struct store s = { .ops = &fake_ops, .impl = &fk };
	const struct store_guard g = { reads, writes, 2, 1, 750 };

	memset(&fk, 0, sizeof(fk));
	store_set_guard(&s, &g);
	return s;
}

static void test_a_read_is_retried_after_transient_failures(void)
{
	struct store s = fake_store(NULL, NULL);
	struct store_tenant t;

	fk.fail = 2;
	fk.transient = 1;
	CU_ASSERT_EQUAL(store_tenant_by_id(&s, "t1", &t), STORE_OK);
	CU_ASSERT_EQUAL(fk.reads, 3);
	CU_ASSERT_STRING_EQUAL(t.id, "t1");
	CU_ASSERT_EQUAL(fk.timeout, 750); /* each attempt gets the statement timeout */
}

static void test_retries_are_bounded_and_need_a_transient_failure(void)
{
	struct store s = fake_store(NULL, NULL);
	struct store_tenant t;

	fk.fail = 3;
	fk.transient = 1;
	CU_ASSERT_EQUAL(store_tenant_by_id(&s, "t1", &t), STORE_ERROR);
	CU_ASSERT_EQUAL(fk.reads, 3);
	fk = (struct fake){ .fail = 1, .transient = 0 };
	CU_ASSERT_EQUAL(store_tenant_by_id(&s, "t1", &t), STORE_ERROR);
	CU_ASSERT_EQUAL(fk.reads, 1);
	CU_ASSERT_STRING_EQUAL(store_errstr(&s), "fake: failed");
}

/* A write may have half-happened from the caller's view; a list's
 * callback may have passed rows on already: neither is made again. */
static void test_writes_and_lists_are_never_retried(void)
{
	struct store s = fake_store(NULL, NULL);
	struct store_tenant t;

	fk.fail = 1;
	fk.transient = 1;
	CU_ASSERT_EQUAL(store_tenant_create(&s, "acme", 1, &t), STORE_ERROR);
	CU_ASSERT_EQUAL(fk.writes, 1);
	fk.fail = 1;
	CU_ASSERT_EQUAL(store_user_list(&s, "t1", no_user, NULL), STORE_ERROR);
	CU_ASSERT_EQUAL(fk.reads, 1);
}

/* Failing writes open the writes' breaker: further writes fail at once
 * without reaching the backend, while reads, behind their own breaker, go
 * on. After the open time a trial write that succeeds closes it. */
static void test_the_writes_breaker_opens_without_stopping_reads(void)
{
	const struct breaker_opts o = { 3, 60000, 60000, 1 };
	struct breaker *rb = breaker_new(&o), *wb = breaker_new(&o);
	struct store s = fake_store(rb, wb);
	struct store_tenant t;

	CU_ASSERT_FATAL(rb != NULL && wb != NULL);
	fk.fail = 3;
	for (int i = 0; i < 3; i++)
		CU_ASSERT_EQUAL(store_tenant_create(&s, "acme", 1, &t), STORE_ERROR);
	CU_ASSERT_EQUAL(fk.writes, 3);
	CU_ASSERT_EQUAL(store_tenant_create(&s, "acme", 1, &t), STORE_ERROR);
	CU_ASSERT_EQUAL(fk.writes, 3);
	CU_ASSERT(strstr(store_errstr(&s), "circuit breaker open") != NULL);
	CU_ASSERT_EQUAL(store_tenant_by_id(&s, "t1", &t), STORE_OK);
	CU_ASSERT_EQUAL(fk.reads, 1);
	CU_ASSERT_EQUAL(breaker_opened(wb), 1);
	CU_ASSERT_EQUAL(breaker_opened(rb), 0);
	breaker_free(rb);
	breaker_free(wb);
}

/* A read breaker's failures count every failed attempt, retries too. */
static void test_retried_attempts_count_for_the_breaker(void)
{
	const struct breaker_opts o = { 3, 60000, 60000, 1 };
	struct breaker *rb = breaker_new(&o);
	struct store s = fake_store(rb, NULL);
	struct store_tenant t;

	CU_ASSERT_FATAL(rb != NULL);
	fk.fail = 3;
	fk.transient = 1;
	CU_ASSERT_EQUAL(store_tenant_by_id(&s, "t1", &t), STORE_ERROR);
	CU_ASSERT_EQUAL(fk.reads, 3);
	CU_ASSERT_EQUAL(breaker_opened(rb), 1);
	CU_ASSERT_EQUAL(store_tenant_by_id(&s, "t1", &t), STORE_ERROR);
	CU_ASSERT_EQUAL(fk.reads, 3);
	breaker_free(rb);
}

/* ------------------------------------------------ the failure log */

/* A logger writing into a pipe, and what it wrote. */
struct capture {
	int fd[2];
	struct logger lg;
	char text[8192];
};

static int capture_start(struct capture *c)
{
	memset(c, 0, sizeof(*c));
	if (pipe(c->fd) != 0)
		return -1;
	fcntl(c->fd[0], F_SETFL, O_NONBLOCK);
	c->lg = (struct logger){ LOG_INFO, c->fd[1] };
	return 0;
}

/* The lines written since the last call (they replace c->text). */
static const char *capture_take(struct capture *c)
{
	ssize_t n = read(c->fd[0], c->text, sizeof(c->text) - 1);

	c->text[n > 0 ? n : 0] = '\0';
	return c->text;
}

static void capture_stop(struct capture *c)
{
	close(c->fd[0]);
	close(c->fd[1]);
}

static int count_of(const char *hay, const char *needle)
{
	int n = 0;

	for (const char *p = hay; (p = strstr(p, needle)) != NULL; p += strlen(needle))
		n++;
	return n;
}

/* Field key of the JSON line o as text ("" when absent). */
static const char *str_of(struct json_object *o, const char *key)
{
	struct json_object *v;

	return json_object_object_get_ex(o, key, &v) ? json_object_get_string(v) : "";
}

/* Field key of o as an integer (-1 when absent or not one). */
static long long int_of(struct json_object *o, const char *key)
{
	struct json_object *v;

	return json_object_object_get_ex(o, key, &v) && json_object_is_type(v, json_type_int)
		       ? json_object_get_int64(v) : -1;
}

/* The one line the capture holds, parsed (NULL unless exactly one). */
static struct json_object *one_line(struct capture *c)
{
	const char *text = capture_take(c);

	return count_of(text, "\n") == 1 ? json_tokener_parse(text) : NULL;
}

/* A failing call is one warning line with the call, the backend's error
 * and how many lines were left out before it. Within every_ms further
 * failures of the kind are only counted (every_ms of an hour: no time in
 * this test is near it); with every_ms 0 the next one is written, carrying
 * that count. Reads and writes are counted apart. */
static void test_failures_are_logged_rate_limited_with_a_count(void)
{
	struct store s = fake_store(NULL, NULL);
	struct store_tenant t;
	struct capture c;
	struct json_object *o;

	CU_ASSERT_FATAL(capture_start(&c) == 0);
	store_set_log(&s, &c.lg, 3600 * 1000);
	fk.fail = 1;
	CU_ASSERT_EQUAL(store_tenant_create(&s, "acme", 1, &t), STORE_ERROR);
	o = one_line(&c);
	CU_ASSERT_PTR_NOT_NULL_FATAL(o);
	CU_ASSERT_STRING_EQUAL(str_of(o, "level"), "warn");
	CU_ASSERT_STRING_EQUAL(str_of(o, "msg"), "store_write_failed");
	CU_ASSERT_STRING_EQUAL(str_of(o, "call"), "store_tenant_create");
	CU_ASSERT_STRING_EQUAL(str_of(o, "error"), "fake: failed");
	CU_ASSERT_EQUAL(int_of(o, "suppressed"), 0);
	json_object_put(o);

	fk.fail = 3;
	for (int i = 0; i < 3; i++)
		CU_ASSERT_EQUAL(store_tenant_create(&s, "acme", 1, &t), STORE_ERROR);
	CU_ASSERT_STRING_EQUAL(capture_take(&c), "");
	/* a read failure is another kind: written though writes are held back */
	fk.fail = 1;
	CU_ASSERT_EQUAL(store_user_list(&s, "t1", no_user, NULL), STORE_ERROR);
	o = one_line(&c);
	CU_ASSERT_PTR_NOT_NULL_FATAL(o);
	CU_ASSERT_STRING_EQUAL(str_of(o, "msg"), "store_read_failed");
	CU_ASSERT_STRING_EQUAL(str_of(o, "call"), "store_user_list");
	CU_ASSERT_EQUAL(int_of(o, "suppressed"), 0);
	json_object_put(o);

	store_set_log(&s, &c.lg, 0);
	fk.fail = 1;
	CU_ASSERT_EQUAL(store_tenant_create(&s, "acme", 1, &t), STORE_ERROR);
	o = one_line(&c);
	CU_ASSERT_PTR_NOT_NULL_FATAL(o);
	CU_ASSERT_STRING_EQUAL(str_of(o, "msg"), "store_write_failed");
	CU_ASSERT_EQUAL(int_of(o, "suppressed"), 3);
	json_object_put(o);
	capture_stop(&c);
}

/* Only failures of the backend are logged: not a read that succeeded on
 * its retry, not a bad argument, not a call an open breaker refused. */
static void test_only_backend_failures_are_logged(void)
{
	const struct breaker_opts o = { 1, 60000, 60000, 1 };
	struct breaker *wb = breaker_new(&o);
	struct store s = fake_store(NULL, wb);
	struct store_tenant t;
	struct capture c;

	CU_ASSERT_FATAL(wb != NULL && capture_start(&c) == 0);
	store_set_log(&s, &c.lg, 0);
	fk.fail = 2;
	fk.transient = 1;
	CU_ASSERT_EQUAL(store_tenant_by_id(&s, "t1", &t), STORE_OK);
	CU_ASSERT_EQUAL(store_tenant_create(&s, "no spaces", 1, &t), STORE_ERROR);
	CU_ASSERT_STRING_EQUAL(capture_take(&c), "");
	fk.fail = 1;
	CU_ASSERT_EQUAL(store_tenant_create(&s, "acme", 1, &t), STORE_ERROR); /* opens wb */
	CU_ASSERT_EQUAL(count_of(capture_take(&c), "store_write_failed"), 1);
	CU_ASSERT_EQUAL(store_tenant_create(&s, "acme", 1, &t), STORE_ERROR);
	CU_ASSERT(strstr(store_errstr(&s), "circuit breaker open") != NULL);
	CU_ASSERT_STRING_EQUAL(capture_take(&c), "");
	/* without a logger nothing is written, and nothing breaks */
	store_set_log(&s, NULL, 0);
	fk.fail = 1;
	fk.transient = 0;
	CU_ASSERT_EQUAL(store_tenant_by_id(&s, "t1", &t), STORE_ERROR);
	CU_ASSERT_STRING_EQUAL(capture_take(&c), "");
	/* a backend that cannot tell whether it can write: writable */
	CU_ASSERT_EQUAL(store_writable(&s), 1);
	capture_stop(&c);
	breaker_free(wb);
}

static CU_TestInfo tests[] = {
	{ "a read is retried after transient failures", test_a_read_is_retried_after_transient_failures },
	{ "retries are bounded and need a transient failure", test_retries_are_bounded_and_need_a_transient_failure },
	{ "writes and lists are never retried", test_writes_and_lists_are_never_retried },
	{ "the writes' breaker opens without stopping reads", test_the_writes_breaker_opens_without_stopping_reads },
	{ "retried attempts count for the breaker", test_retried_attempts_count_for_the_breaker },
	{ "failures are logged, rate-limited, with a count", test_failures_are_logged_rate_limited_with_a_count },
	{ "only the backend's failures are logged", test_only_backend_failures_are_logged },
	CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suite[] = {
	{ "store guard", NULL, NULL, NULL, NULL, tests },
	CU_SUITE_INFO_NULL,
};

int register_store_guard_tests(void)
{
	return CU_register_suites(suite) == CUE_SUCCESS ? 0 : -1;
}
