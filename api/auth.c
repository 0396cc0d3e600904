/* POST /api/v2/auth/login, /logout, /refresh and GET /api/v2/me. */
#include <json-c/json.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "../auth/auth.h"
#include "../core/b64.h"
#include "../session/session.h"
#include "api.h"
#include "profiles.h"

#define FGP_BYTES 32

static void bad_credentials(struct api_call *call)
{
	api_error(call, API_ERR_AUTH_INVALID_CREDENTIALS, "Unknown tenant or user, or wrong password.");
}

/* Signs a token for the session; *expires_in gets its lifetime. */
static int issue_token(struct api_call *call, const struct store_session *ss,
		       const char *fgp_hex, struct buf *token, long long *expires_in)
{
	const struct config *cfg = call->env->cfg;
	long long now = (long long)time(NULL);
	struct jwt_claims c;

	memset(&c, 0, sizeof(c));
	snprintf(c.sub, sizeof(c.sub), "%s", ss->user_id);
	snprintf(c.tid, sizeof(c.tid), "%s", ss->tenant_id);
	snprintf(c.sid, sizeof(c.sid), "%s", ss->id);
	snprintf(c.iss, sizeof(c.iss), "%s", cfg->jwt_issuer);
	snprintf(c.aud, sizeof(c.aud), "%s", cfg->jwt_audience);
	snprintf(c.fgp, sizeof(c.fgp), "%s", fgp_hex);
	snprintf(c.roles[0], sizeof(c.roles[0]), "%s", ss->role);
	c.nroles = 1;
	if (session_id_new(c.jti) < 0)
		return -1;
	c.iat = c.nbf = now;
	/* a token never outlives its session */
	c.exp = now + cfg->token_ttl_s < ss->expires_at ? now + cfg->token_ttl_s : ss->expires_at;
	*expires_in = c.exp - now;
	return jwt_sign(call->env->keys, &c, token);
}

static struct json_object *token_body(const struct buf *token, long long expires_in)
{
	struct json_object *o = json_object_new_object();

	json_object_object_add(o, "access_token", json_object_new_string(buf_str(token)));
	json_object_object_add(o, "token_type", json_object_new_string("Bearer"));
	json_object_object_add(o, "expires_in", json_object_new_int64(expires_in));
	return o;
}

static struct json_object *user_json(const struct store_user *u, const struct store_tenant *t)
{
	struct json_object *o = json_object_new_object(), *tj = json_object_new_object();

	json_object_object_add(o, "id", json_object_new_string(u->id));
	json_object_object_add(o, "username", json_object_new_string(u->username));
	json_object_object_add(o, "role", json_object_new_string(u->role));
	json_object_object_add(tj, "id", json_object_new_string(t->id));
	json_object_object_add(tj, "name", json_object_new_string(t->name));
	json_object_object_add(o, "tenant", tj);
	return o;
}

/* Finds tenant and user; 1 found, 0 not (after spending the same time on a
 * dummy verification), -1 store failure. Verifies the password too. */
/* Takes one of the process's password-check slots; 0, or -1 with 503
 * server.busy set when all are taken (a login waits for no core). */
static int hash_slot_take(struct api_call *call)
{
	struct api_env *env = call->env;

	if (atomic_fetch_add(&env->hashing, 1) < env->hash_cap)
		return 0;
	atomic_fetch_sub(&env->hashing, 1);
	http_response_header(call->resp, "Retry-After", "1");
	api_error(call, API_ERR_SERVER_BUSY, "Too many logins are being checked; retry shortly.");
	return -1;
}

static void hash_slot_give(struct api_call *call)
{
	atomic_fetch_sub(&call->env->hashing, 1);
}

static int check_credentials(struct api_call *call, const char *tenant, const char *username,
			     const char *password, struct store_tenant *t, struct store_user *u)
{
	struct store *st = call->env->store;
	int rc = store_tenant_by_name(st, tenant, t);

	if (rc == STORE_OK)
		rc = store_user_by_name(st, t->id, username, u);
	if (rc == STORE_ERROR)
		return -1;
	if (rc != STORE_OK) {
		password_verify(password, call->env->dummy_hash);
		return 0;
	}
	return password_verify(password, u->password_hash) == 1 ? 1 : 0;
}

/* Makes the fingerprint cookie: value to out (base64url), hash to hex. */
static int new_fingerprint(char *out, char *hex)
{
	unsigned char raw[FGP_BYTES];

	if (RAND_bytes(raw, sizeof(raw)) != 1)
		return -1;
	b64url_encode(raw, sizeof(raw), out);
	auth_fingerprint_hash(out, strlen(out), hex);
	return 0;
}

