/* store/postgres: the PostgreSQL backend of store.h, on libpq.
 *
 * The same behaviour as store/sqlite.c through the same ops: one connection
 * per thread, made on the thread's first call and kept in a thread-specific
 * slot (its destructor closes it when the thread exits; store_close closes
 * whatever is left, every connection being on a mutex-protected list). A
 * connection prepares each query once, on first use (PQprepare), and runs
 * it with PQexecPrepared: SQL never contains caller data. Results come back
 * whole, so a callback may make other store calls on the same connection.
 *
 * A connection found broken (the server restarted, the backend was
 * terminated) is made again on the next call; the call that met the break
 * fails transiently, so store.c retries it if it is a read. The schema is
 * a list of migrations, applied at open in one transaction under an
 * advisory lock (several processes or hosts may open at once) and tracked
 * in the schema_version table. */
#include <libpq-fe.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../core/clock.h"
#include "backend.h"
#include "perthread.h"

/* Identifiers and names compare byte by byte, as in SQLite (BINARY), not
 * by the database's locale: list orders and keyset cursors are the same on
 * both backends. */
#define TXT "TEXT COLLATE \"C\""

/* pg_migrations[i] takes the schema from version i to i + 1, as
 * sqlite.c's of the same number do (a schema version means the same on
 * both). Append only: a released migration is never edited. */
static const char *const pg_migrations[] = {
	/* 1: tenants, users, auth sessions, devices, telemetry, audit */
	"CREATE TABLE tenants (\n"
	"  id " TXT " PRIMARY KEY,\n"
	"  name " TXT " NOT NULL UNIQUE CHECK (length(name) BETWEEN 1 AND 64),\n"
	"  created_at BIGINT NOT NULL\n"
	");\n"
	"CREATE TABLE users (\n"
	"  id " TXT " PRIMARY KEY,\n"
	"  tenant_id " TXT " NOT NULL REFERENCES tenants(id),\n"
	"  username " TXT " NOT NULL CHECK (length(username) BETWEEN 1 AND 64),\n"
	"  role " TXT " NOT NULL CHECK (role IN ('viewer', 'operator', 'admin')),\n"
	"  password_hash TEXT NOT NULL CHECK (length(password_hash) BETWEEN 1 AND 160),\n"
	"  created_at BIGINT NOT NULL,\n"
	"  UNIQUE (tenant_id, username),\n"
	"  UNIQUE (tenant_id, id)\n"
	");\n"
	/* (tenant_id, user_id) must name a user of that tenant */
	"CREATE TABLE sessions (\n"
	"  id " TXT " PRIMARY KEY,\n"
	"  tenant_id " TXT " NOT NULL,\n"
	"  user_id " TXT " NOT NULL,\n"
	"  role " TXT " NOT NULL CHECK (role IN ('viewer', 'operator', 'admin')),\n"
	"  created_at BIGINT NOT NULL,\n"
	"  expires_at BIGINT NOT NULL,\n"
	"  revoked_at BIGINT NOT NULL DEFAULT 0,\n"
	"  FOREIGN KEY (tenant_id, user_id) REFERENCES users(tenant_id, id)\n"
	"    ON DELETE CASCADE\n"
	");\n"
	"CREATE INDEX sessions_user ON sessions(user_id);\n"
	"CREATE INDEX sessions_expires ON sessions(expires_at);\n"
	"CREATE INDEX sessions_revoked ON sessions(revoked_at) WHERE revoked_at > 0;\n"
	/* version counts updates, for If-Match / ETag */
	"CREATE TABLE devices (\n"
	"  id " TXT " PRIMARY KEY,\n"
	"  tenant_id " TXT " NOT NULL REFERENCES tenants(id),\n"
	"  name TEXT NOT NULL CHECK (length(name) BETWEEN 1 AND 128),\n"
	"  status " TXT " NOT NULL DEFAULT 'offline'\n"
	"    CHECK (status IN ('online', 'offline', 'maintenance')),\n"
	"  created_at BIGINT NOT NULL,\n"
	"  updated_at BIGINT NOT NULL,\n"
	"  version BIGINT NOT NULL DEFAULT 1 CHECK (version >= 1),\n"
	"  UNIQUE (tenant_id, id)\n"
	");\n"
	"CREATE INDEX devices_status ON devices(tenant_id, status, id);\n"
	/* seq is SQLite's rowid: the order points were written in, which
	 * breaks ties between points of the same time */
	"CREATE TABLE telemetry (\n"
	"  id " TXT " PRIMARY KEY,\n"
	"  tenant_id " TXT " NOT NULL,\n"
	"  device_id " TXT " NOT NULL,\n"
	"  ts BIGINT NOT NULL,\n"
	"  metrics_json TEXT NOT NULL CHECK ((metrics_json::json) IS NOT NULL),\n"
	"  seq BIGINT GENERATED ALWAYS AS IDENTITY,\n"
	"  FOREIGN KEY (tenant_id, device_id) REFERENCES devices(tenant_id, id)\n"
	"    ON DELETE CASCADE\n"
	");\n"
	"CREATE INDEX telemetry_device_ts ON telemetry(tenant_id, device_id, ts);\n"
	/* append-only; id orders records (the list cursor) */
	"CREATE TABLE audit (\n"
	"  id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,\n"
	"  tenant_id " TXT " NOT NULL REFERENCES tenants(id),\n"
	"  actor_id " TXT " NOT NULL DEFAULT '',\n"
	"  action TEXT NOT NULL CHECK (length(action) BETWEEN 1 AND 63),\n"
	"  target TEXT NOT NULL DEFAULT '',\n"
	"  detail TEXT NOT NULL DEFAULT '',\n"
	"  at BIGINT NOT NULL\n"
	");\n"
	"CREATE INDEX audit_tenant ON audit(tenant_id, id);\n",
	/* 2: one-time stream sessions for EventSource (API.md §6) */
	"CREATE TABLE stream_sessions (\n"
	"  id " TXT " PRIMARY KEY,\n"
	"  tenant_id " TXT " NOT NULL,\n"
	"  user_id " TXT " NOT NULL,\n"
	"  session_id " TXT " NOT NULL,\n"
	"  role " TXT " NOT NULL,\n"
	"  fgp TEXT NOT NULL DEFAULT '',\n"
	"  topics TEXT NOT NULL DEFAULT '',\n"
	"  created_at BIGINT NOT NULL,\n"
	"  connect_by BIGINT NOT NULL,\n"
	"  expires_at BIGINT NOT NULL,\n"
	"  used_at BIGINT NOT NULL DEFAULT 0,\n"
	"  finished_at BIGINT NOT NULL DEFAULT 0\n"
	");\n"
	"CREATE INDEX stream_sessions_expires ON stream_sessions(expires_at);\n"
	"CREATE INDEX stream_sessions_open ON stream_sessions(tenant_id) WHERE finished_at = 0;\n",
	/* 3: device metadata and last-seen time, audit request ids, the
	 * outbox of events committed with their change, telemetry by age */
	"ALTER TABLE devices ADD COLUMN metadata_json TEXT NOT NULL DEFAULT '{}'\n"
	"  CHECK ((metadata_json::json) IS NOT NULL);\n"
	"ALTER TABLE devices ADD COLUMN last_seen_at BIGINT NOT NULL DEFAULT 0;\n"
	"ALTER TABLE audit ADD COLUMN request_id TEXT NOT NULL DEFAULT '';\n"
	"CREATE TABLE outbox (\n"
	"  seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,\n"
	"  tenant_id " TXT " NOT NULL,\n"
	"  type TEXT NOT NULL,\n"
	"  topic TEXT NOT NULL DEFAULT '',\n"
	"  data TEXT NOT NULL,\n"
	"  created_at BIGINT NOT NULL\n"
	");\n"
	"CREATE INDEX telemetry_ts ON telemetry(ts);\n",
};

#define PG_SCHEMA_VERSION ((int)(sizeof(pg_migrations) / sizeof(pg_migrations[0])))

/* Advisory lock keys (per database): migrating, and writing the outbox
 * ("fcgisse" and the next number). */
#define PG_LOCK_MIGRATE "28819743426442085"
#define PG_LOCK_OUTBOX 28819743426442086LL

/* Defaults added to the connection string when it does not set them. */
#define PG_CONNECT_TIMEOUT_S "5"

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
#define SESSION_PURGEABLE "expires_at < $1 OR (revoked_at > 0 AND revoked_at < $2)"
#define SESSION_LIVE_OF_USER \
	"tenant_id = $1 AND user_id = $2 AND revoked_at = 0 AND expires_at > $3"

