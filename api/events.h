/* Internal to api/: the pieces of the event routes shared by events.c
 * (streams by token, publish) and stream_sessions.c (one-time ids). */
#ifndef FCGI_SSE_API_EVENTS_H
#define FCGI_SSE_API_EVENTS_H

#include "api.h"

struct events_query {
	struct buf events, topics, session_id, last_id;
	int has_events, has_topics, has_session, has_last_id;
};

/* Parses and checks the stream query (events=, topics=, session_id=,
 * last_event_id=; nothing else, and never a token). Returns 0, or -1 with
 * 400 request.invalid_query set. Release q either way. */
int events_parse_query(struct api_call *call, struct events_query *q);
void events_query_release(struct events_query *q);

/* Where a stream resumes: the Last-Event-ID header, else the last_event_id
 * query parameter, else NULL (from the next event). Valid while call and
 * q are. */
const char *events_resume_from(struct api_call *call, const struct events_query *q);

/* Syntax of event types, topics and comma lists of them. */
int events_valid_type(const char *s);
int events_valid_topic(const char *s);
int events_valid_list(const char *list, size_t max_item);

/* GET /api/v2/events/stream?session_id=... (stream_sessions.c). */
void events_stream_by_session(struct api_call *call, const struct events_query *q);

/* Marks the stream sessions subscribed to topic as finished, so their
 * reconnects get 204 (a publish with close). */
void events_finish_topic(struct api_call *call, const char *tenant_id, const char *topic);

#endif
