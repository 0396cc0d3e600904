#include "log.h"

#include <json-c/json.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "timefmt.h"

int log_enabled(const struct logger *lg, int level)
{
	return lg != NULL && level >= lg->level;
}

int log_format(struct buf *out, int level, const char *msg,
	       struct json_object *fields, const struct timespec *now)
{
	char ts[TIMEFMT_RFC3339_MS_LEN + 1];
	struct json_object *line = json_object_new_object();
	struct timespec t;

	if (line == NULL)
		return -1;
	if (now == NULL) {
		clock_gettime(CLOCK_REALTIME, &t);
		now = &t;
	}
	json_object_object_add(line, "ts", json_object_new_string(timefmt_rfc3339_ms(now, ts)));
	json_object_object_add(line, "level",
			       json_object_new_string(config_log_level_name(level)));
	json_object_object_add(line, "msg", json_object_new_string(msg));
	if (fields != NULL) {
		json_object_object_foreach(fields, k, v) {
			/* the line's own keys cannot be overridden (no spoofed level) */
			if (strcmp(k, "ts") == 0 || strcmp(k, "level") == 0 || strcmp(k, "msg") == 0)
				continue;
			json_object_object_add(line, k, json_object_get(v));
		}
	}
	buf_puts(out, json_object_to_json_string_ext(
			      line, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
	buf_puts(out, "\n");
	json_object_put(line);
	return out->oom ? -1 : 0;
}

void log_json(const struct logger *lg, int level, const char *msg,
	      struct json_object *fields)
{
	struct buf line = BUF_INIT;

	if (log_enabled(lg, level) && log_format(&line, level, msg, fields, NULL) == 0)
		buf_write_all(&line, lg->fd); /* one write: lines from threads do not mix */
	buf_release(&line);
	if (fields != NULL)
		json_object_put(fields);
}

void log_text(const struct logger *lg, int level, const char *msg, const char *text)
{
	struct json_object *f;

	if (!log_enabled(lg, level))
		return;
	f = json_object_new_object();
	json_object_object_add(f, "detail", json_object_new_string(text));
	log_json(lg, level, msg, f);
}
