/* errors: the API error map of API.md §2, in one place.
 *
 * Each entry: enum name, HTTP status, stable code string, title. Codes are a
 * public contract: add entries, never rename or reuse one. */
#ifndef FCGI_SSE_ERRORS_H
#define FCGI_SSE_ERRORS_H

#include "buf.h"

#define API_ERROR_MAP(X)                                                       \
	X(REQUEST_MALFORMED_JSON, 400, "request.malformed_json", "Malformed JSON body") \
	X(REQUEST_INVALID_FIELD, 400, "request.invalid_field", "Invalid field")  \
	X(REQUEST_INVALID_ID, 400, "request.invalid_id", "Invalid identifier")   \
	X(REQUEST_INVALID_QUERY, 400, "request.invalid_query", "Invalid query parameter") \
	X(AUTH_MISSING_TOKEN, 401, "auth.missing_token", "Missing bearer token") \
	X(AUTH_INVALID_TOKEN, 401, "auth.invalid_token", "Invalid token")        \
	X(AUTH_TOKEN_EXPIRED, 401, "auth.token_expired", "Token expired")        \
	X(AUTH_SESSION_REVOKED, 401, "auth.session_revoked", "Session revoked")  \
	X(AUTH_FINGERPRINT_MISMATCH, 401, "auth.fingerprint_mismatch", "Fingerprint mismatch") \
	X(AUTH_INVALID_CREDENTIALS, 401, "auth.invalid_credentials", "Invalid credentials") \
	X(EVENTS_INVALID_SESSION, 401, "events.invalid_session", "Invalid stream session") \
	X(AUTH_FORBIDDEN, 403, "auth.forbidden", "Forbidden")                    \
	X(INTERNAL_FORBIDDEN, 403, "internal.forbidden", "Forbidden")            \
	X(RESOURCE_NOT_FOUND, 404, "resource.not_found", "Resource not found")   \
	X(API_UNKNOWN_VERSION, 404, "api.unknown_version", "Unknown API version") \
	X(ROUTE_NOT_FOUND, 404, "route.not_found", "Route not found")            \
	X(ROUTE_METHOD_NOT_ALLOWED, 405, "route.method_not_allowed", "Method not allowed") \
	X(RESOURCE_CONFLICT, 409, "resource.conflict", "Conflict")               \
	X(API_VERSION_SUNSET, 410, "api.version_sunset", "API version sunset")   \
	X(REQUEST_TOO_LARGE, 413, "request.too_large", "Request body too large") \
	X(REQUEST_UNSUPPORTED_MEDIA_TYPE, 415, "request.unsupported_media_type", "Unsupported media type") \
	X(RATE_LIMITED, 429, "rate.limited", "Too many requests")                \
	X(INTERNAL_ERROR, 500, "internal.error", "Internal error")              \
	X(DEPENDENCY_UNAVAILABLE, 503, "dependency.unavailable", "Dependency unavailable") \
	X(SERVER_SHUTTING_DOWN, 503, "server.shutting_down", "Server shutting down") \
	X(SERVER_BUSY, 503, "server.busy", "Server busy")

enum api_error {
#define API_ERROR_ENUM(name, status, code, title) API_ERR_##name,
	API_ERROR_MAP(API_ERROR_ENUM)
#undef API_ERROR_ENUM
	API_ERR__COUNT
};

/* Base of every problem `type` URI; the code is appended. */
#define API_ERROR_TYPE_BASE "https://fcgi-sse.dev/errors/"

/* Returns the HTTP status of err (500 for an out-of-range value). */
int api_error_status(enum api_error err);

/* Returns the stable code string of err; static storage. */
const char *api_error_code(enum api_error err);

/* Returns the human title of err; static storage. */
const char *api_error_title(enum api_error err);

/* Looks a code string up. Returns 0 and sets *out, or -1 if unknown. */
int api_error_from_code(const char *code, enum api_error *out);

/* Appends the RFC 9457 problem+json body for err to out. detail may be NULL
 * (then the title is repeated); it must never carry secrets or internals.
 * request_id may be NULL. Returns 0, or -1 when memory ran out. */
int api_error_render(enum api_error err, const char *detail,
		     const char *request_id, struct buf *out);

#endif
