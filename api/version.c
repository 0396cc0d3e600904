/* GET /api/{v1,v2}/version and GET /api/v2/version/stream. */
#include <json-c/json.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "../core/timefmt.h"
#include "../sse/sse.h"
#include "api.h"

static struct json_object *rfc3339(time_t t)
{
	char s[TIMEFMT_RFC3339_LEN + 1];

	return json_object_new_string(timefmt_rfc3339(t, s));
}

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
	json_object_object_add(o, "built_at", rfc3339(env->build.built_at));
	json_object_array_add(supported, json_object_new_int(1));
	json_object_array_add(supported, json_object_new_int(2));
	json_object_object_add(v1, "version", json_object_new_int(1));
	json_object_object_add(v1, "deprecated_at", rfc3339(env->policy.v1_deprecation));
	json_object_object_add(v1, "sunset_at", rfc3339(env->policy.v1_sunset));
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

/* Sends one event; returns 0, or -1 when the client is gone. */
static int send_event(struct api_call *call, struct buf *frame, const char *id,
		      const char *event, const char *data)
{
	buf_reset(frame);
	if (sse_event(frame, id, event, data, strlen(data)) < 0)
		return -1;
	return http_stream_write(call->resp, frame->data, frame->len);
}

static void stream_loop(struct api_call *call)
{
	struct api_env *env = call->env;
	struct buf frame = BUF_INIT;
	struct json_object *info = version_v2(env);
	char id[24];
	unsigned long long seq = 1;

	sse_retry(&frame, env->cfg->retry_ms);
	if (http_stream_write(call->resp, frame.data, frame.len) < 0)
		goto out;
	snprintf(id, sizeof(id), "%llu", seq++);
	if (send_event(call, &frame, id, "version_info",
		       json_object_to_json_string_ext(info, JSON_C_TO_STRING_PLAIN |
							     JSON_C_TO_STRING_NOSLASHESCAPE)) < 0)
		goto out;
	for (;;) {
		enum lifecycle_wake w = lifecycle_wait(env->lc, http_response_peer_fd(call->resp),
						       env->cfg->heartbeat_interval_ms);
		int stopping = w == LIFECYCLE_STOPPING;
		struct json_object *d;
		const char *name = stopping ? "shutdown" : "ping";
		int rc;

		if (w == LIFECYCLE_PEER_GONE) {
			call->resp->failed = 1;
			break;
		}
		d = json_object_new_object();
		json_object_object_add(d, "time", rfc3339(time(NULL)));
		if (stopping)
			json_object_object_add(d, "reason", json_object_new_string("server stopping; reconnect"));
		snprintf(id, sizeof(id), "%llu", seq++);
		rc = send_event(call, &frame, id, name,
				json_object_to_json_string_ext(d, JSON_C_TO_STRING_PLAIN |
								      JSON_C_TO_STRING_NOSLASHESCAPE));
		json_object_put(d);
		if (rc < 0 || stopping)
			break;
	}
out:
	json_object_put(info);
	buf_release(&frame);
}

void api_version_stream(struct api_call *call)
{
	struct api_env *env = call->env;
	struct http_response *resp = call->resp;

	if (lifecycle_stopping(env->lc)) {
		http_response_header(resp, "Retry-After", "5");
		api_error(call, API_ERR_SERVER_SHUTTING_DOWN, "The server is restarting; retry shortly.");
		return;
	}
	if (atomic_fetch_add(&env->streams_open, 1) >= env->cfg->max_streams) {
		atomic_fetch_sub(&env->streams_open, 1);
		http_response_header(resp, "Retry-After", "5");
		api_error(call, API_ERR_SERVER_BUSY, "Too many open streams in this process; retry shortly.");
		return;
	}
	resp->status = 200;
	http_response_header(resp, "Content-Type", "text/event-stream");
	http_response_header(resp, "Cache-Control", "no-cache, no-transform");
	http_response_header(resp, "X-Accel-Buffering", "no");
	if (http_stream_begin(resp) == 0 && !resp->head_only)
		stream_loop(call);
	atomic_fetch_sub(&env->streams_open, 1);
}
