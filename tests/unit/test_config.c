/* config: defaults, the JSON file, the environment, cross-entry rules,
 * redaction of secrets and the generated reference table. */
#include <CUnit/CUnit.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../core/config.h"
#include "suites.h"

#define SECRET "s3cr3t-Hunter2-XYZZY-do-not-print"

static const char *const all_keys[] = {
	"server.listen", "server.workers", "server.backlog",
	"server.shutdown_timeout_ms", "http.max_body_bytes", "log.level",
	"api.v1_deprecation", "api.v1_sunset", "api.v1_successor_url",
	"api.v1_deprecation_url", "sse.heartbeat_interval_ms", "sse.retry_ms",
	"sse.max_streams", "security.internal_secret",
};

#define N_KEYS (sizeof(all_keys) / sizeof(all_keys[0]))

/* Writes text to a new temporary file; path holds at least 32 bytes.
 * Returns 0 or -1. */
static int write_temp(const char *text, char *path)
{
	size_t n = strlen(text);
	int fd;

	strcpy(path, "/tmp/fcgi_sse_cfg_XXXXXX");
	if ((fd = mkstemp(path)) < 0)
		return -1;
	if (write(fd, text, n) != (ssize_t)n) {
		close(fd);
		unlink(path);
		return -1;
	}
	close(fd);
	return 0;
}

/* Loads json as a config file over cfg; err gets the message. */
static int load_json(struct config *cfg, const char *json, struct buf *err)
{
	char path[64];
	int rc;

	if (write_temp(json, path) < 0) {
		CU_FAIL("cannot write a temporary file");
		return -2;
	}
	rc = config_load_file(cfg, path, err);
	unlink(path);
	return rc;
}

/* Loads json over fresh defaults and expects failure with a one-line message
 * containing each of want[] (NULL-terminated) and never the secret. */
static void expect_file_error(const char *json, const char *const *want)
{
	struct config cfg;
	struct buf err = BUF_INIT;

	CU_ASSERT_EQUAL_FATAL(config_init_defaults(&cfg), 0);
	CU_ASSERT_EQUAL(load_json(&cfg, json, &err), -1);
	CU_ASSERT(err.len > 0);
	CU_ASSERT_PTR_NULL(strchr(buf_str(&err), '\n'));
	CU_ASSERT_PTR_NULL(strstr(buf_str(&err), SECRET));
	for (; *want != NULL; want++) {
		int found = strstr(buf_str(&err), *want) != NULL;

		CU_ASSERT(found);
		if (!found)
			fprintf(stderr, "\n  \"%s\" not in \"%s\"\n", *want, buf_str(&err));
	}
	buf_release(&err);
	config_release(&cfg);
}

/* Applies envp over fresh defaults, expecting failure as above. */
static void expect_env_error(char *const *envp, const char *const *want)
{
	struct config cfg;
	struct buf err = BUF_INIT;

	CU_ASSERT_EQUAL_FATAL(config_init_defaults(&cfg), 0);
	CU_ASSERT_EQUAL(config_load_env(&cfg, envp, &err), -1);
	CU_ASSERT(err.len > 0);
	CU_ASSERT_PTR_NULL(strchr(buf_str(&err), '\n'));
	CU_ASSERT_PTR_NULL(strstr(buf_str(&err), SECRET));
	for (; *want != NULL; want++) {
		int found = strstr(buf_str(&err), *want) != NULL;

		CU_ASSERT(found);
		if (!found)
			fprintf(stderr, "\n  \"%s\" not in \"%s\"\n", *want, buf_str(&err));
	}
	buf_release(&err);
	config_release(&cfg);
}

/* Parses the dump of cfg; the caller puts the object. */
static struct json_object *dump_parsed(const struct config *cfg, struct buf *out)
{
	if (config_dump(cfg, out) != 0)
		return NULL;
	return json_tokener_parse(buf_str(out));
}

