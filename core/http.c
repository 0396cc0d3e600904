#include "http.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "reqid.h"

static const char *const method_names[] = {
	[HTTP_GET] = "GET", [HTTP_HEAD] = "HEAD", [HTTP_POST] = "POST",
	[HTTP_PUT] = "PUT", [HTTP_PATCH] = "PATCH", [HTTP_DELETE] = "DELETE",
	[HTTP_OPTIONS] = "OPTIONS", [HTTP_OTHER] = "OTHER",
};

enum http_method http_method_parse(const char *name)
{
	for (int m = HTTP_GET; m < HTTP_OTHER; m++)
		if (name != NULL && strcmp(name, method_names[m]) == 0)
			return (enum http_method)m;
	return HTTP_OTHER;
}

const char *http_method_name(enum http_method m)
{
	if ((unsigned)m > HTTP_OTHER)
		m = HTTP_OTHER;
	return method_names[m];
}

static long long parse_length(const char *s)
{
	char *end;
	long long v;

	if (s == NULL || *s < '0' || *s > '9')
		return -1;
	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno != 0 || *end != '\0')
		return -1;
	return v;
}

/* The path the client asked for: REQUEST_URI when the front server passes
 * it (lighttpd, Apache), else SCRIPT_NAME + PATH_INFO. */
static char *request_target(http_param_fn *param, void *ctx)
{
	const char *uri = param(ctx, "REQUEST_URI");
	const char *script, *info, *query;
	struct buf b = BUF_INIT;

	if (uri != NULL && *uri != '\0')
		return strdup(uri);
	script = param(ctx, "SCRIPT_NAME");
	info = param(ctx, "PATH_INFO");
	query = param(ctx, "QUERY_STRING");
	buf_puts(&b, script ? script : "");
	buf_puts(&b, info ? info : "");
	if (query != NULL && *query != '\0') {
		buf_puts(&b, "?");
		buf_puts(&b, query);
	}
	if (b.oom || b.len == 0) {
		buf_release(&b);
		return b.oom ? NULL : strdup("/");
	}
	return b.data;
}

int http_request_init(struct http_request *req, http_param_fn *param, void *ctx)
{
	const char *rid, *method;
	char *q;

	memset(req, 0, sizeof(*req));
	clock_gettime(CLOCK_MONOTONIC, &req->started);
	req->_param = param;
	req->_param_ctx = ctx;
	method = param(ctx, "REQUEST_METHOD");
	req->method_name = method ? method : "";
	req->method = http_method_parse(method);
	req->content_length = parse_length(param(ctx, "CONTENT_LENGTH"));
	rid = param(ctx, "HTTP_X_REQUEST_ID");
	if (reqid_is_sane(rid))
		memcpy(req->request_id, rid, strlen(rid) + 1);
	else if (reqid_generate(req->request_id) < 0)
		memcpy(req->request_id, "unavailable", sizeof("unavailable"));
	if ((req->path = request_target(param, ctx)) == NULL)
		return -1;
	q = strchr(req->path, '?');
	if (q != NULL) {
		*q = '\0';
		req->query = q + 1;
	} else {
		req->query = "";
	}
	return 0;
}

void http_request_set_reader(struct http_request *req, http_read_fn *read, void *ctx)
{
	req->_read = read;
	req->_read_ctx = ctx;
}

int http_request_body(struct http_request *req, size_t max, struct buf *out)
{
	char chunk[4096];

	buf_reset(out);
	if (req->_read == NULL)
		return 0;
	for (;;) {
		long n = req->_read(req->_read_ctx, chunk, sizeof(chunk));
		if (n < 0)
			return -2;
		if (n == 0)
			return out->oom ? -2 : 0;
		if (out->len + (size_t)n > max)
			return -1;
		buf_append(out, chunk, (size_t)n);
	}
}

void http_request_release(struct http_request *req)
{
	free(req->path);
	req->path = NULL;
}

const char *http_request_param(const struct http_request *req, const char *name)
{
	return req->_param(req->_param_ctx, name);
}

void http_response_init(struct http_response *resp, const struct http_sink *sink)
{
	memset(resp, 0, sizeof(*resp));
	resp->status = 200;
	resp->_sink = sink;
}

