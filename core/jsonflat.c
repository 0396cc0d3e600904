#include "jsonflat.h"

#include <limits.h>
#include <string.h>

#include "hex.h"

struct cur {
	const char *p, *end;
};

static void skip_ws(struct cur *c)
{
	while (c->p < c->end && (*c->p == ' ' || *c->p == '\t' || *c->p == '\n' || *c->p == '\r'))
		c->p++;
}

static int take(struct cur *c, char ch)
{
	skip_ws(c);
	if (c->p >= c->end || *c->p != ch)
		return -1;
	c->p++;
	return 0;
}

static int hex4(const char *p, unsigned *out)
{
	long v = hex_u16(p);

	if (v < 0)
		return -1;
	*out = (unsigned)v;
	return 0;
}

/* Appends code point cp as UTF-8 to dst[*len], keeping room for a NUL. */
static int put_utf8(unsigned cp, char *dst, size_t cap, size_t *len)
{
	unsigned char b[4];
	size_t n;

	if (cp < 0x80) {
		b[0] = (unsigned char)cp, n = 1;
	} else if (cp < 0x800) {
		b[0] = (unsigned char)(0xc0 | cp >> 6), b[1] = (unsigned char)(0x80 | (cp & 0x3f)), n = 2;
	} else if (cp < 0x10000) {
		b[0] = (unsigned char)(0xe0 | cp >> 12), b[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
		b[2] = (unsigned char)(0x80 | (cp & 0x3f)), n = 3;
	} else {
		b[0] = (unsigned char)(0xf0 | cp >> 18), b[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3f));
		b[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f)), b[3] = (unsigned char)(0x80 | (cp & 0x3f));
		n = 4;
	}
	if (*len + n >= cap)
		return -1;
	memcpy(dst + *len, b, n);
	*len += n;
	return 0;
}

/* One escape after the backslash at c->p[-1]. */
static int unescape(struct cur *c, char *dst, size_t cap, size_t *len)
{
	unsigned cp, lo;
	char e;

	if (c->p >= c->end)
		return -1;
	e = *c->p++;
	switch (e) {
	case '"': case '\\': case '/':
		cp = (unsigned char)e;
		break;
	case 'b': cp = '\b'; break;
	case 'f': cp = '\f'; break;
	case 'n': cp = '\n'; break;
	case 'r': cp = '\r'; break;
	case 't': cp = '\t'; break;
	case 'u':
		if (c->end - c->p < 4 || hex4(c->p, &cp) < 0)
			return -1;
		c->p += 4;
		if (cp >= 0xdc00 && cp <= 0xdfff)
			return -1; /* a lone low surrogate */
		if (cp >= 0xd800 && cp <= 0xdbff) {
			if (c->end - c->p < 6 || c->p[0] != '\\' || c->p[1] != 'u' ||
			    hex4(c->p + 2, &lo) < 0 || lo < 0xdc00 || lo > 0xdfff)
				return -1;
			c->p += 6;
			cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
		}
		if (cp == 0)
			return -1; /* no NUL inside a C string */
		break;
	default:
		return -1;
	}
	return put_utf8(cp, dst, cap, len);
}

/* A string at c->p (after skipping space) into dst (cap bytes with NUL). */
static int string(struct cur *c, char *dst, size_t cap)
{
	size_t len = 0;

	if (take(c, '"') < 0 || cap == 0)
		return -1;
	while (c->p < c->end) {
		const char *run = c->p;

		/* the plain run up to the next quote, backslash or control */
		while (c->p < c->end && *c->p != '"' && *c->p != '\\' && (unsigned char)*c->p >= 0x20)
			c->p++;
		if ((size_t)(c->p - run) >= cap - len)
			return -1;
		memcpy(dst + len, run, (size_t)(c->p - run));
		len += (size_t)(c->p - run);
		if (c->p >= c->end || (unsigned char)*c->p < 0x20)
			return -1;
		if (*c->p++ == '"') {
			dst[len] = '\0';
			return 0;
		}
		if (unescape(c, dst, cap, &len) < 0)
			return -1;
	}
	return -1;
}

/* An integer: -?(0|[1-9][0-9]*), no fraction, no exponent, in range. */
static int integer(struct cur *c, long long *out)
{
	int neg = 0;
	unsigned long long v = 0, lim;

	skip_ws(c);
	if (c->p < c->end && *c->p == '-')
		neg = 1, c->p++;
	if (c->p >= c->end || *c->p < '0' || *c->p > '9')
		return -1;
	if (*c->p == '0' && c->end - c->p > 1 && c->p[1] >= '0' && c->p[1] <= '9')
		return -1;
	lim = neg ? (unsigned long long)LLONG_MAX + 1 : (unsigned long long)LLONG_MAX;
	while (c->p < c->end && *c->p >= '0' && *c->p <= '9') {
		unsigned d = (unsigned)(*c->p++ - '0');
		if (v > (lim - d) / 10)
			return -1;
		v = v * 10 + d;
	}
	if (c->p < c->end && (*c->p == '.' || *c->p == 'e' || *c->p == 'E'))
		return -1;
	*out = neg ? (v == (unsigned long long)LLONG_MAX + 1 ? LLONG_MIN : -(long long)v) : (long long)v;
	return 0;
}

int jflat_decode(const char *p, size_t n, const struct jflat_field *f, int nf)
{
	struct cur c = { p, p + n };
	char seen[JFLAT_FIELDS_MAX] = { 0 };
	char name[64];
	int got = 0;

	if (p == NULL || nf < 1 || nf > JFLAT_FIELDS_MAX || take(&c, '{') < 0)
		return -1;
	for (;;) {
		int i;

		if (string(&c, name, sizeof(name)) < 0 || take(&c, ':') < 0)
			return -1;
		for (i = 0; i < nf && strcmp(f[i].name, name) != 0; i++)
			;
		if (i == nf || seen[i])
			return -1;
		seen[i] = 1;
		got++;
		if (f[i].type == JFLAT_STR ? string(&c, f[i].dst, f[i].cap) < 0
					   : integer(&c, f[i].dst) < 0)
			return -1;
		skip_ws(&c);
		if (c.p < c.end && *c.p == ',') {
			c.p++;
			continue;
		}
		break;
	}
	if (take(&c, '}') < 0)
		return -1;
	skip_ws(&c);
	return c.p == c.end && got == nf ? 0 : -1;
}