/* The dumped value of "section.key", or NULL. */
static struct json_object *dumped(struct json_object *root, const char *key)
{
	char section[64];
	const char *dot = strchr(key, '.');
	struct json_object *sec, *v;

	snprintf(section, sizeof(section), "%.*s", (int)(dot - key), key);
	if (!json_object_object_get_ex(root, section, &sec) ||
	    !json_object_object_get_ex(sec, dot + 1, &v))
		return NULL;
	return v;
}

static void test_defaults_are_valid(void)
{
	struct config cfg;
	struct buf err = BUF_INIT;

	CU_ASSERT_EQUAL_FATAL(config_init_defaults(&cfg), 0);
	CU_ASSERT_EQUAL(config_validate(&cfg, &err), 0);
	CU_ASSERT_EQUAL(err.len, 0);
	CU_ASSERT_PTR_NOT_NULL(cfg.listen);
	CU_ASSERT_PTR_NOT_NULL(cfg.internal_secret);
	CU_ASSERT_PTR_NOT_NULL(cfg.v1_successor_url);
	CU_ASSERT_PTR_NOT_NULL(cfg.v1_deprecation_url);
	if (cfg.listen != NULL)
		CU_ASSERT_STRING_EQUAL(cfg.listen, "");
	if (cfg.internal_secret != NULL)
		CU_ASSERT_STRING_EQUAL(cfg.internal_secret, "");
	CU_ASSERT(cfg.workers >= 1);
	CU_ASSERT(cfg.max_streams >= 1000); /* streams live in the hub, not in workers */
	CU_ASSERT(cfg.v1_sunset > cfg.v1_deprecation);
	CU_ASSERT_EQUAL(cfg.v1_deprecation, 1788220800); /* 2026-09-01T00:00:00Z */
	CU_ASSERT_EQUAL(cfg.v1_sunset, 1814313600);      /* 2027-06-30T00:00:00Z */
	CU_ASSERT_EQUAL(cfg.log_level, LOG_INFO);
	CU_ASSERT(cfg.max_body_bytes > 0);
	buf_release(&err);
	config_release(&cfg);
}

static void test_release_then_reuse(void)
{
	struct config cfg;

	CU_ASSERT_EQUAL_FATAL(config_init_defaults(&cfg), 0);
	config_release(&cfg);
	CU_ASSERT_PTR_NULL(cfg.listen);
	CU_ASSERT_PTR_NULL(cfg.internal_secret);
	CU_ASSERT_EQUAL_FATAL(config_init_defaults(&cfg), 0);
	CU_ASSERT_PTR_NOT_NULL(cfg.v1_successor_url);
	config_release(&cfg);
}

static void test_file_valid_overrides(void)
{
	struct config cfg;
	struct buf err = BUF_INIT;
	static const char json[] =
		"{\n"
		"  \"server\": { \"workers\": 16, \"listen\": \"127.0.0.1:9000\" },\n"
		"  \"http\": { \"max_body_bytes\": 0 },\n"
		"  \"log\": { \"level\": \"debug\" },\n"
		"  \"api\": { \"v1_sunset\": \"2028-01-01T00:00:00Z\",\n"
		"           \"v1_deprecation\": \"2027-01-01\",\n"
		"           \"v1_successor_url\": \"https://example.com/v2\" },\n"
		"  \"sse\": { \"max_streams\": 10, \"retry_ms\": 0 },\n"
		"  \"security\": { \"internal_secret\": \"" SECRET "\" }\n"
		"}\n";

	CU_ASSERT_EQUAL_FATAL(config_init_defaults(&cfg), 0);
	CU_ASSERT_EQUAL(load_json(&cfg, json, &err), 0);
	CU_ASSERT_EQUAL(err.len, 0);
	CU_ASSERT_EQUAL(cfg.workers, 16);
	CU_ASSERT_STRING_EQUAL(cfg.listen, "127.0.0.1:9000");
	CU_ASSERT_EQUAL(cfg.max_body_bytes, 0);
	CU_ASSERT_EQUAL(cfg.log_level, LOG_DEBUG);
	CU_ASSERT_EQUAL(cfg.v1_sunset, 1830297600);      /* 2028-01-01T00:00:00Z */
	CU_ASSERT_EQUAL(cfg.v1_deprecation, 1798761600); /* 2027-01-01T00:00:00Z */
	CU_ASSERT_STRING_EQUAL(cfg.v1_successor_url, "https://example.com/v2");
	CU_ASSERT_EQUAL(cfg.max_streams, 10);
	CU_ASSERT_EQUAL(cfg.retry_ms, 0);
	CU_ASSERT_STRING_EQUAL(cfg.internal_secret, SECRET);
	/* untouched entries keep their defaults */
	CU_ASSERT_EQUAL(cfg.backlog, 1024);
	CU_ASSERT_STRING_EQUAL(cfg.v1_deprecation_url,
			       "https://fcgi-sse.dev/docs/api/v1-deprecation");
	CU_ASSERT_EQUAL(config_validate(&cfg, &err), 0);
	buf_release(&err);
	config_release(&cfg);
}

