#include "query.h"

#include <string.h>

#include "hex.h"

/* Decodes p[0..n) into out. Returns 0, or -1 on a bad escape or NUL. */
static int decode(const char *p, size_t n, struct buf *out)
{
	buf_reset(out);
	for (size_t i = 0; i < n; i++) {
		char c = p[i];
		if (c == '+') {
			c = ' ';
		} else if (c == '%') {
			int hi, lo;
			if (n - i < 3) /* needs two hex digits after '%' */
				return -1;
			hi = hex_digit((unsigned char)p[i + 1]);
			lo = hex_digit((unsigned char)p[i + 2]);
			if (hi < 0 || lo < 0 || (hi == 0 && lo == 0))
				return -1;
			c = (char)(hi * 16 + lo);
			i += 2;
		}
		buf_append(out, &c, 1);
	}
	return out->oom ? -1 : 0;
}

/* Calls fn for each name=value pair; stops when fn returns non-zero. */
typedef int pair_fn(void *ctx, const char *name, size_t nlen, const char *val, size_t vlen);

static int each_pair(const char *q, pair_fn *fn, void *ctx)
{
	while (q != NULL && *q != '\0') {
		const char *amp = strchr(q, '&'), *end = amp ? amp : q + strlen(q);
		const char *eq = memchr(q, '=', (size_t)(end - q));
		size_t nlen = (size_t)((eq ? eq : end) - q);
		int rc;

		if (nlen > 0) {
			rc = fn(ctx, q, nlen, eq ? eq + 1 : end, eq ? (size_t)(end - eq - 1) : 0);
			if (rc != 0)
				return rc;
		}
		q = amp ? amp + 1 : end;
	}
	return 0;
}

struct get_ctx {
	const char *name;
	struct buf *out;
	struct buf tmp;
	int found;
};

static int get_pair(void *ctx, const char *name, size_t nlen, const char *val, size_t vlen)
{
	struct get_ctx *g = ctx;

	if (decode(name, nlen, &g->tmp) < 0)
		return -1;
	if (g->found || strcmp(buf_str(&g->tmp), g->name) != 0)
		return decode(val, vlen, &g->tmp) < 0 ? -1 : 0; /* still validate */
	g->found = 1;
	return decode(val, vlen, g->out) < 0 ? -1 : 0;
}

int query_get(const char *query, const char *name, struct buf *out)
{
	struct get_ctx g = { name, out, BUF_INIT, 0 };
	int rc = each_pair(query, get_pair, &g);

	buf_release(&g.tmp);
	if (rc < 0)
		return -1;
	if (!g.found)
		buf_reset(out);
	return g.found;
}

struct only_ctx {
	const char *const *allowed;
	const char **unknown;
	size_t *unknown_len;
	struct buf tmp;
};

static int only_pair(void *ctx, const char *name, size_t nlen, const char *val, size_t vlen)
{
	struct only_ctx *o = ctx;

	if (decode(name, nlen, &o->tmp) < 0 || decode(val, vlen, &o->tmp) < 0)
		return -1;
	decode(name, nlen, &o->tmp);
	for (int i = 0; o->allowed[i] != NULL; i++)
		if (strcmp(buf_str(&o->tmp), o->allowed[i]) == 0)
			return 0;
	*o->unknown = name;
	*o->unknown_len = nlen;
	return 1;
}

int query_only(const char *query, const char *const *allowed, const char **unknown,
	       size_t *unknown_len)
{
	struct only_ctx o = { allowed, unknown, unknown_len, BUF_INIT };
	int rc = each_pair(query, only_pair, &o);

	buf_release(&o.tmp);
	if (rc < 0)
		return -1;
	return rc == 0 ? 1 : 0;
}