enum pg_query {
	Q_BEGIN,
	Q_COMMIT,
	Q_ROLLBACK,
	Q_SET_TIMEOUT,
	Q_WRITABLE,
	Q_OUTBOX_LOCK,
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
	Q_SESSION_REVOKE_USER,
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

#define PG_PARAMS_MAX 12

/* Every statement the backend runs: a name for error messages, the SQL,
 * and its parameters' types in order ('t' text, 'i' bigint). */
static const struct {
	const char *name;
	const char *sql;
	const char *types;
} pg_queries[Q_COUNT] = {
	[Q_BEGIN] = { "begin", "BEGIN", "" },
	[Q_COMMIT] = { "commit", "COMMIT", "" },
	[Q_ROLLBACK] = { "rollback", "ROLLBACK", "" },
	/* the session's limit, set outside any transaction (so it stays) */
	[Q_SET_TIMEOUT] = { "statement timeout",
			    "SELECT set_config('statement_timeout', $1, false)", "t" },
	/* a standby, or a database or role made read-only, refuses writes */
	[Q_WRITABLE] = { "writable",
			 "SELECT NOT pg_is_in_recovery()"
			 " AND current_setting('transaction_read_only') = 'off'", "" },
	/* held from a change's first outbox row to its commit: outbox seqs
	 * are then handed out in commit order and each change's are
	 * consecutive, as with SQLite's one writer, so deleting a range of
	 * published seqs never takes an event not yet seen */
	[Q_OUTBOX_LOCK] = { "outbox lock", "SELECT pg_advisory_xact_lock($1)", "i" },
	[Q_TENANT_INSERT] = { "tenant insert",
			      "INSERT INTO tenants (" TENANT_COLS ") VALUES ($1, $2, $3)", "tti" },
	[Q_TENANT_BY_NAME] = { "tenant by name",
			       "SELECT " TENANT_COLS " FROM tenants WHERE name = $1", "t" },
	[Q_TENANT_BY_ID] = { "tenant by id", "SELECT " TENANT_COLS " FROM tenants WHERE id = $1",
			     "t" },
	[Q_USER_INSERT] = { "user insert", "INSERT INTO users (" USER_COLS ")"
					   " VALUES ($1, $2, $3, $4, $5, $6)", "ttttti" },
	[Q_USER_BY_NAME] = { "user by name", "SELECT " USER_COLS " FROM users"
					     " WHERE tenant_id = $1 AND username = $2", "tt" },
	[Q_USER_BY_ID] = { "user by id", "SELECT " USER_COLS " FROM users"
					 " WHERE tenant_id = $1 AND id = $2", "tt" },
	[Q_USER_LIST] = { "user list", "SELECT " USER_COLS " FROM users"
				       " WHERE tenant_id = $1 ORDER BY username", "t" },
	[Q_USER_SET_ROLE] = { "user set role",
			      "UPDATE users SET role = $3 WHERE tenant_id = $1 AND id = $2", "ttt" },
	[Q_USER_DELETE] = { "user delete", "DELETE FROM users WHERE tenant_id = $1 AND id = $2",
			    "tt" },
	[Q_SESSION_INSERT] = { "session insert", "INSERT INTO sessions (" SESSION_COLS ")"
						 " VALUES ($1, $2, $3, $4, $5, $6, $7)", "ttttiii" },
	[Q_SESSION_GET] = { "session get", "SELECT " SESSION_COLS " FROM sessions WHERE id = $1",
			    "t" },
	/* matches the row even when already revoked, so the count tells
	 * "absent" from "already revoked"; the first time is kept */
	[Q_SESSION_REVOKE] = { "session revoke",
			       "UPDATE sessions SET revoked_at ="
			       " CASE revoked_at WHEN 0 THEN $2 ELSE revoked_at END WHERE id = $1",
			       "ti" },
	/* one statement reports exactly the rows it changed, whatever
	 * commits meanwhile (SQLite's transaction selects them first) */
	[Q_SESSION_REVOKE_USER] = { "session revoke user",
				    "UPDATE sessions SET revoked_at = $3 WHERE " SESSION_LIVE_OF_USER
				    " RETURNING id", "tti" },
	[Q_SESSION_PURGE] = { "session purge",
			      "DELETE FROM sessions WHERE " SESSION_PURGEABLE " RETURNING id", "ii" },
	[Q_AUDIT_INSERT] = { "audit insert", "INSERT INTO audit (" AUDIT_COLS ")"
					     " VALUES ($1, $2, $3, $4, $5, $6, $7)", "tttttit" },
	/* $2 = 0: from the newest */
	[Q_AUDIT_LIST] = { "audit list", "SELECT " AUDIT_COLS ", id FROM audit"
					 " WHERE tenant_id = $1 AND ($2 = 0 OR id < $2)"
					 " ORDER BY id DESC LIMIT $3", "tii" },
	[Q_STREAM_INSERT] = { "stream session insert", "INSERT INTO stream_sessions (" STREAM_COLS ")"
			      " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
			      "tttttttiiiii" },
	[Q_STREAM_GET] = { "stream session get",
			   "SELECT " STREAM_COLS " FROM stream_sessions WHERE id = $1", "t" },
	/* matches only an unused row: the count says whether this call won
	 * (a concurrent claim waits for the first and then matches none) */
	[Q_STREAM_CLAIM] = { "stream session claim",
			     "UPDATE stream_sessions SET used_at = $2, topics = $3"
			     " WHERE id = $1 AND used_at = 0", "tit" },
	/* strpos on ",a,b," finds whole list members; topics hold no commas */
	[Q_STREAM_FINISH_TOPIC] = { "stream session finish topic",
				    "UPDATE stream_sessions SET finished_at = $3"
				    " WHERE tenant_id = $1 AND finished_at = 0 AND topics != ''"
				    " AND strpos(',' || topics || ',', ',' || $2 || ',') > 0",
				    "tti" },
	[Q_STREAM_PURGE] = { "stream session purge",
			     "DELETE FROM stream_sessions WHERE expires_at < $1", "i" },
	[Q_DEVICE_INSERT] = { "device insert", "INSERT INTO devices (" DEVICE_COLS ")"
			      " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)", "tttttiiii" },
	[Q_DEVICE_GET] = { "device get", "SELECT " DEVICE_COLS " FROM devices"
					 " WHERE tenant_id = $1 AND id = $2", "tt" },
	/* only over the version read: the count says whether this call won */
	[Q_DEVICE_UPDATE] = { "device update",
			      "UPDATE devices SET name = $3, status = $4, metadata_json = $5,"
			      " updated_at = $6, version = version + 1"
			      " WHERE tenant_id = $1 AND id = $2 AND version = $7", "tttttii" },
	[Q_DEVICE_EXISTS] = { "device exists",
			      "SELECT 1 FROM devices WHERE tenant_id = $1 AND id = $2", "tt" },
	[Q_DEVICE_DELETE] = { "device delete",
			      "DELETE FROM devices WHERE tenant_id = $1 AND id = $2", "tt" },
	/* keyset pages by id ($3 '' from the first); $2 '' any status */
	[Q_DEVICE_LIST] = { "device list", "SELECT " DEVICE_COLS " FROM devices"
					   " WHERE tenant_id = $1 AND ($2 = '' OR status = $2)"
					   " AND id > $3 ORDER BY id LIMIT $4 OFFSET $5", "tttii" },
	[Q_DEVICE_COUNT] = { "device count", "SELECT count(*) FROM devices"
					     " WHERE tenant_id = $1 AND ($2 = '' OR status = $2)",
			     "tt" },
	[Q_DEVICE_SEEN] = { "device seen",
			    "UPDATE devices SET last_seen_at = greatest(last_seen_at, $3)"
			    " WHERE tenant_id = $1 AND id = $2", "tti" },
	[Q_TELEMETRY_INSERT] = { "telemetry insert",
				 "INSERT INTO telemetry (id, tenant_id, device_id, ts, metrics_json)"
				 " VALUES ($1, $2, $3, $4, $5)", "tttit" },
	[Q_TELEMETRY_RECENT] = { "telemetry recent",
				 "SELECT id, device_id, ts, metrics_json FROM telemetry"
				 " WHERE tenant_id = $1 AND device_id = $2"
				 " ORDER BY ts DESC, seq DESC LIMIT $3", "tti" },
	[Q_TELEMETRY_PURGE_AGE] = { "telemetry purge by age",
				    "DELETE FROM telemetry WHERE id IN"
				    " (SELECT id FROM telemetry WHERE ts < $1 LIMIT $2)", "ii" },
	[Q_TELEMETRY_CROWDED] = { "telemetry crowded devices",
				  "SELECT tenant_id, device_id FROM telemetry"
				  " GROUP BY tenant_id, device_id HAVING count(*) > $1", "i" },
	[Q_TELEMETRY_NTH] = { "telemetry nth newest",
			      "SELECT ts FROM telemetry WHERE tenant_id = $1 AND device_id = $2"
			      " ORDER BY ts DESC LIMIT 1 OFFSET $3", "tti" },
	[Q_TELEMETRY_TRIM] = { "telemetry trim",
			       "DELETE FROM telemetry WHERE id IN (SELECT id FROM telemetry"
			       " WHERE tenant_id = $1 AND device_id = $2 AND ts < $3 LIMIT $4)",
			       "ttii" },
	[Q_OUTBOX_INSERT] = { "outbox insert",
			      "INSERT INTO outbox (tenant_id, type, topic, data, created_at)"
			      " VALUES ($1, $2, $3, $4, $5) RETURNING seq", "tttti" },
	[Q_OUTBOX_LIST] = { "outbox list", "SELECT " OUTBOX_COLS " FROM outbox"
					   " WHERE created_at <= $1 ORDER BY seq LIMIT $2", "ii" },
	[Q_OUTBOX_DELETE] = { "outbox delete", "DELETE FROM outbox WHERE seq BETWEEN $1 AND $2",
			      "ii" },
};

struct pg_conn;

struct pg_store {
	/* the connection string's keywords and values, with our defaults,
	 * for PQconnectdbParams (NULL-terminated) */
	char **keys, **vals;
	int version;           /* schema version after migrations */
	struct perthread conns; /* every thread's struct pg_conn */
};

/* One thread's connection and its last error. */
struct pg_conn {
	struct perthread_link link; /* first: perthread.h */
	struct pg_store *s;
	PGconn *db;                      /* NULL until made, and after a failed attempt */
	unsigned char prepared[Q_COUNT]; /* on this db */
	unsigned char running[Q_COUNT];  /* its rows are being handed to a callback */
	char errstr[256];
	int transient;                   /* the call's failure may pass if made again */
	long long changes;               /* rows the last statement changed */
	long long deadline_ms;           /* statements are refused after this (0: never) */
	long long timeout_ms;            /* the call's statement timeout (0: none) */
	long long timeout_set;           /* the session's statement_timeout (-1: unknown) */
	int reopen;                      /* db refused a write: make it again before the next */
	int in_tx;                       /* a transaction of ours is open */
};

/* What a call is about to do with its connection (pg_connect). */
enum pg_use { PG_READ, PG_WRITE };

static void pg_seterr(struct pg_conn *c, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void pg_seterr(struct pg_conn *c, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(c->errstr, sizeof(c->errstr), fmt, ap);
	va_end(ap);
}

/* The first line of a libpq message (they end with a newline and may go
 * on with hints), at most size - 1 bytes, into out. libpq's messages name
 * the host and port, never the password. */
static const char *pg_first_line(const char *msg, char *out, size_t size)
{
	size_t n = msg ? strcspn(msg, "\n") : 0;

	if (n >= size)
		n = size - 1;
	if (n > 0)
		memcpy(out, msg, n);
	out[n] = '\0';
	return n > 0 ? out : "no message";
}

/* SQLSTATEs after which the same call, made again a moment later, may
 * succeed: the connection went (class 08), a serialization failure or a
 * deadlock (the other side won), the server shutting down or starting. */
static int pg_state_transient(const char *state)
{
	static const char *const states[] = { "40001", "40P01", "57P01", "57P02", "57P03" };

	if (state == NULL)
		return 0;
	if (strncmp(state, "08", 2) == 0)
		return 1;
	for (size_t i = 0; i < sizeof(states) / sizeof(states[0]); i++)
		if (strcmp(state, states[i]) == 0)
			return 1;
	return 0;
}

/* Maps a failed result (res NULL: none came back) to a store code; records
 * a message when the code is STORE_ERROR. Only the server's primary
 * message is kept: its detail may quote the row, parameters included. */
static int pg_fail(struct pg_conn *c, const PGresult *res, const char *what)
{
	const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
	const char *msg = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
	const char *kind = "";
	char line[192];

	if (state != NULL && strcmp(state, "23505") == 0)
		return STORE_CONFLICT; /* unique or primary key */
	if (state != NULL && strcmp(state, "23503") == 0)
		return STORE_NOT_FOUND; /* the tenant or user the row refers to */
	c->transient = pg_state_transient(state) || c->db == NULL ||
		       PQstatus(c->db) == CONNECTION_BAD;
	if (state != NULL && strcmp(state, "57014") == 0)
		kind = "interrupted: "; /* statement_timeout, as SQLite's deadline says */
	if (state != NULL && strcmp(state, "25006") == 0) {
		/* a standby, or default_transaction_read_only: made again
		 * before the next write, the connection may find a primary */
		kind = "readonly: ";
		c->reopen = 1;
	}
	if (msg == NULL)
		msg = pg_first_line(c->db ? PQerrorMessage(c->db) : NULL, line, sizeof(line));
	pg_seterr(c, "postgres: %s: %s%s", what, kind, msg);
	return STORE_ERROR;
}

/* Notices (a CREATE ... IF NOT EXISTS that skipped) are not errors: libpq
 * would print them on stderr. */
static void pg_notice_ignore(void *arg, const char *msg)
{
	(void)arg;
	(void)msg;
}

/* Runs one of the backend's own statements (no parameters) outside the
 * prepared set: migrations. */
static int pg_exec_sql(struct pg_conn *c, const char *what, const char *sql)
{
	PGresult *res = PQexec(c->db, sql);
	int rc = STORE_OK;

	if (PQresultStatus(res) != PGRES_COMMAND_OK && PQresultStatus(res) != PGRES_TUPLES_OK) {
		/* a conflict here is a failure too, with a message */
		if (pg_fail(c, res, what) != STORE_ERROR)
			pg_seterr(c, "postgres: %s: a constraint failed", what);
		rc = STORE_ERROR;
	}
	PQclear(res);
	return rc;
}

/* Closes c's connection; its statements are prepared again on the next. */
static void pg_drop(struct pg_conn *c)
{
	PQfinish(c->db);
	c->db = NULL;
	memset(c->prepared, 0, sizeof(c->prepared));
	c->timeout_set = -1;
	c->in_tx = 0;
}

/* Makes c's connection and checks it: text in UTF-8 both ways (a database
 * in another encoding would refuse or change what SQLite stores as
 * given). Returns STORE_OK, or STORE_ERROR with c->db NULL (transient when
 * the server could not be reached). */
static int pg_conn_open(struct pg_conn *c)
{
	const struct pg_store *s = c->s;
	char line[192];
	const char *enc, *cenc;

	c->db = PQconnectdbParams((const char *const *)s->keys, (const char *const *)s->vals, 0);
	if (c->db == NULL) {
		pg_seterr(c, "postgres: connect: out of memory");
		return STORE_ERROR;
	}
	if (PQstatus(c->db) != CONNECTION_OK) {
		pg_seterr(c, "postgres: connect: %s",
			  pg_first_line(PQerrorMessage(c->db), line, sizeof(line)));
		c->transient = 1;
		goto err;
	}
	PQsetNoticeProcessor(c->db, pg_notice_ignore, NULL);
	enc = PQparameterStatus(c->db, "server_encoding");
	cenc = PQparameterStatus(c->db, "client_encoding");
	if (enc == NULL || strcmp(enc, "UTF8") != 0 || cenc == NULL || strcmp(cenc, "UTF8") != 0) {
		pg_seterr(c, "postgres: the database's encoding is %s and the connection's %s, both"
			  " must be UTF8 (create the database with ENCODING 'UTF8')",
			  enc ? enc : "unknown", cenc ? cenc : "unknown");
		goto err;
	}
	memset(c->prepared, 0, sizeof(c->prepared));
	c->timeout_set = -1;
	c->in_tx = 0;
	c->reopen = 0;
	return STORE_OK;
err:
	pg_drop(c);
	return STORE_ERROR;
}

/* Whether an idle connection is still there: a server that restarted or
 * ended this backend said so (an error, then end of file) while we were
 * not listening. Reading that now makes the call connect again instead of
 * failing on a dead socket. */
static int pg_alive(struct pg_conn *c)
{
	struct pollfd p = { PQsocket(c->db), POLLIN, 0 };

	if (PQstatus(c->db) == CONNECTION_BAD || p.fd < 0)
		return 0;
	/* at most a few rounds: an error message, then the end of file */
	for (int i = 0; i < 4 && poll(&p, 1, 0) > 0; i++)
		if (!PQconsumeInput(c->db) || PQstatus(c->db) == CONNECTION_BAD)
			return 0;
	return PQstatus(c->db) == CONNECTION_OK;
}

/* The schema version recorded in schema_version (0: no such table yet,
 * in the schemas of the search path). */
static int pg_read_version(struct pg_conn *c, int *v)
{
	PGresult *res;
	int rc = STORE_ERROR;

	res = PQexec(c->db, "SELECT CASE WHEN to_regclass('schema_version') IS NULL THEN 0"
			    " ELSE -1 END");
	if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1) {
		pg_fail(c, res, "schema version");
		PQclear(res);
		return STORE_ERROR;
	}
	*v = atoi(PQgetvalue(res, 0, 0));
	PQclear(res);
	if (*v == 0)
		return STORE_OK; /* no table yet */
	res = PQexec(c->db, "SELECT coalesce(max(version), 0) FROM schema_version");
	if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1) {
		*v = atoi(PQgetvalue(res, 0, 0));
		rc = STORE_OK;
	} else {
		pg_fail(c, res, "schema version");
	}
	PQclear(res);
	return rc;
}

