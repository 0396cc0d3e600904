/* Telemetry (API.md §5): POST /api/v2/devices/{id}/telemetry (operator;
 * one point or a batch, accepted whole or refused whole), stored durably
 * with the device's last-seen time and one `telemetry` event per point
 * (topic device:<id>) in one transaction, published after the commit;
 * GET /api/v2/telemetry/recent (viewer), newest first. */
#include <json-c/json.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../auth/auth.h"
#include "../core/query.h"
#include "../core/timefmt.h"
#include "../session/session.h"
#include "devices.h"

#define POINTS_MAX 500
#define METRICS_MAX 64
#define METRIC_NAME_MAX 64
#define FUTURE_SKEW_MS (5 * 60 * 1000) /* a point's time may be this far ahead */
#define RECENT_DEFAULT 100
#define RECENT_MAX 1000

static int metric_name_ok(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > METRIC_NAME_MAX)
		return 0;
	for (; *s; s++)
		if (!((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') ||
		      *s == '_' || *s == '.' || *s == '-'))
			return 0;
	return 1;
}

struct batch {
	struct store_telemetry pts[POINTS_MAX];
	struct store_event evs[POINTS_MAX];
	char *texts[2 * POINTS_MAX]; /* metrics and event data, freed at the end */
	size_t n, ntexts;
};

static void batch_free(struct batch *b)
{
	for (size_t i = 0; i < b->ntexts; i++)
		free(b->texts[i]);
	free(b);
}

static char *keep(struct batch *b, const char *s)
{
	char *c = strdup(s);

	if (c != NULL)
		b->texts[b->ntexts++] = c;
	return c;
}

/* Checks one point ({"ts": RFC 3339 (default: now), "metrics": {name:
 * number}}) and adds it to b with its event. 0, or -1 with 400 set. */
static int add_point(struct api_call *call, struct batch *b, struct json_object *pt,
		     const char *tenant, const char *device, long long now_ms, size_t index)
{
	struct store_telemetry *t = &b->pts[b->n];
	struct store_event *ev = &b->evs[b->n];
	struct json_object *ts, *metrics, *data;
	char detail[200], when[TIMEFMT_RFC3339_MS_LEN + 1];
	const char *metrics_text;
	int members = 0;

	if (!json_object_is_type(pt, json_type_object))
		goto bad;
	json_object_object_foreach(pt, key, val) {
		(void)val;
		if (strcmp(key, "ts") != 0 && strcmp(key, "metrics") != 0)
			goto bad;
		members++;
	}
	t->ts = now_ms;
	if (json_object_object_get_ex(pt, "ts", &ts) &&
	    (!json_object_is_type(ts, json_type_string) ||
	     timefmt_parse_rfc3339_ms(json_object_get_string(ts), &t->ts) < 0 || t->ts <= 0 ||
	     t->ts > now_ms + FUTURE_SKEW_MS))
		goto bad;
	if (!json_object_object_get_ex(pt, "metrics", &metrics) ||
	    !json_object_is_type(metrics, json_type_object) ||
	    json_object_object_length(metrics) == 0 ||
	    json_object_object_length(metrics) > METRICS_MAX)
		goto bad;
	json_object_object_foreach(metrics, name, value) {
		if (!metric_name_ok(name) ||
		    !(json_object_is_type(value, json_type_int) ||
		      (json_object_is_type(value, json_type_double) &&
		       isfinite(json_object_get_double(value)))))
			goto bad;
	}
	(void)members;
	if (session_id_new(t->id) != 0)
		return api_error(call, API_ERR_INTERNAL_ERROR, NULL), -1;
	snprintf(t->device_id, sizeof(t->device_id), "%s", device);
	metrics_text = json_object_to_json_string_ext(metrics, JSON_C_TO_STRING_PLAIN);
	if ((t->metrics = keep(b, metrics_text)) == NULL)
		return api_error(call, API_ERR_INTERNAL_ERROR, NULL), -1;
	data = json_object_new_object();
	json_object_object_add(data, "id", json_object_new_string(t->id));
	json_object_object_add(data, "device_id", json_object_new_string(device));
	json_object_object_add(data, "ts", json_object_new_string(timefmt_rfc3339_ms_of(t->ts, when)));
	json_object_object_add(data, "metrics", json_object_get(metrics));
	memset(ev, 0, sizeof(*ev));
	snprintf(ev->tenant_id, sizeof(ev->tenant_id), "%s", tenant);
	snprintf(ev->type, sizeof(ev->type), "telemetry");
	snprintf(ev->topic, sizeof(ev->topic), "device:%s", device);
	ev->data = keep(b, json_object_to_json_string_ext(data, JSON_C_TO_STRING_PLAIN));
	ev->created_at = now_ms / 1000;
	json_object_put(data);
	if (ev->data == NULL)
		return api_error(call, API_ERR_INTERNAL_ERROR, NULL), -1;
	b->n++;
	return 0;
bad:
	snprintf(detail, sizeof(detail),
		 "Point %zu must be {\"ts\": RFC 3339 (not over 5 minutes ahead; default now), "
		 "\"metrics\": 1-%d numbers named [A-Za-z0-9_.-]{1,64}}.", index, METRICS_MAX);
	api_error(call, API_ERR_REQUEST_INVALID_FIELD, detail);
	return -1;
}