static void test_file_empty_object(void)
{
	struct config cfg;
	struct buf err = BUF_INIT;

	CU_ASSERT_EQUAL_FATAL(config_init_defaults(&cfg), 0);
	CU_ASSERT_EQUAL(load_json(&cfg, "  {}  \n\n", &err), 0);
	CU_ASSERT_EQUAL(load_json(&cfg, "{\"server\": {}}", &err), 0);
	CU_ASSERT_EQUAL(err.len, 0);
	CU_ASSERT_EQUAL(cfg.workers, 8);
	buf_release(&err);
	config_release(&cfg);
}

static void test_file_unknown_section(void)
{
	const char *const want[] = { "unknown section", "\"sever\"", NULL };

	expect_file_error("{\"sever\": {\"workers\": 8}}", want);
}

static void test_file_unknown_key(void)
{
	const char *const want[] = { "unknown key", "server.wrkers", NULL };
	const char *const want2[] = { "security.internal_secrt", NULL };

	expect_file_error("{\"server\": {\"wrkers\": 8}}", want);
	/* a secret under a misspelt key is still never echoed */
	expect_file_error("{\"security\": {\"internal_secrt\": \"" SECRET "\"}}", want2);
}

static void test_file_wrong_types(void)
{
	const char *const str_for_int[] = { "server.workers", "expected an integer",
					    "a string", NULL };
	const char *const frac_for_int[] = { "server.workers", "expected an integer",
					     "fraction", NULL };
	const char *const num_for_str[] = { "server.listen", "expected a string",
					    "an integer", NULL };
	const char *const bool_for_int[] = { "sse.retry_ms", "boolean", NULL };
	const char *const null_for_enum[] = { "log.level", "null", NULL };
	const char *const num_for_time[] = { "api.v1_sunset", "RFC 3339", NULL };
	const char *const section_not_object[] = { "server", "object", NULL };
	const char *const top_array[] = { "object", NULL };
	const char *const secret_as_number[] = { "security.internal_secret",
						 "expected a string", NULL };

	expect_file_error("{\"server\": {\"workers\": \"8\"}}", str_for_int);
	expect_file_error("{\"server\": {\"workers\": 8.5}}", frac_for_int);
	expect_file_error("{\"server\": {\"workers\": 8.0}}", frac_for_int);
	expect_file_error("{\"server\": {\"listen\": 5}}", num_for_str);
	expect_file_error("{\"sse\": {\"retry_ms\": true}}", bool_for_int);
	expect_file_error("{\"log\": {\"level\": null}}", null_for_enum);
	expect_file_error("{\"api\": {\"v1_sunset\": 1814313600}}", num_for_time);
	expect_file_error("{\"server\": 5}", section_not_object);
	expect_file_error("[1, 2]", top_array);
	expect_file_error("{\"security\": {\"internal_secret\": 12345}}", secret_as_number);
}

