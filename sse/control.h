/* control: what streams learn from other processes, and tell them.
 *
 * One connection per stream session: a newer stream with the same key ends
 * the older one, here at once and in every other process through a key
 * announcement on the bus (only a hash of the key travels; the stream
 * session id is a credential). Revocations (a logout, an admin revoking a
 * user's sessions) end the matching streams here with `event: revoked`
 * and go out on the bus to every process. Messages for the bus wait in a
 * bounded outbox while it is down, sent in order when it is back.
 *
 * Message formats: redis/busmsg.h. Runs on the hub's thread. */
#ifndef FCGI_SSE_CONTROL_H
#define FCGI_SSE_CONTROL_H

#include <stddef.h>

#include "../core/log.h"
#include "../redis/bus.h"
#include "../redis/busmsg.h"
#include "stream.h"

#define CONTROL_OUTBOX_MAX 10000 /* messages kept while the bus is down */

struct outmsg;

struct control {
	struct registry *reg;
	struct bus *bus;              /* NULL: in-process, nothing goes out */
	const struct logger *log;
	struct outmsg *outbox, **outbox_tail;
	int outbox_len;
};

void control_init(struct control *ctl, struct registry *reg, struct bus *bus,
		  const struct logger *log);

/* Frees what is still in the outbox. */
void control_free(struct control *ctl);

/* Sends a message to every process now, or keeps it for control_flush. */
void control_push(struct control *ctl, const char *msg, size_t len);

/* The bus is up: sends what the outbox holds, oldest first. */
void control_flush(struct control *ctl);

/* A stream with a key was added: older streams with its key end, here and
 * (announced on the bus) everywhere. */
void control_claim(struct control *ctl, struct stream *s);

/* Ends every stream of the login auth (a logout), or of the user of the
 * tenant, here and in every process. */
void control_revoke_login(struct control *ctl, const char *auth);
void control_revoke_user(struct control *ctl, const char *tenant, const char *user);

/* A message from the bus (any process, this one included). */
void control_on_bus(struct control *ctl, const struct busmsg *m);

#endif
