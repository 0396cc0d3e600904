/* Dispatch: version → sunset → route → method → limits → handler. */
#include <json-c/json.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "api.h"

static const struct route routes[] = {
#define ROUTE(versions, methods, pattern, handler) { versions, methods, pattern, handler },
#include "routes.def"
#undef ROUTE
};

#define NROUTES (sizeof(routes) / sizeof(routes[0]))

/* series[i]: the first route whose pattern reads as route i's (route_index) */
static int series[NROUTES];

static void series_init(void)
{
	for (size_t i = 0; i < NROUTES; i++) {
		size_t j = 0;

		while (strcmp(routes[j].pattern, routes[i].pattern) != 0)
			j++;
		series[i] = (int)j;
	}
}

void api_env_init(struct api_env *env, const struct config *cfg,
		  const struct logger *log, struct lifecycle *lc,
		  const struct build_info *build)
{
	series_init();
	memset(env, 0, sizeof(*env));
	env->cfg = cfg;
	env->log = log;
	env->lc = lc;
	env->build = *build;
	env->policy.v1_deprecation = cfg->v1_deprecation;
	env->policy.v1_sunset = cfg->v1_sunset;
	env->policy.v1_successor_url = cfg->v1_successor_url;
	env->policy.v1_deprecation_url = cfg->v1_deprecation_url;
}

void api_error(struct api_call *call, enum api_error err, const char *detail)
{
	struct http_response *resp = call->resp;

	api_metrics_error(err);
	resp->status = api_error_status(err);
	buf_reset(&resp->body);
	if (api_error_render(err, detail, call->req->request_id, &resp->body) < 0) {
		buf_reset(&resp->body);
		buf_puts(&resp->body, "{\"code\":\"internal.error\",\"status\":500}");
		resp->status = 500;
	}
	http_response_header(resp, "Content-Type", "application/problem+json");
	http_response_header(resp, "Cache-Control", "no-store");
}

void api_json(struct api_call *call, int status, struct json_object *body)
{
	const char *text = json_object_to_json_string_ext(
		body, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);

	if (text == NULL || http_response_json(call->resp, status, text) < 0 ||
	    call->resp->body.oom)
		api_error(call, API_ERR_INTERNAL_ERROR, NULL);
	else
		http_response_header(call->resp, "Cache-Control", "no-store");
	json_object_put(body);
}

static void allow_header(struct http_response *resp, unsigned allow)
{
	struct buf v = BUF_INIT;

	router_allow_header(allow, &v);
	http_response_header(resp, "Allow", buf_str(&v));
	buf_release(&v);
}

static void route_request(struct api_call *call, const char *rest)
{
	struct http_request *req = call->req;
	struct route_match m;
	enum router_result r;
	char detail[160];

	r = router_match(routes, sizeof(routes) / sizeof(routes[0]), call->version,
			 req->method, rest, &m);
	call->match = &m;
	switch (r) {
	case ROUTER_NOT_FOUND:
		api_error(call, API_ERR_ROUTE_NOT_FOUND, "No such route in this API version.");
		return;
	case ROUTER_INVALID_ID:
		api_error(call, API_ERR_REQUEST_INVALID_ID,
			  "Identifiers are 1 to 64 characters of A-Z, a-z, 0-9, '_' and '-'.");
		return;
	case ROUTER_METHOD_NOT_ALLOWED:
		allow_header(call->resp, m.allow);
		snprintf(detail, sizeof(detail), "%s is not allowed on this route.",
			 req->method == HTTP_OTHER ? "This method" : http_method_name(req->method));
		api_error(call, API_ERR_ROUTE_METHOD_NOT_ALLOWED, detail);
		return;
	case ROUTER_MATCH:
		break;
	}
	req->route = m.route->pattern;
	if (req->method == HTTP_OPTIONS) {
		allow_header(call->resp, m.allow);
		call->resp->status = 204;
		return;
	}
	call->resp->head_only = req->method == HTTP_HEAD;
	if (api_limit_route(call) < 0)
		return;
	m.route->handler(call);
}