static void test_file_bad_values(void)
{
	const char *const bad_time[] = { "api.v1_sunset", "2027-02-30", NULL };
	const char *const bad_enum[] = { "log.level", "verbose", "debug", "error", NULL };
	const char *const bad_url[] = { "api.v1_successor_url", NULL };
	const char *const bad_listen[] = { "server.listen", NULL };

	expect_file_error("{\"api\": {\"v1_sunset\": \"2027-02-30\"}}", bad_time);
	expect_file_error("{\"log\": {\"level\": \"verbose\"}}", bad_enum);
	expect_file_error("{\"api\": {\"v1_successor_url\": \"has space\"}}", bad_url);
	expect_file_error("{\"api\": {\"v1_successor_url\": \"\"}}", bad_url);
	expect_file_error("{\"api\": {\"v1_successor_url\": \"<x>\"}}", bad_url);
	expect_file_error("{\"server\": {\"listen\": \"not an address\"}}", bad_listen);
}

static void test_file_out_of_range(void)
{
	const char *const workers[] = { "server.workers", "1..256", NULL };
	const char *const body[] = { "http.max_body_bytes", "0..67108864", NULL };
	const char *const streams[] = { "sse.max_streams", "1..100000", NULL };

	expect_file_error("{\"server\": {\"workers\": 0}}", workers);
	expect_file_error("{\"server\": {\"workers\": 257}}", workers);
	expect_file_error("{\"server\": {\"workers\": -1}}", workers);
	expect_file_error("{\"server\": {\"workers\": 99999999999999999999}}", workers);
	expect_file_error("{\"server\": {\"workers\": -99999999999999999999}}", workers);
	expect_file_error("{\"http\": {\"max_body_bytes\": 67108865}}", body);
	expect_file_error("{\"sse\": {\"max_streams\": 100001}}", streams);
	expect_file_error("{\"sse\": {\"max_streams\": 0}}", streams);
}

/* Found by fuzz/config.c (seed fuzz/corpus/config/nul-in-string.json): a
 * value cut short at its \u0000 was taken silently. */
static void test_file_nul_in_string(void)
{
	const char *const listen[] = { "server.listen", "\\u0000", NULL };
	const char *const secret[] = { "redis.password", "\\u0000", NULL };

	expect_file_error("{\"server\": {\"listen\": \"unix:/tmp/a\\u0000b\"}}", listen);
	expect_file_error("{\"redis\": {\"password\": \"" SECRET "\\u0000x\"}}", secret);
}

static void test_file_long_secret_not_echoed(void)
{
	struct buf json = BUF_INIT;
	const char *const want[] = { "security.internal_secret", "1024", NULL };

	buf_puts(&json, "{\"security\": {\"internal_secret\": \"");
	for (int i = 0; i < 40; i++)
		buf_puts(&json, SECRET);
	buf_puts(&json, "\"}}");
	expect_file_error(buf_str(&json), want);
	buf_release(&json);
}

static void test_file_invalid_json(void)
{
	const char *const invalid[] = { "invalid JSON", NULL };
	const char *const trailing[] = { "invalid JSON", "trailing data", NULL };

	expect_file_error("", invalid);
	expect_file_error("{", invalid);
	expect_file_error("{\"server\": {\"workers\": 8}", invalid);
	expect_file_error("{\"server\": }", invalid);
	expect_file_error("{,}", invalid);
	expect_file_error("{\"security\": {\"internal_secret\": \"" SECRET "\",,}}", invalid);
	expect_file_error("{\"security\": {\"internal_secret\": \"" SECRET, invalid);
	expect_file_error("{} {}", trailing);
	expect_file_error("{}x", trailing);
	expect_file_error("{\"server\": {\"workers\": 8}}\n]", trailing);
}

