/* Target: a FastCGI request as libfcgi hands it to the server, and the
 * records the server writes back.
 *
 * The input is an FCGI_PARAMS stream (FastCGI 1.0 §3.4: name-value pairs,
 * each length one byte, or four with the high bit set) followed by the
 * request body. It becomes the "NAME=value" environment array the way
 * libfcgi's ReadParams builds it (values cut at a NUL, as C strings; a
 * name may hold '='), looked up with libfcgi's own FCGX_GetParam, as
 * core/server.c does. libfcgi decodes the records off the socket itself:
 * what reaches this program's code is that array, and that is fuzzed.
 *
 * Then, as server.c and api/dispatch.c do: http_request_init (path, query,
 * method, Content-Length, request id), versioning_resolve, query_get,
 * cookie_find, auth_bearer_parse, the body read through
 * http_request_body with a bound, the response head and body written, and
 * that output framed with fcgi_record_stdout / fcgi_record_end (the hub's
 * own records) and decoded back with a strict reader of the spec: the
 * front server must read exactly the response, in records of at most
 * 65535 bytes padded to 8, then one empty STDOUT and one END_REQUEST. */
#include "fuzz.h"

#include <fcgiapp.h>

#include "../auth/auth.h"
#include "../core/cookie.h"
#include "../core/fcgi_record.h"
#include "../core/http.h"
#include "../core/query.h"
#include "../core/reqid.h"
#include "../versioning/versioning.h"

#define MAX_PARAMS 64

/* Reads one FastCGI length; -1 when the input ends first. */
static long read_len(struct fuzz_in *in)
{
	unsigned b;

	if (in->n == 0)
		return -1;
	b = fuzz_byte(in);
	if ((b & 0x80) == 0)
		return (long)b;
	if (in->n < 3)
		return -1;
	b = (b & 0x7f) << 24;
	b |= fuzz_byte(in) << 16;
	b |= fuzz_byte(in) << 8;
	b |= fuzz_byte(in);
	return (long)b;
}

/* The params part ends at a pair whose name length is 0xff 0xff 0xff 0xff
 * (an impossible 2^31 - 1 + ... length here; the body follows) or when the
 * input does not hold the pair. */
static int read_params(struct fuzz_in *in, char **env)
{
	int n = 0;

	while (n < MAX_PARAMS) {
		long nl = read_len(in), vl;
		char *nv;

		if (nl < 0 || nl == 0x7fffffff)
			break;
		vl = read_len(in);
		if (vl < 0 || (size_t)nl > in->n || (size_t)vl > in->n - (size_t)nl)
			break;
		nv = malloc((size_t)nl + (size_t)vl + 2);
		if (nv == NULL)
			abort();
		memcpy(nv, in->p, (size_t)nl);
		nv[nl] = '=';
		memcpy(nv + nl + 1, in->p + nl, (size_t)vl);
		nv[nl + 1 + vl] = '\0';
		in->p += nl + vl;
		in->n -= (size_t)(nl + vl);
		env[n++] = nv;
	}
	env[n] = NULL;
	return n;
}

static const char *env_param(void *ctx, const char *name)
{
	return FCGX_GetParam(name, (FCGX_ParamArray)ctx);
}

struct body {
	const uint8_t *p;
	size_t n;
	unsigned step; /* bytes per read, to vary the reads the body needs */
};

static long body_read(void *ctx, char *buf, size_t n)
{
	struct body *b = ctx;
	size_t k = n < b->step ? n : b->step;

	if (k > b->n)
		k = b->n;
	memcpy(buf, b->p, k);
	b->p += k;
	b->n -= k;
	return (long)k;
}

struct capture {
	struct buf out;
};

static int cap_write(void *ctx, const char *p, size_t n)
{
	return buf_append(&((struct capture *)ctx)->out, p, n);
}

static int cap_flush(void *ctx)
{
	(void)ctx;
	return 0;
}

/* Decodes records from p[0..n) strictly; STDOUT content goes to out.
 * Returns 1 when the stream ended with an empty STDOUT and END_REQUEST
 * with status, and nothing follows. */
