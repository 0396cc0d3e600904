/* suites: one registration function per unit-test file.
 *
 * Each adds its suite and tests to the CUnit registry, which the caller has
 * initialised. Returns 0, or -1 when the registry refused (see
 * CU_get_error_msg()). */
#ifndef FCGI_SSE_TEST_SUITES_H
#define FCGI_SSE_TEST_SUITES_H

int register_buf_tests(void);
int register_errors_tests(void);
int register_timefmt_tests(void);
int register_config_tests(void);
int register_log_tests(void);
int register_reqid_tests(void);
int register_http_tests(void);
int register_router_tests(void);
int register_versioning_tests(void);
int register_sse_tests(void);
int register_auth_tests(void);
int register_session_tests(void);
int register_cache_tests(void);
int register_lifecycle_tests(void);
int register_b64_tests(void);
int register_jwt_tests(void);
int register_password_tests(void);
int register_store_tests(void);
int register_cookie_tests(void);
int register_cache_redis_tests(void);
int register_fcgi_record_tests(void);
int register_query_tests(void);
int register_hub_tests(void);
int register_bus_tests(void);
int register_redis_tests(void);
int register_busmsg_tests(void);
int register_writer_tests(void);
int register_ring_tests(void);
int register_stream_tests(void);
int register_devices_tests(void);
int register_jsonflat_tests(void);
int register_jsontext_tests(void);
int register_ratelimit_tests(void);
int register_counts_tests(void);
int register_breaker_tests(void);
int register_store_guard_tests(void);
int register_retry_tests(void);
int register_peerwatch_tests(void);
int register_sentinel_tests(void);

#endif
