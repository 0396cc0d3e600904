#include "admin.h"

#include <json-c/json.h>
#include <openssl/crypto.h>
#include <string.h>
#include <time.h>

#include "../auth/auth.h"
#include "../auth/password.h"

struct admin_args {
	const char *tenant, *username, *role, *name;
};

void admin_usage(FILE *to)
{
	fputs("usage: fcgi_sse admin [--config FILE] create-tenant NAME\n"
	      "       fcgi_sse admin [--config FILE] create-user --tenant NAME --username NAME --role viewer|operator|admin\n"
	      "                 (the password is read from standard input, one line)\n"
	      "       fcgi_sse admin [--config FILE] list-users --tenant NAME\n",
	      to);
}

/* Parses "--tenant X --username Y --role Z" and one positional name. */
static int parse(int argc, char **argv, struct admin_args *a, FILE *err)
{
	memset(a, 0, sizeof(*a));
	for (int i = 1; i < argc; i++) {
		const char **slot = NULL;
		if (strcmp(argv[i], "--tenant") == 0)
			slot = &a->tenant;
		else if (strcmp(argv[i], "--username") == 0)
			slot = &a->username;
		else if (strcmp(argv[i], "--role") == 0)
			slot = &a->role;
		if (slot != NULL && i + 1 < argc) {
			*slot = argv[++i];
		} else if (slot == NULL && argv[i][0] != '-' && a->name == NULL) {
			a->name = argv[i];
		} else {
			fprintf(err, "fcgi_sse admin: unexpected or incomplete argument '%s'\n", argv[i]);
			return -1;
		}
	}
	return 0;
}

static void print_json(FILE *out, struct json_object *o)
{
	fprintf(out, "%s\n", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
	json_object_put(o);
}

static int store_failed(struct store *st, FILE *err, int rc, const char *what)
{
	if (rc == STORE_CONFLICT) {
		fprintf(err, "fcgi_sse admin: %s already exists\n", what);
		return ADMIN_EXISTS;
	}
	if (rc == STORE_NOT_FOUND) {
		fprintf(err, "fcgi_sse admin: %s not found\n", what);
		return ADMIN_DATAERR;
	}
	fprintf(err, "fcgi_sse admin: %s: %s\n", what, store_errstr(st));
	return strncmp(store_errstr(st), "invalid argument", 16) == 0 ? ADMIN_DATAERR : ADMIN_STORE;
}

static int create_tenant(struct store *st, const struct admin_args *a, FILE *out, FILE *err)
{
	struct store_tenant t;
	struct json_object *o;
	int rc;

	if (a->name == NULL || a->tenant || a->username || a->role) {
		admin_usage(err);
		return ADMIN_USAGE;
	}
	if ((rc = store_tenant_create(st, a->name, (long long)time(NULL), &t)) != STORE_OK)
		return store_failed(st, err, rc, "tenant");
	o = json_object_new_object();
	json_object_object_add(o, "id", json_object_new_string(t.id));
	json_object_object_add(o, "name", json_object_new_string(t.name));
	print_json(out, o);
	return ADMIN_OK;
}

/* Reads one line (the password) from in, without its line ending. */
static int read_password(FILE *in, char *pw, size_t cap)
{
	size_t n;

	if (fgets(pw, (int)cap, in) == NULL)
		return -1;
	n = strlen(pw);
	if (n > 0 && pw[n - 1] != '\n' && !feof(in))
		return -1; /* longer than cap */
	while (n > 0 && (pw[n - 1] == '\n' || pw[n - 1] == '\r'))
		pw[--n] = '\0';
	return n >= 8 ? 0 : -1;
}

static int insert_user(struct store *st, const struct admin_args *a, const char *pw,
		       long iterations, FILE *out, FILE *err)
{
	struct store_tenant t;
	struct store_user u;
	struct json_object *o;
	int rc;

	if ((rc = store_tenant_by_name(st, a->tenant, &t)) != STORE_OK)
		return store_failed(st, err, rc, "tenant");
	memset(&u, 0, sizeof(u));
	snprintf(u.tenant_id, sizeof(u.tenant_id), "%s", t.id);
	snprintf(u.username, sizeof(u.username), "%s", a->username);
	snprintf(u.role, sizeof(u.role), "%s", a->role);
	u.created_at = (long long)time(NULL);
	if (password_hash(pw, iterations, u.password_hash) < 0) {
		fputs("fcgi_sse admin: cannot hash the password\n", err);
		return ADMIN_STORE;
	}
	if ((rc = store_user_create(st, &u)) != STORE_OK)
		return store_failed(st, err, rc, "user");
	o = json_object_new_object();
	json_object_object_add(o, "id", json_object_new_string(u.id));
	json_object_object_add(o, "tenant", json_object_new_string(t.name));
	json_object_object_add(o, "username", json_object_new_string(u.username));
	json_object_object_add(o, "role", json_object_new_string(u.role));
	print_json(out, o);
	return ADMIN_OK;
}

static int create_user(struct store *st, const struct admin_args *a, long iterations,
		       FILE *in, FILE *out, FILE *err)
{
	char pw[PASSWORD_MAX_LEN + 2];
	int rc;

	if (a->tenant == NULL || a->username == NULL || a->role == NULL || a->name != NULL) {
		admin_usage(err);
		return ADMIN_USAGE;
	}
	if (auth_role_level(a->role) == 0) {
		fprintf(err, "fcgi_sse admin: role must be viewer, operator or admin\n");
		return ADMIN_DATAERR;
	}
	if (read_password(in, pw, sizeof(pw)) < 0) {
		fputs("fcgi_sse admin: give the password on standard input: one line, 8-1024 bytes\n", err);
		OPENSSL_cleanse(pw, sizeof(pw));
		return ADMIN_DATAERR;
	}
	rc = insert_user(st, a, pw, iterations, out, err);
	OPENSSL_cleanse(pw, sizeof(pw));
	return rc;
}

static int print_user(void *ctx, const struct store_user *u)
{
	struct json_object *o = json_object_new_object();

	json_object_object_add(o, "id", json_object_new_string(u->id));
	json_object_object_add(o, "username", json_object_new_string(u->username));
	json_object_object_add(o, "role", json_object_new_string(u->role));
	print_json(ctx, o);
	return 0;
}

static int list_users(struct store *st, const struct admin_args *a, FILE *out, FILE *err)
{
	struct store_tenant t;
	int rc;

	if (a->tenant == NULL || a->username || a->role || a->name) {
		admin_usage(err);
		return ADMIN_USAGE;
	}
	if ((rc = store_tenant_by_name(st, a->tenant, &t)) != STORE_OK)
		return store_failed(st, err, rc, "tenant");
	if ((rc = store_user_list(st, t.id, print_user, out)) != STORE_OK)
		return store_failed(st, err, rc, "users");
	return ADMIN_OK;
}

int admin_run(int argc, char **argv, struct store *st, long iterations, FILE *in, FILE *out,
	      FILE *err)
{
	struct admin_args a;

	if (argc < 1 || parse(argc, argv, &a, err) < 0) {
		admin_usage(err);
		return ADMIN_USAGE;
	}
	if (strcmp(argv[0], "create-tenant") == 0)
		return create_tenant(st, &a, out, err);
	if (strcmp(argv[0], "create-user") == 0)
		return create_user(st, &a, iterations, in, out, err);
	if (strcmp(argv[0], "list-users") == 0)
		return list_users(st, &a, out, err);
	fprintf(err, "fcgi_sse admin: unknown command '%s'\n", argv[0]);
	admin_usage(err);
	return ADMIN_USAGE;
}
