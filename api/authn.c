/* Authentication of protected routes: Bearer JWT, fingerprint cookie,
 * live session (read through the cache), role checks. */
#include <string.h>
#include <time.h>

#include "../auth/auth.h"
#include "../core/cookie.h"
#include "api.h"

static void unauthorized(struct api_call *call, enum api_error err, const char *detail)
{
	/* RFC 6750 §3: tell the client which scheme, and whether the token
	 * itself was the problem */
	http_response_header(call->resp, "WWW-Authenticate",
			     err == API_ERR_AUTH_MISSING_TOKEN
				     ? "Bearer realm=\"fcgi_sse\""
				     : "Bearer realm=\"fcgi_sse\", error=\"invalid_token\"");
	api_error(call, err, detail);
}

static int verify_token(struct api_call *call, struct principal *p)
{
	const char *hdr = http_request_param(call->req, "HTTP_AUTHORIZATION");
	const struct config *cfg = call->env->cfg;
	const struct jwt_policy policy = { cfg->jwt_issuer, cfg->jwt_audience, cfg->token_leeway_s };
	const char *tok;
	size_t len;
	enum jwt_result r;

	switch (auth_bearer_parse(hdr, &tok, &len)) {
	case AUTH_BEARER_MISSING:
		unauthorized(call, API_ERR_AUTH_MISSING_TOKEN, "Send Authorization: Bearer <token>.");
		return -1;
	case AUTH_BEARER_MALFORMED:
		unauthorized(call, API_ERR_AUTH_INVALID_TOKEN, "The Authorization header is not a Bearer token.");
		return -1;
	case AUTH_BEARER_OK:
		break;
	}
	r = jwt_verify(call->env->keys, tok, len, &policy, (long long)time(NULL), &p->claims);
	if (r == JWT_EXPIRED) {
		unauthorized(call, API_ERR_AUTH_TOKEN_EXPIRED, "The token has expired; refresh or log in again.");
		return -1;
	}
	if (r != JWT_OK) {
		/* the reason is fixed text from jwt_result_str: never token content */
		unauthorized(call, API_ERR_AUTH_INVALID_TOKEN, jwt_result_str(r));
		return -1;
	}
	return 0;
}

static int check_fingerprint(struct api_call *call, const struct principal *p)
{
	const char *cookies = http_request_param(call->req, "HTTP_COOKIE");
	const char *val;
	size_t len;

	if (p->claims.fgp[0] == '\0')
		return 0;
	if (cookie_find(cookies, AUTH_FGP_COOKIE, &val, &len) &&
	    auth_fingerprint_matches(val, len, p->claims.fgp))
		return 0;
	unauthorized(call, API_ERR_AUTH_FINGERPRINT_MISMATCH,
		     "This token belongs to another client (fingerprint cookie missing or wrong).");
	return -1;
}

int api_session(struct api_call *call, struct principal *p, struct cache_ahead *const *more, int n)
{
	struct cache_ahead sess, *all[CACHE_AHEAD_MAX];
	enum session_state st;
	int k = 0;

	sessions_ahead(call->env->sessions, p->claims.sid, &sess);
	all[k++] = &sess;
	for (int i = 0; i < n && k < CACHE_AHEAD_MAX; i++)
		all[k++] = more[i];
	cache_fetch_ahead(all, k);
	st = sessions_lookup_ahead(call->env->sessions, &sess, (long long)time(NULL), &p->session);
	cache_ahead_release(&sess);
	switch (st) {
	case SESSION_LIVE:
		break;
	case SESSION_GONE:
		unauthorized(call, API_ERR_AUTH_SESSION_REVOKED, "The session has ended; log in again.");
		return -1;
	case SESSION_ERROR:
		http_response_header(call->resp, "Retry-After", "2");
		api_error(call, API_ERR_DEPENDENCY_UNAVAILABLE, "The session store is unavailable.");
		return -1;
	}
	if (strcmp(p->session.user_id, p->claims.sub) != 0 ||
	    strcmp(p->session.tenant_id, p->claims.tid) != 0) {
		unauthorized(call, API_ERR_AUTH_INVALID_TOKEN, "The token does not match its session.");
		return -1;
	}
	return 0;
}

int api_token(struct api_call *call, struct principal *p)
{
	memset(p, 0, sizeof(*p));
	if (verify_token(call, p) < 0 || check_fingerprint(call, p) < 0)
		return -1;
	for (int i = 0; i < p->claims.nroles; i++) {
		int level = auth_role_level(p->claims.roles[i]);
		if (level > p->level)
			p->level = level;
	}
	return 0;
}

int api_authenticate(struct api_call *call, struct principal *p)
{
	return api_token(call, p) < 0 || api_session(call, p, NULL, 0) < 0 ? -1 : 0;
}

int api_require_role(struct api_call *call, const struct principal *p, int level)
{
	if (p->level >= level)
		return 0;
	api_error(call, API_ERR_AUTH_FORBIDDEN, "Your role does not allow this.");
	return -1;
}