static int pg_version_known(struct pg_conn *c, int v)
{
	if (v >= 0 && v <= PG_SCHEMA_VERSION)
		return 1;
	pg_seterr(c, "postgres: the database has schema version %d, but this build knows versions"
		  " 0 to %d (a newer build wrote it?); refusing to open it", v, PG_SCHEMA_VERSION);
	return 0;
}

/* Brings the schema to PG_SCHEMA_VERSION. Reads the version first
 * without writing, so a store already current opens on a read-only
 * database (a standby) as SQLite's does on a read-only file; otherwise
 * migrates in one transaction under an advisory lock, so that processes
 * and hosts opening the same database at once migrate it once (DDL is
 * transactional: all of it or none). Refuses a database from a newer
 * build. */
static int pg_migrate(struct pg_conn *c)
{
	char what[32], num[16], at[24];
	const char *params[2] = { num, at };
	PGresult *res;
	int v = 0;

	if (pg_read_version(c, &v) != STORE_OK || !pg_version_known(c, v))
		return STORE_ERROR;
	if (v == PG_SCHEMA_VERSION) {
		c->s->version = v;
		return STORE_OK;
	}
	/* the lock first: two CREATE TABLE IF NOT EXISTS at once can fail */
	if (pg_exec_sql(c, "migration begin", "BEGIN") != STORE_OK ||
	    pg_exec_sql(c, "migration lock", "SELECT pg_advisory_xact_lock(" PG_LOCK_MIGRATE ")")
		    != STORE_OK ||
	    pg_exec_sql(c, "migration table",
			"CREATE TABLE IF NOT EXISTS schema_version (\n"
			"  version INTEGER PRIMARY KEY,\n"
			"  applied_at BIGINT NOT NULL\n"
			")") != STORE_OK ||
	    pg_read_version(c, &v) != STORE_OK || !pg_version_known(c, v))
		goto err;
	snprintf(at, sizeof(at), "%lld", (long long)time(NULL));
	for (; v < PG_SCHEMA_VERSION; v++) {
		snprintf(what, sizeof(what), "migration %d", v + 1);
		snprintf(num, sizeof(num), "%d", v + 1);
		if (pg_exec_sql(c, what, pg_migrations[v]) != STORE_OK)
			goto err;
		res = PQexecParams(c->db, "INSERT INTO schema_version (version, applied_at)"
					  " VALUES ($1::integer, $2::bigint)",
				   2, NULL, params, NULL, NULL, 0);
		if (PQresultStatus(res) != PGRES_COMMAND_OK) {
			pg_fail(c, res, what);
			PQclear(res);
			goto err;
		}
		PQclear(res);
	}
	if (pg_exec_sql(c, "migration commit", "COMMIT") != STORE_OK)
		goto err;
	c->s->version = PG_SCHEMA_VERSION;
	return STORE_OK;
err:
	if (PQstatus(c->db) == CONNECTION_OK && PQtransactionStatus(c->db) != PQTRANS_IDLE)
		PQclear(PQexec(c->db, "ROLLBACK"));
	return STORE_ERROR;
}

