/* store: both backends through the same tests, SQLite on a real file in a
 * fresh temporary directory per test, PostgreSQL in a fresh schema per
 * test of the server tests/unit/run.sh started (FCGI_SSE_TEST_PG, a libpq
 * conninfo; "skip" leaves the PostgreSQL suite out, unset fails it):
 * schema and migrations, tenants, users, auth sessions, audit, argument
 * checks, per-thread connections and their cleanup; then what is each
 * backend's own (SQLite's locks and file modes, PostgreSQL's lost
 * connections, read-only servers and concurrent migrations). */
#include <CUnit/CUnit.h>
#include <fcntl.h>
#include <grp.h>
#include <libpq-fe.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../../core/buf.h"
#include "../../core/clock.h"
#include "../../core/log.h"
#include "../../protect/breaker.h"
#include "../../session/session.h"
#include "../../store/backend.h"
#include "../../store/store.h"
#include "suites.h"

#define NOW 1800000000LL

enum backend { BACKEND_SQLITE, BACKEND_POSTGRES };

/* The suite running: every fixture opens a store of its backend. */
static enum backend fx_backend;

/* PostgreSQL: the tests' own connection (schemas, roles, terminating the
 * store's connections), made by the suite's init. */
static PGconn *pg_admin;

struct fixture {
	char dir[64];
	char path[96];
	char schema[48];      /* PostgreSQL: the test's schema */
	char conninfo[1024];  /* PostgreSQL: the store's, in that schema */
};

static void pg_notice_quiet(void *arg, const char *msg)
{
	(void)arg;
	(void)msg;
}

/* Runs the tests' own SQL (no caller data) on the admin connection; 0 when
 * it worked. out (size bytes) gets the first column of the first row. */
static int pg_sql(const char *sql, char *out, size_t size)
{
	PGresult *res = PQexec(pg_admin, sql);
	int ok = PQresultStatus(res) == PGRES_COMMAND_OK || PQresultStatus(res) == PGRES_TUPLES_OK;

	if (!ok)
		fprintf(stderr, "test sql: %s: %s", sql, PQerrorMessage(pg_admin));
	if (ok && out != NULL)
		snprintf(out, size, "%s", PQntuples(res) > 0 ? PQgetvalue(res, 0, 0) : "");
	PQclear(res);
	return ok ? 0 : -1;
}

static int pg_sqlf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int pg_sqlf(const char *fmt, ...)
{
	char sql[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(sql, sizeof(sql), fmt, ap);
	va_end(ap);
	return pg_sql(sql, NULL, 0);
}

/* A fresh schema; the store's conninfo puts it first on its search_path
 * and names its connections after it (application_name). */
static int fx_init_pg(struct fixture *f)
{
	static int n;

	snprintf(f->schema, sizeof(f->schema), "ut_%d_%d", (int)getpid(), ++n);
	if (pg_sqlf("CREATE SCHEMA %s", f->schema) != 0)
		return -1;
	snprintf(f->conninfo, sizeof(f->conninfo), "%s options='-c search_path=%s'"
		 " application_name=%s", getenv("FCGI_SSE_TEST_PG"), f->schema, f->schema);
	return 0;
}

static int fx_init(struct fixture *f)
{
	memset(f, 0, sizeof(*f));
	if (fx_backend == BACKEND_POSTGRES)
		return fx_init_pg(f);
	snprintf(f->dir, sizeof(f->dir), "/tmp/fcgi_sse_store_XXXXXX");
	if (mkdtemp(f->dir) == NULL)
		return -1;
	snprintf(f->path, sizeof(f->path), "%s/store.db", f->dir);
	return 0;
}

/* Removes the database and its WAL files; the directory must then be
 * empty. PostgreSQL: drops the schema and all in it. */
static void fx_cleanup(struct fixture *f)
{
	static const char *const suffixes[] = { "", "-wal", "-shm", "-journal" };
	char p[128];

	if (fx_backend == BACKEND_POSTGRES) {
		CU_ASSERT_EQUAL(pg_sqlf("DROP SCHEMA %s CASCADE", f->schema), 0);
		return;
	}
	for (size_t i = 0; i < sizeof(suffixes) / sizeof(suffixes[0]); i++) {
		snprintf(p, sizeof(p), "%s%s", f->path, suffixes[i]);
		unlink(p);
	}
	CU_ASSERT_EQUAL(rmdir(f->dir), 0);
}

static struct store *fx_open(struct fixture *f)
{
	struct buf err = BUF_INIT;
	struct store *s = fx_backend == BACKEND_POSTGRES ? store_open_postgres(f->conninfo, &err)
							 : store_open_sqlite(f->path, 5000, &err);

	if (s == NULL)
		fprintf(stderr, "store open: %s\n", buf_str(&err));
	buf_release(&err);
	return s;
}

/* Opens a fresh store in a fresh directory; NULL (and no directory) on failure. */
static struct store *fx_start(struct fixture *f)
{
	struct store *s;

	if (fx_init(f) != 0)
		return NULL;
	if ((s = fx_open(f)) == NULL)
		fx_cleanup(f);
	return s;
}

static void fx_stop(struct fixture *f, struct store *s)
{
	store_close(s);
	fx_cleanup(f);
}

static int errstr_is_invalid(struct store *s)
{
	return strncmp(store_errstr(s), "invalid argument: ", 18) == 0;
}

static struct store_user user_of(const char *tenant_id, const char *username, const char *role)
{
	struct store_user u;

	memset(&u, 0, sizeof(u));
	snprintf(u.tenant_id, sizeof(u.tenant_id), "%s", tenant_id);
	snprintf(u.username, sizeof(u.username), "%s", username);
	snprintf(u.role, sizeof(u.role), "%s", role);
	snprintf(u.password_hash, sizeof(u.password_hash), "$argon2id$v=19$fake$%s", username);
	u.created_at = NOW;
	return u;
}

static struct store_session session_of(const char *id, const struct store_user *u,
				       long long expires_at, long long revoked_at)
{
	struct store_session x;

	memset(&x, 0, sizeof(x));
	snprintf(x.id, sizeof(x.id), "%s", id);
	memcpy(x.user_id, u->id, sizeof(x.user_id));
	memcpy(x.tenant_id, u->tenant_id, sizeof(x.tenant_id));
	memcpy(x.role, u->role, sizeof(x.role));
	x.created_at = NOW - 1000;
	x.expires_at = expires_at;
	x.revoked_at = revoked_at;
	return x;
}

/* Runs one SQL query on the file directly and returns its first column as
 * text in out; -1 when it failed or gave no row. */
static int peek(const char *path, const char *sql, char *out, size_t size)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	int rc = -1;

	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL) == SQLITE_OK &&
	    sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK &&
	    sqlite3_step(st) == SQLITE_ROW) {
		snprintf(out, size, "%s", (const char *)sqlite3_column_text(st, 0));
		rc = 0;
	}
	sqlite3_finalize(st);
	sqlite3_close(db);
	return rc;
}

static int poke(const char *path, const char *sql)
{
	sqlite3 *db = NULL;
	int rc;

	rc = sqlite3_open(path, &db) == SQLITE_OK &&
	     sqlite3_exec(db, sql, NULL, NULL, NULL) == SQLITE_OK ? 0 : -1;
	sqlite3_close(db);
	return rc;
}

static void test_open_creates_schema_and_reopens(void)
{
	struct fixture f;
	struct store *s = fx_start(&f);
	struct store_tenant t, got;
	char v[64];

	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	CU_ASSERT_EQUAL(store_schema_version(s), 3);
	CU_ASSERT_EQUAL(store_tenant_create(s, "acme", NOW, &t), STORE_OK);
	store_close(s);

	CU_ASSERT_EQUAL(peek(f.path, "PRAGMA user_version", v, sizeof(v)), 0);
	CU_ASSERT_STRING_EQUAL(v, "3");
	CU_ASSERT_EQUAL(peek(f.path, "PRAGMA journal_mode", v, sizeof(v)), 0);
	CU_ASSERT_STRING_EQUAL(v, "wal");
	CU_ASSERT_EQUAL(peek(f.path, "SELECT count(*) FROM sqlite_schema WHERE type = 'table'"
				     " AND name IN ('tenants', 'users', 'sessions', 'devices',"
				     " 'telemetry', 'audit', 'stream_sessions')", v, sizeof(v)), 0);
	CU_ASSERT_STRING_EQUAL(v, "7");
	CU_ASSERT_EQUAL(peek(f.path, "SELECT count(*) FROM sqlite_schema WHERE type = 'index'"
				     " AND name IN ('sessions_user', 'sessions_expires',"
				     " 'telemetry_device_ts', 'audit_tenant')", v, sizeof(v)), 0);
	CU_ASSERT_STRING_EQUAL(v, "4");

	/* a second open migrates nothing and finds the data */
	s = fx_open(&f);
	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	CU_ASSERT_EQUAL(store_schema_version(s), 3);
	CU_ASSERT_EQUAL(store_tenant_by_name(s, "acme", &got), STORE_OK);
	CU_ASSERT_STRING_EQUAL(got.id, t.id);
	fx_stop(&f, s);
	CU_ASSERT_EQUAL(peek(f.path, "PRAGMA user_version", v, sizeof(v)), -1); /* removed */
}

static void test_newer_schema_is_refused(void)
{
	struct fixture f;
	struct buf err = BUF_INIT;
	struct store *s;
	char v[64];

	CU_ASSERT_EQUAL_FATAL(fx_init(&f), 0);
	CU_ASSERT_EQUAL(poke(f.path, "PRAGMA user_version = 99"), 0);
	s = store_open_sqlite(f.path, 1000, &err);
	CU_ASSERT_PTR_NULL(s);
	CU_ASSERT_PTR_NOT_NULL(strstr(buf_str(&err), "schema version 99, but this build knows versions 0 to 3"));
	store_close(s);
	/* refused before touching anything */
	CU_ASSERT_EQUAL(peek(f.path, "PRAGMA user_version", v, sizeof(v)), 0);
	CU_ASSERT_STRING_EQUAL(v, "99");
	CU_ASSERT_EQUAL(peek(f.path, "SELECT count(*) FROM sqlite_schema", v, sizeof(v)), 0);
	CU_ASSERT_STRING_EQUAL(v, "0");
	buf_release(&err);
	fx_cleanup(&f);
}

static void test_open_failures_give_messages(void)
{
	struct buf err = BUF_INIT;

	CU_ASSERT_PTR_NULL(store_open_sqlite("/nonexistent-dir/x/store.db", 100, &err));
	CU_ASSERT_PTR_NOT_NULL(strstr(buf_str(&err), "/nonexistent-dir/x/store.db"));
	buf_reset(&err);
	/* every thread has its own connection: a private memory database
	 * cannot work, and it has no WAL */
	CU_ASSERT_PTR_NULL(store_open_sqlite(":memory:", 100, &err));
	CU_ASSERT_PTR_NOT_NULL(strstr(buf_str(&err), "wal"));
	buf_reset(&err);
	CU_ASSERT_PTR_NULL(store_open_sqlite("", 100, &err));
	CU_ASSERT_PTR_NOT_NULL(strstr(buf_str(&err), "invalid argument"));
	CU_ASSERT_PTR_NULL(store_open_sqlite(NULL, 100, NULL));
	CU_ASSERT_PTR_NULL(store_open_sqlite("/tmp/x.db", -1, NULL));
	buf_release(&err);
}

static void test_tenants(void)
{
	struct fixture f;
	struct store *s = fx_start(&f);
	struct store_tenant t, got, other;

	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	CU_ASSERT_EQUAL(store_tenant_create(s, "acme", NOW, &t), STORE_OK);
	CU_ASSERT_TRUE(session_id_valid(t.id));
	CU_ASSERT_STRING_EQUAL(t.name, "acme");
	CU_ASSERT_EQUAL(t.created_at, NOW);

	memset(&got, 0, sizeof(got));
	CU_ASSERT_EQUAL(store_tenant_by_name(s, "acme", &got), STORE_OK);
	CU_ASSERT_EQUAL(memcmp(&got, &t, sizeof(t)), 0);
	memset(&got, 0, sizeof(got));
	CU_ASSERT_EQUAL(store_tenant_by_id(s, t.id, &got), STORE_OK);
	CU_ASSERT_EQUAL(memcmp(&got, &t, sizeof(t)), 0);

	CU_ASSERT_EQUAL(store_tenant_create(s, "acme", NOW + 1, &other), STORE_CONFLICT);
	CU_ASSERT_EQUAL(store_tenant_create(s, "ACME", NOW + 1, &other), STORE_OK);
	CU_ASSERT_STRING_NOT_EQUAL(other.id, t.id);
	CU_ASSERT_EQUAL(store_tenant_by_name(s, "nobody", &got), STORE_NOT_FOUND);
	CU_ASSERT_EQUAL(store_tenant_by_id(s, "AAAAAAAAAAAAAAAAAAAAAA", &got), STORE_NOT_FOUND);
	fx_stop(&f, s);
}

