/* Rate limits on the request path: the client's address and the 429. */
#include <stdio.h>
#include <string.h>

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

int api_limit(struct api_call *call, const char *key, const struct rl_rule *rule, int consume)
{
	struct rl_result res;
	char policy[96], state[96], retry[24];

	if (call->env->limiter == NULL || rule->limit <= 0)
		return 0;
	ratelimit_check(call->env->limiter, key, rule, consume, &res);
	ratelimit_policy_header(rule, policy, sizeof(policy));
	ratelimit_state_header(rule, &res, state, sizeof(state));
	if (res.allowed) {
		http_response_header(call->resp, "RateLimit-Policy", policy);
		http_response_header(call->resp, "RateLimit", state);
		return 0;
	}
	snprintf(retry, sizeof(retry), "%lld", res.retry_after_s);
	api_error(call, API_ERR_RATE_LIMITED, "Too many requests; retry after the Retry-After seconds.");
	http_response_header(call->resp, "Retry-After", retry);
	http_response_header(call->resp, "RateLimit-Policy", policy);
	http_response_header(call->resp, "RateLimit", state);
	return -1;
}