/* perthread's free_obj: when the thread exits, or at pg_close. */
static void pg_conn_free(void *p)
{
	struct pg_conn *c = p;

	PQfinish(c->db);
	free(c);
}

/* The calling thread's state, created (without a connection) on first
 * use. NULL when memory ran out. */
static struct pg_conn *pg_local(struct pg_store *s)
{
	int made;
	struct pg_conn *c = perthread_get(&s->conns, &made);

	if (c != NULL && made) {
		c->s = s;
		c->timeout_set = -1;
	}
	return c;
}

static int pg_exec(struct pg_conn *c, enum pg_query q, PGresult **out, const char *fmt, ...);

/* The session's statement_timeout, when the call wants another than the
 * one set; outside a transaction, so that it stays for the next calls. */
static int pg_apply_timeout(struct pg_conn *c)
{
	char ms[24];

	if (c->timeout_set == c->timeout_ms || c->in_tx)
		return STORE_OK;
	snprintf(ms, sizeof(ms), "%lld", c->timeout_ms);
	/* the limit being replaced applies to this statement: one of a few
	 * ms can interrupt it, so that is tried again */
	for (int i = 0; i < 3; i++) {
		if (pg_exec(c, Q_SET_TIMEOUT, NULL, "t", ms) == STORE_OK) {
			c->timeout_set = c->timeout_ms;
			return STORE_OK;
		}
		if (strstr(c->errstr, ": interrupted: ") == NULL || PQstatus(c->db) != CONNECTION_OK)
			break;
	}
	return STORE_ERROR;
}

/* The calling thread's connection for a call that will `use` it, made
 * when there is none, when it broke, or (before a write) when it refused
 * a write: it may reach a writable server now. NULL (error recorded where
 * it can be) when it cannot be made; the next call tries again. */
static struct pg_conn *pg_connect(struct pg_store *s, enum pg_use use)
{
	struct pg_conn *c = pg_local(s);

	if (c == NULL)
		return NULL;
	if (c->db != NULL && !c->in_tx &&
	    (!pg_alive(c) || PQtransactionStatus(c->db) != PQTRANS_IDLE ||
	     (c->reopen && use == PG_WRITE)))
		pg_drop(c);
	if (c->db == NULL && pg_conn_open(c) != STORE_OK)
		return NULL;
	if (pg_apply_timeout(c) != STORE_OK)
		return NULL;
	return c;
}

/* Prepares query q on this connection on first use, then runs it with
 * fmt's arguments as $1, $2, ...: 't' a string (const char *), 'i' an
 * integer (long long); fmt must be the query's own parameter types. On
 * success *out (when not NULL) holds the result, to PQclear; c->changes
 * counts the rows changed. Refuses a query whose rows a callback further
 * up the stack is still being handed (as SQLite refuses a busy one), and
 * any statement once the call's deadline has passed. */
static int pg_exec(struct pg_conn *c, enum pg_query q, PGresult **out, const char *fmt, ...)
{
	const char *values[PG_PARAMS_MAX];
	char ints[PG_PARAMS_MAX][24], name[16];
	const char *types = pg_queries[q].types;
	int n = (int)strlen(types), rc;
	PGresult *res;
	va_list ap;

	if (out != NULL)
		*out = NULL;
	if (strcmp(fmt, types) != 0 || n > PG_PARAMS_MAX) {
		pg_seterr(c, "postgres: %s: values '%s' for parameters '%s'", pg_queries[q].name, fmt,
			  types);
		return STORE_ERROR;
	}
	if (c->running[q]) {
		pg_seterr(c, "postgres: %s: already running (store call from a callback?)",
			  pg_queries[q].name);
		return STORE_ERROR;
	}
	/* ending a transaction is never refused: it must not stay open */
	if (c->deadline_ms > 0 && q != Q_COMMIT && q != Q_ROLLBACK &&
	    clock_mono_ms() > c->deadline_ms) {
		pg_seterr(c, "postgres: %s: interrupted: the call ran past its statement timeout",
			  pg_queries[q].name);
		return STORE_ERROR;
	}
	snprintf(name, sizeof(name), "fcgi_sse_%d", (int)q);
	if (!c->prepared[q]) {
		Oid oids[PG_PARAMS_MAX];

		for (int i = 0; i < n; i++)
			oids[i] = types[i] == 't' ? 25 /* text */ : 20 /* int8 */;
		res = PQprepare(c->db, name, pg_queries[q].sql, n, oids);
		if (PQresultStatus(res) != PGRES_COMMAND_OK) {
			rc = pg_fail(c, res, pg_queries[q].name);
			PQclear(res);
			return rc;
		}
		PQclear(res);
		c->prepared[q] = 1;
	}
	va_start(ap, fmt);
	for (int i = 0; i < n; i++) {
		if (types[i] == 't') {
			values[i] = va_arg(ap, const char *);
		} else {
			snprintf(ints[i], sizeof(ints[i]), "%lld", va_arg(ap, long long));
			values[i] = ints[i];
		}
	}
	va_end(ap);
	res = PQexecPrepared(c->db, name, n, values, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_COMMAND_OK && PQresultStatus(res) != PGRES_TUPLES_OK) {
		rc = pg_fail(c, res, pg_queries[q].name);
		PQclear(res);
		return rc;
	}
	c->changes = strtoll(PQcmdTuples(res), NULL, 10);
	if (out != NULL)
		*out = res;
	else
		PQclear(res);
	return STORE_OK;
}

/* Copies text column col of row into dst (size bytes with the NUL). */
static int pg_text(struct pg_conn *c, const PGresult *res, int row, int col, char *dst, size_t size)
{
	size_t n = (size_t)PQgetlength(res, row, col);

	if (n >= size) {
		pg_seterr(c, "postgres: column %s holds %zu bytes, more than %zu", PQfname(res, col),
			  n, size - 1);
		return STORE_ERROR;
	}
	memcpy(dst, PQgetvalue(res, row, col), n);
	dst[n] = '\0';
	return STORE_OK;
}

static long long pg_int(const PGresult *res, int row, int col)
{
	return strtoll(PQgetvalue(res, row, col), NULL, 10);
}

static int pg_row_tenant(struct pg_conn *c, const PGresult *r, int i, struct store_tenant *t)
{
	if (pg_text(c, r, i, 0, t->id, sizeof(t->id)) != STORE_OK ||
	    pg_text(c, r, i, 1, t->name, sizeof(t->name)) != STORE_OK)
		return STORE_ERROR;
	t->created_at = pg_int(r, i, 2);
	return STORE_OK;
}

