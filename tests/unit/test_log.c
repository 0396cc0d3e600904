/* log: one JSON object per line, whatever the caller's fields hold. */
#include <CUnit/CUnit.h>
#include <json-c/json.h>
#include <string.h>
#include <unistd.h>

#include "../../core/log.h"
#include "suites.h"

static const struct timespec fixed = { 784111777, 123456789 };

static const char *get_str(struct json_object *o, const char *key)
{
	struct json_object *v;

	if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_string))
		return NULL;
	return json_object_get_string(v);
}

/* 1 if s is exactly one line: ends in "\n", has no other LF, no CR and no
 * other C0 control character (DEL and bytes >= 0x80 are fine in JSON). */
static int one_clean_line(const struct buf *b)
{
	if (b->len == 0 || b->data[b->len - 1] != '\n')
		return 0;
	for (size_t i = 0; i + 1 < b->len; i++)
		if ((unsigned char)b->data[i] < 0x20)
			return 0;
	return 1;
}

static void test_format_basic_line(void)
{
	struct buf out = BUF_INIT;
	struct json_object *fields = json_object_new_object(), *o, *v;

	json_object_object_add(fields, "request_id", json_object_new_string("abc"));
	json_object_object_add(fields, "status", json_object_new_int(200));
	CU_ASSERT_EQUAL_FATAL(log_format(&out, LOG_WARN, "request done", fields, &fixed), 0);
	CU_ASSERT(one_clean_line(&out));
	o = json_tokener_parse(buf_str(&out));
	CU_ASSERT_PTR_NOT_NULL_FATAL(o);
	CU_ASSERT(json_object_is_type(o, json_type_object));
	CU_ASSERT(get_str(o, "ts") && strcmp(get_str(o, "ts"), "1994-11-06T08:49:37.123Z") == 0);
	CU_ASSERT(get_str(o, "level") && strcmp(get_str(o, "level"), "warn") == 0);
	CU_ASSERT(get_str(o, "msg") && strcmp(get_str(o, "msg"), "request done") == 0);
	CU_ASSERT(get_str(o, "request_id") && strcmp(get_str(o, "request_id"), "abc") == 0);
	CU_ASSERT(json_object_object_get_ex(o, "status", &v) && json_object_get_int(v) == 200);
	CU_ASSERT_EQUAL(json_object_object_length(o), 5);
	/* ts, level and msg come first */
	CU_ASSERT_NSTRING_EQUAL(buf_str(&out), "{\"ts\":", 6);
	json_object_put(o);
	/* log_format leaves the caller's fields intact */
	CU_ASSERT(get_str(fields, "request_id") != NULL);
	json_object_put(fields);
	buf_release(&out);
}

static void test_format_without_fields_and_levels(void)
{
	static const char *const names[] = { "debug", "info", "warn", "error" };

	for (int lvl = LOG_DEBUG; lvl <= LOG_ERROR; lvl++) {
		struct buf out = BUF_INIT;
		struct json_object *o;

		CU_ASSERT_EQUAL(log_format(&out, lvl, "m", NULL, &fixed), 0);
		CU_ASSERT(one_clean_line(&out));
		o = json_tokener_parse(buf_str(&out));
		CU_ASSERT_PTR_NOT_NULL(o);
		if (o != NULL) {
			CU_ASSERT_EQUAL(json_object_object_length(o), 3);
			CU_ASSERT(get_str(o, "level") && strcmp(get_str(o, "level"), names[lvl]) == 0);
			json_object_put(o);
		}
		buf_release(&out);
	}
}

static void test_format_current_time(void)
{
	struct buf out = BUF_INIT;
	struct json_object *o;
	const char *ts;

	CU_ASSERT_EQUAL_FATAL(log_format(&out, LOG_INFO, "now", NULL, NULL), 0);
	o = json_tokener_parse(buf_str(&out));
	CU_ASSERT_PTR_NOT_NULL_FATAL(o);
	ts = get_str(o, "ts");
	CU_ASSERT(ts != NULL && strlen(ts) == 24 && ts[10] == 'T' && ts[23] == 'Z');
	json_object_put(o);
	buf_release(&out);
}

