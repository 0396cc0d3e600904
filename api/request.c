/* Request helpers shared by handlers: JSON bodies, fields, route params. */
#include <errno.h>
#include <json-c/json.h>
#include <openssl/rand.h>
#include <stdint.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "../core/b64.h"
#include "../core/query.h"
#include "../core/timefmt.h"
#include "api.h"
#include "jsontext.h"

static int is_json_type(const char *ct)
{
	size_t n = strlen("application/json");

	if (ct == NULL || strncasecmp(ct, "application/json", n) != 0)
		return 0;
	return ct[n] == '\0' || ct[n] == ';' || ct[n] == ' ';
}

int api_read_json(struct api_call *call, struct json_object **out)
{
	struct buf body = BUF_INIT;
	struct json_tokener *tok = NULL;
	struct json_object *o = NULL;
	enum jsontext_result lexed;
	int rc;

	*out = NULL;
	if (!is_json_type(http_request_param(call->req, "CONTENT_TYPE"))) {
		api_error(call, API_ERR_REQUEST_UNSUPPORTED_MEDIA_TYPE,
			  "Send the body as Content-Type: application/json.");
		return -1;
	}
	rc = http_request_body(call->req, (size_t)call->env->cfg->max_body_bytes, &body);
	if (rc == -1) {
		api_error(call, API_ERR_REQUEST_TOO_LARGE, NULL);
		goto out;
	}
	if (rc < 0) {
		api_error(call, API_ERR_REQUEST_MALFORMED_JSON, "The body could not be read.");
		goto out;
	}
	/* json-c's strict mode still takes much that is not JSON (jsontext.h):
	 * the tokens are checked first, the nesting by json-c */
	lexed = jsontext_check(buf_str(&body), body.len);
	if (lexed != JSONTEXT_MALFORMED && body.data != NULL) /* (json-c's #893) */
		body.len = jsontext_pairs_to_utf8(body.data, body.len);
	tok = lexed == JSONTEXT_MALFORMED ? NULL : json_tokener_new();
	if (tok != NULL) {
		json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
		o = json_tokener_parse_ex(tok, buf_str(&body), (int)body.len);
	}
	if (o == NULL || tok->char_offset != (int)body.len ||
	    !json_object_is_type(o, json_type_object)) {
		api_error(call, API_ERR_REQUEST_MALFORMED_JSON,
			  "The body must be one JSON object (RFC 8259) in UTF-8.");
		if (o != NULL)
			json_object_put(o);
		o = NULL;
	} else if (lexed == JSONTEXT_BIG_INTEGER) {
		/* json-c would hold a neighbour of the number sent, not the number */
		api_error(call, API_ERR_REQUEST_INVALID_FIELD,
			  "Integers must be from -9223372036854775808 to 18446744073709551615; "
			  "send a larger number with a fraction or an exponent (1e23).");
		json_object_put(o);
		o = NULL;
	}
out:
	if (tok != NULL)
		json_tokener_free(tok);
	buf_release(&body);
	*out = o;
	return o != NULL ? 0 : -1;
}

const char *api_field_string(struct api_call *call, struct json_object *obj,
			     const char *name, size_t minlen, size_t maxlen,
			     int (*valid)(const char *), const char *what)
{
	struct json_object *v;
	const char *s;
	char detail[200];

	if (json_object_object_get_ex(obj, name, &v) && json_object_is_type(v, json_type_string)) {
		s = json_object_get_string(v);
		if ((size_t)json_object_get_string_len(v) == strlen(s) && strlen(s) >= minlen &&
		    strlen(s) <= maxlen && (valid == NULL || valid(s)))
			return s;
	}
	snprintf(detail, sizeof(detail), "Field '%s' must be %s.", name, what);
	api_error(call, API_ERR_REQUEST_INVALID_FIELD, detail);
	return NULL;
}

