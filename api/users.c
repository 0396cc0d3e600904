/* Admin routes: POST/GET /api/v2/users, GET/PATCH/DELETE
 * /api/v2/users/{id}, DELETE /api/v2/users/{id}/sessions. Always scoped to
 * the caller's tenant: another tenant's user is 404, never 403. A role
 * change or a deletion revokes the user's sessions first (their tokens
 * carry the old role), so a failure half-way leaves the user logged out,
 * never holding rights it no longer has. */
#include <json-c/json.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "../auth/auth.h"
#include "api.h"
#include "profiles.h"

static struct json_object *user_json(const struct store_user *u)
{
	struct json_object *o = json_object_new_object();

	json_object_object_add(o, "id", json_object_new_string(u->id));
	json_object_object_add(o, "username", json_object_new_string(u->username));
	json_object_object_add(o, "role", json_object_new_string(u->role));
	json_object_object_add(o, "created_at",
			       api_json_time(u->created_at));
	return o;
}

static int is_role(const char *s)
{
	return auth_role_level(s) != 0;
}

/* Authenticates an admin; -1 with the response set otherwise. */
static int admin(struct api_call *call, struct principal *p)
{
	if (api_authenticate(call, p) < 0)
		return -1;
	return api_require_role(call, p, AUTH_ROLE_ADMIN);
}

static void create_user(struct api_call *call, const struct principal *p, struct json_object *in)
{
	static const char *const allowed[] = { "username", "password", "role", NULL };
	const char *username, *password, *role;
	struct store_user u;
	char location[128];
	int rc;

	if (api_only_fields(call, in, allowed, "username, password, role") < 0 ||
	    (username = api_field_string(call, in, "username", 1, STORE_NAME_MAX, store_name_valid,
					 "a username (1-64 of A-Z a-z 0-9 _ . -)")) == NULL ||
	    (password = api_field_string(call, in, "password", 8, PASSWORD_MAX_LEN, NULL,
					 "a string of 8-1024 bytes")) == NULL ||
	    (role = api_field_string(call, in, "role", 1, STORE_ROLE_MAX, is_role,
				     "one of viewer, operator, admin")) == NULL)
		return;
	memset(&u, 0, sizeof(u));
	snprintf(u.tenant_id, sizeof(u.tenant_id), "%s", p->claims.tid);
	snprintf(u.username, sizeof(u.username), "%s", username);
	snprintf(u.role, sizeof(u.role), "%s", role);
	u.created_at = (long long)time(NULL);
	if (password_hash(password, (long)call->env->cfg->pbkdf2_iterations, u.password_hash) < 0) {
		api_error(call, API_ERR_INTERNAL_ERROR, NULL);
		return;
	}
	rc = store_user_create(call->env->store, &u);
	if (rc == STORE_CONFLICT) {
		api_error(call, API_ERR_RESOURCE_CONFLICT, "A user with this username already exists.");
		return;
	}
	if (rc != STORE_OK) {
		api_unavailable(call);
		return;
	}
	snprintf(location, sizeof(location), "/api/v2/users/%s", u.id);
	http_response_header(call->resp, "Location", location);
	api_json(call, 201, user_json(&u));
	api_audit(call, p->claims.tid, p->claims.sub, "user.create", u.id, role);
}

void api_users_create(struct api_call *call)
{
	struct principal p;
	struct json_object *in;

	if (admin(call, &p) < 0 || api_read_json(call, &in) < 0)
		return;
	create_user(call, &p, in);
	json_object_put(in);
}

static int add_user(void *ctx, const struct store_user *u)
{
	json_object_array_add(ctx, user_json(u));
	return 0;
}

void api_users_list(struct api_call *call)
{
	static const char *const known[] = { NULL }; /* no paging yet: every user */
	struct principal p;
	struct json_object *items, *o;

	if (admin(call, &p) < 0 || api_query_known(call, known, "none") < 0)
		return;
	items = json_object_new_array();
	if (store_user_list(call->env->store, p.claims.tid, add_user, items) != STORE_OK) {
		json_object_put(items);
		api_unavailable(call);
		return;
	}
	o = json_object_new_object();
	json_object_object_add(o, "items", items);
	json_object_object_add(o, "next_cursor", NULL);
	api_json(call, 200, o);
}

/* Loads the user named by the path in the caller's tenant; -1 with 404 or
 * 503 set. */
