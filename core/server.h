/* server: the FastCGI side. A pool of worker threads accepts connections
 * on one listening socket (libfcgi), turns each request into an
 * http_request/http_response pair, calls the handler, sends what it left
 * unsent and writes one access-log line.
 *
 * Signals: the caller blocks its shutdown signals in every thread (so its
 * own thread can sigwait for them) before server_start; the server uses
 * SIGUSR2, unblocked in its workers, only to interrupt accept(). */
#ifndef FCGI_SSE_SERVER_H
#define FCGI_SSE_SERVER_H

#include "buf.h"
#include "http.h"
#include "log.h"

typedef void server_handler_fn(void *ctx, struct http_request *req,
			       struct http_response *resp);

struct server_opts {
	int listen_fd;          /* listening socket; the server does not close it */
	int workers;            /* >= 1 */
	const struct logger *log;
	server_handler_fn *handler;
	void *handler_ctx;
	long long body_timeout_ms; /* a body read waits at most this long (0: no bound) */
};

struct server;

/* Starts the worker threads. Returns the server, or NULL with a message in
 * err. */
struct server *server_start(const struct server_opts *o, struct buf *err);

/* Stops accepting, lets in-flight requests finish (the caller has already
 * told long-running handlers to end) and joins the workers, waiting at
 * most timeout_ms. Returns the number of workers still busy at the
 * deadline (0 on a clean stop). Call once. */
int server_stop(struct server *s, long long timeout_ms);

/* Frees the server. Only after server_stop returned 0: busy workers still
 * use it. */
void server_free(struct server *s);

#endif