void http_response_release(struct http_response *resp)
{
	buf_release(&resp->headers);
	buf_release(&resp->body);
}

static int is_token_char(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
	       (c >= '0' && c <= '9') || (c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

int http_response_header(struct http_response *resp, const char *name,
			 const char *value)
{
	if (*name == '\0')
		return -1;
	for (const unsigned char *p = (const unsigned char *)name; *p; p++)
		if (!is_token_char(*p))
			return -1;
	if (strpbrk(value, "\r\n") != NULL)
		return -1;
	buf_printf(&resp->headers, "%s: %s\r\n", name, value);
	return resp->headers.oom ? -1 : 0;
}

int http_response_json(struct http_response *resp, int status, const char *json)
{
	resp->status = status;
	buf_reset(&resp->body);
	buf_puts(&resp->body, json);
	return http_response_header(resp, "Content-Type", "application/json");
}

int http_response_head(const struct http_response *resp, long long content_length,
		       struct buf *out)
{
	buf_printf(out, "Status: %d %s\r\n", resp->status, http_reason(resp->status));
	if (content_length >= 0)
		buf_printf(out, "Content-Length: %lld\r\n", content_length);
	buf_append(out, resp->headers.data, resp->headers.len);
	buf_puts(out, "\r\n");
	return out->oom ? -1 : 0;
}

/* Writes to the sink; flush for stream output, which must leave now. A
 * whole response is not flushed: the server's finish sends it with the
 * end of the request in one write, so the front server reads it at once
 * (a separate end record is one more write and read per request, and
 * lighttpd, having read Content-Length bytes, may already have closed). */
static int sink_out(struct http_response *resp, const char *p, size_t n, int flush)
{
	const struct http_sink *s = resp->_sink;

	if (resp->failed)
		return -1;
	if (s == NULL || s->write(s->ctx, p, n) < 0 || (flush && s->flush(s->ctx) < 0)) {
		resp->failed = 1;
		return -1;
	}
	return 0;
}

int http_response_send(struct http_response *resp)
{
	struct buf out = BUF_INIT;
	int empty = resp->status == 204 || resp->status == 304;
	int no_body = empty || resp->head_only;
	int rc;

	/* HEAD announces the length GET would send. */
	http_response_head(resp, empty ? -1 : (long long)resp->body.len, &out);
	if (!no_body)
		buf_append(&out, resp->body.data, resp->body.len);
	resp->sent = 1;
	rc = out.oom ? -1 : sink_out(resp, out.data, out.len, 0);
	if (rc == 0 && !no_body)
		resp->bytes_sent = resp->body.len;
	buf_release(&out);
	return rc;
}

int http_stream_begin(struct http_response *resp)
{
	struct buf out = BUF_INIT;
	int rc;

	resp->streaming = 1;
	resp->sent = 1;
	http_response_head(resp, -1, &out);
	rc = out.oom ? -1 : sink_out(resp, out.data, out.len, 1);
	buf_release(&out);
	return rc;
}

int http_stream_write(struct http_response *resp, const char *p, size_t n)
{
	if (sink_out(resp, p, n, 1) < 0)
		return -1;
	resp->bytes_sent += n;
	return 0;
}

int http_response_peer_fd(const struct http_response *resp)
{
	return resp->_sink != NULL ? resp->_sink->fd : -1;
}

int http_response_detach(struct http_response *resp, int *fd, int *request_id)
{
	const struct http_sink *s = resp->_sink;

	if (resp->sent || s == NULL || s->detach == NULL || s->detach(s->ctx, fd, request_id) < 0)
		return -1;
	resp->sent = 1;
	resp->streaming = 1;
	resp->detached = 1;
	return 0;
}

const char *http_reason(int status)
{
	switch (status) {
	case 200: return "OK";
	case 201: return "Created";
	case 202: return "Accepted";
	case 204: return "No Content";
	case 304: return "Not Modified";
	case 400: return "Bad Request";
	case 401: return "Unauthorized";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 409: return "Conflict";
	case 410: return "Gone";
	case 413: return "Content Too Large";
	case 415: return "Unsupported Media Type";
	case 429: return "Too Many Requests";
	case 500: return "Internal Server Error";
	case 503: return "Service Unavailable";
	default: return "Unknown";
	}
}
