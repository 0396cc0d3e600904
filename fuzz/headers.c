/* Target: request headers the server reads (Cookie, Authorization,
 * X-Request-Id) and response headers it writes (core/http.c).
 *
 * - cookie_find against a reference reading of cookie.h's contract (the
 *   first "name=value" pair of "a=b; c=d", trailing blanks cut, one pair
 *   of double quotes removed), for the fingerprint cookie and for a name
 *   from the input;
 * - auth_bearer_parse: an accepted token lies inside the header, is
 *   token68, and nothing follows it;
 * - reqid_is_sane, and the id the request ends up with (echoed in the
 *   X-Request-Id response header) is always a header value;
 * - http_response_header with a name and value from the input: either
 *   refused, or exactly one "name: value" line is added, and the CGI head
 *   splits back into exactly the lines that were added (no CR or LF of a
 *   value can start a header of its own).
 *
 * Input: NUL-separated fields: cookie name, Cookie header, Authorization
 * header, X-Request-Id, then pairs of response header name and value. */
#include "fuzz.h"

#include <strings.h>

#include "../auth/auth.h"
#include "../core/cookie.h"
#include "../core/http.h"
#include "../core/reqid.h"

/* Reference cookie_find. */
static int ref_cookie(const char *h, const char *name, const char **val, size_t *len)
{
	size_t nlen = strlen(name);
	const char *p = h;

	if (nlen == 0)
		return 0;
	while (*p) {
		const char *semi;
		size_t seg;

		while (*p == ';' || *p == ' ' || *p == '\t')
			p++;
		semi = strchr(p, ';');
		seg = semi ? (size_t)(semi - p) : strlen(p);
		if (seg > nlen && memcmp(p, name, nlen) == 0 && p[nlen] == '=') {
			const char *v = p + nlen + 1;
			size_t n = seg - nlen - 1;
			while (n > 0 && (v[n - 1] == ' ' || v[n - 1] == '\t'))
				n--;
			if (n >= 2 && v[0] == '"' && v[n - 1] == '"')
				v++, n -= 2;
			*val = v;
			*len = n;
			return 1;
		}
		p += seg;
	}
	return 0;
}

static void check_cookie(const char *header, const char *name)
{
	const char *v = NULL, *rv = NULL;
	size_t n = 0, rn = 0;
	int rc = cookie_find(header, name, &v, &n), ref = ref_cookie(header, name, &rv, &rn);

	FUZZ_CHECK(rc == ref);
	if (rc == 1) {
		FUZZ_CHECK(v == rv && n == rn);
		FUZZ_CHECK(v >= header && v + n <= header + strlen(header));
		FUZZ_CHECK(memchr(v, ';', n) == NULL);
	}
	FUZZ_CHECK(cookie_find(NULL, name, &v, &n) == 0);
}

static int token68(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	       strchr("-._~+/", c) != NULL;
}

static void check_bearer(const char *h)
{
	const char *tok = NULL;
	size_t n = 0, i = 0;
	enum auth_bearer r = auth_bearer_parse(h, &tok, &n);

	if (*h == '\0') {
		FUZZ_CHECK(r == AUTH_BEARER_MISSING);
		return;
	}
	FUZZ_CHECK(r == AUTH_BEARER_OK || r == AUTH_BEARER_MALFORMED);
	if (r != AUTH_BEARER_OK)
		return;
	FUZZ_CHECK(strncasecmp(h, "bearer ", 7) == 0);
	FUZZ_CHECK(tok >= h + 7 && tok + n == h + strlen(h)); /* nothing after it */
	FUZZ_CHECK(n >= 1 && n <= AUTH_TOKEN_MAX);
	while (i < n && tok[i] != '=')
		FUZZ_CHECK(token68((unsigned char)tok[i++]));
	FUZZ_CHECK(i > 0);
	while (i < n)
		FUZZ_CHECK(tok[i++] == '=');
}

static int sane_char(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	       c == '.' || c == '_' || c == ':' || c == '-';
}

