/* store/sqlite: the SQLite backend of store.h.
 *
 * One connection per thread, opened on the thread's first call and kept in
 * a thread-specific slot; its destructor closes it when the thread exits,
 * and store_close closes whatever is left (every connection is also on a
 * mutex-protected list). A connection prepares each query once, on first
 * use, and resets it after every use; SQL never contains caller data.
 * The schema is a list of migrations, applied at open in one transaction
 * and tracked with PRAGMA user_version. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../core/clock.h"
#include "backend.h"
#include "perthread.h"

/* sq_migrations[i] takes the schema from version i to i + 1. Append only:
 * a released migration is never edited. */
static const char *const sq_migrations[] = {
	/* 1: tenants, users, auth sessions, devices, telemetry, audit */
	"CREATE TABLE tenants (\n"
	"  id TEXT PRIMARY KEY,\n"
	"  name TEXT NOT NULL UNIQUE CHECK (length(name) BETWEEN 1 AND 64),\n"
	"  created_at INTEGER NOT NULL\n"
	") STRICT;\n"
	"CREATE TABLE users (\n"
	"  id TEXT PRIMARY KEY,\n"
	"  tenant_id TEXT NOT NULL REFERENCES tenants(id),\n"
	"  username TEXT NOT NULL CHECK (length(username) BETWEEN 1 AND 64),\n"
	"  role TEXT NOT NULL CHECK (role IN ('viewer', 'operator', 'admin')),\n"
	"  password_hash TEXT NOT NULL CHECK (length(password_hash) BETWEEN 1 AND 160),\n"
	"  created_at INTEGER NOT NULL,\n"
	"  UNIQUE (tenant_id, username),\n"
	"  UNIQUE (tenant_id, id)\n"
	") STRICT;\n"
	/* (tenant_id, user_id) must name a user of that tenant */
	"CREATE TABLE sessions (\n"
	"  id TEXT PRIMARY KEY,\n"
	"  tenant_id TEXT NOT NULL,\n"
	"  user_id TEXT NOT NULL,\n"
	"  role TEXT NOT NULL CHECK (role IN ('viewer', 'operator', 'admin')),\n"
	"  created_at INTEGER NOT NULL,\n"
	"  expires_at INTEGER NOT NULL,\n"
	"  revoked_at INTEGER NOT NULL DEFAULT 0,\n"
	"  FOREIGN KEY (tenant_id, user_id) REFERENCES users(tenant_id, id)\n"
	"    ON DELETE CASCADE\n"
	") STRICT;\n"
	"CREATE INDEX sessions_user ON sessions(user_id);\n"
	"CREATE INDEX sessions_expires ON sessions(expires_at);\n"
	"CREATE INDEX sessions_revoked ON sessions(revoked_at) WHERE revoked_at > 0;\n"
	/* version counts updates, for If-Match / ETag */
	"CREATE TABLE devices (\n"
	"  id TEXT PRIMARY KEY,\n"
	"  tenant_id TEXT NOT NULL REFERENCES tenants(id),\n"
	"  name TEXT NOT NULL CHECK (length(name) BETWEEN 1 AND 128),\n"
	"  status TEXT NOT NULL DEFAULT 'offline'\n"
	"    CHECK (status IN ('online', 'offline', 'maintenance')),\n"
	"  created_at INTEGER NOT NULL,\n"
	"  updated_at INTEGER NOT NULL,\n"
	"  version INTEGER NOT NULL DEFAULT 1 CHECK (version >= 1),\n"
	"  UNIQUE (tenant_id, id)\n"
	") STRICT;\n"
	"CREATE INDEX devices_status ON devices(tenant_id, status, id);\n"
	"CREATE TABLE telemetry (\n"
	"  id TEXT PRIMARY KEY,\n"
	"  tenant_id TEXT NOT NULL,\n"
	"  device_id TEXT NOT NULL,\n"
	"  ts INTEGER NOT NULL,\n"
	"  metrics_json TEXT NOT NULL CHECK (json_valid(metrics_json)),\n"
	"  FOREIGN KEY (tenant_id, device_id) REFERENCES devices(tenant_id, id)\n"
	"    ON DELETE CASCADE\n"
	") STRICT;\n"
	"CREATE INDEX telemetry_device_ts ON telemetry(tenant_id, device_id, ts);\n"
	/* append-only; id orders records (and will be the list cursor) */
	"CREATE TABLE audit (\n"
	"  id INTEGER PRIMARY KEY,\n"
	"  tenant_id TEXT NOT NULL REFERENCES tenants(id),\n"
	"  actor_id TEXT NOT NULL DEFAULT '',\n"
	"  action TEXT NOT NULL CHECK (length(action) BETWEEN 1 AND 63),\n"
	"  target TEXT NOT NULL DEFAULT '',\n"
	"  detail TEXT NOT NULL DEFAULT '',\n"
	"  at INTEGER NOT NULL\n"
	") STRICT;\n"
	"CREATE INDEX audit_tenant ON audit(tenant_id, id);\n",
	/* 2: one-time stream sessions for EventSource (API.md §6) */
	"CREATE TABLE stream_sessions (\n"
	"  id TEXT PRIMARY KEY,\n"
	"  tenant_id TEXT NOT NULL,\n"
	"  user_id TEXT NOT NULL,\n"
	"  session_id TEXT NOT NULL,\n"
	"  role TEXT NOT NULL,\n"
	"  fgp TEXT NOT NULL DEFAULT '',\n"
	"  topics TEXT NOT NULL DEFAULT '',\n"
	"  created_at INTEGER NOT NULL,\n"
	"  connect_by INTEGER NOT NULL,\n"
	"  expires_at INTEGER NOT NULL,\n"
	"  used_at INTEGER NOT NULL DEFAULT 0,\n"
	"  finished_at INTEGER NOT NULL DEFAULT 0\n"
	") STRICT;\n"
	"CREATE INDEX stream_sessions_expires ON stream_sessions(expires_at);\n"
	"CREATE INDEX stream_sessions_open ON stream_sessions(tenant_id) WHERE finished_at = 0;\n",
	/* 3: device metadata and last-seen time, audit request ids, the
	 * outbox of events committed with their change, telemetry by age */
	"ALTER TABLE devices ADD COLUMN metadata_json TEXT NOT NULL DEFAULT '{}'\n"
	"  CHECK (json_valid(metadata_json));\n"
	"ALTER TABLE devices ADD COLUMN last_seen_at INTEGER NOT NULL DEFAULT 0;\n"
	"ALTER TABLE audit ADD COLUMN request_id TEXT NOT NULL DEFAULT '';\n"
	"CREATE TABLE outbox (\n"
	"  seq INTEGER PRIMARY KEY,\n"
	"  tenant_id TEXT NOT NULL,\n"
	"  type TEXT NOT NULL,\n"
	"  topic TEXT NOT NULL DEFAULT '',\n"
	"  data TEXT NOT NULL,\n"
	"  created_at INTEGER NOT NULL\n"
	") STRICT;\n"
	"CREATE INDEX telemetry_ts ON telemetry(ts);\n",
};

#define SQ_SCHEMA_VERSION ((int)(sizeof(sq_migrations) / sizeof(sq_migrations[0])))

#define TENANT_COLS "id, name, created_at"
#define USER_COLS "id, tenant_id, username, role, password_hash, created_at"
#define SESSION_COLS "id, user_id, tenant_id, role, created_at, expires_at, revoked_at"
#define AUDIT_COLS "tenant_id, actor_id, action, target, detail, at, request_id"
#define DEVICE_COLS \
	"id, tenant_id, name, status, metadata_json, created_at, updated_at, last_seen_at, version"
#define OUTBOX_COLS "seq, tenant_id, type, topic, data, created_at"
#define TELEMETRY_BATCH 1000 /* rows per purge transaction */
#define STREAM_COLS \
	"id, tenant_id, user_id, session_id, role, fgp, topics, created_at, connect_by, " \
	"expires_at, used_at, finished_at"
#define SESSION_PURGEABLE "expires_at < ?1 OR (revoked_at > 0 AND revoked_at < ?2)"
#define SESSION_LIVE_OF_USER \
	"tenant_id = ?1 AND user_id = ?2 AND revoked_at = 0 AND expires_at > ?3"

enum sq_query {
	Q_BEGIN,
	Q_COMMIT,
	Q_ROLLBACK,
	Q_TENANT_INSERT,
	Q_TENANT_BY_NAME,
	Q_TENANT_BY_ID,
	Q_USER_INSERT,
	Q_USER_BY_NAME,
	Q_USER_BY_ID,
	Q_USER_LIST,
	Q_USER_SET_ROLE,
	Q_USER_DELETE,
	Q_SESSION_INSERT,
	Q_SESSION_GET,
	Q_SESSION_REVOKE,
	Q_SESSION_LIVE_IDS,
	Q_SESSION_REVOKE_USER,
	Q_SESSION_PURGEABLE_IDS,
	Q_SESSION_PURGE,
	Q_AUDIT_INSERT,
	Q_AUDIT_LIST,
	Q_STREAM_INSERT,
	Q_STREAM_GET,
	Q_STREAM_CLAIM,
	Q_STREAM_FINISH_TOPIC,
	Q_STREAM_PURGE,
	Q_DEVICE_INSERT,
	Q_DEVICE_GET,
	Q_DEVICE_UPDATE,
	Q_DEVICE_EXISTS,
	Q_DEVICE_DELETE,
	Q_DEVICE_LIST,
	Q_DEVICE_COUNT,
	Q_DEVICE_SEEN,
	Q_TELEMETRY_INSERT,
	Q_TELEMETRY_RECENT,
	Q_TELEMETRY_PURGE_AGE,
	Q_TELEMETRY_CROWDED,
	Q_TELEMETRY_NTH,
	Q_TELEMETRY_TRIM,
	Q_OUTBOX_INSERT,
	Q_OUTBOX_LIST,
	Q_OUTBOX_DELETE,
	Q_COUNT
};

