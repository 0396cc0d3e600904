#include "jsonf.h"

#include <string.h>

int jsonf_str(struct json_object *o, const char *name, char *dst, size_t cap)
{
	struct json_object *v;
	const char *s;
	size_t n;

	if (!json_object_object_get_ex(o, name, &v) || !json_object_is_type(v, json_type_string))
		return -1;
	s = json_object_get_string(v);
	n = (size_t)json_object_get_string_len(v);
	if (n >= cap || strlen(s) != n)
		return -1;
	memcpy(dst, s, n + 1);
	return 0;
}

int jsonf_int(struct json_object *o, const char *name, long long *dst)
{
	struct json_object *v;

	if (!json_object_object_get_ex(o, name, &v) || !json_object_is_type(v, json_type_int))
		return -1;
	*dst = json_object_get_int64(v);
	return 0;
}