/* The body's points into b: {"points": [...]} or one point. */
static int read_points(struct api_call *call, struct json_object *in, struct batch *b,
		       const char *tenant, const char *device)
{
	struct json_object *points;
	struct timespec now;
	long long now_ms;
	size_t n;

	clock_gettime(CLOCK_REALTIME, &now);
	now_ms = (long long)now.tv_sec * 1000 + now.tv_nsec / 1000000;
	if (!json_object_object_get_ex(in, "points", &points))
		return add_point(call, b, in, tenant, device, now_ms, 0);
	n = json_object_is_type(points, json_type_array) ? json_object_array_length(points) : 0;
	if (json_object_object_length(in) != 1 || n == 0 || n > POINTS_MAX) {
		api_error(call, API_ERR_REQUEST_INVALID_FIELD,
			  "A batch is {\"points\": [1 to 500 points]} and nothing else.");
		return -1;
	}
	for (size_t i = 0; i < n; i++)
		if (add_point(call, b, json_object_array_get_idx(points, i), tenant, device, now_ms, i) < 0)
			return -1;
	return 0;
}

/* The cached view of a device's newest RECENT_DEFAULT points
 * ("<tenant>:<device>"): dropped by every POST of points to the device
 * before it answers. */
static void recent_key(const char *tenant, const char *device, char *key, size_t cap)
{
	snprintf(key, cap, "%s:%s", tenant, device);
}

static void recent_drop(struct api_env *env, const char *tenant, const char *device)
{
	char key[2 * STORE_ID_MAX + 2];

	if (env->recent_cache == NULL)
		return;
	recent_key(tenant, device, key, sizeof(key));
	if (cache_invalidate(env->recent_cache, key) < 0)
		log_text(env->log, LOG_WARN, "telemetry_view_stale", device);
}

void api_telemetry_post(struct api_call *call)
{
	struct principal p;
	struct json_object *in = NULL, *out, *ids;
	struct batch *b = NULL;
	char device[STORE_ID_MAX + 1];
	int rc, batch;

	if (api_authorize(call, &p, AUTH_ROLE_OPERATOR) < 0 || api_read_json(call, &in) < 0)
		return;
	api_param(call, 0, device, sizeof(device));
	if ((b = calloc(1, sizeof(*b))) == NULL) {
		api_error(call, API_ERR_INTERNAL_ERROR, NULL);
		goto out;
	}
	batch = json_object_object_get_ex(in, "points", NULL);
	if (read_points(call, in, b, p.claims.tid, device) < 0)
		goto out;
	rc = store_telemetry_append(call->env->store, p.claims.tid, device, b->pts, b->evs, b->n);
	if (api_store_result(call, rc, "device") < 0)
		goto out;
	/* the device's cached view keeps its last-seen time until its TTL:
	 * points do not invalidate it (docs/API.md); its recent points do */
	recent_drop(call->env, p.claims.tid, device);
	api_outbox_publish_all(call->env, b->evs, b->n);
	out = json_object_new_object();
	if (batch) {
		ids = json_object_new_array();
		for (size_t i = 0; i < b->n; i++)
			json_object_array_add(ids, json_object_new_string(b->pts[i].id));
		json_object_object_add(out, "ids", ids);
	} else {
		json_object_object_add(out, "id", json_object_new_string(b->pts[0].id));
	}
	api_json(call, 202, out);
out:
	if (b != NULL)
		batch_free(b);
	json_object_put(in);
}