struct params {
	const char *rid;
};

static const char *param(void *ctx, const char *name)
{
	const struct params *p = ctx;

	if (strcmp(name, "HTTP_X_REQUEST_ID") == 0)
		return p->rid;
	if (strcmp(name, "REQUEST_URI") == 0)
		return "/api/v2/health";
	if (strcmp(name, "REQUEST_METHOD") == 0)
		return "GET";
	return NULL;
}

static void check_reqid(const char *rid, struct http_response *resp)
{
	struct params p = { rid };
	struct http_request req;
	size_t n = strlen(rid);
	int sane = reqid_is_sane(rid), all = n >= 1 && n <= 64;

	for (size_t i = 0; i < n; i++)
		all &= sane_char((unsigned char)rid[i]);
	FUZZ_CHECK(sane == all);
	FUZZ_CHECK(http_request_init(&req, param, &p) == 0);
	if (sane)
		FUZZ_CHECK(strcmp(req.request_id, rid) == 0);
	FUZZ_CHECK(reqid_is_sane(req.request_id));
	/* what api_handle does first */
	FUZZ_CHECK(http_response_header(resp, "X-Request-Id", req.request_id) == 0);
	http_request_release(&req);
}

static int tchar(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	       (c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

/* Splits the head at CRLF: every line but the last (empty) ends in CRLF,
 * and no CR or LF stands alone. Returns the number of lines. */
static size_t head_lines(const char *h, size_t n)
{
	size_t lines = 0;

	for (size_t i = 0; i < n; i++) {
		if (h[i] == '\r') {
			FUZZ_CHECK(i + 1 < n && h[i + 1] == '\n');
			lines++;
			i++;
		} else {
			FUZZ_CHECK(h[i] != '\n');
		}
	}
	FUZZ_CHECK(n >= 4 && memcmp(h + n - 4, "\r\n\r\n", 4) == 0);
	return lines;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_in in = { data, size };
	char *name = fuzz_field(&in, 0), *cookie = fuzz_field(&in, 0);
	char *authz = fuzz_field(&in, 0), *rid = fuzz_field(&in, 0);
	struct http_response resp;
	struct buf head = BUF_INIT;
	size_t added = 0;

	check_cookie(cookie, name);
	check_cookie(cookie, AUTH_FGP_COOKIE);
	check_bearer(authz);

	http_response_init(&resp, NULL);
	check_reqid(rid, &resp);
	added++;
	while (in.n > 0) {
		char *hn = fuzz_field(&in, 0), *hv = fuzz_field(&in, 0);
		size_t before = resp.headers.len, nl = strlen(hn), vl = strlen(hv);
		int ok = nl > 0, rc;

		for (size_t i = 0; i < nl; i++)
			ok &= tchar((unsigned char)hn[i]);
		ok &= strpbrk(hv, "\r\n") == NULL;
		rc = http_response_header(&resp, hn, hv);
		FUZZ_CHECK(rc == (ok ? 0 : -1));
		if (rc == 0) {
			const char *line = resp.headers.data + before;
			FUZZ_CHECK(resp.headers.len == before + nl + 2 + vl + 2);
			FUZZ_CHECK(memcmp(line, hn, nl) == 0 && memcmp(line + nl, ": ", 2) == 0);
			FUZZ_CHECK(memcmp(line + nl + 2, hv, vl) == 0);
			added++;
		} else {
			FUZZ_CHECK(resp.headers.len == before);
		}
		free(hn);
		free(hv);
	}
	/* Status, Content-Length, each header, the blank line */
	FUZZ_CHECK(http_response_head(&resp, 0, &head) == 0);
	FUZZ_CHECK(head_lines(head.data, head.len) == 2 + added + 1);
	FUZZ_CHECK(strncmp(head.data, "Status: 200 OK\r\n", 16) == 0);

	buf_release(&head);
	http_response_release(&resp);
	free(name);
	free(cookie);
	free(authz);
	free(rid);
	return 0;
}
