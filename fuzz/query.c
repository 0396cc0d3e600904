/* Target: the request target as a client sends it, "path?query".
 *
 * The path goes through what api/dispatch.c does with it before any
 * handler runs: versioning_resolve (with an API-Version header from the
 * input) and router_match against the route table. The query goes through
 * query_get for the parameters the routes read and query_only, each
 * checked against a reference decoder written here from query.h's
 * contract ('+' is a space, %XX decoded, a bad escape or a decoded NUL
 * anywhere makes the whole query invalid, the first parameter of a name
 * wins).
 *
 * Input: one byte choosing the API-Version header (none, "1", "2", or the
 * first line of the rest), then the target. */
#include "fuzz.h"

#include "../core/buf.h"
#include "../core/http.h"
#include "../core/query.h"
#include "../core/router.h"
#include "../versioning/versioning.h"

/* api/dispatch.c's table, without its handlers (linking them would bring
 * in every module) */
static const struct route routes[] = {
#define ROUTE(versions, methods, pattern, handler) { versions, methods, pattern, NULL },
#include "../api/routes.def"
#undef ROUTE
};
#define NROUTES (sizeof(routes) / sizeof(routes[0]))

/* the parameters the routes read (api/), and names of no route */
static const char *const names[] = {
	"limit", "cursor", "status", "after", "events", "topics", "session_id",
	"last_event_id", "device_id", "access_token", "a", "", NULL,
};

/* A hex digit's value, by a table rather than core/hex.h's ranges: the
 * reference shares no code with what it checks. */
static int hexv(char c)
{
	static const char digits[] = "0123456789abcdef0123456789ABCDEF";
	const char *p = c ? strchr(digits, c) : NULL;

	return p == NULL ? -1 : (int)((p - digits) % 16);
}

/* Reference: decodes s[0..n) into out (NUL-terminated, n + 1 bytes).
 * Returns the decoded length, or -1. */
static long ref_decode(const char *s, size_t n, char *out)
{
	size_t o = 0;

	for (size_t i = 0; i < n; i++) {
		if (s[i] == '+') {
			out[o++] = ' ';
		} else if (s[i] != '%') {
			out[o++] = s[i];
		} else {
			int hi, lo;
			if (i + 2 >= n)
				return -1;
			hi = hexv(s[i + 1]);
			lo = hexv(s[i + 2]);
			if (hi < 0 || lo < 0 || hi * 16 + lo == 0)
				return -1;
			out[o++] = (char)(hi * 16 + lo);
			i += 2;
		}
	}
	out[o] = '\0';
	return (long)o;
}

/* Reference query_get: 1 with the value in out, 0, or -1. */
static int ref_get(const char *q, const char *name, char *out)
{
	size_t qn = strlen(q);
	char *nbuf = malloc(qn + 1), *vbuf = malloc(qn + 1);
	int found = 0;
	const char *p = q;

	out[0] = '\0';
	while (*p != '\0') {
		const char *end = strchr(p, '&');
		size_t len = end ? (size_t)(end - p) : strlen(p);
		const char *eq = memchr(p, '=', len);
		size_t nl = eq ? (size_t)(eq - p) : len;

		if (nl > 0) {
			const char *v = eq ? eq + 1 : p + len;
			size_t vl = eq ? len - nl - 1 : 0;
			if (ref_decode(p, nl, nbuf) < 0 || ref_decode(v, vl, vbuf) < 0) {
				free(nbuf);
				free(vbuf);
				out[0] = '\0';
				return -1;
			}
			if (!found && strcmp(nbuf, name) == 0) {
				found = 1;
				strcpy(out, vbuf);
			}
		}
		p = end ? end + 1 : p + len;
	}
	free(nbuf);
	free(vbuf);
	if (!found)
		out[0] = '\0';
	return found;
}

static int id_char(char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	       c == '_' || c == '-';
}