static int pg_row_user(struct pg_conn *c, const PGresult *r, int i, struct store_user *u)
{
	if (pg_text(c, r, i, 0, u->id, sizeof(u->id)) != STORE_OK ||
	    pg_text(c, r, i, 1, u->tenant_id, sizeof(u->tenant_id)) != STORE_OK ||
	    pg_text(c, r, i, 2, u->username, sizeof(u->username)) != STORE_OK ||
	    pg_text(c, r, i, 3, u->role, sizeof(u->role)) != STORE_OK ||
	    pg_text(c, r, i, 4, u->password_hash, sizeof(u->password_hash)) != STORE_OK)
		return STORE_ERROR;
	u->created_at = pg_int(r, i, 5);
	return STORE_OK;
}

static int pg_row_session(struct pg_conn *c, const PGresult *r, int i, struct store_session *x)
{
	if (pg_text(c, r, i, 0, x->id, sizeof(x->id)) != STORE_OK ||
	    pg_text(c, r, i, 1, x->user_id, sizeof(x->user_id)) != STORE_OK ||
	    pg_text(c, r, i, 2, x->tenant_id, sizeof(x->tenant_id)) != STORE_OK ||
	    pg_text(c, r, i, 3, x->role, sizeof(x->role)) != STORE_OK)
		return STORE_ERROR;
	x->created_at = pg_int(r, i, 4);
	x->expires_at = pg_int(r, i, 5);
	x->revoked_at = pg_int(r, i, 6);
	return STORE_OK;
}

static int pg_row_audit(struct pg_conn *c, const PGresult *r, int i, struct store_audit *a)
{
	if (pg_text(c, r, i, 0, a->tenant_id, sizeof(a->tenant_id)) != STORE_OK ||
	    pg_text(c, r, i, 1, a->actor_id, sizeof(a->actor_id)) != STORE_OK ||
	    pg_text(c, r, i, 2, a->action, sizeof(a->action)) != STORE_OK ||
	    pg_text(c, r, i, 3, a->target, sizeof(a->target)) != STORE_OK ||
	    pg_text(c, r, i, 4, a->detail, sizeof(a->detail)) != STORE_OK ||
	    pg_text(c, r, i, 6, a->request_id, sizeof(a->request_id)) != STORE_OK)
		return STORE_ERROR;
	a->at = pg_int(r, i, 5);
	a->seq = pg_int(r, i, 7);
	return STORE_OK;
}

static int pg_row_device(struct pg_conn *c, const PGresult *r, int i, struct store_device *d)
{
	if (pg_text(c, r, i, 0, d->id, sizeof(d->id)) != STORE_OK ||
	    pg_text(c, r, i, 1, d->tenant_id, sizeof(d->tenant_id)) != STORE_OK ||
	    pg_text(c, r, i, 2, d->name, sizeof(d->name)) != STORE_OK ||
	    pg_text(c, r, i, 3, d->status, sizeof(d->status)) != STORE_OK ||
	    pg_text(c, r, i, 4, d->metadata, sizeof(d->metadata)) != STORE_OK)
		return STORE_ERROR;
	d->created_at = pg_int(r, i, 5);
	d->updated_at = pg_int(r, i, 6);
	d->last_seen_at = pg_int(r, i, 7);
	d->version = pg_int(r, i, 8);
	return STORE_OK;
}

static int pg_row_stream(struct pg_conn *c, const PGresult *r, int i,
			 struct store_stream_session *x)
{
	if (pg_text(c, r, i, 0, x->id, sizeof(x->id)) != STORE_OK ||
	    pg_text(c, r, i, 1, x->tenant_id, sizeof(x->tenant_id)) != STORE_OK ||
	    pg_text(c, r, i, 2, x->user_id, sizeof(x->user_id)) != STORE_OK ||
	    pg_text(c, r, i, 3, x->session_id, sizeof(x->session_id)) != STORE_OK ||
	    pg_text(c, r, i, 4, x->role, sizeof(x->role)) != STORE_OK ||
	    pg_text(c, r, i, 5, x->fgp, sizeof(x->fgp)) != STORE_OK ||
	    pg_text(c, r, i, 6, x->topics, sizeof(x->topics)) != STORE_OK)
		return STORE_ERROR;
	x->created_at = pg_int(r, i, 7);
	x->connect_by = pg_int(r, i, 8);
	x->expires_at = pg_int(r, i, 9);
	x->used_at = pg_int(r, i, 10);
	x->finished_at = pg_int(r, i, 11);
	return STORE_OK;
}

/* A transaction: BEGIN, then pg_tx_end with the outcome. While it is open
 * the connection is not checked or made again between statements. */
static int pg_tx_begin(struct pg_conn *c)
{
	if (pg_exec(c, Q_BEGIN, NULL, "") != STORE_OK)
		return STORE_ERROR;
	c->in_tx = 1;
	return STORE_OK;
}

/* Commits when rc is STORE_OK, otherwise (or when the commit failed) rolls
 * back. Returns the outcome. A failed COMMIT has ended the transaction. */
static int pg_tx_end(struct pg_conn *c, int rc)
{
	if (rc == STORE_OK && (rc = pg_exec(c, Q_COMMIT, NULL, "")) == STORE_OK) {
		c->in_tx = 0;
		return STORE_OK;
	}
	/* the call's error stays the one recorded */
	if (PQstatus(c->db) == CONNECTION_OK && PQtransactionStatus(c->db) != PQTRANS_IDLE)
		PQclear(PQexec(c->db, "ROLLBACK"));
	c->in_tx = 0;
	return rc;
}

/* Reports the ids of a statement's first column once it committed, then
 * frees its result. */
static void pg_ids_report(PGresult *res, store_id_fn *fn, void *ctx)
{
	for (int i = 0; fn != NULL && i < PQntuples(res); i++)
		fn(ctx, PQgetvalue(res, i, 0));
	PQclear(res);
}

/* The ops. Arguments were validated by store.c. */

/* Closes the connections of live threads and of this one (those of exited
 * threads went as they exited). store.h requires that no call is
 * running, which here means worker threads are joined or idle. */
static void pg_close(void *impl)
{
	struct pg_store *s = impl;

	perthread_close(&s->conns);
	for (size_t i = 0; s->keys != NULL && s->keys[i] != NULL; i++) {
		free(s->keys[i]);
		free(s->vals[i]);
	}
	free(s->keys);
	free(s->vals);
	free(s);
}

static int pg_schema_version(void *impl)
{
	return ((struct pg_store *)impl)->version;
}

static const char *pg_errstr(void *impl)
{
	struct pg_conn *c = pg_local(impl);

	return c ? c->errstr : "postgres: out of memory (no per-thread state)";
}

static void pg_begin(void *impl, long long timeout_ms)
{
	struct pg_conn *c = pg_local(impl);

	if (c == NULL)
		return;
	c->transient = 0;
	c->timeout_ms = timeout_ms > 0 ? timeout_ms : 0;
	c->deadline_ms = timeout_ms > 0 ? clock_mono_ms() + timeout_ms : 0;
}

/* The connection went (or could not be made), the server was shutting
 * down or starting, or the statement lost a serialization or deadlock
 * race: a moment later the same call can succeed. A statement that ran
 * out of time is not retried: that would multiply the wait. */
static int pg_transient(void *impl)
{
	const struct pg_conn *c = pg_local(impl);

	return c != NULL && c->transient;
}

/* A standby in recovery and a database or role with
 * default_transaction_read_only refuse writes: 0. A connection that
 * refused before is made again first, as a write would. */
static int pg_writable(void *impl)
{
	struct pg_conn *c = pg_local(impl);
	PGresult *res;
	int w;

	if (c == NULL)
		return -1;
	c->deadline_ms = 0; /* not a call of its own: no begin() */
	if (pg_connect(impl, PG_WRITE) == NULL)
		return -1;
	if (pg_exec(c, Q_WRITABLE, &res, "") != STORE_OK)
		return -1;
	w = PQntuples(res) == 1 && strcmp(PQgetvalue(res, 0, 0), "t") == 0;
	PQclear(res);
	if (!w)
		c->reopen = 1;
	return w;
}

static void pg_set_error(void *impl, const char *msg)
{
	struct pg_conn *c = pg_local(impl);

	if (c != NULL)
		pg_seterr(c, "%s", msg);
}

/* A lookup's result: STORE_OK keeps it (one row), STORE_NOT_FOUND frees
 * it (none). */
static int pg_one(PGresult **res)
{
	if (PQntuples(*res) > 0)
		return STORE_OK;
	PQclear(*res);
	*res = NULL;
	return STORE_NOT_FOUND;
}

static int pg_tenant_create(void *impl, const struct store_tenant *t)
{
	struct pg_conn *c = pg_connect(impl, PG_WRITE);

	if (c == NULL)
		return STORE_ERROR;
	return pg_exec(c, Q_TENANT_INSERT, NULL, "tti", t->id, t->name, t->created_at);
}