static void test_format_hostile_values_stay_on_one_line(void)
{
	static const char hostile[] =
		"line1\nline2\r\n{\"level\":\"error\"}\t\x01\x1b[31m\x7f \\ \" \xe2\x80\xa8 end";
	struct buf out = BUF_INIT;
	struct json_object *fields = json_object_new_object(), *o;

	json_object_object_add(fields, "path", json_object_new_string(hostile));
	json_object_object_add(fields, "ua\n\"key", json_object_new_string("v"));
	CU_ASSERT_EQUAL_FATAL(log_format(&out, LOG_INFO, hostile, fields, &fixed), 0);
	CU_ASSERT(one_clean_line(&out));
	o = json_tokener_parse(buf_str(&out));
	CU_ASSERT_PTR_NOT_NULL_FATAL(o);
	CU_ASSERT(get_str(o, "msg") && strcmp(get_str(o, "msg"), hostile) == 0);
	CU_ASSERT(get_str(o, "path") && strcmp(get_str(o, "path"), hostile) == 0);
	CU_ASSERT(get_str(o, "ua\n\"key") && strcmp(get_str(o, "ua\n\"key"), "v") == 0);
	CU_ASSERT(get_str(o, "level") && strcmp(get_str(o, "level"), "info") == 0);
	json_object_put(o);
	json_object_put(fields);
	buf_release(&out);
}

static void test_format_invalid_utf8_does_not_break_line(void)
{
	static const char bad[] = "\xff\xfe\xc3(\xed\xa0\x80\xf8\x88\x80\x80\x80\n\xc3";
	struct buf out = BUF_INIT;
	struct json_object *fields = json_object_new_object();

	json_object_object_add(fields, "raw", json_object_new_string(bad));
	CU_ASSERT_EQUAL(log_format(&out, LOG_ERROR, bad, fields, &fixed), 0);
	CU_ASSERT(one_clean_line(&out));
	json_object_put(fields);
	buf_release(&out);
}

static void test_enabled_threshold(void)
{
	struct logger lg = { LOG_WARN, 2 };

	CU_ASSERT_FALSE(log_enabled(&lg, LOG_DEBUG));
	CU_ASSERT_FALSE(log_enabled(&lg, LOG_INFO));
	CU_ASSERT_TRUE(log_enabled(&lg, LOG_WARN));
	CU_ASSERT_TRUE(log_enabled(&lg, LOG_ERROR));
	CU_ASSERT_FALSE(log_enabled(NULL, LOG_ERROR));
}

/* Reads what was written to the pipe (the writer end is closed). */
static void drain(int fd, struct buf *out)
{
	char chunk[4096];
	ssize_t n;

	while ((n = read(fd, chunk, sizeof(chunk))) > 0)
		buf_append(out, chunk, (size_t)n);
}