static void test_users_create_lookup_and_tenant_scope(void)
{
	struct fixture f;
	struct store *s = fx_start(&f);
	struct store_tenant a, b;
	struct store_user ana, dup, ana_b, fixed, got;

	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	CU_ASSERT_EQUAL(store_tenant_create(s, "a", NOW, &a), STORE_OK);
	CU_ASSERT_EQUAL(store_tenant_create(s, "b", NOW, &b), STORE_OK);

	ana = user_of(a.id, "ana", "admin");
	CU_ASSERT_EQUAL(store_user_create(s, &ana), STORE_OK);
	CU_ASSERT_TRUE(session_id_valid(ana.id));

	memset(&got, 0, sizeof(got));
	CU_ASSERT_EQUAL(store_user_by_name(s, a.id, "ana", &got), STORE_OK);
	CU_ASSERT_EQUAL(memcmp(&got, &ana, sizeof(ana)), 0);
	memset(&got, 0, sizeof(got));
	CU_ASSERT_EQUAL(store_user_by_id(s, a.id, ana.id, &got), STORE_OK);
	CU_ASSERT_EQUAL(memcmp(&got, &ana, sizeof(ana)), 0);

	/* another tenant never sees her */
	CU_ASSERT_EQUAL(store_user_by_name(s, b.id, "ana", &got), STORE_NOT_FOUND);
	CU_ASSERT_EQUAL(store_user_by_id(s, b.id, ana.id, &got), STORE_NOT_FOUND);

	/* usernames are unique per tenant; a failed create leaves the id empty */
	dup = user_of(a.id, "ana", "viewer");
	CU_ASSERT_EQUAL(store_user_create(s, &dup), STORE_CONFLICT);
	CU_ASSERT_STRING_EQUAL(dup.id, "");
	ana_b = user_of(b.id, "ana", "viewer");
	CU_ASSERT_EQUAL(store_user_create(s, &ana_b), STORE_OK);
	CU_ASSERT_STRING_NOT_EQUAL(ana_b.id, ana.id);
	CU_ASSERT_EQUAL(store_user_by_name(s, b.id, "ana", &got), STORE_OK);
	CU_ASSERT_STRING_EQUAL(got.id, ana_b.id);
	CU_ASSERT_STRING_EQUAL(got.role, "viewer");

	/* a caller's id is kept; ids are unique too */
	fixed = user_of(a.id, "bob", "operator");
	snprintf(fixed.id, sizeof(fixed.id), "user-fixed_1");
	CU_ASSERT_EQUAL(store_user_create(s, &fixed), STORE_OK);
	CU_ASSERT_STRING_EQUAL(fixed.id, "user-fixed_1");
	fixed = user_of(a.id, "carl", "operator");
	snprintf(fixed.id, sizeof(fixed.id), "user-fixed_1");
	CU_ASSERT_EQUAL(store_user_create(s, &fixed), STORE_CONFLICT);

	/* a tenant that does not exist */
	fixed = user_of("AAAAAAAAAAAAAAAAAAAAAA", "dan", "viewer");
	CU_ASSERT_EQUAL(store_user_create(s, &fixed), STORE_NOT_FOUND);
	fx_stop(&f, s);
}

struct names {
	char v[8][STORE_NAME_MAX + 1];
	int n, stop_after;
	int inner_rc;
	struct store *s;
};

static int collect_name(void *ctx, const struct store_user *u)
{
	struct names *nm = ctx;

	if (nm->n < 8)
		memcpy(nm->v[nm->n], u->username, sizeof(nm->v[0]));
	nm->n++;
	return nm->stop_after > 0 && nm->n >= nm->stop_after;
}

static int nested_list(void *ctx, const struct store_user *u)
{
	struct names *nm = ctx;
	struct store_user other;

	nm->inner_rc = store_user_list(nm->s, u->tenant_id, collect_name, nm);
	/* a different query from inside a callback works */
	CU_ASSERT_EQUAL(store_user_by_id(nm->s, u->tenant_id, u->id, &other), STORE_OK);
	return 1;
}

static void test_user_list_order_and_early_stop(void)
{
	static const char *const names[] = { "carol", "alice", "dave", "bob" };
	struct fixture f;
	struct store *s = fx_start(&f);
	struct store_tenant a, b;
	struct store_user u;
	struct names nm;

	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	CU_ASSERT_EQUAL(store_tenant_create(s, "a", NOW, &a), STORE_OK);
	CU_ASSERT_EQUAL(store_tenant_create(s, "b", NOW, &b), STORE_OK);
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		u = user_of(a.id, names[i], "viewer");
		CU_ASSERT_EQUAL(store_user_create(s, &u), STORE_OK);
	}
	u = user_of(b.id, "aaron", "viewer");
	CU_ASSERT_EQUAL(store_user_create(s, &u), STORE_OK);

	memset(&nm, 0, sizeof(nm));
	CU_ASSERT_EQUAL(store_user_list(s, a.id, collect_name, &nm), STORE_OK);
	CU_ASSERT_EQUAL_FATAL(nm.n, 4);
	CU_ASSERT_STRING_EQUAL(nm.v[0], "alice");
	CU_ASSERT_STRING_EQUAL(nm.v[1], "bob");
	CU_ASSERT_STRING_EQUAL(nm.v[2], "carol");
	CU_ASSERT_STRING_EQUAL(nm.v[3], "dave");

	memset(&nm, 0, sizeof(nm));
	nm.stop_after = 2;
	CU_ASSERT_EQUAL(store_user_list(s, a.id, collect_name, &nm), STORE_OK);
	CU_ASSERT_EQUAL(nm.n, 2);
	CU_ASSERT_STRING_EQUAL(nm.v[1], "bob");

	memset(&nm, 0, sizeof(nm));
	CU_ASSERT_EQUAL(store_user_list(s, "AAAAAAAAAAAAAAAAAAAAAA", collect_name, &nm), STORE_OK);
	CU_ASSERT_EQUAL(nm.n, 0);

	/* the same listing from inside its own callback is refused, not corrupted */
	memset(&nm, 0, sizeof(nm));
	nm.s = s;
	CU_ASSERT_EQUAL(store_user_list(s, a.id, nested_list, &nm), STORE_OK);
	CU_ASSERT_EQUAL(nm.inner_rc, STORE_ERROR);
	CU_ASSERT_EQUAL(nm.n, 0);
	memset(&nm, 0, sizeof(nm));
	CU_ASSERT_EQUAL(store_user_list(s, a.id, collect_name, &nm), STORE_OK);
	CU_ASSERT_EQUAL(nm.n, 4);
	fx_stop(&f, s);
}

static void test_invalid_arguments_are_rejected(void)
{
	static const char *const bad_names[] = {
		"", "a b", "a/b", "caf\xc3\xa9", "tab\t", "semi;colon", "quote'", "pct%",
	};
	static const char *const bad_roles[] = { "", "root", "Admin", "viewer ", "operators" };
	struct fixture f;
	struct store *s = fx_start(&f);
	struct store_tenant t;
	struct store_user u, eve;
	struct store_session x;
	struct store_audit a;
	char longest[STORE_NAME_MAX + 2];

	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	CU_ASSERT_EQUAL(store_tenant_create(s, "ok.name-1_A", NOW, &t), STORE_OK);
	memset(longest, 'n', sizeof(longest) - 1);
	longest[STORE_NAME_MAX] = '\0';
	CU_ASSERT_EQUAL(store_tenant_create(s, longest, NOW, &t), STORE_OK);
	longest[STORE_NAME_MAX] = 'n';
	longest[STORE_NAME_MAX + 1] = '\0';
	CU_ASSERT_EQUAL(store_tenant_create(s, longest, NOW, &t), STORE_ERROR);
	CU_ASSERT_TRUE(errstr_is_invalid(s));
	CU_ASSERT_EQUAL(store_tenant_by_name(s, "ok.name-1_A", &t), STORE_OK);
	for (size_t i = 0; i < sizeof(bad_names) / sizeof(bad_names[0]); i++) {
		CU_ASSERT_EQUAL(store_tenant_create(s, bad_names[i], NOW, &t), STORE_ERROR);
		CU_ASSERT_TRUE(errstr_is_invalid(s));
		CU_ASSERT_EQUAL(store_tenant_by_name(s, bad_names[i], &t), STORE_ERROR);
		u = user_of(t.id, "x", "viewer");
		snprintf(u.username, sizeof(u.username), "%s", bad_names[i]);
		CU_ASSERT_EQUAL(store_user_create(s, &u), STORE_ERROR);
		CU_ASSERT_PTR_NOT_NULL(strstr(store_errstr(s), "username"));
	}
	CU_ASSERT_EQUAL(store_tenant_create(s, NULL, NOW, &t), STORE_ERROR);
	CU_ASSERT_EQUAL(store_tenant_create(s, "fine", NOW, NULL), STORE_ERROR);
	CU_ASSERT_EQUAL(store_tenant_by_name(s, "fine", &t), STORE_NOT_FOUND);

	CU_ASSERT_EQUAL(store_tenant_by_name(s, "ok.name-1_A", &t), STORE_OK);
	eve = user_of(t.id, "eve", "viewer");
	CU_ASSERT_EQUAL(store_user_create(s, &eve), STORE_OK);
	for (size_t i = 0; i < sizeof(bad_roles) / sizeof(bad_roles[0]); i++) {
		u = user_of(t.id, "mallory", bad_roles[i]);
		CU_ASSERT_EQUAL(store_user_create(s, &u), STORE_ERROR);
		CU_ASSERT_PTR_NOT_NULL(strstr(store_errstr(s), "role"));
		x = session_of("sess-1", &eve, NOW + 60, 0);
		snprintf(x.role, sizeof(x.role), "%s", bad_roles[i]);
		CU_ASSERT_EQUAL(store_session_create(s, &x), STORE_ERROR);
		CU_ASSERT_TRUE(errstr_is_invalid(s));
	}
	CU_ASSERT_EQUAL(store_user_by_name(s, t.id, "mallory", &u), STORE_NOT_FOUND);
	u = user_of(t.id, "frank", "viewer");
	u.password_hash[0] = '\0';
	CU_ASSERT_EQUAL(store_user_create(s, &u), STORE_ERROR);
	u = user_of(t.id, "frank", "viewer");
	snprintf(u.id, sizeof(u.id), "has space");
	CU_ASSERT_EQUAL(store_user_create(s, &u), STORE_ERROR);
	CU_ASSERT_EQUAL(store_user_create(s, NULL), STORE_ERROR);

	/* ids */
	CU_ASSERT_EQUAL(store_tenant_by_id(s, "", &t), STORE_ERROR);
	CU_ASSERT_EQUAL(store_tenant_by_id(s, NULL, &t), STORE_ERROR);
	CU_ASSERT_EQUAL(store_user_by_id(s, "a b", "x", &u), STORE_ERROR);
	CU_ASSERT_EQUAL(store_user_by_name(s, "", "eve", &u), STORE_ERROR);
	CU_ASSERT_EQUAL(store_session_get(s, "", &x), STORE_ERROR);
	CU_ASSERT_EQUAL(store_session_revoke(s, "../x", NOW), STORE_ERROR);
	CU_ASSERT_EQUAL(store_session_revoke(s, "x", 0), STORE_ERROR);
	CU_ASSERT_EQUAL(store_session_revoke_user(s, t.id, "", NOW, NULL, NULL), STORE_ERROR);
	CU_ASSERT_EQUAL(store_session_purge(s, NOW, -1, NULL, NULL), STORE_ERROR);
	CU_ASSERT_EQUAL(store_user_list(s, t.id, NULL, NULL), STORE_ERROR);
	CU_ASSERT_TRUE(errstr_is_invalid(s));

	/* sessions that end before they begin, audit without an action */
	x = session_of("sess-2", &eve, NOW - 2000, 0);
	CU_ASSERT_EQUAL(store_session_create(s, &x), STORE_ERROR);
	memset(&a, 0, sizeof(a));
	memcpy(a.tenant_id, t.id, sizeof(a.tenant_id));
	CU_ASSERT_EQUAL(store_audit_append(s, &a), STORE_ERROR);
	CU_ASSERT_EQUAL(store_audit_list(s, t.id, 0, 0, NULL, NULL), STORE_ERROR);
	CU_ASSERT_TRUE(errstr_is_invalid(s));
	fx_stop(&f, s);
}