int api_only_fields(struct api_call *call, struct json_object *obj, const char *const *allowed,
		    const char *names)
{
	char detail[160];

	json_object_object_foreach(obj, key, val) {
		int known = 0;
		(void)val;
		for (size_t i = 0; allowed[i] != NULL; i++)
			known |= strcmp(key, allowed[i]) == 0;
		if (!known) { /* never echoed: it may hold anything */
			snprintf(detail, sizeof(detail), "Unknown field (known: %s).", names);
			api_error(call, API_ERR_REQUEST_INVALID_FIELD, detail);
			return -1;
		}
	}
	return 0;
}

struct json_object *api_json_time(long long t)
{
	char s[TIMEFMT_RFC3339_LEN + 1];

	return json_object_new_string(timefmt_rfc3339((time_t)t, s));
}

void api_param(const struct api_call *call, size_t i, char *out, size_t cap)
{
	const struct route_param *p = &call->match->params[i];
	size_t n = p->value_len < cap - 1 ? p->value_len : cap - 1;

	memcpy(out, p->value, n);
	out[n] = '\0';
}

long long api_retry_ms(const struct api_env *env)
{
	long long base = env->cfg->retry_ms, span = base * env->cfg->retry_jitter_pct / 100;
	uint32_t rnd = 0;

	if (span <= 0)
		return base;
	RAND_bytes((unsigned char *)&rnd, sizeof(rnd));
	return base + (long long)(rnd % (uint64_t)(span + 1));
}

void api_unavailable(struct api_call *call)
{
	http_response_header(call->resp, "Retry-After", "2");
	api_error(call, API_ERR_DEPENDENCY_UNAVAILABLE, "The store is unavailable; retry shortly.");
}

void api_audit(struct api_call *call, const char *tenant_id, const char *actor,
		  const char *action, const char *target, const char *detail)
{
	struct store_audit a;

	memset(&a, 0, sizeof(a));
	snprintf(a.tenant_id, sizeof(a.tenant_id), "%s", tenant_id);
	snprintf(a.actor_id, sizeof(a.actor_id), "%s", actor);
	snprintf(a.action, sizeof(a.action), "%s", action);
	snprintf(a.target, sizeof(a.target), "%s", target);
	snprintf(a.detail, sizeof(a.detail), "%s", detail);
	snprintf(a.request_id, sizeof(a.request_id), "%s", call->req->request_id);
	a.at = (long long)time(NULL);
	if (store_audit_append(call->env->store, &a) != STORE_OK)
		log_text(call->env->log, LOG_WARN, "audit_failed", action);
	else
		api_audit_written(call->env, tenant_id);
}


int api_authorize(struct api_call *call, struct principal *p, int level)
{
	if (api_authenticate(call, p) < 0)
		return -1;
	return api_require_role(call, p, level);
}

void api_audit_record(struct api_call *call, const struct principal *p, const char *action,
		      const char *target, const char *detail, struct store_audit *out)
{
	memset(out, 0, sizeof(*out));
	snprintf(out->tenant_id, sizeof(out->tenant_id), "%s", p->claims.tid);
	snprintf(out->actor_id, sizeof(out->actor_id), "%s", p->claims.sub);
	snprintf(out->action, sizeof(out->action), "%s", action);
	snprintf(out->target, sizeof(out->target), "%s", target);
	snprintf(out->detail, sizeof(out->detail), "%s", detail ? detail : "");
	snprintf(out->request_id, sizeof(out->request_id), "%s", call->req->request_id);
	out->at = (long long)time(NULL);
}

/* Cursors: base64url of "<kind>:<value>", so that clients treat them as
 * opaque and a cursor of one list is refused by another. */
void api_cursor_encode(char kind, const char *value, char *out, size_t cap)
{
	char raw[STORE_ID_MAX + 4];
	size_t n = (size_t)snprintf(raw, sizeof(raw), "%c:%s", kind, value);

	if (n >= sizeof(raw) || b64url_encoded_len(n) + 1 > cap) {
		out[0] = '\0';
		return;
	}
	b64url_encode((const unsigned char *)raw, n, out);
}