static void test_file_missing(void)
{
	struct config cfg;
	struct buf err = BUF_INIT;
	const char *path = "/tmp/fcgi_sse_no_such_dir_4711/config.json";

	CU_ASSERT_EQUAL_FATAL(config_init_defaults(&cfg), 0);
	CU_ASSERT_EQUAL(config_load_file(&cfg, path, &err), -1);
	CU_ASSERT_PTR_NOT_NULL(strstr(buf_str(&err), path));
	CU_ASSERT_PTR_NULL(strchr(buf_str(&err), '\n'));
	CU_ASSERT_EQUAL(cfg.workers, 8);
	buf_release(&err);
	config_release(&cfg);
}

static void test_env_valid_override(void)
{
	struct config cfg;
	struct buf err = BUF_INIT;
	char *envp[] = {
		"PATH=/usr/bin:/bin",
		"FCGI_SSE_SERVER_WORKERS=12",
		"FCGI_SSE_LOG_LEVEL=warn",
		"FCGI_SSE_API_V1_SUNSET=2028-01-01T00:00:00Z",
		"FCGI_SSE_SERVER_LISTEN=unix:/tmp/fcgi_sse.sock",
		"FCGI_SSE_SSE_MAX_STREAMS=+3",
		"FCGI_SSE_SECURITY_INTERNAL_SECRET=" SECRET,
		NULL,
	};

	CU_ASSERT_EQUAL_FATAL(config_init_defaults(&cfg), 0);
	CU_ASSERT_EQUAL(config_load_env(&cfg, envp, &err), 0);
	CU_ASSERT_EQUAL(err.len, 0);
	CU_ASSERT_EQUAL(cfg.workers, 12);
	CU_ASSERT_EQUAL(cfg.log_level, LOG_WARN);
	CU_ASSERT_EQUAL(cfg.v1_sunset, 1830297600);
	CU_ASSERT_STRING_EQUAL(cfg.listen, "unix:/tmp/fcgi_sse.sock");
	CU_ASSERT_EQUAL(cfg.max_streams, 3);
	CU_ASSERT_STRING_EQUAL(cfg.internal_secret, SECRET);
	CU_ASSERT_EQUAL(cfg.backlog, 1024);
	buf_release(&err);
	config_release(&cfg);
}

static void test_env_overrides_file(void)
{
	struct config cfg;
	struct buf err = BUF_INIT;
	char *envp[] = { "FCGI_SSE_SERVER_WORKERS=12", NULL };

	CU_ASSERT_EQUAL_FATAL(config_init_defaults(&cfg), 0);
	CU_ASSERT_EQUAL(load_json(&cfg, "{\"server\": {\"workers\": 16, \"backlog\": 7}}", &err), 0);
	CU_ASSERT_EQUAL(config_load_env(&cfg, envp, &err), 0);
	CU_ASSERT_EQUAL(cfg.workers, 12);
	CU_ASSERT_EQUAL(cfg.backlog, 7);
	buf_release(&err);
	config_release(&cfg);
}

static void test_env_unknown_variable(void)
{
	char *envp[] = { "FCGI_SSE_SERVER_WRKERS=8", NULL };
	char *envp2[] = { "FCGI_SSE_SECURITY_SECRET=" SECRET, NULL };
	const char *const want[] = { "FCGI_SSE_SERVER_WRKERS", NULL };
	const char *const want2[] = { "FCGI_SSE_SECURITY_SECRET", NULL };

	expect_env_error(envp, want);
	expect_env_error(envp2, want2);
}