static void test_session_create_get_revoke(void)
{
	struct fixture f;
	struct store *s = fx_start(&f);
	struct store_tenant a, b;
	struct store_user ana, bob;
	struct store_session x, got;
	char id[SESSION_ID_LEN + 1];

	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	CU_ASSERT_EQUAL(store_tenant_create(s, "a", NOW, &a), STORE_OK);
	CU_ASSERT_EQUAL(store_tenant_create(s, "b", NOW, &b), STORE_OK);
	ana = user_of(a.id, "ana", "operator");
	bob = user_of(b.id, "bob", "admin");
	CU_ASSERT_EQUAL(store_user_create(s, &ana), STORE_OK);
	CU_ASSERT_EQUAL(store_user_create(s, &bob), STORE_OK);

	CU_ASSERT_EQUAL(session_id_new(id), 0);
	x = session_of(id, &ana, NOW + 900, 0);
	CU_ASSERT_EQUAL(store_session_create(s, &x), STORE_OK);
	memset(&got, 0, sizeof(got));
	CU_ASSERT_EQUAL(store_session_get(s, x.id, &got), STORE_OK);
	CU_ASSERT_EQUAL(memcmp(&got, &x, sizeof(x)), 0);
	CU_ASSERT_EQUAL(store_session_create(s, &x), STORE_CONFLICT);

	CU_ASSERT_EQUAL(store_session_revoke(s, x.id, NOW + 10), STORE_OK);
	CU_ASSERT_EQUAL(store_session_get(s, x.id, &got), STORE_OK);
	CU_ASSERT_EQUAL(got.revoked_at, NOW + 10);
	/* idempotent, and the first time stays */
	CU_ASSERT_EQUAL(store_session_revoke(s, x.id, NOW + 20), STORE_OK);
	CU_ASSERT_EQUAL(store_session_get(s, x.id, &got), STORE_OK);
	CU_ASSERT_EQUAL(got.revoked_at, NOW + 10);

	CU_ASSERT_EQUAL(store_session_revoke(s, "AAAAAAAAAAAAAAAAAAAAAA", NOW), STORE_NOT_FOUND);
	CU_ASSERT_EQUAL(store_session_get(s, "AAAAAAAAAAAAAAAAAAAAAA", &got), STORE_NOT_FOUND);

	/* a session needs its user, in its tenant */
	x = session_of("s-ghost", &ana, NOW + 900, 0);
	snprintf(x.user_id, sizeof(x.user_id), "AAAAAAAAAAAAAAAAAAAAAA");
	CU_ASSERT_EQUAL(store_session_create(s, &x), STORE_NOT_FOUND);
	x = session_of("s-cross", &ana, NOW + 900, 0);
	memcpy(x.tenant_id, b.id, sizeof(x.tenant_id));
	CU_ASSERT_EQUAL(store_session_create(s, &x), STORE_NOT_FOUND);
	fx_stop(&f, s);
}

struct seen {
	char v[16][STORE_ID_MAX + 1];
	int n;
};

static int record_id(void *ctx, const char *id)
{
	struct seen *sn = ctx;

	if (sn->n < 16)
		snprintf(sn->v[sn->n], sizeof(sn->v[0]), "%s", id);
	sn->n++;
	return 1; /* asking to stop must not skip any id */
}

static int seen_count(const struct seen *sn, const char *id)
{
	int k = 0;

	for (int i = 0; i < sn->n && i < 16; i++)
		k += strcmp(sn->v[i], id) == 0;
	return k;
}

static long long revoked_at(struct store *s, const char *id)
{
	struct store_session x;

	return store_session_get(s, id, &x) == STORE_OK ? x.revoked_at : -1;
}

static void test_revoke_user_reports_each_live_session(void)
{
	static const char *const live[] = { "ana-1", "ana-2", "ana-3" };
	struct fixture f;
	struct store *s = fx_start(&f);
	struct store_tenant a, b;
	struct store_user ana, bob;
	struct store_session x;
	struct seen sn;

	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	CU_ASSERT_EQUAL(store_tenant_create(s, "a", NOW, &a), STORE_OK);
	CU_ASSERT_EQUAL(store_tenant_create(s, "b", NOW, &b), STORE_OK);
	ana = user_of(a.id, "ana", "viewer");
	bob = user_of(a.id, "bob", "viewer");
	CU_ASSERT_EQUAL(store_user_create(s, &ana), STORE_OK);
	CU_ASSERT_EQUAL(store_user_create(s, &bob), STORE_OK);
	for (int i = 0; i < 3; i++) {
		x = session_of(live[i], &ana, NOW + 900, 0);
		CU_ASSERT_EQUAL(store_session_create(s, &x), STORE_OK);
	}
	x = session_of("ana-revoked", &ana, NOW + 900, NOW - 5);
	CU_ASSERT_EQUAL(store_session_create(s, &x), STORE_OK);
	x = session_of("ana-expired", &ana, NOW - 1, 0);
	CU_ASSERT_EQUAL(store_session_create(s, &x), STORE_OK);
	x = session_of("bob-1", &bob, NOW + 900, 0);
	CU_ASSERT_EQUAL(store_session_create(s, &x), STORE_OK);

	/* the wrong tenant reaches nothing */
	memset(&sn, 0, sizeof(sn));
	CU_ASSERT_EQUAL(store_session_revoke_user(s, b.id, ana.id, NOW, record_id, &sn), STORE_OK);
	CU_ASSERT_EQUAL(sn.n, 0);

	memset(&sn, 0, sizeof(sn));
	CU_ASSERT_EQUAL(store_session_revoke_user(s, a.id, ana.id, NOW, record_id, &sn), STORE_OK);
	CU_ASSERT_EQUAL(sn.n, 3);
	for (int i = 0; i < 3; i++) {
		CU_ASSERT_EQUAL(seen_count(&sn, live[i]), 1);
		CU_ASSERT_EQUAL(revoked_at(s, live[i]), NOW);
	}
	CU_ASSERT_EQUAL(revoked_at(s, "ana-revoked"), NOW - 5);
	CU_ASSERT_EQUAL(revoked_at(s, "ana-expired"), 0);
	CU_ASSERT_EQUAL(revoked_at(s, "bob-1"), 0);

	/* nothing live is left; a NULL callback is allowed */
	memset(&sn, 0, sizeof(sn));
	CU_ASSERT_EQUAL(store_session_revoke_user(s, a.id, ana.id, NOW + 1, record_id, &sn),
			STORE_OK);
	CU_ASSERT_EQUAL(sn.n, 0);
	CU_ASSERT_EQUAL(store_session_revoke_user(s, a.id, bob.id, NOW, NULL, NULL), STORE_OK);
	CU_ASSERT_EQUAL(revoked_at(s, "bob-1"), NOW);
	fx_stop(&f, s);
}

static void test_purge_deletes_expired_and_old_revoked(void)
{
	struct fixture f;
	struct store *s = fx_start(&f);
	struct store_tenant a;
	struct store_user ana;
	struct store_session x;
	struct seen sn;

	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	CU_ASSERT_EQUAL(store_tenant_create(s, "a", NOW, &a), STORE_OK);
	ana = user_of(a.id, "ana", "viewer");
	CU_ASSERT_EQUAL(store_user_create(s, &ana), STORE_OK);
	x = session_of("expired", &ana, NOW - 10, 0);
	CU_ASSERT_EQUAL(store_session_create(s, &x), STORE_OK);
	x = session_of("revoked-old", &ana, NOW + 900, NOW - 200);
	CU_ASSERT_EQUAL(store_session_create(s, &x), STORE_OK);
	x = session_of("revoked-new", &ana, NOW + 900, NOW - 50);
	CU_ASSERT_EQUAL(store_session_create(s, &x), STORE_OK);
	x = session_of("live", &ana, NOW + 900, 0);
	CU_ASSERT_EQUAL(store_session_create(s, &x), STORE_OK);

	memset(&sn, 0, sizeof(sn));
	CU_ASSERT_EQUAL(store_session_purge(s, NOW, 100, record_id, &sn), STORE_OK);
	CU_ASSERT_EQUAL(sn.n, 2);
	CU_ASSERT_EQUAL(seen_count(&sn, "expired"), 1);
	CU_ASSERT_EQUAL(seen_count(&sn, "revoked-old"), 1);
	CU_ASSERT_EQUAL(revoked_at(s, "expired"), -1);
	CU_ASSERT_EQUAL(revoked_at(s, "revoked-old"), -1);
	CU_ASSERT_EQUAL(revoked_at(s, "revoked-new"), NOW - 50);
	CU_ASSERT_EQUAL(revoked_at(s, "live"), 0);

	memset(&sn, 0, sizeof(sn));
	CU_ASSERT_EQUAL(store_session_purge(s, NOW, 100, record_id, &sn), STORE_OK);
	CU_ASSERT_EQUAL(sn.n, 0);
	CU_ASSERT_EQUAL(store_session_purge(s, NOW + 1000, 0, NULL, NULL), STORE_OK);
	CU_ASSERT_EQUAL(revoked_at(s, "live"), -1);
	fx_stop(&f, s);
}

struct audits {
	struct store_audit v[8];
	int n, stop_after;
};

static int collect_audit(void *ctx, const struct store_audit *a)
{
	struct audits *au = ctx;

	if (au->n < 8)
		au->v[au->n] = *a;
	au->n++;
	return au->stop_after > 0 && au->n >= au->stop_after;
}

static int append(struct store *s, const char *tenant_id, const char *action, long long at)
{
	struct store_audit a;

	memset(&a, 0, sizeof(a));
	snprintf(a.tenant_id, sizeof(a.tenant_id), "%s", tenant_id);
	snprintf(a.actor_id, sizeof(a.actor_id), "actor-1");
	snprintf(a.action, sizeof(a.action), "%s", action);
	snprintf(a.target, sizeof(a.target), "dev-42");
	snprintf(a.detail, sizeof(a.detail), "{\"n\":%lld}", at);
	a.at = at;
	return store_audit_append(s, &a);
}

static void test_audit_append_and_list(void)
{
	struct fixture f;
	struct store *s = fx_start(&f);
	struct store_tenant a, b;
	struct store_audit rec;
	struct audits au;
	char action[16];

	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	CU_ASSERT_EQUAL(store_tenant_create(s, "a", NOW, &a), STORE_OK);
	CU_ASSERT_EQUAL(store_tenant_create(s, "b", NOW, &b), STORE_OK);
	for (int i = 1; i <= 5; i++) {
		snprintf(action, sizeof(action), "a.%d", i);
		CU_ASSERT_EQUAL(append(s, a.id, action, NOW + i), STORE_OK);
		if (i <= 2)
			CU_ASSERT_EQUAL(append(s, b.id, "b.x", NOW + i), STORE_OK);
	}
	/* the system acts with an empty actor */
	memset(&rec, 0, sizeof(rec));
	memcpy(rec.tenant_id, b.id, sizeof(rec.tenant_id));
	snprintf(rec.action, sizeof(rec.action), "tenant.create");
	rec.at = NOW + 9;
	CU_ASSERT_EQUAL(store_audit_append(s, &rec), STORE_OK);
	CU_ASSERT_EQUAL(append(s, "AAAAAAAAAAAAAAAAAAAAAA", "x", NOW), STORE_NOT_FOUND);

	memset(&au, 0, sizeof(au));
	CU_ASSERT_EQUAL(store_audit_list(s, a.id, 0, 3, collect_audit, &au), STORE_OK);
	CU_ASSERT_EQUAL_FATAL(au.n, 3);
	CU_ASSERT_STRING_EQUAL(au.v[0].action, "a.5");
	CU_ASSERT_STRING_EQUAL(au.v[1].action, "a.4");
	CU_ASSERT_STRING_EQUAL(au.v[2].action, "a.3");
	CU_ASSERT_STRING_EQUAL(au.v[0].tenant_id, a.id);
	CU_ASSERT_STRING_EQUAL(au.v[0].actor_id, "actor-1");
	CU_ASSERT_STRING_EQUAL(au.v[0].target, "dev-42");
	CU_ASSERT_STRING_EQUAL(au.v[0].detail, "{\"n\":1800000005}");
	CU_ASSERT_EQUAL(au.v[0].at, NOW + 5);

	memset(&au, 0, sizeof(au));
	CU_ASSERT_EQUAL(store_audit_list(s, a.id, 0, 100, collect_audit, &au), STORE_OK);
	CU_ASSERT_EQUAL(au.n, 5);
	memset(&au, 0, sizeof(au));
	au.stop_after = 2;
	CU_ASSERT_EQUAL(store_audit_list(s, a.id, 0, 100, collect_audit, &au), STORE_OK);
	CU_ASSERT_EQUAL(au.n, 2);

	memset(&au, 0, sizeof(au));
	CU_ASSERT_EQUAL(store_audit_list(s, b.id, 0, 100, collect_audit, &au), STORE_OK);
	CU_ASSERT_EQUAL_FATAL(au.n, 3);
	CU_ASSERT_STRING_EQUAL(au.v[0].action, "tenant.create");
	CU_ASSERT_STRING_EQUAL(au.v[0].actor_id, "");
	CU_ASSERT_STRING_EQUAL(au.v[1].action, "b.x");
	CU_ASSERT_STRING_EQUAL(au.v[2].tenant_id, b.id);
	fx_stop(&f, s);
}

#define N_THREADS 4
#define N_USERS 200

struct worker {
	struct store *s;
	const char *tenant_id;
	int index;
	int failures;
	char errstr[256];
};

static void *create_users(void *p)
{
	struct worker *w = p;
	struct store_user u;
	char name[32];
	int rc;

	for (int i = 0; i < N_USERS; i++) {
		snprintf(name, sizeof(name), "t%d-u%03d", w->index, i);
		u = user_of(w->tenant_id, name, "viewer");
		if ((rc = store_user_create(w->s, &u)) != STORE_OK && w->failures++ == 0)
			snprintf(w->errstr, sizeof(w->errstr), "rc %d: %s", rc,
				 store_errstr(w->s));
	}
	return NULL;
}

