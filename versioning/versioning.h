/* versioning: which API version a request addresses, and the headers that
 * version's responses carry (API.md §1). Pure. */
#ifndef FCGI_SSE_VERSIONING_H
#define FCGI_SSE_VERSIONING_H

#include <time.h>

#include "../core/http.h"

#define API_VERSION_CURRENT 2
#define API_VERSION_OLDEST 1

struct version_policy {
	time_t v1_deprecation;
	time_t v1_sunset;
	const char *v1_successor_url;
	const char *v1_deprecation_url;
};

enum version_result {
	VERSION_OK,
	VERSION_UNKNOWN, /* /api/v9/... or API-Version: 9 */
	VERSION_NOT_API, /* the path is not under /api */
};

struct version_resolution {
	int version;      /* 1 or 2 when VERSION_OK */
	const char *rest; /* path after the version prefix, "/..." (never "") */
	int from_path;    /* 1: /api/vN/..., 0: unversioned /api/... */
};

/* Resolves path ("/api/v1/x", "/api/x") and the API-Version request header
 * (NULL when absent). A version in the path wins over the header. On
 * VERSION_OK fills *out; rest points into path or at a static "/". */
enum version_result versioning_resolve(const char *path, const char *header,
				       struct version_resolution *out);

/* Adds the response headers of version (API-Version; for v1 also
 * Deprecation, Sunset and Link). Returns 1 if the version is past its
 * sunset at now (the caller answers 410 api.version_sunset), 0 if it is
 * served, -1 when memory ran out. */
int versioning_apply(const struct version_policy *p, int version, time_t now,
		     struct http_response *resp);

#endif
