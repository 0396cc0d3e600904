/* Target: the configuration file (core/config.c): arbitrary bytes loaded
 * as the JSON file over the defaults (config_load_file, read from a memfd
 * by its /proc path), or, when the input starts with "ENV\n", its lines
 * as FCGI_SSE_* environment entries (config_load_env). Then validate and
 * dump. Checked: an error always comes with a message; the dump is JSON
 * and shows every secret as "<redacted>" (or "" when unset); and a
 * string the file gives is taken whole, or refused, never cut short at a
 * \u0000. */
#include "fuzz.h"

#include <json-c/json.h>
#include <sys/mman.h>
#include <unistd.h>

#include "../core/config.h"

static const char *const secret_keys[][2] = {
	{ "security", "internal_secret" },
	{ "redis", "password" },
	{ "auth", "jwt_keys" },
};

static void check_dump(const struct config *cfg)
{
	struct buf out = BUF_INIT;
	struct json_object *d, *sec, *v;

	FUZZ_CHECK(config_dump(cfg, &out) == 0);
	d = json_tokener_parse(buf_str(&out));
	FUZZ_CHECK(d != NULL);
	for (size_t i = 0; i < sizeof(secret_keys) / sizeof(secret_keys[0]); i++) {
		const char *s;
		FUZZ_CHECK(json_object_object_get_ex(d, secret_keys[i][0], &sec));
		FUZZ_CHECK(json_object_object_get_ex(sec, secret_keys[i][1], &v));
		s = json_object_get_string(v);
		FUZZ_CHECK(strcmp(s, "<redacted>") == 0 || strcmp(s, "") == 0);
	}
	json_object_put(d);
	buf_release(&out);
}

/* Every string value of the file that was applied must be in the dump as
 * it is in the file (secrets aside). */
static void check_strings(const char *text, size_t n, const struct config *cfg)
{
	struct json_tokener *tok = json_tokener_new();
	struct json_object *root = json_tokener_parse_ex(tok, text, (int)n), *d;
	struct buf out = BUF_INIT;

	json_tokener_free(tok);
	if (root == NULL || !json_object_is_type(root, json_type_object)) {
		json_object_put(root);
		return;
	}
	config_dump(cfg, &out);
	d = json_tokener_parse(buf_str(&out));
	json_object_object_foreach(root, section, obj) {
		struct json_object *dsec;
		if (!json_object_is_type(obj, json_type_object) ||
		    !json_object_object_get_ex(d, section, &dsec))
			continue;
		json_object_object_foreach(obj, key, val) {
			struct json_object *dv;
			if (!json_object_is_type(val, json_type_string) ||
			    !json_object_object_get_ex(dsec, key, &dv) ||
			    !json_object_is_type(dv, json_type_string) ||
			    strcmp(json_object_get_string(dv), "<redacted>") == 0)
				continue;
			/* times are normalised, enums and plain strings are not */
			if (strcmp(section, "api") == 0 && strstr(key, "_url") == NULL)
				continue;
			FUZZ_CHECK(json_object_get_string_len(val) == json_object_get_string_len(dv));
			FUZZ_CHECK(memcmp(json_object_get_string(val), json_object_get_string(dv),
					  (size_t)json_object_get_string_len(val)) == 0);
		}
	}
	json_object_put(d);
	json_object_put(root);
	buf_release(&out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct config cfg;
	struct buf err = BUF_INIT;
	int rc;

	FUZZ_CHECK(config_init_defaults(&cfg) == 0);
	if (size >= 4 && memcmp(data, "ENV\n", 4) == 0) {
		struct fuzz_in in = { data + 4, size - 4 };
		char *env[65];
		int n = 0;
		while (in.n > 0 && n < 64)
			env[n++] = fuzz_field(&in, '\n');
		env[n] = NULL;
		rc = config_load_env(&cfg, env, &err);
		for (int i = 0; i < n; i++)
			free(env[i]);
	} else {
		int fd = memfd_create("config", 0);
		char path[64];
		FUZZ_CHECK(fd >= 0);
		FUZZ_CHECK(size == 0 || write(fd, data, size) == (ssize_t)size);
		snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
		rc = config_load_file(&cfg, path, &err);
		close(fd);
		if (rc == 0)
			check_strings((const char *)data, size, &cfg);
	}
	FUZZ_CHECK(rc == 0 || rc == -1);
	if (rc < 0)
		FUZZ_CHECK(err.len > 0);
	buf_reset(&err);
	if (config_validate(&cfg, &err) < 0)
		FUZZ_CHECK(err.len > 0);
	check_dump(&cfg);
	config_release(&cfg);
	buf_release(&err);
	return 0;
}