/* Every statement the backend runs: a name for error messages, the SQL. */
static const struct {
	const char *name;
	const char *sql;
} sq_queries[Q_COUNT] = {
	[Q_BEGIN] = { "begin", "BEGIN IMMEDIATE" },
	[Q_COMMIT] = { "commit", "COMMIT" },
	[Q_ROLLBACK] = { "rollback", "ROLLBACK" },
	[Q_TENANT_INSERT] = { "tenant insert",
			      "INSERT INTO tenants (" TENANT_COLS ") VALUES (?1, ?2, ?3)" },
	[Q_TENANT_BY_NAME] = { "tenant by name",
			       "SELECT " TENANT_COLS " FROM tenants WHERE name = ?1" },
	[Q_TENANT_BY_ID] = { "tenant by id", "SELECT " TENANT_COLS " FROM tenants WHERE id = ?1" },
	[Q_USER_INSERT] = { "user insert", "INSERT INTO users (" USER_COLS ")"
					   " VALUES (?1, ?2, ?3, ?4, ?5, ?6)" },
	[Q_USER_BY_NAME] = { "user by name", "SELECT " USER_COLS " FROM users"
					     " WHERE tenant_id = ?1 AND username = ?2" },
	[Q_USER_BY_ID] = { "user by id", "SELECT " USER_COLS " FROM users"
					 " WHERE tenant_id = ?1 AND id = ?2" },
	[Q_USER_LIST] = { "user list", "SELECT " USER_COLS " FROM users"
				       " WHERE tenant_id = ?1 ORDER BY username" },
	[Q_USER_SET_ROLE] = { "user set role",
			      "UPDATE users SET role = ?3 WHERE tenant_id = ?1 AND id = ?2" },
	[Q_USER_DELETE] = { "user delete", "DELETE FROM users WHERE tenant_id = ?1 AND id = ?2" },
	[Q_SESSION_INSERT] = { "session insert", "INSERT INTO sessions (" SESSION_COLS ")"
						 " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)" },
	[Q_SESSION_GET] = { "session get", "SELECT " SESSION_COLS " FROM sessions WHERE id = ?1" },
	/* matches the row even when already revoked, so changes() tells
	 * "absent" from "already revoked"; the first time is kept */
	[Q_SESSION_REVOKE] = { "session revoke",
			       "UPDATE sessions SET revoked_at ="
			       " CASE revoked_at WHEN 0 THEN ?2 ELSE revoked_at END WHERE id = ?1" },
	[Q_SESSION_LIVE_IDS] = { "session live ids",
				 "SELECT id FROM sessions WHERE " SESSION_LIVE_OF_USER },
	[Q_SESSION_REVOKE_USER] = { "session revoke user",
				    "UPDATE sessions SET revoked_at = ?3 WHERE " SESSION_LIVE_OF_USER },
	[Q_SESSION_PURGEABLE_IDS] = { "session purgeable ids",
				      "SELECT id FROM sessions WHERE " SESSION_PURGEABLE },
	[Q_SESSION_PURGE] = { "session purge", "DELETE FROM sessions WHERE " SESSION_PURGEABLE },
	[Q_AUDIT_INSERT] = { "audit insert", "INSERT INTO audit (" AUDIT_COLS ")"
					     " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)" },
	/* ?2 = 0: from the newest */
	[Q_AUDIT_LIST] = { "audit list", "SELECT " AUDIT_COLS ", id FROM audit"
					 " WHERE tenant_id = ?1 AND (?2 = 0 OR id < ?2)"
					 " ORDER BY id DESC LIMIT ?3" },
	[Q_STREAM_INSERT] = { "stream session insert", "INSERT INTO stream_sessions (" STREAM_COLS ")"
			      " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)" },
	[Q_STREAM_GET] = { "stream session get",
			   "SELECT " STREAM_COLS " FROM stream_sessions WHERE id = ?1" },
	/* matches only an unused row: changes() says whether this call won */
	[Q_STREAM_CLAIM] = { "stream session claim",
			     "UPDATE stream_sessions SET used_at = ?2, topics = ?3"
			     " WHERE id = ?1 AND used_at = 0" },
	/* instr on ",a,b," finds whole list members; topics hold no commas */
	[Q_STREAM_FINISH_TOPIC] = { "stream session finish topic",
				    "UPDATE stream_sessions SET finished_at = ?3"
				    " WHERE tenant_id = ?1 AND finished_at = 0 AND topics != ''"
				    " AND instr(',' || topics || ',', ',' || ?2 || ',') > 0" },
	[Q_STREAM_PURGE] = { "stream session purge",
			     "DELETE FROM stream_sessions WHERE expires_at < ?1" },
	[Q_DEVICE_INSERT] = { "device insert", "INSERT INTO devices (" DEVICE_COLS ")"
			      " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)" },
	[Q_DEVICE_GET] = { "device get", "SELECT " DEVICE_COLS " FROM devices"
					 " WHERE tenant_id = ?1 AND id = ?2" },
	/* only over the version read: changes() says whether this call won */
	[Q_DEVICE_UPDATE] = { "device update",
			      "UPDATE devices SET name = ?3, status = ?4, metadata_json = ?5,"
			      " updated_at = ?6, version = version + 1"
			      " WHERE tenant_id = ?1 AND id = ?2 AND version = ?7" },
	[Q_DEVICE_EXISTS] = { "device exists",
			      "SELECT 1 FROM devices WHERE tenant_id = ?1 AND id = ?2" },
	[Q_DEVICE_DELETE] = { "device delete",
			      "DELETE FROM devices WHERE tenant_id = ?1 AND id = ?2" },
	/* keyset pages by id (?3 '' from the first); ?2 '' any status */
	[Q_DEVICE_LIST] = { "device list", "SELECT " DEVICE_COLS " FROM devices"
					   " WHERE tenant_id = ?1 AND (?2 = '' OR status = ?2)"
					   " AND id > ?3 ORDER BY id LIMIT ?4 OFFSET ?5" },
	[Q_DEVICE_COUNT] = { "device count", "SELECT count(*) FROM devices"
					     " WHERE tenant_id = ?1 AND (?2 = '' OR status = ?2)" },
	[Q_DEVICE_SEEN] = { "device seen", "UPDATE devices SET last_seen_at = max(last_seen_at, ?3)"
					   " WHERE tenant_id = ?1 AND id = ?2" },
	[Q_TELEMETRY_INSERT] = { "telemetry insert",
				 "INSERT INTO telemetry (id, tenant_id, device_id, ts, metrics_json)"
				 " VALUES (?1, ?2, ?3, ?4, ?5)" },
	[Q_TELEMETRY_RECENT] = { "telemetry recent",
				 "SELECT id, device_id, ts, metrics_json FROM telemetry"
				 " WHERE tenant_id = ?1 AND device_id = ?2"
				 " ORDER BY ts DESC, rowid DESC LIMIT ?3" },
	[Q_TELEMETRY_PURGE_AGE] = { "telemetry purge by age",
				    "DELETE FROM telemetry WHERE rowid IN"
				    " (SELECT rowid FROM telemetry WHERE ts < ?1 LIMIT ?2)" },
	[Q_TELEMETRY_CROWDED] = { "telemetry crowded devices",
				  "SELECT tenant_id, device_id FROM telemetry"
				  " GROUP BY tenant_id, device_id HAVING count(*) > ?1" },
	[Q_TELEMETRY_NTH] = { "telemetry nth newest",
			      "SELECT ts FROM telemetry WHERE tenant_id = ?1 AND device_id = ?2"
			      " ORDER BY ts DESC LIMIT 1 OFFSET ?3" },
	[Q_TELEMETRY_TRIM] = { "telemetry trim",
			       "DELETE FROM telemetry WHERE rowid IN (SELECT rowid FROM telemetry"
			       " WHERE tenant_id = ?1 AND device_id = ?2 AND ts < ?3 LIMIT ?4)" },
	[Q_OUTBOX_INSERT] = { "outbox insert",
			      "INSERT INTO outbox (tenant_id, type, topic, data, created_at)"
			      " VALUES (?1, ?2, ?3, ?4, ?5)" },
	[Q_OUTBOX_LIST] = { "outbox list", "SELECT " OUTBOX_COLS " FROM outbox"
					   " WHERE created_at <= ?1 ORDER BY seq LIMIT ?2" },
	[Q_OUTBOX_DELETE] = { "outbox delete", "DELETE FROM outbox WHERE seq BETWEEN ?1 AND ?2" },
};

struct sq_conn;

struct sq_store {
	char *path;
	int busy_timeout_ms;
	int version;           /* schema version after migrations */
	struct perthread conns; /* every thread's struct sq_conn */
};