static void test_log_json_writes_one_line_and_takes_fields(void)
{
	int fds[2];
	struct logger lg = { LOG_INFO, -1 };
	struct buf got = BUF_INIT;
	struct json_object *f, *o;

	CU_ASSERT_EQUAL_FATAL(pipe(fds), 0);
	lg.fd = fds[1];
	f = json_object_new_object();
	json_object_object_add(f, "k", json_object_new_string("v"));
	log_json(&lg, LOG_ERROR, "written", f); /* f belongs to the call now */
	f = json_object_new_object();
	json_object_object_add(f, "k", json_object_new_string("dropped"));
	log_json(&lg, LOG_DEBUG, "filtered", f); /* freed although not written */
	log_text(&lg, LOG_WARN, "text", "a\nb");
	log_text(&lg, LOG_DEBUG, "filtered text", "x");
	close(fds[1]);
	drain(fds[0], &got);
	close(fds[0]);
	CU_ASSERT_PTR_NULL(strstr(buf_str(&got), "filtered"));
	CU_ASSERT_PTR_NULL(strstr(buf_str(&got), "dropped"));
	/* exactly two lines */
	CU_ASSERT_PTR_NOT_NULL_FATAL(strchr(buf_str(&got), '\n'));
	{
		const char *nl = strchr(buf_str(&got), '\n');
		struct buf first = BUF_INIT;

		CU_ASSERT_PTR_NOT_NULL(strchr(nl + 1, '\n'));
		CU_ASSERT_PTR_NULL(strchr(nl + 1, '\n') ? strchr(strchr(nl + 1, '\n') + 1, '\n') : NULL);
		buf_append(&first, buf_str(&got), (size_t)(nl - buf_str(&got)));
		o = json_tokener_parse(buf_str(&first));
		CU_ASSERT_PTR_NOT_NULL(o);
		if (o != NULL) {
			CU_ASSERT(get_str(o, "msg") && strcmp(get_str(o, "msg"), "written") == 0);
			CU_ASSERT(get_str(o, "level") && strcmp(get_str(o, "level"), "error") == 0);
			CU_ASSERT(get_str(o, "k") && strcmp(get_str(o, "k"), "v") == 0);
			json_object_put(o);
		}
		o = json_tokener_parse(nl + 1);
		CU_ASSERT_PTR_NOT_NULL(o);
		if (o != NULL) {
			CU_ASSERT(get_str(o, "msg") && strcmp(get_str(o, "msg"), "text") == 0);
			CU_ASSERT(get_str(o, "detail") && strcmp(get_str(o, "detail"), "a\nb") == 0);
			json_object_put(o);
		}
		buf_release(&first);
	}
	buf_release(&got);
}

static void test_format_caller_cannot_override_own_keys(void)
{
	struct buf out = BUF_INIT;
	struct json_object *fields = json_object_new_object(), *o;

	json_object_object_add(fields, "level", json_object_new_string("debug"));
	json_object_object_add(fields, "msg", json_object_new_string("spoofed"));
	json_object_object_add(fields, "ts", json_object_new_string("1970-01-01T00:00:00.000Z"));
	json_object_object_add(fields, "kept", json_object_new_int(7));
	CU_ASSERT_EQUAL_FATAL(log_format(&out, LOG_ERROR, "real", fields, &fixed), 0);
	o = json_tokener_parse(buf_str(&out));
	CU_ASSERT_PTR_NOT_NULL_FATAL(o);
	CU_ASSERT_STRING_EQUAL(get_str(o, "level"), "error");
	CU_ASSERT_STRING_EQUAL(get_str(o, "msg"), "real");
	CU_ASSERT_STRING_EQUAL(get_str(o, "ts"), "1994-11-06T08:49:37.123Z");
	CU_ASSERT_TRUE(json_object_object_get_ex(o, "kept", NULL));
	json_object_put(o);
	json_object_put(fields);
	buf_release(&out);
}

static CU_TestInfo tests[] = {
	{ "format: one line with ts, level, msg and fields", test_format_basic_line },
	{ "format: no fields, every level", test_format_without_fields_and_levels },
	{ "format: current time when now is NULL", test_format_current_time },
	{ "format: hostile values stay on one line", test_format_hostile_values_stay_on_one_line },
	{ "format: invalid UTF-8 does not break the line", test_format_invalid_utf8_does_not_break_line },
	{ "enabled follows the threshold", test_enabled_threshold },
	{ "format: fields cannot override ts, level or msg", test_format_caller_cannot_override_own_keys },
	{ "log_json/log_text write lines and free fields", test_log_json_writes_one_line_and_takes_fields },
	CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suite[] = {
	{ .pName = "log", .pTests = tests },
	CU_SUITE_INFO_NULL,
};

int register_log_tests(void)
{
	return CU_register_suites(suite) == CUE_SUCCESS ? 0 : -1;
}