static int pg_tenant_get(void *impl, enum pg_query q, const char *key, struct store_tenant *out)
{
	struct pg_conn *c = pg_connect(impl, PG_READ);
	PGresult *res;
	int rc;

	if (c == NULL || pg_exec(c, q, &res, "t", key) != STORE_OK)
		return STORE_ERROR;
	if ((rc = pg_one(&res)) == STORE_OK) {
		rc = pg_row_tenant(c, res, 0, out);
		PQclear(res);
	}
	return rc;
}

static int pg_tenant_by_name(void *impl, const char *name, struct store_tenant *out)
{
	return pg_tenant_get(impl, Q_TENANT_BY_NAME, name, out);
}

static int pg_tenant_by_id(void *impl, const char *id, struct store_tenant *out)
{
	return pg_tenant_get(impl, Q_TENANT_BY_ID, id, out);
}

static int pg_user_create(void *impl, const struct store_user *u)
{
	struct pg_conn *c = pg_connect(impl, PG_WRITE);

	if (c == NULL)
		return STORE_ERROR;
	return pg_exec(c, Q_USER_INSERT, NULL, "ttttti", u->id, u->tenant_id, u->username, u->role,
		       u->password_hash, u->created_at);
}

static int pg_user_get(void *impl, enum pg_query q, const char *tenant_id, const char *key,
		       struct store_user *out)
{
	struct pg_conn *c = pg_connect(impl, PG_READ);
	PGresult *res;
	int rc;

	if (c == NULL || pg_exec(c, q, &res, "tt", tenant_id, key) != STORE_OK)
		return STORE_ERROR;
	if ((rc = pg_one(&res)) == STORE_OK) {
		rc = pg_row_user(c, res, 0, out);
		PQclear(res);
	}
	return rc;
}

static int pg_user_by_name(void *impl, const char *tenant_id, const char *username,
			   struct store_user *out)
{
	return pg_user_get(impl, Q_USER_BY_NAME, tenant_id, username, out);
}

static int pg_user_by_id(void *impl, const char *tenant_id, const char *user_id,
			 struct store_user *out)
{
	return pg_user_get(impl, Q_USER_BY_ID, tenant_id, user_id, out);
}

static int pg_user_list(void *impl, const char *tenant_id, store_user_fn *fn, void *ctx)
{
	struct pg_conn *c = pg_connect(impl, PG_READ);
	struct store_user u;
	PGresult *res;
	int rc = STORE_OK;

	if (c == NULL || pg_exec(c, Q_USER_LIST, &res, "t", tenant_id) != STORE_OK)
		return STORE_ERROR;
	c->running[Q_USER_LIST] = 1;
	for (int i = 0; i < PQntuples(res); i++)
		if ((rc = pg_row_user(c, res, i, &u)) != STORE_OK || fn(ctx, &u) != 0)
			break;
	c->running[Q_USER_LIST] = 0;
	PQclear(res);
	return rc;
}

/* The outcome rc of a change of one row: NOT_FOUND when it matched none. */
static int pg_exec_one(struct pg_conn *c, int rc)
{
	return rc == STORE_OK && c->changes == 0 ? STORE_NOT_FOUND : rc;
}

static int pg_user_set_role(void *impl, const char *tenant_id, const char *user_id,
			    const char *role)
{
	struct pg_conn *c = pg_connect(impl, PG_WRITE);

	if (c == NULL)
		return STORE_ERROR;
	return pg_exec_one(c, pg_exec(c, Q_USER_SET_ROLE, NULL, "ttt", tenant_id, user_id, role));
}

static int pg_user_delete(void *impl, const char *tenant_id, const char *user_id)
{
	struct pg_conn *c = pg_connect(impl, PG_WRITE);

	if (c == NULL)
		return STORE_ERROR;
	return pg_exec_one(c, pg_exec(c, Q_USER_DELETE, NULL, "tt", tenant_id, user_id));
}

static int pg_session_create(void *impl, const struct store_session *x)
{
	struct pg_conn *c = pg_connect(impl, PG_WRITE);

	if (c == NULL)
		return STORE_ERROR;
	return pg_exec(c, Q_SESSION_INSERT, NULL, "ttttiii", x->id, x->user_id, x->tenant_id,
		       x->role, x->created_at, x->expires_at, x->revoked_at);
}

static int pg_session_get(void *impl, const char *id, struct store_session *out)
{
	struct pg_conn *c = pg_connect(impl, PG_READ);
	PGresult *res;
	int rc;

	if (c == NULL || pg_exec(c, Q_SESSION_GET, &res, "t", id) != STORE_OK)
		return STORE_ERROR;
	if ((rc = pg_one(&res)) == STORE_OK) {
		rc = pg_row_session(c, res, 0, out);
		PQclear(res);
	}
	return rc;
}

static int pg_session_revoke(void *impl, const char *id, long long now)
{
	struct pg_conn *c = pg_connect(impl, PG_WRITE);

	if (c == NULL)
		return STORE_ERROR;
	return pg_exec_one(c, pg_exec(c, Q_SESSION_REVOKE, NULL, "ti", id, now));
}

/* Live sessions: not revoked and not yet expired at now. */
static int pg_session_revoke_user(void *impl, const char *tenant_id, const char *user_id,
				  long long now, store_id_fn *fn, void *ctx)
{
	struct pg_conn *c = pg_connect(impl, PG_WRITE);
	PGresult *res;

	if (c == NULL ||
	    pg_exec(c, Q_SESSION_REVOKE_USER, &res, "tti", tenant_id, user_id, now) != STORE_OK)
		return STORE_ERROR;
	pg_ids_report(res, fn, ctx);
	return STORE_OK;
}

static int pg_session_purge(void *impl, long long now, long long keep_revoked_s,
			    store_id_fn *fn, void *ctx)
{
	struct pg_conn *c = pg_connect(impl, PG_WRITE);
	long long cutoff = now - keep_revoked_s; /* both >= 0: no overflow */
	PGresult *res;

	if (c == NULL || pg_exec(c, Q_SESSION_PURGE, &res, "ii", now, cutoff) != STORE_OK)
		return STORE_ERROR;
	pg_ids_report(res, fn, ctx);
	return STORE_OK;
}

static int pg_audit_insert(struct pg_conn *c, const struct store_audit *a)
{
	return pg_exec(c, Q_AUDIT_INSERT, NULL, "tttttit", a->tenant_id, a->actor_id, a->action,
		       a->target, a->detail, a->at, a->request_id);
}

static int pg_audit_append(void *impl, const struct store_audit *a)
{
	struct pg_conn *c = pg_connect(impl, PG_WRITE);

	return c == NULL ? STORE_ERROR : pg_audit_insert(c, a);
}

static int pg_audit_list(void *impl, const char *tenant_id, long long before, int limit,
			 store_audit_fn *fn, void *ctx)
{
	struct pg_conn *c = pg_connect(impl, PG_READ);
	struct store_audit a;
	PGresult *res;
	int rc = STORE_OK;

	if (c == NULL ||
	    pg_exec(c, Q_AUDIT_LIST, &res, "tii", tenant_id, before, (long long)limit) != STORE_OK)
		return STORE_ERROR;
	c->running[Q_AUDIT_LIST] = 1;
	for (int i = 0; i < PQntuples(res); i++)
		if ((rc = pg_row_audit(c, res, i, &a)) != STORE_OK || fn(ctx, &a) != 0)
			break;
	c->running[Q_AUDIT_LIST] = 0;
	PQclear(res);
	return rc;
}

static int pg_stream_create(void *impl, const struct store_stream_session *x)
{
	struct pg_conn *c = pg_connect(impl, PG_WRITE);

	if (c == NULL)
		return STORE_ERROR;
	return pg_exec(c, Q_STREAM_INSERT, NULL, "tttttttiiiii", x->id, x->tenant_id, x->user_id,
		       x->session_id, x->role, x->fgp, x->topics, x->created_at, x->connect_by,
		       x->expires_at, x->used_at, x->finished_at);
}

static int pg_stream_get(void *impl, const char *id, struct store_stream_session *out)
{
	struct pg_conn *c = pg_connect(impl, PG_READ);
	PGresult *res;
	int rc;

	if (c == NULL || pg_exec(c, Q_STREAM_GET, &res, "t", id) != STORE_OK)
		return STORE_ERROR;
	if ((rc = pg_one(&res)) == STORE_OK) {
		rc = pg_row_stream(c, res, 0, out);
		PQclear(res);
	}
	return rc;
}

static int pg_stream_claim(void *impl, const char *id, long long now, const char *topics)
{
	struct pg_conn *c = pg_connect(impl, PG_WRITE);
	struct store_stream_session x;
	int rc;

	if (c == NULL)
		return STORE_ERROR;
	if ((rc = pg_exec(c, Q_STREAM_CLAIM, NULL, "tit", id, now, topics)) != STORE_OK ||
	    c->changes == 1)
		return rc;
	/* nothing changed: absent, or someone claimed it first */
	rc = pg_stream_get(impl, id, &x);
	return rc == STORE_OK ? STORE_CONFLICT : rc;
}

static int pg_stream_finish_topic(void *impl, const char *tenant_id, const char *topic,
				  long long now)
{
	struct pg_conn *c = pg_connect(impl, PG_WRITE);

	if (c == NULL)
		return STORE_ERROR;
	return pg_exec(c, Q_STREAM_FINISH_TOPIC, NULL, "tti", tenant_id, topic, now);
}

