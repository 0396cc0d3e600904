/* One-time stream sessions (API.md §6): POST /api/v2/events/session, and
 * GET /api/v2/events/stream?session_id=... for clients (EventSource) that
 * cannot send headers. No token ever travels in a URL. */
#include <json-c/json.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "../auth/auth.h"
#include "../core/cookie.h"
#include "../redis/bus.h"
#include "../session/session.h"
#include "../sse/sse.h"
#include "events.h"

void api_events_session(struct api_call *call)
{
	const struct config *cfg = call->env->cfg;
	struct store_stream_session ss;
	struct principal p;
	struct json_object *o;
	long long now = (long long)time(NULL), until;
	int rc;

	if (api_authenticate(call, &p) < 0)
		return;
	memset(&ss, 0, sizeof(ss));
	if (session_id_new(ss.id) < 0) {
		api_error(call, API_ERR_INTERNAL_ERROR, NULL);
		return;
	}
	snprintf(ss.tenant_id, sizeof(ss.tenant_id), "%s", p.claims.tid);
	snprintf(ss.user_id, sizeof(ss.user_id), "%s", p.claims.sub);
	snprintf(ss.session_id, sizeof(ss.session_id), "%s", p.claims.sid);
	snprintf(ss.role, sizeof(ss.role), "%s", p.session.role);
	snprintf(ss.fgp, sizeof(ss.fgp), "%s", p.claims.fgp);
	until = now + cfg->stream_session_max_age_s;
	ss.created_at = now;
	ss.connect_by = now + cfg->stream_session_connect_s;
	/* never outlive the auth session behind it */
	ss.expires_at = until < p.session.expires_at ? until : p.session.expires_at;
	if (ss.connect_by > ss.expires_at)
		ss.connect_by = ss.expires_at;
	if ((rc = store_stream_session_create(call->env->store, &ss)) != STORE_OK) {
		api_unavailable(call);
		return;
	}
	o = json_object_new_object();
	json_object_object_add(o, "session_id", json_object_new_string(ss.id));
	json_object_object_add(o, "expires_at", api_json_time(ss.connect_by));
	json_object_object_add(o, "reconnect_until", api_json_time(ss.expires_at));
	json_object_object_add(o, "single_use", json_object_new_boolean(ss.fgp[0] == '\0'));
	api_json(call, 201, o);
}

#define NO_SUCH_SESSION "No such stream session."

static int invalid(struct api_call *call, const char *detail)
{
	api_error(call, API_ERR_EVENTS_INVALID_SESSION, detail);
	return -1;
}

static int cookie_matches(struct api_call *call, const char *fgp)
{
	const char *val;
	size_t len;
	char hex[AUTH_FGP_HEX_LEN + 1];

	if (!cookie_find(http_request_param(call->req, "HTTP_COOKIE"), AUTH_FGP_COOKIE, &val, &len))
		return 0;
	auth_fingerprint_hash(val, len, hex);
	return auth_secret_equal(hex, fgp);
}

/* A publish with close is accepted once its event is in the history, and
 * the sessions of its topic are marked finished after that. Should the
 * mark be missing (the store failed, or the process died in between), the
 * history still says it: a reconnect that resumes from a close event for
 * one of the session's topics, published after the session began, is
 * finished. Returns 1 then. */
static int closed_at_resume(struct api_call *call, const struct store_stream_session *ss,
			    const char *resume)
{
	char topic[129];
	uint64_t ms, seq;

	if (resume == NULL || ss->topics[0] == '\0' || bus_id_parse(resume, &ms, &seq) < 0 ||
	    (long long)(ms / 1000) < ss->created_at)
		return 0;
	if (bus_close_topic(call->env->bus, ss->tenant_id, resume, topic, sizeof(topic)) != 1 ||
	    !hub_list_has(ss->topics, topic))
		return 0;
	log_text(call->env->log, LOG_INFO, "stream_session_finished_by_history", topic);
	return 1;
}