/* Paths outside /api: only /metrics. */
static void outside_api(struct api_call *call)
{
	struct http_request *req = call->req;

	if (strcmp(req->path, "/metrics") != 0) {
		api_error(call, API_ERR_ROUTE_NOT_FOUND, "Only /api/... and /metrics are served here.");
		return;
	}
	req->route = "/metrics";
	if (req->method != HTTP_GET && req->method != HTTP_HEAD) {
		http_response_header(call->resp, "Allow", "GET, HEAD");
		api_error(call, API_ERR_ROUTE_METHOD_NOT_ALLOWED, "Only GET and HEAD are allowed here.");
		return;
	}
	api_metrics(call);
}

static void handle(struct api_env *env, struct http_request *req, struct http_response *resp)
{
	struct api_call call = { env, req, resp, 0, NULL };
	struct version_resolution vr;
	int sunset;

	switch (versioning_resolve(req->path, http_request_param(req, "HTTP_API_VERSION"), &vr)) {
	case VERSION_NOT_API:
		outside_api(&call);
		return;
	case VERSION_UNKNOWN:
		api_error(&call, API_ERR_API_UNKNOWN_VERSION,
			  "Supported API versions are 1 (deprecated) and 2.");
		return;
	case VERSION_OK:
		break;
	}
	call.version = req->api_version = vr.version;
	if (!vr.from_path)
		http_response_header(resp, "Vary", "API-Version");
	sunset = versioning_apply(&env->policy, vr.version, time(NULL), resp);
	if (sunset < 0) {
		api_error(&call, API_ERR_INTERNAL_ERROR, NULL);
		return;
	}
	if (sunset > 0) {
		api_error(&call, API_ERR_API_VERSION_SUNSET,
			  "API v1 has been retired; use v2 (see the Link header).");
		return;
	}
	if (req->content_length > env->cfg->max_body_bytes) {
		char detail[96];
		snprintf(detail, sizeof(detail), "The body may be at most %lld bytes.",
			 env->cfg->max_body_bytes);
		api_error(&call, API_ERR_REQUEST_TOO_LARGE, detail);
		return;
	}
	route_request(&call, vr.rest);
}


/* The route's series: the index in routes of the first route with this
 * pattern (found by the matched route's address), NROUTES for /metrics,
 * NROUTES + 1 for anything unrouted. GET and POST /devices are one series
 * by the text of their patterns, not by their addresses, which only a
 * compiler merging equal literals would make one. */
static int route_index(const char *pattern)
{
	if (pattern == NULL)
		return (int)NROUTES + 1;
	for (size_t i = 0; i < NROUTES; i++)
		if (routes[i].pattern == pattern)
			return series[i];
	return (int)NROUTES;
}

const char *api_route_name(int i)
{
	return i < (int)NROUTES ? routes[i].pattern : i == (int)NROUTES ? "/metrics" : "unrouted";
}

int api_route_count(void)
{
	return (int)NROUTES + 2;
}

/* The answer's counts and duration for /metrics. */
static void count_request(const struct http_request *req, const struct http_response *resp)
{
	struct timespec now;

	api_metrics_count(resp->status);
	clock_gettime(CLOCK_MONOTONIC, &now);
	api_metrics_request(route_index(req->route), req->api_version, resp->status,
			    (now.tv_sec - req->started.tv_sec) * 1000000LL +
				    (now.tv_nsec - req->started.tv_nsec) / 1000);
}

void api_handle(void *envp, struct http_request *req, struct http_response *resp)
{
	http_response_header(resp, "X-Request-Id", req->request_id);
	handle(envp, req, resp);
	/* compiled out only in bench/devices.sh PARTS=metrics's variant, to
	 * measure what this costs */
#ifndef FCGI_SSE_BENCH_NO_REQUEST_METRICS
	count_request(req, resp);
#else
	(void)count_request;
#endif
}