int api_cursor_decode(char kind, const char *cursor, char *value, size_t cap)
{
	unsigned char raw[STORE_ID_MAX + 4];
	size_t n = strlen(cursor), len = 0;

	if (n == 0 || b64url_decoded_max(n) > sizeof(raw) ||
	    b64url_decode(cursor, n, raw, &len) < 0 || len < 3 || raw[0] != (unsigned char)kind ||
	    raw[1] != ':' || len - 2 >= cap || memchr(raw, '\0', len) != NULL)
		return -1;
	memcpy(value, raw + 2, len - 2);
	value[len - 2] = '\0';
	return 0;
}

int api_query_int(struct api_call *call, const char *name, long long min, long long max,
		  long long dflt, long long *out)
{
	struct buf v = BUF_INIT;
	char detail[120], *end;
	int rc = query_get(call->req->query, name, &v);

	*out = dflt;
	if (rc == 1) {
		errno = 0;
		*out = strtoll(buf_str(&v), &end, 10);
		if (v.len == 0 || *end != '\0' || errno != 0 || *out < min || *out > max ||
		    !(buf_str(&v)[0] >= '0' && buf_str(&v)[0] <= '9'))
			rc = -1;
	}
	buf_release(&v);
	if (rc < 0) {
		snprintf(detail, sizeof(detail), "%s= must be an integer from %lld to %lld.", name, min,
			 max);
		api_error(call, API_ERR_REQUEST_INVALID_QUERY, detail);
		return -1;
	}
	return 0;
}

int api_query_known(struct api_call *call, const char *const *allowed, const char *names)
{
	const char *unknown;
	size_t ulen;
	char detail[200];
	int rc = query_only(call->req->query, allowed, &unknown, &ulen);

	if (rc == 1)
		return 0;
	if (rc < 0)
		snprintf(detail, sizeof(detail), "The query string is malformed.");
	else /* never echo it: it may hold something that belongs in no URL */
		snprintf(detail, sizeof(detail), "Unknown query parameter (known: %s).", names);
	api_error(call, API_ERR_REQUEST_INVALID_QUERY, detail);
	return -1;
}

struct json_object *api_page(struct json_object *items, const char *next_cursor)
{
	struct json_object *o = json_object_new_object();

	json_object_object_add(o, "items", items);
	json_object_object_add(o, "next_cursor",
			       next_cursor ? json_object_new_string(next_cursor) : NULL);
	return o;
}

void api_cached_json(struct api_call *call, struct cache *c, const char *key, cache_load_fn *load,
		     void *ctx)
{
	struct buf body = BUF_INIT;

	if (cache_get(c, key, load, ctx, &body) != 1)
		api_unavailable(call);
	else if (http_response_json(call->resp, 200, buf_str(&body)) < 0)
		api_error(call, API_ERR_INTERNAL_ERROR, NULL);
	else
		http_response_header(call->resp, "Cache-Control", "no-store");
	buf_release(&body);
}

const char *api_key_tenant(const char *key, char *tenant)
{
	const char *colon = strchr(key, ':');
	size_t n;

	if (colon == NULL || (n = (size_t)(colon - key)) > STORE_ID_MAX)
		return NULL;
	memcpy(tenant, key, n);
	tenant[n] = '\0';
	return colon + 1;
}

int api_json_text(struct json_object *o, struct buf *out)
{
	buf_reset(out);
	buf_puts(out, json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
							    JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(o);
	return out->oom ? -1 : 0;
}

int api_store_result(struct api_call *call, int rc, const char *what)
{
	char detail[64];

	if (rc == STORE_OK)
		return 0;
	if (rc == STORE_NOT_FOUND) {
		snprintf(detail, sizeof(detail), "No such %s.", what);
		api_error(call, API_ERR_RESOURCE_NOT_FOUND, detail);
	} else {
		api_unavailable(call);
	}
	return -1;
}

