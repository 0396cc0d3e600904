/* http: the request and response model handlers see, independent of
 * libfcgi. A response is written through a sink (two function pointers), so
 * handlers run the same over a FastCGI stream or a test buffer. */
#ifndef FCGI_SSE_HTTP_H
#define FCGI_SSE_HTTP_H

#include <stddef.h>
#include <time.h>

#include "buf.h"

enum http_method {
	HTTP_GET, HTTP_HEAD, HTTP_POST, HTTP_PUT, HTTP_PATCH, HTTP_DELETE,
	HTTP_OPTIONS, HTTP_OTHER
};

#define HTTP_METHOD_BIT(m) (1u << (m))

/* Looks up a CGI parameter ("REQUEST_METHOD", "HTTP_API_VERSION"); returns
 * NULL when absent. */
typedef const char *http_param_fn(void *ctx, const char *name);

/* Reads up to n bytes of the request body; returns the count, 0 at the end,
 * -1 on error. */
typedef long http_read_fn(void *ctx, char *buf, size_t n);

#define HTTP_REQUEST_ID_MAX 64

struct http_request {
	enum http_method method;
	const char *method_name; /* as received; "" when absent */
	char *path;              /* owned: REQUEST_URI without the query */
	const char *query;       /* after '?'; "" when none (points into path's copy) */
	long long content_length; /* -1 when absent or not a number */
	char request_id[HTTP_REQUEST_ID_MAX + 1];
	struct timespec started; /* CLOCK_MONOTONIC */
	/* set by the dispatcher, for the access log */
	const char *route;       /* matched pattern, or NULL */
	int api_version;         /* 0 when not an API request */
	http_param_fn *_param;
	void *_param_ctx;
	http_read_fn *_read;     /* NULL: no body */
	void *_read_ctx;
};

struct http_sink {
	int (*write)(void *ctx, const char *p, size_t n); /* 0 or -1 */
	int (*flush)(void *ctx);                          /* 0 or -1 */
	void *ctx;
	int fd; /* the connection, for waiting on its close; -1 when none */
	/* Takes the connection away from the FastCGI library before anything
	 * was written: *fd and *request_id now belong to the caller, who writes
	 * the FastCGI records itself. NULL when not possible. 0 or -1. */
	int (*detach)(void *ctx, int *fd, int *request_id);
};

struct http_response {
	int status;
	struct buf headers; /* "Name: value\r\n" lines */
	struct buf body;
	int head_only;     /* HEAD: send no body */
	int streaming;     /* head sent without Content-Length; body follows */
	int sent;          /* the head has been written */
	int detached;      /* the connection was handed to someone else */
	int failed;        /* a write to the sink failed: the client is gone */
	size_t bytes_sent; /* body bytes written so far */
	const struct http_sink *_sink;
};

/* Fills req from CGI parameters. The request id is taken from
 * X-Request-Id when it is a sane token, else generated. Returns 0, or -1
 * when memory ran out. Release with http_request_release. */
int http_request_init(struct http_request *req, http_param_fn *param, void *ctx);

/* Sets where the request body comes from. */
void http_request_set_reader(struct http_request *req, http_read_fn *read, void *ctx);

/* Reads the whole body into out (replacing its contents). Returns 0, -1
 * when it is longer than max bytes (the rest is left unread), -2 when
 * reading failed or memory ran out. */
int http_request_body(struct http_request *req, size_t max, struct buf *out);

/* Frees what req owns. */
void http_request_release(struct http_request *req);

/* Returns a CGI parameter of the request (for headers: "HTTP_" + the
 * upper-cased name with '-' as '_'), or NULL when absent. */
const char *http_request_param(const struct http_request *req, const char *name);

/* Parses a method name. Pure. */
enum http_method http_method_parse(const char *name);

/* Returns the name of m ("GET"); static storage. */
const char *http_method_name(enum http_method m);

/* Prepares resp for writing to sink (may be NULL in tests that only look
 * at the head and body). */
void http_response_init(struct http_response *resp, const struct http_sink *sink);

/* Frees what resp owns. */
void http_response_release(struct http_response *resp);

/* Adds a header. Returns 0, or -1 (and adds nothing) when the name is not an
 * HTTP token or the value holds CR, LF or NUL. */
int http_response_header(struct http_response *resp, const char *name,
			 const char *value);

/* Sets the status and a JSON body (Content-Type application/json). */
int http_response_json(struct http_response *resp, int status, const char *json);

/* Writes the CGI head (Status line, headers, blank line) to out. When
 * content_length >= 0 a Content-Length header is included. */
int http_response_head(const struct http_response *resp, long long content_length,
		       struct buf *out);

/* Writes head and body in one write, unflushed: the server's end of the
 * request sends them and the end record together. Returns 0, or -1 when
 * the sink failed. */
int http_response_send(struct http_response *resp);

/* Starts a streamed response: sends the head without Content-Length and
 * flushes. Returns 0 or -1. */
int http_stream_begin(struct http_response *resp);

/* Writes n bytes of a streamed body and flushes them to the client at once.
 * Returns 0, or -1 when the client is gone (resp->failed is then set). */
int http_stream_write(struct http_response *resp, const char *p, size_t n);

/* Returns the connection fd behind resp (to poll for the peer closing it),
 * or -1. */
int http_response_peer_fd(const struct http_response *resp);

/* Takes the connection (see http_sink.detach). Nothing may have been sent.
 * Returns 0 and sets *fd and *request_id, or -1. After it, strings from
 * http_request_param() are gone (the server frees the request's params):
 * copy what is needed first. */
int http_response_detach(struct http_response *resp, int *fd, int *request_id);

/* Returns the reason phrase of status ("Not Found"); static storage. */
const char *http_reason(int status);

#endif
