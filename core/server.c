#include "server.h"

#include <errno.h>
#include <fcgiapp.h>
#include <json-c/json.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "listen.h"

#define WAKE_SIGNAL SIGUSR2

enum worker_state { W_STARTING, W_ACCEPTING, W_BUSY, W_DONE };

struct worker {
	struct server *srv;
	pthread_t thread;
	int started;
	_Atomic int state;
};

struct server {
	struct server_opts opts;
	int tcp;
	atomic_int stopping;
	int nworkers;
	struct worker *workers;
};

static void wake_handler(int sig)
{
	(void)sig; /* only here to make accept() return EINTR */
}

static const char *fcgi_param(void *ctx, const char *name)
{
	return FCGX_GetParam(name, ((FCGX_Request *)ctx)->envp);
}

static long fcgi_read(void *ctx, char *buf, size_t n)
{
	FCGX_Stream *in = ((FCGX_Request *)ctx)->in;
	int got = FCGX_GetStr(buf, n > (1u << 30) ? (1 << 30) : (int)n, in);

	if (got < 0 || FCGX_GetError(in) != 0)
		return -1;
	return got;
}

static int fcgi_write(void *ctx, const char *p, size_t n)
{
	FCGX_Stream *out = ((FCGX_Request *)ctx)->out;

	while (n > 0) {
		int chunk = n > (1u << 30) ? (1 << 30) : (int)n;
		if (FCGX_PutStr(p, chunk, out) != chunk)
			return -1;
		p += chunk;
		n -= (size_t)chunk;
	}
	return 0;
}

static int fcgi_flush(void *ctx)
{
	FCGX_Stream *out = ((FCGX_Request *)ctx)->out;

	return FCGX_FFlush(out) < 0 || FCGX_GetError(out) != 0 ? -1 : 0;
}

/* Hands the connection over: libfcgi frees its streams but keeps the fd
 * open, and forgets it, so FCGX_Finish_r and FCGX_Accept_r leave it alone. */
static int fcgi_detach(void *ctx, int *fd, int *request_id)
{
	FCGX_Request *fr = ctx;

	if (fr->ipcFd < 0)
		return -1;
	*fd = fr->ipcFd;
	*request_id = fr->requestId;
	FCGX_Free(fr, 0);
	fr->ipcFd = -1;
	return 0;
}

static double elapsed_ms(const struct timespec *since)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (double)(now.tv_sec - since->tv_sec) * 1e3 +
	       (double)(now.tv_nsec - since->tv_nsec) / 1e6;
}

static void log_access(const struct logger *lg, const struct http_request *req,
		       const struct http_response *resp)
{
	struct json_object *f;
	char ms[32];

	if (!log_enabled(lg, LOG_INFO))
		return;
	snprintf(ms, sizeof(ms), "%.3f", elapsed_ms(&req->started));
	f = json_object_new_object();
	json_object_object_add(f, "request_id", json_object_new_string(req->request_id));
	json_object_object_add(f, "method", json_object_new_string(http_method_name(req->method)));
	json_object_object_add(f, "route", req->route ? json_object_new_string(req->route) : NULL);
	json_object_object_add(f, "version", req->api_version ? json_object_new_int(req->api_version) : NULL);
	json_object_object_add(f, "status", json_object_new_int(resp->status));
	json_object_object_add(f, "duration_ms", json_object_new_double_s(atof(ms), ms));
	json_object_object_add(f, "bytes", json_object_new_int64((int64_t)resp->bytes_sent));
	if (resp->streaming)
		json_object_object_add(f, "stream", json_object_new_boolean(1));
	if (resp->failed)
		json_object_object_add(f, "client_gone", json_object_new_boolean(1));
	if (resp->detached)
		json_object_object_add(f, "handed_to_hub", json_object_new_boolean(1));
	log_json(lg, LOG_INFO, "request", f);
}

static void serve(struct server *s, FCGX_Request *fr)
{
	const struct http_sink sink = { fcgi_write, fcgi_flush, fr, fr->ipcFd, fcgi_detach };
	struct http_request req;
	struct http_response resp;

	http_response_init(&resp, &sink);
	if (http_request_init(&req, fcgi_param, fr) < 0) {
		log_text(s->opts.log, LOG_ERROR, "request_failed", "out of memory");
		http_request_release(&req);
		return;
	}
	http_request_set_reader(&req, fcgi_read, fr);
	s->opts.handler(s->opts.handler_ctx, &req, &resp);
	if (!resp.sent)
		http_response_send(&resp);
	log_access(s->opts.log, &req, &resp);
	http_response_release(&resp);
	http_request_release(&req);
}