static int path_user(struct api_call *call, const struct principal *p, struct store_user *u)
{
	char id[STORE_ID_MAX + 1];
	int rc;

	api_param(call, 0, id, sizeof(id));
	rc = store_user_by_id(call->env->store, p->claims.tid, id, u);
	return api_store_result(call, rc, "user");
}

void api_user_get(struct api_call *call)
{
	struct principal p;
	struct store_user u;
	struct store_tenant t;
	char id[STORE_ID_MAX + 1];
	int rc;

	if (admin(call, &p) < 0)
		return;
	api_param(call, 0, id, sizeof(id));
	rc = profiles_load(call->env, p.claims.tid, id, &u, &t);
	if (api_store_result(call, rc, "user") == 0)
		api_json(call, 200, user_json(&u));
}

void api_user_revoke_sessions(struct api_call *call)
{
	struct principal p;
	struct store_user u;
	char detail[32];
	int n = 0;

	if (admin(call, &p) < 0 || path_user(call, &p, &u) < 0)
		return;
	if (sessions_revoke_user(call->env->sessions, u.tenant_id, u.id, (long long)time(NULL), &n) < 0) {
		api_unavailable(call);
		return;
	}
	hub_revoke_user(call->env->hub, u.tenant_id, u.id);
	snprintf(detail, sizeof(detail), "revoked=%d", n);
	api_audit(call, p.claims.tid, p.claims.sub, "session.revoke_all", u.id, detail);
	call->resp->status = 204;
}

/* Ends every session and stream of u, here and in every process. */
static int revoke_all(struct api_call *call, const struct store_user *u, int *n)
{
	if (sessions_revoke_user(call->env->sessions, u->tenant_id, u->id, (long long)time(NULL), n) < 0) {
		api_unavailable(call);
		return -1;
	}
	hub_revoke_user(call->env->hub, u->tenant_id, u->id);
	return 0;
}

/* Admins do not demote or delete themselves: the tenant would be left
 * without the one who asked. */
static int not_self(struct api_call *call, const struct principal *p, const struct store_user *u)
{
	if (strcmp(p->claims.sub, u->id) != 0)
		return 0;
	api_error(call, API_ERR_RESOURCE_CONFLICT, "Admins cannot change or delete their own user.");
	return -1;
}

void api_user_patch(struct api_call *call)
{
	struct principal p;
	struct store_user u;
	struct json_object *in = NULL;
	const char *role;
	char detail[64];
	int n = 0, rc;

	if (admin(call, &p) < 0 || path_user(call, &p, &u) < 0 || api_read_json(call, &in) < 0)
		return;
	if (json_object_object_length(in) != 1 ||
	    (role = api_field_string(call, in, "role", 1, STORE_ROLE_MAX, is_role,
				     "one of viewer, operator, admin (the only field)")) == NULL) {
		if (call->resp->status < 400)
			api_error(call, API_ERR_REQUEST_INVALID_FIELD,
				  "Send {\"role\": \"viewer\" | \"operator\" | \"admin\"}.");
		goto out;
	}
	if (not_self(call, &p, &u) < 0)
		goto out;
	if (strcmp(role, u.role) != 0) {
		if (revoke_all(call, &u, &n) < 0)
			goto out;
		rc = store_user_set_role(call->env->store, u.tenant_id, u.id, role);
		if (api_store_result(call, rc, "user") < 0)
			goto out;
		profiles_drop(call->env, u.tenant_id, u.id, 0);
		snprintf(detail, sizeof(detail), "%s->%s revoked=%d", u.role, role, n);
		api_audit(call, p.claims.tid, p.claims.sub, "user.role", u.id, detail);
		snprintf(u.role, sizeof(u.role), "%s", role);
	}
	api_json(call, 200, user_json(&u));
out:
	json_object_put(in);
}

void api_user_delete(struct api_call *call)
{
	struct principal p;
	struct store_user u;
	char detail[32];
	int n = 0, rc;

	if (admin(call, &p) < 0 || path_user(call, &p, &u) < 0 || not_self(call, &p, &u) < 0 ||
	    revoke_all(call, &u, &n) < 0)
		return;
	rc = store_user_delete(call->env->store, u.tenant_id, u.id);
	if (api_store_result(call, rc, "user") < 0)
		return;
	profiles_drop(call->env, u.tenant_id, u.id, 1);
	snprintf(detail, sizeof(detail), "revoked=%d", n);
	api_audit(call, p.claims.tid, p.claims.sub, "user.delete", u.id, detail);
	call->resp->status = 204;
}
