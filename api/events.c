/* Server-Sent Events (API.md §6): GET /api/v2/events/stream and the
 * internal publish POST /api/v2/events. */
#include <json-c/json.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "../auth/auth.h"
#include "../core/query.h"
#include "../redis/bus.h"
#include "../sse/sse.h"
#include "api.h"
#include "events.h"

#define LIST_MAX_ITEMS 16

/* Event types and topics: [A-Za-z0-9_.:-], types up to 64, topics 128. */
static int name_char(char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	       c == '_' || c == '.' || c == ':' || c == '-';
}

static int valid_token(const char *s, size_t n, size_t max)
{
	if (n == 0 || n > max)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!name_char(s[i]))
			return 0;
	return 1;
}

int events_valid_type(const char *s)
{
	return valid_token(s, strlen(s), 64);
}

int events_valid_topic(const char *s)
{
	return valid_token(s, strlen(s), 128);
}

int events_valid_list(const char *list, size_t max_item)
{
	int n = 0;

	if (strlen(list) > HUB_LIST_MAX)
		return 0;
	for (const char *p = list;; n++) {
		const char *end = strchr(p, ',');
		size_t len = end ? (size_t)(end - p) : strlen(p);
		if (!valid_token(p, len, max_item) || n >= LIST_MAX_ITEMS)
			return 0;
		if (end == NULL)
			return 1;
		p = end + 1;
	}
}

static const char *const stream_params[] = { "events", "topics", "session_id", "last_event_id", NULL };

int events_parse_query(struct api_call *call, struct events_query *q)
{
	memset(q, 0, sizeof(*q));
	if (api_query_known(call, stream_params,
			    "events, topics, session_id, last_event_id; tokens are never accepted in URLs") < 0)
		return -1;
	q->has_events = query_get(call->req->query, "events", &q->events) == 1;
	if (q->has_events && !events_valid_list(buf_str(&q->events), 64)) {
		api_error(call, API_ERR_REQUEST_INVALID_QUERY,
			  "events= is a comma list of up to 16 event types ([A-Za-z0-9_.:-]{1,64}).");
		return -1;
	}
	q->has_topics = query_get(call->req->query, "topics", &q->topics) == 1;
	if (q->has_topics && !events_valid_list(buf_str(&q->topics), 128)) {
		api_error(call, API_ERR_REQUEST_INVALID_QUERY,
			  "topics= is a comma list of up to 16 topics ([A-Za-z0-9_.:-]{1,128}).");
		return -1;
	}
	q->has_session = query_get(call->req->query, "session_id", &q->session_id) == 1;
	q->has_last_id = query_get(call->req->query, "last_event_id", &q->last_id) == 1;
	return 0;
}

void events_query_release(struct events_query *q)
{
	buf_release(&q->events);
	buf_release(&q->topics);
	buf_release(&q->session_id);
	buf_release(&q->last_id);
}

const char *events_resume_from(struct api_call *call, const struct events_query *q)
{
	const char *h = http_request_param(call->req, "HTTP_LAST_EVENT_ID");

	/* the header is what EventSource sends on a reconnect: newer than the
	 * query parameter it was first opened with */
	if (h != NULL && *h)
		return h;
	return q->has_last_id ? buf_str(&q->last_id) : NULL;
}

void api_events_stream(struct api_call *call)
{
	struct events_query q;
	struct principal p;
	struct buf first = BUF_INIT;

	if (events_parse_query(call, &q) < 0)
		goto out;
	if (q.has_session) {
		events_stream_by_session(call, &q);
		goto out;
	}
	if (api_authenticate(call, &p) < 0)
		goto out;
	api_stream_handoff(call,
			   &(struct api_stream_owner){ p.claims.tid, p.claims.sub, p.claims.sid,
						       p.session.expires_at },
			   &(struct api_stream_filter){ q.has_events ? buf_str(&q.events) : NULL,
							q.has_topics ? buf_str(&q.topics) : NULL, NULL,
							events_resume_from(call, &q) },
			   &first);
out:
	buf_release(&first);
	events_query_release(&q);
}

/* Who may publish: the internal secret, or an admin of the tenant. Returns
 * 0 and sets *admin_tenant ("" for the secret), or -1 with the error set. */
static int publisher(struct api_call *call, struct principal *p, const char **admin_tenant)
{
	const char *secret = http_request_param(call->req, "HTTP_X_INTERNAL_SECRET");

	if (secret != NULL) {
		if (!auth_secret_equal(secret, call->env->cfg->internal_secret)) {
			api_error(call, API_ERR_INTERNAL_FORBIDDEN, "Wrong internal secret.");
			return -1;
		}
		*admin_tenant = "";
		return 0;
	}
	if (api_authenticate(call, p) < 0 || api_require_role(call, p, AUTH_ROLE_ADMIN) < 0)
		return -1;
	*admin_tenant = p->claims.tid;
	return 0;
}