static void set_nodelay(int fd)
{
	int one = 1;

	/* libfcgi leaves Nagle on; small SSE writes would wait ~40 ms. */
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

/* 1 when the front server has sent all it will send for this request: its
 * empty stdin record has been seen. A body the handler read to its end
 * ends so. A request without a body (no Content-Length or 0, no
 * Transfer-Encoding) has that record in the buffer libfcgi filled with the
 * parameters, so looking costs no system call. Anything else is unknown. */
static int input_done(FCGX_Request *fr)
{
	const char *len = FCGX_GetParam("CONTENT_LENGTH", fr->envp);

	if (fr->in == NULL || FCGX_GetError(fr->in) != 0)
		return 0;
	if (FCGX_HasSeenEOF(fr->in))
		return 1;
	if ((len != NULL && *len != '\0' && strcmp(len, "0") != 0) ||
	    FCGX_GetParam("HTTP_TRANSFER_ENCODING", fr->envp) != NULL)
		return 0;
	return FCGX_GetChar(fr->in) == EOF && FCGX_GetError(fr->in) == 0;
}

/* FCGX_Finish_r, without its lingering close when the input is done.
 * libfcgi shuts its side down and waits (up to 2 s) for the front server
 * to close first, so that unread input cannot make the kernel reset the
 * connection under the answer: a sleep and a wake-up of the worker per
 * request. With nothing left to read there is nothing to reset: the answer
 * and the end record are written, then the descriptor is closed. */
static void finish(FCGX_Request *fr)
{
	int fd = fr->ipcFd;

	if (fd < 0 || fr->keepConnection || !input_done(fr)) {
		FCGX_Finish_r(fr);
		return;
	}
	FCGX_FClose(fr->err);
	FCGX_FClose(fr->out);
	FCGX_Free(fr, 0);
	fr->ipcFd = -1;
	close(fd);
}

/* A request with a body gets a bound on each read of it: a client that
 * trickles its body (through a front server that streams it) frees the
 * worker after that long instead of holding it. Nothing for a request
 * without one: no system call on the common path. */
static void bound_body_reads(FCGX_Request *fr, long long ms)
{
	const char *len = FCGX_GetParam("CONTENT_LENGTH", fr->envp);
	struct timeval tv = { (time_t)(ms / 1000), (suseconds_t)(ms % 1000 * 1000) };

	if (ms <= 0 || ((len == NULL || *len == '\0' || strcmp(len, "0") == 0) &&
			FCGX_GetParam("HTTP_TRANSFER_ENCODING", fr->envp) == NULL))
		return;
	setsockopt(fr->ipcFd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct server *s = w->srv;
	FCGX_Request fr;
	sigset_t wake;

	sigemptyset(&wake);
	sigaddset(&wake, WAKE_SIGNAL);
	pthread_sigmask(SIG_UNBLOCK, &wake, NULL);
	FCGX_InitRequest(&fr, s->opts.listen_fd, FCGI_FAIL_ACCEPT_ON_INTR);
	while (!atomic_load(&s->stopping)) {
		int rc;

		atomic_store(&w->state, W_ACCEPTING);
		rc = FCGX_Accept_r(&fr);
		atomic_store(&w->state, W_BUSY);
		if (rc < 0) {
			if (atomic_load(&s->stopping))
				break;
			if (errno != EINTR) {
				log_text(s->opts.log, LOG_ERROR, "accept_failed", strerror(errno));
				usleep(100 * 1000); /* do not spin on a broken socket */
			}
			continue;
		}
		if (s->tcp)
			set_nodelay(fr.ipcFd);
		bound_body_reads(&fr, s->opts.body_timeout_ms);
		serve(s, &fr);
		finish(&fr);
	}
	FCGX_Free(&fr, 1);
	atomic_store(&w->state, W_DONE);
	return NULL;
}

static int install_wake_handler(struct buf *err)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = wake_handler;
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = 0; /* no SA_RESTART: accept() must return EINTR */
	if (sigaction(WAKE_SIGNAL, &sa, NULL) < 0) {
		buf_printf(err, "sigaction: %s", strerror(errno));
		return -1;
	}
	return 0;
}

struct server *server_start(const struct server_opts *o, struct buf *err)
{
	struct server *s = calloc(1, sizeof(*s));
	sigset_t wake, old;

	if (s == NULL || (s->workers = calloc((size_t)o->workers, sizeof(*s->workers))) == NULL) {
		buf_puts(err, "out of memory");
		free(s);
		return NULL;
	}
	s->opts = *o;
	s->tcp = listen_fd_is_tcp(o->listen_fd);
	if (FCGX_Init() != 0) {
		buf_puts(err, "FCGX_Init failed");
		goto err;
	}
	if (install_wake_handler(err) < 0)
		goto err;
	/* threads start with the wake signal blocked and unblock it once their
	 * state is set up */
	sigemptyset(&wake);
	sigaddset(&wake, WAKE_SIGNAL);
	pthread_sigmask(SIG_BLOCK, &wake, &old);
	for (int i = 0; i < o->workers; i++) {
		struct worker *w = &s->workers[i];
		int rc;
		w->srv = s;
		atomic_init(&w->state, W_STARTING);
		if ((rc = pthread_create(&w->thread, NULL, worker_main, w)) != 0) {
			buf_printf(err, "pthread_create: %s", strerror(rc));
			pthread_sigmask(SIG_SETMASK, &old, NULL);
			s->nworkers = i;
			server_stop(s, 1000);
			goto err;
		}
		w->started = 1;
		s->nworkers = i + 1;
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return s;
err:
	free(s->workers);
	free(s);
	return NULL;
}

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

int server_stop(struct server *s, long long timeout_ms)
{
	struct timespec start;
	int busy;

	atomic_store(&s->stopping, 1);
	FCGX_ShutdownPending();
	clock_gettime(CLOCK_MONOTONIC, &start);
	for (;;) {
		busy = 0;
		for (int i = 0; i < s->nworkers; i++) {
			struct worker *w = &s->workers[i];
			int st = atomic_load(&w->state);
			if (st == W_DONE)
				continue;
			busy++;
			/* Only idle workers are interrupted: a signal during a
			 * busy worker's write would cut its response short. The
			 * signal can land just before accept() starts, so it is
			 * repeated until the worker is gone. */
			if (st == W_ACCEPTING || st == W_STARTING)
				pthread_kill(w->thread, WAKE_SIGNAL);
		}
		if (busy == 0 || elapsed_ms(&start) >= (double)timeout_ms)
			break;
		sleep_ms(20);
	}
	if (busy == 0)
		for (int i = 0; i < s->nworkers; i++)
			pthread_join(s->workers[i].thread, NULL);
	return busy;
}

void server_free(struct server *s)
{
	if (s == NULL)
		return;
	free(s->workers);
	free(s);
}