static int count_user(void *ctx, const struct store_user *u)
{
	(void)u;
	(*(int *)ctx)++;
	return 0;
}

static void test_concurrent_creates_use_own_connections(void)
{
	struct fixture f;
	struct store *s = fx_start(&f);
	struct worker w[N_THREADS];
	pthread_t th[N_THREADS];
	struct store_tenant t;
	int count = 0;

	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	CU_ASSERT_EQUAL(store_tenant_create(s, "busy", NOW, &t), STORE_OK);
	for (int i = 0; i < N_THREADS; i++) {
		w[i] = (struct worker){ .s = s, .tenant_id = t.id, .index = i };
		CU_ASSERT_EQUAL_FATAL(pthread_create(&th[i], NULL, create_users, &w[i]), 0);
	}
	for (int i = 0; i < N_THREADS; i++) {
		pthread_join(th[i], NULL);
		if (w[i].failures != 0)
			fprintf(stderr, "thread %d: %d failures, first %s\n", i, w[i].failures,
				w[i].errstr);
		CU_ASSERT_EQUAL(w[i].failures, 0);
	}
	CU_ASSERT_EQUAL(store_user_list(s, t.id, count_user, &count), STORE_OK);
	CU_ASSERT_EQUAL(count, N_THREADS * N_USERS);
	fx_stop(&f, s);
}

struct closer {
	struct store *s;
	pthread_barrier_t *used, *closed; /* NULL: exit right after use */
	int rc;
	char errstr[256];
};

static void *use_then_wait(void *p)
{
	struct closer *c = p;
	struct store_tenant t;

	c->rc = store_tenant_by_name(c->s, "acme", &t);
	/* an argument error is this thread's own */
	store_tenant_by_name(c->s, "bad name", &t);
	snprintf(c->errstr, sizeof(c->errstr), "%s", store_errstr(c->s));
	if (c->used != NULL) {
		pthread_barrier_wait(c->used);
		pthread_barrier_wait(c->closed); /* exits after store_close */
	}
	return NULL;
}

/* Connections of exited threads are closed by their destructor; those of
 * live threads and of this one by store_close. LeakSanitizer checks both. */
static void test_close_frees_every_thread_connection(void)
{
	struct fixture f;
	struct store *s = fx_start(&f);
	struct store_tenant t;
	pthread_barrier_t used, closed;
	struct closer gone[3], alive[2];
	pthread_t th_gone[3], th_alive[2];

	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	CU_ASSERT_EQUAL(store_tenant_create(s, "acme", NOW, &t), STORE_OK);
	CU_ASSERT_EQUAL(store_tenant_by_name(s, "-", NULL), STORE_ERROR);
	for (int i = 0; i < 3; i++) {
		gone[i] = (struct closer){ .s = s };
		CU_ASSERT_EQUAL_FATAL(pthread_create(&th_gone[i], NULL, use_then_wait, &gone[i]), 0);
	}
	for (int i = 0; i < 3; i++) {
		pthread_join(th_gone[i], NULL);
		CU_ASSERT_EQUAL(gone[i].rc, STORE_OK);
		CU_ASSERT_PTR_NOT_NULL(strstr(gone[i].errstr, "tenant name"));
	}
	/* this thread's error was not overwritten by the others */
	CU_ASSERT_PTR_NOT_NULL(strstr(store_errstr(s), "out is NULL"));

	pthread_barrier_init(&used, NULL, 3);
	pthread_barrier_init(&closed, NULL, 3);
	for (int i = 0; i < 2; i++) {
		alive[i] = (struct closer){ .s = s, .used = &used, .closed = &closed };
		CU_ASSERT_EQUAL_FATAL(pthread_create(&th_alive[i], NULL, use_then_wait, &alive[i]),
				      0);
	}
	pthread_barrier_wait(&used);
	fx_stop(&f, s);
	pthread_barrier_wait(&closed);
	for (int i = 0; i < 2; i++) {
		pthread_join(th_alive[i], NULL);
		CU_ASSERT_EQUAL(alive[i].rc, STORE_OK);
	}
	pthread_barrier_destroy(&used);
	pthread_barrier_destroy(&closed);
}

static void stream_session_fill(struct store_stream_session *x, const char *id,
				const char *tenant, const char *fgp)
{
	memset(x, 0, sizeof(*x));
	snprintf(x->id, sizeof(x->id), "%s", id);
	snprintf(x->tenant_id, sizeof(x->tenant_id), "%s", tenant);
	snprintf(x->user_id, sizeof(x->user_id), "user1");
	snprintf(x->session_id, sizeof(x->session_id), "auth1");
	snprintf(x->role, sizeof(x->role), "viewer");
	snprintf(x->fgp, sizeof(x->fgp), "%s", fgp);
	x->created_at = NOW;
	x->connect_by = NOW + 30;
	x->expires_at = NOW + 3600;
}

static void test_stream_sessions(void)
{
	struct fixture f;
	struct store *s = fx_start(&f);
	struct store_stream_session a, b, c, got;

	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	stream_session_fill(&a, "ssA", "tenantA", "");
	stream_session_fill(&b, "ssB", "tenantA", "ab12");
	stream_session_fill(&c, "ssC", "tenantB", "");
	CU_ASSERT_EQUAL(store_stream_session_create(s, &a), STORE_OK);
	CU_ASSERT_EQUAL(store_stream_session_create(s, &b), STORE_OK);
	CU_ASSERT_EQUAL(store_stream_session_create(s, &c), STORE_OK);
	CU_ASSERT_EQUAL(store_stream_session_create(s, &a), STORE_CONFLICT);
	memset(&got, 0, sizeof(got));
	CU_ASSERT_EQUAL(store_stream_session_get(s, "ssA", &got), STORE_OK);
	CU_ASSERT_EQUAL(memcmp(&got, &a, sizeof(a)), 0);
	CU_ASSERT_EQUAL(store_stream_session_get(s, "nope", &got), STORE_NOT_FOUND);

	/* the first claim wins, the second sees the conflict */
	CU_ASSERT_EQUAL(store_stream_session_claim(s, "ssA", NOW + 1, "task:1,task:2"), STORE_OK);
	CU_ASSERT_EQUAL(store_stream_session_claim(s, "ssA", NOW + 2, ""), STORE_CONFLICT);
	CU_ASSERT_EQUAL(store_stream_session_claim(s, "nope", NOW + 2, ""), STORE_NOT_FOUND);
	CU_ASSERT_EQUAL(store_stream_session_get(s, "ssA", &got), STORE_OK);
	CU_ASSERT_EQUAL(got.used_at, NOW + 1);
	CU_ASSERT_STRING_EQUAL(got.topics, "task:1,task:2");
	CU_ASSERT_EQUAL(store_stream_session_claim(s, "ssB", NOW + 1, "task:10"), STORE_OK);
	CU_ASSERT_EQUAL(store_stream_session_claim(s, "ssC", NOW + 1, "task:1"), STORE_OK);

	/* finishing a topic: whole list members only, one tenant only */
	CU_ASSERT_EQUAL(store_stream_session_finish_topic(s, "tenantA", "task:1", NOW + 5), STORE_OK);
	store_stream_session_get(s, "ssA", &got);
	CU_ASSERT_EQUAL(got.finished_at, NOW + 5);
	store_stream_session_get(s, "ssB", &got);
	CU_ASSERT_EQUAL(got.finished_at, 0); /* task:10 is not task:1 */
	store_stream_session_get(s, "ssC", &got);
	CU_ASSERT_EQUAL(got.finished_at, 0); /* other tenant */
	CU_ASSERT_EQUAL(store_stream_session_finish_topic(s, "tenantA", "a,b", NOW), STORE_ERROR);

	/* purge removes the expired ones */
	CU_ASSERT_EQUAL(store_stream_session_purge(s, NOW + 3601), STORE_OK);
	CU_ASSERT_EQUAL(store_stream_session_get(s, "ssA", &got), STORE_NOT_FOUND);
	stream_session_fill(&a, "ssD", "tenantA", "");
	a.connect_by = NOW - 1; /* before creation */
	CU_ASSERT_EQUAL(store_stream_session_create(s, &a), STORE_ERROR);
	fx_stop(&f, s);
}


/* ------------------------------------------------------------ devices */

static struct store_device device_of(const char *tenant_id, const char *id, const char *status)
{
	struct store_device d;

	memset(&d, 0, sizeof(d));
	snprintf(d.id, sizeof(d.id), "%s", id);
	snprintf(d.tenant_id, sizeof(d.tenant_id), "%s", tenant_id);
	snprintf(d.name, sizeof(d.name), "sensor %s", id);
	snprintf(d.status, sizeof(d.status), "%s", status);
	snprintf(d.metadata, sizeof(d.metadata), "{\"room\":\"%s\"}", id);
	d.created_at = d.updated_at = NOW;
	d.version = 1;
	return d;
}

static struct store_audit audit_of(const char *tenant_id, const char *action, const char *target)
{
	struct store_audit a;

	memset(&a, 0, sizeof(a));
	snprintf(a.tenant_id, sizeof(a.tenant_id), "%s", tenant_id);
	snprintf(a.actor_id, sizeof(a.actor_id), "actor-1");
	snprintf(a.action, sizeof(a.action), "%s", action);
	snprintf(a.target, sizeof(a.target), "%s", target);
	snprintf(a.request_id, sizeof(a.request_id), "req-%s", action);
	a.at = NOW;
	return a;
}

static struct store_event event_of(const char *tenant_id, const char *type, const char *data)
{
	struct store_event ev;

	memset(&ev, 0, sizeof(ev));
	snprintf(ev.tenant_id, sizeof(ev.tenant_id), "%s", tenant_id);
	snprintf(ev.type, sizeof(ev.type), "%s", type);
	snprintf(ev.topic, sizeof(ev.topic), "device:x");
	ev.data = data;
	ev.created_at = NOW;
	return ev;
}

struct events_seen {
	long long seq[16];
	char type[16][STORE_TYPE_MAX + 1];
	char data[16][64];
	int n;
};

static int collect_event(void *ctx, const struct store_event *e)
{
	struct events_seen *es = ctx;

	if (es->n < 16) {
		es->seq[es->n] = e->seq;
		snprintf(es->type[es->n], sizeof(es->type[0]), "%s", e->type);
		snprintf(es->data[es->n], sizeof(es->data[0]), "%s", e->data);
	}
	es->n++;
	return 0;
}

static int outbox_count(struct store *s)
{
	struct events_seen es;

	memset(&es, 0, sizeof(es));
	CU_ASSERT_EQUAL(store_outbox_list(s, NOW + 1000, 100, collect_event, &es), STORE_OK);
	return es.n;
}

static int audit_count(struct store *s, const char *tenant_id)
{
	struct audits au;

	memset(&au, 0, sizeof(au));
	CU_ASSERT_EQUAL(store_audit_list(s, tenant_id, 0, 100, collect_audit, &au), STORE_OK);
	return au.n;
}

