/* busmsg: the messages on the bus channel (BUS_CHANNEL), written and read
 * in one place. Pure: no Redis, no I/O.
 *
 * Every message is text fields separated by '\n', the first naming its kind:
 *   event          "E\n<tenant>\n<id>\n<type>\n<topic>\n<close 0|1>\n<data>"
 *                  (written by the publish script in bus.c, in Lua, as
 *                  busmsg_event writes it; the data may hold '\n')
 *   revoke login   "R\n<auth session id>"
 *   revoke user    "U\n<tenant>\n<user id>"
 *   stream key     "K\n<tenant>\n<key hash>\n<connection id>": a stream
 *                  session's key now belongs to that connection
 *   probe          "P\n<process nonce>\n<sent at, ms>": a process's
 *                  delivery self-test, ignored by every other process
 * Fields other than an event's data hold no '\n' (ids, names and hashes of
 * the API's own alphabets). */
#ifndef FCGI_SSE_BUSMSG_H
#define FCGI_SSE_BUSMSG_H

#include <stddef.h>

#include "../core/buf.h"

enum busmsg_kind {
	BUSMSG_INVALID,      /* unknown kind or wrong number of fields: ignored */
	BUSMSG_EVENT,
	BUSMSG_REVOKE_LOGIN,
	BUSMSG_REVOKE_USER,
	BUSMSG_KEY,
	BUSMSG_PROBE,
};

/* A decoded message. The strings point into the buffer given to
 * busmsg_parse. */
struct busmsg {
	enum busmsg_kind kind;
	const char *tenant;          /* event, revoke user, key */
	const char *login;           /* revoke login */
	const char *user;            /* revoke user */
	const char *key, *conn;      /* key */
	const char *nonce;           /* probe */
	long long sent_ms;           /* probe */
	/* event */
	const char *id, *type, *topic; /* topic NULL: none */
	const char *data;
	size_t len;
	int close;
};

/* Splits p (n bytes, followed by a writable NUL byte at p[n]) in place.
 * Returns m->kind. */
enum busmsg_kind busmsg_parse(char *p, size_t n, struct busmsg *m);

/* Writers: replace out's contents. Return 0, or -1 when out of memory. */
int busmsg_event(struct buf *out, const char *tenant, const char *id, const char *type,
		 const char *topic, int close, const char *data, size_t len);
int busmsg_revoke_login(struct buf *out, const char *login);
int busmsg_revoke_user(struct buf *out, const char *tenant, const char *user);
int busmsg_key(struct buf *out, const char *tenant, const char *key, const char *conn);
int busmsg_probe(struct buf *out, const char *nonce, long long sent_ms);

#endif
