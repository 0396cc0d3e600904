#include "busmsg.h"

#include <stdlib.h>
#include <string.h>

/* Cuts up to max fields off p at '\n' (the last field takes the rest).
 * Returns how many there are. */
static int split(char *p, size_t n, char **f, int max)
{
	char *end = p + n;
	int k = 0;

	while (k < max) {
		f[k++] = p;
		if (k == max)
			break;
		char *nl = memchr(p, '\n', (size_t)(end - p));
		if (nl == NULL)
			break;
		*nl = '\0';
		p = nl + 1;
	}
	return k;
}

enum busmsg_kind busmsg_parse(char *p, size_t n, struct busmsg *m)
{
	char *f[7];
	int k;

	memset(m, 0, sizeof(*m));
	p[n] = '\0';
	if (n < 2 || p[1] != '\n')
		return m->kind = BUSMSG_INVALID;
	switch (p[0]) {
	case 'E':
		/* the data is the rest, newlines and all */
		if ((k = split(p, n, f, 7)) != 7 || (f[5][0] != '0' && f[5][0] != '1') || f[5][1] != '\0')
			break;
		m->tenant = f[1], m->id = f[2], m->type = f[3];
		m->topic = f[4][0] ? f[4] : NULL;
		m->close = f[5][0] == '1';
		m->data = f[6];
		m->len = (size_t)(p + n - f[6]);
		return m->kind = BUSMSG_EVENT;
	case 'R':
		if (split(p, n, f, 3) != 2)
			break;
		m->login = f[1];
		return m->kind = BUSMSG_REVOKE_LOGIN;
	case 'U':
		if (split(p, n, f, 4) != 3)
			break;
		m->tenant = f[1], m->user = f[2];
		return m->kind = BUSMSG_REVOKE_USER;
	case 'K':
		if (split(p, n, f, 5) != 4)
			break;
		m->tenant = f[1], m->key = f[2], m->conn = f[3];
		return m->kind = BUSMSG_KEY;
	case 'P': {
		char *end;
		if (split(p, n, f, 4) != 3 || f[1][0] == '\0' || f[2][0] < '0' || f[2][0] > '9')
			break;
		m->sent_ms = strtoll(f[2], &end, 10);
		if (*end != '\0')
			break;
		m->nonce = f[1];
		return m->kind = BUSMSG_PROBE;
	}
	}
	memset(m, 0, sizeof(*m));
	return m->kind = BUSMSG_INVALID;
}

int busmsg_event(struct buf *out, const char *tenant, const char *id, const char *type,
		 const char *topic, int close, const char *data, size_t len)
{
	buf_reset(out);
	if (buf_printf(out, "E\n%s\n%s\n%s\n%s\n%c\n", tenant, id, type, topic ? topic : "",
		       close ? '1' : '0') < 0)
		return -1;
	return buf_append(out, data, len);
}

int busmsg_revoke_login(struct buf *out, const char *login)
{
	buf_reset(out);
	return buf_printf(out, "R\n%s", login);
}

int busmsg_revoke_user(struct buf *out, const char *tenant, const char *user)
{
	buf_reset(out);
	return buf_printf(out, "U\n%s\n%s", tenant, user);
}

int busmsg_key(struct buf *out, const char *tenant, const char *key, const char *conn)
{
	buf_reset(out);
	return buf_printf(out, "K\n%s\n%s\n%s", tenant, key, conn);
}

int busmsg_probe(struct buf *out, const char *nonce, long long sent_ms)
{
	buf_reset(out);
	return buf_printf(out, "P\n%s\n%lld", nonce, sent_ms);
}