static void test_env_not_an_integer(void)
{
	static const char *const values[] = {
		"FCGI_SSE_SERVER_WORKERS=eight", "FCGI_SSE_SERVER_WORKERS=",
		"FCGI_SSE_SERVER_WORKERS=8x", "FCGI_SSE_SERVER_WORKERS= 8",
		"FCGI_SSE_SERVER_WORKERS=8 ", "FCGI_SSE_SERVER_WORKERS=8.0",
		"FCGI_SSE_SERVER_WORKERS=0x10",
		"FCGI_SSE_SERVER_WORKERS=99999999999999999999",
	};
	const char *const want[] = { "FCGI_SSE_SERVER_WORKERS", "server.workers",
				     "integer", NULL };

	for (size_t i = 0; i < sizeof(values) / sizeof(values[0]); i++) {
		char *envp[] = { (char *)values[i], NULL };

		expect_env_error(envp, want);
	}
}

static void test_env_out_of_range_and_bad_text(void)
{
	char *workers[] = { "FCGI_SSE_SERVER_WORKERS=0", NULL };
	char *level[] = { "FCGI_SSE_LOG_LEVEL=loud", NULL };
	char *sunset[] = { "FCGI_SSE_API_V1_SUNSET=tomorrow", NULL };
	const char *const want_workers[] = { "server.workers", "1..256", NULL };
	const char *const want_level[] = { "log.level", "loud", NULL };
	const char *const want_sunset[] = { "api.v1_sunset", NULL };

	expect_env_error(workers, want_workers);
	expect_env_error(level, want_level);
	expect_env_error(sunset, want_sunset);
}

static void test_env_long_secret_not_echoed(void)
{
	struct buf var = BUF_INIT;
	const char *const want[] = { "security.internal_secret", NULL };

	buf_puts(&var, "FCGI_SSE_SECURITY_INTERNAL_SECRET=");
	for (int i = 0; i < 40; i++)
		buf_puts(&var, SECRET);
	{
		char *envp[] = { var.data, NULL };

		expect_env_error(envp, want);
	}
	buf_release(&var);
}

static void test_env_ignores_config_and_foreign_variables(void)
{
	struct config cfg, ref;
	struct buf err = BUF_INIT, a = BUF_INIT, b = BUF_INIT;
	char *envp[] = {
		"FCGI_SSE_CONFIG=/nonexistent/config.json",
		"PATH=/usr/bin",
		"HOME=/root",
		"FCGI_SSEX_SERVER_WORKERS=1",
		"fcgi_sse_server_workers=1",
		"XFCGI_SSE_SERVER_WORKERS=1",
		"SERVER_WORKERS=1",
		NULL,
	};

	CU_ASSERT_EQUAL_FATAL(config_init_defaults(&cfg), 0);
	CU_ASSERT_EQUAL_FATAL(config_init_defaults(&ref), 0);
	CU_ASSERT_EQUAL(config_load_env(&cfg, envp, &err), 0);
	CU_ASSERT_EQUAL(err.len, 0);
	CU_ASSERT_EQUAL(config_load_env(&cfg, NULL, &err), 0);
	config_dump(&cfg, &a);
	config_dump(&ref, &b);
	CU_ASSERT_STRING_EQUAL(buf_str(&a), buf_str(&b));
	CU_ASSERT_EQUAL(cfg.workers, 8);
	buf_release(&err);
	buf_release(&a);
	buf_release(&b);
	config_release(&cfg);
	config_release(&ref);
}

static void test_dump_redacts_secret(void)
{
	struct config cfg;
	struct buf err = BUF_INIT, out = BUF_INIT;
	char *envp[] = { "FCGI_SSE_SECURITY_INTERNAL_SECRET=" SECRET, NULL };
	struct json_object *root, *v;

	CU_ASSERT_EQUAL_FATAL(config_init_defaults(&cfg), 0);
	CU_ASSERT_EQUAL_FATAL(config_load_env(&cfg, envp, &err), 0);
	root = dump_parsed(&cfg, &out);
	CU_ASSERT_PTR_NULL(strstr(buf_str(&out), SECRET));
	CU_ASSERT_PTR_NULL(strstr(buf_str(&out), "Hunter2"));
	CU_ASSERT_PTR_NOT_NULL(strstr(buf_str(&out), "<redacted>"));
	CU_ASSERT_PTR_NOT_NULL_FATAL(root);
	v = dumped(root, "security.internal_secret");
	CU_ASSERT_PTR_NOT_NULL(v);
	if (v != NULL)
		CU_ASSERT_STRING_EQUAL(json_object_get_string(v), "<redacted>");
	json_object_put(root);
	/* a later failure does not print it either */
	cfg.v1_sunset = cfg.v1_deprecation;
	buf_reset(&err);
	CU_ASSERT_EQUAL(config_validate(&cfg, &err), -1);
	CU_ASSERT_PTR_NULL(strstr(buf_str(&err), SECRET));
	buf_release(&err);
	buf_release(&out);
	config_release(&cfg);
}