/* Each change commits with its audit record and its event, or not at all. */
static void test_device_changes_commit_with_audit_and_event(void)
{
	struct fixture f;
	struct store *s = fx_start(&f);
	struct store_tenant a, b;
	struct store_device d, got;
	struct store_audit au;
	struct store_event ev;
	struct events_seen es;
	struct audits list;

	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	CU_ASSERT_EQUAL(store_tenant_create(s, "a", NOW, &a), STORE_OK);
	CU_ASSERT_EQUAL(store_tenant_create(s, "b", NOW, &b), STORE_OK);
	d = device_of(a.id, "dev1", "online");
	au = audit_of(a.id, "device.create", "dev1");
	ev = event_of(a.id, "device.updated", "{\"v\":1}");
	CU_ASSERT_EQUAL(store_device_create(s, &d, &au, &ev), STORE_OK);
	CU_ASSERT(ev.seq > 0);
	CU_ASSERT_EQUAL(store_device_get(s, a.id, "dev1", &got), STORE_OK);
	CU_ASSERT_STRING_EQUAL(got.name, "sensor dev1");
	CU_ASSERT_STRING_EQUAL(got.metadata, "{\"room\":\"dev1\"}");
	CU_ASSERT_EQUAL(got.version, 1);
	CU_ASSERT_EQUAL(got.last_seen_at, 0);
	CU_ASSERT_EQUAL(store_device_get(s, b.id, "dev1", &got), STORE_NOT_FOUND);
	/* the same id again: refused, and nothing else was written */
	CU_ASSERT_EQUAL(store_device_create(s, &d, &au, &ev), STORE_CONFLICT);
	CU_ASSERT_EQUAL(audit_count(s, a.id), 1);
	CU_ASSERT_EQUAL(outbox_count(s), 1);

	snprintf(d.name, sizeof(d.name), "renamed");
	d.updated_at = NOW + 5;
	au = audit_of(a.id, "device.update", "dev1");
	ev = event_of(a.id, "device.updated", "{\"v\":2}");
	CU_ASSERT_EQUAL(store_device_update(s, &d, &au, &ev), STORE_OK); /* version 1 -> 2 */
	CU_ASSERT_EQUAL(store_device_get(s, a.id, "dev1", &got), STORE_OK);
	CU_ASSERT_STRING_EQUAL(got.name, "renamed");
	CU_ASSERT_EQUAL(got.version, 2);
	CU_ASSERT_EQUAL(got.updated_at, NOW + 5);
	/* a change made from version 1 lost the race: nothing is written */
	CU_ASSERT_EQUAL(store_device_update(s, &d, &au, &ev), STORE_CONFLICT);
	/* another tenant's device does not exist for it */
	d = device_of(b.id, "dev1", "online");
	au = audit_of(b.id, "device.update", "dev1");
	ev = event_of(b.id, "device.updated", "{}");
	CU_ASSERT_EQUAL(store_device_update(s, &d, &au, &ev), STORE_NOT_FOUND);
	CU_ASSERT_EQUAL(store_device_delete(s, b.id, "dev1", &au, &ev), STORE_NOT_FOUND);
	CU_ASSERT_EQUAL(audit_count(s, a.id), 2);
	CU_ASSERT_EQUAL(audit_count(s, b.id), 0);
	CU_ASSERT_EQUAL(outbox_count(s), 2);

	au = audit_of(a.id, "device.delete", "dev1");
	ev = event_of(a.id, "device.deleted", "{\"id\":\"dev1\"}");
	CU_ASSERT_EQUAL(store_device_delete(s, a.id, "dev1", &au, &ev), STORE_OK);
	CU_ASSERT_EQUAL(store_device_get(s, a.id, "dev1", &got), STORE_NOT_FOUND);
	CU_ASSERT_EQUAL(store_device_delete(s, a.id, "dev1", &au, &ev), STORE_NOT_FOUND);

	memset(&es, 0, sizeof(es));
	CU_ASSERT_EQUAL(store_outbox_list(s, NOW, 100, collect_event, &es), STORE_OK);
	CU_ASSERT_EQUAL_FATAL(es.n, 3);
	CU_ASSERT(es.seq[0] < es.seq[1] && es.seq[1] < es.seq[2]); /* oldest first */
	CU_ASSERT_STRING_EQUAL(es.data[1], "{\"v\":2}");
	CU_ASSERT_STRING_EQUAL(es.type[2], "device.deleted");
	memset(&es, 0, sizeof(es));
	CU_ASSERT_EQUAL(store_outbox_list(s, NOW - 1, 100, collect_event, &es), STORE_OK);
	CU_ASSERT_EQUAL(es.n, 0); /* none created that early */
	CU_ASSERT_EQUAL(store_outbox_delete(s, ev.seq, ev.seq), STORE_OK);
	CU_ASSERT_EQUAL(outbox_count(s), 2);

	memset(&list, 0, sizeof(list));
	CU_ASSERT_EQUAL(store_audit_list(s, a.id, 0, 100, collect_audit, &list), STORE_OK);
	CU_ASSERT_EQUAL_FATAL(list.n, 3);
	CU_ASSERT_STRING_EQUAL(list.v[0].action, "device.delete");
	CU_ASSERT_STRING_EQUAL(list.v[0].request_id, "req-device.delete");
	CU_ASSERT(list.v[0].seq > list.v[1].seq && list.v[1].seq > list.v[2].seq);
	/* the cursor: older than the newest */
	memset(&au, 0, sizeof(au));
	{
		long long newest = list.v[0].seq;
		memset(&list, 0, sizeof(list));
		CU_ASSERT_EQUAL(store_audit_list(s, a.id, newest, 100, collect_audit, &list), STORE_OK);
		CU_ASSERT_EQUAL(list.n, 2);
		CU_ASSERT_STRING_EQUAL(list.v[0].action, "device.update");
	}
	fx_stop(&f, s);
}

struct ids_seen {
	char id[16][STORE_ID_MAX + 1];
	int n;
};

static int collect_device(void *ctx, const struct store_device *d)
{
	struct ids_seen *is = ctx;

	if (is->n < 16)
		snprintf(is->id[is->n], sizeof(is->id[0]), "%s", d->id);
	is->n++;
	return 0;
}

static void test_device_pages_and_counts(void)
{
	static const char *const st[] = { "online", "offline", "maintenance" };
	struct fixture f;
	struct store *s = fx_start(&f);
	struct store_tenant a, b;
	struct store_device d;
	struct store_audit au;
	struct store_event ev;
	struct ids_seen is;
	char id[8];
	long long n;

	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	CU_ASSERT_EQUAL(store_tenant_create(s, "a", NOW, &a), STORE_OK);
	CU_ASSERT_EQUAL(store_tenant_create(s, "b", NOW, &b), STORE_OK);
	for (int i = 7; i >= 1; i--) { /* created out of id order */
		snprintf(id, sizeof(id), "d%d", i);
		d = device_of(a.id, id, st[i % 3]);
		au = audit_of(a.id, "device.create", id);
		ev = event_of(a.id, "device.updated", "{}");
		CU_ASSERT_EQUAL(store_device_create(s, &d, &au, &ev), STORE_OK);
	}
	d = device_of(b.id, "d0", "online");
	CU_ASSERT_EQUAL(store_device_create(s, &d, &au, &ev), STORE_OK);

	memset(&is, 0, sizeof(is));
	CU_ASSERT_EQUAL(store_device_list(s, a.id, NULL, NULL, 0, 3, collect_device, &is), STORE_OK);
	CU_ASSERT_EQUAL_FATAL(is.n, 3);
	CU_ASSERT_STRING_EQUAL(is.id[0], "d1");
	CU_ASSERT_STRING_EQUAL(is.id[2], "d3");
	memset(&is, 0, sizeof(is));
	CU_ASSERT_EQUAL(store_device_list(s, a.id, NULL, "d3", 0, 3, collect_device, &is), STORE_OK);
	CU_ASSERT_EQUAL_FATAL(is.n, 3);
	CU_ASSERT_STRING_EQUAL(is.id[0], "d4");
	memset(&is, 0, sizeof(is));
	CU_ASSERT_EQUAL(store_device_list(s, a.id, NULL, "d6", 0, 3, collect_device, &is), STORE_OK);
	CU_ASSERT_EQUAL_FATAL(is.n, 1);
	CU_ASSERT_STRING_EQUAL(is.id[0], "d7");
	/* a device added before the cursor does not shift the later pages */
	d = device_of(a.id, "d35", "online");
	CU_ASSERT_EQUAL(store_device_create(s, &d, &au, &ev), STORE_OK);
	memset(&is, 0, sizeof(is));
	CU_ASSERT_EQUAL(store_device_list(s, a.id, NULL, "d6", 0, 3, collect_device, &is), STORE_OK);
	CU_ASSERT_EQUAL(is.n, 1);
	/* status filter (online: d3, d6 and d35), offset pages (v1) */
	memset(&is, 0, sizeof(is));
	CU_ASSERT_EQUAL(store_device_list(s, a.id, "online", NULL, 0, 10, collect_device, &is),
			STORE_OK);
	CU_ASSERT_EQUAL_FATAL(is.n, 3);
	CU_ASSERT_STRING_EQUAL(is.id[1], "d35");
	memset(&is, 0, sizeof(is));
	CU_ASSERT_EQUAL(store_device_list(s, a.id, NULL, NULL, 6, 5, collect_device, &is), STORE_OK);
	CU_ASSERT_EQUAL_FATAL(is.n, 2);
	CU_ASSERT_STRING_EQUAL(is.id[0], "d6");
	CU_ASSERT_EQUAL(store_device_count(s, a.id, NULL, &n), STORE_OK);
	CU_ASSERT_EQUAL(n, 8);
	CU_ASSERT_EQUAL(store_device_count(s, a.id, "maintenance", &n), STORE_OK);
	CU_ASSERT_EQUAL(n, 2); /* d2, d5 */
	CU_ASSERT_EQUAL(store_device_count(s, b.id, NULL, &n), STORE_OK);
	CU_ASSERT_EQUAL(n, 1);
	CU_ASSERT_EQUAL(store_device_list(s, a.id, "lost", NULL, 0, 3, collect_device, &is),
			STORE_ERROR);
	CU_ASSERT_TRUE(errstr_is_invalid(s));
	fx_stop(&f, s);
}

struct points_seen {
	long long ts[16];
	char metrics[16][64];
	int n;
};

static int collect_point(void *ctx, const struct store_telemetry *t)
{
	struct points_seen *ps = ctx;

	if (ps->n < 16) {
		ps->ts[ps->n] = t->ts;
		snprintf(ps->metrics[ps->n], sizeof(ps->metrics[0]), "%s", t->metrics);
	}
	ps->n++;
	return 0;
}

static void test_telemetry_points_last_seen_and_retention(void)
{
	struct fixture f;
	struct store *s = fx_start(&f);
	struct store_tenant a, b;
	struct store_device d, got;
	struct store_audit au;
	struct store_event ev, evs[6];
	struct store_telemetry pts[6];
	struct points_seen ps;
	char metrics[6][32];
	long long deleted = 0;

	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	CU_ASSERT_EQUAL(store_tenant_create(s, "a", NOW, &a), STORE_OK);
	CU_ASSERT_EQUAL(store_tenant_create(s, "b", NOW, &b), STORE_OK);
	d = device_of(a.id, "dev1", "online");
	au = audit_of(a.id, "device.create", "dev1");
	ev = event_of(a.id, "device.updated", "{}");
	CU_ASSERT_EQUAL(store_device_create(s, &d, &au, &ev), STORE_OK);
	memset(pts, 0, sizeof(pts));
	for (int i = 0; i < 6; i++) {
		snprintf(pts[i].id, sizeof(pts[i].id), "p%d", i);
		snprintf(pts[i].device_id, sizeof(pts[i].device_id), "dev1");
		snprintf(metrics[i], sizeof(metrics[i]), "{\"t\":%d}", i);
		pts[i].metrics = metrics[i];
		pts[i].ts = NOW * 1000 + (i == 2 ? 9000 : i * 1000); /* p2 is the newest */
		evs[i] = event_of(a.id, "telemetry", metrics[i]);
	}
	CU_ASSERT_EQUAL(outbox_count(s), 1);
	/* another tenant's device: nothing of the batch is kept */
	CU_ASSERT_EQUAL(store_telemetry_append(s, b.id, "dev1", pts, evs, 6), STORE_NOT_FOUND);
	CU_ASSERT_EQUAL(outbox_count(s), 1);
	CU_ASSERT_EQUAL(store_telemetry_append(s, a.id, "dev1", pts, evs, 6), STORE_OK);
	CU_ASSERT_EQUAL(outbox_count(s), 7);
	CU_ASSERT(evs[5].seq > evs[0].seq);
	CU_ASSERT_EQUAL(store_device_get(s, a.id, "dev1", &got), STORE_OK);
	CU_ASSERT_EQUAL(got.last_seen_at, NOW * 1000 + 9000);
	CU_ASSERT_EQUAL(got.version, 1); /* points are not changes of the device */
	/* a point id twice: the whole batch is refused */
	CU_ASSERT_EQUAL(store_telemetry_append(s, a.id, "dev1", pts, evs, 1), STORE_CONFLICT);
	CU_ASSERT_EQUAL(outbox_count(s), 7);

	memset(&ps, 0, sizeof(ps));
	CU_ASSERT_EQUAL(store_telemetry_recent(s, a.id, "dev1", 3, collect_point, &ps), STORE_OK);
	CU_ASSERT_EQUAL_FATAL(ps.n, 3);
	CU_ASSERT_STRING_EQUAL(ps.metrics[0], "{\"t\":2}");
	CU_ASSERT_STRING_EQUAL(ps.metrics[1], "{\"t\":5}");
	CU_ASSERT_STRING_EQUAL(ps.metrics[2], "{\"t\":4}");
	memset(&ps, 0, sizeof(ps));
	CU_ASSERT_EQUAL(store_telemetry_recent(s, b.id, "dev1", 3, collect_point, &ps), STORE_OK);
	CU_ASSERT_EQUAL(ps.n, 0);

	/* age: points before NOW s + 1 s go (p0); then keep the newest 3 */
	CU_ASSERT_EQUAL(store_telemetry_purge(s, NOW * 1000 + 1000, 0, &deleted), STORE_OK);
	CU_ASSERT_EQUAL(deleted, 1);
	CU_ASSERT_EQUAL(store_telemetry_purge(s, 0, 3, &deleted), STORE_OK);
	CU_ASSERT_EQUAL(deleted, 3); /* p1 and p3 */
	memset(&ps, 0, sizeof(ps));
	CU_ASSERT_EQUAL(store_telemetry_recent(s, a.id, "dev1", 10, collect_point, &ps), STORE_OK);
	CU_ASSERT_EQUAL_FATAL(ps.n, 3);
	CU_ASSERT_STRING_EQUAL(ps.metrics[2], "{\"t\":4}");
	/* deleting the device deletes its points */
	ev = event_of(a.id, "device.deleted", "{}");
	CU_ASSERT_EQUAL(store_device_delete(s, a.id, "dev1", &au, &ev), STORE_OK);
	memset(&ps, 0, sizeof(ps));
	CU_ASSERT_EQUAL(store_telemetry_recent(s, a.id, "dev1", 10, collect_point, &ps), STORE_OK);
	CU_ASSERT_EQUAL(ps.n, 0);
	fx_stop(&f, s);
}

