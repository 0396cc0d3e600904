#include "errors.h"

#include <json-c/json.h>
#include <stdio.h>
#include <string.h>

struct api_error_info {
	int status;
	const char *code;
	const char *title;
};

static const struct api_error_info api_errors[API_ERR__COUNT] = {
#define API_ERROR_ROW(name, status, code, title) { status, code, title },
	API_ERROR_MAP(API_ERROR_ROW)
#undef API_ERROR_ROW
};

static const struct api_error_info *api_error_info(enum api_error err)
{
	if ((unsigned)err >= API_ERR__COUNT)
		err = API_ERR_INTERNAL_ERROR;
	return &api_errors[err];
}

int api_error_status(enum api_error err)
{
	return api_error_info(err)->status;
}

const char *api_error_code(enum api_error err)
{
	return api_error_info(err)->code;
}

const char *api_error_title(enum api_error err)
{
	return api_error_info(err)->title;
}

int api_error_from_code(const char *code, enum api_error *out)
{
	for (int i = 0; i < API_ERR__COUNT; i++) {
		if (strcmp(api_errors[i].code, code) == 0) {
			*out = (enum api_error)i;
			return 0;
		}
	}
	return -1;
}

int api_error_render(enum api_error err, const char *detail,
		     const char *request_id, struct buf *out)
{
	const struct api_error_info *e = api_error_info(err);
	struct json_object *o = json_object_new_object();
	char type[128];
	int rc = -1;

	if (o == NULL)
		return -1;
	snprintf(type, sizeof(type), "%s%s", API_ERROR_TYPE_BASE, e->code);
	json_object_object_add(o, "type", json_object_new_string(type));
	json_object_object_add(o, "title", json_object_new_string(e->title));
	json_object_object_add(o, "status", json_object_new_int(e->status));
	json_object_object_add(o, "code", json_object_new_string(e->code));
	json_object_object_add(o, "detail",
			       json_object_new_string(detail ? detail : e->title));
	if (request_id != NULL)
		json_object_object_add(o, "request_id",
				       json_object_new_string(request_id));
	if (buf_puts(out, json_object_to_json_string_ext(
				  o, JSON_C_TO_STRING_PLAIN |
					     JSON_C_TO_STRING_NOSLASHESCAPE)) == 0)
		rc = 0;
	json_object_put(o);
	return rc;
}