static void test_dump_unset_secret_is_empty(void)
{
	struct config cfg;
	struct buf out = BUF_INIT;
	struct json_object *root, *v;

	CU_ASSERT_EQUAL_FATAL(config_init_defaults(&cfg), 0);
	root = dump_parsed(&cfg, &out);
	CU_ASSERT_PTR_NOT_NULL_FATAL(root);
	v = dumped(root, "security.internal_secret");
	CU_ASSERT_PTR_NOT_NULL(v);
	if (v != NULL)
		CU_ASSERT_STRING_EQUAL(json_object_get_string(v), "");
	json_object_put(root);
	buf_release(&out);
	config_release(&cfg);
}

static void test_dump_has_every_key_with_effective_values(void)
{
	struct config cfg;
	struct buf out = BUF_INIT;
	struct json_object *root, *v;

	CU_ASSERT_EQUAL_FATAL(config_init_defaults(&cfg), 0);
	cfg.workers = 33;
	root = dump_parsed(&cfg, &out);
	CU_ASSERT_PTR_NOT_NULL_FATAL(root);
	for (size_t i = 0; i < N_KEYS; i++)
		CU_ASSERT_PTR_NOT_NULL(dumped(root, all_keys[i]));
	v = dumped(root, "server.workers");
	CU_ASSERT(v != NULL && json_object_get_int64(v) == 33);
	v = dumped(root, "api.v1_sunset");
	CU_ASSERT(v != NULL && strcmp(json_object_get_string(v), "2027-06-30T00:00:00Z") == 0);
	v = dumped(root, "log.level");
	CU_ASSERT(v != NULL && strcmp(json_object_get_string(v), "info") == 0);
	json_object_put(root);
	buf_release(&out);
	config_release(&cfg);
}

static void test_validate_sunset_after_deprecation(void)
{
	struct config cfg;
	struct buf err = BUF_INIT;

	CU_ASSERT_EQUAL_FATAL(config_init_defaults(&cfg), 0);
	cfg.v1_sunset = cfg.v1_deprecation;
	CU_ASSERT_EQUAL(config_validate(&cfg, &err), -1);
	CU_ASSERT_PTR_NOT_NULL(strstr(buf_str(&err), "api.v1_sunset"));
	buf_reset(&err);
	cfg.v1_sunset = cfg.v1_deprecation - 1;
	CU_ASSERT_EQUAL(config_validate(&cfg, &err), -1);
	buf_reset(&err);
	cfg.v1_sunset = cfg.v1_deprecation + 1;
	CU_ASSERT_EQUAL(config_validate(&cfg, &err), 0);
	buf_release(&err);
	config_release(&cfg);
}

static void test_validate_from_file(void)
{
	struct config cfg;
	struct buf err = BUF_INIT;

	CU_ASSERT_EQUAL_FATAL(config_init_defaults(&cfg), 0);
	CU_ASSERT_EQUAL(load_json(&cfg, "{\"api\": {\"v1_sunset\": \"2026-01-01\"}}", &err), 0);
	CU_ASSERT_EQUAL(config_validate(&cfg, &err), -1);
	buf_release(&err);
	config_release(&cfg);
}