static void login_ok(struct api_call *call, const struct store_tenant *t,
		     const struct store_user *u)
{
	char cookie[64], hex[AUTH_FGP_HEX_LEN + 1], header[160];
	struct store_session ss;
	struct buf token = BUF_INIT;
	struct json_object *body;
	long long expires_in;

	if (sessions_begin(call->env->sessions, u, (long long)time(NULL), &ss) < 0) {
		api_unavailable(call);
		return;
	}
	if (new_fingerprint(cookie, hex) < 0 || issue_token(call, &ss, hex, &token, &expires_in) < 0) {
		api_error(call, API_ERR_INTERNAL_ERROR, NULL);
		buf_release(&token);
		return;
	}
	snprintf(header, sizeof(header), "%s=%s; Path=/; Max-Age=%lld; Secure; HttpOnly; SameSite=Strict",
		 AUTH_FGP_COOKIE, cookie, call->env->cfg->session_ttl_s);
	http_response_header(call->resp, "Set-Cookie", header);
	body = token_body(&token, expires_in);
	json_object_object_add(body, "user", user_json(u, t));
	api_json(call, 200, body);
	api_audit(call, t->id, u->id, "auth.login", u->id, "");
	buf_release(&token);
}

void api_auth_login(struct api_call *call)
{
	static const char *const allowed[] = { "tenant", "username", "password", NULL };
	struct json_object *in;
	const char *tenant, *username, *password;
	struct store_tenant t;
	struct store_user u;
	int rc;

	const struct config *cfg = call->env->cfg;
	const struct rl_rule per_address = { "login-address", cfg->login_attempts_per_address, 60 };
	const struct rl_rule per_user = { "login-user", cfg->login_failures_per_user,
					  cfg->login_failure_window_s };
	char addr[API_ADDR_MAX], key[2 * STORE_NAME_MAX + API_ADDR_MAX + 16];

	/* every attempt from an address counts, before anything is parsed */
	api_client_addr(call, addr);
	snprintf(key, sizeof(key), "login:addr:%s", addr);
	if (api_limit(call, key, &per_address, 1) < 0 || api_read_json(call, &in) < 0)
		return;
	if (api_only_fields(call, in, allowed, "tenant, username, password") < 0 ||
	    (tenant = api_field_string(call, in, "tenant", 1, STORE_NAME_MAX, store_name_valid,
				       "a tenant name (1-64 of A-Z a-z 0-9 _ . -)")) == NULL ||
	    (username = api_field_string(call, in, "username", 1, STORE_NAME_MAX, store_name_valid,
					 "a username (1-64 of A-Z a-z 0-9 _ . -)")) == NULL ||
	    (password = api_field_string(call, in, "password", 1, PASSWORD_MAX_LEN, NULL,
					 "a string of 1-1024 bytes")) == NULL)
		goto out;
	/* failures of a user count; once over, the password is not even
	 * checked: right or wrong, the answer is the same 429 */
	snprintf(key, sizeof(key), "login:user:%s:%s", tenant, username);
	if (api_limit(call, key, &per_user, 0) < 0 || hash_slot_take(call) < 0)
		goto out;
	rc = check_credentials(call, tenant, username, password, &t, &u);
	hash_slot_give(call);
	if (rc < 0) {
		api_unavailable(call);
	} else if (rc == 0) {
		struct rl_result res;

		if (call->env->limiter != NULL && per_user.limit > 0)
			ratelimit_check(call->env->limiter, key, &per_user, 1, &res);
		bad_credentials(call);
	} else {
		login_ok(call, &t, &u);
	}
out:
	json_object_put(in);
}

void api_auth_logout(struct api_call *call)
{
	struct principal p;

	if (api_authenticate(call, &p) < 0)
		return;
	if (sessions_revoke(call->env->sessions, p.claims.sid, (long long)time(NULL)) < 0) {
		api_unavailable(call);
		return;
	}
	/* streams of this login end now (in this process; others: issue #5) */
	hub_revoke_session(call->env->hub, p.claims.sid);
	api_audit(call, p.claims.tid, p.claims.sub, "auth.logout", p.claims.sub, "");
	call->resp->status = 204;
}

void api_auth_refresh(struct api_call *call)
{
	struct principal p;
	struct buf token = BUF_INIT;
	long long expires_in;

	if (api_authenticate(call, &p) < 0)
		return;
	if (issue_token(call, &p.session, p.claims.fgp, &token, &expires_in) < 0)
		api_error(call, API_ERR_INTERNAL_ERROR, NULL);
	else
		api_json(call, 200, token_body(&token, expires_in));
	buf_release(&token);
}

void api_me(struct api_call *call)
{
	struct principal p;
	struct store_tenant t;
	struct store_user u;
	struct json_object *o, *roles, *sess;
	int rc;

	if (api_authenticate(call, &p) < 0)
		return;
	rc = profiles_load(call->env, p.claims.tid, p.claims.sub, &u, &t);
	if (rc == STORE_NOT_FOUND) {
		api_error(call, API_ERR_AUTH_SESSION_REVOKED, "The user no longer exists.");
		return;
	}
	if (rc != STORE_OK) {
		api_unavailable(call);
		return;
	}
	o = json_object_new_object();
	json_object_object_add(o, "user", user_json(&u, &t));
	json_object_object_add(o, "tenant", json_object_get(json_object_object_get(
						    json_object_object_get(o, "user"), "tenant")));
	roles = json_object_new_array();
	for (int i = 0; i < p.claims.nroles; i++)
		json_object_array_add(roles, json_object_new_string(p.claims.roles[i]));
	json_object_object_add(o, "roles", roles);
	sess = json_object_new_object();
	json_object_object_add(sess, "expires_at",
			       api_json_time(p.session.expires_at));
	json_object_object_add(o, "session", sess);
	api_json(call, 200, o);
}
