/* Rate limits on the request path: the client's address and the 429. */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "../auth/auth.h"
#include "api.h"

/* 1 when addr (n bytes) is one of the comma-separated list. */
static int listed(const char *list, const char *addr, size_t n)
{
	while (list != NULL && *list != '\0') {
		const char *end = strchr(list, ',');
		size_t len = end ? (size_t)(end - list) : strlen(list);

		while (len > 0 && (*list == ' ' || *list == '\t'))
			list++, len--;
		while (len > 0 && (list[len - 1] == ' ' || list[len - 1] == '\t'))
			len--;
		if (len == n && len > 0 && memcmp(list, addr, n) == 0)
			return 1;
		list = end ? end + 1 : NULL;
	}
	return 0;
}

static void copy_addr(const char *p, size_t n, char out[API_ADDR_MAX])
{
	while (n > 0 && (*p == ' ' || *p == '\t'))
		p++, n--;
	while (n > 0 && (p[n - 1] == ' ' || p[n - 1] == '\t'))
		n--;
	if (n == 0 || n >= API_ADDR_MAX) {
		snprintf(out, API_ADDR_MAX, "unknown");
		return;
	}
	memcpy(out, p, n);
	out[n] = '\0';
}

void api_client_addr(const struct api_call *call, char out[API_ADDR_MAX])
{
	const char *remote = http_request_param(call->req, "REMOTE_ADDR");
	const char *trusted = call->env->cfg->trusted_proxies;
	const char *xff = http_request_param(call->req, "HTTP_X_FORWARDED_FOR");
	size_t end;

	if (remote == NULL || *remote == '\0') {
		snprintf(out, API_ADDR_MAX, "unknown");
		return;
	}
	if (xff == NULL || trusted == NULL || *trusted == '\0' || !listed(trusted, remote, strlen(remote))) {
		copy_addr(remote, strlen(remote), out);
		return;
	}
	/* right to left: each entry was added by the hop after it; the first
	 * one no trusted proxy wrote is the client as far as we can know */
	end = strlen(xff);
	for (;;) {
		size_t start = end;
		const char *p;
		size_t n;

		while (start > 0 && xff[start - 1] != ',')
			start--;
		p = xff + start;
		n = end - start;
		while (n > 0 && (*p == ' ' || *p == '\t'))
			p++, n--;
		while (n > 0 && (p[n - 1] == ' ' || p[n - 1] == '\t'))
			n--;
		if (start == 0 || (n > 0 && !listed(trusted, p, n))) {
			copy_addr(p, n, out);
			return;
		}
		end = start - 1;
	}
}

/* The answer's part of a limit decision: the RateLimit fields always, and
 * when refused 429 rate.limited with Retry-After. 0 allowed, -1 refused. */
static int limit_answer(struct api_call *call, const struct rl_rule *rule, const struct rl_result *res)
{
	char policy[96], state[96], retry[24];

	ratelimit_policy_header(rule, policy, sizeof(policy));
	ratelimit_state_header(rule, res, state, sizeof(state));
	if (!res->allowed) {
		snprintf(retry, sizeof(retry), "%lld", res->retry_after_s);
		api_metrics_limited(rule->name, res->local);
		api_error(call, API_ERR_RATE_LIMITED, "Too many requests; retry after the Retry-After seconds.");
		http_response_header(call->resp, "Retry-After", retry);
	}
	http_response_header(call->resp, "RateLimit-Policy", policy);
	http_response_header(call->resp, "RateLimit", state);
	return res->allowed ? 0 : -1;
}

int api_limit(struct api_call *call, const char *key, const struct rl_rule *rule, int consume)
{
	struct rl_result res;

	if (call->env->limiter == NULL || rule->limit <= 0)
		return 0;
	ratelimit_check(call->env->limiter, key, rule, consume, &res);
	return limit_answer(call, rule, &res);
}

/* The route's limit class: its rule, or NULL when the route is not
 * limited here (health, ready, version, login: its own limits; publishing with the
 * internal secret). */
static const struct rl_rule *route_rule(const struct api_call *call, struct rl_rule *r)
{
	const struct config *cfg = call->env->cfg;
	const char *route = call->match->route->pattern;
	int method = call->req->method;

	if (strcmp(route, "/health") == 0 || strcmp(route, "/ready") == 0 ||
	    strncmp(route, "/version", 8) == 0 ||
	    strcmp(route, "/auth/login") == 0 || strcmp(route, "/events") == 0 ||
	    method == HTTP_OPTIONS)
		return NULL;
	if (strncmp(route, "/events/", 8) == 0)
		*r = (struct rl_rule){ "stream-opens", cfg->rl_streams_per_min, 60 };
	else if (strcmp(route, "/devices/{id}/telemetry") == 0)
		*r = (struct rl_rule){ "publish", cfg->rl_publish_per_min, 60 };
	else if (method == HTTP_GET || method == HTTP_HEAD)
		*r = (struct rl_rule){ "reads", cfg->rl_reads_per_min, 60 };
	else
		*r = (struct rl_rule){ "writes", cfg->rl_writes_per_min, 60 };
	return r->limit > 0 ? r : NULL;
}

/* Whose bucket: the token's tenant (verifying it costs a compare once a
 * thread has seen the token), else the client's address. The handler
 * still authenticates the request. */
static void route_scope(struct api_call *call, char *out, size_t cap)
{
	const struct config *cfg = call->env->cfg;
	const struct jwt_policy policy = { cfg->jwt_issuer, cfg->jwt_audience, cfg->token_leeway_s };
	const char *tok;
	size_t len;
	struct jwt_claims c;
	char addr[API_ADDR_MAX];

	if (auth_bearer_parse(http_request_param(call->req, "HTTP_AUTHORIZATION"), &tok, &len) ==
		    AUTH_BEARER_OK &&
	    jwt_verify(call->env->keys, tok, len, &policy, (long long)time(NULL), &c) == JWT_OK) {
		snprintf(out, cap, "tenant:%s", c.tid);
		return;
	}
	api_client_addr(call, addr);
	snprintf(out, cap, "addr:%s", addr);
}

int api_limit_route(struct api_call *call)
{
	struct rl_rule rule;
	struct rl_result res;
	char scope[JWT_ID_MAX + API_ADDR_MAX + 16], key[sizeof(scope) + 48];

	if (call->env->limiter == NULL || route_rule(call, &rule) == NULL)
		return 0;
	route_scope(call, scope, sizeof(scope));
	snprintf(key, sizeof(key), "api:%s:v%d:%s", rule.name, call->version, scope);
	ratelimit_take(call->env->limiter, key, &rule, &res);
	return limit_answer(call, &rule, &res);
}
