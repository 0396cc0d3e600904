/* The unit-test runner: registers every suite, runs them verbosely and
 * takes the exit status from the number of failed assertions. */
#include <CUnit/Basic.h>
#include <signal.h>
#include <stdio.h>

#include "suites.h"

static int (*const registrars[])(void) = {
	register_buf_tests,     register_errors_tests,  register_timefmt_tests,
	register_config_tests,  register_log_tests,     register_reqid_tests,
	register_http_tests,    register_router_tests,  register_versioning_tests,
	register_sse_tests,     register_auth_tests,    register_session_tests,
	register_cache_tests,
	register_lifecycle_tests,
	register_b64_tests,     register_jwt_tests,     register_password_tests,
	register_store_tests,   register_cookie_tests,  register_cache_redis_tests,
	register_fcgi_record_tests, register_query_tests, register_hub_tests,
	register_bus_tests,
	register_redis_tests,
	register_busmsg_tests,
	register_writer_tests,
	register_ring_tests,
	register_stream_tests,
	register_devices_tests,
	register_jsonflat_tests,
	register_jsontext_tests,
	register_ratelimit_tests,
	register_counts_tests,
	register_breaker_tests,
	register_store_guard_tests,
	register_retry_tests,
	register_peerwatch_tests,
	register_sentinel_tests,
};

int main(void)
{
	unsigned failures, suites_failed;
	int run_error;

	/* as in the server: a peer that is gone is a write error (the Redis
	 * tests kill connections; hiredis writes with write(2)) */
	signal(SIGPIPE, SIG_IGN);
	if (CU_initialize_registry() != CUE_SUCCESS) {
		fprintf(stderr, "unit tests: cannot initialise CUnit: %s\n", CU_get_error_msg());
		return 1;
	}
	for (size_t i = 0; i < sizeof(registrars) / sizeof(registrars[0]); i++) {
		if (registrars[i]() < 0) {
			fprintf(stderr, "unit tests: registration failed: %s\n",
				CU_get_error_msg());
			CU_cleanup_registry();
			return 1;
		}
	}
	CU_basic_set_mode(CU_BRM_VERBOSE);
	run_error = CU_basic_run_tests() != CUE_SUCCESS;
	/* The run's result, not CU_basic_run_tests(), decides the exit status. */
	failures = CU_get_number_of_failures();
	suites_failed = CU_get_number_of_suites_failed();
	if (run_error)
		fprintf(stderr, "unit tests: CUnit error: %s\n", CU_get_error_msg());
	CU_cleanup_registry();
	return failures != 0 || suites_failed != 0 || run_error ? 1 : 0;
}