/* A role change and a deletion, scoped by tenant; a deleted user's
 * sessions go with it. */
static void test_user_role_change_and_delete(void)
{
	struct fixture f;
	struct store *s = fx_start(&f);
	struct store_tenant a, b;
	struct store_user ana, got;
	struct store_session x, sx;

	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	CU_ASSERT_EQUAL(store_tenant_create(s, "a", NOW, &a), STORE_OK);
	CU_ASSERT_EQUAL(store_tenant_create(s, "b", NOW, &b), STORE_OK);
	ana = user_of(a.id, "ana", "viewer");
	CU_ASSERT_EQUAL_FATAL(store_user_create(s, &ana), STORE_OK);
	x = session_of("sess-ana", &ana, NOW + 60, 0);
	CU_ASSERT_EQUAL(store_session_create(s, &x), STORE_OK);
	CU_ASSERT_EQUAL(store_user_set_role(s, a.id, ana.id, "operator"), STORE_OK);
	CU_ASSERT_EQUAL(store_user_by_id(s, a.id, ana.id, &got), STORE_OK);
	CU_ASSERT_STRING_EQUAL(got.role, "operator");
	CU_ASSERT_EQUAL(store_user_set_role(s, b.id, ana.id, "admin"), STORE_NOT_FOUND);
	CU_ASSERT_EQUAL(store_user_set_role(s, a.id, ana.id, "root"), STORE_ERROR);
	CU_ASSERT_TRUE(errstr_is_invalid(s));
	CU_ASSERT_EQUAL(store_user_delete(s, b.id, ana.id), STORE_NOT_FOUND);
	CU_ASSERT_EQUAL(store_session_get(s, "sess-ana", &sx), STORE_OK);
	CU_ASSERT_EQUAL(store_user_delete(s, a.id, ana.id), STORE_OK);
	CU_ASSERT_EQUAL(store_user_by_id(s, a.id, ana.id, &got), STORE_NOT_FOUND);
	CU_ASSERT_EQUAL(store_session_get(s, "sess-ana", &sx), STORE_NOT_FOUND);
	CU_ASSERT_EQUAL(store_user_delete(s, a.id, ana.id), STORE_NOT_FOUND);
	fx_stop(&f, s);
}

/* store.statement_timeout_ms: a call whose statements run past it is
 * interrupted and fails; without the limit the same call completes. */
static void test_a_long_call_is_interrupted_by_the_statement_timeout(void)
{
	enum { BATCH = 500, BATCHES = 40 };
	static struct store_telemetry pts[BATCH];
	static struct store_event evs[BATCH];
	struct fixture f;
	struct store *s = fx_start(&f);
	struct store_guard g = { NULL, NULL, 0, 1, 1 };
	struct store_tenant a;
	struct store_device d;
	struct store_audit au;
	struct store_event ev;
	long long deleted = 0;

	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	CU_ASSERT_EQUAL(store_tenant_create(s, "a", NOW, &a), STORE_OK);
	d = device_of(a.id, "dev1", "online");
	au = audit_of(a.id, "device.create", "dev1");
	ev = event_of(a.id, "device.updated", "{}");
	CU_ASSERT_EQUAL_FATAL(store_device_create(s, &d, &au, &ev), STORE_OK);
	for (int b = 0; b < BATCHES; b++) {
		for (int i = 0; i < BATCH; i++) {
			snprintf(pts[i].id, sizeof(pts[i].id), "p%d-%d", b, i);
			snprintf(pts[i].device_id, sizeof(pts[i].device_id), "dev1");
			pts[i].metrics = "{\"t\":1}";
			pts[i].ts = NOW * 1000 + b * BATCH + i;
			evs[i] = event_of(a.id, "telemetry", "{}");
		}
		CU_ASSERT_EQUAL_FATAL(store_telemetry_append(s, a.id, "dev1", pts, evs, BATCH), STORE_OK);
	}
	/* deleting 20,000 points takes far longer than 1 ms */
	store_set_guard(s, &g);
	CU_ASSERT_EQUAL(store_telemetry_purge(s, NOW * 1000 + BATCH * BATCHES, 0, &deleted), STORE_ERROR);
	CU_ASSERT(strstr(store_errstr(s), "interrupt") != NULL);
	CU_ASSERT(deleted < BATCH * BATCHES);
	g.statement_timeout_ms = 0;
	store_set_guard(s, &g);
	CU_ASSERT_EQUAL(store_telemetry_purge(s, NOW * 1000 + BATCH * BATCHES, 0, &deleted), STORE_OK);
	CU_ASSERT_EQUAL(deleted, BATCH * BATCHES);
	fx_stop(&f, s);
}

/* Another process holds the write lock past the busy timeout: writes fail
 * until their breaker opens, then fail at once (the busy wait no longer
 * paid); reads go on meanwhile (WAL), behind their own breaker. Once the
 * lock is gone and the open time has passed, a trial write closes it. */
static void test_locked_writes_open_their_breaker_and_reads_go_on(void)
{
	const struct breaker_opts o = { 2, 60000, 100, 1 };
	struct breaker *rb = breaker_new(&o), *wb = breaker_new(&o);
	struct fixture f;
	struct store *s;
	struct store_tenant a, got;
	sqlite3 *other = NULL;

	CU_ASSERT_FATAL(rb != NULL && wb != NULL && fx_init(&f) == 0);
	s = store_open_sqlite(f.path, 20, NULL);
	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	store_set_guard(s, &(struct store_guard){ rb, wb, 2, 1, 0 });
	CU_ASSERT_EQUAL(store_tenant_create(s, "a", NOW, &a), STORE_OK);
	CU_ASSERT_FATAL(sqlite3_open(f.path, &other) == SQLITE_OK);
	CU_ASSERT_FATAL(sqlite3_exec(other, "BEGIN IMMEDIATE", NULL, NULL, NULL) == SQLITE_OK);
	for (int i = 0; i < 2; i++) {
		CU_ASSERT_EQUAL(store_tenant_create(s, "b", NOW, &got), STORE_ERROR);
		CU_ASSERT(strstr(store_errstr(s), "locked") != NULL);
	}
	CU_ASSERT_EQUAL(breaker_state(wb, clock_mono_ms()), BREAKER_OPEN);
	CU_ASSERT_EQUAL(store_tenant_create(s, "b", NOW, &got), STORE_ERROR);
	CU_ASSERT(strstr(store_errstr(s), "circuit breaker open") != NULL);
	CU_ASSERT_EQUAL(store_tenant_by_name(s, "a", &got), STORE_OK);
	CU_ASSERT_EQUAL(breaker_state(rb, clock_mono_ms()), BREAKER_CLOSED);
	CU_ASSERT(sqlite3_exec(other, "ROLLBACK", NULL, NULL, NULL) == SQLITE_OK);
	sqlite3_close(other);
	/* half-open once 100 ms have passed: the trial goes through and closes it */
	while (breaker_state(wb, clock_mono_ms()) == BREAKER_OPEN)
		usleep(5000);
	CU_ASSERT_EQUAL(store_tenant_create(s, "b", NOW, &got), STORE_OK);
	CU_ASSERT_EQUAL(breaker_state(wb, clock_mono_ms()), BREAKER_CLOSED);
	fx_stop(&f, s);
	breaker_free(rb);
	breaker_free(wb);
}

/* ------------------------------------------------ a store made read-only */

/* Root writes any file whatever its mode, so to root a chmod'ed store is
 * not read-only at all. The scenario therefore runs in a child process
 * that, when started as root, becomes nobody first; the store's directory
 * is handed to nobody, as a service's would be its own. So SQLite meets
 * real file modes, exactly as in production, and not a simulation (a
 * mode=ro URI or a test hook would only show what we told it). */
#define RO_NOBODY 65534

