#include "control.h"

#include <stdlib.h>
#include <string.h>

/* A control message waiting for the bus. */
struct outmsg {
	struct outmsg *next;
	size_t len;
	char msg[];
};

void control_init(struct control *ctl, struct registry *reg, struct bus *bus,
		  const struct logger *log)
{
	ctl->reg = reg;
	ctl->bus = bus;
	ctl->log = log;
	ctl->outbox = NULL;
	ctl->outbox_tail = &ctl->outbox;
	ctl->outbox_len = 0;
}

void control_free(struct control *ctl)
{
	while (ctl->outbox != NULL) {
		struct outmsg *m = ctl->outbox;
		ctl->outbox = m->next;
		free(m);
	}
	ctl->outbox_tail = &ctl->outbox;
	ctl->outbox_len = 0;
}

void control_push(struct control *ctl, const char *msg, size_t len)
{
	struct outmsg *m;

	if (ctl->bus == NULL)
		return;
	if (ctl->outbox == NULL && bus_send_control(ctl->bus, msg, len) == 0)
		return;
	if (ctl->outbox_len >= CONTROL_OUTBOX_MAX || (m = malloc(sizeof(*m) + len)) == NULL) {
		log_text(ctl->log, LOG_WARN, "bus_control_dropped", "outbox full");
		return;
	}
	m->next = NULL;
	m->len = len;
	memcpy(m->msg, msg, len);
	*ctl->outbox_tail = m;
	ctl->outbox_tail = &m->next;
	ctl->outbox_len++;
}

void control_flush(struct control *ctl)
{
	while (ctl->outbox != NULL &&
	       bus_send_control(ctl->bus, ctl->outbox->msg, ctl->outbox->len) == 0) {
		struct outmsg *m = ctl->outbox;
		ctl->outbox = m->next;
		if (ctl->outbox == NULL)
			ctl->outbox_tail = &ctl->outbox;
		ctl->outbox_len--;
		free(m);
	}
}

static void push_built(struct control *ctl, struct buf *m)
{
	if (m->len > 0 && !m->oom)
		control_push(ctl, m->data, m->len);
	buf_release(m);
}

void control_claim(struct control *ctl, struct stream *s)
{
	struct buf m = BUF_INIT;
	struct stream *o, *next;

	if (s->key == NULL)
		return;
	for (o = ctl->reg->buckets[s->bucket]; o != NULL; o = next) {
		next = o->tnext;
		if (o != s && o->key != NULL && !o->closing && strcmp(o->key, s->key) == 0 &&
		    strcmp(o->tenant, s->tenant) == 0)
			stream_end(ctl->reg, o, END_REPLACED, 1);
	}
	busmsg_key(&m, s->tenant, s->key_hash, s->conn);
	push_built(ctl, &m);
}

/* Another process (or this one) announced conn for key (hashed): streams
 * with that key whose own announcement came earlier are older, and end. */
static void replace_remote(struct control *ctl, const char *tenant, const char *key,
			   const char *conn)
{
	struct stream *s, *next;

	for (s = ctl->reg->buckets[stream_bucket(tenant)]; s != NULL; s = next) {
		next = s->tnext;
		if (s->closing || s->key == NULL || strcmp(s->key_hash, key) != 0 ||
		    strcmp(s->tenant, tenant) != 0)
			continue;
		if (strcmp(s->conn, conn) == 0)
			s->announced = 1;
		else if (s->announced)
			stream_end(ctl->reg, s, END_REPLACED, 1);
	}
}

static void revoke_matching(struct control *ctl, const char *auth, const char *tenant,
			    const char *user)
{
	struct stream *s, *next;

	for (s = ctl->reg->all; s != NULL; s = next) {
		next = s->gnext;
		if (s->closing)
			continue;
		if (auth != NULL ? (s->auth != NULL && strcmp(s->auth, auth) == 0)
				 : (s->user != NULL && strcmp(s->user, user) == 0 &&
				    strcmp(s->tenant, tenant) == 0))
			stream_revoke(ctl->reg, s);
	}
}

void control_revoke_login(struct control *ctl, const char *auth)
{
	struct buf m = BUF_INIT;

	revoke_matching(ctl, auth, NULL, NULL);
	busmsg_revoke_login(&m, auth);
	push_built(ctl, &m);
}

void control_revoke_user(struct control *ctl, const char *tenant, const char *user)
{
	struct buf m = BUF_INIT;

	revoke_matching(ctl, NULL, tenant, user);
	busmsg_revoke_user(&m, tenant, user);
	push_built(ctl, &m);
}

void control_on_bus(struct control *ctl, const struct busmsg *m)
{
	switch (m->kind) {
	case BUSMSG_REVOKE_LOGIN:
		revoke_matching(ctl, m->login, NULL, NULL);
		break;
	case BUSMSG_REVOKE_USER:
		revoke_matching(ctl, NULL, m->tenant, m->user);
		break;
	case BUSMSG_KEY:
		replace_remote(ctl, m->tenant, m->key, m->conn);
		break;
	default:
		break;
	}
}