static int pg_stream_purge(void *impl, long long now)
{
	struct pg_conn *c = pg_connect(impl, PG_WRITE);

	if (c == NULL)
		return STORE_ERROR;
	return pg_exec(c, Q_STREAM_PURGE, NULL, "i", now);
}

/* ------------------------------------------------------ devices */

/* Writes ev to the outbox; its seq is the new row's. The first of a
 * transaction takes the outbox lock (Q_OUTBOX_LOCK), held to its end. */
static int pg_outbox_insert(struct pg_conn *c, struct store_event *ev, int first)
{
	PGresult *res;

	if (first && pg_exec(c, Q_OUTBOX_LOCK, NULL, "i", PG_LOCK_OUTBOX) != STORE_OK)
		return STORE_ERROR;
	if (pg_exec(c, Q_OUTBOX_INSERT, &res, "tttti", ev->tenant_id, ev->type, ev->topic, ev->data,
		    ev->created_at) != STORE_OK)
		return STORE_ERROR;
	ev->seq = pg_int(res, 0, 0);
	PQclear(res);
	return STORE_OK;
}

/* The change's audit record and event, then the end of its transaction. */
static int pg_change_end(struct pg_conn *c, int rc, const struct store_audit *a,
			 struct store_event *ev)
{
	if (rc == STORE_OK)
		rc = pg_audit_insert(c, a);
	if (rc == STORE_OK)
		rc = pg_outbox_insert(c, ev, 1);
	return pg_tx_end(c, rc);
}

static int pg_device_create(void *impl, const struct store_device *d, const struct store_audit *a,
			    struct store_event *ev)
{
	struct pg_conn *c = pg_connect(impl, PG_WRITE);
	int rc;

	if (c == NULL || pg_tx_begin(c) != STORE_OK)
		return STORE_ERROR;
	rc = pg_exec(c, Q_DEVICE_INSERT, NULL, "tttttiiii", d->id, d->tenant_id, d->name, d->status,
		     d->metadata, d->created_at, d->updated_at, d->last_seen_at, d->version);
	return pg_change_end(c, rc, a, ev);
}

static int pg_device_get(void *impl, const char *tenant_id, const char *id,
			 struct store_device *out)
{
	struct pg_conn *c = pg_connect(impl, PG_READ);
	PGresult *res;
	int rc;

	if (c == NULL || pg_exec(c, Q_DEVICE_GET, &res, "tt", tenant_id, id) != STORE_OK)
		return STORE_ERROR;
	if ((rc = pg_one(&res)) == STORE_OK) {
		rc = pg_row_device(c, res, 0, out);
		PQclear(res);
	}
	return rc;
}

/* STORE_OK when the tenant has the device, else NOT_FOUND (or ERROR). */
static int pg_device_exists(struct pg_conn *c, const char *tenant_id, const char *id)
{
	PGresult *res;
	int rc;

	if (pg_exec(c, Q_DEVICE_EXISTS, &res, "tt", tenant_id, id) != STORE_OK)
		return STORE_ERROR;
	if ((rc = pg_one(&res)) == STORE_OK)
		PQclear(res);
	return rc;
}

static int pg_device_update(void *impl, const struct store_device *d, const struct store_audit *a,
			    struct store_event *ev)
{
	struct pg_conn *c = pg_connect(impl, PG_WRITE);
	int rc;

	if (c == NULL || pg_tx_begin(c) != STORE_OK)
		return STORE_ERROR;
	/* a concurrent update of the row waits for the first to commit,
	 * then finds the version changed: no row, as with SQLite */
	rc = pg_exec(c, Q_DEVICE_UPDATE, NULL, "tttttii", d->tenant_id, d->id, d->name, d->status,
		     d->metadata, d->updated_at, d->version);
	if (rc == STORE_OK && c->changes == 0) {
		/* absent, or changed since it was read */
		rc = pg_device_exists(c, d->tenant_id, d->id);
		if (rc == STORE_OK)
			rc = STORE_CONFLICT;
	}
	return pg_change_end(c, rc, a, ev);
}

static int pg_device_delete(void *impl, const char *tenant_id, const char *id,
			    const struct store_audit *a, struct store_event *ev)
{
	struct pg_conn *c = pg_connect(impl, PG_WRITE);
	int rc;

	if (c == NULL || pg_tx_begin(c) != STORE_OK)
		return STORE_ERROR;
	rc = pg_exec_one(c, pg_exec(c, Q_DEVICE_DELETE, NULL, "tt", tenant_id, id));
	return pg_change_end(c, rc, a, ev);
}

static int pg_device_list(void *impl, const char *tenant_id, const char *status, const char *after,
			  long long offset, int limit, store_device_fn *fn, void *ctx)
{
	struct pg_conn *c = pg_connect(impl, PG_READ);
	struct store_device d;
	PGresult *res;
	int rc = STORE_OK;

	if (c == NULL || pg_exec(c, Q_DEVICE_LIST, &res, "tttii", tenant_id, status, after,
				 (long long)limit, offset) != STORE_OK)
		return STORE_ERROR;
	c->running[Q_DEVICE_LIST] = 1;
	for (int i = 0; i < PQntuples(res); i++)
		if ((rc = pg_row_device(c, res, i, &d)) != STORE_OK || fn(ctx, &d) != 0)
			break;
	c->running[Q_DEVICE_LIST] = 0;
	PQclear(res);
	return rc;
}

static int pg_device_count(void *impl, const char *tenant_id, const char *status, long long *out)
{
	struct pg_conn *c = pg_connect(impl, PG_READ);
	PGresult *res;
	int rc;

	if (c == NULL || pg_exec(c, Q_DEVICE_COUNT, &res, "tt", tenant_id, status) != STORE_OK)
		return STORE_ERROR;
	if ((rc = pg_one(&res)) == STORE_OK) {
		*out = pg_int(res, 0, 0);
		PQclear(res);
	}
	return rc == STORE_NOT_FOUND ? STORE_ERROR : rc; /* count(*) always has a row */
}

/* ------------------------------------------------------ telemetry */

static int pg_telemetry_append(void *impl, const char *tenant_id, const char *device_id,
			       const struct store_telemetry *pts, struct store_event *evs, size_t n)
{
	struct pg_conn *c = pg_connect(impl, PG_WRITE);
	long long newest = 0;
	int rc;

	if (c == NULL || pg_tx_begin(c) != STORE_OK)
		return STORE_ERROR;
	rc = pg_device_exists(c, tenant_id, device_id);
	for (size_t i = 0; rc == STORE_OK && i < n; i++) {
		rc = pg_exec(c, Q_TELEMETRY_INSERT, NULL, "tttit", pts[i].id, tenant_id, device_id,
			     pts[i].ts, pts[i].metrics);
		if (pts[i].ts > newest)
			newest = pts[i].ts;
	}
	if (rc == STORE_OK)
		rc = pg_exec(c, Q_DEVICE_SEEN, NULL, "tti", tenant_id, device_id, newest);
	/* the events last: the outbox lock is held for as short as can be */
	for (size_t i = 0; rc == STORE_OK && i < n; i++)
		rc = pg_outbox_insert(c, &evs[i], i == 0);
	return pg_tx_end(c, rc);
}

static int pg_telemetry_recent(void *impl, const char *tenant_id, const char *device_id,
			       int limit, store_telemetry_fn *fn, void *ctx)
{
	struct pg_conn *c = pg_connect(impl, PG_READ);
	struct store_telemetry t;
	PGresult *res;
	int rc = STORE_OK;

	if (c == NULL || pg_exec(c, Q_TELEMETRY_RECENT, &res, "tti", tenant_id, device_id,
				 (long long)limit) != STORE_OK)
		return STORE_ERROR;
	c->running[Q_TELEMETRY_RECENT] = 1;
	for (int i = 0; i < PQntuples(res); i++) {
		if ((rc = pg_text(c, res, i, 0, t.id, sizeof(t.id))) != STORE_OK ||
		    (rc = pg_text(c, res, i, 1, t.device_id, sizeof(t.device_id))) != STORE_OK)
			break;
		t.ts = pg_int(res, i, 2);
		t.metrics = PQgetvalue(res, i, 3);
		if (fn(ctx, &t) != 0)
			break;
	}
	c->running[Q_TELEMETRY_RECENT] = 0;
	PQclear(res);
	return rc;
}

/* Runs a DELETE of at most TELEMETRY_BATCH rows in a transaction of its
 * own (autocommit); adds what it deleted. */
static int pg_delete_batch(struct pg_conn *c, int rc, long long *deleted, int *full)
{
	if (rc == STORE_OK) {
		*deleted += c->changes;
		*full = c->changes >= TELEMETRY_BATCH;
	}
	return rc;
}

/* Trims one device to its newest keep points (and those sharing the
 * oldest kept one's time), in batches. */