static int bool_field(struct api_call *call, struct json_object *in, const char *name, int *out)
{
	struct json_object *v;

	*out = 0;
	if (!json_object_object_get_ex(in, name, &v))
		return 0;
	if (!json_object_is_type(v, json_type_boolean)) {
		api_error(call, API_ERR_REQUEST_INVALID_FIELD, "Field 'close' must be true or false.");
		return -1;
	}
	*out = json_object_get_boolean(v);
	return 0;
}

static void publish(struct api_call *call, struct json_object *in, const char *admin_tenant)
{
	static const char *const allowed[] = { "tenant", "type", "topic", "data", "close", NULL };
	const char *tenant, *type, *topic = NULL, *data;
	struct json_object *v, *out;
	struct store_tenant t;
	struct bus_entry e;
	const struct bus_history hist = { call->env->cfg->history_max_len,
					  call->env->cfg->history_max_age_s * 1000 };
	char id[BUS_ID_MAX + 1];
	int close, rc;

	if (api_only_fields(call, in, allowed, "tenant, type, topic, data, close") < 0 ||
	    (tenant = api_field_string(call, in, "tenant", 1, STORE_NAME_MAX, store_name_valid,
				       "a tenant name")) == NULL ||
	    (type = api_field_string(call, in, "type", 1, 64, events_valid_type,
				     "an event type ([A-Za-z0-9_.:-]{1,64})")) == NULL)
		return;
	if (json_object_object_get_ex(in, "topic", &v) && !json_object_is_type(v, json_type_null) &&
	    (topic = api_field_string(call, in, "topic", 1, 128, events_valid_topic,
				      "a topic ([A-Za-z0-9_.:-]{1,128})")) == NULL)
		return;
	if (bool_field(call, in, "close", &close) < 0)
		return;
	if (close && topic == NULL) {
		api_error(call, API_ERR_REQUEST_INVALID_FIELD, "Field 'close' needs a 'topic'.");
		return;
	}
	rc = store_tenant_by_name(call->env->store, tenant, &t);
	if (rc == STORE_ERROR) {
		api_unavailable(call);
		return;
	}
	/* an admin publishes to their own tenant only; others look absent */
	if (rc == STORE_NOT_FOUND || (*admin_tenant && strcmp(admin_tenant, t.id) != 0)) {
		api_error(call, API_ERR_RESOURCE_NOT_FOUND, "No such tenant.");
		return;
	}
	data = json_object_object_get_ex(in, "data", &v)
		       ? json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN |
							    JSON_C_TO_STRING_NOSLASHESCAPE)
		       : "null";
	/* an event must fit a stream's buffer with room to spare, or every
	 * stream that is not drained at once would be dropped as slow */
	if ((long long)strlen(data) > call->env->cfg->max_buffer_bytes / 4) {
		char detail[120];
		snprintf(detail, sizeof(detail), "Event data may be at most %lld bytes (sse.max_buffer_bytes / 4).",
			 call->env->cfg->max_buffer_bytes / 4);
		api_error(call, API_ERR_REQUEST_TOO_LARGE, detail);
		return;
	}
	e = (struct bus_entry){ NULL, type, topic, data, strlen(data), close };
	/* accepted only once it is in the durable history and on its way to
	 * every process: never 202 and then lost */
	if (bus_publish(call->env->bus, &hist, t.id, &e, id) < 0) {
		log_text(call->env->log, LOG_WARN, "publish_failed", redis_errstr(call->env->bus));
		http_response_header(call->resp, "Retry-After", "2");
		api_error(call, API_ERR_DEPENDENCY_UNAVAILABLE,
			  "Events cannot be stored right now (Redis unavailable); nothing was published. Retry shortly.");
		return;
	}
	/* only now, with the close event durable: a refused publish finishes
	 * nothing. Should this step fail or never run (a crash), a reconnect
	 * resuming from the close event is finished all the same
	 * (stream_sessions.c), so the 202 stands. */
	if (close)
		events_finish_topic(call, t.id, topic);
	out = json_object_new_object();
	json_object_object_add(out, "id", json_object_new_string(id));
	api_json(call, 202, out);
}

void api_events_publish(struct api_call *call)
{
	struct principal p;
	struct json_object *in;
	const char *admin_tenant;

	if (publisher(call, &p, &admin_tenant) < 0 || api_read_json(call, &in) < 0)
		return;
	publish(call, in, admin_tenant);
	json_object_put(in);
}