static void check_query(const char *q)
{
	static const char *const allowed[] = { "limit", "cursor", "status", NULL };
	char *want = malloc(strlen(q) + 1);
	struct buf v = BUF_INIT;
	const char *unknown = NULL;
	size_t ulen = 0;
	int any_bad = 0, rc;

	for (int i = 0; names[i] != NULL; i++) {
		int got = query_get(q, names[i], &v), ref = ref_get(q, names[i], want);

		FUZZ_CHECK(got == ref);
		/* on -1 the contract says nothing of out */
		FUZZ_CHECK(got < 0 || strcmp(buf_str(&v), want) == 0);
		FUZZ_CHECK(strlen(buf_str(&v)) == v.len); /* never a decoded NUL */
		any_bad |= got < 0;
	}
	rc = query_only(q, allowed, &unknown, &ulen);
	FUZZ_CHECK(rc >= -1 && rc <= 1);
	/* query_only stops at the first unknown name, so it may miss a bad
	 * escape after it; it can never see one query_get did not */
	if (rc < 0)
		FUZZ_CHECK(any_bad);
	if (!any_bad)
		FUZZ_CHECK(rc >= 0);
	if (rc == 0) {
		FUZZ_CHECK(unknown >= q && ulen > 0 && unknown + ulen <= q + strlen(q));
		FUZZ_CHECK(memchr(unknown, '&', ulen) == NULL && memchr(unknown, '=', ulen) == NULL);
	}
	buf_release(&v);
	free(want);
}

static void check_route(const char *path, const char *header)
{
	struct version_resolution vr;
	enum version_result r = versioning_resolve(path, header, &vr);
	struct buf allow = BUF_INIT;

	if (strncmp(path, "/api", 4) != 0 || (path[4] != '\0' && path[4] != '/')) {
		FUZZ_CHECK(r == VERSION_NOT_API);
		return;
	}
	if (r != VERSION_OK) {
		FUZZ_CHECK(r == VERSION_UNKNOWN);
		return;
	}
	FUZZ_CHECK(vr.version >= API_VERSION_OLDEST && vr.version <= API_VERSION_CURRENT);
	FUZZ_CHECK(vr.rest != NULL && vr.rest[0] == '/');
	FUZZ_CHECK((vr.rest >= path && vr.rest < path + strlen(path)) || strcmp(vr.rest, "/") == 0);
	if (!vr.from_path && header != NULL)
		FUZZ_CHECK(vr.version == (header[0] - '0') && strlen(header) == 1);

	for (int m = HTTP_GET; m <= HTTP_OTHER; m++) {
		struct route_match rm;
		enum router_result rr = router_match(routes, NROUTES, vr.version,
						     (enum http_method)m, vr.rest, &rm);

		switch (rr) {
		case ROUTER_MATCH:
			FUZZ_CHECK(rm.route != NULL && (rm.route->versions & (1u << vr.version)));
			FUZZ_CHECK(m != HTTP_OTHER);
			FUZZ_CHECK(rm.allow & HTTP_METHOD_BIT(m));
			for (size_t i = 0; i < rm.nparams; i++) {
				const struct route_param *p = &rm.params[i];
				FUZZ_CHECK(p->value >= vr.rest &&
					   p->value + p->value_len <= vr.rest + strlen(vr.rest));
				FUZZ_CHECK(p->value_len >= 1 && p->value_len <= 64);
				for (size_t k = 0; k < p->value_len; k++)
					FUZZ_CHECK(id_char(p->value[k]));
			}
			break;
		case ROUTER_METHOD_NOT_ALLOWED:
			FUZZ_CHECK(rm.route == NULL && rm.allow != 0);
			FUZZ_CHECK(m == HTTP_OTHER || !(rm.allow & HTTP_METHOD_BIT(m)));
			buf_reset(&allow);
			router_allow_header(rm.allow, &allow);
			FUZZ_CHECK(allow.len > 0 && strpbrk(buf_str(&allow), "\r\n") == NULL);
			break;
		case ROUTER_INVALID_ID:
		case ROUTER_NOT_FOUND:
			FUZZ_CHECK(rm.route == NULL && rm.allow == 0);
			break;
		default:
			FUZZ_CHECK(0);
		}
	}
	buf_release(&allow);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_in in = { data, size };
	unsigned how = fuzz_byte(&in);
	char *header = NULL, *target, *q;
	size_t len;

	if ((how & 3) == 3)
		header = fuzz_field(&in, '\n');
	target = fuzz_rest(&in, &len);
	/* what http_request_init does: the query starts at the first '?' */
	q = strchr(target, '?');
	if (q != NULL)
		*q++ = '\0';
	check_route(target, (how & 3) == 1 ? "1" : (how & 3) == 2 ? "2" : header);
	check_query(q != NULL ? q : "");
	free(header);
	free(target);
	return 0;
}
