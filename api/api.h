/* api: the HTTP API of API.md: dispatch (version, route, method, limits)
 * and the handlers. Everything a handler needs comes in through api_env,
 * built once by the composition root. */
#ifndef FCGI_SSE_API_H
#define FCGI_SSE_API_H

#include <stdatomic.h>

#include "../core/config.h"
#include "../core/errors.h"
#include "../core/http.h"
#include "../core/lifecycle.h"
#include "../core/log.h"
#include "../core/router.h"
#include "../versioning/versioning.h"

struct build_info {
	const char *version; /* "0.1.0" */
	const char *commit;  /* short git hash or "unknown" */
	time_t built_at;
};

struct api_env {
	const struct config *cfg;
	const struct logger *log;
	struct lifecycle *lc;
	struct version_policy policy;
	struct build_info build;
	atomic_int streams_open;
};

/* One request on its way through a handler. */
struct api_call {
	struct api_env *env;
	struct http_request *req;
	struct http_response *resp;
	int version;
	const struct route_match *match;
};

/* Initialises env from cfg; the pointers must outlive env. */
void api_env_init(struct api_env *env, const struct config *cfg,
		  const struct logger *log, struct lifecycle *lc,
		  const struct build_info *build);

/* The server handler: dispatches one request (server_handler_fn). */
void api_handle(void *env, struct http_request *req, struct http_response *resp);

/* Turns resp into the problem+json response for err. detail may be NULL. */
void api_error(struct api_call *call, enum api_error err, const char *detail);

/* Sets a 200 JSON body from a json-c object and frees the object. */
struct json_object;
void api_json(struct api_call *call, int status, struct json_object *body);

/* Handlers (api/health.c, api/version.c). */
route_handler_fn api_health;
route_handler_fn api_version;
route_handler_fn api_version_stream;

#endif