static void test_describe_mentions_every_key(void)
{
	struct buf out = BUF_INIT;
	char want[128], env[128];

	CU_ASSERT_EQUAL_FATAL(config_describe(&out), 0);
	for (size_t i = 0; i < N_KEYS; i++) {
		size_t n;

		snprintf(want, sizeof(want), "`%s`", all_keys[i]);
		CU_ASSERT_PTR_NOT_NULL(strstr(buf_str(&out), want));
		n = (size_t)snprintf(env, sizeof(env), "`FCGI_SSE_");
		for (const char *p = all_keys[i]; *p && n + 2 < sizeof(env); p++)
			env[n++] = *p == '.' ? '_' : (char)(*p >= 'a' && *p <= 'z' ? *p - 32 : *p);
		env[n++] = '`';
		env[n] = '\0';
		CU_ASSERT_PTR_NOT_NULL(strstr(buf_str(&out), env));
	}
	CU_ASSERT_PTR_NOT_NULL(strstr(buf_str(&out), "1..256"));
	CU_ASSERT_PTR_NULL(strstr(buf_str(&out), SECRET));
	buf_release(&out);
}

static void test_log_level_names(void)
{
	CU_ASSERT_STRING_EQUAL(config_log_level_name(LOG_DEBUG), "debug");
	CU_ASSERT_STRING_EQUAL(config_log_level_name(LOG_INFO), "info");
	CU_ASSERT_STRING_EQUAL(config_log_level_name(LOG_WARN), "warn");
	CU_ASSERT_STRING_EQUAL(config_log_level_name(LOG_ERROR), "error");
	CU_ASSERT_PTR_NOT_NULL(config_log_level_name(99));
	CU_ASSERT_PTR_NOT_NULL(config_log_level_name(-1));
}

static CU_TestInfo tests[] = {
	{ "defaults are valid", test_defaults_are_valid },
	{ "release then reuse", test_release_then_reuse },
	{ "file: valid overrides", test_file_valid_overrides },
	{ "file: empty object and whitespace", test_file_empty_object },
	{ "file: unknown section", test_file_unknown_section },
	{ "file: unknown key names server.wrkers", test_file_unknown_key },
	{ "file: wrong types", test_file_wrong_types },
	{ "file: bad time, enum, url, listen values", test_file_bad_values },
	{ "file: out of range names the range", test_file_out_of_range },
	{ "file: a string holding \\u0000 is refused", test_file_nul_in_string },
	{ "file: long secret is not echoed", test_file_long_secret_not_echoed },
	{ "file: invalid JSON and trailing data", test_file_invalid_json },
	{ "file: missing file", test_file_missing },
	{ "env: valid override", test_env_valid_override },
	{ "env: overrides the file", test_env_overrides_file },
	{ "env: unknown FCGI_SSE_ variable", test_env_unknown_variable },
	{ "env: not an integer", test_env_not_an_integer },
	{ "env: out of range and bad text", test_env_out_of_range_and_bad_text },
	{ "env: long secret is not echoed", test_env_long_secret_not_echoed },
	{ "env: FCGI_SSE_CONFIG and foreign variables ignored", test_env_ignores_config_and_foreign_variables },
	{ "dump redacts the secret", test_dump_redacts_secret },
	{ "dump of an unset secret is empty", test_dump_unset_secret_is_empty },
	{ "dump has every key with effective values", test_dump_has_every_key_with_effective_values },
	{ "validate: sunset after deprecation", test_validate_sunset_after_deprecation },
	{ "validate: sunset before deprecation from a file", test_validate_from_file },
	{ "describe mentions every key and variable", test_describe_mentions_every_key },
	{ "log level names", test_log_level_names },
	CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suite[] = {
	{ .pName = "config", .pTests = tests },
	CU_SUITE_INFO_NULL,
};

int register_config_tests(void)
{
	return CU_register_suites(suite) == CUE_SUCCESS ? 0 : -1;
}
