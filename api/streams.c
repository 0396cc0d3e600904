/* Handing validated stream requests to the hub. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "../core/fcgi_record.h"
#include "../sse/sse.h"
#include "api.h"

static void sse_headers(struct http_response *resp)
{
	resp->status = 200;
	http_response_header(resp, "Content-Type", "text/event-stream");
	http_response_header(resp, "Cache-Control", "no-cache, no-transform");
	http_response_header(resp, "X-Accel-Buffering", "no");
}

/* The hub refused a connection we already took from libfcgi: answer it
 * here with a complete response in raw records (blocking), then close. */
static void refuse(struct api_call *call, int fd, int request_id, int shutting_down)
{
	struct http_response *resp = call->resp;
	struct buf head = BUF_INIT, out = BUF_INIT;

	buf_reset(&resp->headers);
	http_response_header(resp, "X-Request-Id", call->req->request_id);
	http_response_header(resp, "Retry-After", "5");
	if (shutting_down)
		api_error(call, API_ERR_SERVER_SHUTTING_DOWN, "The server is restarting; retry shortly.");
	else
		api_error(call, API_ERR_SERVER_BUSY, "This process holds as many streams as it may; retry shortly.");
	http_response_head(resp, (long long)resp->body.len, &head);
	buf_append(&head, resp->body.data, resp->body.len);
	fcgi_record_stdout(&out, request_id, head.data, head.len);
	fcgi_record_end(&out, request_id, 0);
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
	buf_write_all(&out, fd); /* best effort: the connection is closed either way */
	close(fd);
	resp->bytes_sent = resp->body.len;
	buf_release(&head);
	buf_release(&out);
}

/* One more stream of the owner's tenant and user within the cluster-wide
 * quotas; -1 with 429 set when not. Redis unreachable: allowed (the
 * stream's events need Redis anyway; the per-process sse.max_streams
 * still holds). */
static int stream_quota(struct api_call *call, const struct api_stream_owner *owner)
{
	const struct config *cfg = call->env->cfg;
	enum quota_result r;

	if (call->env->quota == NULL || owner->tenant_id[0] == '\0')
		return 0;
	r = quota_open(call->env->quota, owner->tenant_id, owner->user_id ? owner->user_id : "",
		       cfg->max_streams_per_tenant, cfg->max_streams_per_user);
	if (r == QUOTA_OK || r == QUOTA_UNAVAILABLE)
		return 0;
	api_metrics_limited("streams-open", 0);
	api_error(call, API_ERR_RATE_LIMITED,
		  r == QUOTA_TENANT_FULL ? "This tenant has as many streams open as it may; close one first."
					 : "You have as many streams open as you may; close one first.");
	http_response_header(call->resp, "Retry-After", "5");
	return -1;
}

/* The client's connection to the front server, as the front server names
 * it: the hub ends the stream once the kernel shows it closed
 * (sse/peerwatch.h). NULL when it does not (a unix socket, no port). */
static const struct peer_conn *peer_of(const struct http_request *req, struct peer_conn *out)
{
	return peer_conn_parse(out, http_request_param(req, "SERVER_ADDR"),
			       http_request_param(req, "SERVER_PORT"),
			       http_request_param(req, "REMOTE_ADDR"),
			       http_request_param(req, "REMOTE_PORT")) == 0 ? out : NULL;
}

/* Whether the client's connection is HTTP/2, other requests beside this
 * one on it: the front server names the protocol in SERVER_PROTOCOL
 * ("HTTP/2.0" from Apache's mod_http2 and from lighttpd). */
static int peer_shared(const struct http_request *req)
{
	const char *p = http_request_param(req, "SERVER_PROTOCOL");

	return p != NULL && strncmp(p, "HTTP/2", 6) == 0;
}

void api_stream_handoff(struct api_call *call, const struct api_stream_owner *owner,
			const struct api_stream_filter *filter, const struct buf *first_frames)
{
	struct http_response *resp = call->resp;
	struct hub_stream_spec spec;
	struct peer_conn peer;
	int has_peer, shared;
	struct buf head = BUF_INIT, resume = BUF_INIT;
	long long retry = api_retry_ms(call->env);
	int fd, request_id;

	if (hub_stopping(call->env->hub)) {
		http_response_header(resp, "Retry-After", "5");
		api_error(call, API_ERR_SERVER_SHUTTING_DOWN, "The server is restarting; retry shortly.");
		return;
	}
	if (!resp->head_only && stream_quota(call, owner) < 0)
		return;
	sse_headers(resp);
	if (resp->head_only)
		return;
	/* the header's memory belongs to libfcgi, which frees it on detach */
	has_peer = peer_of(call->req, &peer) != NULL;
	shared = has_peer && peer_shared(call->req);
	if ((filter->resume_from != NULL && buf_puts(&resume, filter->resume_from) < 0) ||
	    http_response_head(resp, -1, &head) < 0 || sse_retry(&head, retry) < 0 ||
	    buf_append(&head, first_frames->data, first_frames->len) < 0 ||
	    http_response_detach(resp, &fd, &request_id) < 0) {
		buf_release(&head);
		buf_release(&resume);
		if (!resp->sent)
			api_error(call, API_ERR_INTERNAL_ERROR, NULL);
		return;
	}
	spec = (struct hub_stream_spec){
		.fd = fd, .request_id = request_id, .tenant_id = owner->tenant_id,
		.events = filter->events, .topics = filter->topics, .key = filter->key,
		.resume_from = filter->resume_from ? buf_str(&resume) : NULL, .announce = owner->tenant_id[0] != '\0',
		.auth_session = owner->auth_session, .user_id = owner->user_id,
		.auth_expires = owner->auth_expires, .request_log_id = call->req->request_id,
		.retry_ms = retry, .head = head.data, .head_len = head.len,
		.peer = has_peer ? &peer : NULL, .peer_shared = shared,
	};
	if (hub_add(call->env->hub, &spec) < 0)
		refuse(call, fd, request_id, errno == ESHUTDOWN);
	else
		resp->bytes_sent = head.len;
	buf_release(&head);
	buf_release(&resume);
}
