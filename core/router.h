/* router: matches a method and a path against a table of routes. Pure.
 *
 * Patterns are literal segments and "{name}" parameters ("/devices/{id}").
 * A parameter must match [A-Za-z0-9_-]{1,64} (API.md: anything else is
 * 400 request.invalid_id). The router never calls handlers; it says which
 * route matched, or why none did. */
#ifndef FCGI_SSE_ROUTER_H
#define FCGI_SSE_ROUTER_H

#include <stddef.h>

#include "http.h"

struct api_call; /* defined by the layer that owns the handlers */
typedef void route_handler_fn(struct api_call *call);

#define ROUTER_MAX_PARAMS 4

struct route {
	unsigned versions;    /* bit n set: served in API version n */
	unsigned methods;     /* HTTP_METHOD_BIT mask; GET also allows HEAD */
	const char *pattern;  /* path after the version prefix, e.g. "/health" */
	route_handler_fn *handler;
};

enum router_result {
	ROUTER_MATCH,
	ROUTER_NOT_FOUND,
	ROUTER_METHOD_NOT_ALLOWED, /* path exists; allowed methods in allow */
	ROUTER_INVALID_ID,         /* path shape exists but a parameter is bad */
};

struct route_param {
	const char *name; /* points into the pattern, not NUL-terminated */
	size_t name_len;
	const char *value; /* points into the path, not NUL-terminated */
	size_t value_len;
};

struct route_match {
	const struct route *route;
	unsigned allow; /* method mask of every route on this path */
	size_t nparams;
	struct route_param params[ROUTER_MAX_PARAMS];
};

/* Finds the route for (version, method, path) in routes[0..n). Returns the
 * result and fills *m (m->route only on ROUTER_MATCH). */
enum router_result router_match(const struct route *routes, size_t n, int version,
				enum http_method method, const char *path,
				struct route_match *m);

/* Writes the Allow header value for mask ("GET, HEAD, OPTIONS") to out. */
void router_allow_header(unsigned allow, struct buf *out);

#endif
