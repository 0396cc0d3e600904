/* GET /api/{v1,v2}/version and GET /api/v2/version/stream. */
#include <json-c/json.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "../sse/sse.h"
#include "api.h"

static struct json_object *version_v2(const struct api_env *env)
{
	struct json_object *o = json_object_new_object();
	struct json_object *api = json_object_new_object();
	struct json_object *supported = json_object_new_array();
	struct json_object *v1 = json_object_new_object();
	struct json_object *deprecated = json_object_new_array();

	json_object_object_add(o, "service", json_object_new_string("fcgi_sse"));
	json_object_object_add(o, "version", json_object_new_string(env->build.version));
	json_object_object_add(o, "commit", json_object_new_string(env->build.commit));
	json_object_object_add(o, "built_at", api_json_time(env->build.built_at));
	json_object_array_add(supported, json_object_new_int(1));
	json_object_array_add(supported, json_object_new_int(2));
	json_object_object_add(v1, "version", json_object_new_int(1));
	json_object_object_add(v1, "deprecated_at", api_json_time(env->policy.v1_deprecation));
	json_object_object_add(v1, "sunset_at", api_json_time(env->policy.v1_sunset));
	json_object_array_add(deprecated, v1);
	json_object_object_add(api, "current", json_object_new_int(API_VERSION_CURRENT));
	json_object_object_add(api, "supported", supported);
	json_object_object_add(api, "deprecated", deprecated);
	json_object_object_add(o, "api", api);
	return o;
}

static struct json_object *version_v1(const struct api_env *env)
{
	struct json_object *o = json_object_new_object();

	json_object_object_add(o, "name", json_object_new_string("fcgi_sse"));
	json_object_object_add(o, "version", json_object_new_string(env->build.version));
	json_object_object_add(o, "api_version", json_object_new_int(1));
	json_object_object_add(o, "build_time", json_object_new_int64((int64_t)env->build.built_at));
	return o;
}

void api_version(struct api_call *call)
{
	api_json(call, 200, call->version == 1 ? version_v1(call->env) : version_v2(call->env));
}

void api_version_stream(struct api_call *call)
{
	struct json_object *info = version_v2(call->env);
	struct buf first = BUF_INIT;
	const char *text = json_object_to_json_string_ext(info, JSON_C_TO_STRING_PLAIN |
								       JSON_C_TO_STRING_NOSLASHESCAPE);

	sse_event(&first, NULL, "version_info", text, strlen(text));
	/* tenant "": this stream receives no published events, only heartbeats */
	if (first.oom)
		api_error(call, API_ERR_INTERNAL_ERROR, NULL);
	else
		api_stream_handoff(call, &(struct api_stream_owner){ "", NULL, NULL, 0 },
				   &(struct api_stream_filter){ NULL, NULL, NULL, NULL }, &first);
	buf_release(&first);
	json_object_put(info);
}