static int read_records(const unsigned char *p, size_t n, int request_id, struct buf *out,
			uint32_t status)
{
	int ended_stdout = 0;

	while (n > 0) {
		size_t clen, plen;

		FUZZ_CHECK(n >= FCGI_RECORD_HEADER);
		FUZZ_CHECK(p[0] == 1 && p[7] == 0);
		FUZZ_CHECK(((p[2] << 8) | p[3]) == (request_id & 0xffff));
		clen = (size_t)p[4] << 8 | p[5];
		plen = p[6];
		FUZZ_CHECK((clen + plen) % 8 == 0 && plen < 8);
		FUZZ_CHECK(n >= FCGI_RECORD_HEADER + clen + plen);
		for (size_t i = 0; i < plen; i++)
			FUZZ_CHECK(p[FCGI_RECORD_HEADER + clen + i] == 0);
		if (p[1] == FCGI_TYPE_STDOUT) {
			FUZZ_CHECK(!ended_stdout);
			if (clen == 0)
				ended_stdout = 1;
			buf_append(out, p + FCGI_RECORD_HEADER, clen);
		} else {
			const unsigned char *b = p + FCGI_RECORD_HEADER;
			FUZZ_CHECK(p[1] == FCGI_TYPE_END_REQUEST && ended_stdout && clen == 8);
			FUZZ_CHECK(((uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 |
				    b[3]) == status);
			FUZZ_CHECK(b[4] == 0); /* FCGI_REQUEST_COMPLETE */
			FUZZ_CHECK(n == FCGI_RECORD_HEADER + clen + plen);
			return 1;
		}
		p += FCGI_RECORD_HEADER + clen + plen;
		n -= FCGI_RECORD_HEADER + clen + plen;
	}
	return 0;
}

/* Frames p[0..n) as the hub does and checks that the front server reads
 * back exactly those bytes. */
static void check_framing(const char *p, size_t n, int request_id, uint32_t status)
{
	struct buf rec = BUF_INIT, back = BUF_INIT;
	size_t want = 0;

	/* records of 65535 bytes and the rest, each with a header and padded */
	for (size_t left = n; left > 0; left -= left > 65535 ? 65535 : left) {
		size_t chunk = left > 65535 ? 65535 : left;
		want += FCGI_RECORD_HEADER + chunk + (8 - chunk % 8) % 8;
	}
	FUZZ_CHECK(fcgi_record_stdout(&rec, request_id, p, n) == 0);
	FUZZ_CHECK(rec.len == want);
	FUZZ_CHECK(fcgi_record_end(&rec, request_id, status) == 0);
	FUZZ_CHECK(read_records((const unsigned char *)rec.data, rec.len, request_id, &back,
				status) == 1);
	FUZZ_CHECK(back.len == n && (n == 0 || memcmp(back.data, p, n) == 0));
	buf_release(&rec);
	buf_release(&back);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_in in = { data, size };
	char *env[MAX_PARAMS + 1];
	int nenv = read_params(&in, env);
	unsigned step = fuzz_byte(&in) + 1, limit = fuzz_byte(&in) * 16;
	int request_id = (int)(fuzz_byte(&in) << 8 | fuzz_byte(&in));
	struct body body = { in.p, in.n, step };
	struct capture cap = { BUF_INIT };
	const struct http_sink sink = { cap_write, cap_flush, &cap, -1, NULL };
	struct http_request req;
	struct http_response resp;
	struct version_resolution vr;
	struct buf v = BUF_INIT, b = BUF_INIT;
	const char *tok, *cv, *cl;
	size_t tlen, cvlen;
	int rc;

	http_response_init(&resp, &sink);
	FUZZ_CHECK(http_request_init(&req, env_param, env) == 0);
	FUZZ_CHECK(req.path != NULL && strchr(req.path, '?') == NULL);
	FUZZ_CHECK(req.query != NULL);
	FUZZ_CHECK(reqid_is_sane(req.request_id));
	FUZZ_CHECK(req.method == http_method_parse(env_param(env, "REQUEST_METHOD")));
	cl = env_param(env, "CONTENT_LENGTH");
	FUZZ_CHECK(req.content_length >= -1);
	if (req.content_length >= 0)
		FUZZ_CHECK(cl != NULL && strtoll(cl, NULL, 10) == req.content_length);

	/* what the dispatcher and the handlers read */
	versioning_resolve(req.path, http_request_param(&req, "HTTP_API_VERSION"), &vr);
	query_get(req.query, "limit", &v);
	query_get(req.query, "session_id", &v);
	cookie_find(http_request_param(&req, "HTTP_COOKIE"), AUTH_FGP_COOKIE, &cv, &cvlen);
	auth_bearer_parse(http_request_param(&req, "HTTP_AUTHORIZATION"), &tok, &tlen);

	http_request_set_reader(&req, body_read, &body);
	rc = http_request_body(&req, limit, &b);
	if (in.n > limit) {
		FUZZ_CHECK(rc == -1);
	} else {
		FUZZ_CHECK(rc == 0 && b.len == in.n && (in.n == 0 || memcmp(b.data, in.p, in.n) == 0));
	}

	/* the answer: the request id echoed, the body as the response */
	FUZZ_CHECK(http_response_header(&resp, "X-Request-Id", req.request_id) == 0);
	FUZZ_CHECK(http_response_json(&resp, 200, buf_str(&b)) == 0);
	FUZZ_CHECK(http_response_send(&resp) == 0);
	check_framing(cap.out.data, cap.out.len, request_id, (uint32_t)rc);
	/* a body past one record's 65535 bytes (now and then: it is slow) */
	if (in.n > 0 && (request_id & 0xf) == 1) {
		struct buf big = BUF_INIT;
		while (big.len < 70000)
			buf_append(&big, in.p, in.n);
		check_framing(big.data, big.len, request_id, 0);
		buf_release(&big);
	}

	buf_release(&v);
	buf_release(&b);
	buf_release(&cap.out);
	http_response_release(&resp);
	http_request_release(&req);
	for (int i = 0; i < nenv; i++)
		free(env[i]);
	return 0;
}