#define RO_CHECK(cond)                                                              \
	do {                                                                        \
		if (!(cond)) {                                                      \
			fprintf(stderr, "read-only store: line %d: %s\n", __LINE__, #cond); \
			return 1;                                                   \
		}                                                                   \
	} while (0)

/* Descriptors open in this process (the connections' files among them). */
static int ro_open_fds(void)
{
	int n = 0;

	for (int fd = 0; fd < 1024; fd++)
		n += fcntl(fd, F_GETFD) != -1;
	return n;
}

static int ro_mode(struct fixture *f, mode_t file, mode_t dir)
{
	return chmod(f->path, file) == 0 && chmod(f->dir, dir) == 0;
}

/* The child's scenario; 0 when every check held. */
static int ro_scenario(struct fixture *f, int logfd)
{
	const struct logger lg = { LOG_WARN, logfd };
	struct store *before, *during;
	struct store_tenant a, got;
	struct store_user u = { .role = "admin", .password_hash = "pbkdf2$SECRET-HASH" };
	int fds = -1;

	if (geteuid() == 0)
		RO_CHECK(setgroups(0, NULL) == 0 && setgid(RO_NOBODY) == 0 &&
			 setuid(RO_NOBODY) == 0 && geteuid() == RO_NOBODY);
	/* a set-uid'ed process is not dumpable: LeakSanitizer needs it to be */
	prctl(PR_SET_DUMPABLE, 1, 0, 0, 0);
	/* a connection opened while the store is writable */
	RO_CHECK((before = fx_open(f)) != NULL);
	RO_CHECK(store_tenant_create(before, "a", NOW, &a) == STORE_OK);
	snprintf(u.tenant_id, sizeof(u.tenant_id), "%s", a.id);
	snprintf(u.username, sizeof(u.username), "ana");

	RO_CHECK(ro_mode(f, 0444, 0555));
	RO_CHECK(access(f->path, W_OK) != 0); /* it is read-only to us */
	/* opened now, the store still opens (nothing to migrate) and reads */
	RO_CHECK((during = fx_open(f)) != NULL);
	store_set_log(during, &lg, 3600 * 1000);
	RO_CHECK(store_tenant_by_name(during, "a", &got) == STORE_OK);
	RO_CHECK(store_writable(during) == 0);
	RO_CHECK(store_user_create(during, &u) == STORE_ERROR);
	RO_CHECK(strstr(store_errstr(during), "readonly") != NULL);
	for (int i = 0; i < 20; i++)
		RO_CHECK(store_tenant_create(during, "b", NOW, &got) == STORE_ERROR);
	RO_CHECK(store_tenant_by_name(during, "a", &got) == STORE_OK);
	/* the connection opened before goes on writing */
	RO_CHECK(store_writable(before) == 1);
	RO_CHECK(store_tenant_create(before, "a2", NOW, &got) == STORE_OK);

	/* writable again: the next write works, without reopening the store */
	RO_CHECK(ro_mode(f, 0644, 0755));
	RO_CHECK(store_tenant_create(during, "b", NOW, &got) == STORE_OK);
	RO_CHECK(store_writable(during) == 1);
	RO_CHECK(store_user_create(during, &u) == STORE_OK);
	RO_CHECK(store_tenant_by_name(during, "a2", &got) == STORE_OK);
	RO_CHECK(store_tenant_by_name(before, "b", &got) == STORE_OK);
	/* and a read-write connection stays so when the file turns read-only */
	RO_CHECK(ro_mode(f, 0444, 0555));
	RO_CHECK(store_tenant_create(during, "c", NOW, &got) == STORE_OK);
	RO_CHECK(ro_mode(f, 0644, 0755));
	store_close(during);

	/* Connections opened read-only, refused, opened again and closed,
	 * over and over while `before` holds the file: SQLite keeps the
	 * descriptors of closed connections for reuse (POSIX locks), so the
	 * count settles after the first round; it must not grow after it. */
	for (int round = 0; round < 6; round++) {
		RO_CHECK(ro_mode(f, 0444, 0555));
		RO_CHECK((during = fx_open(f)) != NULL);
		for (int i = 0; i < 5; i++) {
			RO_CHECK(store_tenant_create(during, "d", NOW, &got) == STORE_ERROR);
			RO_CHECK(store_tenant_by_name(during, "a", &got) == STORE_OK);
		}
		RO_CHECK(ro_mode(f, 0644, 0755));
		RO_CHECK(store_session_purge(during, NOW, 0, NULL, NULL) == STORE_OK);
		store_close(during);
		if (round == 0)
			fds = ro_open_fds();
		RO_CHECK(ro_open_fds() == fds);
	}
	store_close(before);
	return 0;
}

/* A connection opened while the store file is read-only is read-only for
 * good, if nothing opens it again: writes failed until a restart. Now it
 * serves reads, refuses writes (logged once for the 21 failures here,
 * never with the parameters of the write) and writes again as soon as the
 * file can be written, with no descriptor or memory left behind (the
 * child's LeakSanitizer, in the sanitizer build, fails its exit). */
static void test_a_store_made_read_only_writes_again_once_writable(void)
{
	struct fixture f;
	int logs[2], status = -1;
	char text[4096];
	size_t len = 0;
	ssize_t n;
	pid_t pid;

	CU_ASSERT_FATAL(fx_init(&f) == 0);
	CU_ASSERT_FATAL(pipe(logs) == 0);
	if (geteuid() == 0)
		CU_ASSERT_FATAL(chown(f.dir, RO_NOBODY, RO_NOBODY) == 0);
	fflush(NULL);
	if ((pid = fork()) == 0) {
		close(logs[0]);
		exit(ro_scenario(&f, logs[1]));
	}
	close(logs[1]);
	CU_ASSERT_FATAL(pid > 0);
	/* until the child is done: end of file */
	while (len < sizeof(text) - 1 && (n = read(logs[0], text + len, sizeof(text) - 1 - len)) > 0)
		len += (size_t)n;
	text[len] = '\0';
	close(logs[0]);
	CU_ASSERT(waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0);
	/* one line: the first failure; the others came within the hour */
	CU_ASSERT(strstr(text, "\"msg\":\"store_write_failed\"") != NULL);
	CU_ASSERT(strstr(text, "\"call\":\"store_user_create\"") != NULL);
	CU_ASSERT(strstr(text, "readonly") != NULL);
	CU_ASSERT(len > 0 && strchr(text, '\n') == text + len - 1);
	CU_ASSERT(strstr(text, "SECRET") == NULL);
	chmod(f.dir, 0700); /* should the child have stopped half-way */
	fx_cleanup(&f);
}

/* ------------------------------------------------ PostgreSQL's own */

static int pg_count_is(const char *sql, const char *want)
{
	char v[64];

	return pg_sql(sql, v, sizeof(v)) == 0 && strcmp(v, want) == 0;
}

/* The schema is migrated in the test's schema, recorded in
 * schema_version; a second open migrates nothing and finds the data. */
static void test_pg_open_creates_schema_and_reopens(void)
{
	struct fixture f;
	struct store *s = fx_start(&f);
	struct store_tenant t, got;
	char sql[256];

	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	CU_ASSERT_EQUAL(store_schema_version(s), 3);
	CU_ASSERT_EQUAL(store_tenant_create(s, "acme", NOW, &t), STORE_OK);
	store_close(s);
	snprintf(sql, sizeof(sql), "SELECT string_agg(version::text, ',' ORDER BY version)"
		 " FROM %s.schema_version", f.schema);
	CU_ASSERT(pg_count_is(sql, "1,2,3"));
	snprintf(sql, sizeof(sql), "SELECT count(*) FROM pg_tables WHERE schemaname = '%s' AND"
		 " tablename IN ('tenants', 'users', 'sessions', 'devices', 'telemetry', 'audit',"
		 " 'stream_sessions', 'outbox')", f.schema);
	CU_ASSERT(pg_count_is(sql, "8"));
	s = fx_open(&f);
	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	CU_ASSERT_EQUAL(store_schema_version(s), 3);
	CU_ASSERT_EQUAL(store_tenant_by_name(s, "acme", &got), STORE_OK);
	CU_ASSERT_STRING_EQUAL(got.id, t.id);
	snprintf(sql, sizeof(sql), "SELECT count(*) FROM %s.schema_version", f.schema);
	CU_ASSERT(pg_count_is(sql, "3"));
	fx_stop(&f, s);
}

static void test_pg_newer_schema_is_refused(void)
{
	struct fixture f;
	struct buf err = BUF_INIT;
	char sql[256];

	CU_ASSERT_EQUAL_FATAL(fx_init(&f), 0);
	CU_ASSERT_EQUAL(pg_sqlf("CREATE TABLE %s.schema_version (version INTEGER PRIMARY KEY,"
				" applied_at BIGINT NOT NULL); INSERT INTO %s.schema_version"
				" VALUES (99, 0)", f.schema, f.schema), 0);
	CU_ASSERT_PTR_NULL(store_open_postgres(f.conninfo, &err));
	CU_ASSERT_PTR_NOT_NULL(strstr(buf_str(&err), "schema version 99, but this build knows versions 0 to 3"));
	/* refused before touching anything */
	snprintf(sql, sizeof(sql), "SELECT count(*) FROM pg_tables WHERE schemaname = '%s'", f.schema);
	CU_ASSERT(pg_count_is(sql, "1"));
	buf_release(&err);
	fx_cleanup(&f);
}

/* Bad strings and unreachable servers fail with a message that never
 * holds the password of the connection string. */
static void test_pg_open_failures_give_messages_without_secrets(void)
{
	struct buf err = BUF_INIT;

	CU_ASSERT_PTR_NULL(store_open_postgres("host=127.0.0.1 password='s3cr3t pw' nonsense", &err));
	CU_ASSERT_PTR_NOT_NULL(strstr(buf_str(&err), "not a valid libpq connection string"));
	CU_ASSERT_PTR_NULL(strstr(buf_str(&err), "s3cr3t"));
	buf_reset(&err);
	CU_ASSERT_PTR_NULL(store_open_postgres("postgresql://u:s3cr3t@127.0.0.1:1/db?bogus=1", &err));
	CU_ASSERT_PTR_NULL(strstr(buf_str(&err), "s3cr3t"));
	CU_ASSERT(buf_str(&err)[0] != '\0');
	buf_reset(&err);
	/* port 1 on loopback: refused at once */
	CU_ASSERT_PTR_NULL(store_open_postgres("host=127.0.0.1 port=1 password=s3cr3t", &err));
	CU_ASSERT_PTR_NOT_NULL(strstr(buf_str(&err), "connect"));
	CU_ASSERT_PTR_NULL(strstr(buf_str(&err), "s3cr3t"));
	buf_reset(&err);
	CU_ASSERT_PTR_NULL(store_open_postgres("", &err));
	CU_ASSERT_PTR_NOT_NULL(strstr(buf_str(&err), "invalid argument"));
	CU_ASSERT_PTR_NULL(store_open_postgres(NULL, NULL));
	buf_release(&err);
}

/* Ends the store's server connections (named after the test's schema),
 * waiting until they are gone; the number ended into *n. */
static int pg_terminate(const struct fixture *f, int *n)
{
	char sql[256], v[16];

	snprintf(sql, sizeof(sql), "SELECT count(pg_terminate_backend(pid, 5000)) FROM"
		 " pg_stat_activity WHERE application_name = '%s'", f->schema);
	if (pg_sql(sql, v, sizeof(v)) != 0)
		return -1;
	*n = atoi(v);
	return 0;
}

/* The server ends the store's connection (a restart, an administrator):
 * the next calls connect again by themselves, reads and writes alike.
 * While the server refuses to let it in, calls fail transiently (store.c
 * retries reads) and writable() says -1; once it lets it in, all works. */
static void test_pg_lost_connections_are_made_again(void)
{
	struct fixture f;
	struct store *s;
	struct store_tenant a, got;
	char role[64];
	int n = 0;

	CU_ASSERT_EQUAL_FATAL(fx_init(&f), 0);
	/* a role of the test's own, so that it can be kept out */
	snprintf(role, sizeof(role), "%s_r", f.schema);
	CU_ASSERT_EQUAL_FATAL(pg_sqlf("CREATE ROLE %s LOGIN SUPERUSER", role), 0);
	snprintf(f.conninfo + strlen(f.conninfo), sizeof(f.conninfo) - strlen(f.conninfo),
		 " user=%s", role);
	s = fx_open(&f);
	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	CU_ASSERT_EQUAL(store_tenant_create(s, "a", NOW, &a), STORE_OK);

	CU_ASSERT_EQUAL(pg_terminate(&f, &n), 0);
	CU_ASSERT_EQUAL(n, 1);
	CU_ASSERT_EQUAL(store_tenant_create(s, "b", NOW, &got), STORE_OK);
	CU_ASSERT_EQUAL(pg_terminate(&f, &n), 0);
	CU_ASSERT_EQUAL(n, 1);
	CU_ASSERT_EQUAL(store_tenant_by_name(s, "a", &got), STORE_OK);
	CU_ASSERT_STRING_EQUAL(got.id, a.id);

	CU_ASSERT_EQUAL(pg_sqlf("ALTER ROLE %s NOLOGIN", role), 0);
	CU_ASSERT_EQUAL(pg_terminate(&f, &n), 0);
	CU_ASSERT_EQUAL(store_tenant_by_name(s, "a", &got), STORE_ERROR);
	CU_ASSERT_PTR_NOT_NULL(strstr(store_errstr(s), "postgres: connect: "));
	CU_ASSERT_TRUE(s->ops->transient(s->impl));
	CU_ASSERT_EQUAL(store_writable(s), -1);
	CU_ASSERT_EQUAL(store_tenant_create(s, "c", NOW, &got), STORE_ERROR);

	CU_ASSERT_EQUAL(pg_sqlf("ALTER ROLE %s LOGIN", role), 0);
	CU_ASSERT_EQUAL(store_tenant_by_name(s, "b", &got), STORE_OK);
	CU_ASSERT_EQUAL(store_writable(s), 1);
	CU_ASSERT_EQUAL(store_tenant_create(s, "c", NOW, &got), STORE_OK);
	store_close(s);
	fx_cleanup(&f);
	CU_ASSERT_EQUAL(pg_sqlf("DROP ROLE %s", role), 0);
}

/* A read that meets a connection broken under it is retried by store.c
 * (transient) on a new connection, and succeeds. */
static void test_pg_reads_are_retried_over_a_new_connection(void)
{
	struct fixture f;
	struct store *s = fx_start(&f);
	struct store_tenant a, got;
	int n = 0;

	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	store_set_guard(s, &(struct store_guard){ NULL, NULL, 2, 1, 0 });
	CU_ASSERT_EQUAL(store_tenant_create(s, "a", NOW, &a), STORE_OK);
	for (int i = 0; i < 5; i++) {
		CU_ASSERT_EQUAL(pg_terminate(&f, &n), 0);
		CU_ASSERT_EQUAL(n, 1);
		CU_ASSERT_EQUAL(store_tenant_by_id(s, a.id, &got), STORE_OK);
	}
	fx_stop(&f, s);
}

/* Another session holds a lock the store's writes wait for: each write
 * fails once the statement timeout has passed ("interrupted", not
 * transient, as SQLite's interrupted statements), until the write breaker
 * opens; reads go on meanwhile, behind their own breaker. */
static void test_pg_locked_writes_time_out_and_open_their_breaker(void)
{
	const struct breaker_opts o = { 2, 60000, 100, 1 };
	struct breaker *rb = breaker_new(&o), *wb = breaker_new(&o);
	struct fixture f;
	struct store *s;
	struct store_tenant a, got;
	char sql[128];

	CU_ASSERT_FATAL(rb != NULL && wb != NULL);
	s = fx_start(&f);
	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	store_set_guard(s, &(struct store_guard){ rb, wb, 2, 1, 100 });
	CU_ASSERT_EQUAL(store_tenant_create(s, "a", NOW, &a), STORE_OK);
	snprintf(sql, sizeof(sql), "BEGIN; LOCK TABLE %s.tenants IN EXCLUSIVE MODE", f.schema);
	CU_ASSERT_EQUAL_FATAL(pg_sql(sql, NULL, 0), 0);
	for (int i = 0; i < 2; i++) {
		CU_ASSERT_EQUAL(store_tenant_create(s, "b", NOW, &got), STORE_ERROR);
		CU_ASSERT_PTR_NOT_NULL(strstr(store_errstr(s), "interrupted"));
		CU_ASSERT_FALSE(s->ops->transient(s->impl));
	}
	CU_ASSERT_EQUAL(breaker_state(wb, clock_mono_ms()), BREAKER_OPEN);
	CU_ASSERT_EQUAL(store_tenant_create(s, "b", NOW, &got), STORE_ERROR);
	CU_ASSERT_PTR_NOT_NULL(strstr(store_errstr(s), "circuit breaker open"));
	CU_ASSERT_EQUAL(store_tenant_by_name(s, "a", &got), STORE_OK);
	CU_ASSERT_EQUAL(breaker_state(rb, clock_mono_ms()), BREAKER_CLOSED);
	CU_ASSERT_EQUAL(pg_sql("ROLLBACK", NULL, 0), 0);
	while (breaker_state(wb, clock_mono_ms()) == BREAKER_OPEN)
		usleep(5000);
	CU_ASSERT_EQUAL(store_tenant_create(s, "b", NOW, &got), STORE_OK);
	CU_ASSERT_EQUAL(breaker_state(wb, clock_mono_ms()), BREAKER_CLOSED);
	fx_stop(&f, s);
	breaker_free(rb);
	breaker_free(wb);
}

/* The server made read-only (a standby's refusal, here
 * default_transaction_read_only on the store's role): a store opened then
 * still opens and reads, writable() says 0, writes fail ("readonly"); a
 * connection made before goes on writing. Once the setting is gone, the
 * next write connects again and works, without reopening the store. */
static void test_pg_a_read_only_server_writes_again_once_writable(void)
{
	struct fixture f;
	struct store *before, *during;
	struct store_tenant a, got;
	char role[64];

	CU_ASSERT_EQUAL_FATAL(fx_init(&f), 0);
	snprintf(role, sizeof(role), "%s_r", f.schema);
	CU_ASSERT_EQUAL_FATAL(pg_sqlf("CREATE ROLE %s LOGIN SUPERUSER", role), 0);
	snprintf(f.conninfo + strlen(f.conninfo), sizeof(f.conninfo) - strlen(f.conninfo),
		 " user=%s", role);
	before = fx_open(&f);
	CU_ASSERT_PTR_NOT_NULL_FATAL(before);
	CU_ASSERT_EQUAL(store_tenant_create(before, "a", NOW, &a), STORE_OK);

	CU_ASSERT_EQUAL(pg_sqlf("ALTER ROLE %s SET default_transaction_read_only = on", role), 0);
	during = fx_open(&f);
	CU_ASSERT_PTR_NOT_NULL_FATAL(during);
	CU_ASSERT_EQUAL(store_tenant_by_name(during, "a", &got), STORE_OK);
	CU_ASSERT_EQUAL(store_writable(during), 0);
	for (int i = 0; i < 3; i++) {
		CU_ASSERT_EQUAL(store_tenant_create(during, "b", NOW, &got), STORE_ERROR);
		CU_ASSERT_PTR_NOT_NULL(strstr(store_errstr(during), "readonly"));
	}
	CU_ASSERT_EQUAL(store_tenant_by_name(during, "a", &got), STORE_OK);
	CU_ASSERT_EQUAL(store_writable(before), 1);
	CU_ASSERT_EQUAL(store_tenant_create(before, "a2", NOW, &got), STORE_OK);

	CU_ASSERT_EQUAL(pg_sqlf("ALTER ROLE %s RESET default_transaction_read_only", role), 0);
	CU_ASSERT_EQUAL(store_tenant_create(during, "b", NOW, &got), STORE_OK);
	CU_ASSERT_EQUAL(store_writable(during), 1);
	CU_ASSERT_EQUAL(store_tenant_by_name(before, "b", &got), STORE_OK);
	store_close(during);
	store_close(before);
	fx_cleanup(&f);
	CU_ASSERT_EQUAL(pg_sqlf("DROP ROLE %s", role), 0);
}

struct opener {
	const char *conninfo;
	pthread_barrier_t *go;
	int version;
	char err[256];
};

static void *open_at_once(void *p)
{
	struct opener *o = p;
	struct buf err = BUF_INIT;
	struct store *s;

	pthread_barrier_wait(o->go);
	s = store_open_postgres(o->conninfo, &err);
	o->version = s ? store_schema_version(s) : -1;
	snprintf(o->err, sizeof(o->err), "%s", buf_str(&err));
	store_close(s);
	buf_release(&err);
	return NULL;
}

/* Four opens of one empty schema at once (processes or hosts starting
 * together): each succeeds, and the schema was migrated once. */
static void test_pg_concurrent_opens_migrate_once(void)
{
	enum { N = 4 };
	struct fixture f;
	struct opener o[N];
	pthread_t th[N];
	pthread_barrier_t go;
	char sql[256];

	CU_ASSERT_EQUAL_FATAL(fx_init(&f), 0);
	pthread_barrier_init(&go, NULL, N);
	for (int i = 0; i < N; i++) {
		o[i] = (struct opener){ .conninfo = f.conninfo, .go = &go };
		CU_ASSERT_EQUAL_FATAL(pthread_create(&th[i], NULL, open_at_once, &o[i]), 0);
	}
	for (int i = 0; i < N; i++) {
		pthread_join(th[i], NULL);
		if (o[i].version != 3)
			fprintf(stderr, "open %d: %s\n", i, o[i].err);
		CU_ASSERT_EQUAL(o[i].version, 3);
	}
	pthread_barrier_destroy(&go);
	snprintf(sql, sizeof(sql), "SELECT count(*) FROM %s.schema_version", f.schema);
	CU_ASSERT(pg_count_is(sql, "3"));
	fx_cleanup(&f);
}

/* Concurrent telemetry batches from several threads: each batch's outbox
 * seqs are consecutive, so that deleting one batch's range (what
 * api_outbox_publish_all does) never deletes another's events. */
struct batcher {
	struct store *s;
	const char *tenant_id;
	int index, failures;
	long long first[20], last[20];
};

static void *append_batches(void *p)
{
	struct batcher *b = p;
	struct store_telemetry pts[5];
	struct store_event evs[5];

	for (int k = 0; k < 20; k++) {
		memset(pts, 0, sizeof(pts));
		memset(evs, 0, sizeof(evs));
		for (int i = 0; i < 5; i++) {
			snprintf(pts[i].id, sizeof(pts[i].id), "p%d-%d-%d", b->index, k, i);
			snprintf(pts[i].device_id, sizeof(pts[i].device_id), "dev1");
			pts[i].metrics = "{}";
			pts[i].ts = NOW * 1000 + k;
			snprintf(evs[i].tenant_id, sizeof(evs[i].tenant_id), "%s", b->tenant_id);
			snprintf(evs[i].type, sizeof(evs[i].type), "telemetry");
			evs[i].data = "{}";
			evs[i].created_at = NOW;
		}
		if (store_telemetry_append(b->s, b->tenant_id, "dev1", pts, evs, 5) != STORE_OK) {
			b->failures++;
			continue;
		}
		b->first[k] = evs[0].seq;
		b->last[k] = evs[4].seq;
	}
	return NULL;
}

static void test_pg_concurrent_changes_get_consecutive_outbox_seqs(void)
{
	enum { N = 3 };
	struct fixture f;
	struct store *s = fx_start(&f);
	struct batcher b[N];
	pthread_t th[N];
	struct store_tenant a;
	struct store_device d;
	struct store_audit au;
	struct store_event ev;

	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	CU_ASSERT_EQUAL(store_tenant_create(s, "a", NOW, &a), STORE_OK);
	memset(&d, 0, sizeof(d));
	snprintf(d.id, sizeof(d.id), "dev1");
	memcpy(d.tenant_id, a.id, sizeof(d.tenant_id));
	snprintf(d.name, sizeof(d.name), "d");
	snprintf(d.status, sizeof(d.status), "online");
	snprintf(d.metadata, sizeof(d.metadata), "{}");
	d.version = 1;
	memset(&au, 0, sizeof(au));
	memcpy(au.tenant_id, a.id, sizeof(au.tenant_id));
	snprintf(au.action, sizeof(au.action), "device.create");
	memset(&ev, 0, sizeof(ev));
	memcpy(ev.tenant_id, a.id, sizeof(ev.tenant_id));
	snprintf(ev.type, sizeof(ev.type), "device.updated");
	ev.data = "{}";
	CU_ASSERT_EQUAL_FATAL(store_device_create(s, &d, &au, &ev), STORE_OK);
	for (int i = 0; i < N; i++) {
		b[i] = (struct batcher){ .s = s, .tenant_id = a.id, .index = i };
		CU_ASSERT_EQUAL_FATAL(pthread_create(&th[i], NULL, append_batches, &b[i]), 0);
	}
	for (int i = 0; i < N; i++) {
		pthread_join(th[i], NULL);
		CU_ASSERT_EQUAL(b[i].failures, 0);
		for (int k = 0; k < 20; k++)
			CU_ASSERT_EQUAL(b[i].last[k] - b[i].first[k], 4);
	}
	fx_stop(&f, s);
}

/* The PostgreSQL suite: the admin connection, or a failure saying why. */
static int pg_suite_init(void)
{
	const char *conninfo = getenv("FCGI_SSE_TEST_PG");

	fx_backend = BACKEND_POSTGRES;
	if (conninfo == NULL || conninfo[0] == '\0') {
		fprintf(stderr, "store (postgres): FCGI_SSE_TEST_PG is not set: run the tests with"
			" tests/unit/run.sh (it starts a private PostgreSQL), set it to a libpq"
			" conninfo, or to \"skip\"\n");
		return -1;
	}
	pg_admin = PQconnectdb(conninfo);
	if (PQstatus(pg_admin) != CONNECTION_OK) {
		fprintf(stderr, "store (postgres): cannot connect: %s", PQerrorMessage(pg_admin));
		PQfinish(pg_admin);
		pg_admin = NULL;
		return -1;
	}
	PQsetNoticeProcessor(pg_admin, pg_notice_quiet, NULL);
	return 0;
}

static int pg_suite_cleanup(void)
{
	PQfinish(pg_admin);
	pg_admin = NULL;
	fx_backend = BACKEND_SQLITE;
	return 0;
}

static int sqlite_suite_init(void)
{
	fx_backend = BACKEND_SQLITE;
	return 0;
}

/* What both backends must do alike. */
#define COMMON_TESTS \
	{ "a long call is interrupted by the statement timeout", test_a_long_call_is_interrupted_by_the_statement_timeout }, \
	{ "stream sessions: create, claim once, finish by topic, purge", test_stream_sessions }, \
	{ "tenants: create, lookups, conflict", test_tenants }, \
	{ "users: create, lookups, tenant scope, conflicts", \
	  test_users_create_lookup_and_tenant_scope }, \
	{ "users: list ordered by username, early stop", test_user_list_order_and_early_stop }, \
	{ "users: role change and delete, tenant scope, sessions go along", \
	  test_user_role_change_and_delete }, \
	{ "invalid arguments are rejected", test_invalid_arguments_are_rejected }, \
	{ "sessions: create, get, idempotent revoke", test_session_create_get_revoke }, \
	{ "sessions: revoke_user reports each live session once", \
	  test_revoke_user_reports_each_live_session }, \
	{ "sessions: purge deletes expired and old revoked", \
	  test_purge_deletes_expired_and_old_revoked }, \
	{ "audit: append, newest first, limit, tenant scope", test_audit_append_and_list }, \
	{ "devices: each change commits with its audit record and event, or not at all", \
	  test_device_changes_commit_with_audit_and_event }, \
	{ "devices: keyset pages, status filter, offsets, counts", test_device_pages_and_counts }, \
	{ "telemetry: points, last seen, a batch whole or not at all, retention", \
	  test_telemetry_points_last_seen_and_retention }, \
	{ "4 threads x 200 users, one connection each", \
	  test_concurrent_creates_use_own_connections }, \
	{ "close frees the connections of every thread", test_close_frees_every_thread_connection }

static CU_TestInfo sqlite_tests[] = {
	COMMON_TESTS,
	{ "locked writes open their breaker and reads go on", test_locked_writes_open_their_breaker_and_reads_go_on },
	{ "open creates the schema; reopen is idempotent", test_open_creates_schema_and_reopens },
	{ "a newer schema version is refused", test_newer_schema_is_refused },
	{ "open failures come with a message", test_open_failures_give_messages },
	{ "a store made read-only writes again once writable",
	  test_a_store_made_read_only_writes_again_once_writable },
	CU_TEST_INFO_NULL,
};

static CU_TestInfo pg_tests[] = {
	COMMON_TESTS,
	{ "open creates the schema; reopen is idempotent", test_pg_open_creates_schema_and_reopens },
	{ "a newer schema version is refused", test_pg_newer_schema_is_refused },
	{ "open failures come with a message, never the password",
	  test_pg_open_failures_give_messages_without_secrets },
	{ "lost connections are made again; kept out, calls fail transiently",
	  test_pg_lost_connections_are_made_again },
	{ "reads are retried over a new connection", test_pg_reads_are_retried_over_a_new_connection },
	{ "locked writes time out and open their breaker; reads go on",
	  test_pg_locked_writes_time_out_and_open_their_breaker },
	{ "a read-only server: reads go on, writes again once writable",
	  test_pg_a_read_only_server_writes_again_once_writable },
	{ "concurrent opens migrate once", test_pg_concurrent_opens_migrate_once },
	{ "concurrent changes get consecutive outbox seqs",
	  test_pg_concurrent_changes_get_consecutive_outbox_seqs },
	CU_TEST_INFO_NULL,
};

static CU_SuiteInfo sqlite_suite[] = {
	{ "store (sqlite)", sqlite_suite_init, NULL, NULL, NULL, sqlite_tests },
	CU_SUITE_INFO_NULL,
};

static CU_SuiteInfo pg_suite[] = {
	{ "store (postgres)", pg_suite_init, pg_suite_cleanup, NULL, NULL, pg_tests },
	CU_SUITE_INFO_NULL,
};

/* Both backends; FCGI_SSE_TEST_PG=skip leaves PostgreSQL out, saying so.
 * Unset, the PostgreSQL suite fails its init: CI always sets it. */
int register_store_tests(void)
{
	const char *pg = getenv("FCGI_SSE_TEST_PG");

	if (CU_register_suites(sqlite_suite) != CUE_SUCCESS)
		return -1;
	if (pg != NULL && strcmp(pg, "skip") == 0) {
		fprintf(stderr, "store (postgres): skipped (FCGI_SSE_TEST_PG=skip)\n");
		return 0;
	}
	return CU_register_suites(pg_suite) == CUE_SUCCESS ? 0 : -1;
}