static int pg_trim_device(struct pg_conn *c, const char *tenant_id, const char *device_id,
			  long long keep, long long *deleted)
{
	PGresult *res;
	long long cut;
	int rc, full = 1;

	if (pg_exec(c, Q_TELEMETRY_NTH, &res, "tti", tenant_id, device_id, keep - 1) != STORE_OK)
		return STORE_ERROR;
	if ((rc = pg_one(&res)) != STORE_OK)
		return rc == STORE_NOT_FOUND ? STORE_OK : rc;
	cut = pg_int(res, 0, 0);
	PQclear(res);
	while (rc == STORE_OK && full)
		rc = pg_delete_batch(c, pg_exec(c, Q_TELEMETRY_TRIM, NULL, "ttii", tenant_id,
						device_id, cut, (long long)TELEMETRY_BATCH),
				     deleted, &full);
	return rc;
}

static int pg_telemetry_purge(void *impl, long long before_ms, long long keep, long long *deleted)
{
	struct pg_conn *c = pg_connect(impl, PG_WRITE);
	PGresult *crowded = NULL;
	int rc = STORE_OK, full = 1;

	if (c == NULL)
		return STORE_ERROR;
	/* autocommit: each batch is its own short transaction, so requests
	 * wait for one batch at most */
	while (rc == STORE_OK && full && before_ms > 0)
		rc = pg_delete_batch(c, pg_exec(c, Q_TELEMETRY_PURGE_AGE, NULL, "ii", before_ms,
						(long long)TELEMETRY_BATCH),
				     deleted, &full);
	/* crowded devices: (tenant, device) pairs, collected before trimming */
	if (rc == STORE_OK && keep > 0)
		rc = pg_exec(c, Q_TELEMETRY_CROWDED, &crowded, "i", keep);
	for (int i = 0; rc == STORE_OK && crowded != NULL && i < PQntuples(crowded); i++)
		rc = pg_trim_device(c, PQgetvalue(crowded, i, 0), PQgetvalue(crowded, i, 1), keep,
				    deleted);
	PQclear(crowded);
	return rc;
}

/* ------------------------------------------------------ outbox */

static int pg_outbox_list(void *impl, long long created_before, int limit, store_event_fn *fn,
			  void *ctx)
{
	struct pg_conn *c = pg_connect(impl, PG_READ);
	struct store_event ev;
	PGresult *res;
	int rc = STORE_OK;

	if (c == NULL ||
	    pg_exec(c, Q_OUTBOX_LIST, &res, "ii", created_before, (long long)limit) != STORE_OK)
		return STORE_ERROR;
	c->running[Q_OUTBOX_LIST] = 1;
	for (int i = 0; i < PQntuples(res); i++) {
		memset(&ev, 0, sizeof(ev));
		ev.seq = pg_int(res, i, 0);
		if ((rc = pg_text(c, res, i, 1, ev.tenant_id, sizeof(ev.tenant_id))) != STORE_OK ||
		    (rc = pg_text(c, res, i, 2, ev.type, sizeof(ev.type))) != STORE_OK ||
		    (rc = pg_text(c, res, i, 3, ev.topic, sizeof(ev.topic))) != STORE_OK)
			break;
		ev.data = PQgetvalue(res, i, 4);
		ev.created_at = pg_int(res, i, 5);
		if (fn(ctx, &ev) != 0)
			break;
	}
	c->running[Q_OUTBOX_LIST] = 0;
	PQclear(res);
	return rc;
}

static int pg_outbox_delete(void *impl, long long first, long long last)
{
	struct pg_conn *c = pg_connect(impl, PG_WRITE);

	if (c == NULL)
		return STORE_ERROR;
	return pg_exec(c, Q_OUTBOX_DELETE, NULL, "ii", first, last);
}

const struct store_ops store_postgres_ops = {
	.name = "postgres",
	.close = pg_close,
	.schema_version = pg_schema_version,
	.errstr = pg_errstr,
	.set_error = pg_set_error,
	.begin = pg_begin,
	.transient = pg_transient,
	.writable = pg_writable,
	.tenant_create = pg_tenant_create,
	.tenant_by_name = pg_tenant_by_name,
	.tenant_by_id = pg_tenant_by_id,
	.user_create = pg_user_create,
	.user_by_name = pg_user_by_name,
	.user_by_id = pg_user_by_id,
	.user_list = pg_user_list,
	.user_set_role = pg_user_set_role,
	.user_delete = pg_user_delete,
	.session_create = pg_session_create,
	.session_get = pg_session_get,
	.session_revoke = pg_session_revoke,
	.session_revoke_user = pg_session_revoke_user,
	.session_purge = pg_session_purge,
	.stream_session_create = pg_stream_create,
	.stream_session_get = pg_stream_get,
	.stream_session_claim = pg_stream_claim,
	.stream_session_finish_topic = pg_stream_finish_topic,
	.stream_session_purge = pg_stream_purge,
	.audit_append = pg_audit_append,
	.audit_list = pg_audit_list,
	.device_create = pg_device_create,
	.device_get = pg_device_get,
	.device_update = pg_device_update,
	.device_delete = pg_device_delete,
	.device_list = pg_device_list,
	.device_count = pg_device_count,
	.telemetry_append = pg_telemetry_append,
	.telemetry_recent = pg_telemetry_recent,
	.telemetry_purge = pg_telemetry_purge,
	.outbox_list = pg_outbox_list,
	.outbox_delete = pg_outbox_delete,
};

/* Appends keyword=value to the parameter arrays (n entries, room for one
 * more and the terminator). */
static int pg_param_add(struct pg_store *s, size_t *n, const char *key, const char *val)
{
	if ((s->keys[*n] = strdup(key)) == NULL || (s->vals[*n] = strdup(val)) == NULL) {
		free(s->keys[*n]);
		s->keys[*n] = NULL;
		return -1;
	}
	(*n)++;
	return 0;
}

/* The connection string's settings, and ours where it sets none: a
 * connect timeout (libpq waits forever by default); a bound on how long
 * sent bytes may go unacknowledged and keepalives on an idle connection,
 * so that a server gone silent (a network partition: the multi-host
 * test's host cut off) fails the call after about 10 s instead of hanging
 * the worker for TCP's ~15 min of retransmissions (statement_timeout is
 * the server's and cannot help when nothing reaches it); the application
 * name the server shows, UTF-8 text. libpq's own parse error is not passed on:
 * it quotes the string, which may hold a password. */
static int pg_params(struct pg_store *s, const char *conninfo, struct buf *err)
{
	static const char *const defaults[][2] = {
		{ "connect_timeout", PG_CONNECT_TIMEOUT_S },
		{ "tcp_user_timeout", "10000" },
		{ "keepalives_idle", "10" },
		{ "keepalives_interval", "2" },
		{ "keepalives_count", "3" },
		{ "fallback_application_name", "fcgi_sse" },
		{ "client_encoding", "UTF8" },
	};
	const size_t n_defaults = sizeof(defaults) / sizeof(defaults[0]);
	PQconninfoOption *opts, *o;
	char *msg = NULL;
	size_t count = 0, n = 0, d;

	if ((opts = PQconninfoParse(conninfo, &msg)) == NULL) {
		PQfreemem(msg);
		buf_puts(err, msg ? "postgres: store.postgres is not a valid libpq connection string"
				  : "postgres: out of memory");
		return -1;
	}
	for (o = opts; o->keyword != NULL; o++)
		count++;
	s->keys = calloc(count + n_defaults + 1, sizeof(*s->keys));
	s->vals = calloc(count + n_defaults + 1, sizeof(*s->vals));
	if (s->keys == NULL || s->vals == NULL)
		goto oom;
	for (o = opts; o->keyword != NULL; o++)
		if (o->val != NULL && pg_param_add(s, &n, o->keyword, o->val) != 0)
			goto oom;
	for (d = 0; d < n_defaults; d++) {
		size_t i;

		for (i = 0; i < n && strcmp(s->keys[i], defaults[d][0]) != 0; i++)
			;
		if (i == n && pg_param_add(s, &n, defaults[d][0], defaults[d][1]) != 0)
			goto oom;
	}
	PQconninfoFree(opts);
	return 0;
oom:
	PQconninfoFree(opts);
	buf_puts(err, "postgres: out of memory");
	return -1;
}

void *store_postgres_open(const char *conninfo, struct buf *err)
{
	struct pg_store *s;
	struct pg_conn *c;

	if (!PQisthreadsafe()) {
		buf_puts(err, "postgres: libpq was built without thread support");
		return NULL;
	}
	if ((s = calloc(1, sizeof(*s))) == NULL) {
		buf_puts(err, "postgres: out of memory");
		return NULL;
	}
	if (perthread_init(&s->conns, sizeof(struct pg_conn), pg_conn_free) != 0) {
		free(s);
		buf_puts(err, "postgres: out of memory");
		return NULL;
	}
	if (pg_params(s, conninfo, err) != 0)
		goto err;
	/* the opening thread keeps this connection as its own */
	if ((c = pg_local(s)) == NULL) {
		buf_puts(err, "postgres: out of memory");
		goto err;
	}
	if (pg_conn_open(c) != STORE_OK || pg_migrate(c) != STORE_OK) {
		buf_puts(err, c->errstr);
		goto err;
	}
	return s;
err:
	pg_close(s);
	return NULL;
}
