/* The audit trail, GET /api/v2/audit (admin): newest first, opaque
 * cursors. With cache.audit_first_page_ttl_s > 0 the first page at the
 * default limit is cached per tenant (`audp:{tenant}`), and every audit
 * write for the tenant drops it (api_audit_written) before its request
 * answers. Off by default: an audit trail is read rarely and wants to be
 * exact. */
#include <errno.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../auth/auth.h"
#include "../core/query.h"
#include "api.h"

#define AUDIT_DEFAULT 50
#define AUDIT_MAX 200

struct audit_page {
	struct json_object *items;
	int limit, n, more;
	long long last;
};


static int add_audit(void *ctx, const struct store_audit *a)
{
	struct audit_page *pg = ctx;
	struct json_object *o;

	if (pg->n == pg->limit) {
		pg->more = 1;
		return 1;
	}
	o = json_object_new_object();
	json_object_object_add(o, "seq", json_object_new_int64(a->seq));
	json_object_object_add(o, "at", api_json_time(a->at));
	json_object_object_add(o, "actor_id", a->actor_id[0] ? json_object_new_string(a->actor_id)
							     : NULL);
	json_object_object_add(o, "action", json_object_new_string(a->action));
	json_object_object_add(o, "target", json_object_new_string(a->target));
	json_object_object_add(o, "detail", json_object_new_string(a->detail));
	json_object_object_add(o, "request_id", json_object_new_string(a->request_id));
	json_object_array_add(pg->items, o);
	pg->last = a->seq;
	pg->n++;
	return 0;
}

/* The page of a tenant's records with seq < before (0: the newest) into
 * *out; a store code. */
static int audit_page(struct store *st, const char *tenant, long long before, int limit,
		      struct json_object **out)
{
	struct audit_page pg = { json_object_new_array(), limit, 0, 0, 0 };
	char seq[24], next[64];

	if (store_audit_list(st, tenant, before, limit + 1, add_audit, &pg) != STORE_OK) {
		json_object_put(pg.items);
		return STORE_ERROR;
	}
	if (pg.more) {
		snprintf(seq, sizeof(seq), "%lld", pg.last);
		api_cursor_encode('a', seq, next, sizeof(next));
	}
	*out = api_page(pg.items, pg.more ? next : NULL);
	return STORE_OK;
}

struct first_page {
	struct store *store;
	const char *tenant;
};

/* cache_load_fn of the first page. */
static int load_first(void *ctx, const char *key, struct buf *value, long long *ttl_ms)
{
	const struct first_page *f = ctx;
	struct json_object *o;

	(void)key;
	(void)ttl_ms;
	if (audit_page(f->store, f->tenant, 0, AUDIT_DEFAULT, &o) != STORE_OK)
		return -1;
	return api_json_text(o, value) == 0 ? 1 : -1;
}

void api_audit_written(struct api_env *env, const char *tenant_id)
{
	if (env->audit_cache != NULL && cache_invalidate(env->audit_cache, tenant_id) < 0)
		log_text(env->log, LOG_WARN, "audit_view_stale", tenant_id);
}

/* The record sequence of a cursor, exactly as audit_page writes it (a
 * positive decimal, no sign, space or leading zero): 0, or -1. */
static int cursor_seq(const char *s, long long *out)
{
	char *end;

	if (s[0] < '1' || s[0] > '9')
		return -1;
	errno = 0;
	*out = strtoll(s, &end, 10);
	return *end == '\0' && errno == 0 ? 0 : -1;
}

void api_audit_list(struct api_call *call)
{
	static const char *const known[] = { "limit", "cursor", NULL };
	struct principal p;
	struct buf cur = BUF_INIT;
	struct json_object *o;
	char seq[24];
	long long limit, before = 0;

	if (api_authorize(call, &p, AUTH_ROLE_ADMIN) < 0 ||
	    api_query_known(call, known, "limit, cursor") < 0 ||
	    api_query_int(call, "limit", 1, AUDIT_MAX, AUDIT_DEFAULT, &limit) < 0)
		goto out;
	if (query_get(call->req->query, "cursor", &cur) == 1 &&
	    (api_cursor_decode('a', buf_str(&cur), seq, sizeof(seq)) < 0 ||
	     cursor_seq(seq, &before) < 0)) {
		api_error(call, API_ERR_REQUEST_INVALID_QUERY,
			  "cursor= must be a next_cursor this list returned.");
		goto out;
	}
	if (before == 0 && limit == AUDIT_DEFAULT && call->env->audit_cache != NULL) {
		const struct first_page f = { call->env->store, p.claims.tid };
		api_cached_json(call, call->env->audit_cache, p.claims.tid, load_first, (void *)&f);
	} else if (audit_page(call->env->store, p.claims.tid, before, (int)limit, &o) != STORE_OK) {
		api_unavailable(call);
	} else {
		api_json(call, 200, o);
	}
out:
	buf_release(&cur);
}