/* Applies the rules of API.md §6. Returns 0 when the connect may go on,
 * 1 when the session is finished (204), -1 with the error set. */
static int admit(struct api_call *call, struct store_stream_session *ss, const char *topics,
		 const char *resume, struct store_session *auth_out)
{
	struct store_session auth;
	long long now = (long long)time(NULL);
	int rc;

	/* the cookie first, and its mismatch answered exactly like an id that
	 * never existed: whoever holds another client's id learns nothing of
	 * it (not even that it exists or expired); the reasons below are for
	 * the rightful client */
	if (ss->fgp[0] != '\0' && !cookie_matches(call, ss->fgp))
		return invalid(call, NO_SUCH_SESSION);
	if (now > ss->expires_at)
		return invalid(call, "This stream session has expired; create a new one.");
	switch (sessions_lookup(call->env->sessions, ss->session_id, now, &auth)) {
	case SESSION_LIVE:
		break;
	case SESSION_GONE:
		return invalid(call, "The login behind this stream session has ended.");
	case SESSION_ERROR:
		api_unavailable(call);
		return -1;
	}
	*auth_out = auth;
	/* only the same client, still logged in, learns that it is finished */
	if (ss->finished_at != 0)
		return 1;
	if (ss->used_at == 0 && now > ss->connect_by)
		return invalid(call, "This stream session was not used in time; create a new one.");
	if (ss->used_at != 0 && ss->fgp[0] == '\0')
		return invalid(call, "This stream session was used already (single use).");
	if (ss->used_at != 0) /* a reconnect of the same client */
		return closed_at_resume(call, ss, resume);
	/* HEAD opens no stream (a client asking why its EventSource gave up):
	 * it answers as the stream would, and leaves the session unused */
	if (call->resp->head_only)
		return 0;
	rc = store_stream_session_claim(call->env->store, ss->id, now, topics);
	if (rc == STORE_OK || (rc == STORE_CONFLICT && ss->fgp[0] != '\0'))
		return 0;
	if (rc == STORE_CONFLICT)
		return invalid(call, "This stream session was used already (single use).");
	if (rc == STORE_NOT_FOUND)
		return invalid(call, NO_SUCH_SESSION);
	api_unavailable(call);
	return -1;
}

void events_stream_by_session(struct api_call *call, const struct events_query *q)
{
	struct store_stream_session ss;
	struct store_session auth;
	struct buf first = BUF_INIT;
	const char *id = buf_str(&q->session_id);
	int rc;

	if (!session_id_valid(id)) {
		invalid(call, NO_SUCH_SESSION);
		return;
	}
	rc = store_stream_session_get(call->env->store, id, &ss);
	if (rc == STORE_NOT_FOUND) {
		invalid(call, NO_SUCH_SESSION);
		return;
	}
	if (rc != STORE_OK) {
		api_unavailable(call);
		return;
	}
	rc = admit(call, &ss, q->has_topics ? buf_str(&q->topics) : "", events_resume_from(call, q), &auth);
	if (rc == 1) {
		call->resp->status = 204; /* finished: tells EventSource to stop */
		return;
	}
	if (rc < 0)
		return;
	api_stream_handoff(call,
			   &(struct api_stream_owner){ ss.tenant_id, ss.user_id, ss.session_id,
						       auth.expires_at },
			   &(struct api_stream_filter){ q->has_events ? buf_str(&q->events) : NULL,
							q->has_topics ? buf_str(&q->topics) : NULL,
							ss.id, events_resume_from(call, q) },
			   &first);
	buf_release(&first);
}

void events_finish_topic(struct api_call *call, const char *tenant_id, const char *topic)
{
	if (store_stream_session_finish_topic(call->env->store, tenant_id, topic,
					      (long long)time(NULL)) != STORE_OK)
		log_text(call->env->log, LOG_WARN, "stream_session_finish_failed",
			 store_errstr(call->env->store));
}
