/* Target: the bus message decoder (redis/busmsg.c), on what any process
 * sharing the Redis channel may publish.
 *
 * busmsg_parse on arbitrary bytes: every string it returns lies inside
 * the buffer and is NUL-terminated there, an event's data and length
 * cover exactly the rest of the message, and a decoded message written
 * again by the matching busmsg_* writer decodes to the same fields (the
 * writers and the parser agree; an event or a revocation is the same
 * bytes again). The other way too: fields from the input written by a
 * writer parse back as written. */
#include "fuzz.h"

#include "../redis/busmsg.h"

static int inside(const char *s, const char *p, size_t n)
{
	return s != NULL && s >= p && s <= p + n && s + strlen(s) <= p + n;
}

static int same(const char *a, const char *b)
{
	return (a == NULL && b == NULL) || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

/* Writes m again with its writer; returns 0 or -1. */
static int rewrite(const struct busmsg *m, struct buf *out)
{
	switch (m->kind) {
	case BUSMSG_EVENT:
		return busmsg_event(out, m->tenant, m->id, m->type, m->topic, m->close, m->data, m->len);
	case BUSMSG_REVOKE_LOGIN:
		return busmsg_revoke_login(out, m->login);
	case BUSMSG_REVOKE_USER:
		return busmsg_revoke_user(out, m->tenant, m->user);
	case BUSMSG_KEY:
		return busmsg_key(out, m->tenant, m->key, m->conn);
	case BUSMSG_PROBE:
		return busmsg_probe(out, m->nonce, m->sent_ms);
	case BUSMSG_INVALID:
		break;
	}
	return -1;
}

static int same_msg(const struct busmsg *a, const struct busmsg *b)
{
	return a->kind == b->kind && same(a->tenant, b->tenant) && same(a->login, b->login) &&
	       same(a->user, b->user) && same(a->key, b->key) && same(a->conn, b->conn) &&
	       same(a->nonce, b->nonce) && a->sent_ms == b->sent_ms && same(a->id, b->id) &&
	       same(a->type, b->type) && same(a->topic, b->topic) && a->close == b->close &&
	       a->len == b->len && (a->len == 0 || memcmp(a->data, b->data, a->len) == 0);
}

static void check_parse(const uint8_t *data, size_t size)
{
	char *p = malloc(size + 1);
	struct busmsg m, again;
	struct buf out = BUF_INIT;
	enum busmsg_kind k;

	FUZZ_CHECK(p != NULL);
	if (size > 0)
		memcpy(p, data, size);
	k = busmsg_parse(p, size, &m);
	FUZZ_CHECK(k == m.kind);
	switch (k) {
	case BUSMSG_EVENT:
		FUZZ_CHECK(inside(m.tenant, p, size) && inside(m.id, p, size) && inside(m.type, p, size));
		FUZZ_CHECK(m.topic == NULL || (inside(m.topic, p, size) && m.topic[0] != '\0'));
		FUZZ_CHECK(m.data >= p && m.data + m.len == p + size);
		FUZZ_CHECK(m.close == 0 || m.close == 1);
		break;
	case BUSMSG_REVOKE_LOGIN:
		FUZZ_CHECK(inside(m.login, p, size));
		break;
	case BUSMSG_REVOKE_USER:
		FUZZ_CHECK(inside(m.tenant, p, size) && inside(m.user, p, size));
		break;
	case BUSMSG_KEY:
		FUZZ_CHECK(inside(m.tenant, p, size) && inside(m.key, p, size) && inside(m.conn, p, size));
		break;
	case BUSMSG_PROBE:
		FUZZ_CHECK(inside(m.nonce, p, size) && m.nonce[0] != '\0' && m.sent_ms >= 0);
		break;
	case BUSMSG_INVALID:
		FUZZ_CHECK(m.tenant == NULL && m.data == NULL && m.len == 0);
		break;
	}
	if (k != BUSMSG_INVALID) {
		char *copy;
		FUZZ_CHECK(rewrite(&m, &out) == 0);
		copy = malloc(out.len + 1);
		FUZZ_CHECK(copy != NULL);
		memcpy(copy, out.data, out.len);
		FUZZ_CHECK(busmsg_parse(copy, out.len, &again) == k);
		FUZZ_CHECK(same_msg(&m, &again));
		free(copy);
	}
	buf_release(&out);
	free(p);
}

/* Fields without '\n' (the writers' contract) from the input. */
static void check_write(const uint8_t *data, size_t size)
{
	struct fuzz_in in = { data, size };
	unsigned kind = fuzz_byte(&in) % 5;
	char *a = fuzz_field(&in, '\n'), *b = fuzz_field(&in, '\n'), *c = fuzz_field(&in, '\n');
	char *d = fuzz_field(&in, '\n');
	size_t dlen;
	char *rest = fuzz_rest(&in, &dlen);
	struct buf out = BUF_INIT;
	struct busmsg m;
	char *copy;

	switch (kind) {
	case 0:
		FUZZ_CHECK(busmsg_event(&out, a, b, c, *d ? d : NULL, dlen & 1, rest, dlen) == 0);
		break;
	case 1:
		FUZZ_CHECK(busmsg_revoke_login(&out, a) == 0);
		break;
	case 2:
		FUZZ_CHECK(busmsg_revoke_user(&out, a, b) == 0);
		break;
	case 3:
		FUZZ_CHECK(busmsg_key(&out, a, b, c) == 0);
		break;
	default:
		FUZZ_CHECK(busmsg_probe(&out, a, (long long)dlen) == 0);
	}
	copy = malloc(out.len + 1);
	FUZZ_CHECK(copy != NULL);
	memcpy(copy, out.data, out.len);
	busmsg_parse(copy, out.len, &m);
	switch (kind) {
	case 0:
		FUZZ_CHECK(m.kind == BUSMSG_EVENT);
		FUZZ_CHECK(same(m.tenant, a) && same(m.id, b) && same(m.type, c));
		FUZZ_CHECK(same(m.topic, *d ? d : NULL) && m.close == (int)(dlen & 1));
		FUZZ_CHECK(m.len == dlen && (dlen == 0 || memcmp(m.data, rest, dlen) == 0));
		break;
	case 1:
		FUZZ_CHECK(m.kind == BUSMSG_REVOKE_LOGIN && same(m.login, a));
		break;
	case 2:
		FUZZ_CHECK(m.kind == BUSMSG_REVOKE_USER && same(m.tenant, a) && same(m.user, b));
		break;
	case 3:
		FUZZ_CHECK(m.kind == BUSMSG_KEY && same(m.tenant, a) && same(m.key, b) &&
			   same(m.conn, c));
		break;
	default:
		/* a probe needs a nonce */
		FUZZ_CHECK(*a == '\0' ? m.kind == BUSMSG_INVALID
				      : m.kind == BUSMSG_PROBE && same(m.nonce, a) &&
						m.sent_ms == (long long)dlen);
	}
	free(copy);
	buf_release(&out);
	free(a), free(b), free(c), free(d), free(rest);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	check_parse(data, size);
	check_write(data, size);
	return 0;
}