/* One thread's connection and its last error. */
struct sq_conn {
	struct perthread_link link;  /* first: perthread.h */
	struct sq_store *s;
	sqlite3 *db;                 /* NULL until opened, and after a failed open */
	sqlite3_stmt *stmt[Q_COUNT]; /* prepared on first use */
	char errstr[256];
	int last_rc;                 /* SQLite's code of the call's failure (0: none) */
	long long began_ms;          /* when the current store call began (monotonic) */
	long long deadline_ms;       /* its statements are interrupted after this (0: never) */
	long long opened_ms;         /* when db was opened (monotonic) */
	int reopen;                  /* db is read-only: open it again before a write */
};

/* What a call is about to do with its connection (sq_connect). */
enum sq_use { SQ_READ, SQ_WRITE };

/* A read-only connection still serves reads: a read reopens it (once the
 * file can be written) at most this often, so that one that keeps opening
 * read-only all the same does not cost an open per read. */
#define SQ_REOPEN_READ_MS 1000

/* Ids collected inside a transaction, reported after it commits. */
struct sq_ids {
	char (*v)[STORE_ID_MAX + 1];
	size_t n, cap;
};

static void sq_seterr(struct sq_conn *c, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void sq_seterr(struct sq_conn *c, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(c->errstr, sizeof(c->errstr), fmt, ap);
	va_end(ap);
}

/* Maps a failed SQLite result to a store code; records a message when the
 * code is STORE_ERROR. */
static int sq_fail(struct sq_conn *c, int rc, const char *what)
{
	switch (rc) {
	case SQLITE_CONSTRAINT_UNIQUE:
	case SQLITE_CONSTRAINT_PRIMARYKEY:
		return STORE_CONFLICT;
	case SQLITE_CONSTRAINT_FOREIGNKEY:
		/* the tenant or user the row refers to does not exist */
		return STORE_NOT_FOUND;
	default:
		c->last_rc = rc;
		/* a connection opened while the file could not be written
		 * stays read-only, whatever the file's mode later: opened
		 * again, it can write (sq_connect) */
		if ((rc & 0xff) == SQLITE_READONLY)
			c->reopen = 1;
		sq_seterr(c, "sqlite: %s: %s", what, c->db ? sqlite3_errmsg(c->db) : sqlite3_errstr(rc));
		return STORE_ERROR;
	}
}

static int sq_exec_sql(struct sq_conn *c, const char *what, const char *sql)
{
	int rc = sqlite3_exec(c->db, sql, NULL, NULL, NULL);

	return rc == SQLITE_OK ? STORE_OK : sq_fail(c, rc, what);
}

/* Runs a one-row, one-column query and copies its integer into *out. */
static int sq_query_int(struct sq_conn *c, const char *sql, int *out)
{
	sqlite3_stmt *stmt = NULL;
	int rc;

	rc = sqlite3_prepare_v2(c->db, sql, -1, &stmt, NULL);
	if (rc == SQLITE_OK && (rc = sqlite3_step(stmt)) == SQLITE_ROW) {
		*out = sqlite3_column_int(stmt, 0);
		rc = SQLITE_OK;
	}
	if (rc != SQLITE_OK)
		sq_seterr(c, "sqlite: %s: %s", sql, sqlite3_errmsg(c->db));
	sqlite3_finalize(stmt);
	return rc == SQLITE_OK ? STORE_OK : STORE_ERROR;
}

/* Runs a pragma and checks the text of its one-value answer. */
static int sq_pragma_is(struct sq_conn *c, const char *sql, const char *want)
{
	sqlite3_stmt *stmt = NULL;
	const char *got = NULL;
	int rc;

	rc = sqlite3_prepare_v2(c->db, sql, -1, &stmt, NULL);
	if (rc == SQLITE_OK && sqlite3_step(stmt) == SQLITE_ROW)
		got = (const char *)sqlite3_column_text(stmt, 0);
	if (got == NULL)
		sq_seterr(c, "sqlite: %s: %s", sql, sqlite3_errmsg(c->db));
	else if (strcmp(got, want) != 0)
		sq_seterr(c, "sqlite: %s: got '%s', need '%s'", sql, got, want);
	rc = got != NULL && strcmp(got, want) == 0 ? STORE_OK : STORE_ERROR;
	sqlite3_finalize(stmt);
	return rc;
}

/* SQLite calls this every SQ_PROGRESS_OPS virtual machine steps of a
 * statement: past the call's deadline it interrupts the statement
 * (SQLITE_INTERRUPT), so a runaway query cannot hold a worker. Waiting on
 * a lock is the busy timeout's, not this. */
#define SQ_PROGRESS_OPS 4000

static int sq_progress(void *arg)
{
	const struct sq_conn *c = arg;

	return c->deadline_ms > 0 && clock_mono_ms() > c->deadline_ms;
}

/* Whether this process may write the file at path (its mode and owner;
 * root may write any), or it does not exist yet (it is created then). */
static int sq_file_writable(const char *path)
{
	return faccessat(AT_FDCWD, path, W_OK, AT_EACCESS) == 0 || errno == ENOENT;
}

/* Opens c's connection and sets it up: extended result codes, busy
 * timeout, the statement deadline, WAL (which also refuses ":memory:"), synchronous=NORMAL,
 * foreign keys. Returns STORE_OK, or STORE_ERROR with c->db NULL. A file
 * the process may not write opens read-only: that is STORE_OK, with
 * c->reopen set.
 *
 * Such a file is opened read-only on purpose rather than left to SQLite's
 * own fallback (it opens a file it may not write read-only, silently).
 * SQLite cannot close the descriptor of a closed connection while others
 * of the process hold POSIX locks on the file (WAL connections always
 * do): it keeps it for the next open with the same flags. Asked for
 * read-write, that next open never matches one of a read-only
 * connection, and each read-only connection closed would keep a
 * descriptor for the life of the process. */
static int sq_conn_open(struct sq_conn *c)
{
	const struct sq_store *s = c->s;
	int rc;

	rc = sqlite3_open_v2(s->path, &c->db,
			     (sq_file_writable(s->path) ? SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE
							: SQLITE_OPEN_READONLY) |
				     SQLITE_OPEN_NOMUTEX,
			     NULL);
	if (rc != SQLITE_OK) {
		sq_seterr(c, "sqlite: open %s: %s", s->path,
			  c->db ? sqlite3_errmsg(c->db) : sqlite3_errstr(rc));
		goto err;
	}
	sqlite3_extended_result_codes(c->db, 1);
	sqlite3_busy_timeout(c->db, s->busy_timeout_ms);
	sqlite3_progress_handler(c->db, SQ_PROGRESS_OPS, sq_progress, c);
	if (sq_pragma_is(c, "PRAGMA journal_mode = WAL", "wal") != STORE_OK ||
	    sq_exec_sql(c, "pragmas", "PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON")
		    != STORE_OK ||
	    sq_pragma_is(c, "PRAGMA foreign_keys", "1") != STORE_OK)
		goto err;
	c->opened_ms = clock_mono_ms();
	c->reopen = sqlite3_db_readonly(c->db, "main") == 1;
	return STORE_OK;
err:
	sqlite3_close(c->db);
	c->db = NULL;
	return STORE_ERROR;
}

/* Brings the schema to SQ_SCHEMA_VERSION in one IMMEDIATE transaction, so
 * processes opening the same file at once migrate it once. Refuses a
 * database from a newer build. */
static int sq_migrate(struct sq_conn *c)
{
	char sql[64], what[32];
	int v = 0;

	if (sq_exec_sql(c, "migration begin", "BEGIN IMMEDIATE") != STORE_OK)
		return STORE_ERROR;
	if (sq_query_int(c, "PRAGMA user_version", &v) != STORE_OK)
		goto err;
	if (v < 0 || v > SQ_SCHEMA_VERSION) {
		sq_seterr(c, "sqlite: %s has schema version %d, but this build knows versions"
			  " 0 to %d (a newer build wrote it?); refusing to open it",
			  c->s->path, v, SQ_SCHEMA_VERSION);
		goto err;
	}
	for (; v < SQ_SCHEMA_VERSION; v++) {
		snprintf(what, sizeof(what), "migration %d", v + 1);
		/* PRAGMA takes no bound parameters; the value is our own integer */
		snprintf(sql, sizeof(sql), "PRAGMA user_version = %d", v + 1);
		if (sq_exec_sql(c, what, sq_migrations[v]) != STORE_OK ||
		    sq_exec_sql(c, what, sql) != STORE_OK)
			goto err;
	}
	if (sq_exec_sql(c, "migration commit", "COMMIT") != STORE_OK)
		goto err;
	c->s->version = SQ_SCHEMA_VERSION;
	return STORE_OK;
err:
	sqlite3_exec(c->db, "ROLLBACK", NULL, NULL, NULL);
	return STORE_ERROR;
}

/* Finalizes c's statements (prepared again on their next use). */
static void sq_conn_finalize(struct sq_conn *c)
{
	for (int q = 0; q < Q_COUNT; q++) {
		sqlite3_finalize(c->stmt[q]);
		c->stmt[q] = NULL;
	}
}

/* perthread's free_obj: when the thread exits, or at sq_close. */
static void sq_conn_free(void *p)
{
	struct sq_conn *c = p;

	sq_conn_finalize(c);
	sqlite3_close(c->db);
	free(c);
}

/* The calling thread's state, created (without a database) on first use.
 * NULL when memory ran out. */
static struct sq_conn *sq_local(struct sq_store *s)
{
	int made;
	struct sq_conn *c = perthread_get(&s->conns, &made);

	if (c != NULL && made)
		c->s = s;
	return c;
}

/* 1 when none of c's statements is running (a store call made from a
 * list's callback runs while the list's statement is still stepping). */
static int sq_conn_idle(struct sq_conn *c)
{
	if (!sqlite3_get_autocommit(c->db))
		return 0;
	for (sqlite3_stmt *st = sqlite3_next_stmt(c->db, NULL); st != NULL;
	     st = sqlite3_next_stmt(c->db, st))
		if (sqlite3_stmt_busy(st))
			return 0;
	return 1;
}

/* Replaces c's read-only connection with a new one, which can write if the
 * file can be written now. When the open fails the old connection stays
 * (it still serves reads), flagged, and is tried again later: an open
 * that fails or comes back read-only costs this call nothing more. */
static void sq_reopen(struct sq_conn *c)
{
	sqlite3 *old = c->db;

	sq_conn_finalize(c);
	c->db = NULL;
	if (sq_conn_open(c) == STORE_OK) {
		sqlite3_close(old); /* no statement left on it: closes now */
		return;
	}
	c->db = old;
	c->opened_ms = clock_mono_ms();
	c->reopen = 1;
	c->last_rc = 0; /* the failed open is not the call's failure */
}

/* The calling thread's open connection for a call that will `use` it; NULL
 * (error recorded where it can be) when it cannot be opened. A failed open
 * is retried on the next call. A read-only connection is opened again
 * once the file can be written: before the next write, or by a read now
 * and then. While the file stays read-only that costs an access(2). */
static struct sq_conn *sq_connect(struct sq_store *s, enum sq_use use)
{
	struct sq_conn *c = sq_local(s);

	if (c == NULL)
		return NULL;
	if (c->db == NULL)
		return sq_conn_open(c) == STORE_OK ? c : NULL;
	if (c->reopen && (use == SQ_WRITE || clock_mono_ms() - c->opened_ms >= SQ_REOPEN_READ_MS) &&
	    sq_conn_idle(c) && sq_file_writable(s->path))
		sq_reopen(c);
	return c;
}

static void sq_release(struct sq_conn *c, enum sq_query q)
{
	sqlite3_reset(c->stmt[q]);
	sqlite3_clear_bindings(c->stmt[q]);
}

/* Query q of this connection, prepared on first use; NULL (error recorded)
 * when it cannot be prepared or is still running further up the stack. */
static sqlite3_stmt *sq_prepare(struct sq_conn *c, enum sq_query q)
{
	int rc;

	if (c->stmt[q] == NULL) {
		rc = sqlite3_prepare_v3(c->db, sq_queries[q].sql, -1, SQLITE_PREPARE_PERSISTENT,
					&c->stmt[q], NULL);
		if (rc != SQLITE_OK) {
			sq_fail(c, rc, sq_queries[q].name);
			return NULL;
		}
	} else if (sqlite3_stmt_busy(c->stmt[q])) {
		sq_seterr(c, "sqlite: %s: already running (store call from a callback?)",
			  sq_queries[q].name);
		return NULL;
	}
	return c->stmt[q];
}

/* Prepares query q and binds fmt's arguments to ?1, ?2, ... in order: 't' a
 * string (const char *, kept by the caller until the query is released),
 * 'i' an integer (long long). fmt must cover every parameter of the SQL. */
static int sq_bind(struct sq_conn *c, enum sq_query q, const char *fmt, ...)
{
	sqlite3_stmt *stmt = sq_prepare(c, q);
	va_list ap;
	int rc = SQLITE_OK;

	if (stmt == NULL)
		return STORE_ERROR;
	if ((int)strlen(fmt) != sqlite3_bind_parameter_count(stmt)) {
		sq_seterr(c, "sqlite: %s: %zu values for %d parameters", sq_queries[q].name,
			  strlen(fmt), sqlite3_bind_parameter_count(stmt));
		return STORE_ERROR;
	}
	va_start(ap, fmt);
	for (int i = 0; fmt[i] != '\0' && rc == SQLITE_OK; i++)
		rc = fmt[i] == 't' ? sqlite3_bind_text(stmt, i + 1, va_arg(ap, const char *), -1,
						       SQLITE_STATIC)
				   : sqlite3_bind_int64(stmt, i + 1, va_arg(ap, long long));
	va_end(ap);
	if (rc == SQLITE_OK)
		return STORE_OK;
	sq_release(c, q);
	return sq_fail(c, rc, sq_queries[q].name);
}

/* Steps a bound query to its end and releases it. */
static int sq_exec(struct sq_conn *c, enum sq_query q)
{
	int rc = sqlite3_step(c->stmt[q]);

	rc = rc == SQLITE_DONE ? STORE_OK : sq_fail(c, rc, sq_queries[q].name);
	sq_release(c, q);
	return rc;
}

/* Steps a bound query once: STORE_OK on a row, STORE_NOT_FOUND at the end. */
static int sq_next(struct sq_conn *c, enum sq_query q)
{
	int rc = sqlite3_step(c->stmt[q]);

	if (rc == SQLITE_ROW)
		return STORE_OK;
	return rc == SQLITE_DONE ? STORE_NOT_FOUND : sq_fail(c, rc, sq_queries[q].name);
}

/* Copies text column col into dst (size bytes with the NUL). */
static int sq_text(struct sq_conn *c, sqlite3_stmt *stmt, int col, char *dst, size_t size)
{
	const unsigned char *p = sqlite3_column_text(stmt, col);
	size_t n = (size_t)sqlite3_column_bytes(stmt, col);

	if (p == NULL && sqlite3_column_type(stmt, col) != SQLITE_NULL) {
		sq_seterr(c, "sqlite: out of memory reading %s", sqlite3_column_name(stmt, col));
		return STORE_ERROR;
	}
	if (n >= size) {
		sq_seterr(c, "sqlite: column %s holds %zu bytes, more than %zu",
			  sqlite3_column_name(stmt, col), n, size - 1);
		return STORE_ERROR;
	}
	if (n > 0)
		memcpy(dst, p, n);
	dst[n] = '\0';
	return STORE_OK;
}

static int sq_row_tenant(struct sq_conn *c, sqlite3_stmt *stmt, struct store_tenant *t)
{
	if (sq_text(c, stmt, 0, t->id, sizeof(t->id)) != STORE_OK ||
	    sq_text(c, stmt, 1, t->name, sizeof(t->name)) != STORE_OK)
		return STORE_ERROR;
	t->created_at = sqlite3_column_int64(stmt, 2);
	return STORE_OK;
}

static int sq_row_user(struct sq_conn *c, sqlite3_stmt *stmt, struct store_user *u)
{
	if (sq_text(c, stmt, 0, u->id, sizeof(u->id)) != STORE_OK ||
	    sq_text(c, stmt, 1, u->tenant_id, sizeof(u->tenant_id)) != STORE_OK ||
	    sq_text(c, stmt, 2, u->username, sizeof(u->username)) != STORE_OK ||
	    sq_text(c, stmt, 3, u->role, sizeof(u->role)) != STORE_OK ||
	    sq_text(c, stmt, 4, u->password_hash, sizeof(u->password_hash)) != STORE_OK)
		return STORE_ERROR;
	u->created_at = sqlite3_column_int64(stmt, 5);
	return STORE_OK;
}

static int sq_row_session(struct sq_conn *c, sqlite3_stmt *stmt, struct store_session *x)
{
	if (sq_text(c, stmt, 0, x->id, sizeof(x->id)) != STORE_OK ||
	    sq_text(c, stmt, 1, x->user_id, sizeof(x->user_id)) != STORE_OK ||
	    sq_text(c, stmt, 2, x->tenant_id, sizeof(x->tenant_id)) != STORE_OK ||
	    sq_text(c, stmt, 3, x->role, sizeof(x->role)) != STORE_OK)
		return STORE_ERROR;
	x->created_at = sqlite3_column_int64(stmt, 4);
	x->expires_at = sqlite3_column_int64(stmt, 5);
	x->revoked_at = sqlite3_column_int64(stmt, 6);
	return STORE_OK;
}

static int sq_row_audit(struct sq_conn *c, sqlite3_stmt *stmt, struct store_audit *a)
{
	if (sq_text(c, stmt, 0, a->tenant_id, sizeof(a->tenant_id)) != STORE_OK ||
	    sq_text(c, stmt, 1, a->actor_id, sizeof(a->actor_id)) != STORE_OK ||
	    sq_text(c, stmt, 2, a->action, sizeof(a->action)) != STORE_OK ||
	    sq_text(c, stmt, 3, a->target, sizeof(a->target)) != STORE_OK ||
	    sq_text(c, stmt, 4, a->detail, sizeof(a->detail)) != STORE_OK ||
	    sq_text(c, stmt, 6, a->request_id, sizeof(a->request_id)) != STORE_OK)
		return STORE_ERROR;
	a->at = sqlite3_column_int64(stmt, 5);
	a->seq = sqlite3_column_int64(stmt, 7);
	return STORE_OK;
}

static int sq_row_device(struct sq_conn *c, sqlite3_stmt *stmt, struct store_device *d)
{
	if (sq_text(c, stmt, 0, d->id, sizeof(d->id)) != STORE_OK ||
	    sq_text(c, stmt, 1, d->tenant_id, sizeof(d->tenant_id)) != STORE_OK ||
	    sq_text(c, stmt, 2, d->name, sizeof(d->name)) != STORE_OK ||
	    sq_text(c, stmt, 3, d->status, sizeof(d->status)) != STORE_OK ||
	    sq_text(c, stmt, 4, d->metadata, sizeof(d->metadata)) != STORE_OK)
		return STORE_ERROR;
	d->created_at = sqlite3_column_int64(stmt, 5);
	d->updated_at = sqlite3_column_int64(stmt, 6);
	d->last_seen_at = sqlite3_column_int64(stmt, 7);
	d->version = sqlite3_column_int64(stmt, 8);
	return STORE_OK;
}

/* Ends a transaction: commits when rc is STORE_OK, otherwise (or when the
 * commit failed) rolls back. Returns the outcome. */
static int sq_tx_end(struct sq_conn *c, int rc)
{
	if (rc == STORE_OK && (rc = sq_bind(c, Q_COMMIT, "")) == STORE_OK &&
	    (rc = sq_exec(c, Q_COMMIT)) == STORE_OK)
		return STORE_OK;
	if (!sqlite3_get_autocommit(c->db) && c->stmt[Q_ROLLBACK] != NULL) {
		sqlite3_step(c->stmt[Q_ROLLBACK]);
		sq_release(c, Q_ROLLBACK);
	}
	return rc;
}

/* BEGIN IMMEDIATE takes the write lock up front: a read that later turns
 * into a write can fail with SQLITE_BUSY without waiting. ROLLBACK is
 * prepared here so that ending a failed transaction cannot fail to. */
static int sq_tx_begin(struct sq_conn *c)
{
	if (sq_bind(c, Q_ROLLBACK, "") != STORE_OK || sq_bind(c, Q_BEGIN, "") != STORE_OK)
		return STORE_ERROR;
	return sq_exec(c, Q_BEGIN);
}

static int sq_ids_push_col(struct sq_conn *c, struct sq_ids *ids, sqlite3_stmt *stmt, int col)
{
	size_t cap;
	void *p;

	if (ids->n == ids->cap) {
		cap = ids->cap ? ids->cap * 2 : 16;
		if ((p = realloc(ids->v, cap * sizeof(*ids->v))) == NULL) {
			sq_seterr(c, "sqlite: out of memory collecting ids");
			return STORE_ERROR;
		}
		ids->v = p;
		ids->cap = cap;
	}
	if (sq_text(c, stmt, col, ids->v[ids->n], sizeof(ids->v[0])) != STORE_OK)
		return STORE_ERROR;
	ids->n++;
	return STORE_OK;
}

static int sq_ids_push(struct sq_conn *c, struct sq_ids *ids, sqlite3_stmt *stmt)
{
	return sq_ids_push_col(c, ids, stmt, 0);
}

/* Appends the first column of every row of bound query q to ids. */
static int sq_collect(struct sq_conn *c, enum sq_query q, struct sq_ids *ids)
{
	int rc;

	while ((rc = sq_next(c, q)) == STORE_OK)
		if ((rc = sq_ids_push(c, ids, c->stmt[q])) != STORE_OK)
			break;
	sq_release(c, q);
	return rc == STORE_NOT_FOUND ? STORE_OK : rc;
}

/* Reports collected ids, then frees them. */
static void sq_ids_report(struct sq_ids *ids, int rc, store_id_fn *fn, void *ctx)
{
	for (size_t i = 0; rc == STORE_OK && fn != NULL && i < ids->n; i++)
		fn(ctx, ids->v[i]);
	free(ids->v);
}

/* The ops. Arguments were validated by store.c. */

/* Closes the connections of live threads and of this one (those of exited
 * threads went as they exited). A thread exiting while
 * this runs would race its destructor: store.h requires that no call is
 * running, which here means worker threads are joined or idle. */
static void sq_close(void *impl)
{
	struct sq_store *s = impl;

	perthread_close(&s->conns);
	free(s->path);
	free(s);
}

static int sq_schema_version(void *impl)
{
	return ((struct sq_store *)impl)->version;
}

static const char *sq_errstr(void *impl)
{
	struct sq_conn *c = sq_local(impl);

	return c ? c->errstr : "sqlite: out of memory (no per-thread state)";
}

static void sq_begin(void *impl, long long timeout_ms)
{
	struct sq_conn *c = sq_local(impl);

	if (c == NULL)
		return;
	c->last_rc = 0;
	c->began_ms = clock_mono_ms();
	c->deadline_ms = timeout_ms > 0 ? c->began_ms + timeout_ms : 0;
}

/* Busy or locked without the busy timeout having run out (a read lock
 * lost to a checkpoint, a snapshot that went stale): a moment later the
 * same call can succeed. One that waited out the busy timeout is not
 * retried: that would multiply the wait. */
static int sq_transient(void *impl)
{
	const struct sq_conn *c = sq_local(impl);
	int primary;

	if (c == NULL)
		return 0;
	primary = c->last_rc & 0xff;
	return (primary == SQLITE_BUSY || primary == SQLITE_LOCKED) &&
	       clock_mono_ms() - c->began_ms < c->s->busy_timeout_ms / 2;
}

/* Reopens a read-only connection first, as a write would. */
static int sq_writable(void *impl)
{
	struct sq_conn *c = sq_connect(impl, SQ_WRITE);

	if (c == NULL)
		return -1;
	return sqlite3_db_readonly(c->db, "main") == 0;
}

static void sq_set_error(void *impl, const char *msg)
{
	struct sq_conn *c = sq_local(impl);

	if (c != NULL)
		sq_seterr(c, "%s", msg);
}

static int sq_tenant_create(void *impl, const struct store_tenant *t)
{
	struct sq_conn *c = sq_connect(impl, SQ_WRITE);

	if (c == NULL ||
	    sq_bind(c, Q_TENANT_INSERT, "tti", t->id, t->name, t->created_at) != STORE_OK)
		return STORE_ERROR;
	return sq_exec(c, Q_TENANT_INSERT);
}

static int sq_tenant_get(void *impl, enum sq_query q, const char *key, struct store_tenant *out)
{
	struct sq_conn *c = sq_connect(impl, SQ_READ);
	int rc;

	if (c == NULL || sq_bind(c, q, "t", key) != STORE_OK)
		return STORE_ERROR;
	if ((rc = sq_next(c, q)) == STORE_OK)
		rc = sq_row_tenant(c, c->stmt[q], out);
	sq_release(c, q);
	return rc;
}

static int sq_tenant_by_name(void *impl, const char *name, struct store_tenant *out)
{
	return sq_tenant_get(impl, Q_TENANT_BY_NAME, name, out);
}

static int sq_tenant_by_id(void *impl, const char *id, struct store_tenant *out)
{
	return sq_tenant_get(impl, Q_TENANT_BY_ID, id, out);
}

static int sq_user_create(void *impl, const struct store_user *u)
{
	struct sq_conn *c = sq_connect(impl, SQ_WRITE);

	if (c == NULL || sq_bind(c, Q_USER_INSERT, "ttttti", u->id, u->tenant_id, u->username,
				 u->role, u->password_hash, u->created_at) != STORE_OK)
		return STORE_ERROR;
	return sq_exec(c, Q_USER_INSERT);
}

static int sq_user_get(void *impl, enum sq_query q, const char *tenant_id, const char *key,
		       struct store_user *out)
{
	struct sq_conn *c = sq_connect(impl, SQ_READ);
	int rc;

	if (c == NULL || sq_bind(c, q, "tt", tenant_id, key) != STORE_OK)
		return STORE_ERROR;
	if ((rc = sq_next(c, q)) == STORE_OK)
		rc = sq_row_user(c, c->stmt[q], out);
	sq_release(c, q);
	return rc;
}

static int sq_user_by_name(void *impl, const char *tenant_id, const char *username,
			   struct store_user *out)
{
	return sq_user_get(impl, Q_USER_BY_NAME, tenant_id, username, out);
}

static int sq_user_by_id(void *impl, const char *tenant_id, const char *user_id,
			 struct store_user *out)
{
	return sq_user_get(impl, Q_USER_BY_ID, tenant_id, user_id, out);
}

static int sq_user_list(void *impl, const char *tenant_id, store_user_fn *fn, void *ctx)
{
	struct sq_conn *c = sq_connect(impl, SQ_READ);
	struct store_user u;
	int rc;

	if (c == NULL || sq_bind(c, Q_USER_LIST, "t", tenant_id) != STORE_OK)
		return STORE_ERROR;
	while ((rc = sq_next(c, Q_USER_LIST)) == STORE_OK)
		if ((rc = sq_row_user(c, c->stmt[Q_USER_LIST], &u)) != STORE_OK || fn(ctx, &u) != 0)
			break;
	sq_release(c, Q_USER_LIST);
	return rc == STORE_NOT_FOUND ? STORE_OK : rc;
}

/* Runs a bound change of one row: NOT_FOUND when it matched none. */
static int sq_exec_one(struct sq_conn *c, enum sq_query q)
{
	int rc = sq_exec(c, q);

	return rc == STORE_OK && sqlite3_changes(c->db) == 0 ? STORE_NOT_FOUND : rc;
}

static int sq_user_set_role(void *impl, const char *tenant_id, const char *user_id,
			    const char *role)
{
	struct sq_conn *c = sq_connect(impl, SQ_WRITE);

	if (c == NULL || sq_bind(c, Q_USER_SET_ROLE, "ttt", tenant_id, user_id, role) != STORE_OK)
		return STORE_ERROR;
	return sq_exec_one(c, Q_USER_SET_ROLE);
}

static int sq_user_delete(void *impl, const char *tenant_id, const char *user_id)
{
	struct sq_conn *c = sq_connect(impl, SQ_WRITE);

	if (c == NULL || sq_bind(c, Q_USER_DELETE, "tt", tenant_id, user_id) != STORE_OK)
		return STORE_ERROR;
	return sq_exec_one(c, Q_USER_DELETE);
}

static int sq_session_create(void *impl, const struct store_session *x)
{
	struct sq_conn *c = sq_connect(impl, SQ_WRITE);

	if (c == NULL || sq_bind(c, Q_SESSION_INSERT, "ttttiii", x->id, x->user_id, x->tenant_id,
				 x->role, x->created_at, x->expires_at, x->revoked_at) != STORE_OK)
		return STORE_ERROR;
	return sq_exec(c, Q_SESSION_INSERT);
}

static int sq_session_get(void *impl, const char *id, struct store_session *out)
{
	struct sq_conn *c = sq_connect(impl, SQ_READ);
	int rc;

	if (c == NULL || sq_bind(c, Q_SESSION_GET, "t", id) != STORE_OK)
		return STORE_ERROR;
	if ((rc = sq_next(c, Q_SESSION_GET)) == STORE_OK)
		rc = sq_row_session(c, c->stmt[Q_SESSION_GET], out);
	sq_release(c, Q_SESSION_GET);
	return rc;
}

static int sq_session_revoke(void *impl, const char *id, long long now)
{
	struct sq_conn *c = sq_connect(impl, SQ_WRITE);
	int rc;

	if (c == NULL || sq_bind(c, Q_SESSION_REVOKE, "ti", id, now) != STORE_OK)
		return STORE_ERROR;
	if ((rc = sq_exec(c, Q_SESSION_REVOKE)) == STORE_OK && sqlite3_changes(c->db) == 0)
		rc = STORE_NOT_FOUND;
	return rc;
}

/* Live sessions: not revoked and not yet expired at now. */
static int sq_session_revoke_user(void *impl, const char *tenant_id, const char *user_id,
				  long long now, store_id_fn *fn, void *ctx)
{
	struct sq_conn *c = sq_connect(impl, SQ_WRITE);
	struct sq_ids ids = { NULL, 0, 0 };
	int rc;

	if (c == NULL || sq_tx_begin(c) != STORE_OK)
		return STORE_ERROR;
	rc = sq_bind(c, Q_SESSION_LIVE_IDS, "tti", tenant_id, user_id, now);
	if (rc == STORE_OK)
		rc = sq_collect(c, Q_SESSION_LIVE_IDS, &ids);
	if (rc == STORE_OK)
		rc = sq_bind(c, Q_SESSION_REVOKE_USER, "tti", tenant_id, user_id, now);
	if (rc == STORE_OK)
		rc = sq_exec(c, Q_SESSION_REVOKE_USER);
	rc = sq_tx_end(c, rc);
	sq_ids_report(&ids, rc, fn, ctx);
	return rc;
}

static int sq_session_purge(void *impl, long long now, long long keep_revoked_s,
			    store_id_fn *fn, void *ctx)
{
	struct sq_conn *c = sq_connect(impl, SQ_WRITE);
	struct sq_ids ids = { NULL, 0, 0 };
	long long cutoff = now - keep_revoked_s; /* both >= 0: no overflow */
	int rc;

	if (c == NULL || sq_tx_begin(c) != STORE_OK)
		return STORE_ERROR;
	rc = sq_bind(c, Q_SESSION_PURGEABLE_IDS, "ii", now, cutoff);
	if (rc == STORE_OK)
		rc = sq_collect(c, Q_SESSION_PURGEABLE_IDS, &ids);
	if (rc == STORE_OK)
		rc = sq_bind(c, Q_SESSION_PURGE, "ii", now, cutoff);
	if (rc == STORE_OK)
		rc = sq_exec(c, Q_SESSION_PURGE);
	rc = sq_tx_end(c, rc);
	sq_ids_report(&ids, rc, fn, ctx);
	return rc;
}

static int sq_audit_insert(struct sq_conn *c, const struct store_audit *a)
{
	if (sq_bind(c, Q_AUDIT_INSERT, "tttttit", a->tenant_id, a->actor_id, a->action, a->target,
		    a->detail, a->at, a->request_id) != STORE_OK)
		return STORE_ERROR;
	return sq_exec(c, Q_AUDIT_INSERT);
}

static int sq_audit_append(void *impl, const struct store_audit *a)
{
	struct sq_conn *c = sq_connect(impl, SQ_WRITE);

	return c == NULL ? STORE_ERROR : sq_audit_insert(c, a);
}

static int sq_audit_list(void *impl, const char *tenant_id, long long before, int limit,
			 store_audit_fn *fn, void *ctx)
{
	struct sq_conn *c = sq_connect(impl, SQ_READ);
	struct store_audit a;
	int rc;

	if (c == NULL ||
	    sq_bind(c, Q_AUDIT_LIST, "tii", tenant_id, before, (long long)limit) != STORE_OK)
		return STORE_ERROR;
	while ((rc = sq_next(c, Q_AUDIT_LIST)) == STORE_OK)
		if ((rc = sq_row_audit(c, c->stmt[Q_AUDIT_LIST], &a)) != STORE_OK || fn(ctx, &a) != 0)
			break;
	sq_release(c, Q_AUDIT_LIST);
	return rc == STORE_NOT_FOUND ? STORE_OK : rc;
}

static int sq_stream_create(void *impl, const struct store_stream_session *x)
{
	struct sq_conn *c = sq_connect(impl, SQ_WRITE);

	if (c == NULL ||
	    sq_bind(c, Q_STREAM_INSERT, "tttttttiiiii", x->id, x->tenant_id, x->user_id,
		    x->session_id, x->role, x->fgp, x->topics, x->created_at, x->connect_by,
		    x->expires_at, x->used_at, x->finished_at) != STORE_OK)
		return STORE_ERROR;
	return sq_exec(c, Q_STREAM_INSERT);
}

static int sq_row_stream(struct sq_conn *c, sqlite3_stmt *st, struct store_stream_session *x)
{
	if (sq_text(c, st, 0, x->id, sizeof(x->id)) != STORE_OK ||
	    sq_text(c, st, 1, x->tenant_id, sizeof(x->tenant_id)) != STORE_OK ||
	    sq_text(c, st, 2, x->user_id, sizeof(x->user_id)) != STORE_OK ||
	    sq_text(c, st, 3, x->session_id, sizeof(x->session_id)) != STORE_OK ||
	    sq_text(c, st, 4, x->role, sizeof(x->role)) != STORE_OK ||
	    sq_text(c, st, 5, x->fgp, sizeof(x->fgp)) != STORE_OK ||
	    sq_text(c, st, 6, x->topics, sizeof(x->topics)) != STORE_OK)
		return STORE_ERROR;
	x->created_at = sqlite3_column_int64(st, 7);
	x->connect_by = sqlite3_column_int64(st, 8);
	x->expires_at = sqlite3_column_int64(st, 9);
	x->used_at = sqlite3_column_int64(st, 10);
	x->finished_at = sqlite3_column_int64(st, 11);
	return STORE_OK;
}

static int sq_stream_get(void *impl, const char *id, struct store_stream_session *out)
{
	struct sq_conn *c = sq_connect(impl, SQ_READ);
	int rc;

	if (c == NULL || sq_bind(c, Q_STREAM_GET, "t", id) != STORE_OK)
		return STORE_ERROR;
	if ((rc = sq_next(c, Q_STREAM_GET)) == STORE_OK)
		rc = sq_row_stream(c, c->stmt[Q_STREAM_GET], out);
	sq_release(c, Q_STREAM_GET);
	return rc;
}

static int sq_stream_claim(void *impl, const char *id, long long now, const char *topics)
{
	struct sq_conn *c = sq_connect(impl, SQ_WRITE);
	struct store_stream_session x;
	int rc;

	if (c == NULL || sq_bind(c, Q_STREAM_CLAIM, "tit", id, now, topics) != STORE_OK)
		return STORE_ERROR;
	if ((rc = sq_exec(c, Q_STREAM_CLAIM)) != STORE_OK || sqlite3_changes(c->db) == 1)
		return rc;
	/* nothing changed: absent, or someone claimed it first */
	rc = sq_stream_get(impl, id, &x);
	return rc == STORE_OK ? STORE_CONFLICT : rc;
}

static int sq_stream_finish_topic(void *impl, const char *tenant_id, const char *topic,
				  long long now)
{
	struct sq_conn *c = sq_connect(impl, SQ_WRITE);

	if (c == NULL || sq_bind(c, Q_STREAM_FINISH_TOPIC, "tti", tenant_id, topic, now) != STORE_OK)
		return STORE_ERROR;
	return sq_exec(c, Q_STREAM_FINISH_TOPIC);
}

static int sq_stream_purge(void *impl, long long now)
{
	struct sq_conn *c = sq_connect(impl, SQ_WRITE);

	if (c == NULL || sq_bind(c, Q_STREAM_PURGE, "i", now) != STORE_OK)
		return STORE_ERROR;
	return sq_exec(c, Q_STREAM_PURGE);
}

/* ------------------------------------------------------ devices */

/* Writes ev to the outbox; its seq is the new row's. */
static int sq_outbox_insert(struct sq_conn *c, struct store_event *ev)
{
	int rc;

	if (sq_bind(c, Q_OUTBOX_INSERT, "tttti", ev->tenant_id, ev->type, ev->topic, ev->data,
		    ev->created_at) != STORE_OK)
		return STORE_ERROR;
	if ((rc = sq_exec(c, Q_OUTBOX_INSERT)) == STORE_OK)
		ev->seq = sqlite3_last_insert_rowid(c->db);
	return rc;
}

/* The change's audit record and event, then the end of its transaction. */
static int sq_change_end(struct sq_conn *c, int rc, const struct store_audit *a,
			 struct store_event *ev)
{
	if (rc == STORE_OK)
		rc = sq_audit_insert(c, a);
	if (rc == STORE_OK)
		rc = sq_outbox_insert(c, ev);
	return sq_tx_end(c, rc);
}

static int sq_device_create(void *impl, const struct store_device *d, const struct store_audit *a,
			    struct store_event *ev)
{
	struct sq_conn *c = sq_connect(impl, SQ_WRITE);
	int rc;

	if (c == NULL || sq_tx_begin(c) != STORE_OK)
		return STORE_ERROR;
	rc = sq_bind(c, Q_DEVICE_INSERT, "tttttiiii", d->id, d->tenant_id, d->name, d->status,
		     d->metadata, d->created_at, d->updated_at, d->last_seen_at, d->version);
	if (rc == STORE_OK)
		rc = sq_exec(c, Q_DEVICE_INSERT);
	return sq_change_end(c, rc, a, ev);
}

static int sq_device_get(void *impl, const char *tenant_id, const char *id,
			 struct store_device *out)
{
	struct sq_conn *c = sq_connect(impl, SQ_READ);
	int rc;

	if (c == NULL || sq_bind(c, Q_DEVICE_GET, "tt", tenant_id, id) != STORE_OK)
		return STORE_ERROR;
	if ((rc = sq_next(c, Q_DEVICE_GET)) == STORE_OK)
		rc = sq_row_device(c, c->stmt[Q_DEVICE_GET], out);
	sq_release(c, Q_DEVICE_GET);
	return rc;
}

/* STORE_OK when the tenant has the device, else NOT_FOUND (or ERROR). */
static int sq_device_exists(struct sq_conn *c, const char *tenant_id, const char *id)
{
	int rc;

	if (sq_bind(c, Q_DEVICE_EXISTS, "tt", tenant_id, id) != STORE_OK)
		return STORE_ERROR;
	rc = sq_next(c, Q_DEVICE_EXISTS);
	sq_release(c, Q_DEVICE_EXISTS);
	return rc;
}

static int sq_device_update(void *impl, const struct store_device *d, const struct store_audit *a,
			    struct store_event *ev)
{
	struct sq_conn *c = sq_connect(impl, SQ_WRITE);
	int rc;

	if (c == NULL || sq_tx_begin(c) != STORE_OK)
		return STORE_ERROR;
	rc = sq_bind(c, Q_DEVICE_UPDATE, "tttttii", d->tenant_id, d->id, d->name, d->status,
		     d->metadata, d->updated_at, d->version);
	if (rc == STORE_OK)
		rc = sq_exec(c, Q_DEVICE_UPDATE);
	if (rc == STORE_OK && sqlite3_changes(c->db) == 0) {
		/* absent, or changed since it was read */
		rc = sq_device_exists(c, d->tenant_id, d->id);
		if (rc == STORE_OK)
			rc = STORE_CONFLICT;
	}
	return sq_change_end(c, rc, a, ev);
}

static int sq_device_delete(void *impl, const char *tenant_id, const char *id,
			    const struct store_audit *a, struct store_event *ev)
{
	struct sq_conn *c = sq_connect(impl, SQ_WRITE);
	int rc;

	if (c == NULL || sq_tx_begin(c) != STORE_OK)
		return STORE_ERROR;
	rc = sq_bind(c, Q_DEVICE_DELETE, "tt", tenant_id, id);
	if (rc == STORE_OK)
		rc = sq_exec(c, Q_DEVICE_DELETE);
	if (rc == STORE_OK && sqlite3_changes(c->db) == 0)
		rc = STORE_NOT_FOUND;
	return sq_change_end(c, rc, a, ev);
}

static int sq_device_list(void *impl, const char *tenant_id, const char *status, const char *after,
			  long long offset, int limit, store_device_fn *fn, void *ctx)
{
	struct sq_conn *c = sq_connect(impl, SQ_READ);
	struct store_device d;
	int rc;

	if (c == NULL || sq_bind(c, Q_DEVICE_LIST, "tttii", tenant_id, status, after,
				 (long long)limit, offset) != STORE_OK)
		return STORE_ERROR;
	while ((rc = sq_next(c, Q_DEVICE_LIST)) == STORE_OK)
		if ((rc = sq_row_device(c, c->stmt[Q_DEVICE_LIST], &d)) != STORE_OK || fn(ctx, &d) != 0)
			break;
	sq_release(c, Q_DEVICE_LIST);
	return rc == STORE_NOT_FOUND ? STORE_OK : rc;
}

static int sq_device_count(void *impl, const char *tenant_id, const char *status, long long *out)
{
	struct sq_conn *c = sq_connect(impl, SQ_READ);
	int rc;

	if (c == NULL || sq_bind(c, Q_DEVICE_COUNT, "tt", tenant_id, status) != STORE_OK)
		return STORE_ERROR;
	if ((rc = sq_next(c, Q_DEVICE_COUNT)) == STORE_OK)
		*out = sqlite3_column_int64(c->stmt[Q_DEVICE_COUNT], 0);
	sq_release(c, Q_DEVICE_COUNT);
	return rc == STORE_NOT_FOUND ? STORE_ERROR : rc; /* count(*) always has a row */
}

/* ------------------------------------------------------ telemetry */

static int sq_telemetry_append(void *impl, const char *tenant_id, const char *device_id,
			       const struct store_telemetry *pts, struct store_event *evs, size_t n)
{
	struct sq_conn *c = sq_connect(impl, SQ_WRITE);
	long long newest = 0;
	int rc;

	if (c == NULL || sq_tx_begin(c) != STORE_OK)
		return STORE_ERROR;
	rc = sq_device_exists(c, tenant_id, device_id);
	for (size_t i = 0; rc == STORE_OK && i < n; i++) {
		rc = sq_bind(c, Q_TELEMETRY_INSERT, "tttit", pts[i].id, tenant_id, device_id,
			     pts[i].ts, pts[i].metrics);
		if (rc == STORE_OK)
			rc = sq_exec(c, Q_TELEMETRY_INSERT);
		if (rc == STORE_OK)
			rc = sq_outbox_insert(c, &evs[i]);
		if (pts[i].ts > newest)
			newest = pts[i].ts;
	}
	if (rc == STORE_OK)
		rc = sq_bind(c, Q_DEVICE_SEEN, "tti", tenant_id, device_id, newest);
	if (rc == STORE_OK)
		rc = sq_exec(c, Q_DEVICE_SEEN);
	return sq_tx_end(c, rc);
}

static int sq_row_telemetry(struct sq_conn *c, sqlite3_stmt *st, struct store_telemetry *t)
{
	if (sq_text(c, st, 0, t->id, sizeof(t->id)) != STORE_OK ||
	    sq_text(c, st, 1, t->device_id, sizeof(t->device_id)) != STORE_OK)
		return STORE_ERROR;
	t->ts = sqlite3_column_int64(st, 2);
	t->metrics = (const char *)sqlite3_column_text(st, 3);
	if (t->metrics == NULL) {
		sq_seterr(c, "sqlite: out of memory reading telemetry");
		return STORE_ERROR;
	}
	return STORE_OK;
}

static int sq_telemetry_recent(void *impl, const char *tenant_id, const char *device_id,
			       int limit, store_telemetry_fn *fn, void *ctx)
{
	struct sq_conn *c = sq_connect(impl, SQ_READ);
	struct store_telemetry t;
	int rc;

	if (c == NULL || sq_bind(c, Q_TELEMETRY_RECENT, "tti", tenant_id, device_id,
				 (long long)limit) != STORE_OK)
		return STORE_ERROR;
	while ((rc = sq_next(c, Q_TELEMETRY_RECENT)) == STORE_OK)
		if ((rc = sq_row_telemetry(c, c->stmt[Q_TELEMETRY_RECENT], &t)) != STORE_OK ||
		    fn(ctx, &t) != 0)
			break;
	sq_release(c, Q_TELEMETRY_RECENT);
	return rc == STORE_NOT_FOUND ? STORE_OK : rc;
}

/* Runs a bound DELETE in a transaction of its own; adds what it deleted. */
static int sq_delete_batch(struct sq_conn *c, enum sq_query q, long long *deleted, int *full)
{
	int rc = sq_exec(c, q);

	if (rc == STORE_OK) {
		*deleted += sqlite3_changes(c->db);
		*full = sqlite3_changes(c->db) >= TELEMETRY_BATCH;
	}
	return rc;
}

/* Crowded devices: (tenant, device) pairs, collected before trimming. */
static int sq_crowded(struct sq_conn *c, long long keep, struct sq_ids *ids)
{
	int rc;

	if (sq_bind(c, Q_TELEMETRY_CROWDED, "i", keep) != STORE_OK)
		return STORE_ERROR;
	while ((rc = sq_next(c, Q_TELEMETRY_CROWDED)) == STORE_OK) {
		if ((rc = sq_ids_push(c, ids, c->stmt[Q_TELEMETRY_CROWDED])) != STORE_OK)
			break;
		/* the device id follows its tenant in the list */
		if ((rc = sq_ids_push_col(c, ids, c->stmt[Q_TELEMETRY_CROWDED], 1)) != STORE_OK)
			break;
	}
	sq_release(c, Q_TELEMETRY_CROWDED);
	return rc == STORE_NOT_FOUND ? STORE_OK : rc;
}

/* Trims one device to its newest keep points (and those sharing the
 * oldest kept one's time), in batches. */
static int sq_trim_device(struct sq_conn *c, const char *tenant_id, const char *device_id,
			  long long keep, long long *deleted)
{
	long long cut;
	int rc, full = 1;

	if (sq_bind(c, Q_TELEMETRY_NTH, "tti", tenant_id, device_id, keep - 1) != STORE_OK)
		return STORE_ERROR;
	rc = sq_next(c, Q_TELEMETRY_NTH);
	cut = rc == STORE_OK ? sqlite3_column_int64(c->stmt[Q_TELEMETRY_NTH], 0) : 0;
	sq_release(c, Q_TELEMETRY_NTH);
	if (rc != STORE_OK)
		return rc == STORE_NOT_FOUND ? STORE_OK : rc;
	while (rc == STORE_OK && full) {
		rc = sq_bind(c, Q_TELEMETRY_TRIM, "ttii", tenant_id, device_id, cut,
			     (long long)TELEMETRY_BATCH);
		if (rc == STORE_OK)
			rc = sq_delete_batch(c, Q_TELEMETRY_TRIM, deleted, &full);
	}
	return rc;
}

static int sq_telemetry_purge(void *impl, long long before_ms, long long keep, long long *deleted)
{
	struct sq_conn *c = sq_connect(impl, SQ_WRITE);
	struct sq_ids ids = { NULL, 0, 0 };
	int rc = STORE_OK, full = 1;

	if (c == NULL)
		return STORE_ERROR;
	/* autocommit: each batch is its own short transaction, so requests
	 * wait for one batch at most */
	while (rc == STORE_OK && full && before_ms > 0) {
		rc = sq_bind(c, Q_TELEMETRY_PURGE_AGE, "ii", before_ms, (long long)TELEMETRY_BATCH);
		if (rc == STORE_OK)
			rc = sq_delete_batch(c, Q_TELEMETRY_PURGE_AGE, deleted, &full);
	}
	if (rc == STORE_OK && keep > 0)
		rc = sq_crowded(c, keep, &ids);
	for (size_t i = 0; rc == STORE_OK && i + 1 < ids.n; i += 2)
		rc = sq_trim_device(c, ids.v[i], ids.v[i + 1], keep, deleted);
	free(ids.v);
	return rc;
}

/* ------------------------------------------------------ outbox */

/* The batch is read whole and the statement released before fn runs: fn
 * deletes what it published (outbox_delete, on this thread's write
 * connection), and a write made while this read is still open can fail at
 * once with "database is locked" when another connection has committed
 * since the read began (busy_timeout does not apply to that). */
static int sq_outbox_list(void *impl, long long created_before, int limit, store_event_fn *fn,
			  void *ctx)
{
	struct sq_conn *c = sq_connect(impl, SQ_READ);
	sqlite3_stmt *st;
	struct store_event *evs;
	int rc = STORE_OK, n = 0;

	if (c == NULL)
		return STORE_ERROR;
	if ((evs = calloc(limit > 0 ? (size_t)limit : 1, sizeof(*evs))) == NULL) {
		sq_seterr(c, "sqlite: out of memory reading the outbox");
		return STORE_ERROR;
	}
	if (sq_bind(c, Q_OUTBOX_LIST, "ii", created_before, (long long)limit) != STORE_OK) {
		free(evs);
		return STORE_ERROR;
	}
	st = c->stmt[Q_OUTBOX_LIST];
	while (n < limit && (rc = sq_next(c, Q_OUTBOX_LIST)) == STORE_OK) {
		struct store_event *ev = &evs[n];
		const char *data;

		ev->seq = sqlite3_column_int64(st, 0);
		if ((rc = sq_text(c, st, 1, ev->tenant_id, sizeof(ev->tenant_id))) != STORE_OK ||
		    (rc = sq_text(c, st, 2, ev->type, sizeof(ev->type))) != STORE_OK ||
		    (rc = sq_text(c, st, 3, ev->topic, sizeof(ev->topic))) != STORE_OK)
			break;
		data = (const char *)sqlite3_column_text(st, 4);
		ev->created_at = sqlite3_column_int64(st, 5);
		if (data == NULL || (ev->data = strdup(data)) == NULL) {
			sq_seterr(c, "sqlite: out of memory reading the outbox");
			rc = STORE_ERROR;
			break;
		}
		n++;
	}
	if (n == limit)
		rc = STORE_NOT_FOUND; /* (the LIMIT's end: the statement is done) */
	sq_release(c, Q_OUTBOX_LIST);
	if (rc == STORE_NOT_FOUND) {
		rc = STORE_OK;
		for (int i = 0; i < n; i++)
			if (fn(ctx, &evs[i]) != 0)
				break;
	}
	for (int i = 0; i < n; i++)
		free((char *)evs[i].data);
	free(evs);
	return rc;
}

static int sq_outbox_delete(void *impl, long long first, long long last)
{
	struct sq_conn *c = sq_connect(impl, SQ_WRITE);

	if (c == NULL || sq_bind(c, Q_OUTBOX_DELETE, "ii", first, last) != STORE_OK)
		return STORE_ERROR;
	return sq_exec(c, Q_OUTBOX_DELETE);
}

const struct store_ops store_sqlite_ops = {
	.name = "sqlite",
	.close = sq_close,
	.schema_version = sq_schema_version,
	.errstr = sq_errstr,
	.set_error = sq_set_error,
	.begin = sq_begin,
	.transient = sq_transient,
	.writable = sq_writable,
	.tenant_create = sq_tenant_create,
	.tenant_by_name = sq_tenant_by_name,
	.tenant_by_id = sq_tenant_by_id,
	.user_create = sq_user_create,
	.user_by_name = sq_user_by_name,
	.user_by_id = sq_user_by_id,
	.user_list = sq_user_list,
	.user_set_role = sq_user_set_role,
	.user_delete = sq_user_delete,
	.session_create = sq_session_create,
	.session_get = sq_session_get,
	.session_revoke = sq_session_revoke,
	.session_revoke_user = sq_session_revoke_user,
	.session_purge = sq_session_purge,
	.stream_session_create = sq_stream_create,
	.stream_session_get = sq_stream_get,
	.stream_session_claim = sq_stream_claim,
	.stream_session_finish_topic = sq_stream_finish_topic,
	.stream_session_purge = sq_stream_purge,
	.audit_append = sq_audit_append,
	.audit_list = sq_audit_list,
	.device_create = sq_device_create,
	.device_get = sq_device_get,
	.device_update = sq_device_update,
	.device_delete = sq_device_delete,
	.device_list = sq_device_list,
	.device_count = sq_device_count,
	.telemetry_append = sq_telemetry_append,
	.telemetry_recent = sq_telemetry_recent,
	.telemetry_purge = sq_telemetry_purge,
	.outbox_list = sq_outbox_list,
	.outbox_delete = sq_outbox_delete,
};

static struct sq_store *sq_store_new(const char *path, int busy_timeout_ms)
{
	struct sq_store *s = calloc(1, sizeof(*s));

	if (s == NULL)
		return NULL;
	if ((s->path = strdup(path)) == NULL)
		goto err_path;
	if (perthread_init(&s->conns, sizeof(struct sq_conn), sq_conn_free) != 0)
		goto err_conns;
	s->busy_timeout_ms = busy_timeout_ms;
	return s;
err_conns:
	free(s->path);
err_path:
	free(s);
	return NULL;
}

void *store_sqlite_open(const char *path, int busy_timeout_ms, struct buf *err)
{
	struct sq_store *s;
	struct sq_conn *c;

	if (!sqlite3_threadsafe()) {
		buf_puts(err, "sqlite: the library was built without thread support");
		return NULL;
	}
	if ((s = sq_store_new(path, busy_timeout_ms)) == NULL) {
		buf_puts(err, "sqlite: out of memory");
		return NULL;
	}
	/* the opening thread keeps this connection as its own */
	if ((c = sq_local(s)) == NULL) {
		buf_puts(err, "sqlite: out of memory");
		goto err;
	}
	if (sq_conn_open(c) != STORE_OK || sq_migrate(c) != STORE_OK) {
		buf_puts(err, c->errstr);
		goto err;
	}
	return s;
err:
	sq_close(s);
	return NULL;
}