static struct json_object *point_json(const struct store_telemetry *t)
{
	struct json_object *o = json_object_new_object(), *m = json_tokener_parse(t->metrics);
	char when[TIMEFMT_RFC3339_MS_LEN + 1];

	json_object_object_add(o, "id", json_object_new_string(t->id));
	json_object_object_add(o, "device_id", json_object_new_string(t->device_id));
	json_object_object_add(o, "ts", json_object_new_string(timefmt_rfc3339_ms_of(t->ts, when)));
	json_object_object_add(o, "metrics", m ? m : json_object_new_object());
	return o;
}

static int add_point_json(void *ctx, const struct store_telemetry *t)
{
	json_object_array_add(ctx, point_json(t));
	return 0;
}

struct recent_ctx {
	struct store *store;
	const char *tenant, *device;
	int limit;
};

/* Builds {"items": [...]} from the store into *out; a store code. */
static int recent_body(const struct recent_ctx *r, struct json_object **out)
{
	struct json_object *items = json_object_new_array();

	if (store_telemetry_recent(r->store, r->tenant, r->device, r->limit, add_point_json, items) !=
	    STORE_OK) {
		json_object_put(items);
		return STORE_ERROR;
	}
	*out = json_object_new_object();
	json_object_object_add(*out, "items", items);
	return STORE_OK;
}

/* cache_load_fn of the recent view. */
static int load_recent(void *ctx, const char *key, struct buf *value, long long *ttl_ms)
{
	struct json_object *o;

	(void)key;
	(void)ttl_ms;
	if (recent_body(ctx, &o) != STORE_OK)
		return -1;
	return api_json_text(o, value) == 0 ? 1 : -1;
}

/* Answers the default-sized view through the cache; -1 when there is no
 * cache for this request (the caller reads the store). */
static int answer_recent(struct api_call *call, const struct recent_ctx *r)
{
	char key[2 * STORE_ID_MAX + 2];

	if (call->env->recent_cache == NULL || r->limit != RECENT_DEFAULT)
		return -1;
	recent_key(r->tenant, r->device, key, sizeof(key));
	api_cached_json(call, call->env->recent_cache, key, load_recent, (void *)r);
	return 0;
}

void api_telemetry_recent(struct api_call *call)
{
	static const char *const known[] = { "device_id", "limit", NULL };
	struct principal p;
	struct store_device d;
	struct buf dev = BUF_INIT;
	struct recent_ctx r;
	struct json_object *o;
	long long limit;
	int rc;

	if (api_authorize(call, &p, AUTH_ROLE_VIEWER) < 0 ||
	    api_query_known(call, known, "device_id, limit") < 0 ||
	    api_query_int(call, "limit", 1, RECENT_MAX, RECENT_DEFAULT, &limit) < 0)
		goto out;
	if (query_get(call->req->query, "device_id", &dev) != 1 ||
	    strlen(buf_str(&dev)) != dev.len || dev.len == 0 || dev.len > STORE_ID_MAX ||
	    strspn(buf_str(&dev), "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-") !=
		    dev.len) {
		api_error(call, API_ERR_REQUEST_INVALID_QUERY,
			  "device_id= is required: a device id ([A-Za-z0-9_-]{1,64}).");
		goto out;
	}
	rc = devices_load(call->env, p.claims.tid, buf_str(&dev), &d);
	if (api_store_result(call, rc, "device") < 0)
		goto out;
	r = (struct recent_ctx){ call->env->store, p.claims.tid, buf_str(&dev), (int)limit };
	if (answer_recent(call, &r) == 0)
		goto out;
	if (recent_body(&r, &o) != STORE_OK)
		api_unavailable(call);
	else
		api_json(call, 200, o);
out:
	buf_release(&dev);
}
