#include "router.h"

#include <string.h>

#define ID_MAX 64

static int id_char(char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
	       (c >= '0' && c <= '9') || c == '_' || c == '-';
}

static int valid_id(const char *p, size_t n)
{
	if (n == 0 || n > ID_MAX)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!id_char(p[i]))
			return 0;
	return 1;
}

/* Returns the length of the segment at s (up to '/' or the end). */
static size_t seg_len(const char *s)
{
	size_t n = 0;

	while (s[n] != '\0' && s[n] != '/')
		n++;
	return n;
}

enum shape { SHAPE_NONE, SHAPE_BAD_ID, SHAPE_OK };

/* Compares path against pattern segment by segment. */
static enum shape match_shape(const char *pattern, const char *path,
			      struct route_match *m)
{
	int bad_id = 0;

	m->nparams = 0;
	for (;;) {
		if (*pattern == '\0' || *path == '\0')
			break;
		if (*pattern != '/' || *path != '/')
			return SHAPE_NONE;
		pattern++;
		path++;
		size_t pl = seg_len(pattern), sl = seg_len(path);
		if (pl >= 2 && pattern[0] == '{' && pattern[pl - 1] == '}') {
			if (!valid_id(path, sl))
				bad_id = 1;
			if (m->nparams < ROUTER_MAX_PARAMS) {
				struct route_param *rp = &m->params[m->nparams++];
				rp->name = pattern + 1;
				rp->name_len = pl - 2;
				rp->value = path;
				rp->value_len = sl;
			}
		} else if (pl != sl || memcmp(pattern, path, pl) != 0) {
			return SHAPE_NONE;
		}
		pattern += pl;
		path += sl;
	}
	if (*pattern != '\0' || *path != '\0')
		return SHAPE_NONE;
	return bad_id ? SHAPE_BAD_ID : SHAPE_OK;
}

static unsigned expand(unsigned methods)
{
	if (methods & HTTP_METHOD_BIT(HTTP_GET))
		methods |= HTTP_METHOD_BIT(HTTP_HEAD);
	return methods | HTTP_METHOD_BIT(HTTP_OPTIONS);
}

enum router_result router_match(const struct route *routes, size_t n, int version,
				enum http_method method, const char *path,
				struct route_match *m)
{
	struct route_match probe;
	int bad_id = 0;

	memset(m, 0, sizeof(*m));
	if (version < 0 || version >= 32)
		return ROUTER_NOT_FOUND;
	for (size_t i = 0; i < n; i++) {
		const struct route *r = &routes[i];
		enum shape s;

		if (!(r->versions & (1u << version)))
			continue;
		s = match_shape(r->pattern, path, &probe);
		if (s == SHAPE_NONE)
			continue;
		if (s == SHAPE_BAD_ID) {
			bad_id = 1;
			continue;
		}
		m->allow |= expand(r->methods);
		if (m->route == NULL && (expand(r->methods) & HTTP_METHOD_BIT(method)) &&
		    method != HTTP_OTHER) {
			unsigned allow = m->allow;
			*m = probe;
			m->route = r;
			m->allow = allow;
		}
	}
	if (m->route != NULL)
		return ROUTER_MATCH;
	if (m->allow != 0)
		return ROUTER_METHOD_NOT_ALLOWED;
	return bad_id ? ROUTER_INVALID_ID : ROUTER_NOT_FOUND;
}

void router_allow_header(unsigned allow, struct buf *out)
{
	int first = 1;

	for (int mth = HTTP_GET; mth < HTTP_OTHER; mth++) {
		if (!(allow & HTTP_METHOD_BIT(mth)))
			continue;
		buf_printf(out, "%s%s", first ? "" : ", ", http_method_name((enum http_method)mth));
		first = 0;
	}
}
